//! The collector tier of docs/scaling.md as real processes on loopback: tracebridge's collector
//! distribution (`otelcol-tracebridge`, a front tier and sampling collectors), each a child
//! process stopped by its pid (also when a test fails), plus readers for the collectors'
//! Prometheus metrics and the trees of the traces Jaeger stores. Jaeger itself (on Badger,
//! stopped and restarted) is testkit's `tracebridge_testkit::jaeger::Jaeger`.
//!
//! Written for tests/scale.rs.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{File, OpenOptions};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tracebridge_testkit::jaeger::JaegerSpan;

/// The repository root (configs live in deploy/, binaries in target/interop/).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// A binary built by `scripts/<script>`: `$var` when set, else `<repo>/target/interop/<name>`.
/// Fails with the command that builds it when it is missing (never skips).
pub fn interop_binary(var: &str, name: &str, script: &str) -> PathBuf {
    let path = std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/interop").join(name));
    assert!(
        path.is_file(),
        "{name} not found at {}: run `bash scripts/{script}` (scripts/test.sh does), or set {var}",
        path.display()
    );
    path
}

/// A child process started from a fixed command line, environment and log file (appended to,
/// so a restart keeps the first run's output). Dropping it kills the pid if it still runs.
pub struct Proc {
    pub name: String,
    exe: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    pub log: PathBuf,
    child: Option<Child>,
}

impl Proc {
    /// Starts `exe args` with `env` added, stdout + stderr to `<log_dir>/<name>.log`.
    pub fn spawn(
        name: &str,
        exe: &Path,
        args: &[String],
        env: &[(String, String)],
        log_dir: &Path,
    ) -> Proc {
        let mut proc = Proc {
            name: name.to_owned(),
            exe: exe.to_path_buf(),
            args: args.to_vec(),
            env: env.to_vec(),
            log: log_dir.join(format!("{name}.log")),
            child: None,
        };
        proc.start();
        proc
    }

