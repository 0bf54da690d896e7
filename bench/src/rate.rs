//! `tb-bench rate`: server CPU per request at a fixed, unsaturated request rate, with every
//! span exported and counted at the receiver (issue 11's main figure; docs/performance.md,
//! "Fixed-rate CPU per request").
//!
//! Pairs, each an uninstrumented server against the same server traced:
//!
//! | pair | bare | traced | spans / request |
//! |---|---|---|---:|
//! | `axum` | `axum-bare` | `axum-tracebridge` | 1 |
//! | `tonic` | `tonic-bare` | `tonic-tracebridge` | 1 |
//! | `service-c` | service-c, `OTEL_SDK_DISABLED=true` | service-c | 2 (SERVER + trace3) |
//! | `mesh` | a → b → c, `OTEL_SDK_DISABLED=true` | a → b → c | 11 |
//!
//! Per pair: a short closed-loop run of the bare server gives its capacity (and one of the
//! traced server gives the saturation figures, exported share included); then, at each
//! level (default 20% and 50% of the bare capacity, or `--rate` req/s), rounds of open-loop
//! runs, bare and traced in the same round (order alternating from round to round). One run:
//! a fresh server process (or three, for the mesh) pinned to the server core, a warm-up at
//! the same rate, a wait until the receiver holds the warm-up's spans, then the measured
//! window: from just before the measured load to the moment the receiver holds every span of
//! it (or nothing more arrives), so the export of exactly the measured requests is inside.
//! Server CPU is utime + stime of the server process(es) over that window, divided by the
//! requests completed in it. Then SIGTERM (the server flushes) and the final count.
//!
//! Servers export OTLP http/protobuf to [`SpanCounter`], on the load core with the load
//! generator and this runner.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::counter::{Counts, SpanCounter, Target};
use crate::load::{Incoming, Summary};
use crate::procfs;
use crate::runner::{self, free_addr, median, stop, wait_listening, Harness, LoadRun, MIB};
use crate::variant::{Proto, Variant};

/// A bare server and the same server traced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pair {
    Axum,
    Tonic,
    ServiceC,
    Mesh,
}

impl Pair {
    pub const ALL: [Pair; 4] = [Pair::Axum, Pair::Tonic, Pair::ServiceC, Pair::Mesh];

    pub fn name(self) -> &'static str {
        match self {
            Pair::Axum => "axum",
            Pair::Tonic => "tonic",
            Pair::ServiceC => "service-c",
            Pair::Mesh => "mesh",
        }
    }

    pub fn from_name(name: &str) -> Option<Pair> {
        Pair::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The two rows' labels: (bare, traced).
    fn labels(self) -> (&'static str, &'static str) {
        match self {
            Pair::Axum => ("axum-bare", "axum-tracebridge"),
            Pair::Tonic => ("tonic-bare", "tonic-tracebridge"),
            Pair::ServiceC => (
                "service-c `GET /work`, OTEL_SDK_DISABLED",
                "service-c `GET /work`, traced",
            ),
            Pair::Mesh => (
                "mesh a → b → c `GET /trace`, OTEL_SDK_DISABLED",
                "mesh a → b → c `GET /trace`, traced",
            ),
        }
    }

    /// Spans a traced request produces (all must reach the receiver).
    pub fn spans_per_request(self) -> u64 {
        match self {
            Pair::Axum | Pair::Tonic => 1,
            Pair::ServiceC => 2,
            Pair::Mesh => 11,
        }
    }

    fn proto(self) -> Proto {
        match self {
            Pair::Tonic => Proto::Grpc,
            _ => Proto::Http,
        }
    }

    fn path(self) -> &'static str {
        match self {
            Pair::Axum | Pair::Tonic => "/hello",
            Pair::ServiceC => "/work",
            Pair::Mesh => "/trace",
        }
    }

    /// Issue 11's CPU target: traced ≥ this × bare by CPU per request.
    fn cpu_target(self) -> f64 {
        match self {
            Pair::Axum => 0.87,
            Pair::Tonic | Pair::Mesh => 0.85,
            Pair::ServiceC => 0.80,
        }
    }
}

