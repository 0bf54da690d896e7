//! The runner: starts the receivers, runs every variant against its bare baseline in
//! interleaved rounds (bare, variant, bare, variant …), checks at the receivers that every
//! traced variant continued the incoming trace, and prints the markdown table.
//!
//! Each run is a fresh server process pinned to the server core, a warm-up load, then the
//! measured load (a separate process on the load core, where this runner and its receivers
//! also live). Server CPU time comes from `/proc/<pid>/stat` around the measured load; RSS is
//! read right after it. Then SIGTERM: the server flushes its spans and exits, and the receiver
//! must hold exactly one SERVER span per request, each a child of the incoming span.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tracebridge_testkit::{OtlpReceiver, SentryReceiver, SpanKind};

use crate::load::{Incoming, Summary};
use crate::procfs;
use crate::variant::{Expect, Proto, Variant};

/// Command-line options of `tb-bench run`.
#[derive(Clone, Debug)]
pub struct Options {
    pub rounds: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub conns: usize,
    pub grpc_conns: usize,
    pub streams: usize,
    pub variants: Vec<Variant>,
    pub mesh: bool,
    pub mesh_rounds: usize,
    pub server_cpu: Option<usize>,
    pub load_cpu: Option<usize>,
    pub out: Option<PathBuf>,
}

impl Options {
    pub fn full() -> Options {
        Options {
            rounds: 5,
            duration: Duration::from_secs(10),
            warmup: Duration::from_secs(1),
            conns: 32,
            grpc_conns: 4,
            streams: 8,
            variants: Variant::ALL.into_iter().filter(|v| !v.is_bare()).collect(),
            mesh: true,
            mesh_rounds: 5,
            server_cpu: Some(0),
            load_cpu: Some(1),
            out: None,
        }
    }

    pub fn quick() -> Options {
        Options {
            rounds: 2,
            duration: Duration::from_secs(2),
            warmup: Duration::from_millis(300),
            mesh_rounds: 2,
            ..Options::full()
        }
    }
}

/// One measured run of one server.
#[derive(Clone, Debug)]
pub(crate) struct Sample {
    pub(crate) rps: f64,
    pub(crate) p50_us: f64,
    pub(crate) p99_us: f64,
    pub(crate) cpu_us_per_req: f64,
    pub(crate) server_cpu_pct: f64,
    pub(crate) load_cpu_pct: f64,
    pub(crate) rss: u64,
    /// Requests the receiver confirmed / requests served (1.0 for OTLP variants, checked).
    delivered: f64,
}

pub(crate) struct Harness {
    pub(crate) exe: PathBuf,
    pub(crate) opts: Options,
    pub(crate) rt: tokio::runtime::Runtime,
    pub(crate) otlp: OtlpReceiver,
    pub(crate) sentry: SentryReceiver,
    pub(crate) runs: u64,
    log_dir: PathBuf,
    /// Where the servers export instead of the testkit receiver's gRPC endpoint: (endpoint,
    /// `OTEL_EXPORTER_OTLP_PROTOCOL`). `tb-bench rate` points them at its span counter.
    pub(crate) export_to: Option<(String, &'static str)>,
}

/// One load-generator run (see [`Harness::load`]).
pub(crate) struct LoadRun<'a> {
    pub(crate) proto: Proto,
    pub(crate) addr: SocketAddr,
    pub(crate) path: &'a str,
    pub(crate) duration: Duration,
    pub(crate) conns: usize,
    pub(crate) incoming: &'a Incoming,
    /// Open loop at this rate (req/s); `None`: closed loop.
    pub(crate) rate: Option<f64>,
}

