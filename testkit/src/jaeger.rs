//! [`Jaeger`]: a real Jaeger v2 process on free loopback ports, and its query API.
//!
//! The binary is the one `scripts/ensure-jaeger.sh` builds from the Go module proxy (Jaeger
//! v2.13.0, module `github.com/jaegertracing/jaeger` v1.76.0, `cmd/jaeger`): found through
//! `$TRACEBRIDGE_JAEGER`, else at `<repo>/target/interop/jaeger`. [`Jaeger::start`] writes a
//! config file (memory storage; receivers OTLP gRPC + HTTP and Jaeger's own gRPC + Thrift
//! HTTP, for jaeger-client-go), starts the binary, and waits until every port listens and the
//! query API answers. Dropping the handle kills the process by its pid and reaps it.
//!
//! Reading back: [`Jaeger::trace`] / [`Jaeger::wait_for_trace`] parse `GET /api/traces/{id}`
//! (the JSON Jaeger UI renders from) into [`JaegerTrace`], whose
//! [`JaegerTrace::assert_same_as`] checks that Jaeger holds exactly the tree an in-memory
//! [`crate::OtlpReceiver`] decoded: ids, parents, services, names, kinds (`span.kind` tag),
//! attributes as tags, ERROR (`error=true`, `otel.status_code`) and events as logs.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use tracebridge_testkit::jaeger::Jaeger;
//!
//! let jaeger = Jaeger::start().await?;
//! // export to jaeger.otlp_grpc_endpoint() or jaeger.otlp_http_endpoint() ...
//! let trace = jaeger
//!     .wait_for_trace("4bf92f3577b34da6a3ce929d0e0e4736", 3, Duration::from_secs(30))
//!     .await?;
//! assert_eq!(trace.spans.len(), 3);
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::record::{AttrValue, SpanKind, Status};
use crate::trace::Trace;

/// The environment variable naming the Jaeger binary (overrides `<repo>/target/interop/jaeger`).
pub const JAEGER_ENV: &str = "TRACEBRIDGE_JAEGER";

/// How long Jaeger may take to start listening and answer its query API.
const STARTUP: Duration = Duration::from_secs(60);

/// The Jaeger binary: `$TRACEBRIDGE_JAEGER`, else `<repo>/target/interop/jaeger`. The error
/// says where it looked and how to build it.
pub fn binary() -> Result<PathBuf, String> {
    let path = match std::env::var_os(JAEGER_ENV) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => repo_root().join("target/interop/jaeger"),
    };
    binary_at(&path)
}

/// `path` if it is a file, else the error [`binary()`] gives.
pub fn binary_at(path: &Path) -> Result<PathBuf, String> {
    if path.is_file() {
        Ok(path.to_path_buf())
    } else {
        Err(format!(
            "the Jaeger binary is missing at {} — build it with `bash scripts/ensure-jaeger.sh` \
             (needs Go 1.26 and the Go module proxy), or point {JAEGER_ENV} at a Jaeger v2 binary",
            path.display()
        ))
    }
}

/// The repository root (the workspace holding this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit lives in the repository root")
        .to_path_buf()
}

/// `n` distinct free loopback ports (all bound at once, then released).
pub fn free_ports(n: usize) -> std::io::Result<Vec<SocketAddr>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()?;
    listeners.iter().map(TcpListener::local_addr).collect()
}

/// The loopback addresses a [`Jaeger`] listens on.
#[derive(Clone, Copy, Debug)]
pub struct JaegerPorts {
    /// OTLP/gRPC receiver.
    pub otlp_grpc: SocketAddr,
    /// OTLP/HTTP receiver.
    pub otlp_http: SocketAddr,
    /// Jaeger's own gRPC receiver (`jaeger.api_v2.CollectorService`).
    pub jaeger_grpc: SocketAddr,
    /// Jaeger's Thrift-over-HTTP receiver (`POST /api/traces`, what jaeger-client-go's HTTP
    /// sender speaks).
    pub jaeger_thrift_http: SocketAddr,
    /// The query service's HTTP API (and UI placeholder).
    pub query_http: SocketAddr,
    /// The query service's gRPC API.
    pub query_grpc: SocketAddr,
}