/// Options of `tb-bench rate`.
#[derive(Clone, Debug)]
pub struct RateOptions {
    pub rounds: usize,
    /// Measured load per run.
    pub duration: Duration,
    /// Warm-up per run (same rate).
    pub warmup: Duration,
    /// The closed-loop capacity / saturation runs.
    pub probe: Duration,
    /// Levels as percentages of the bare capacity…
    pub percents: Vec<f64>,
    /// …or as absolute rates (req/s, every pair; no capacity or saturation runs).
    pub rates: Vec<f64>,
    pub pairs: Vec<Pair>,
    /// Open-loop HTTP connections (enough that a stall queues requests, not the schedule).
    pub conns: usize,
    /// Open-loop gRPC connections (× the runner's 8 streams).
    pub grpc_conns: usize,
    /// The longest wait for the receiver to hold a run's spans.
    pub flush_timeout: Duration,
    /// A wait for spans ends early after this long without a new span.
    pub flush_quiet: Duration,
}

impl RateOptions {
    pub fn full() -> RateOptions {
        RateOptions {
            rounds: 5,
            duration: Duration::from_secs(10),
            warmup: Duration::from_secs(1),
            probe: Duration::from_secs(3),
            percents: vec![20.0, 50.0],
            rates: Vec::new(),
            pairs: Pair::ALL.to_vec(),
            conns: 64,
            grpc_conns: 8,
            flush_timeout: Duration::from_secs(30),
            flush_quiet: Duration::from_secs(7),
        }
    }

    pub fn quick() -> RateOptions {
        RateOptions {
            rounds: 2,
            duration: Duration::from_secs(3),
            warmup: Duration::from_millis(500),
            probe: Duration::from_secs(1),
            ..RateOptions::full()
        }
    }
}

/// One run of one server (bare or traced).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunSample {
    /// Requests completed in the measured window, and per second.
    pub requests: u64,
    pub rps: f64,
    /// Requests served, warm-up included (what the receiver must account for).
    pub served: u64,
    pub cpu_us_per_req: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub lag_p99_us: f64,
    /// RSS of the server process(es) at the end of the window, bytes.
    pub rss: u64,
    /// Spans the receiver must hold (0 for bare).
    pub expected_spans: u64,
    /// What it holds after the server exited.
    pub counts: Counts,
}

impl RunSample {
    /// Every expected span arrived, one root per request, nothing else.
    pub fn complete(&self) -> bool {
        self.counts.spans == self.expected_spans
            && self.counts.stray == 0
            && self.counts.bad_requests == 0
            && (self.expected_spans == 0 || self.counts.roots == self.served)
    }
}

/// The runs of one pair at one level.
#[derive(Clone, Debug, PartialEq)]
pub struct PairRuns {
    pub pair: Pair,
    pub target_rps: f64,
    /// Per round: (bare, traced).
    pub rounds: Vec<(RunSample, RunSample)>,
}

/// One load level.
#[derive(Clone, Debug, PartialEq)]
pub struct Level {
    /// Percentage of the bare capacity, or `None` for an absolute `--rate`.
    pub percent: Option<f64>,
    pub pairs: Vec<PairRuns>,
}

/// The closed-loop runs of one pair: the bare server's capacity and the traced server at
/// saturation.
#[derive(Clone, Debug, PartialEq)]
pub struct Saturation {
    pub pair: Pair,
    pub bare: RunSample,
    pub traced: RunSample,
}

