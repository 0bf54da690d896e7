//! `mesh` — the demo in one command: `cargo run --release -p mesh`.
//!
//! Starts an embedded OTLP receiver and services a, b and c as child processes (this same
//! executable re-run as `mesh __service service-a`, so one `cargo run` builds everything the
//! demo needs), on the contract's default ports or free ones when those are taken. Then it
//! sends one request per incoming header format and one failing request, waits for the spans
//! and prints each trace as a waterfall, stops the services and exits 0 — or non-zero, naming
//! the service and showing its output, when a service fails to start or answer.
//!
//! `mesh --serve` keeps the mesh up after the demo traffic and prints the URLs: the page on a,
//! the embedded trace view, and Jaeger UI when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (the
//! services then export there instead of to the embedded receiver). Ctrl-C / SIGTERM stops
//! every child by pid.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use mesh::traffic::{self, Incoming, Parent};
use mesh::{report, Launcher, Mesh, Options, Ports, Service};
use tracebridge_testkit::OtlpReceiver;

const USAGE: &str = "usage: mesh [--serve]

Starts services a, b, c and an embedded OTLP receiver, sends a request in every trace header
format (none, W3C, Jaeger, B3, Sentry-only) plus a failing one, prints each trace as a waterfall.
  --serve        keep the mesh up afterwards and print the URLs; stop with Ctrl-C
  --free-ports   use free ports instead of the contract's defaults (8080, 50051, 50052, 8083)
Environment: DEMO_DELAY_MS (default 20 here), OTEL_PROPAGATORS (default here adds b3),
OTEL_EXPORTER_OTLP_ENDPOINT (export to e.g. Jaeger instead), JAEGER_UI_URL, SENTRY_DSN.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(Launcher::SERVICE_ARG) {
        return match args.get(1).and_then(|name| Service::from_name(name)) {
            Some(Service::A) => service_a::main(),
            Some(Service::B) => service_b::main(),
            Some(Service::C) => service_c::main(),
            None => {
                eprintln!(
                    "mesh: {} needs service-a, service-b or service-c",
                    Launcher::SERVICE_ARG
                );
                ExitCode::from(2)
            }
        };
    }
    let mut serve = false;
    let mut free_ports = false;
    for arg in &args {
        match arg.as_str() {
            "--serve" => serve = true,
            "--free-ports" => free_ports = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("mesh: unknown argument {other:?}\n\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("mesh: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(serve, free_ports)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mesh: {e}");
            ExitCode::FAILURE
        }
    }
}

fn env_set(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

async fn run(serve: bool, free_ports: bool) -> Result<(), String> {
    let external = env_set("OTEL_EXPORTER_OTLP_ENDPOINT");
    let receiver = Arc::new(
        OtlpReceiver::start()
            .await
            .map_err(|e| format!("cannot start the embedded OTLP receiver: {e}"))?,
    );
    let exe = std::env::current_exe().map_err(|e| format!("cannot find my own executable: {e}"))?;
    let ports = if free_ports {
        Ports::free()
    } else {
        Ports::defaults_or_free()
    }
    .map_err(|e| format!("cannot find free ports: {e}"))?;
    let mut env = vec![];
    if env_set("DEMO_DELAY_MS").is_none() {
        env.push(("DEMO_DELAY_MS".to_owned(), "20".to_owned()));
    }
    if env_set("OTEL_PROPAGATORS").is_none() {
        // B3 is off by default in the middleware; the demo sends a B3 request, so turn it on.
        env.push((
            "OTEL_PROPAGATORS".to_owned(),
            "tracecontext,baggage,jaeger,b3,sentry".to_owned(),
        ));
    }
    // The view binds before the services start: their JAEGER_UI_URL points at it by default.
    let view =
        mesh::view::View::for_serve(serve && external.is_none(), &receiver, &mut env).await?;
    let options = Options {
        launcher: Launcher::SelfExec(exe),
        ports,
        otlp_endpoint: if external.is_some() {
            None
        } else {
            Some(receiver.grpc_endpoint())
        },
        env,
        log_dir: std::env::temp_dir().join(format!("tracebridge-mesh-{}", std::process::id())),
        startup_timeout: Duration::from_secs(30),
    };
    println!(
        "mesh: starting service-c (gRPC {}, HTTP {}), service-b (gRPC {}), service-a (HTTP {})",
        ports.c, ports.c_http, ports.b, ports.a
    );
    let mut mesh = tokio::task::spawn_blocking(move || Mesh::start(&options))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    match &external {
        Some(endpoint) => {
            println!("mesh: services export spans to {endpoint} (OTEL_EXPORTER_OTLP_ENDPOINT)")
        }
        None => println!(
            "mesh: services export spans to the embedded OTLP receiver at {}",
            receiver.grpc_endpoint()
        ),
    }

    let sent = send_traffic(&mut mesh).await?;
    println!();
    if external.is_none() {
        print_waterfalls(&receiver, &sent).await?;
    } else {
        let jaeger =
            env_set("JAEGER_UI_URL").unwrap_or_else(|| "http://localhost:16686".to_owned());
        for (title, trace_id, status) in &sent {
            println!(
                "== {title}: HTTP {status}\n  Jaeger UI: {}/trace/{trace_id}",
                jaeger.trim_end_matches('/')
            );
        }
    }

    if serve {
        serve_until_signal(&mut mesh, view, external.as_deref()).await?;
    }
    stop(&mut mesh)
}

/// One request per incoming format and one failing request; (title, trace id, status) each.
async fn send_traffic(mesh: &mut Mesh) -> Result<Vec<(String, String, u16)>, String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| e.to_string())?;
    let a_url = mesh.ports.a_url();
    let mut sent = Vec::new();
    // (title, path, headers, expected status)
    type Request = (String, &'static str, Vec<(&'static str, String)>, u16);
    let mut requests: Vec<Request> = Incoming::ALL
        .into_iter()
        .map(|format| {
            (
                format!("GET /trace — {format}"),
                "/trace",
                traffic::headers(format, &Parent::random()),
                200,
            )
        })
        .collect();
    requests.push((
        "GET /trace?fail=c — the failing path (c answers INTERNAL, a answers 502)".to_owned(),
        "/trace?fail=c",
        vec![],
        502,
    ));
    for (title, path, headers, expected) in requests {
        let answer = traffic::get(&client, &a_url, path, &headers).await;
        let answer = match answer {
            Ok(answer) => answer,
            Err(e) => {
                mesh.check_running().map_err(|e| e.to_string())?;
                return Err(format!(
                    "service-a did not answer {path}: {e}\n{}",
                    mesh.log(Service::A)
                ));
            }
        };
        if answer.status != expected {
            return Err(format!(
                "service-a answered {path} with {} (expected {expected}): {}",
                answer.status, answer.body
            ));
        }
        let trace_id = answer
            .traceresponse_trace_id()
            .ok_or_else(|| format!("service-a's answer to {path} has no traceresponse header"))?
            .to_owned();
        println!("mesh: {title}: HTTP {} trace {trace_id}", answer.status);
        sent.push((title, trace_id, answer.status));
    }
    Ok(sent)
}

