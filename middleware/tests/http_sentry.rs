//! With Sentry on (`global::settings().sentry_enabled`), the layers capture an event for HTTP
//! 5xx, for panics (Sentry's panic integration, inside the request's hub and span) and for
//! gRPC server error codes, each carrying the trace id of the server span. Own test binary:
//! Sentry and the global settings are process-wide.

mod grpc_support;
mod http_support;

use std::sync::Arc;

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use opentelemetry::trace::SpanKind;
use sentry::protocol::{Context as SentryContext, Event};
use tonic::Code;

use grpc_support::*;
use http_support::*;

fn trace_of(event: &Event<'static>) -> (String, String) {
    match event.contexts.get("trace") {
        Some(SentryContext::Trace(tc)) => (tc.trace_id.to_string(), tc.span_id.to_string()),
        other => panic!("event without trace context: {other:?}"),
    }
}

#[tokio::test]
async fn server_errors_and_panics_raise_sentry_events_in_the_trace() {
    let transport = sentry::test::TestTransport::new();
    let mut options = sentry::ClientOptions::new();
    options.dsn = Some("https://public@sentry.invalid/1".parse().unwrap());
    options.transport = Some(Arc::new(transport.clone()));
    options.before_send = Some(Arc::new(tracebridge::sentry::before_send(
        None,
        Arc::from(Vec::new()),
    )));
    let _sentry = sentry::init(options);
    assert!(tracebridge::global::install(
        tracebridge::global::Settings {
            sentry_enabled: true,
            ..Default::default()
        }
    ));
    let telemetry = telemetry();

    let router = Router::new()
        .route(
            "/fail",
            get(|| async { (StatusCode::BAD_GATEWAY, "upstream failed") }),
        )
        .route("/ok", get(|| async { "ok" }))
        .route(
            "/panic",
            get(|| async {
                if true {
                    panic!("handler exploded");
                }
                "unreachable"
            }),
        )
        .layer(tracebridge::http::ServerLayer::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    // 5xx → one event, in the server span's trace
    let response = reqwest::get(format!("http://{addr}/fail")).await.unwrap();
    assert_eq!(response.status(), 502);
    let server = telemetry.one("GET /fail").await;
    let events = transport.fetch_and_clear_events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].message.as_deref(), Some("HTTP 502 GET /fail"));
    assert_eq!(events[0].level, sentry::Level::Error);
    assert_eq!(
        trace_of(&events[0]),
        (trace_id(&server).to_string(), span_id(&server).to_string())
    );

    // success → no event
    reqwest::get(format!("http://{addr}/ok")).await.unwrap();
    telemetry.one("GET /ok").await;
    assert!(transport.fetch_and_clear_events().is_empty());

    // panic → 500 and the panic integration's event, in the trace
    let response = reqwest::get(format!("http://{addr}/panic")).await.unwrap();
    assert_eq!(response.status(), 500);
    let server = telemetry.one("GET /panic").await;
    let events = transport.fetch_and_clear_events();
    assert_eq!(events.len(), 1, "{events:?}");
    let exception = &events[0].exception.values[0];
    assert_eq!(exception.value.as_deref(), Some("handler exploded"));
    assert_eq!(trace_of(&events[0]).0, trace_id(&server).to_string());

    // gRPC: INTERNAL (trailers-only) and DATA_LOSS (in trailers) raise events, NOT_FOUND not
    let (grpc_addr, _) = serve(tracebridge::grpc::ServerLayer::new()).await;
    let mut client = tonic_health::pb::health_client::HealthClient::new(channel(grpc_addr));
    let status = client.check(check("internal")).await.unwrap_err();
    assert_eq!(status.code(), Code::Internal);
    let server = telemetry.one(CHECK).await;
    assert_kind(&server, SpanKind::Server);
    let events = transport.fetch_and_clear_events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        events[0].message.as_deref(),
        Some("gRPC INTERNAL grpc.health.v1.Health/Check")
    );
    assert_eq!(trace_of(&events[0]).0, trace_id(&server).to_string());

    let mut stream = client.watch(check("data_loss")).await.unwrap().into_inner();
    while stream.message().await.is_ok_and(|m| m.is_some()) {}
    let server = telemetry.one(WATCH).await;
    let events = transport.fetch_and_clear_events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        events[0].message.as_deref(),
        Some("gRPC DATA_LOSS grpc.health.v1.Health/Watch")
    );
    assert_eq!(trace_of(&events[0]).0, trace_id(&server).to_string());

    telemetry.reset();
    let status = client.check(check("not_found")).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    telemetry.one(CHECK).await;
    assert!(transport.fetch_and_clear_events().is_empty());
}
