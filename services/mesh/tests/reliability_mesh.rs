//! Reliability through the real processes (`service-a`, `service-b`, `service-c`):
//! malformed trace headers, dead or slow telemetry backends, zero loss at shutdown, and
//! downstream services killed mid-load. Every loop is bounded in count; nothing asserts a
//! duration (speed and the dead-backend throughput ratio belong to the benchmark harness).
//!
//! The tests of this file take turns (one mesh at a time): each runs three processes plus
//! its load, and the machine has two cores.

mod support;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mesh::traffic::Answer;
use mesh::Service;
use support::{assert_mesh_trace, start, TestMesh, SPAN_WAIT};
use tokio::sync::Mutex;
use tracebridge_testkit::faults::{closed_port, BlackHole, SlowProxy};
use tracebridge_testkit::sentry::trace_id_of;
use tracebridge_testkit::{SentryReceiver, SpanKind};

/// One mesh at a time.
static TURN: Mutex<()> = Mutex::const_new(());

/// Spans of one successful `GET /trace`: a (server, trace1, trace2, 2 gRPC clients), b
/// (server, HTTP client), c (gRPC server, HTTP server, 2 × trace3).
const SPANS_PER_TRACE: usize = 11;

/// `n` requests of `path` to a, at most `concurrency` at once; every answer, in order.
async fn load(t: &TestMesh, path: &str, n: usize, concurrency: usize) -> Vec<Answer> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (client, url, next, path) = (
            t.client.clone(),
            t.a_url.clone(),
            next.clone(),
            path.to_owned(),
        );
        workers.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= n {
                    return answers;
                }
                let answer = mesh::traffic::get(&client, &url, &path, &[])
                    .await
                    .unwrap_or_else(|e| panic!("request {i} to {path}: {e}"));
                answers.push(answer);
            }
        }));
    }
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.unwrap());
    }
    all
}

fn trace_id(answer: &Answer) -> String {
    answer
        .traceresponse_trace_id()
        .expect("traceresponse on every traced answer")
        .to_owned()
}

/// Resident memory of a process, in KiB (Linux `/proc`).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// SIGTERM to every service; each must exit 0.
async fn shutdown_all(t: &mut TestMesh) {
    let statuses = tokio::task::block_in_place(|| t.mesh.shutdown(Duration::from_secs(60)));
    for (service, status) in statuses {
        let status = status.unwrap_or_else(|e| panic!("{e}"));
        assert!(
            status.success(),
            "{service} exits 0 after SIGTERM: {status}"
        );
    }
}

/// Lines of `log` that mention `needle`.
fn lines_with(log: &str, needle: &str) -> usize {
    log.lines().filter(|l| l.contains(needle)).count()
}

// --- 1. Malformed trace headers through the mesh. ---

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_trace_headers_each_start_a_new_complete_trace_through_the_mesh() {
    let _turn = TURN.lock().await;
    let t = start(&[]).await;
    let garbage = "4bf92f3577b34da6a3ce929d0e0e4736";
    let span = "00f067aa0ba902b7";
    let long = format!("01-{garbage}-{span}-01-{}", "a".repeat(64 * 1024));
    let baggage: Vec<String> = (0..10_000).map(|i| format!("k{i}=v")).collect();
    let members: Vec<String> = (0..1000).map(|i| format!("k{i}=v")).collect();
    let corpus: Vec<Vec<(&'static str, String)>> = vec![
        vec![("traceparent", format!("00-{}-{span}-01", "0".repeat(32)))],
        vec![("traceparent", format!("ff-{garbage}-{span}-01"))],
        vec![(
            "traceparent",
            format!("00-{}-{span}-01", garbage.to_uppercase()),
        )],
        vec![("traceparent", long)],
        vec![("uber-trace-id", "zz:yy:xx:ww".into())],
        vec![("uber-trace-id", format!("{garbage}:{span}"))],
        vec![("b3", format!("{garbage}-0000000000000000-1"))],
        vec![("sentry-trace", format!("{garbage}-{span}-2"))],
        vec![("sentry-trace", "not-a-trace".into())],
        vec![("baggage", baggage.join(","))],
        vec![
            ("traceparent", format!("00-{garbage}-{span}")),
            ("tracestate", members.join(",")),
        ],
        vec![
            ("traceparent", format!("00-{garbage}-{span}-0")),
            ("uber-trace-id", format!("{garbage}::0:1")),
            ("sentry-trace", format!("{garbage}-{span}-1-")),
            ("baggage", format!("sentry-trace_id={garbage},=,%%%")),
        ],
    ];
    let mut seen = std::collections::HashSet::new();
    for headers in &corpus {
        let answer = t.get("/trace", headers).await;
        assert_eq!(answer.status, 200, "{:.60?}: {}", headers, answer.body);
        let id = trace_id(&answer);
        assert_ne!(id, garbage);
        assert!(seen.insert(id.clone()), "a new trace per request");
        let trace = t.trace(&id, SPANS_PER_TRACE).await;
        // The whole 11-span shape, with a's SERVER span as the root (no remote parent).
        assert_mesh_trace(&trace, None, &answer);
    }
}