/// Runs the benchmark and returns the report; `Err` when a run fails a check that makes its
/// figures meaningless (failed requests, spans from a bare server, a thread off its core).
pub fn run(opts: RateOptions) -> Result<String, String> {
    let mut h = Harness::new(runner::Options {
        rounds: opts.rounds,
        duration: opts.duration,
        warmup: opts.warmup,
        mesh: false,
        variants: Vec::new(),
        ..runner::Options::full()
    })?;
    let counter =
        h.rt.block_on(SpanCounter::start())
            .map_err(|e| format!("span counter: {e}"))?;
    h.export_to = Some((counter.endpoint(), "http/protobuf"));
    let mut r = Rate {
        h,
        counter,
        opts: opts.clone(),
    };

    let mut saturation = Vec::new();
    let mut levels: Vec<Level> = Vec::new();
    if opts.rates.is_empty() {
        for &pair in &opts.pairs {
            let bare = r.run_once(pair, false, None, opts.probe)?;
            let traced = r.run_once(pair, true, None, opts.probe)?;
            eprintln!(
                "saturation {}: bare {:.0} req/s, traced {:.0} req/s, {} of {} spans received",
                pair.name(),
                bare.rps,
                traced.rps,
                traced.counts.spans,
                traced.expected_spans
            );
            saturation.push(Saturation { pair, bare, traced });
        }
        for &p in &opts.percents {
            levels.push(Level {
                percent: Some(p),
                pairs: saturation
                    .iter()
                    .map(|s| PairRuns {
                        pair: s.pair,
                        target_rps: (s.bare.rps * p / 100.0).round().max(1.0),
                        rounds: Vec::new(),
                    })
                    .collect(),
            });
        }
    } else {
        for &rate in &opts.rates {
            levels.push(Level {
                percent: None,
                pairs: opts
                    .pairs
                    .iter()
                    .map(|&pair| PairRuns {
                        pair,
                        target_rps: rate,
                        rounds: Vec::new(),
                    })
                    .collect(),
            });
        }
    }

    for level in &mut levels {
        for round in 1..=opts.rounds {
            for runs in &mut level.pairs {
                let rate = Some(runs.target_rps);
                let (bare, traced) = if round % 2 == 1 {
                    let b = r.run_once(runs.pair, false, rate, opts.duration)?;
                    (b, r.run_once(runs.pair, true, rate, opts.duration)?)
                } else {
                    let t = r.run_once(runs.pair, true, rate, opts.duration)?;
                    (r.run_once(runs.pair, false, rate, opts.duration)?, t)
                };
                eprintln!(
                    "round {round} at {:.0} req/s: {:<10} cpu {:.2} vs {:.2} µs/req (bare/traced {:.3}), p99 {:.0} vs {:.0} µs, spans {}/{}",
                    runs.target_rps,
                    runs.pair.name(),
                    traced.cpu_us_per_req,
                    bare.cpu_us_per_req,
                    bare.cpu_us_per_req / traced.cpu_us_per_req,
                    traced.p99_us,
                    bare.p99_us,
                    traced.counts.spans,
                    traced.expected_spans
                );
                runs.rounds.push((bare, traced));
            }
        }
    }
    r.h.remove_logs();
    Ok(report(&levels, &saturation))
}

struct Rate {
    h: Harness,
    counter: SpanCounter,
    opts: RateOptions,
}