/// Runs the whole benchmark and prints the report; `Err` when a check fails.
pub fn run(opts: Options) -> Result<String, String> {
    let mut h = Harness::new(opts)?;
    let mut samples: HashMap<&'static str, Vec<Sample>> = HashMap::new();
    let mut ratios: HashMap<&'static str, Vec<(f64, f64)>> = HashMap::new();
    let variants = h.opts.variants.clone();
    for round in 1..=h.opts.rounds {
        for &variant in &variants {
            let bare = variant.baseline();
            let b = h.measure(bare)?;
            let v = h.measure(variant)?;
            eprintln!(
                "round {round}: {:<28} {:>9.0} req/s  vs {:<10} {:>9.0} req/s  ratio {:.3}  cpu {:.1} vs {:.1} µs/req",
                variant.name(),
                v.rps,
                bare.name(),
                b.rps,
                v.rps / b.rps,
                v.cpu_us_per_req,
                b.cpu_us_per_req
            );
            ratios
                .entry(variant.name())
                .or_default()
                .push((v.rps / b.rps, v.p99_us / b.p99_us));
            samples.entry(bare.name()).or_default().push(b);
            samples.entry(variant.name()).or_default().push(v);
        }
    }

    let mut report = String::new();
    let _ = writeln!(
        report,
        "| variant | req/s (median) | ratio to bare (median) | p50 µs | p99 µs | p99 ratio | server CPU µs/req | server CPU % | load CPU % | RSS after load MiB | RSS − bare MiB | trace check |"
    );
    let _ = writeln!(
        report,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    );
    for variant in Variant::ALL {
        let Some(s) = samples.get(variant.name()) else {
            continue;
        };
        let bare_rss = samples
            .get(variant.baseline().name())
            .map(|b| median(b.iter().map(|x| x.rss as f64)))
            .unwrap_or(0.0);
        let rss = median(s.iter().map(|x| x.rss as f64));
        let (ratio, p99_ratio, drss, check) = if variant.is_bare() {
            (
                "1 (baseline)".to_owned(),
                "1".to_owned(),
                "0".to_owned(),
                "no spans (checked)".to_owned(),
            )
        } else {
            let r = &ratios[variant.name()];
            let check = match variant.expect() {
                Expect::OtlpSpanPerRequest => format!(
                    "1 SERVER span/request, parent = incoming ✓; {:.0}% exported (rest dropped by the SDK's full queue, counted)",
                    100.0 * median(s.iter().map(|x| x.delivered))
                ),
                Expect::SentryTransactions => format!(
                    "transactions continue the trace ✓; {:.0}% delivered",
                    100.0 * median(s.iter().map(|x| x.delivered))
                ),
                Expect::Nothing => String::new(),
            };
            (
                format!("{:.3}", median(r.iter().map(|x| x.0))),
                format!("{:.2}", median(r.iter().map(|x| x.1))),
                format!("{:+.1}", (rss - bare_rss) / MIB),
                check,
            )
        };
        let _ = writeln!(
            report,
            "| {} | {:.0} | {} | {:.0} | {:.0} | {} | {:.1} | {:.0} | {:.0} | {:.1} | {} | {} |",
            variant.name(),
            median(s.iter().map(|x| x.rps)),
            ratio,
            median(s.iter().map(|x| x.p50_us)),
            median(s.iter().map(|x| x.p99_us)),
            p99_ratio,
            median(s.iter().map(|x| x.cpu_us_per_req)),
            median(s.iter().map(|x| x.server_cpu_pct)),
            median(s.iter().map(|x| x.load_cpu_pct)),
            rss / MIB,
            drss,
            check
        );
    }

    if h.opts.mesh {
        report.push('\n');
        report.push_str(&h.mesh()?);
    }
    h.remove_logs();
    Ok(report)
}

/// The SDK's default `OTEL_BSP_MAX_QUEUE_SIZE`.
const SDK_QUEUE: usize = 2048;

pub(crate) const MIB: f64 = 1024.0 * 1024.0;

pub(crate) fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

pub(crate) fn pin(pid: u32, cpu: usize) -> Result<(), String> {
    let status = Command::new("taskset")
        .args(["-pc", &cpu.to_string(), &pid.to_string()])
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("taskset: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("taskset -pc {cpu} {pid} failed"))
    }
}

pub(crate) fn free_addr() -> Result<SocketAddr, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    l.local_addr().map_err(|e| e.to_string())
}

