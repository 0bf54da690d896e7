//! No endpoint: spans are created with valid ids and headers propagate, nothing is exported,
//! and exactly one log line says export is off.

use std::collections::HashMap;

use opentelemetry::trace::TraceContextExt;
use tracebridge::config::Config;
use tracebridge::SpanExt;

mod init_support;
use init_support::Captured;

#[test]
fn no_endpoint_creates_spans_propagates_and_says_so_once() {
    let logs = Captured::default();
    let w = logs.clone();
    // No Tokio runtime here on purpose: without export, init needs none.
    let guard = tracebridge::Builder::from_config(Config::from_lookup(|_| None).unwrap())
        .log_writer(move || w.clone())
        .install()
        .expect("init");
    assert!(!tracebridge::global::settings().disabled);

    // The TRACE/DEBUG spans of h2 and hyper are never created: every per-layer filter carries a
    // level hint, so the global maximum stays at INFO and those callsites are disabled
    // statically. (Two nested filters on the log layer once enabled every span, and a tonic
    // server spent a third of its CPU creating and closing spans nobody recorded.)
    assert_eq!(
        tracing::level_filters::LevelFilter::current(),
        tracing::level_filters::LevelFilter::INFO
    );
    assert!(tracing::trace_span!(target: "h2::proto::streams", "poll").is_disabled());
    assert!(tracing::debug_span!(target: "hyper::proto::h1", "parse").is_disabled());

    let span = tracing::info_span!("GET /trace", otel.kind = "server");
    let _e = span.enter();
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    assert!(sc.is_valid());
    assert!(sc.is_sampled());

    // Downstream headers carry this span through the installed propagator.
    let mut headers = http::HeaderMap::new();
    tracebridge::global::settings()
        .propagator
        .inject(&opentelemetry::Context::current(), &mut headers);
    let traceparent = headers
        .get("traceparent")
        .expect("traceparent injected")
        .to_str()
        .unwrap();
    assert_eq!(
        traceparent,
        format!("00-{}-{}-01", sc.trace_id(), sc.span_id())
    );
    // Also through OpenTelemetry's global propagator (used by third-party instrumentation).
    let mut carrier: HashMap<String, String> = HashMap::new();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&opentelemetry::Context::current(), &mut carrier)
    });
    assert_eq!(
        carrier.get("traceparent").map(String::as_str),
        Some(traceparent)
    );
    // Without Sentry, extraction leaves out Sentry's propagation context (only Sentry's span
    // processor reads it): the remote parent is there, the value is not.
    let incoming: http::HeaderMap = [(
        http::header::HeaderName::from_static("sentry-trace"),
        http::HeaderValue::from_static("771a43a4192642f0b136d5159a501700-b7ad6b7169203331-1"),
    )]
    .into_iter()
    .collect();
    let parent = tracebridge::global::settings()
        .propagator
        .extract(&incoming);
    assert_eq!(
        parent.span().span_context().trace_id().to_string(),
        "771a43a4192642f0b136d5159a501700"
    );
    assert!(parent.get::<sentry::TracePropagationContext>().is_none());

    drop(_e);
    drop(span);
    drop(guard);

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let off: Vec<&str> = text.lines().filter(|l| l.contains("export off")).collect();
    assert_eq!(off.len(), 1, "{text}");
    assert!(off[0].contains("OTEL_EXPORTER_OTLP_ENDPOINT"), "{}", off[0]);
}