impl JaegerPorts {
    /// Six free loopback ports.
    pub fn free() -> std::io::Result<JaegerPorts> {
        let p = free_ports(6)?;
        Ok(JaegerPorts {
            otlp_grpc: p[0],
            otlp_http: p[1],
            jaeger_grpc: p[2],
            jaeger_thrift_http: p[3],
            query_http: p[4],
            query_grpc: p[5],
        })
    }

    fn all(&self) -> [SocketAddr; 6] {
        [
            self.otlp_grpc,
            self.otlp_http,
            self.jaeger_grpc,
            self.jaeger_thrift_http,
            self.query_http,
            self.query_grpc,
        ]
    }
}

/// Where a [`Jaeger`] keeps spans.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Storage {
    /// In memory (up to 100 000 traces): gone when the process stops.
    #[default]
    Memory,
    /// Badger on disk in this directory (`keys/`, `values/`), not ephemeral, 72 h span TTL:
    /// what a [`Jaeger::stop`] + [`Jaeger::restart`] on the same handle still serves.
    Badger(PathBuf),
}

/// The config file [`Jaeger::start`] writes: `storage`, every receiver on `ports`, a
/// 100 ms batch so traces become readable promptly, no self-tracing, no metrics port.
pub fn config(ports: &JaegerPorts, storage: &Storage) -> String {
    let backend = match storage {
        Storage::Memory => "{memory: {max_traces: 100000}}".to_owned(),
        Storage::Badger(dir) => format!(
            "{{badger: {{directories: {{keys: \"{keys}\", values: \"{values}\"}}, \
             ephemeral: false, ttl: {{spans: 72h}}}}}}",
            keys = dir.join("keys").display(),
            values = dir.join("values").display(),
        ),
    };
    format!(
        r#"service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp, jaeger]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics: {{level: none}}
    logs: {{level: warn}}
extensions:
  jaeger_query:
    storage: {{traces: store}}
    enable_tracing: false
    http: {{endpoint: "{query_http}"}}
    grpc: {{endpoint: "{query_grpc}"}}
  jaeger_storage:
    backends:
      store: {backend}
receivers:
  otlp:
    protocols:
      grpc: {{endpoint: "{otlp_grpc}"}}
      http: {{endpoint: "{otlp_http}"}}
  jaeger:
    protocols:
      grpc: {{endpoint: "{jaeger_grpc}"}}
      thrift_http: {{endpoint: "{jaeger_thrift_http}"}}
processors:
  batch: {{timeout: 100ms}}
exporters:
  jaeger_storage_exporter: {{trace_storage: store}}
"#,
        query_http = ports.query_http,
        query_grpc = ports.query_grpc,
        otlp_grpc = ports.otlp_grpc,
        otlp_http = ports.otlp_http,
        jaeger_grpc = ports.jaeger_grpc,
        jaeger_thrift_http = ports.jaeger_thrift_http,
    )
}

/// How to start a [`Jaeger`]: [`Jaeger::builder`], then [`JaegerBuilder::start`].
#[derive(Clone, Debug, Default)]
pub struct JaegerBuilder {
    binary: Option<PathBuf>,
    storage: Storage,
    log_dir: Option<PathBuf>,
}

impl JaegerBuilder {
    /// The Jaeger binary at `path` instead of [`binary()`].
    pub fn binary(mut self, path: &Path) -> JaegerBuilder {
        self.binary = Some(path.to_path_buf());
        self
    }

    /// Where spans are kept (default [`Storage::Memory`]).
    pub fn storage(mut self, storage: Storage) -> JaegerBuilder {
        self.storage = storage;
        self
    }

    /// Write `jaeger.log` (appended across restarts) into `dir` and keep it after the drop,
    /// instead of into a temporary directory removed on drop.
    pub fn log_dir(mut self, dir: &Path) -> JaegerBuilder {
        self.log_dir = Some(dir.to_path_buf());
        self
    }

