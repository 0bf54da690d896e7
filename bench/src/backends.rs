//! `tb-bench backends`: throughput of the tracebridge variants while the telemetry backends
//! are dead or slow, as a ratio to the healthy run of the same round (issue 6, item 2).
//!
//! Backends, each a fresh server process started through `tracebridge`'s public init path
//! (`Builder::from_env`, the SDK's default queue and timeouts):
//!
//! | backend | OTLP endpoint | `SENTRY_DSN` |
//! |---|---|---|
//! | `healthy` | the loopback [`OtlpReceiver`] | the loopback Sentry receiver |
//! | `closed` | a port nothing listens on | a closed port |
//! | `black-hole` | a listener that accepts and never reads or answers | a closed port |
//! | `slow` | a proxy adding `--slow-ms` (200 ms) before every chunk, in front of a second receiver | a closed port |
//!
//! Every round runs every backend once per variant, right after one another, with the order
//! rotated from round to round, so a neighbour compiling on the same cores hits all backends
//! alike; the ratio is taken within the round. Per run the harness also reads what the server
//! logged about its spans: dropped at the full queue (the SDK's total at shutdown), lost in failed
//! exports (`tracebridge::export` report lines), and counts what reached the receiver.

use std::fmt::Write as _;
use std::time::Duration;

use tracebridge_testkit::faults::{self, BlackHole, SlowProxy};
use tracebridge_testkit::{OtlpReceiver, SpanKind};

use crate::load::Incoming;
use crate::runner::{median, Harness, Options, Sample, MIB};
use crate::variant::Variant;

/// The state of the telemetry backends during one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Healthy,
    Closed,
    BlackHole,
    Slow,
}

impl Backend {
    pub const ALL: [Backend; 4] = [
        Backend::Healthy,
        Backend::Closed,
        Backend::BlackHole,
        Backend::Slow,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Backend::Healthy => "healthy",
            Backend::Closed => "closed",
            Backend::BlackHole => "black-hole",
            Backend::Slow => "slow",
        }
    }
}

/// Options of `tb-bench backends` on top of the runner's.
#[derive(Clone, Debug)]
pub struct BackendOptions {
    pub run: Options,
    /// The slow proxy's delay per chunk.
    pub slow_delay: Duration,
}

/// The misbehaving backends, alive for the whole benchmark (on the runner's runtime, on the
/// load core).
struct Faults {
    closed_endpoint: String,
    dead_sentry_dsn: String,
    hole: BlackHole,
    slow_receiver: OtlpReceiver,
    proxy: SlowProxy,
}

/// One run's span accounting, from the receiver and the server's log.
#[derive(Clone, Debug, Default)]
struct Spans {
    served: u64,
    exported: u64,
    dropped: u64,
    lost: u64,
    /// `tracebridge::export` and `BatchSpanProcessor` lines in the log.
    report_lines: u64,
}

impl Spans {
    fn unaccounted(&self) -> u64 {
        self.served
            .saturating_sub(self.exported + self.dropped + self.lost)
    }
}

/// Throughput relative to the healthy run of the same round.
#[derive(Clone, Copy, Debug)]
struct Ratio {
    /// req/s ÷ healthy req/s: what the issue asks for, but on a shared machine it also
    /// measures how much of its core the server got.
    rps: f64,
    /// healthy CPU µs/request ÷ this CPU µs/request: the server's capacity per core-second,
    /// which a neighbour taking CPU time does not change.
    capacity: f64,
}

type Run = (Variant, Backend, Sample, Spans, Ratio);

/// Runs the benchmark; the markdown report, or `Err` when a request failed or a check broke.
pub fn run(opts: BackendOptions) -> Result<String, String> {
    let mut h = Harness::new(opts.run)?;
    let faults = h.rt.block_on(async {
        let slow_receiver = OtlpReceiver::start().await?;
        let proxy = SlowProxy::start(slow_receiver.grpc_addr(), opts.slow_delay).await?;
        Ok::<_, std::io::Error>(Faults {
            closed_endpoint: format!("http://127.0.0.1:{}", faults::closed_port()?),
            dead_sentry_dsn: format!("http://deadkey@127.0.0.1:{}/1", faults::closed_port()?),
            hole: BlackHole::start().await?,
            slow_receiver,
            proxy,
        })
    });
    let faults = faults.map_err(|e| format!("starting the faulty backends: {e}"))?;

    let variants = h.opts.variants.clone();
    let rounds = h.opts.rounds;
    let mut runs: Vec<Run> = Vec::new();
    let mut loads: Vec<f64> = Vec::new();
    for round in 0..rounds {
        let load = loadavg();
        loads.push(load);
        eprintln!("round {}: load average {load:.2}", round + 1);
        for &variant in &variants {
            let mut order = Backend::ALL;
            order.rotate_left(round % Backend::ALL.len());
            let mut this_round: Vec<(Backend, Sample, Spans)> = Vec::new();
            for backend in order {
                let (sample, spans) = measure(&mut h, &faults, variant, backend)?;
                eprintln!(
                    "round {}: {:<18} {:<10} {:>8.0} req/s  p99 {:>6.0} µs  cpu {:>5.1} µs/req {:>3.0}%  exported {} dropped {} lost {} unaccounted {}",
                    round + 1,
                    variant.name(),
                    backend.name(),
                    sample.rps,
                    sample.p99_us,
                    sample.cpu_us_per_req,
                    sample.server_cpu_pct,
                    spans.exported,
                    spans.dropped,
                    spans.lost,
                    spans.unaccounted(),
                );
                this_round.push((backend, sample, spans));
            }
            let healthy = this_round
                .iter()
                .find(|r| r.0 == Backend::Healthy)
                .map(|r| r.1.clone())
                .ok_or("no healthy run")?;
            for (backend, sample, spans) in this_round {
                let ratio = Ratio {
                    rps: sample.rps / healthy.rps,
                    capacity: healthy.cpu_us_per_req / sample.cpu_us_per_req,
                };
                runs.push((variant, backend, sample, spans, ratio));
            }
        }
    }
    loads.push(loadavg());
    h.remove_logs();
    drop(faults);
    Ok(report(&variants, &runs, &loads))
}