impl Rate {
    /// Starts `pair`'s bare or traced server(s) into `children`; the address to load.
    fn start(
        &self,
        pair: Pair,
        traced: bool,
        children: &mut Vec<(String, Child)>,
    ) -> Result<SocketAddr, String> {
        match pair {
            Pair::Axum | Pair::Tonic => {
                let variant = match (pair, traced) {
                    (Pair::Axum, false) => Variant::AxumBare,
                    (Pair::Axum, true) => Variant::AxumTracebridge,
                    (_, false) => Variant::TonicBare,
                    (_, true) => Variant::TonicTracebridge,
                };
                let addr = free_addr()?;
                let mut cmd = self.h.variant_server(variant, addr)?;
                // No Sentry: the figure is the OTLP span path (an empty value is unset).
                cmd.env("SENTRY_DSN", "");
                let child = cmd
                    .spawn()
                    .map_err(|e| format!("spawn {}: {e}", variant.name()))?;
                children.push((variant.name().to_owned(), child));
                wait_listening(addr, &mut children[0].1, variant.name())?;
                Ok(addr)
            }
            Pair::ServiceC => {
                let dir = self.h.services_dir(&["service-c"])?;
                let (grpc, http) = (free_addr()?, free_addr()?);
                let mut cmd = self.h.pinned(&dir.join("service-c"));
                cmd.env("C_LISTEN", grpc.to_string())
                    .env("C_HTTP_LISTEN", http.to_string())
                    .env("DEMO_DELAY_MS", "0")
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(self.h.log_file("service-c")?);
                self.h.server_env(&mut cmd);
                cmd.env_remove("SENTRY_DSN");
                if !traced {
                    cmd.env("OTEL_SDK_DISABLED", "true");
                }
                let child = cmd.spawn().map_err(|e| format!("spawn service-c: {e}"))?;
                children.push(("service-c".to_owned(), child));
                wait_listening(http, &mut children[0].1, "service-c")?;
                wait_listening(grpc, &mut children[0].1, "service-c")?;
                Ok(http)
            }
            Pair::Mesh => {
                let dir = self
                    .h
                    .services_dir(&["service-a", "service-b", "service-c"])?;
                self.h.start_mesh(&dir, !traced, children)
            }
        }
    }

    /// One run: `rate` req/s open loop for `duration` (closed loop when `None`). See the
    /// module docs for the window.
    fn run_once(
        &mut self,
        pair: Pair,
        traced: bool,
        rate: Option<f64>,
        duration: Duration,
    ) -> Result<RunSample, String> {
        self.h.runs += 1;
        let incoming = Incoming::fresh(self.h.runs);
        self.counter
            .expect(Target::from_hex(&incoming.trace_id, &incoming.span_id)?);
        let k = if traced { pair.spans_per_request() } else { 0 };
        let mut children = Vec::new();
        let result = self.measure(pair, traced, rate, duration, &incoming, k, &mut children);
        let mut stopped = Ok(());
        for (name, child) in children.iter_mut().rev() {
            let r = stop(child, Duration::from_secs(30), name);
            if stopped.is_ok() {
                stopped = r;
            }
        }
        let mut sample = result?;
        stopped?;
        // The servers exited after their shutdown flush: what the receiver holds now is final.
        sample.counts = self.counter.counts();
        let label = if traced {
            pair.labels().1
        } else {
            pair.labels().0
        };
        if !traced && (sample.counts.spans > 0 || sample.counts.stray > 0) {
            return Err(format!(
                "{label}: {} spans arrived from a server with tracing off",
                sample.counts.spans + sample.counts.stray
            ));
        }
        if sample.counts.bad_requests > 0 {
            return Err(format!(
                "{label}: {} export requests did not decode",
                sample.counts.bad_requests
            ));
        }
        Ok(sample)
    }

