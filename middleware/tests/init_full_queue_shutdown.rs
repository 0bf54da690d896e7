//! Zero loss at shutdown with a full queue: a service ends exactly as many spans as its batch
//! queue holds (`OTEL_BSP_MAX_QUEUE_SIZE`) right before dropping the `Guard`, and every one of
//! them reaches a real OTLP/gRPC receiver — counted exactly, matched by span id and name.
//!
//! Each case runs `tracebridge::init()` in a child process (this binary, running the
//! `#[ignore]`d `child` test; init installs process-wide state once per process). The parent
//! owns the receiver (and the proxy in front of it), so what it counts is what crossed the
//! wire, after the child has exited. The child prints one `FULLQ span <id> <name>` line per
//! span it ended, `FULLQ ended` once every span has ended, and drops the guard when the parent
//! answers `go` on its stdin (printing `FULLQ shutdown` right before).
//!
//! - `every_span_of_a_full_queue_reaches_the_receiver_at_shutdown`: the schedule delay is an
//!   hour and the batch is the whole queue, so no timer export runs: the queue fills, its last
//!   span triggers the first export, and shutdown starts right behind it.
//! - `…_while_an_export_is_still_in_flight`: batches of 64 through a proxy that is paused, so
//!   the first export (triggered by the 64th span) is held mid-request while the queue fills;
//!   the guard is dropped with that export still in progress, and only then does the proxy
//!   resume (adding a delay per chunk).
//!
//! Nothing here asserts a duration: the waits are generous bounds on things that must happen.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tracebridge_testkit::faults::SlowProxy;
use tracebridge_testkit::{OtlpReceiver, SpanKind};

mod init_support;
use init_support::{child_test, is_child};

/// `OTEL_BSP_MAX_QUEUE_SIZE` in both cases, and the number of spans the child ends.
const QUEUE: usize = 256;
/// How many spans the child ends: exactly what the queue holds (`FULLQ_SPANS` overrides it,
/// only to check that the test fails when spans are lost; see the report).
fn spans_to_end() -> usize {
    std::env::var("FULLQ_SPANS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(QUEUE)
}

/// A bound for each step of the protocol (a hang fails the test instead of blocking it).
const STEP: Duration = Duration::from_secs(60);

/// The child: init from the environment, end the spans, wait for `go`, drop the guard.
#[test]
#[ignore = "run in a child process by the other tests of this file"]
fn child() {
    if !is_child("child") {
        eprintln!("skipped: only meaningful as the child of this file's tests");
        return;
    }
    use opentelemetry::trace::TraceContextExt as _;
    use tracebridge::SpanExt as _;

    let guard = tracebridge::init().expect("init");
    let n = spans_to_end();
    for i in 0..n {
        let name = format!("job {i}");
        let span = tracing::info_span!("job", otel.name = %name, otel.kind = "internal", i);
        let id = span.context().span().span_context().span_id();
        drop(span); // ends it: into the queue
        println!("FULLQ span {id} {name}");
    }
    println!("FULLQ ended");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).expect("stdin");
    assert_eq!(line.trim(), "go");
    println!("FULLQ shutdown");
    drop(guard);
    println!("FULLQ exited");
}