/// One run of `variant` against `backend`, with its span accounting.
fn measure(
    h: &mut Harness,
    faults: &Faults,
    variant: Variant,
    backend: Backend,
) -> Result<(Sample, Spans), String> {
    let env: Vec<(&str, String)> = match backend {
        Backend::Healthy => vec![],
        Backend::Closed => vec![(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            faults.closed_endpoint.clone(),
        )],
        Backend::BlackHole => vec![("OTEL_EXPORTER_OTLP_ENDPOINT", faults.hole.endpoint())],
        Backend::Slow => vec![("OTEL_EXPORTER_OTLP_ENDPOINT", faults.proxy.endpoint())],
    };
    let mut env = env;
    if backend != Backend::Healthy {
        env.push(("SENTRY_DSN", faults.dead_sentry_dsn.clone()));
    }
    let (served, incoming, sample) = h.measure_with(variant, &env)?;
    let receiver = match backend {
        Backend::Healthy => Some(&h.otlp),
        Backend::Slow => Some(&faults.slow_receiver),
        Backend::Closed | Backend::BlackHole => None,
    };
    let log = h.server_log(variant.name())?;
    let mut spans = Spans {
        served,
        // tracebridge's own pipeline logs `dropped_spans_total=N` at shutdown; the SDK's
        // thread-based processor (comparison stacks) `SpansDropped dropped_span_count=N` as its
        // shutdown starts; the async-runtime one `Shutdown dropped_spans=N` as it ends.
        dropped: last_field(&log, "dropped_spans_total=", "dropped_spans_total")
            .max(last_field(
                &log,
                "BatchSpanProcessor.SpansDropped",
                "dropped_span_count",
            ))
            .max(last_field(
                &log,
                "BatchSpanProcessor.Shutdown",
                "dropped_spans",
            )),
        lost: log
            .lines()
            .filter(|l| l.contains("tracebridge::export"))
            .map(|l| field(l, "lost_spans").unwrap_or(0))
            .sum(),
        report_lines: log
            .lines()
            .filter(|l| {
                l.contains("tracebridge::export")
                    || l.contains("tracebridge::pipeline")
                    || l.contains("BatchSpanProcessor")
            })
            .count() as u64,
        ..Spans::default()
    };
    if let Some(receiver) = receiver {
        // What the slow proxy still holds is delivered after the server has gone: give it
        // a moment (never more than needed: the wait ends once everything served is in).
        let want = served as usize;
        let _ =
            h.rt.block_on(receiver.wait_for(|s| s.len() >= want, Duration::from_secs(2)));
        let got = receiver.spans_of(&incoming.trace_id);
        check_spans(variant, backend, &incoming, &got, receiver.spans().len())?;
        spans.exported = got.len() as u64;
        receiver.clear();
    }
    h.sentry.clear();
    if spans.exported + spans.dropped + spans.lost > served {
        return Err(format!(
            "{} / {}: exported {} + dropped {} + lost {} > {served} requests",
            variant.name(),
            backend.name(),
            spans.exported,
            spans.dropped,
            spans.lost
        ));
    }
    Ok((sample, spans))
}

/// Every exported span is a SERVER child of the incoming span, and nothing else arrived.
fn check_spans(
    variant: Variant,
    backend: Backend,
    incoming: &Incoming,
    got: &[tracebridge_testkit::SpanRecord],
    all: usize,
) -> Result<(), String> {
    let bad = got.iter().find(|s| {
        s.kind != SpanKind::Server || s.parent_span_id.as_deref() != Some(incoming.span_id.as_str())
    });
    if let Some(bad) = bad {
        return Err(format!(
            "TRACE CHECK FAILED for {} / {}: {}",
            variant.name(),
            backend.name(),
            bad.summary()
        ));
    }
    if got.len() != all {
        return Err(format!(
            "TRACE CHECK FAILED for {} / {}: {} spans of other traces",
            variant.name(),
            backend.name(),
            all - got.len()
        ));
    }
    Ok(())
}

