//! In-process telemetry for the layer tests: one in-memory exporter behind OpenTelemetry's global
//! tracer provider (the layers start their spans with it when `init()` has not installed a
//! tracer), and a tracing registry with the OpenTelemetry layer over the same provider at an INFO
//! filter, installed as the thread's default, for the `tracing` spans handlers make. Tests run on
//! a current-thread runtime so the servers they spawn see it.
//!
//! The provider is process-wide, so [`telemetry`] also serializes the tests of a binary: each
//! holds the lock for its whole run, starts from an empty exporter and sees only spans started
//! after it began (a previous test's server span can end after that test, when its runtime
//! drops the server task).
#![allow(dead_code)]

use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use opentelemetry::trace::{SpanId, SpanKind, Status, TraceId, TracerProvider as _};
use opentelemetry::Value;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing_subscriber::layer::SubscriberExt;

pub struct Telemetry {
    exporter: InMemorySpanExporter,
    since: std::time::SystemTime,
    _guard: tracing::subscriber::DefaultGuard,
    _serial: MutexGuard<'static, ()>,
}

struct Shared {
    exporter: InMemorySpanExporter,
    provider: SdkTracerProvider,
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        opentelemetry::global::set_tracer_provider(provider.clone());
        Shared { exporter, provider }
    })
}

pub fn telemetry() -> Telemetry {
    static SERIAL: Mutex<()> = Mutex::new(());
    // A failed test poisons the lock; the next test still runs with a fresh exporter.
    let serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let shared = shared();
    shared.exporter.reset();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::filter::LevelFilter::INFO)
        .with(tracing_opentelemetry::layer().with_tracer(shared.provider.tracer("layers-test")));
    let guard = tracing::subscriber::set_default(subscriber);
    Telemetry {
        exporter: shared.exporter.clone(),
        since: std::time::SystemTime::now(),
        _guard: guard,
        _serial: serial,
    }
}

impl Telemetry {
    /// Every span finished so far.
    pub fn spans(&self) -> Vec<SpanData> {
        self.exporter
            .get_finished_spans()
            .expect("in-memory exporter")
            .into_iter()
            .filter(|s| s.start_time >= self.since)
            .collect()
    }

    /// Finished spans with this name.
    pub fn named(&self, name: &str) -> Vec<SpanData> {
        self.spans()
            .into_iter()
            .filter(|s| s.name == name)
            .collect()
    }

    /// Waits (yielding to the servers on this thread) until `count` spans named `name` have
    /// finished, and returns them; fails after 10 s. Used where the span ends in another task
    /// (server side), never to assert a duration.
    pub async fn wait_for(&self, name: &str, count: usize) -> Vec<SpanData> {
        for _ in 0..1000 {
            let spans = self.named(name);
            if spans.len() >= count {
                return spans;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "span {name:?} never finished ({count} expected); finished: {:?}",
            self.spans()
                .iter()
                .map(|s| s.name.clone())
                .collect::<Vec<_>>()
        );
    }

    /// The single span named `name`, once it has finished.
    pub async fn one(&self, name: &str) -> SpanData {
        let mut spans = self.wait_for(name, 1).await;
        assert_eq!(spans.len(), 1, "exactly one span {name:?}");
        spans.remove(0)
    }

    pub fn reset(&self) {
        self.exporter.reset();
    }
}

/// The attribute `key` of `span`, if recorded.
pub fn attr(span: &SpanData, key: &str) -> Option<Value> {
    span.attributes
        .iter()
        .rev()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.clone())
}

pub fn attr_str(span: &SpanData, key: &str) -> Option<String> {
    attr(span, key).map(|v| v.as_str().into_owned())
}

pub fn attr_i64(span: &SpanData, key: &str) -> Option<i64> {
    match attr(span, key) {
        Some(Value::I64(v)) => Some(v),
        other => panic!("attribute {key} is not an i64: {other:?}"),
    }
}

pub fn assert_kind(span: &SpanData, kind: SpanKind) {
    assert_eq!(span.span_kind, kind, "kind of {}", span.name);
}

pub fn assert_error(span: &SpanData) {
    assert!(
        matches!(span.status, Status::Error { .. }),
        "{} should be ERROR, is {:?}",
        span.name,
        span.status
    );
}

pub fn assert_not_error(span: &SpanData) {
    assert!(
        !matches!(span.status, Status::Error { .. }),
        "{} should not be ERROR",
        span.name
    );
}

pub fn trace_id(span: &SpanData) -> TraceId {
    span.span_context.trace_id()
}

pub fn span_id(span: &SpanData) -> SpanId {
    span.span_context.span_id()
}

/// A `traceparent` value as the W3C spec writes it.
pub fn traceparent(trace_id: &str, span_id: &str) -> String {
    format!("00-{trace_id}-{span_id}-01")
}

/// Parses `00-{trace}-{span}-{flags}` (traceresponse / traceparent) into ids.
pub fn parse_traceparent(value: &str) -> (TraceId, SpanId) {
    let parts: Vec<&str> = value.split('-').collect();
    assert_eq!(parts.len(), 4, "malformed {value:?}");
    (
        TraceId::from_hex(parts[1]).unwrap(),
        SpanId::from_hex(parts[2]).unwrap(),
    )
}

/// A local port that was just free and is now closed: connecting to it fails.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}
