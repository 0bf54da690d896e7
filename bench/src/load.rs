//! The load generator: closed loop, a fixed number of requests in flight, every request
//! carrying the same incoming trace in every format (`traceparent`, `uber-trace-id`,
//! `sentry-trace`, `baggage`), so any stack — whichever format it reads — must continue it.
//!
//! HTTP/1.1 is driven over raw keep-alive sockets with a pre-built request (a hyper client
//! costs about as much CPU per request as the server, and the load shares a core with the
//! receiver); gRPC over the `h2` crate that tonic itself uses, with a pre-encoded message.
//! Both run on a current-thread runtime: the load process is pinned to one core.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::variant::Proto;

/// The incoming trace every request continues.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incoming {
    /// 32 lower-case hex.
    pub trace_id: String,
    /// 16 lower-case hex.
    pub span_id: String,
}

impl Incoming {
    /// A fresh trace per run, so the receiver can tell runs apart.
    pub fn fresh(run: u64) -> Incoming {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            | 1;
        Incoming {
            trace_id: format!(
                "{nanos:016x}{:016x}",
                run.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1
            ),
            span_id: format!("{:016x}", nanos.rotate_left(17) ^ run | 1),
        }
    }

    /// The trace headers every request carries, all naming the same parent.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let (t, s) = (&self.trace_id, &self.span_id);
        vec![
            ("traceparent", format!("00-{t}-{s}-01")),
            ("uber-trace-id", format!("{t}:{s}:0:1")),
            ("sentry-trace", format!("{t}-{s}-1")),
            (
                "baggage",
                format!(
                    "sentry-trace_id={t},sentry-public_key=benchkey,sentry-sample_rate=1,\
                     sentry-sampled=true,sentry-environment=bench,user.tier=gold"
                ),
            ),
        ]
    }
}

/// What one load run does.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    pub proto: Proto,
    pub addr: SocketAddr,
    /// HTTP path (`/hello`, or `/trace` for the mesh).
    pub path: String,
    pub duration: Duration,
    /// Connections.
    pub conns: usize,
    /// Concurrent streams per connection (gRPC; HTTP/1.1 has one).
    pub streams: usize,
    pub incoming: Incoming,
}

/// What one load run measured.
#[derive(Clone, Debug, Default)]
pub struct LoadResult {
    pub ok: u64,
    pub errors: u64,
    pub elapsed: Duration,
    /// Per-request latency, microseconds, sorted.
    pub latencies_us: Vec<u32>,
    pub first_error: Option<String>,
}

impl LoadResult {
    /// Latency quantile `q` in `0..=1`, microseconds.
    pub fn quantile_us(&self, q: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let i = ((self.latencies_us.len() - 1) as f64 * q).round() as usize;
        f64::from(self.latencies_us[i])
    }

