//! `tb-bench`: the load harness of issue 5 (see docs/performance.md; `scripts/bench.sh` is the
//! one command that builds and runs it).
//!
//! ```text
//! tb-bench run [--quick] [--rounds N] [--secs S] [--conns N] [--only v1,v2] [--no-mesh] [--out FILE]
//! tb-bench backends [--quick] [--rounds N] [--secs S] [--only v1,v2] [--slow-ms MS] [--out FILE]
//!                                           # dead / slow OTLP collector and Sentry vs healthy
//! tb-bench server <variant> <addr>          # one variant server (the runner starts these)
//! tb-bench rate [--quick] [--rounds N] [--secs S] [--percents 20,50] [--rate R] [--only p1,p2] [--out FILE]
//!                                           # fixed-rate (open-loop) server CPU per request
//! tb-bench load --proto http|grpc --addr A --millis M --conns N --streams K --trace-id T --span-id S [--path P] [--rate R]
//! tb-bench list                             # the variants
//! ```

mod backends;
mod counter;
mod load;
mod procfs;
mod rate;
mod runner;
mod server;
mod variant;

use std::process::ExitCode;
use std::time::Duration;

use variant::{Proto, Variant};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("run") => cmd_run(&args[1..]),
        Some("backends") => cmd_backends(&args[1..]),
        Some("rate") => cmd_rate(&args[1..]),
        Some("server") => cmd_server(&args[1..]),
        Some("load") => cmd_load(&args[1..]),
        Some("list") => {
            for v in Variant::ALL {
                println!("{:<28} {}", v.name(), v.description());
            }
            Ok(())
        }
        _ => Err(
            "usage: tb-bench run [--quick] [--rounds N] [--secs S] [--conns N] [--only v1,v2] \
             [--no-mesh] [--out FILE] | backends [--quick] [--rounds N] [--secs S] [--only v1,v2] \
             [--slow-ms MS] [--out FILE] | rate [--quick] [--rounds N] [--secs S] \
             [--percents 20,50] [--rate R,...] [--only axum,tonic,service-c,mesh] [--out FILE] | server <variant> <addr> | load ... | list"
                .to_owned(),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tb-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `--name value` pairs and bare `--flag`s.
struct Args<'a> {
    args: &'a [String],
}

impl<'a> Args<'a> {
    fn flag(&self, name: &str) -> bool {
        self.args.iter().any(|a| a == name)
    }

    fn value(&self, name: &str) -> Option<&'a str> {
        let i = self.args.iter().position(|a| a == name)?;
        self.args.get(i + 1).map(String::as_str)
    }

    fn parse<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, String> {
        self.value(name)
            .map(|v| {
                v.parse()
                    .map_err(|_| format!("bad value for {name}: {v:?}"))
            })
            .transpose()
    }

    fn required(&self, name: &str) -> Result<&'a str, String> {
        self.value(name)
            .ok_or_else(|| format!("{name} is required"))
    }
}

/// `--quick`, `--rounds`, `--secs`, `--conns`: shared by `run` and `backends`.
fn run_options(a: &Args) -> Result<runner::Options, String> {
    let mut opts = if a.flag("--quick") {
        runner::Options::quick()
    } else {
        runner::Options::full()
    };
    if let Some(n) = a.parse("--rounds")? {
        opts.rounds = n;
        opts.mesh_rounds = n;
    }
    if let Some(s) = a.parse::<f64>("--secs")? {
        opts.duration = Duration::from_secs_f64(s);
    }
    if let Some(n) = a.parse("--conns")? {
        opts.conns = n;
    }
    Ok(opts)
}