// --- 3. Zero loss at shutdown. ---

/// `RELIABILITY_REQUESTS` (default 10 000) successful requests, then SIGTERM to every service:
/// the receiver holds exactly 11 spans for each of them, and nothing else. Failed requests
/// (`RELIABILITY_FAILED`, default 100, `?fail=c`) reach Sentry: exactly one event from a and
/// one from c for each, with its trace id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_span_and_sentry_event_of_every_finished_request_reaches_the_receivers() {
    let _turn = TURN.lock().await;
    let n: usize = std::env::var("RELIABILITY_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let failed: usize = std::env::var("RELIABILITY_FAILED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let sentry = SentryReceiver::start().await.unwrap();
    let dsn = sentry.dsn("reliability");
    let mut t = start(&[
        ("SENTRY_DSN", dsn.as_str()),
        ("SENTRY_TRACES_SAMPLE_RATE", "0"),
        ("OTEL_TRACES_SAMPLER", "always_on"),
        // Export keeps up at this load with the default queue; a bigger one only removes a
        // dependency on the machine's speed (the queue-full path is tested below).
        ("OTEL_BSP_MAX_QUEUE_SIZE", "65536"),
        ("RUST_LOG", "warn"),
    ])
    .await;

    let started = std::time::Instant::now();
    let answers = load(&t, "/trace", n, 8).await;
    let elapsed = started.elapsed();
    let fails = load(&t, "/trace?fail=c", failed, 4).await;
    let mut ok_ids = std::collections::HashSet::new();
    for a in &answers {
        assert_eq!(a.status, 200, "{}", a.body);
        assert!(ok_ids.insert(trace_id(a)));
    }
    let mut failed_ids = std::collections::HashSet::new();
    for a in &fails {
        assert_eq!(a.status, 502, "{}", a.body);
        assert!(failed_ids.insert(trace_id(a)));
    }
    println!(
        "zero-loss: {n} requests in {:.1}s ({:.0}/s, debug build, 8 concurrent)",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64()
    );

    shutdown_all(&mut t).await;
    // Everything was flushed before the processes exited: no waiting for stragglers.
    let spans = t.receiver.spans();
    let mut per_trace: HashMap<&str, usize> = HashMap::new();
    for s in &spans {
        *per_trace.entry(s.trace_id.as_str()).or_default() += 1;
    }
    let lost: Vec<(&String, usize)> = ok_ids
        .iter()
        .map(|id| (id, per_trace.get(id.as_str()).copied().unwrap_or(0)))
        .filter(|(_, c)| *c != SPANS_PER_TRACE)
        .take(5)
        .collect();
    assert!(lost.is_empty(), "traces not complete: {lost:?}");
    let ok_spans: usize = ok_ids.iter().map(|id| per_trace[id.as_str()]).sum();
    assert_eq!(ok_spans, n * SPANS_PER_TRACE);
    for id in &failed_ids {
        assert!(
            per_trace.contains_key(id.as_str()),
            "failed request {id} exported"
        );
    }
    assert_eq!(per_trace.len(), n + failed, "no other traces");
    for service in Service::ALL {
        let log = t.mesh.log(service);
        assert_eq!(lines_with(&log, "span queue full"), 0, "{service}: {log}");
    }

    // Sentry: one event where it failed (c) and one where it surfaced (a), per failed request.
    let events = sentry.events();
    let mut per_trace: HashMap<String, usize> = HashMap::new();
    for e in &events {
        let id = trace_id_of(e).expect("every event carries the trace id");
        *per_trace.entry(id.to_owned()).or_default() += 1;
    }
    for id in &failed_ids {
        let got = per_trace.get(id).copied().unwrap_or(0);
        assert_eq!(got, 2, "Sentry events of failed request {id}");
    }
    assert_eq!(events.len(), 2 * failed, "no other events");
    assert!(ok_ids.iter().all(|id| !per_trace.contains_key(id)));
}

