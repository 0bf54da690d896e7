//! Shared by the `init_*` test binaries (each is its own process: `init` installs
//! process-wide state): a log writer that captures what the fmt layer prints, and the
//! black-holed-collector check run for both OTLP protocols.
#![allow(dead_code)] // each test binary uses a part

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry::trace::TraceContextExt;
use tracebridge::config::Config;
use tracebridge::SpanExt;

/// The application's own log layer of the `own_subscriber*` tests: JSON lines at INFO and
/// above into `logs` — what an app that keeps its subscriber has next to tracebridge's layer.
pub fn app_json_layer<S>(logs: &Captured) -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    use tracing_subscriber::Layer as _;
    let writer = logs.clone();
    tracing_subscriber::fmt::layer()
        .json()
        .with_writer(move || writer.clone())
        .with_filter(tracing_subscriber::filter::LevelFilter::INFO)
}

/// A `MakeWriter` target that keeps every byte the log layer writes.
#[derive(Clone, Default)]
pub struct Captured(pub Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }

    pub fn lines(&self) -> Vec<String> {
        self.text().lines().map(str::to_owned).collect()
    }
}

/// A black-holed collector (accepts TCP, never answers) over `protocol` (`grpc` or
/// `http/protobuf`): creating 1000 spans never blocks, the guard's drop returns within its
/// bound, and dropped spans are reported once, not per span. Completion is asserted under a
/// generous timeout; timing itself is not asserted (the benchmarks measure it).
pub async fn black_holed_collector_blocks_nothing(protocol: &str) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let hole = tokio::spawn({
        let accepted = accepted.clone();
        async move {
            let mut held = Vec::new();
            while let Ok((sock, _)) = listener.accept().await {
                accepted.fetch_add(1, Ordering::SeqCst);
                held.push(sock); // never read, never written
            }
        }
    });

    let vars: HashMap<String, String> = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{addr}")),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol.to_owned()),
        // Each export hangs for the full (default, 10 s) timeout: the 64-span queue must fill
        // and drop, whatever the machine's speed.
        ("OTEL_BSP_SCHEDULE_DELAY", "20".into()),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "64".into()),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "16".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let cfg = Config::from_lookup(|n| vars.get(n).cloned()).unwrap();
    let logs = Captured::default();
    let w = logs.clone();
    let guard = tracebridge::Builder::from_config(cfg)
        .log_writer(move || w.clone())
        .shutdown_timeout(Duration::from_secs(2))
        .install()
        .expect("init");

    let created = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::task::spawn_blocking(|| {
            let mut valid = 0;
            for i in 0..1000 {
                let span = tracing::info_span!("GET /work", otel.kind = "server", i);
                let _e = span.enter();
                if span.context().span().span_context().is_valid() {
                    valid += 1;
                }
            }
            valid
        }),
    )
    .await
    .expect("creating 1000 spans must not block on the collector")
    .unwrap();
    assert_eq!(created, 1000);

    tokio::time::timeout(
        Duration::from_secs(60),
        tokio::task::spawn_blocking(move || drop(guard)),
    )
    .await
    .expect("guard drop must return within its bound")
    .unwrap();
    assert!(
        accepted.load(Ordering::SeqCst) >= 1,
        "the exporter never connected to the black hole"
    );
    // Dropped spans are reported once, not per span.
    let text = logs.text();
    let started: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("span queue full"))
        .collect();
    assert_eq!(started.len(), 1, "{text}");
    assert!(started[0].contains(" WARN "), "{}", started[0]);
    // The export hangs past the 2 s shutdown bound, so the export thread never reports its
    // totals: the guard does. Every span is accounted for but the one batch in flight (≤ 16).
    let timed_out: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("span flush did not finish in time"))
        .collect();
    assert_eq!(timed_out.len(), 1, "{text}");
    let field = |name: &str| -> u64 {
        let at = timed_out[0]
            .find(&format!("{name}="))
            .unwrap_or_else(|| panic!("no {name} in {}", timed_out[0]));
        timed_out[0][at + name.len() + 1..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{name} in {}", timed_out[0]))
    };
    let (dropped, queued) = (field("dropped_spans_total"), field("queued_spans"));
    assert!(dropped > 0, "{}", timed_out[0]);
    assert!(
        (1000 - 16..=1000).contains(&(dropped + queued)),
        "dropped {dropped} + queued {queued} of 1000 spans: {}",
        timed_out[0]
    );
    hole.abort();
}

/// Marks a process started by [`child_test`]: the `#[ignore]`d entry test it names runs only
/// when this is set.
pub const CHILD_ENV: &str = "TRACEBRIDGE_TEST_CHILD";

/// This test binary, set to run only the `#[ignore]`d test `name` in a fresh process, with
/// [`CHILD_ENV`] set and output not captured. `init` installs process-wide state once per
/// process, so a test binary that needs init more than once (other settings, a second
/// shutdown) runs each in a child of its own. The child is killed if the handle is dropped.
pub fn child_test(name: &str) -> tokio::process::Command {
    let exe = std::env::current_exe().expect("test binary path");
    let mut cmd = tokio::process::Command::new(exe);
    cmd.args([
        name,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_ENV, name)
    .env_remove("RUST_TEST_THREADS")
    .kill_on_drop(true);
    cmd
}

/// Whether this process is the child [`child_test`] started for `name`.
pub fn is_child(name: &str) -> bool {
    std::env::var(CHILD_ENV).is_ok_and(|v| v == name)
}