pub(crate) fn wait_listening(
    addr: SocketAddr,
    child: &mut Child,
    what: &str,
) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("{what} exited before listening: {status}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(format!("{what} did not listen on {addr} within 20 s"))
}

/// SIGTERM, then wait (the server flushes its spans); SIGKILL after `grace`.
pub(crate) fn stop(child: &mut Child, grace: Duration, what: &str) -> Result<(), String> {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + grace;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("{what} exited with {status}")),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{what} did not exit within {grace:?} of SIGTERM"));
            }
        }
    }
}

impl Harness {
    /// Pins this process to the load core, starts the receivers (on this process's runtime)
    /// and the log directory.
    pub(crate) fn new(opts: Options) -> Result<Harness, String> {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut opts = opts;
        if cpus < 2 {
            eprintln!("warning: fewer than 2 CPUs: server and load are not pinned apart");
            opts.server_cpu = None;
            opts.load_cpu = None;
        }
        if let Some(cpu) = opts.load_cpu {
            // Before any thread starts, so the receivers' threads inherit it.
            pin(std::process::id(), cpu)?;
        }
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let otlp = rt
            .block_on(OtlpReceiver::start())
            .map_err(|e| format!("OTLP receiver: {e}"))?;
        let sentry = rt
            .block_on(SentryReceiver::start())
            .map_err(|e| format!("Sentry receiver: {e}"))?;
        let log_dir = std::env::temp_dir().join(format!("tb-bench-{}", std::process::id()));
        std::fs::create_dir_all(&log_dir).map_err(|e| e.to_string())?;
        let h = Harness {
            exe,
            opts,
            rt,
            otlp,
            sentry,
            runs: 0,
            log_dir,
            export_to: None,
        };
        eprintln!(
            "tb-bench: {} round(s) of {:?} (+{:?} warm-up) per run; server logs in {}",
            h.opts.rounds,
            h.opts.duration,
            h.opts.warmup,
            h.log_dir.display()
        );
        Ok(h)
    }

    pub(crate) fn server_env(&self, cmd: &mut Command) {
        let (endpoint, protocol) = self
            .export_to
            .clone()
            .unwrap_or_else(|| (self.otlp.grpc_endpoint(), "grpc"));
        cmd.env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
            .env("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
            .env("SENTRY_DSN", self.sentry.dsn("benchkey"))
            // The SDK's defaults (queue 2048, batch 512): what a user runs. At saturation the
            // queue overflows and the SDK drops spans, counting them; the check below accounts
            // for every request as a received span or a counted drop.
            .env_remove("OTEL_BSP_MAX_QUEUE_SIZE")
            .env_remove("OTEL_SDK_DISABLED")
            .env_remove("OTEL_PROPAGATORS")
            .env_remove("OTEL_TRACES_SAMPLER")
            .env_remove("RUST_LOG");
    }

    pub(crate) fn log_file(&self, name: &str) -> Result<std::fs::File, String> {
        std::fs::File::create(self.log_dir.join(format!("{name}.log"))).map_err(|e| e.to_string())
    }

    pub(crate) fn pinned(&self, program: &Path) -> Command {
        match self.opts.server_cpu {
            Some(cpu) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(cpu.to_string()).arg(program);
                c
            }
            None => Command::new(program),
        }
    }

