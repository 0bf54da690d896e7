//! End to end through the real export path: `tracebridge::Builder` installs the OTLP/gRPC
//! exporter pointed at testkit's receiver, an axum service behind `http::ServerLayer` calls a
//! tonic service through `grpc::ClientLayer`, and the receiver decodes the wire protocol. One
//! trace: HTTP client → HTTP server → internal span → gRPC client → gRPC server.

mod grpc_support;

use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use tracebridge_testkit::{OtlpReceiver, SpanKind, SpanRecord};

use grpc_support::*;

fn find<'a>(spans: &'a [SpanRecord], name: &str, kind: SpanKind) -> &'a SpanRecord {
    spans
        .iter()
        .find(|s| s.name == name && s.kind == kind)
        .unwrap_or_else(|| panic!("no {kind:?} span {name:?} in {spans:#?}"))
}

#[tracing::instrument(level = "info", skip(addr))]
async fn trace1(addr: std::net::SocketAddr) -> i32 {
    let mut client = client(addr);
    client.check(check("ok")).await.unwrap().into_inner().status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_across_http_and_grpc_over_otlp() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let guard = tracebridge::Builder::default()
        .service_name("layers-otlp")
        .endpoint(receiver.grpc_endpoint())
        .log_writer(std::io::sink)
        .install()
        .unwrap();

    let (grpc_addr, _) = serve(tracebridge::grpc::ServerLayer::new()).await;
    let router = Router::new()
        .route(
            "/trace",
            get(|State(addr): State<std::net::SocketAddr>| async move {
                trace1(addr).await.to_string()
            }),
        )
        .layer(tracebridge::http::ServerLayer::new())
        .with_state(grpc_addr);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let response = tracebridge::http::client(reqwest::Client::new())
        .get(format!("http://{addr}/trace"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let traceresponse = response.headers()["traceresponse"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(response.text().await.unwrap(), "1");

    assert!(guard.force_flush());
    let trace_id = traceresponse.split('-').nth(1).unwrap().to_owned();
    let spans = receiver
        .wait_for_trace(&trace_id, 5, Duration::from_secs(20))
        .await
        .unwrap();

    let http_client = find(&spans, "GET", SpanKind::Client);
    let http_server = find(&spans, "GET /trace", SpanKind::Server);
    let internal = find(&spans, "trace1", SpanKind::Internal);
    let grpc_client = find(&spans, CHECK, SpanKind::Client);
    let grpc_server = find(&spans, CHECK, SpanKind::Server);

    assert_eq!(http_client.parent_span_id, None);
    assert_eq!(
        http_server.parent_span_id.as_deref(),
        Some(http_client.span_id.as_str())
    );
    // Sampled, and random (W3C Level 2): the client layer started the trace with random ids.
    assert_eq!(
        traceresponse,
        format!("00-{}-{}-03", http_server.trace_id, http_server.span_id)
    );
    assert_eq!(
        internal.parent_span_id.as_deref(),
        Some(http_server.span_id.as_str())
    );
    assert_eq!(
        grpc_client.parent_span_id.as_deref(),
        Some(internal.span_id.as_str())
    );
    assert_eq!(
        grpc_server.parent_span_id.as_deref(),
        Some(grpc_client.span_id.as_str())
    );
    assert_eq!(http_server.service_name, "layers-otlp");
    assert_eq!(http_server.attr_str("http.route"), Some("/trace"));
    assert_eq!(http_server.attr_i64("http.response.status_code"), Some(200));
    assert_eq!(grpc_server.attr_str("rpc.system"), Some("grpc"));
    assert_eq!(grpc_server.attr_i64("rpc.grpc.status_code"), Some(0));
    assert!(!http_server.status.is_error());

    drop(guard);
    receiver.shutdown().await;
}