// --- 2. Dead or slow backends. ---

/// How the OTLP collector misbehaves.
#[derive(Clone, Copy, Debug)]
enum Collector {
    /// Nothing listens: every export fails at connect.
    Closed,
    /// Accepts TCP, never reads or answers: every export times out.
    BlackHole,
    /// A real receiver behind a proxy that delays every chunk both ways.
    Slow,
}

async fn dead_backend(collector: Collector) {
    let _turn = TURN.lock().await;
    let n: usize = std::env::var("RELIABILITY_DEAD_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let failed = 50;
    let queue = 256;
    // Sentry unreachable in every case: its DSN points at a closed port.
    let sentry_dsn = format!("http://deadkey@127.0.0.1:{}/1", closed_port().unwrap());
    // Held for the whole test: dropping one stops it.
    let (hole, slow_receiver, proxy);
    let endpoint = match collector {
        Collector::Closed => format!("http://127.0.0.1:{}", closed_port().unwrap()),
        Collector::BlackHole => {
            hole = BlackHole::start().await.unwrap();
            hole.endpoint()
        }
        Collector::Slow => {
            slow_receiver = tracebridge_testkit::OtlpReceiver::start().await.unwrap();
            proxy = SlowProxy::start(slow_receiver.grpc_addr(), Duration::from_millis(200))
                .await
                .unwrap();
            proxy.endpoint()
        }
    };
    let queue_s = queue.to_string();
    let mut t = start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        // Short, so the shutdown flush of a full queue fits the guard's 5 s bound.
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "500"),
        ("OTEL_BSP_MAX_QUEUE_SIZE", queue_s.as_str()),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "64"),
        ("SENTRY_DSN", sentry_dsn.as_str()),
        ("OTEL_TRACES_SAMPLER", "always_on"),
    ])
    .await;
    let a_pid = t.mesh.pid(Service::A);

    let started = std::time::Instant::now();
    let warm = load(&t, "/trace", 200, 8).await;
    assert!(warm.iter().all(|a| a.status == 200));
    let rss_before = rss_kib(a_pid);
    let answers = load(&t, "/trace", n, 8).await;
    let fails = load(&t, "/trace?fail=c", failed, 4).await;
    let rss_after = rss_kib(a_pid);
    let not_ok: Vec<_> = answers.iter().filter(|a| a.status != 200).take(3).collect();
    assert!(not_ok.is_empty(), "{collector:?}: {not_ok:?}");
    assert!(fails.iter().all(|a| a.status == 502), "{collector:?}");

    shutdown_all(&mut t).await;
    let elapsed = started.elapsed();
    let log = t.mesh.log(Service::A);
    let reports: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("tracebridge::export") && l.contains("lost_spans="))
        .collect();
    println!(
        "{collector:?}: {} requests in {:.1}s, a's RSS {rss_before} → {rss_after} KiB, export reports:\n{}\n{}",
        n + 200 + failed,
        elapsed.as_secs_f64(),
        reports.join("\n"),
        log.lines().filter(|l| l.contains("tracebridge::pipeline")).collect::<Vec<_>>().join("\n"),
    );
    // Never per request: the SDK's line per failed export is gone, failures are summarised at
    // most once per interval (+ the first one and the shutdown summary), the first drop and
    // the dropped total once each.
    for service in Service::ALL {
        let log = t.mesh.log(service);
        assert_eq!(lines_with(&log, "Export.Error"), 0, "{service}");
        assert_eq!(lines_with(&log, "ExportError"), 0, "{service}");
        assert!(lines_with(&log, "span queue full") <= 1, "{service}");
        assert!(lines_with(&log, "dropped_spans_total") <= 1, "{service}");
        let per_interval = 2 + (elapsed.as_secs() / REPORT_INTERVAL_SECS) as usize;
        // Drops too: the first at once, then at most one line per interval, and the total.
        let drop_lines = lines_with(&log, "tracebridge::pipeline");
        assert!(
            drop_lines <= per_interval,
            "{service}: {drop_lines} drop lines in {elapsed:?}"
        );
        let lines = lines_with(&log, "tracebridge::export");
        assert!(
            lines <= per_interval,
            "{service}: {lines} report lines in {elapsed:?}"
        );
    }
    // Memory: the queue is the only buffer. Counted exactly: every span a created (5 per
    // request, failed ones included) was either dropped at the full queue or lost in a
    // failed export — none is held anywhere else.
    assert!(
        rss_after < rss_before + 32 * 1024,
        "{rss_before} → {rss_after} KiB"
    );
    if matches!(collector, Collector::Closed | Collector::BlackHole) {
        assert!(!reports.is_empty(), "export failures are reported");
        let lost: u64 = reports.iter().map(|l| field(l, "lost_spans")).sum();
        let dropped: u64 = log
            .lines()
            .find(|l| l.contains("dropped_spans_total="))
            .map(|l| field(l, "dropped_spans_total"))
            .unwrap_or(0);
        assert_eq!(
            lost + dropped,
            5 * (200 + n + failed) as u64,
            "lost {lost} + dropped {dropped}"
        );
    }
}

