//! An application that keeps its own `tracing` subscriber: `Builder::build()` hands it
//! tracebridge's layer, which it composes with its own JSON log layer, and `current_trace()`
//! gives a handler the ids the spans are exported with. Its own process: the subscriber is
//! global.
//!
//! Through real sockets: a reqwest call with a `traceparent` → axum behind `ServerLayer` → an
//! `#[instrument]` function that logs → OTLP/gRPC export to testkit's receiver, and Sentry
//! events to a test transport.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Path;
use axum::routing::get;
use axum::Router;
use sentry::protocol::{Context, Event};
use tracebridge::config::Config;
use tracebridge_testkit::{AttrValue, OtlpReceiver, SpanKind, SpanRecord, Status};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

mod init_support;
use init_support::Captured;

const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const CALLER_SPAN_ID: &str = "b7ad6b7169203331";

fn find<'a>(spans: &'a [SpanRecord], name: &str, kind: SpanKind) -> &'a SpanRecord {
    spans
        .iter()
        .find(|s| s.name == name && s.kind == kind)
        .unwrap_or_else(|| panic!("no {kind:?} span {name:?} in {spans:#?}"))
}

/// The handler: the request's ids, then those of the `#[instrument]` span it calls.
async fn user(Path(id): Path<u32>) -> axum::Json<serde_json::Value> {
    let handler = tracebridge::current_trace().map(|ids| ids.to_string());
    let inner = load_user(id).await;
    axum::Json(serde_json::json!({ "handler": handler, "load_user": inner }))
}

#[tracing::instrument]
async fn load_user(id: u32) -> Option<String> {
    tracing::info!(user = i64::from(id), "loading user");
    tracing::error!(code = 7, "cache unavailable");
    tracebridge::current_trace().map(|ids| ids.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracebridge_layer_composes_into_the_applications_subscriber() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let vars: HashMap<&str, String> = [
        ("OTEL_SERVICE_NAME", "users".to_owned()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.grpc_endpoint()),
        ("SENTRY_DSN", "https://public@127.0.0.1:9/42".to_owned()),
    ]
    .into_iter()
    .collect();
    let cfg = Config::from_lookup(|n| vars.get(n).cloned()).unwrap();
    let transport = sentry::test::TestTransport::new();
    // tracebridge's log layer would write here too, were it in the layer (it is not, without
    // `with_logs(true)`): the test sees any line it writes.
    let logs = Captured::default();
    let tracebridge_writer = logs.clone();
    let (guard, telemetry) = tracebridge::Builder::from_config(cfg)
        .sentry_transport(Arc::new(transport.clone()))
        .log_writer(move || tracebridge_writer.clone())
        .build()
        .expect("build");

    // The application's own subscriber: its JSON log layer plus tracebridge's layer.
    tracing_subscriber::registry()
        .with(init_support::app_json_layer(&logs))
        .with(telemetry)
        .init();

    let app = Router::new()
        .route("/users/{id}", get(user))
        .layer(tracebridge::http::ServerLayer::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let response = reqwest::Client::new()
        .get(format!("http://{addr}/users/42"))
        .header("traceparent", format!("00-{TRACE_ID}-{CALLER_SPAN_ID}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let traceresponse = response.headers()["traceresponse"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: serde_json::Value = response.json().await.unwrap();

    assert!(guard.force_flush());
    let spans = receiver
        .wait_for_trace(TRACE_ID, 2, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(spans.len(), 2, "{spans:#?}");

    // The SERVER span continues the caller's trace.
    let server_span = find(&spans, "GET /users/{id}", SpanKind::Server);
    assert_eq!(server_span.trace_id, TRACE_ID);
    assert_eq!(server_span.parent_span_id.as_deref(), Some(CALLER_SPAN_ID));
    assert_eq!(server_span.service_name, "users");
    assert_eq!(server_span.status, Status::Unset);
    assert_eq!(
        traceresponse,
        format!("00-{TRACE_ID}-{}-01", server_span.span_id)
    );

    // The `#[instrument]` span went through the application's subscriber into tracebridge's
    // pipeline, as the SERVER span's child; its events are span events, the ERROR one marks it.
    let internal = find(&spans, "load_user", SpanKind::Internal);
    assert_eq!(internal.trace_id, TRACE_ID);
    assert_eq!(
        internal.parent_span_id.as_deref(),
        Some(server_span.span_id.as_str())
    );
    // `#[instrument]` records arguments with `Debug`.
    assert_eq!(internal.attributes.get("id"), Some(&AttrValue::from("42")));
    assert_eq!(internal.status, Status::error(""));
    let names: Vec<&str> = internal.events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        ["loading user", "cache unavailable"],
        "{internal:#?}"
    );
    let event = &internal.events[0].attributes;
    assert_eq!(event.get("user"), Some(&AttrValue::Int(42)));
    assert_eq!(event.get("level"), Some(&AttrValue::from("INFO")));
    assert_eq!(
        event.get("target"),
        Some(&AttrValue::from("own_subscriber"))
    );
    let error = &internal.events[1].attributes;
    assert_eq!(error.get("code"), Some(&AttrValue::Int(7)));
    assert_eq!(error.get("level"), Some(&AttrValue::from("ERROR")));

    // The accessor gave the handler the ids the spans were exported with.
    assert_eq!(
        body,
        serde_json::json!({
            "handler": format!("00-{TRACE_ID}-{}-01", server_span.span_id),
            "load_user": format!("00-{TRACE_ID}-{}-01", internal.span_id),
        })
    );

    // With Sentry on, the ERROR event is a Sentry event in the `#[instrument]` span's context,
    // with the INFO line as its breadcrumb.
    let events: Vec<Event<'static>> = transport
        .fetch_and_clear_envelopes()
        .iter()
        .filter_map(|e| e.event().cloned())
        .collect();
    assert_eq!(events.len(), 1, "{events:#?}");
    match events[0].contexts.get("trace") {
        Some(Context::Trace(tc)) => {
            assert_eq!(tc.trace_id.to_string(), TRACE_ID);
            assert_eq!(tc.span_id.to_string(), internal.span_id);
        }
        other => panic!("no trace context: {other:?}"),
    }
    assert_eq!(events[0].message.as_deref(), Some("cache unavailable"));
    let crumbs: Vec<_> = events[0]
        .breadcrumbs
        .iter()
        .map(|b| b.message.as_deref())
        .collect();
    assert_eq!(crumbs, [Some("loading user")], "{:#?}", events[0]);

    // The logs are the application's own JSON lines; tracebridge wrote none of its own (no
    // "global tracing subscriber was already installed" warning, no `trace_id=` lines).
    let text = logs.text();
    assert!(!text.contains("already installed"), "{text}");
    assert!(!text.contains("trace_id="), "{text}");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let mine: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["target"] == "own_subscriber")
        .collect();
    assert_eq!(mine.len(), 2, "{text}");
    assert_eq!(mine[0]["level"], "INFO");
    assert_eq!(mine[0]["fields"]["message"], "loading user");
    assert_eq!(mine[0]["fields"]["user"], 42);
    assert_eq!(mine[0]["span"]["name"], "load_user");
    assert_eq!(mine[0]["span"]["id"], 42);
    assert_eq!(mine[1]["level"], "ERROR");
    assert_eq!(mine[1]["fields"]["message"], "cache unavailable");

    server.abort();
    tokio::task::spawn_blocking(move || drop(guard))
        .await
        .unwrap();
    receiver.shutdown().await;
}