    #[allow(clippy::too_many_arguments)]
    fn measure(
        &self,
        pair: Pair,
        traced: bool,
        rate: Option<f64>,
        duration: Duration,
        incoming: &Incoming,
        spans_per_request: u64,
        children: &mut Vec<(String, Child)>,
    ) -> Result<RunSample, String> {
        let addr = self.start(pair, traced, children)?;
        let pids: Vec<u32> = children.iter().map(|(_, c)| c.id()).collect();
        let conns = match (pair.proto(), rate) {
            (Proto::Http, None) => self.h.opts.conns,
            (Proto::Grpc, None) => self.h.opts.grpc_conns,
            (Proto::Http, Some(_)) => self.opts.conns,
            (Proto::Grpc, Some(_)) => self.opts.grpc_conns,
        };
        let run = |duration| LoadRun {
            proto: pair.proto(),
            addr,
            path: pair.path(),
            duration,
            conns,
            incoming,
            rate,
        };
        let wait = |want: u64| {
            if want > 0 {
                self.counter
                    .wait_for_spans(want, self.opts.flush_quiet, self.opts.flush_timeout);
            }
        };
        let cpu = || -> Result<Duration, String> {
            pids.iter()
                .map(|&p| procfs::cpu_time(p).ok_or_else(|| format!("cannot read CPU time of {p}")))
                .sum()
        };
        let (warm, _) = self.h.load(&run(self.h.opts.warmup))?;
        check_errors(pair, &warm)?;
        wait(spans_per_request * warm.ok);
        let cpu0 = cpu()?;
        let (load, _) = self.h.load(&run(duration))?;
        check_errors(pair, &load)?;
        wait(spans_per_request * (warm.ok + load.ok));
        let cpu1 = cpu()?;
        let mut rss = 0;
        for &p in &pids {
            rss += procfs::rss_bytes(p).ok_or("cannot read the server's RSS")?;
            if let Some(core) = self.h.opts.server_cpu {
                check_pinned(p, core)?;
            }
        }
        Ok(RunSample {
            requests: load.ok,
            rps: load.rps(),
            served: warm.ok + load.ok,
            cpu_us_per_req: (cpu1 - cpu0).as_secs_f64() * 1e6 / load.ok.max(1) as f64,
            p50_us: load.p50_us,
            p99_us: load.p99_us,
            lag_p99_us: load.lag_p99_us,
            rss,
            expected_spans: spans_per_request * (warm.ok + load.ok),
            counts: Counts::default(),
        })
    }
}

fn check_errors(pair: Pair, s: &Summary) -> Result<(), String> {
    if s.errors > 0 {
        return Err(format!(
            "{}: {} failed requests (first: {})",
            pair.name(),
            s.errors,
            s.first_error.as_deref().unwrap_or("?")
        ));
    }
    Ok(())
}

/// Every thread of `pid` (the export thread included) may run on `core` only.
fn check_pinned(pid: u32, core: usize) -> Result<(), String> {
    let threads =
        procfs::thread_cpus(pid).ok_or_else(|| format!("cannot read /proc/{pid}/task"))?;
    let want = core.to_string();
    match threads.iter().find(|(_, cpus)| *cpus != want) {
        Some((name, cpus)) => Err(format!(
            "thread {name:?} of {pid} may run on CPUs {cpus}, not only {core}"
        )),
        None => Ok(()),
    }
}

/// `received/expected` as a percentage and a verdict, for the tables.
fn exported(expected: u64, received: u64, complete: bool) -> String {
    if expected == 0 {
        return "none (checked)".into();
    }
    let share = 100.0 * received as f64 / expected as f64;
    if complete {
        "100% ✓".into()
    } else if received < expected {
        format!("**{share:.2}% ⚠ {} missing**", expected - received)
    } else if received > expected {
        format!("**{share:.2}% ⚠ {} spans too many**", received - expected)
    } else {
        "**count right ⚠ but not one SERVER child of the incoming span per request, or spans of another trace**".into()
    }
}