    /// Starts Jaeger on free ports and waits until it is ready: every receiver port accepts
    /// connections and `GET /api/services` answers 200. Fails with the tail of Jaeger's log
    /// when it exits or is not ready within a minute.
    pub async fn start(self) -> Result<Jaeger, String> {
        let binary = match &self.binary {
            Some(path) => binary_at(path)?,
            None => binary()?,
        };
        // Free ports are found by binding port 0 and letting go, so another process (a test
        // running beside this one) can take one before Jaeger binds it: Jaeger then exits with
        // "address already in use" and is started again on other ports (seen in a CI run).
        let mut attempt = 1;
        loop {
            match self.start_once(&binary).await {
                Err(e) if e.contains("address already in use") && attempt < 5 => attempt += 1,
                result => return result,
            }
        }
    }

    async fn start_once(&self, binary: &Path) -> Result<Jaeger, String> {
        let binary = binary.to_path_buf();
        let ports = JaegerPorts::free().map_err(|e| format!("no free ports: {e}"))?;
        let dir = std::env::temp_dir().join(format!(
            "tracebridge-jaeger-{}-{}",
            std::process::id(),
            ports.query_http.port()
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        let config_path = dir.join("config.yaml");
        std::fs::write(&config_path, config(&ports, &self.storage))
            .map_err(|e| format!("write {}: {e}", config_path.display()))?;
        let log = self
            .log_dir
            .clone()
            .unwrap_or_else(|| dir.clone())
            .join("jaeger.log");
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| e.to_string())?;
        let mut jaeger = Jaeger {
            child: None,
            binary,
            ports,
            dir,
            log,
            client,
        };
        jaeger.spawn()?;
        jaeger.wait_ready().await?;
        Ok(jaeger)
    }
}

/// A running Jaeger v2. Dropping it kills the process (by pid) and reaps it.
#[derive(Debug)]
pub struct Jaeger {
    /// `None` between [`Jaeger::stop`] and [`Jaeger::restart`].
    child: Option<Child>,
    binary: PathBuf,
    ports: JaegerPorts,
    /// Holds config.yaml (and jaeger.log unless [`JaegerBuilder::log_dir`]); removed on drop.
    dir: PathBuf,
    log: PathBuf,
    client: reqwest::Client,
}

impl Jaeger {
    /// Memory storage, [`binary()`], a temporary log: `Jaeger::builder().start()`.
    pub async fn start() -> Result<Jaeger, String> {
        Jaeger::builder().start().await
    }

    /// Memory storage, the Jaeger binary at `path`.
    pub async fn start_binary(path: &Path) -> Result<Jaeger, String> {
        Jaeger::builder().binary(path).start().await
    }

    /// Options: storage, binary, log directory.
    pub fn builder() -> JaegerBuilder {
        JaegerBuilder::default()
    }

