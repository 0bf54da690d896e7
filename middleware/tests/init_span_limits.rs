//! Every kind of span through `init`, in one export: the server layer's record, a `tracing`
//! span (a record through tracing-opentelemetry), an `opentelemetry::global::tracer` span (a
//! record with its own scope) and an SDK span from `Guard::tracer_provider()` (through the
//! SDK's processor into the same queue). The OpenTelemetry span limits
//! (`OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT`, `OTEL_SPAN_EVENT_COUNT_LIMIT`) hold for records as for
//! SDK spans: the server layer's span keeps its first attributes, in order, and its first
//! events; so do the others. The SDK reads these variables from the process environment, so
//! this test binary sets them before `init` (one test: nothing else runs in this process).

use std::collections::HashMap;
use std::time::Duration;

use axum::routing::get;
use opentelemetry::trace::TraceContextExt;
use tracebridge::config::Config;
use tracebridge_testkit::{AttrValue, OtlpReceiver, SpanKind};

async fn user() -> &'static str {
    let cx = opentelemetry::Context::current();
    cx.span().add_event("first", vec![]);
    cx.span().add_event("second, over the limit", vec![]);
    let inner = tracing::info_span!("inner", a = 1, b = 2, c = 3, d = 4);
    inner.in_scope(|| tracing::info!(step = 1, "inside"));
    "ok"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_span_is_exported_within_the_span_limits() {
    // Edition 2021: `set_var` is safe; this binary's only test, before any thread reads it.
    std::env::set_var("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "3");
    std::env::set_var("OTEL_SPAN_EVENT_COUNT_LIMIT", "1");
    let receiver = OtlpReceiver::start().await.unwrap();
    let vars: HashMap<String, String> = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.http_endpoint()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".into()),
        ("OTEL_SERVICE_NAME", "limits".into()),
        ("OTEL_BSP_SCHEDULE_DELAY", "600000".into()),
        ("RUST_LOG", "warn".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let cfg = Config::from_lookup(|name| vars.get(name).cloned()).expect("valid config");
    let guard = tracebridge::Builder::from_config(cfg)
        .install()
        .expect("init");

    let app = axum::Router::new()
        .route("/users/{id}", get(user))
        .layer(tracebridge::http::ServerLayer::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let res = reqwest::Client::new()
        .get(format!("http://{addr}/users/7"))
        .header("user-agent", "limits-test/1")
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "ok");
    server.abort();

    // The OpenTelemetry API (a record, scope `my-lib`) and the SDK provider (an SDK span).
    use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
    let five = || (1..=5).map(|i| opentelemetry::KeyValue::new(format!("k{i}"), i));
    let mut api = opentelemetry::global::tracer("my-lib").start("api work");
    api.set_attributes(five());
    api.end();
    let mut sdk = guard
        .tracer_provider()
        .expect("a provider")
        .tracer("direct-sdk")
        .start("sdk work");
    sdk.set_attributes(five());
    sdk.end();
    tokio::task::spawn_blocking(move || drop(guard))
        .await
        .unwrap();

    let spans = receiver.spans();
    assert_eq!(spans.len(), 4, "{spans:#?}");
    for (name, scope) in [("api work", "my-lib"), ("sdk work", "direct-sdk")] {
        let s = spans.iter().find(|s| s.name == name).unwrap();
        assert_eq!(s.scope_name, scope);
        assert_eq!(s.kind, SpanKind::Internal);
        assert_eq!(s.service_name, "limits");
        let keys: Vec<&str> = s.attributes.keys().map(String::as_str).collect();
        assert_eq!(keys, ["k1", "k2", "k3"], "{name}");
    }
    let server_span = spans.iter().find(|s| s.kind == SpanKind::Server).unwrap();
    assert_eq!(server_span.name, "GET /users/{id}");
    assert_eq!(server_span.scope_name, "tracebridge");
    // The layer's first three attributes, in the order it records them.
    let keys: Vec<&str> = server_span.attributes.keys().map(String::as_str).collect();
    assert_eq!(keys, ["http.request.method", "http.route", "url.path"]);
    assert_eq!(
        server_span.attr("url.path"),
        Some(&AttrValue::String("/users/7".into()))
    );
    let events: Vec<&str> = server_span.events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(events, ["first"]);

    let inner = spans.iter().find(|s| s.name == "inner").unwrap();
    assert_eq!(
        inner.parent_span_id.as_deref(),
        Some(server_span.span_id.as_str())
    );
    assert_eq!(inner.trace_id, server_span.trace_id);
    assert_eq!(inner.attributes.len(), 3, "{:?}", inner.attributes);
    let events: Vec<&str> = inner.events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(events, ["inside"]);
    receiver.shutdown().await;
}