/// `REPORT_INTERVAL` of `tracebridge::export`, in seconds.
const REPORT_INTERVAL_SECS: u64 = tracebridge::export::REPORT_INTERVAL.as_secs();

/// The number after `name=` in a log line.
fn field(line: &str, name: &str) -> u64 {
    let at = line
        .find(&format!("{name}="))
        .unwrap_or_else(|| panic!("{name} in {line}"));
    line[at + name.len() + 1..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_collector_and_unreachable_sentry_never_fail_a_request() {
    dead_backend(Collector::Closed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn black_holed_collector_and_unreachable_sentry_never_fail_a_request() {
    dead_backend(Collector::BlackHole).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_collector_and_unreachable_sentry_never_fail_a_request() {
    dead_backend(Collector::Slow).await;
}

// --- 4. Downstream faults. ---

/// Starts `service` again (same binary, ports and telemetry as the mesh gave it); the caller
/// kills the child.
fn restart(t: &mut TestMesh, service: Service, sentry_dsn: &str) -> Child {
    let p = t.mesh.ports;
    let mut cmd = Command::new(support::service_binaries().join(service.name()));
    cmd.env_remove("OTEL_SERVICE_NAME")
        .env("A_LISTEN", p.a.to_string())
        .env("B_LISTEN", p.b.to_string())
        .env("C_LISTEN", p.c.to_string())
        .env("C_HTTP_LISTEN", p.c_http.to_string())
        .env("B_URL", format!("http://{}", p.b))
        .env("C_URL", format!("http://{}", p.c))
        .env("C_HTTP_URL", format!("http://{}", p.c_http))
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", t.receiver.grpc_endpoint())
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        .env("OTEL_PROPAGATORS", "tracecontext,baggage,jaeger,b3,sentry")
        .env("DEMO_DELAY_MS", "0")
        .env("SENTRY_DSN", sentry_dsn)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd.spawn().expect("restart the service")
}

async fn killed_mid_load(victim: Service) {
    let _turn = TURN.lock().await;
    let sentry = SentryReceiver::start().await.unwrap();
    let dsn = sentry.dsn("faults");
    let mut t = start(&[("SENTRY_DSN", dsn.as_str())]).await;

    // Load from two workers until told to stop (bounded: at most 4000 requests in all).
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let answers: Arc<std::sync::Mutex<Vec<Answer>>> = Arc::default();
    let mut workers = Vec::new();
    for _ in 0..2 {
        let (client, url, stop, answers) = (
            t.client.clone(),
            t.a_url.clone(),
            stop.clone(),
            answers.clone(),
        );
        workers.push(tokio::spawn(async move {
            for _ in 0..2000 {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let answer = mesh::traffic::get(&client, &url, "/trace", &[])
                    .await
                    .expect("a always answers");
                answers.lock().unwrap().push(answer);
            }
        }));
    }
    let count = |status: u16| {
        answers
            .lock()
            .unwrap()
            .iter()
            .filter(|a| a.status == status)
            .count()
    };
    let wait_until = |what: &'static str, f: &dyn Fn() -> bool| {
        for _ in 0..600 {
            if f() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{what} never happened");
    };
    tokio::task::block_in_place(|| wait_until("20 answers", &|| count(200) >= 20));
    let pid = t.mesh.pid(victim);
    mesh::process::signal(pid, "KILL").unwrap();
    tokio::task::block_in_place(|| wait_until("20 × 502", &|| count(502) >= 20));
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.await.unwrap();
    }
    let all = answers.lock().unwrap().clone();
    let odd: Vec<&Answer> = all
        .iter()
        .filter(|a| a.status != 200 && a.status != 502)
        .collect();
    assert!(odd.is_empty(), "only 200 or 502: {odd:?}");
    // Once the victim is gone, a fails fast with 502 (no request hangs: the client's own
    // 60 s timeout would have failed `get` above), and says which upstream broke.
    let failed = all.iter().rev().find(|a| a.status == 502).unwrap().clone();
    let error = failed.body["error"].as_str().unwrap_or_default().to_owned();
    let upstream = match victim {
        Service::B => "service-b",
        _ => "service-c",
    };
    assert!(error.contains(upstream), "{error}");

    // ERROR spans where it surfaced, with the trace id of the answer.
    let id = trace_id(&failed);
    // a calls b first, and b calls c over HTTP: with c gone it is b's call that fails first,
    // so the failure surfaces in a on its call to b either way.
    let rpc = "ping.PingB/Ping";
    let spans = t
        .receiver
        .wait_for(
            |s| {
                s.iter().any(|x| x.trace_id == id && x.name == "GET /trace")
                    && s.iter()
                        .any(|x| x.trace_id == id && x.name == rpc && x.kind == SpanKind::Client)
            },
            SPAN_WAIT,
        )
        .await
        .unwrap();
    let mine: Vec<_> = spans.iter().filter(|s| s.trace_id == id).collect();
    let server = mine.iter().find(|s| s.name == "GET /trace").unwrap();
    assert!(server.status.is_error(), "{}", server.summary());
    assert_eq!(server.attr_i64("http.response.status_code"), Some(502));
    let client = mine
        .iter()
        .find(|s| s.name == rpc && s.kind == SpanKind::Client && s.status.is_error())
        .unwrap_or_else(|| panic!("an ERROR client span {rpc}: {mine:#?}"));
    assert_eq!(client.service_name, "service-a");
    if victim == Service::C {
        // Where it failed: b's HTTP client span to c's /work.
        let spans = t
            .receiver
            .wait_for(
                |s| {
                    s.iter().any(|x| {
                        x.trace_id == id && x.service_name == "service-b" && x.name == "GET"
                    })
                },
                SPAN_WAIT,
            )
            .await
            .unwrap();
        let b_client = spans
            .iter()
            .find(|x| x.trace_id == id && x.service_name == "service-b" && x.name == "GET")
            .unwrap();
        assert_eq!(b_client.kind, SpanKind::Client);
        assert!(b_client.status.is_error(), "{}", b_client.summary());
    }
    // ... and a Sentry event from a in the same trace.
    sentry
        .wait_for(
            |envs| {
                envs.iter()
                    .flat_map(|e| e.payloads("event"))
                    .any(|p| trace_id_of(p) == Some(id.as_str()))
            },
            SPAN_WAIT,
        )
        .await
        .unwrap_or_else(|e| panic!("Sentry event for {id}: {e}"));

    // The victim returns: a recovers without a restart of its own.
    let mut back = restart(&mut t, victim, &dsn);
    let mut recovered = None;
    for _ in 0..300 {
        let answer = t.get("/trace", &[]).await;
        if answer.status == 200 {
            recovered = Some(answer);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let first = recovered.expect("a recovers once the service is back");
    for _ in 0..20 {
        let answer = t.get("/trace", &[]).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    let id = trace_id(&first);
    let trace = t.trace(&id, SPANS_PER_TRACE).await;
    assert_mesh_trace(&trace, None, &first);
    let _ = back.kill();
    let _ = back.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b_killed_mid_load_gives_502_with_error_spans_and_sentry_events_then_recovers() {
    killed_mid_load(Service::B).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_killed_mid_load_gives_502_with_error_spans_and_sentry_events_then_recovers() {
    killed_mid_load(Service::C).await;
}