/// The number after `name=` in `line`.
fn field(line: &str, name: &str) -> Option<u64> {
    let key = format!("{name}=");
    let at = line.find(&key)? + key.len();
    line[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .ok()
}

/// `name=` of the last line containing `marker` (0 when there is none: nothing was dropped).
fn last_field(log: &str, marker: &str, name: &str) -> u64 {
    log.lines()
        .rev()
        .find(|l| l.contains(marker))
        .and_then(|l| field(l, name))
        .unwrap_or(0)
}

/// The 1-minute load average.
fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

fn report(variants: &[Variant], runs: &[Run], loads: &[f64]) -> String {
    let mut out = String::new();
    let rounds = runs
        .iter()
        .filter(|r| r.1 == Backend::Healthy && Some(&r.0) == variants.first())
        .count();
    let lmin = loads.iter().copied().fold(f64::INFINITY, f64::min);
    let lmax = loads.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let _ = writeln!(
        out,
        "{rounds} round(s); 1-minute load average {lmin:.2}–{lmax:.2} at the round starts and the end\n"
    );
    let _ = writeln!(
        out,
        "| variant | OTLP collector (Sentry) | req/s (median) | ratio to healthy (median) | ratio min–max | ≥ 0.95× | CPU-normalised ratio (median) | p50 µs | p99 µs | server CPU µs/req | server CPU % | RSS after load MiB | spans exported | dropped at the full queue | lost in failed exports | not accounted | log lines | failed requests (one stops the run) |"
    );
    let _ = writeln!(
        out,
        "|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for &variant in variants {
        for backend in Backend::ALL {
            let rs: Vec<_> = runs
                .iter()
                .filter(|r| r.0 == variant && r.1 == backend)
                .collect();
            if rs.is_empty() {
                continue;
            }
            let pct = |f: fn(&Spans) -> u64| {
                let share = median(rs.iter().map(|r| f(&r.3) as f64 / r.3.served.max(1) as f64));
                format!("{:.0}%", 100.0 * share)
            };
            let ratio = median(rs.iter().map(|r| r.4.rps));
            let rmin = rs.iter().map(|r| r.4.rps).fold(f64::INFINITY, f64::min);
            let rmax = rs.iter().map(|r| r.4.rps).fold(f64::NEG_INFINITY, f64::max);
            let capacity = median(rs.iter().map(|r| r.4.capacity));
            let (label, ratio_s, range, verdict, capacity_s) = if backend == Backend::Healthy {
                (
                    "healthy (loopback receivers)".to_owned(),
                    "1 (baseline)".to_owned(),
                    "–".to_owned(),
                    "–",
                    "1".to_owned(),
                )
            } else {
                (
                    format!("{} (unreachable)", backend.name()),
                    format!("{ratio:.3}"),
                    format!("{rmin:.3}–{rmax:.3}"),
                    if ratio >= 0.95 { "yes" } else { "**no**" },
                    format!("{capacity:.3}"),
                )
            };
            let _ = writeln!(
                out,
                "| {} | {label} | {:.0} | {ratio_s} | {range} | {verdict} | {capacity_s} | {:.0} | {:.0} | {:.1} | {:.0} | {:.1} | {} | {} | {} | {} | {:.0} | 0 |",
                variant.name(),
                median(rs.iter().map(|r| r.2.rps)),
                median(rs.iter().map(|r| r.2.p50_us)),
                median(rs.iter().map(|r| r.2.p99_us)),
                median(rs.iter().map(|r| r.2.cpu_us_per_req)),
                median(rs.iter().map(|r| r.2.server_cpu_pct)),
                median(rs.iter().map(|r| r.2.rss as f64)) / MIB,
                pct(|s| s.exported),
                pct(|s| s.dropped),
                pct(|s| s.lost),
                pct(Spans::unaccounted),
                median(rs.iter().map(|r| r.3.report_lines as f64)),
            );
        }
    }
    let _ = writeln!(
        out,
        "\nSpan columns: median share of the requests served in a run (warm-up included); \
         \"dropped\" is the SDK's `BatchSpanProcessor.SpansDropped dropped_span_count` (or, from \
         the async-runtime processor, `BatchSpanProcessor.Shutdown dropped_spans`), \"lost\" the sum of \
         `lost_spans` in `tracebridge::export` lines, \"not accounted\" what was still queued when \
         the shutdown flush hit its bound. Log lines: median per run, over the whole run. \
         CPU-normalised ratio: healthy CPU µs/request ÷ this run's, same round (capacity per \
         core-second; not moved by another process taking CPU time from the server)."
    );
    out
}
