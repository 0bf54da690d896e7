//! `jaeger-debug-id` read as Jaeger's clients read it, through `tracebridge::init`'s real
//! export path: with a sampler that samples nothing, a request carrying `jaeger-debug-id` (and
//! no trace context) is still traced, and its root span holds the value as the attribute
//! `jaeger-debug-id`; the same request without it is not exported.

use std::time::Duration;

use axum::routing::get;
use axum::Router;
use tracebridge_testkit::{OtlpReceiver, SpanKind};

#[tracing::instrument(level = "info")]
async fn trace1() -> &'static str {
    "ok"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_id_samples_the_trace_and_marks_the_root_span() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let guard = tracebridge::Builder::default()
        .service_name("jaeger-debug")
        .endpoint(receiver.grpc_endpoint())
        .sampler(opentelemetry_sdk::trace::Sampler::AlwaysOff)
        .log_writer(std::io::sink)
        .install()
        .unwrap();
    let router = Router::new()
        .route("/work", get(|| async { trace1().await }))
        .layer(tracebridge::http::ServerLayer::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let call = |debug: Option<&'static str>| async move {
        let mut request = reqwest::Client::new().get(format!("http://{addr}/work"));
        if let Some(id) = debug {
            request = request.header("jaeger-debug-id", id);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.headers()["traceresponse"]
            .to_str()
            .unwrap()
            .to_owned()
    };

    // Not sampled without it (random flag only).
    let plain = call(None).await;
    assert!(plain.ends_with("-02"), "{plain}");
    // Sampled with it.
    let debug = call(Some(" support-ticket-4711 ")).await;
    assert!(debug.ends_with("-03"), "{debug}");

    assert!(guard.force_flush());
    let trace_id = debug.split('-').nth(1).unwrap().to_owned();
    let spans = receiver
        .wait_for_trace(&trace_id, 2, Duration::from_secs(20))
        .await
        .unwrap();
    let root = spans
        .iter()
        .find(|s| s.name == "GET /work")
        .unwrap_or_else(|| panic!("no server span in {spans:#?}"));
    assert_eq!(root.kind, SpanKind::Server);
    assert!(root.is_root());
    assert_eq!(root.span_id, debug.split('-').nth(2).unwrap());
    assert_eq!(
        root.attr_str("jaeger-debug-id"),
        Some("support-ticket-4711")
    );
    let internal = spans.iter().find(|s| s.name == "trace1").expect("trace1");
    assert_eq!(
        internal.parent_span_id.as_deref(),
        Some(root.span_id.as_str())
    );
    assert_eq!(
        internal.attr_str("jaeger-debug-id"),
        None,
        "the root span only"
    );

    let plain_trace = plain.split('-').nth(1).unwrap();
    assert!(receiver.spans_of(plain_trace).is_empty());
    assert_eq!(
        receiver.spans().len(),
        spans.len(),
        "{:#?}",
        receiver.spans()
    );
}