    fn spawn(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| format!("open the Jaeger log {}: {e}", self.log.display()))?;
        let log_err = log.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new(&self.binary)
            .arg("--config")
            .arg(self.dir.join("config.yaml"))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| format!("cannot start Jaeger {}: {e}", self.binary.display()))?;
        self.child = Some(child);
        Ok(())
    }

    /// SIGTERM (by pid) and waits for a clean exit: Badger storage is flushed and closed.
    /// Fails, with the log's tail, on a bad exit status or when it still runs after `timeout`
    /// (then it is killed).
    pub fn stop(&mut self, timeout: Duration) -> Result<(), String> {
        let mut child = self.child.take().ok_or("Jaeger is not running")?;
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .map_err(|e| format!("kill -TERM {}: {e}", child.id()))?;
        if !sent.success() {
            return Err(format!("kill -TERM {}: {sent}", child.id()));
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                return if status.success() {
                    Ok(())
                } else {
                    Err(format!(
                        "Jaeger exited {status} on SIGTERM\n{}",
                        self.log_tail()
                    ))
                };
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "Jaeger still ran {timeout:?} after SIGTERM\n{}",
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the same binary and config again after [`Jaeger::stop`]: the same ports and
    /// storage (with [`Storage::Badger`], the spans stored before), and waits until ready.
    pub async fn restart(&mut self) -> Result<(), String> {
        if self.child.is_some() {
            return Err("Jaeger still runs: stop it first".into());
        }
        self.spawn()?;
        self.wait_ready().await
    }

    async fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + STARTUP;
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                return Err(format!(
                    "Jaeger exited during startup ({status})\n{}",
                    self.log_tail()
                ));
            }
            let listening =
                self.ports.all().iter().all(|addr| {
                    TcpStream::connect_timeout(addr, Duration::from_millis(200)).is_ok()
                });
            if listening {
                if let Ok(resp) = self.client.get(self.api_url("/api/services")).send().await {
                    if resp.status().is_success() {
                        return Ok(());
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "Jaeger not ready after {STARTUP:?} (ports {:?})\n{}",
                    self.ports,
                    self.log_tail()
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The last lines of Jaeger's log (stdout + stderr).
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let start = lines.len().saturating_sub(40);
        format!("--- jaeger.log ---\n{}", lines[start..].join("\n"))
    }

    /// The process id; panics between [`Jaeger::stop`] and [`Jaeger::restart`].
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("Jaeger runs").id()
    }

    /// Where it listens.
    pub fn ports(&self) -> JaegerPorts {
        self.ports
    }

    /// `http://{otlp grpc}` for `OTEL_EXPORTER_OTLP_ENDPOINT` with protocol `grpc`.
    pub fn otlp_grpc_endpoint(&self) -> String {
        format!("http://{}", self.ports.otlp_grpc)
    }

    /// `http://{otlp http}` for `OTEL_EXPORTER_OTLP_ENDPOINT` with `http/protobuf`.
    pub fn otlp_http_endpoint(&self) -> String {
        format!("http://{}", self.ports.otlp_http)
    }

    /// An in-memory [`crate::OtlpReceiver`] (the tee) that forwards every export, unchanged and
    /// in the protocol it arrived in, to this Jaeger's OTLP/gRPC or OTLP/HTTP receiver: what a
    /// test reads from the tee is what Jaeger was sent.
    pub async fn tee(&self) -> std::io::Result<crate::OtlpReceiver> {
        crate::OtlpReceiver::start_forwarding(crate::Forward {
            grpc: Some(self.otlp_grpc_endpoint()),
            http: Some(self.otlp_http_endpoint()),
        })
        .await
    }

    /// `http://{thrift http}/api/traces`: jaeger-client-go's `JAEGER_ENDPOINT`.
    pub fn jaeger_thrift_http_url(&self) -> String {
        format!("http://{}/api/traces", self.ports.jaeger_thrift_http)
    }

    /// The query service's base URL, `http://{query http}`: what `JAEGER_UI_URL` points at
    /// (`{ui_url}/trace/{id}` is Jaeger UI's trace page).
    pub fn ui_url(&self) -> String {
        format!("http://{}", self.ports.query_http)
    }

    /// `{ui_url}{path}`.
    pub fn api_url(&self, path: &str) -> String {
        format!("{}{path}", self.ui_url())
    }

    /// `GET {path}` on the query API: status and JSON body.
    pub async fn get_json(&self, path: &str) -> Result<(u16, Value), String> {
        let url = self.api_url(path);
        let resp = self
            .client
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(|e| format!("GET {url}: {e}"))?;
        let json = serde_json::from_str(&text)
            .map_err(|e| format!("GET {url}: {status}, not JSON ({e}): {text}"))?;
        Ok((status, json))
    }

    /// `GET /api/services`: the service names Jaeger knows.
    pub async fn services(&self) -> Result<Vec<String>, String> {
        let (_, json) = self.get_json("/api/services").await?;
        let mut names: Vec<String> = json["data"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        Ok(names)
    }

    /// `GET /api/traces/{trace_id}` parsed; `Ok(None)` while Jaeger does not have it (404).
    pub async fn trace(&self, trace_id: &str) -> Result<Option<JaegerTrace>, String> {
        fetch_trace(&self.client, &self.ui_url(), trace_id).await
    }

    /// Polls `GET /api/traces/{trace_id}` until it holds at least `n` spans (Jaeger's batch
    /// processor makes spans readable shortly after they arrive). On timeout the error shows
    /// what Jaeger had.
    pub async fn wait_for_trace(
        &self,
        trace_id: &str,
        n: usize,
        timeout: Duration,
    ) -> Result<JaegerTrace, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let last = self.trace(trace_id).await?;
            match last {
                Some(trace) if trace.spans.len() >= n => return Ok(trace),
                _ if Instant::now() >= deadline => {
                    return Err(format!(
                        "Jaeger did not hold {n} spans of trace {trace_id} after {timeout:?}; it has: {}",
                        last.map(|t| t.dump()).unwrap_or_else(|| "nothing (404)".into())
                    ))
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
}

impl Drop for Jaeger {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `GET {query_url}/api/traces/{trace_id}` with `client`, parsed; `Ok(None)` while Jaeger does
/// not have it (404). What [`Jaeger::trace`] does, for callers that query from spawned tasks.
pub async fn fetch_trace(
    client: &reqwest::Client,
    query_url: &str,
    trace_id: &str,
) -> Result<Option<JaegerTrace>, String> {
    let url = format!("{query_url}/api/traces/{trace_id}");
    let resp = client
        .get(&url)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    let status = resp.status().as_u16();
    if status == 404 {
        return Ok(None);
    }
    let text = resp.text().await.map_err(|e| format!("GET {url}: {e}"))?;
    let json: Value = serde_json::from_str(&text)
        .map_err(|e| format!("GET {url}: {status}, not JSON ({e}): {text}"))?;
    if status != 200 {
        return Err(format!("GET /api/traces/{trace_id}: {status} {json}"));
    }
    JaegerTrace::parse(&json).map(Some)
}

/// One span as Jaeger's query API (`/api/traces/{id}`) shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct JaegerSpan {
    /// `traceID`, left-padded to 32 hex chars (Jaeger prints 64-bit ids as 16).
    pub trace_id: String,
    /// `spanID` (16 hex chars).
    pub span_id: String,
    /// The `CHILD_OF` reference's span id, if any (`FOLLOWS_FROM` when there is no `CHILD_OF`).
    pub parent_span_id: Option<String>,
    /// `operationName`.
    pub operation_name: String,
    /// The process's `serviceName`.
    pub service_name: String,
    /// `startTime`, microseconds since the epoch.
    pub start_time_micros: u64,
    /// `duration`, microseconds.
    pub duration_micros: u64,
    /// Tags, by key (`span.kind`, `error`, `otel.status_code`, the span's attributes, ...).
    pub tags: BTreeMap<String, Value>,
    /// The process's tags (resource attributes other than `service.name`).
    pub process_tags: BTreeMap<String, Value>,
    /// Logs (span events), each its fields by key (`event` holds the event name).
    pub logs: Vec<BTreeMap<String, Value>>,
    /// `warnings` Jaeger attached (e.g. about a parent it does not hold).
    pub warnings: Vec<String>,
}

impl JaegerSpan {
    /// The tag `key` as a string, if it is one.
    pub fn tag_str(&self, key: &str) -> Option<&str> {
        self.tags.get(key).and_then(Value::as_str)
    }

    /// One-line summary for dumps.
    pub fn summary(&self) -> String {
        format!(
            "{} {} [{}] span={} parent={} error={}",
            self.service_name,
            self.operation_name,
            self.tag_str("span.kind").unwrap_or("-"),
            self.span_id,
            self.parent_span_id.as_deref().unwrap_or("-"),
            self.tags
                .get("error")
                .map(Value::to_string)
                .unwrap_or("-".into()),
        )
    }
}

/// One trace as Jaeger's query API shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct JaegerTrace {
    /// The trace id (32 hex chars).
    pub trace_id: String,
    /// Its spans, in the order Jaeger returned them.
    pub spans: Vec<JaegerSpan>,
}

fn pad32(id: &str) -> String {
    format!("{:0>32}", id.to_ascii_lowercase())
}

fn key_values(list: &Value) -> BTreeMap<String, Value> {
    list.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|kv| Some((kv["key"].as_str()?.to_owned(), kv["value"].clone())))
                .collect()
        })
        .unwrap_or_default()
}

