//! The load generator, every request carrying the same incoming trace in every format
//! (`traceparent`, `uber-trace-id`, `sentry-trace`, `baggage`), so any stack — whichever format
//! it reads — must continue it. Two modes:
//!
//! - **closed loop** (`tb-bench run`): a fixed number of requests in flight, each connection
//!   sending its next request when the previous answer arrives — the server's capacity;
//! - **open loop** (`tb-bench rate`, `--rate R`): request `i` is due at `start + i / R`
//!   ([`Schedule`]) whatever the server does. A pacer thread releases the due requests to the
//!   connections; latency is measured from the request's *intended* send time, so a server
//!   stall that delays the requests queued behind it counts for every one of them (no
//!   coordinated omission). The lag between intended and actual send is reported too: it is
//!   the pacer's own lateness plus the time every connection was busy.
//!
//! HTTP/1.1 is driven over raw keep-alive sockets with a pre-built request (a hyper client
//! costs about as much CPU per request as the server, and the load shares a core with the
//! receiver); gRPC over the `h2` crate that tonic itself uses, with a pre-encoded message.
//! Both run on a current-thread runtime: the load process is pinned to one core.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
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
    /// Open loop at this many requests per second for `duration`; `None`: closed loop.
    pub rate: Option<f64>,
}

/// The open-loop schedule: `total` requests, request `i` due `i / rate` seconds after the
/// start (rounded to the nanosecond).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Schedule {
    rate: f64,
    total: u64,
}

impl Schedule {
    /// `rate` requests per second for `duration`: `round(rate × duration)` requests.
    pub fn new(rate: f64, duration: Duration) -> Result<Schedule, String> {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(format!("bad request rate {rate}"));
        }
        let total = (rate * duration.as_secs_f64()).round() as u64;
        Ok(Schedule { rate, total })
    }

    /// Requests in the schedule.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// When request `i` is due, from the start.
    pub fn offset(&self, i: u64) -> Duration {
        Duration::from_nanos((i as f64 * 1e9 / self.rate).round() as u64)
    }

    /// How many requests are due `elapsed` after the start (those with `offset(i) <=
    /// elapsed`), at most [`Schedule::total`]. Consistent with [`Schedule::offset`] at the
    /// boundaries: the float estimate (`elapsed × rate`, which can land just below a whole
    /// number, or in principle just above one) is corrected against it in both directions.
    pub fn due_by(&self, elapsed: Duration) -> u64 {
        let mut n = ((elapsed.as_secs_f64() * self.rate).floor() as u64 + 1).min(self.total);
        while n > 0 && self.offset(n - 1) > elapsed {
            n -= 1;
        }
        while n < self.total && self.offset(n) <= elapsed {
            n += 1;
        }
        n
    }
}

/// The nearest-rank percentile (the smallest value with at least `q` of the values at or
/// below it) of `sorted` ascending values; 0 when empty. `q` in `0..=1`.
pub fn percentile(sorted: &[u32], q: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Latency of one open-loop request: from when it was due (`intended`), not from when it
/// was sent, so time spent waiting for a free connection behind a stalled request counts.
pub fn latency_from_intended(intended: Instant, done: Instant) -> Duration {
    done.saturating_duration_since(intended)
}

/// What one load run measured.
#[derive(Clone, Debug, Default)]
pub struct LoadResult {
    pub ok: u64,
    pub errors: u64,
    pub elapsed: Duration,
    /// Per-request latency, microseconds, sorted (open loop: from the intended send time).
    pub latencies_us: Vec<u32>,
    /// Open loop: per-request lag of the actual send behind the intended one, µs, sorted.
    pub lags_us: Vec<u32>,
    pub first_error: Option<String>,
}

impl LoadResult {
    /// Latency quantile `q` in `0..=1`, microseconds (nearest rank).
    pub fn quantile_us(&self, q: f64) -> f64 {
        f64::from(percentile(&self.latencies_us, q))
    }

    fn merge(&mut self, other: Worker) {
        self.ok += other.ok;
        self.errors += other.errors;
        self.latencies_us.extend(other.latencies_us);
        self.lags_us.extend(other.lags_us);
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
    /// Open loop: p99 of the send lag behind the schedule, µs (0 for a closed loop).
    pub lag_p99_us: f64,
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
            "lag_p99_us": self.lag_p99_us,
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
                lag_p99_us: num("lag_p99_us")?,
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
            lag_p99_us: f64::from(percentile(&self.lags_us, 0.99)),
            first_error: self.first_error.clone(),
        }
    }
}