/// Waits until each sent trace has a's SERVER span (it ends last) and spans of a, b and c,
/// then prints it.
async fn print_waterfalls(
    receiver: &OtlpReceiver,
    sent: &[(String, String, u16)],
) -> Result<(), String> {
    for (title, trace_id, _) in sent {
        let complete = |spans: &[tracebridge_testkit::SpanRecord]| {
            let mine = || spans.iter().filter(|s| &s.trace_id == trace_id);
            ["service-a", "service-b", "service-c"]
                .iter()
                .all(|svc| mine().any(|s| s.service_name == *svc))
                && mine().any(|s| s.service_name == "service-a" && s.name == "GET /trace")
        };
        let spans = receiver
            .wait_for(complete, Duration::from_secs(20))
            .await
            .map_err(|e| {
                format!("the spans of trace {trace_id} ({title}) did not all arrive: {e}")
            })?;
        // Late spans of the same trace (exported in the same batch window) still get in.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = spans;
        let color = std::io::stdout().is_terminal();
        println!(
            "{}",
            report::trace_section(title, &receiver.spans_of(trace_id), color)
        );
    }
    Ok(())
}

async fn serve_until_signal(
    mesh: &mut Mesh,
    view: Option<String>,
    external: Option<&str>,
) -> Result<(), String> {
    println!("mesh: serving; stop with Ctrl-C");
    println!("  page (service a):   {}/", mesh.ports.a_url());
    println!("  GET /trace:         {}/trace", mesh.ports.a_url());
    if external.is_some() {
        let jaeger =
            env_set("JAEGER_UI_URL").unwrap_or_else(|| "http://localhost:16686".to_owned());
        println!("  Jaeger UI:          {jaeger}");
    } else if let Some(view) = view {
        println!("  trace view:         {view}/");
    }
    // One signal future for the whole wait: a signal between two checks is not lost.
    let signal = tracebridge::shutdown_signal();
    tokio::pin!(signal);
    let mut check = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = &mut signal => break,
            _ = check.tick() => mesh.check_running().map_err(|e| e.to_string())?,
        }
    }
    println!("\nmesh: stopping");
    Ok(())
}

fn stop(mesh: &mut Mesh) -> Result<(), String> {
    let mut failures = Vec::new();
    for (service, status) in mesh.shutdown(Duration::from_secs(10)) {
        match status {
            Ok(status) if status.success() => {}
            Ok(status) => failures.push(format!(
                "{service} exited with {status}:\n{}",
                mesh.log(service)
            )),
            Err(e) => failures.push(e.to_string()),
        }
    }
    if failures.is_empty() {
        println!("mesh: all services stopped cleanly");
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}