impl JaegerTrace {
    /// Parses the body of `GET /api/traces/{id}` (`{"data": [trace]}`).
    pub fn parse(json: &Value) -> Result<JaegerTrace, String> {
        let trace = match json["data"].as_array().map(Vec::as_slice) {
            Some([trace]) => trace,
            _ => return Err(format!("not exactly one trace in {json}")),
        };
        let processes = trace["processes"]
            .as_object()
            .ok_or_else(|| format!("no processes in {trace}"))?;
        let mut spans = Vec::new();
        for s in trace["spans"].as_array().into_iter().flatten() {
            let process = &processes[s["processID"].as_str().unwrap_or_default()];
            let references = s["references"].as_array().cloned().unwrap_or_default();
            let parent = references
                .iter()
                .find(|r| r["refType"] == "CHILD_OF")
                .or_else(|| references.first())
                .and_then(|r| r["spanID"].as_str())
                .map(str::to_owned);
            spans.push(JaegerSpan {
                trace_id: pad32(s["traceID"].as_str().unwrap_or_default()),
                span_id: s["spanID"].as_str().unwrap_or_default().to_owned(),
                parent_span_id: parent,
                operation_name: s["operationName"].as_str().unwrap_or_default().to_owned(),
                service_name: process["serviceName"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                start_time_micros: s["startTime"].as_u64().unwrap_or_default(),
                duration_micros: s["duration"].as_u64().unwrap_or_default(),
                tags: key_values(&s["tags"]),
                process_tags: key_values(&process["tags"]),
                logs: s["logs"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|l| key_values(&l["fields"]))
                    .collect(),
                warnings: s["warnings"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|w| w.as_str().map(str::to_owned))
                    .collect(),
            });
        }
        Ok(JaegerTrace {
            trace_id: pad32(trace["traceID"].as_str().unwrap_or_default()),
            spans,
        })
    }

    /// The span `span_id`.
    pub fn by_id(&self, span_id: &str) -> Option<&JaegerSpan> {
        self.spans.iter().find(|s| s.span_id == span_id)
    }

    /// The one span of `service` named exactly `name`; panics with the dump otherwise.
    pub fn expect_exact(&self, service: &str, name: &str) -> &JaegerSpan {
        let found: Vec<_> = self
            .spans
            .iter()
            .filter(|s| s.service_name == service && s.operation_name == name)
            .collect();
        assert_eq!(
            found.len(),
            1,
            "one {service} span named {name:?} in Jaeger\n{}",
            self.dump()
        );
        found[0]
    }

    /// The same trace without the spans of `service` (e.g. a peer that reports to Jaeger by
    /// another path than the receiver it is compared with).
    pub fn without_service(&self, service: &str) -> JaegerTrace {
        JaegerTrace {
            trace_id: self.trace_id.clone(),
            spans: self
                .spans
                .iter()
                .filter(|s| s.service_name != service)
                .cloned()
                .collect(),
        }
    }

    /// The service names of the trace's spans, sorted and deduplicated.
    pub fn services(&self) -> Vec<&str> {
        let mut s: Vec<&str> = self.spans.iter().map(|s| s.service_name.as_str()).collect();
        s.sort();
        s.dedup();
        s
    }

    /// One line per span.
    pub fn dump(&self) -> String {
        let mut out = format!(
            "Jaeger trace {} ({} spans)",
            self.trace_id,
            self.spans.len()
        );
        for s in &self.spans {
            let _ = write!(out, "\n  {}", s.summary());
        }
        out
    }

    /// Asserts Jaeger holds exactly the tree `expected` (what an in-memory receiver decoded
    /// from the same exports): the same span ids and no others; for each span the same parent,
    /// operation name, service, start time (to the microsecond), `span.kind` tag, every
    /// attribute as a tag of the same value, `error=true` + `otel.status_code=ERROR` exactly
    /// when the status is ERROR (and no `error` tag otherwise), and each event as a log with
    /// `event` = its name and its attributes as fields. Panics naming the first difference.
    pub fn assert_same_as(&self, expected: &Trace) {
        let ctx = || format!("{}\nreceiver:\n{}", self.dump(), expected.dump());
        assert_eq!(self.trace_id, expected.trace_id(), "trace id\n{}", ctx());
        let mut ids: Vec<&str> = self.spans.iter().map(|s| s.span_id.as_str()).collect();
        let mut want: Vec<&str> = expected
            .spans()
            .iter()
            .map(|s| s.span_id.as_str())
            .collect();
        ids.sort();
        want.sort();
        assert_eq!(ids, want, "the same span ids\n{}", ctx());
        for e in expected.spans() {
            let j = self.by_id(&e.span_id).expect("checked above");
            let what = || format!("span {}\n{}", e.summary(), ctx());
            assert_eq!(j.trace_id, e.trace_id, "trace id of {}", what());
            assert_eq!(j.parent_span_id, e.parent_span_id, "parent of {}", what());
            assert_eq!(j.operation_name, e.name, "name of {}", what());
            assert_eq!(j.service_name, e.service_name, "service of {}", what());
            assert_eq!(
                j.start_time_micros,
                e.start_unix_nanos / 1000,
                "start time of {}",
                what()
            );
            let kind = match e.kind {
                SpanKind::Unspecified => None,
                k => Some(k.as_str()),
            };
            assert_eq!(j.tag_str("span.kind"), kind, "span.kind of {}", what());
            for (key, value) in &e.attributes {
                assert_eq!(
                    j.tags.get(key),
                    Some(&tag_value(value)),
                    "attribute {key} as a tag of {}",
                    what()
                );
            }
            match &e.status {
                Status::Error { message } => {
                    assert_eq!(j.tags.get("error"), Some(&Value::Bool(true)), "{}", what());
                    assert_eq!(j.tag_str("otel.status_code"), Some("ERROR"), "{}", what());
                    if !message.is_empty() {
                        assert_eq!(
                            j.tag_str("otel.status_description"),
                            Some(message.as_str()),
                            "{}",
                            what()
                        );
                    }
                }
                Status::Ok => {
                    assert_eq!(j.tags.get("error"), None, "{}", what());
                    assert_eq!(j.tag_str("otel.status_code"), Some("OK"), "{}", what());
                }
                Status::Unset => {
                    assert_eq!(j.tags.get("error"), None, "{}", what());
                    assert_eq!(j.tags.get("otel.status_code"), None, "{}", what());
                }
            }
            assert_eq!(j.logs.len(), e.events.len(), "events as logs of {}", what());
            for (log, event) in j.logs.iter().zip(&e.events) {
                assert_eq!(
                    log.get("event").and_then(Value::as_str),
                    Some(event.name.as_str()),
                    "event name of {}",
                    what()
                );
                for (key, value) in &event.attributes {
                    assert_eq!(
                        log.get(key),
                        Some(&tag_value(value)),
                        "event attribute {key} of {}",
                        what()
                    );
                }
            }
        }
    }
}

/// How Jaeger's JSON shows an OTLP attribute value as a tag value.
fn tag_value(value: &AttrValue) -> Value {
    match value {
        AttrValue::String(s) | AttrValue::Array(s) => Value::String(s.clone()),
        AttrValue::Int(i) => Value::from(*i),
        AttrValue::Double(d) => Value::from(*d),
        AttrValue::Bool(b) => Value::Bool(*b),
    }
}