#[derive(Default)]
struct Worker {
    ok: u64,
    errors: u64,
    latencies_us: Vec<u32>,
    lags_us: Vec<u32>,
    first_error: Option<String>,
}

fn micros(d: Duration) -> u32 {
    d.as_micros().min(u128::from(u32::MAX)) as u32
}

impl Worker {
    /// Records one request: sent at `sent`, due at `intended` (== `sent` in a closed loop).
    fn record(&mut self, intended: Instant, sent: Instant, outcome: Result<(), String>) {
        match outcome {
            Ok(()) => {
                self.ok += 1;
                self.latencies_us
                    .push(micros(latency_from_intended(intended, Instant::now())));
                if intended != sent {
                    self.lags_us
                        .push(micros(sent.saturating_duration_since(intended)));
                }
            }
            Err(e) => {
                self.errors += 1;
                self.first_error.get_or_insert(e);
            }
        }
    }
}

/// When each worker sends its next request.
#[derive(Clone)]
enum Pace {
    /// As soon as the previous answer arrived, until the deadline.
    Closed(Instant),
    /// When the pacer releases the next request of the schedule.
    Open(Arc<OpenLoop>),
}

/// The shared state of an open-loop run: the pacer adds one permit per due request (then one
/// per worker, to stop them); each permit a worker takes is the next ticket of the schedule.
struct OpenLoop {
    start: Instant,
    schedule: Schedule,
    permits: tokio::sync::Semaphore,
    next_ticket: AtomicU64,
}

impl Pace {
    /// The intended send time of this worker's next request; `None`: stop.
    async fn next(&self) -> Option<Instant> {
        match self {
            Pace::Closed(deadline) => {
                let now = Instant::now();
                (now < *deadline).then_some(now)
            }
            Pace::Open(open) => {
                open.permits.acquire().await.ok()?.forget();
                let ticket = open.next_ticket.fetch_add(1, Ordering::Relaxed);
                (ticket < open.schedule.total()).then(|| open.start + open.schedule.offset(ticket))
            }
        }
    }
}

/// The pacer (a thread of its own, so the schedule does not depend on the runtime's 1 ms
/// timer): releases each request when it is due, then one stop permit per worker. Waking per
/// request is bounded by the kernel's timer slack (~50 µs): at high rates one wake releases
/// several requests, each still timed from its own intended send time.
fn pace(open: &OpenLoop, workers: usize) {
    let total = open.schedule.total();
    let mut released = 0;
    while released < total {
        let elapsed = open.start.elapsed();
        let due = open.schedule.due_by(elapsed);
        if due > released {
            open.permits.add_permits((due - released) as usize);
            released = due;
        }
        if released < total {
            let next = open.schedule.offset(released);
            std::thread::sleep(next.saturating_sub(open.start.elapsed()));
        }
    }
    open.permits.add_permits(workers);
}