fn cmd_run(args: &[String]) -> Result<(), String> {
    let a = Args { args };
    let mut opts = run_options(&a)?;
    if let Some(only) = a.value("--only") {
        opts.variants = only
            .split(',')
            .map(|n| Variant::from_name(n).ok_or_else(|| format!("unknown variant {n:?}")))
            .collect::<Result<_, _>>()?;
        opts.variants.retain(|v| !v.is_bare());
    }
    if a.flag("--no-mesh") {
        opts.mesh = false;
    }
    opts.out = a.value("--out").map(Into::into);
    let out = opts.out.clone();
    let report = runner::run(opts)?;
    println!("{report}");
    if let Some(path) = out {
        std::fs::write(&path, &report).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

fn cmd_backends(args: &[String]) -> Result<(), String> {
    let a = Args { args };
    let mut run = run_options(&a)?;
    run.mesh = false;
    run.variants = vec![Variant::AxumTracebridge, Variant::TonicTracebridge];
    if let Some(only) = a.value("--only") {
        run.variants = only
            .split(',')
            .map(|n| match Variant::from_name(n) {
                Some(v @ (Variant::AxumTracebridge | Variant::TonicTracebridge)) => Ok(v),
                _ => Err(format!(
                    "{n:?}: the backends benchmark runs axum-tracebridge and tonic-tracebridge"
                )),
            })
            .collect::<Result<_, _>>()?;
    }
    let slow_delay = Duration::from_millis(a.parse("--slow-ms")?.unwrap_or(200));
    let out = a.value("--out").map(std::path::PathBuf::from);
    let report = backends::run(backends::BackendOptions { run, slow_delay })?;
    println!("{report}");
    if let Some(path) = out {
        std::fs::write(&path, &report).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

fn cmd_rate(args: &[String]) -> Result<(), String> {
    let a = Args { args };
    let mut opts = if a.flag("--quick") {
        rate::RateOptions::quick()
    } else {
        rate::RateOptions::full()
    };
    if let Some(n) = a.parse("--rounds")? {
        opts.rounds = n;
    }
    if let Some(s) = a.parse::<f64>("--secs")? {
        opts.duration = Duration::from_secs_f64(s);
    }
    let numbers = |name: &str| -> Result<Option<Vec<f64>>, String> {
        a.value(name)
            .map(|list| {
                list.split(',')
                    .map(|v| match v.parse::<f64>() {
                        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
                        _ => Err(format!("bad value in {name}: {v:?}")),
                    })
                    .collect()
            })
            .transpose()
    };
    if let Some(p) = numbers("--percents")? {
        opts.percents = p;
    }
    if let Some(r) = numbers("--rate")? {
        opts.rates = r;
    }
    if let Some(only) = a.value("--only") {
        opts.pairs = only
            .split(',')
            .map(|n| {
                rate::Pair::from_name(n)
                    .ok_or_else(|| format!("unknown pair {n:?} (axum, tonic, service-c, mesh)"))
            })
            .collect::<Result<_, _>>()?;
    }
    if opts.rounds == 0 {
        return Err("--rounds must be at least 1".into());
    }
    let out = a.value("--out").map(std::path::PathBuf::from);
    let report = rate::run(opts)?;
    println!("{report}");
    if let Some(path) = out {
        std::fs::write(&path, &report).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

fn cmd_server(args: &[String]) -> Result<(), String> {
    let [name, addr] = args else {
        return Err("usage: tb-bench server <variant> <addr>".into());
    };
    let variant = Variant::from_name(name).ok_or_else(|| format!("unknown variant {name:?}"))?;
    let addr = addr.parse().map_err(|_| format!("bad address {addr:?}"))?;
    server::serve(variant, addr).map_err(|e| e.to_string())
}

fn cmd_load(args: &[String]) -> Result<(), String> {
    let a = Args { args };
    let proto = match a.required("--proto")? {
        "http" => Proto::Http,
        "grpc" => Proto::Grpc,
        other => return Err(format!("unknown protocol {other:?}")),
    };
    let cfg = load::LoadConfig {
        proto,
        addr: a
            .required("--addr")?
            .parse()
            .map_err(|_| "bad --addr".to_owned())?,
        path: a.value("--path").unwrap_or("/hello").to_owned(),
        duration: Duration::from_millis(a.parse("--millis")?.unwrap_or(2000)),
        conns: a.parse("--conns")?.unwrap_or(32),
        streams: a.parse("--streams")?.unwrap_or(8),
        incoming: load::Incoming {
            trace_id: a.required("--trace-id")?.to_owned(),
            span_id: a.required("--span-id")?.to_owned(),
        },
        rate: a.parse("--rate")?,
    };
    if let Some(rate) = cfg.rate {
        load::Schedule::new(rate, cfg.duration)?;
    }
    let pid = std::process::id();
    let cpu0 = procfs::cpu_time(pid).unwrap_or_default();
    let result = load::run(&cfg);
    let cpu = procfs::cpu_time(pid).unwrap_or_default() - cpu0;
    let summary = result.summary();
    println!(
        "{}",
        summary.to_json(100.0 * cpu.as_secs_f64() / result.elapsed.as_secs_f64())
    );
    Ok(())
}