    fn start(&mut self) {
        assert!(self.child.is_none(), "{} already runs", self.name);
        let out: File = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap_or_else(|e| panic!("open {}: {e}", self.log.display()));
        let err = out.try_clone().unwrap();
        let child = Command::new(&self.exe)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("start {} ({}): {e}", self.name, self.exe.display()));
        self.child = Some(child);
    }

    /// Starts the same command again after [`Proc::kill`] or [`Proc::terminate`].
    pub fn restart(&mut self) {
        self.start();
    }

    /// The pid of the running process.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Fails, showing the log's tail, when the process has exited.
    pub fn check_running(&mut self) {
        if let Some(status) = self
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
        {
            panic!("{} exited ({status}):\n{}", self.name, self.tail(30));
        }
    }

    /// Waits until every address accepts TCP connections (the process listens), failing with
    /// its log when it exits or does not listen within `timeout`.
    pub fn wait_listening(&mut self, addrs: &[SocketAddr], timeout: Duration) {
        let deadline = Instant::now() + timeout;
        for addr in addrs {
            loop {
                self.check_running();
                if TcpStream::connect_timeout(addr, Duration::from_millis(200)).is_ok() {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{} did not listen on {addr} within {}s:\n{}",
                    self.name,
                    timeout.as_secs(),
                    self.tail(30)
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// SIGKILL (by pid) and reap: the crash case, nothing flushed.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM (by pid) and wait for a clean exit (fails after `timeout` or on a bad status).
    pub fn terminate(&mut self, timeout: Duration) {
        let mut child = self.child.take().expect("running");
        mesh::process::signal(child.id(), "TERM").expect("send SIGTERM");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "{} exited {status} on SIGTERM:\n{}",
                    self.name,
                    self.tail(30)
                );
                return;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{} still ran {}s after SIGTERM:\n{}",
                    self.name,
                    timeout.as_secs(),
                    self.tail(30)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The last `n` lines of the log.
    pub fn tail(&self, n: usize) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The collectors' own metrics, Prometheus text from `http://{addr}/metrics`.
pub async fn scrape(client: &reqwest::Client, addr: SocketAddr) -> Metrics {
    let text = client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("metrics at {addr}: {e}"))
        .text()
        .await
        .unwrap();
    Metrics(text)
}

/// Prometheus text exposition.
pub struct Metrics(pub String);

impl Metrics {
    /// The sum of every sample of `name` (exactly, or with a `_total` suffix) whose labels
    /// contain each of `labels` (`key="value"` strings).
    pub fn sum(&self, name: &str, labels: &[&str]) -> f64 {
        self.0
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (series, value) = l.rsplit_once(' ')?;
                let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
                let total = format!("{name}_total");
                if metric != name && metric != total {
                    return None;
                }
                if !labels.iter().all(|want| rest.contains(want)) {
                    return None;
                }
                value.parse::<f64>().ok()
            })
            .sum()
    }

    /// The lines naming `needle` (for failure messages and the test's report).
    pub fn grep(&self, needle: &str) -> String {
        self.0
            .lines()
            .filter(|l| !l.starts_with('#') && l.contains(needle))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Which spans reached a sampling collector: its debug exporter's `normal` output (one line
/// per span: `name trace_id span_id attrs…`) parsed into trace id → distinct span ids.
pub fn arrivals(path: &Path) -> HashMap<String, BTreeSet<String>> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut out: HashMap<String, BTreeSet<String>> = HashMap::new();
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if let Some(w) = words.windows(2).find(|w| hex(w[0], 32) && hex(w[1], 16)) {
            out.entry(w[0].to_owned())
                .or_default()
                .insert(w[1].to_owned());
        }
    }
    out
}

/// The expected tree of one mesh request, as (service, operation, parent's service and
/// operation) triples; `failing` = `?fail=c` (c's gRPC handler fails before its trace3).
pub fn expected_tree(failing: bool) -> BTreeMap<(String, String, String), usize> {
    let a = "service-a";
    let b = "service-b";
    let c = "service-c";
    let mut edges = vec![
        (a, "GET /trace", "-"),
        (a, "trace1", "service-a GET /trace"),
        (a, "trace2", "service-a trace1"),
        (a, "ping.PingB/Ping", "service-a GET /trace"),
        (a, "ping.PingC/Ping", "service-a GET /trace"),
        (b, "ping.PingB/Ping", "service-a ping.PingB/Ping"),
        (b, "GET", "service-b ping.PingB/Ping"),
        (c, "GET /work", "service-b GET"),
        (c, "trace3", "service-c GET /work"),
        (c, "ping.PingC/Ping", "service-a ping.PingC/Ping"),
    ];
    if !failing {
        edges.push((c, "trace3", "service-c ping.PingC/Ping"));
    }
    let mut tree = BTreeMap::new();
    for (s, op, parent) in edges {
        *tree
            .entry((s.to_owned(), op.to_owned(), parent.to_owned()))
            .or_insert(0) += 1;
    }
    tree
}

/// The trace's actual tree in the same form (a parent missing from the trace shows as
/// `missing <id>`, which never matches an expected edge).
pub fn actual_tree(spans: &[JaegerSpan]) -> BTreeMap<(String, String, String), usize> {
    let by_id: HashMap<&str, &JaegerSpan> = spans.iter().map(|s| (s.span_id.as_str(), s)).collect();
    let mut tree = BTreeMap::new();
    for s in spans {
        let parent = match &s.parent_span_id {
            None => "-".to_owned(),
            Some(p) => match by_id.get(p.as_str()) {
                Some(ps) => format!("{} {}", ps.service_name, ps.operation_name),
                None => format!("missing {p}"),
            },
        };
        *tree
            .entry((s.service_name.clone(), s.operation_name.clone(), parent))
            .or_insert(0) += 1;
    }
    tree
}

/// What a collector's log says it dropped for `endpoint`: the sum of `dropped_items` over its
/// `Exporting failed. Dropping data.` lines naming that endpoint. The loadbalancing exporter's
/// per-endpoint exporters (v0.161.0) report their queue's drops only there, not in metrics.
pub fn dropped_for(log: &Path, endpoint: &str) -> u64 {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let needle = format!("\"endpoint\": \"{endpoint}\"");
    text.lines()
        .filter(|l| l.contains("Dropping data") && l.contains(&needle))
        .filter_map(|l| {
            let rest = &l[l.find("\"dropped_items\": ")? + "\"dropped_items\": ".len()..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse::<u64>().ok()
        })
        .sum()
}

/// CPU time (user + system, seconds) the process `pid` has used so far, from /proc/<pid>/stat.
/// For the capacity figure of docs/scaling.md: spans per CPU-second = spans/s per core,
/// whatever else loads the machine.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/<pid>/stat");
    // Fields after the command name (which is in parentheses and may hold spaces):
    // state is field 3, utime field 14, stime field 15.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / clock_ticks()
}

fn clock_ticks() -> f64 {
    let out = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .expect("getconf CLK_TCK");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("CLK_TCK")
}

/// The 1-minute load average (how busy the machine was while a figure was measured).
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .unwrap_or("?")
        .to_owned()
}