/// Runs the load on a current-thread runtime and returns the merged result.
pub fn run(cfg: &LoadConfig) -> LoadResult {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("load runtime");
    let workers = match cfg.proto {
        Proto::Http => cfg.conns,
        Proto::Grpc => cfg.conns * cfg.streams,
    };
    rt.block_on(async {
        // gRPC connections are set up before the clock starts, so the schedule (and the
        // measured time) covers requests only.
        let mut h2_clients = Vec::new();
        if cfg.proto == Proto::Grpc {
            for _ in 0..cfg.conns {
                h2_clients.push(h2_connect(cfg.addr).await);
            }
        }
        let started = Instant::now();
        let (pace, pacer) = match cfg.rate {
            None => (Pace::Closed(started + cfg.duration), None),
            Some(rate) => {
                let open = Arc::new(OpenLoop {
                    start: started,
                    schedule: Schedule::new(rate, cfg.duration)
                        .expect("rate checked by the caller"),
                    permits: tokio::sync::Semaphore::new(0),
                    next_ticket: AtomicU64::new(0),
                });
                let pacer = {
                    let open = open.clone();
                    std::thread::Builder::new()
                        .name("pacer".into())
                        .spawn(move || pace(&open, workers))
                        .expect("pacer thread")
                };
                (Pace::Open(open), Some(pacer))
            }
        };
        let mut tasks = Vec::new();
        match cfg.proto {
            Proto::Http => {
                let request: Bytes = http1_request(cfg).into();
                for _ in 0..cfg.conns {
                    tasks.push(tokio::spawn(http1_worker(
                        cfg.addr,
                        request.clone(),
                        pace.clone(),
                    )));
                }
            }
            Proto::Grpc => {
                let template = grpc_request(cfg);
                let body = grpc_body();
                for client in h2_clients {
                    match client {
                        Ok(client) => {
                            for _ in 0..cfg.streams {
                                tasks.push(tokio::spawn(grpc_worker(
                                    client.clone(),
                                    template.clone(),
                                    body.clone(),
                                    pace.clone(),
                                )));
                            }
                        }
                        Err(e) => {
                            // Its streams still take their share of the schedule, as errors.
                            for _ in 0..cfg.streams {
                                let (pace, e) = (pace.clone(), e.clone());
                                tasks.push(tokio::spawn(async move {
                                    let mut w = Worker::default();
                                    while let Some(intended) = pace.next().await {
                                        w.record(
                                            intended,
                                            intended,
                                            Err(format!("h2 connect: {e}")),
                                        );
                                        if matches!(pace, Pace::Closed(_)) {
                                            break;
                                        }
                                    }
                                    w
                                }));
                            }
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
        if let Some(pacer) = pacer {
            let _ = pacer.join();
        }
        result.latencies_us.sort_unstable();
        result.lags_us.sort_unstable();
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

async fn http1_worker(addr: SocketAddr, request: Bytes, pace: Pace) -> Worker {
    let mut w = Worker::default();
    let mut buf = vec![0u8; 16 * 1024];
    let mut stream: Option<TcpStream> = None;
    while let Some(intended) = pace.next().await {
        if stream.is_none() {
            match TcpStream::connect(addr).await {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    stream = Some(s);
                }
                Err(e) => {
                    w.record(intended, intended, Err(format!("connect: {e}")));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
        }
        let s = stream.as_mut().expect("connected above");
        let sent = Instant::now();
        let outcome = http1_exchange(s, &request, &mut buf).await;
        if outcome.is_err() {
            stream = None;
        }
        w.record(intended, sent, outcome);
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
    pace: Pace,
) -> Worker {
    let mut w = Worker::default();
    let mut broken: Option<String> = None;
    while let Some(intended) = pace.next().await {
        if let Some(e) = &broken {
            // An open loop keeps its schedule: the broken connection's tickets are errors.
            w.record(intended, intended, Err(e.clone()));
            continue;
        }
        let sent = Instant::now();
        let outcome = grpc_call(client.clone(), &template, body.clone()).await;
        if let Err(e) = &outcome {
            if e.starts_with("h2") {
                if matches!(pace, Pace::Closed(_)) {
                    w.record(intended, sent, outcome);
                    break;
                }
                broken = Some(e.clone());
            }
        }
        w.record(intended, sent, outcome);
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
    fn schedule_counts_and_offsets() {
        let s = Schedule::new(1000.0, Duration::from_secs(3)).unwrap();
        assert_eq!(s.total(), 3000);
        assert_eq!(s.offset(0), Duration::ZERO);
        assert_eq!(s.offset(1), Duration::from_millis(1));
        assert_eq!(s.offset(2999), Duration::from_millis(2999));
        assert_eq!(s.due_by(Duration::ZERO), 1);
        assert_eq!(s.due_by(Duration::from_micros(999)), 1);
        assert_eq!(s.due_by(Duration::from_millis(1)), 2);
        assert_eq!(s.due_by(Duration::from_secs(60)), 3000);
        assert_eq!(
            Schedule::new(2.5, Duration::from_millis(1500))
                .unwrap()
                .total(),
            4
        );
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(Schedule::new(bad, Duration::from_secs(1)).is_err(), "{bad}");
        }
    }

    /// At a rate whose interval is not a whole number of nanoseconds, `due_by` agrees with
    /// `offset` at and around every boundary.
    #[test]
    fn due_by_matches_offsets_at_the_boundaries() {
        let s = Schedule::new(3.0, Duration::from_secs(2)).unwrap();
        assert_eq!(s.total(), 6);
        assert_eq!(s.offset(1), Duration::from_nanos(333_333_333));
        assert_eq!(s.offset(2), Duration::from_nanos(666_666_667));
        let s = Schedule::new(7_777.7, Duration::from_millis(50)).unwrap();
        for i in 0..s.total() {
            let at = s.offset(i);
            assert_eq!(s.due_by(at), i + 1, "at offset({i})");
            if i > 0 {
                assert_eq!(
                    s.due_by(at - Duration::from_nanos(1)),
                    i,
                    "just before offset({i})"
                );
            }
        }
    }

    #[test]
    fn percentile_is_nearest_rank() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.50), 50);
        assert_eq!(percentile(&v, 0.99), 99);
        assert_eq!(percentile(&v, 1.0), 100);
        assert_eq!(percentile(&v, 0.0), 1);
        assert_eq!(percentile(&[7], 0.99), 7);
        assert_eq!(percentile(&[], 0.5), 0);
        // 1000 values: p99 is the 990th.
        let v: Vec<u32> = (1..=1000).collect();
        assert_eq!(percentile(&v, 0.99), 990);
    }

    /// One connection at 100 req/s for 10 s, 1 ms per request, except that request 500
    /// stalls for 200 ms. The 22 requests due during the stall wait for the connection; timed
    /// from their intended send time they take 191, 182, …, 2 ms, and p99 (the 990th of 1000)
    /// is the 13th slowest: 110 ms. Timed from the actual send (a closed loop's view, where
    /// the queued requests are simply sent later) p99 would be 1 ms: the stall hides.
    #[test]
    fn open_loop_latency_counts_the_queue_behind_a_stall() {
        let schedule = Schedule::new(100.0, Duration::from_secs(10)).unwrap();
        let base = Instant::now();
        let mut free_at = base;
        let (mut from_intended, mut from_sent) = (Vec::new(), Vec::new());
        for i in 0..schedule.total() {
            let intended = base + schedule.offset(i);
            let sent = intended.max(free_at);
            let service = Duration::from_millis(if i == 500 { 200 } else { 1 });
            let done = sent + service;
            free_at = done;
            from_intended.push(micros(latency_from_intended(intended, done)));
            from_sent.push(micros(done - sent));
        }
        from_intended.sort_unstable();
        from_sent.sort_unstable();
        assert_eq!(from_intended.iter().filter(|&&l| l > 1000).count(), 23);
        assert_eq!(percentile(&from_intended, 0.99), 110_000);
        assert_eq!(percentile(&from_intended, 1.0), 200_000);
        assert_eq!(percentile(&from_intended, 0.50), 1000);
        assert_eq!(percentile(&from_sent, 0.99), 1000);
    }

    #[test]
    fn summary_json_round_trip() {
        let s = Summary {
            ok: 3000,
            errors: 0,
            elapsed: Duration::from_millis(3001),
            p50_us: 41.0,
            p99_us: 180.0,
            lag_p99_us: 55.0,
            first_error: None,
        };
        assert_eq!(Summary::from_json(&s.to_json(12.5)), Ok((s, 12.5)));
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