    fn merge(&mut self, other: Worker) {
        self.ok += other.ok;
        self.errors += other.errors;
        self.latencies_us.extend(other.latencies_us);
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// What the load process reports to the runner (one JSON line on stdout).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    pub ok: u64,
    pub errors: u64,
    pub elapsed: Duration,
    pub p50_us: f64,
    pub p99_us: f64,
    pub first_error: Option<String>,
}

impl Summary {
    pub fn rps(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    /// The JSON line, with the load process's own CPU use (percent of one core).
    pub fn to_json(&self, cpu_pct: f64) -> String {
        serde_json::json!({
            "ok": self.ok,
            "errors": self.errors,
            "elapsed_s": self.elapsed.as_secs_f64(),
            "p50_us": self.p50_us,
            "p99_us": self.p99_us,
            "first_error": self.first_error,
            "cpu_pct": cpu_pct,
        })
        .to_string()
    }

    /// Parses [`Summary::to_json`]'s line: the summary and the CPU percentage.
    pub fn from_json(line: &str) -> Result<(Summary, f64), String> {
        let v: serde_json::Value =
            serde_json::from_str(line.trim()).map_err(|e| format!("load output {line:?}: {e}"))?;
        let num = |k: &str| {
            v[k].as_f64()
                .ok_or_else(|| format!("load output lacks {k}: {line}"))
        };
        Ok((
            Summary {
                ok: num("ok")? as u64,
                errors: num("errors")? as u64,
                elapsed: Duration::from_secs_f64(num("elapsed_s")?),
                p50_us: num("p50_us")?,
                p99_us: num("p99_us")?,
                first_error: v["first_error"].as_str().map(str::to_owned),
            },
            num("cpu_pct")?,
        ))
    }
}

impl LoadResult {
    pub fn summary(&self) -> Summary {
        Summary {
            ok: self.ok,
            errors: self.errors,
            elapsed: self.elapsed,
            p50_us: self.quantile_us(0.50),
            p99_us: self.quantile_us(0.99),
            first_error: self.first_error.clone(),
        }
    }
}

#[derive(Default)]
struct Worker {
    ok: u64,
    errors: u64,
    latencies_us: Vec<u32>,
    first_error: Option<String>,
}

impl Worker {
    fn record(&mut self, started: Instant, outcome: Result<(), String>) {
        match outcome {
            Ok(()) => {
                self.ok += 1;
                self.latencies_us
                    .push(started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
            }
            Err(e) => {
                self.errors += 1;
                self.first_error.get_or_insert(e);
            }
        }
    }
}

/// Runs the load on a current-thread runtime and returns the merged result.
pub fn run(cfg: &LoadConfig) -> LoadResult {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("load runtime");
    rt.block_on(async {
        let started = Instant::now();
        let deadline = started + cfg.duration;
        let mut tasks = Vec::new();
        match cfg.proto {
            Proto::Http => {
                let request: Bytes = http1_request(cfg).into();
                for _ in 0..cfg.conns {
                    tasks.push(tokio::spawn(http1_worker(
                        cfg.addr,
                        request.clone(),
                        deadline,
                    )));
                }
            }
            Proto::Grpc => {
                let template = grpc_request(cfg);
                let body = grpc_body();
                for _ in 0..cfg.conns {
                    match h2_connect(cfg.addr).await {
                        Ok(client) => {
                            for _ in 0..cfg.streams {
                                tasks.push(tokio::spawn(grpc_worker(
                                    client.clone(),
                                    template.clone(),
                                    body.clone(),
                                    deadline,
                                )));
                            }
                        }
                        Err(e) => {
                            tasks.push(tokio::spawn(async move {
                                Worker {
                                    errors: 1,
                                    first_error: Some(format!("h2 connect: {e}")),
                                    ..Worker::default()
                                }
                            }));
                        }
                    }
                }
            }
        }
        let mut result = LoadResult::default();
        for t in tasks {
            if let Ok(w) = t.await {
                result.merge(w);
            }
        }
        result.elapsed = started.elapsed();
        result.latencies_us.sort_unstable();
        result
    })
}

fn http1_request(cfg: &LoadConfig) -> Vec<u8> {
    let mut req = format!(
        "GET {} HTTP/1.1\r\nhost: {}\r\nuser-agent: tb-bench/0.1\r\naccept: */*\r\n",
        cfg.path, cfg.addr
    );
    for (name, value) in cfg.incoming.headers() {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    req.push_str("\r\n");
    req.into_bytes()
}

async fn http1_worker(addr: SocketAddr, request: Bytes, deadline: Instant) -> Worker {
    let mut w = Worker::default();
    let mut buf = vec![0u8; 16 * 1024];
    let mut stream: Option<TcpStream> = None;
    while Instant::now() < deadline {
        if stream.is_none() {
            match TcpStream::connect(addr).await {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    stream = Some(s);
                }
                Err(e) => {
                    w.record(Instant::now(), Err(format!("connect: {e}")));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
        }
        let s = stream.as_mut().expect("connected above");
        let started = Instant::now();
        let outcome = http1_exchange(s, &request, &mut buf).await;
        if outcome.is_err() {
            stream = None;
        }
        w.record(started, outcome);
    }
    w
}

/// Writes one request and reads one response (Content-Length or chunked); `Err` unless 200.
async fn http1_exchange(
    s: &mut TcpStream,
    request: &[u8],
    buf: &mut Vec<u8>,
) -> Result<(), String> {
    s.write_all(request)
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut len = 0;
    loop {
        if len == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        let n = s
            .read(&mut buf[len..])
            .await
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("connection closed".into());
        }
        len += n;
        if let Some(done) = response_complete(&buf[..len])? {
            if done != len {
                return Err("bytes after the response (pipelining is not used)".into());
            }
            let status = &buf[9..12];
            return if status == b"200" {
                Ok(())
            } else {
                Err(format!("HTTP status {}", String::from_utf8_lossy(status)))
            };
        }
    }
}

/// `Some(total length)` once `data` holds a whole response.
fn response_complete(data: &[u8]) -> Result<Option<usize>, String> {
    let Some(head_end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let body_start = head_end + 4;
    let head = &data[..head_end];
    for line in head.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if name.eq_ignore_ascii_case(b"content-length") {
            let n: usize = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.parse().ok())
                .ok_or("bad content-length")?;
            return Ok((data.len() >= body_start + n).then_some(body_start + n));
        }
        if name.eq_ignore_ascii_case(b"transfer-encoding") && value.eq_ignore_ascii_case(b"chunked")
        {
            return Ok(data[body_start..]
                .ends_with(b"0\r\n\r\n")
                .then_some(data.len()));
        }
    }
    Ok(Some(body_start))
}

type H2Client = h2::client::SendRequest<Bytes>;

async fn h2_connect(addr: SocketAddr) -> Result<H2Client, String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    let (client, connection) = h2::client::Builder::new()
        .initial_window_size(1 << 20)
        .handshake(tcp)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

fn grpc_request(cfg: &LoadConfig) -> http::Request<()> {
    let mut builder = http::Request::builder()
        .method(http::Method::POST)
        .uri(format!("http://{}/ping.PingC/Ping", cfg.addr))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("user-agent", "tb-bench/0.1");
    for (name, value) in cfg.incoming.headers() {
        builder = builder.header(name, value);
    }
    builder.body(()).expect("valid request")
}

/// A length-prefixed `PingRequest { from: "load" }`.
fn grpc_body() -> Bytes {
    use prost::Message;
    let msg = ping_proto::PingRequest {
        from: "load".into(),
        fail: false,
    }
    .encode_to_vec();
    let mut framed = Vec::with_capacity(5 + msg.len());
    framed.push(0);
    framed.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    framed.extend_from_slice(&msg);
    framed.into()
}

async fn grpc_worker(
    client: H2Client,
    template: http::Request<()>,
    body: Bytes,
    deadline: Instant,
) -> Worker {
    let mut w = Worker::default();
    while Instant::now() < deadline {
        let started = Instant::now();
        let outcome = grpc_call(client.clone(), &template, body.clone()).await;
        let fatal = outcome.as_ref().is_err_and(|e| e.starts_with("h2"));
        w.record(started, outcome);
        if fatal {
            break;
        }
    }
    w
}

async fn grpc_call(
    client: H2Client,
    template: &http::Request<()>,
    body: Bytes,
) -> Result<(), String> {
    let mut client = client.ready().await.map_err(|e| format!("h2 ready: {e}"))?;
    let mut req = http::Request::new(());
    *req.method_mut() = template.method().clone();
    *req.uri_mut() = template.uri().clone();
    *req.headers_mut() = template.headers().clone();
    let (response, mut send) = client
        .send_request(req, false)
        .map_err(|e| format!("h2 send: {e}"))?;
    send.send_data(body, true)
        .map_err(|e| format!("h2 data: {e}"))?;
    let response = response.await.map_err(|e| format!("h2 response: {e}"))?;
    let (parts, mut body) = response.into_parts();
    if parts.status != http::StatusCode::OK {
        return Err(format!("HTTP status {}", parts.status));
    }
    while let Some(chunk) = body.data().await {
        let chunk = chunk.map_err(|e| format!("h2 body: {e}"))?;
        let _ = body.flow_control().release_capacity(chunk.len());
    }
    let trailers = body
        .trailers()
        .await
        .map_err(|e| format!("h2 trailers: {e}"))?;
    let status = parts
        .headers
        .get("grpc-status")
        .or_else(|| trailers.as_ref().and_then(|t| t.get("grpc-status")));
    match status.map(http::HeaderValue::as_bytes) {
        Some(b"0") => Ok(()),
        other => Err(format!("grpc-status {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_framing() {
        let cl = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
        assert_eq!(response_complete(cl), Ok(Some(cl.len())));
        assert_eq!(response_complete(&cl[..cl.len() - 1]), Ok(None));
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n";
        assert_eq!(response_complete(chunked), Ok(Some(chunked.len())));
        assert_eq!(response_complete(&chunked[..chunked.len() - 2]), Ok(None));
        assert_eq!(response_complete(b"HTTP/1.1 200 OK\r\n"), Ok(None));
    }

    #[test]
    fn every_format_names_the_same_parent() {
        let inc = Incoming::fresh(7);
        assert_eq!(inc.trace_id.len(), 32);
        assert_eq!(inc.span_id.len(), 16);
        let h = inc.headers();
        assert_eq!(h[0].1, format!("00-{}-{}-01", inc.trace_id, inc.span_id));
        assert_eq!(h[1].1, format!("{}:{}:0:1", inc.trace_id, inc.span_id));
        assert_eq!(h[2].1, format!("{}-{}-1", inc.trace_id, inc.span_id));
        assert_ne!(Incoming::fresh(8).trace_id, inc.trace_id);
    }
}