/// The markdown report: one table per level, the saturation table, the targets.
pub fn report(levels: &[Level], saturation: &[Saturation]) -> String {
    let mut s = String::new();
    for level in levels {
        let _ = match level.percent {
            Some(p) => writeln!(s, "Fixed rate: {p}% of the bare capacity (open loop)\n"),
            None => writeln!(s, "Fixed rate: absolute (`--rate`, open loop)\n"),
        };
        let _ = writeln!(
            s,
            "| server | rate req/s (achieved) | server CPU µs/req | bare/traced by CPU | p50 µs | p99 µs | p99 / bare | send lag p99 µs | RSS MiB | RSS − bare MiB | spans expected | spans received | exported |"
        );
        let _ = writeln!(
            s,
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
        );
        for runs in &level.pairs {
            let (bare_label, traced_label) = runs.pair.labels();
            let bare: Vec<&RunSample> = runs.rounds.iter().map(|r| &r.0).collect();
            let traced: Vec<&RunSample> = runs.rounds.iter().map(|r| &r.1).collect();
            let bare_rss = median(bare.iter().map(|x| x.rss as f64));
            for (label, v, is_bare) in [(bare_label, &bare, true), (traced_label, &traced, false)] {
                let med = |f: fn(&RunSample) -> f64| median(v.iter().map(|x| f(x)));
                let expected: u64 = v.iter().map(|x| x.expected_spans).sum();
                let received: u64 = v.iter().map(|x| x.counts.spans).sum();
                let complete = v.iter().all(|x| x.complete());
                let (ratio, p99_ratio, drss) = if is_bare {
                    ("1 (baseline)".to_owned(), "1".to_owned(), "0".to_owned())
                } else {
                    (
                        format!("{:.3}", cpu_ratio(runs)),
                        format!(
                            "{:.2}",
                            median(runs.rounds.iter().map(|(b, t)| t.p99_us / b.p99_us))
                        ),
                        format!("{:+.1}", (med(|x| x.rss as f64) - bare_rss) / MIB),
                    )
                };
                let _ = writeln!(
                    s,
                    "| {label} | {:.0} ({:.0}) | {:.2} | {ratio} | {:.0} | {:.0} | {p99_ratio} | {:.0} | {:.1} | {drss} | {expected} | {received} | {} |",
                    runs.target_rps,
                    med(|x| x.rps),
                    med(|x| x.cpu_us_per_req),
                    med(|x| x.p50_us),
                    med(|x| x.p99_us),
                    med(|x| x.lag_p99_us),
                    med(|x| x.rss as f64) / MIB,
                    exported(expected, received, complete),
                );
            }
        }
        let _ = writeln!(s);
    }

    if !saturation.is_empty() {
        let _ = writeln!(
            s,
            "Saturation (closed loop; the bare run is the capacity the levels above are taken from)\n"
        );
        let _ = writeln!(
            s,
            "| pair | bare req/s | traced req/s | ratio | traced server CPU µs/req | spans expected | spans received | exported |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---|");
        for sat in saturation {
            let _ = writeln!(
                s,
                "| {} | {:.0} | {:.0} | {:.3} | {:.2} | {} | {} | {} |",
                sat.pair.name(),
                sat.bare.rps,
                sat.traced.rps,
                sat.traced.rps / sat.bare.rps,
                sat.traced.cpu_us_per_req,
                sat.traced.expected_spans,
                sat.traced.counts.spans,
                exported(
                    sat.traced.expected_spans,
                    sat.traced.counts.spans,
                    sat.traced.complete()
                ),
            );
        }
        let _ = writeln!(s);
    }

    s.push_str(&targets(levels));
    s
}

/// Median over the rounds of bare CPU/request ÷ traced CPU/request (same round).
fn cpu_ratio(runs: &PairRuns) -> f64 {
    median(
        runs.rounds
            .iter()
            .map(|(b, t)| b.cpu_us_per_req / t.cpu_us_per_req),
    )
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "**not met**"
    }
}