    /// Runs the load generator as a child process (on the load core, inherited).
    pub(crate) fn load(&self, run: &LoadRun) -> Result<(Summary, f64), String> {
        let mut cmd = Command::new(&self.exe);
        cmd.arg("load")
            .args([
                "--proto",
                if run.proto == Proto::Http {
                    "http"
                } else {
                    "grpc"
                },
            ])
            .args(["--addr", &run.addr.to_string()])
            .args(["--path", run.path])
            .args(["--millis", &run.duration.as_millis().to_string()])
            .args(["--conns", &run.conns.to_string()])
            .args(["--streams", &self.opts.streams.to_string()])
            .args(["--trace-id", &run.incoming.trace_id])
            .args(["--span-id", &run.incoming.span_id]);
        if let Some(rate) = run.rate {
            cmd.args(["--rate", &rate.to_string()]);
        }
        let out = cmd
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("load generator: {e}"))?;
        if !out.status.success() {
            return Err(format!("load generator failed: {}", out.status));
        }
        Summary::from_json(&String::from_utf8_lossy(&out.stdout))
    }

    fn measure(&mut self, variant: Variant) -> Result<Sample, String> {
        // Sentry only for sentry-tower: the others are compared on what issue 5 calls full
        // instrumentation (extraction, SERVER span, traceresponse, OTLP export). With a DSN,
        // tracebridge also binds a Sentry hub per request and writes a DSC — measured by
        // `tb-bench backends`, whose runs all have Sentry on. (An empty value is unset.)
        let env = match variant.expect() {
            Expect::SentryTransactions => Vec::new(),
            _ => vec![("SENTRY_DSN", String::new())],
        };
        let (served, incoming, mut sample) = self.measure_with(variant, &env)?;
        sample.delivered = self.verify(variant, &incoming, served)?;
        self.otlp.clear();
        self.sentry.clear();
        Ok(sample)
    }

    /// One run of `variant` with `env` set on top of [`Harness::server_env`]: start, warm up,
    /// measure, SIGTERM and wait for the exit (the flush). Returns the requests served (warm-up
    /// included) and the incoming trace; the receivers are left for the caller to check.
    pub(crate) fn measure_with(
        &mut self,
        variant: Variant,
        env: &[(&str, String)],
    ) -> Result<(u64, Incoming, Sample), String> {
        self.runs += 1;
        let incoming = Incoming::fresh(self.runs);
        let addr = free_addr()?;
        let mut cmd = self.variant_server(variant, addr)?;
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", variant.name()))?;
        let result = self.measure_running(variant, addr, &mut child, &incoming);
        let stopped = stop(&mut child, Duration::from_secs(30), variant.name());
        let sample = result?;
        stopped?;
        let (served, sample) = sample;
        Ok((served, incoming, sample))
    }

    /// The command that runs `variant`'s server on `addr`: this executable's `server`
    /// subcommand, pinned to the server core, output to the variant's log,
    /// [`Harness::server_env`] set.
    pub(crate) fn variant_server(
        &self,
        variant: Variant,
        addr: std::net::SocketAddr,
    ) -> Result<Command, String> {
        let log = self.log_file(variant.name())?;
        let mut cmd = self.pinned(&self.exe);
        cmd.arg("server")
            .arg(variant.name())
            .arg(addr.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log);
        self.server_env(&mut cmd);
        Ok(cmd)
    }

    /// Removes the servers' log directory (at the end of a successful run; a failed run keeps
    /// it for inspection).
    pub(crate) fn remove_logs(&self) {
        let _ = std::fs::remove_dir_all(&self.log_dir);
    }

    /// The log (stdout + stderr) of the last run of `name`.
    pub(crate) fn server_log(&self, name: &str) -> Result<String, String> {
        std::fs::read_to_string(self.log_dir.join(format!("{name}.log")))
            .map_err(|e| format!("{name}.log: {e}"))
    }

    fn measure_running(
        &self,
        variant: Variant,
        addr: SocketAddr,
        child: &mut Child,
        incoming: &Incoming,
    ) -> Result<(u64, Sample), String> {
        wait_listening(addr, child, variant.name())?;
        let pid = child.id();
        let conns = match variant.proto() {
            Proto::Http => self.opts.conns,
            Proto::Grpc => self.opts.grpc_conns,
        };
        let run = |duration| LoadRun {
            proto: variant.proto(),
            addr,
            path: "/hello",
            duration,
            conns,
            incoming,
            rate: None,
        };
        let (warm, _) = self.load(&run(self.opts.warmup))?;
        let cpu0 = procfs::cpu_time(pid).ok_or("cannot read the server's CPU time")?;
        let (load, load_cpu) = self.load(&run(self.opts.duration))?;
        let cpu1 = procfs::cpu_time(pid).ok_or("cannot read the server's CPU time")?;
        let rss = procfs::rss_bytes(pid).ok_or("cannot read the server's RSS")?;
        sample_of(variant.name(), &warm, &load, cpu1 - cpu0, load_cpu, rss)
    }

    /// Checks the receivers after the server flushed and exited; returns the delivered share.
    fn verify(&self, variant: Variant, incoming: &Incoming, served: u64) -> Result<f64, String> {
        let name = variant.name();
        let fail = |msg: String| Err(format!("TRACE CHECK FAILED for {name}: {msg}"));
        match variant.expect() {
            Expect::Nothing => {
                let n = self.otlp.spans_of(&incoming.trace_id).len();
                if n != 0 {
                    return fail(format!("a bare server exported {n} spans"));
                }
                Ok(1.0)
            }
            Expect::OtlpSpanPerRequest => {
                let want = served as usize;
                let _ = self.rt.block_on(
                    self.otlp
                        .wait_for(|s| s.len() >= want, Duration::from_secs(10)),
                );
                let spans = self.otlp.spans_of(&incoming.trace_id);
                let dropped = self.dropped_spans(name)?;
                // Spans still queued when the server stops are lost uncounted if the shutdown
                // flush does not finish in time (the SDK's flush waits 5 s). At most one queue's
                // worth; reported.
                let lost = want.saturating_sub(spans.len() + dropped);
                if lost > SDK_QUEUE
                    || spans.len() + dropped > want
                    || spans.len() != self.otlp.spans().len()
                {
                    return fail(format!(
                        "{} spans of the incoming trace + {dropped} counted as dropped by the SDK \
                         for {want} requests ({} spans in all)",
                        spans.len(),
                        self.otlp.spans().len()
                    ));
                }
                if lost > 0 {
                    eprintln!("note: {name}: {lost} spans queued at shutdown were not flushed");
                }
                if let Some(bad) = spans.iter().find(|s| {
                    s.parent_span_id.as_deref() != Some(incoming.span_id.as_str())
                        || s.kind != SpanKind::Server
                }) {
                    return fail(format!(
                        "span not a SERVER child of the incoming span {}: {}",
                        incoming.span_id,
                        bad.summary()
                    ));
                }
                Ok(spans.len() as f64 / want as f64)
            }
            Expect::SentryTransactions => {
                // Sentry's transport queue (30 envelopes) drops what it cannot send: give the
                // delivered ones a moment to land, then check each.
                std::thread::sleep(Duration::from_millis(500));
                let txs = self.sentry.transactions();
                if txs.is_empty() {
                    return fail("no transaction arrived".into());
                }
                for tx in &txs {
                    let trace = tx
                        .pointer("/contexts/trace/trace_id")
                        .and_then(|v| v.as_str());
                    let parent = tx
                        .pointer("/contexts/trace/parent_span_id")
                        .and_then(|v| v.as_str());
                    if trace != Some(incoming.trace_id.as_str())
                        || parent != Some(incoming.span_id.as_str())
                    {
                        return fail(format!(
                            "transaction does not continue the incoming trace: trace {trace:?} parent {parent:?}"
                        ));
                    }
                }
                Ok(txs.len() as f64 / served as f64)
            }
        }
    }

    /// Spans the OpenTelemetry SDK dropped (queue full), from the total it logs at shutdown
    /// (`dropped_spans=N` from the async-runtime processor, `dropped_span_count=N` from the
    /// thread-based one; no line means none were dropped).
    fn dropped_spans(&self, name: &str) -> Result<usize, String> {
        let log = self.server_log(name)?;
        let mut total = 0;
        for (i, _) in log.match_indices("dropped_span") {
            let digits: String = log[i + "dropped_span".len()..]
                .chars()
                .skip_while(|c| !c.is_ascii_digit())
                .take_while(char::is_ascii_digit)
                .collect();
            total = digits
                .parse()
                .map_err(|_| format!("{name}.log: unreadable dropped_spans count"))?;
        }
        Ok(total)
    }

    /// a → b → c with tracing on vs `OTEL_SDK_DISABLED=true`, interleaved.
    fn mesh(&mut self) -> Result<String, String> {
        let dir = self.services_dir(&["service-a", "service-b", "service-c"])?;
        let mut on = Vec::new();
        let mut off = Vec::new();
        let mut ratios = Vec::new();
        for round in 1..=self.opts.mesh_rounds {
            let d = self.mesh_run(&dir, true)?;
            let t = self.mesh_run(&dir, false)?;
            eprintln!(
                "mesh round {round}: disabled {:.0} req/s, tracing {:.0} req/s, ratio {:.3}",
                d.rps,
                t.rps,
                t.rps / d.rps
            );
            ratios.push(t.rps / d.rps);
            off.push(d);
            on.push(t);
        }
        let mut s = String::new();
        let _ = writeln!(s, "| mesh a → b → c (`GET /trace`, 11 spans/request) | req/s (median) | ratio (median) | p50 µs | p99 µs | mesh CPU µs/req | trace check |");
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---|");
        for (label, v, ratio, check) in [
            (
                "OTEL_SDK_DISABLED=true",
                &off,
                "1 (baseline)".to_owned(),
                "no spans (checked)",
            ),
            (
                "tracing on (OTLP export)",
                &on,
                format!("{:.3}", median(ratios.iter().copied())),
                "11 spans/request, root parent = incoming ✓",
            ),
        ] {
            let _ = writeln!(
                s,
                "| {label} | {:.0} | {ratio} | {:.0} | {:.0} | {:.1} | {check} |",
                median(v.iter().map(|x| x.rps)),
                median(v.iter().map(|x| x.p50_us)),
                median(v.iter().map(|x| x.p99_us)),
                median(v.iter().map(|x| x.cpu_us_per_req)),
            );
        }
        Ok(s)
    }

    /// The directory of the demo services' release binaries (next to tb-bench), once `bins`
    /// are all there.
    pub(crate) fn services_dir(&self, bins: &[&str]) -> Result<PathBuf, String> {
        let dir = self.exe.parent().ok_or("no exe dir")?.to_path_buf();
        for bin in bins {
            if !dir.join(bin).exists() {
                return Err(format!(
                    "{} not found next to tb-bench: build it with `cargo build --release -p {bin}` (scripts/bench.sh does)",
                    dir.join(bin).display()
                ));
            }
        }
        Ok(dir)
    }

    /// Starts services c, b, a (in that order, pinned to the server core, DEMO_DELAY_MS=0,
    /// no Sentry) into `children` and waits until each listens; a's address. The caller stops
    /// `children` (a first) whatever this returns.
    pub(crate) fn start_mesh(
        &self,
        dir: &Path,
        disabled: bool,
        children: &mut Vec<(String, Child)>,
    ) -> Result<SocketAddr, String> {
        let (a, b, c, c_http) = (free_addr()?, free_addr()?, free_addr()?, free_addr()?);
        for (bin, env) in [
            (
                "service-c",
                vec![
                    ("C_LISTEN", c.to_string()),
                    ("C_HTTP_LISTEN", c_http.to_string()),
                ],
            ),
            (
                "service-b",
                vec![
                    ("B_LISTEN", b.to_string()),
                    ("C_HTTP_URL", format!("http://{c_http}")),
                ],
            ),
            (
                "service-a",
                vec![
                    ("A_LISTEN", a.to_string()),
                    ("B_URL", format!("http://{b}")),
                    ("C_URL", format!("http://{c}")),
                ],
            ),
        ] {
            let mut cmd = self.pinned(&dir.join(bin));
            cmd.envs(env)
                .env("DEMO_DELAY_MS", "0")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(self.log_file(bin)?);
            self.server_env(&mut cmd);
            cmd.env_remove("SENTRY_DSN");
            if disabled {
                cmd.env("OTEL_SDK_DISABLED", "true");
            }
            let child = cmd.spawn().map_err(|e| format!("spawn {bin}: {e}"))?;
            children.push((bin.to_owned(), child));
        }
        for ((bin, child), addr) in children.iter_mut().zip([c_http, b, a]) {
            wait_listening(addr, child, bin)?;
        }
        wait_listening(c, &mut children[0].1, "service-c")?;
        Ok(a)
    }

    fn mesh_run(&mut self, dir: &Path, disabled: bool) -> Result<Sample, String> {
        self.runs += 1;
        let incoming = Incoming::fresh(self.runs);
        let mut children: Vec<(String, Child)> = Vec::new();
        let result = (|| {
            let a = self.start_mesh(dir, disabled, &mut children)?;
            let pids: Vec<u32> = children.iter().map(|(_, c)| c.id()).collect();
            let run = |duration| LoadRun {
                proto: Proto::Http,
                addr: a,
                path: "/trace",
                duration,
                conns: self.opts.conns,
                incoming: &incoming,
                rate: None,
            };
            let (warm, _) = self.load(&run(self.opts.warmup))?;
            let cpu = |pids: &[u32]| -> Result<Duration, String> {
                pids.iter()
                    .map(|&p| procfs::cpu_time(p).ok_or_else(|| "cannot read CPU time".to_owned()))
                    .sum()
            };
            let cpu0 = cpu(&pids)?;
            let (load, load_cpu) = self.load(&run(self.opts.duration))?;
            let cpu1 = cpu(&pids)?;
            sample_of("mesh", &warm, &load, cpu1 - cpu0, load_cpu, 0)
        })();
        // a first, so nothing calls a stopped service.
        let mut stopped = Ok(());
        for (bin, child) in children.iter_mut().rev() {
            let r = stop(child, Duration::from_secs(30), bin);
            if stopped.is_ok() {
                stopped = r;
            }
        }
        let (served, sample) = result?;
        stopped?;
        let fail = |msg: String| Err(format!("TRACE CHECK FAILED for the mesh: {msg}"));
        if disabled {
            let n = self.otlp.spans().len();
            if n != 0 {
                return fail(format!("{n} spans exported with OTEL_SDK_DISABLED=true"));
            }
        } else {
            let want = 11 * served as usize;
            let _ = self.rt.block_on(
                self.otlp
                    .wait_for(|s| s.len() >= want, Duration::from_secs(10)),
            );
            let spans = self.otlp.spans_of(&incoming.trace_id);
            let roots = spans
                .iter()
                .filter(|s| s.parent_span_id.as_deref() == Some(incoming.span_id.as_str()))
                .count();
            if spans.len() != want || roots != served as usize {
                return fail(format!(
                    "{} spans ({roots} children of the incoming span) for {served} requests; want {want} ({served})",
                    spans.len()
                ));
            }
        }
        self.otlp.clear();
        Ok(sample)
    }
}

/// The requests served (warm-up + measured) and the measured run's sample; an error if any
/// request of either load failed. `cpu` is the server's CPU time over the measured run.
fn sample_of(
    name: &str,
    warm: &Summary,
    load: &Summary,
    cpu: Duration,
    load_cpu_pct: f64,
    rss: u64,
) -> Result<(u64, Sample), String> {
    for r in [warm, load] {
        if r.errors > 0 {
            return Err(format!(
                "{name}: {} failed requests (first: {})",
                r.errors,
                r.first_error.as_deref().unwrap_or("?")
            ));
        }
    }
    let cpu = cpu.as_secs_f64();
    Ok((
        warm.ok + load.ok,
        Sample {
            rps: load.rps(),
            p50_us: load.p50_us,
            p99_us: load.p99_us,
            cpu_us_per_req: cpu * 1e6 / load.ok.max(1) as f64,
            server_cpu_pct: 100.0 * cpu / load.elapsed.as_secs_f64(),
            load_cpu_pct,
            rss,
            delivered: 1.0,
        },
    ))
}