/// The environment of the child: OTLP/gRPC to `endpoint`, the queue of [`QUEUE`], no timer
/// export, 100% sampling; nothing inherited from the test's own environment.
fn child_process(endpoint: &str, batch: usize) -> tokio::process::Command {
    let mut cmd = child_test("child");
    for (k, _) in std::env::vars() {
        if k.starts_with("OTEL_") || k.starts_with("SENTRY_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    cmd.env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        .env("OTEL_SERVICE_NAME", "full-queue")
        .env("OTEL_TRACES_SAMPLER", "always_on")
        .env("OTEL_BSP_MAX_QUEUE_SIZE", QUEUE.to_string())
        .env("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", batch.to_string())
        .env("OTEL_BSP_SCHEDULE_DELAY", "3600000")
        .env("RUST_LOG", "info")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// What the child reported.
struct ChildRun {
    /// span id → name, for every span the child ended.
    ended: BTreeMap<String, String>,
    /// Every line the child printed (its log lines included).
    stdout: String,
}

/// Runs the child: `before_go` runs once every span has ended (the queue is full) and before
/// the guard is dropped; `at_shutdown` right after the child says it is dropping the guard.
async fn run_child(
    mut cmd: tokio::process::Command,
    before_go: impl AsyncFnOnce(),
    at_shutdown: impl FnOnce(),
) -> ChildRun {
    let mut child = cmd.spawn().expect("spawn the child");
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let stderr = child.stderr.take().unwrap();
    let stderr = tokio::spawn(async move {
        let mut s = String::new();
        let _ = tokio::io::AsyncReadExt::read_to_string(&mut BufReader::new(stderr), &mut s).await;
        s
    });
    let mut ended = BTreeMap::new();
    let mut stdout = String::new();
    let mut next = async || {
        let line = tokio::time::timeout(STEP, lines.next_line())
            .await
            .expect("the child is stuck")
            .expect("child stdout");
        if let Some(l) = &line {
            stdout.push_str(l);
            stdout.push('\n');
        }
        line
    };
    // libtest prints `test child ... ` without a newline, so a protocol line may not start
    // the line it is on.
    let protocol = |line: &str| line.find("FULLQ ").map(|at| line[at..].to_owned());
    loop {
        let line = next()
            .await
            .expect("the child exited before ending its spans");
        let Some(line) = protocol(&line) else {
            continue;
        };
        if let Some(rest) = line.strip_prefix("FULLQ span ") {
            let (id, name) = rest.split_once(' ').unwrap();
            assert!(
                ended.insert(id.to_owned(), name.to_owned()).is_none(),
                "{id} twice"
            );
        } else if line == "FULLQ ended" {
            break;
        }
    }
    before_go().await;
    stdin.write_all(b"go\n").await.unwrap();
    stdin.flush().await.unwrap();
    loop {
        let line = next().await.expect("the child exited before its shutdown");
        if protocol(&line).as_deref() == Some("FULLQ shutdown") {
            break;
        }
    }
    at_shutdown();
    while next().await.is_some() {}
    let status = tokio::time::timeout(STEP, child.wait())
        .await
        .expect("the child did not exit")
        .unwrap();
    let stderr = stderr.await.unwrap();
    assert!(
        status.success(),
        "child failed: {status}\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("FULLQ exited"), "{stdout}");
    ChildRun { ended, stdout }
}

/// The receiver holds exactly the spans the child ended: same count, same ids, same names,
/// all of service `full-queue`; and the child logged no dropped or lost span.
async fn assert_every_span_arrived(receiver: &OtlpReceiver, run: &ChildRun) {
    let want = spans_to_end();
    assert_eq!(run.ended.len(), want, "the child ended {want} spans");
    // The child has exited: what the receiver holds is final (the wait only covers the
    // receiver's own decoding of the last request).
    let _ = receiver
        .wait_for(|s| s.len() >= want, Duration::from_secs(5))
        .await;
    let spans = receiver.spans();
    let got: BTreeMap<String, String> = spans
        .iter()
        .map(|s| (s.span_id.clone(), s.name.clone()))
        .collect();
    assert_eq!(
        spans.len(),
        want,
        "spans received at shutdown with a full queue; child output:\n{}",
        run.stdout
    );
    assert_eq!(got, run.ended, "span ids and names");
    for s in &spans {
        assert_eq!(s.service_name, "full-queue");
        assert_eq!(s.kind, SpanKind::Internal, "{}", s.summary());
        assert!(s.is_root(), "{}", s.summary());
    }
    for needle in [
        "dropped_span", // dropped_spans= (first drop, per interval), dropped_spans_total= (shutdown)
        "span queue full",
        "lost_spans",
        "not finish in time",
        "could not be exported at shutdown",
    ] {
        assert!(
            !run.stdout.contains(needle),
            "the child logged {needle:?}:\n{}",
            run.stdout
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_span_of_a_full_queue_reaches_the_receiver_at_shutdown() {
    let receiver = OtlpReceiver::start().await.unwrap();
    // Batch = queue: no export before the queue is full, none on a timer.
    let cmd = child_process(&receiver.grpc_endpoint(), QUEUE);
    let run = run_child(cmd, async || {}, || {}).await;
    assert_every_span_arrived(&receiver, &run).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_span_of_a_full_queue_reaches_the_receiver_at_shutdown_while_an_export_is_still_in_flight(
) {
    let receiver = OtlpReceiver::start().await.unwrap();
    let proxy = SlowProxy::start(receiver.grpc_addr(), Duration::from_millis(50))
        .await
        .unwrap();
    proxy.pause();
    let cmd = child_process(&proxy.endpoint(), 64);
    let run = run_child(
        cmd,
        async || {
            // The 64th span triggered an export: wait until it has reached the proxy, which
            // holds it. Nothing has reached the receiver, so shutdown begins mid-export.
            tokio::time::timeout(STEP, async {
                while proxy.chunks_in() == 0 {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
            .await
            .expect("no export started: the 64th span should have triggered one");
            assert_eq!(
                receiver.spans().len(),
                0,
                "an export completed before shutdown"
            );
        },
        || proxy.resume(),
    )
    .await;
    assert_every_span_arrived(&receiver, &run).await;
}