/// Issue 11's targets, from the first level (CPU) and the 50% level (loss, p99, RSS).
fn targets(levels: &[Level]) -> String {
    let mut s = String::new();
    let Some(main) = levels.first() else {
        return s;
    };
    let _ = writeln!(s, "Targets (issue 11)\n");
    let _ = writeln!(s, "| target | measured | status |");
    let _ = writeln!(s, "|---|---|---|");
    let at = match main.percent {
        Some(p) => format!("{p}% of capacity"),
        None => "the fixed rate".into(),
    };
    for runs in &main.pairs {
        let ratio = cpu_ratio(runs);
        let bare = median(runs.rounds.iter().map(|r| r.0.cpu_us_per_req));
        let traced = median(runs.rounds.iter().map(|r| r.1.cpu_us_per_req));
        let all_spans = runs.rounds.iter().all(|r| r.1.complete());
        let _ = writeln!(
            s,
            "| {}: traced ≥ {:.2}× bare by CPU at {at}, every span received | {ratio:.3} ({traced:.2} vs {bare:.2} µs/req); spans {} | {} |",
            runs.pair.name(),
            runs.pair.cpu_target(),
            if all_spans { "all received" } else { "**missing**" },
            verdict(ratio >= runs.pair.cpu_target() && all_spans)
        );
        if runs.pair == Pair::Axum {
            let _ = writeln!(
                s,
                "| axum: traced ≤ bare + 1.0 µs CPU/request | +{:.2} µs | {} |",
                traced - bare,
                verdict(traced - bare <= 1.0)
            );
        }
    }
    if let Some(half) = levels.iter().find(|l| l.percent == Some(50.0)) {
        for runs in &half.pairs {
            let expected: u64 = runs.rounds.iter().map(|r| r.1.expected_spans).sum();
            let received: u64 = runs.rounds.iter().map(|r| r.1.counts.spans).sum();
            let complete = runs.rounds.iter().all(|r| r.1.complete());
            let p99 = median(runs.rounds.iter().map(|(b, t)| t.p99_us / b.p99_us));
            let drss = (median(runs.rounds.iter().map(|r| r.1.rss as f64))
                - median(runs.rounds.iter().map(|r| r.0.rss as f64)))
                / MIB;
            let _ = writeln!(
                s,
                "| {}: zero spans dropped at 50% | {received} of {expected} received | {} |",
                runs.pair.name(),
                verdict(complete)
            );
            let _ = writeln!(
                s,
                "| {}: p99 ≤ 1.25× bare at 50% | {p99:.2}× | {} |",
                runs.pair.name(),
                verdict(p99 <= 1.25)
            );
            let _ = writeln!(
                s,
                "| {}: RSS ≤ bare + 3 MiB at 50% | {drss:+.1} MiB | {} |",
                runs.pair.name(),
                verdict(drss <= 3.0)
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(cpu: f64, p99: f64, rss_mib: f64, served: u64, expected: u64, got: u64) -> RunSample {
        RunSample {
            requests: served - 100,
            rps: 1000.0,
            served,
            cpu_us_per_req: cpu,
            p50_us: p99 / 2.0,
            p99_us: p99,
            lag_p99_us: 40.0,
            rss: (rss_mib * MIB) as u64,
            expected_spans: expected,
            counts: Counts {
                requests: 3,
                spans: got,
                roots: if expected == 0 { 0 } else { served.min(got) },
                stray: 0,
                bad_requests: 0,
            },
        }
    }

    fn level(percent: f64, rounds: Vec<(RunSample, RunSample)>) -> Level {
        Level {
            percent: Some(percent),
            pairs: vec![PairRuns {
                pair: Pair::ServiceC,
                target_rps: 1000.0,
                rounds,
            }],
        }
    }

    #[test]
    fn cpu_ratio_is_the_median_of_per_round_ratios() {
        let runs = PairRuns {
            pair: Pair::Axum,
            target_rps: 1.0,
            rounds: vec![
                (
                    sample(10.0, 1.0, 1.0, 200, 0, 0),
                    sample(20.0, 1.0, 1.0, 200, 200, 200),
                ),
                (
                    sample(8.0, 1.0, 1.0, 200, 0, 0),
                    sample(10.0, 1.0, 1.0, 200, 200, 200),
                ),
                (
                    sample(9.0, 1.0, 1.0, 200, 0, 0),
                    sample(11.0, 1.0, 1.0, 200, 200, 200),
                ),
            ],
        };
        // Per round 0.5, 0.8, 0.818 → 0.8; not the ratio of the medians (9 / 11 = 0.818)
        // nor the mean (0.706).
        assert_eq!(cpu_ratio(&runs), 0.8);
    }

    #[test]
    fn report_rows_and_flags_a_missing_span() {
        let rounds = vec![
            (
                sample(10.0, 100.0, 8.0, 1100, 0, 0),
                sample(12.5, 120.0, 10.0, 1100, 2200, 2200),
            ),
            (
                sample(10.0, 100.0, 8.0, 1100, 0, 0),
                sample(12.5, 130.0, 10.0, 1100, 2200, 2199),
            ),
        ];
        let r = report(&[level(50.0, rounds)], &[]);
        assert!(
            r.starts_with("Fixed rate: 50% of the bare capacity (open loop)\n"),
            "{r}"
        );
        assert!(
            r.contains("| service-c `GET /work`, OTEL_SDK_DISABLED | 1000 (1000) | 10.00 | 1 (baseline) | 50 | 100 | 1 | 40 | 8.0 | 0 | 0 | 0 | none (checked) |\n"),
            "{r}"
        );
        assert!(
            r.contains("| service-c `GET /work`, traced | 1000 (1000) | 12.50 | 0.800 | 62 | 125 | 1.25 | 40 | 10.0 | +2.0 | 4400 | 4399 | **99.98% ⚠ 1 missing** |\n"),
            "{r}"
        );
        assert!(
            r.contains("| service-c: traced ≥ 0.80× bare by CPU at 50% of capacity, every span received | 0.800 (12.50 vs 10.00 µs/req); spans **missing** | **not met** |"),
            "{r}"
        );
        assert!(
            r.contains(
                "| service-c: zero spans dropped at 50% | 4399 of 4400 received | **not met** |"
            ),
            "{r}"
        );
        assert!(
            r.contains("| service-c: p99 ≤ 1.25× bare at 50% | 1.25× | met |"),
            "{r}"
        );
        assert!(
            r.contains("| service-c: RSS ≤ bare + 3 MiB at 50% | +2.0 MiB | met |"),
            "{r}"
        );
    }

    #[test]
    fn complete_needs_every_span_and_one_root_per_request() {
        let ok = sample(1.0, 1.0, 1.0, 1100, 2200, 2200);
        assert!(ok.complete());
        let mut wrong_parent = ok.clone();
        wrong_parent.counts.roots = 1099;
        assert!(!wrong_parent.complete());
        let mut stray = ok.clone();
        stray.counts.stray = 1;
        assert!(!stray.complete());
        assert!(!sample(1.0, 1.0, 1.0, 1100, 2200, 2201).complete());
        assert_eq!(
            exported(2200, 2201, false),
            "**100.05% ⚠ 1 spans too many**"
        );
        assert_eq!(exported(2200, 2199, false), "**99.95% ⚠ 1 missing**");
        assert_eq!(
            exported(2200, 2200, false),
            "**count right ⚠ but not one SERVER child of the incoming span per request, or spans of another trace**"
        );
        assert_eq!(exported(2200, 2200, true), "100% ✓");
        assert_eq!(exported(0, 0, true), "none (checked)");
    }

    #[test]
    fn saturation_table() {
        let sat = Saturation {
            pair: Pair::Mesh,
            bare: RunSample {
                rps: 7000.0,
                ..RunSample::default()
            },
            traced: sample(250.0, 1.0, 1.0, 4000, 44000, 11000),
        };
        let r = report(&[], &[sat]);
        assert!(
            r.contains("| mesh | 7000 | 1000 | 0.143 | 250.00 | 44000 | 11000 | **25.00% ⚠ 33000 missing** |"),
            "{r}"
        );
    }

    #[test]
    fn pair_names_round_trip() {
        for p in Pair::ALL {
            assert_eq!(Pair::from_name(p.name()), Some(p));
        }
        assert_eq!(Pair::from_name("axum-bare"), None);
    }
}
