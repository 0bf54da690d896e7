//! The gRPC layers through real sockets: a tonic server behind `grpc::ServerLayer`, called with
//! a generated client (tonic-health's) over a `Channel` wrapped in `grpc::ClientLayer` together
//! with other tower layers.

mod grpc_support;
mod http_support;

use std::time::Duration;

use opentelemetry::trace::{SpanId, SpanKind, TraceId};
use tonic::{Code, Request};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use grpc_support::*;
use http_support::*;
use tracebridge::grpc::{ClientLayer, ServerLayer};

#[tokio::test]
async fn client_span_is_parent_of_server_span() {
    let telemetry = telemetry();
    let (addr, behaviour) = serve(ServerLayer::new()).await;
    let mut client = client(addr);

    let response = client.check(check("ok")).await.unwrap();
    assert_eq!(response.get_ref().status, ServingStatus::Serving as i32);

    let spans = telemetry.wait_for(CHECK, 2).await;
    let client_span = spans
        .iter()
        .find(|s| s.span_kind == SpanKind::Client)
        .expect("client span");
    let server_span = spans
        .iter()
        .find(|s| s.span_kind == SpanKind::Server)
        .expect("server span");
    let internal = telemetry.one("look_up").await;

    assert_eq!(client_span.parent_span_id, SpanId::INVALID);
    assert_eq!(trace_id(server_span), trace_id(client_span));
    assert_eq!(server_span.parent_span_id, span_id(client_span));
    assert_eq!(trace_id(&internal), trace_id(server_span));
    assert_eq!(internal.parent_span_id, span_id(server_span));

    for span in [client_span, server_span] {
        assert_eq!(attr_str(span, "rpc.system").as_deref(), Some("grpc"));
        assert_eq!(
            attr_str(span, "rpc.service").as_deref(),
            Some("grpc.health.v1.Health")
        );
        assert_eq!(attr_str(span, "rpc.method").as_deref(), Some("Check"));
        assert_eq!(attr_i64(span, "rpc.grpc.status_code"), Some(0));
        assert_not_error(span);
    }
    assert_eq!(
        attr_str(server_span, "server.address").as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(
        attr_i64(server_span, "server.port"),
        Some(i64::from(addr.port()))
    );

    // the metadata the server received names the client span
    let metadata = behaviour.metadata.lock().unwrap().last().cloned().unwrap();
    let sent = metadata.get("traceparent").unwrap().to_str().unwrap();
    assert_eq!(
        parse_traceparent(sent),
        (trace_id(client_span), span_id(client_span))
    );
}

#[tokio::test]
async fn raw_traceparent_becomes_the_server_parent() {
    let telemetry = telemetry();
    let (addr, _) = serve(ServerLayer::new()).await;
    let mut plain = HealthClient::new(channel(addr));
    let mut request = Request::new(check("ok"));
    request.metadata_mut().insert(
        "traceparent",
        traceparent("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")
            .parse()
            .unwrap(),
    );
    plain.check(request).await.unwrap();
    let server = telemetry.one(CHECK).await;
    assert_kind(&server, SpanKind::Server);
    assert_eq!(
        trace_id(&server),
        TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap()
    );
    assert_eq!(
        server.parent_span_id,
        SpanId::from_hex("00f067aa0ba902b7").unwrap()
    );
}

#[tokio::test]
async fn trailers_only_errors_map_per_side() {
    let telemetry = telemetry();
    let (addr, _) = serve(ServerLayer::new()).await;
    let mut client = client(addr);

    // INTERNAL: an error on both sides
    let status = client.check(check("internal")).await.unwrap_err();
    assert_eq!(status.code(), Code::Internal);
    let spans = telemetry.wait_for(CHECK, 2).await;
    for span in &spans {
        assert_error(span);
        assert_eq!(attr_i64(span, "rpc.grpc.status_code"), Some(13));
        assert_eq!(attr_str(span, "error.type").as_deref(), Some("INTERNAL"));
    }
    telemetry.reset();

    // NOT_FOUND: the caller's problem, an error only for the client
    let status = client.check(check("not_found")).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let spans = telemetry.wait_for(CHECK, 2).await;
    let server = spans
        .iter()
        .find(|s| s.span_kind == SpanKind::Server)
        .unwrap();
    let client_span = spans
        .iter()
        .find(|s| s.span_kind == SpanKind::Client)
        .unwrap();
    assert_not_error(server);
    assert_eq!(attr_i64(server, "rpc.grpc.status_code"), Some(5));
    assert_error(client_span);
    assert_eq!(attr_i64(client_span, "rpc.grpc.status_code"), Some(5));
}

#[tokio::test]
async fn status_in_trailers_of_a_stream_is_read_and_ends_the_span() {
    let telemetry = telemetry();
    let (addr, _) = serve(ServerLayer::new()).await;
    let mut client = client(addr);

    let mut stream = client.watch(check("data_loss")).await.unwrap().into_inner();
    assert_eq!(
        stream.message().await.unwrap().unwrap().status,
        ServingStatus::Serving as i32
    );
    let status = stream.message().await.unwrap_err();
    assert_eq!(status.code(), Code::DataLoss);

    let spans = telemetry.wait_for(WATCH, 2).await;
    for span in &spans {
        assert_error(span);
        assert_eq!(attr_i64(span, "rpc.grpc.status_code"), Some(15));
    }
    telemetry.reset();

    // a stream that ends OK
    let mut stream = client.watch(check("ok")).await.unwrap().into_inner();
    assert!(stream.message().await.unwrap().is_some());
    assert!(stream.message().await.unwrap().is_some());
    assert!(stream.message().await.unwrap().is_none());
    let spans = telemetry.wait_for(WATCH, 2).await;
    for span in &spans {
        assert_not_error(span);
        assert_eq!(attr_i64(span, "rpc.grpc.status_code"), Some(0));
    }
}

#[tokio::test]
async fn panicking_handler_is_internal_and_error() {
    let telemetry = telemetry();
    let (addr, _) = serve(ServerLayer::new()).await;
    let mut client = client(addr);

    let status = client.check(check("panic")).await.unwrap_err();
    assert_eq!(status.code(), Code::Internal);
    let spans = telemetry.wait_for(CHECK, 2).await;
    let server = spans
        .iter()
        .find(|s| s.span_kind == SpanKind::Server)
        .unwrap();
    assert_error(server);
    assert_eq!(attr_i64(server, "rpc.grpc.status_code"), Some(13));
    assert_eq!(attr_str(server, "error.type").as_deref(), Some("panic"));

    // still serving
    client.check(check("ok")).await.unwrap();
}

#[tokio::test]
async fn timeout_inside_the_client_layer_is_an_error_span() {
    let telemetry = telemetry();
    let (addr, _) = serve(ServerLayer::new()).await;
    let service = tower::ServiceBuilder::new()
        .layer(ClientLayer::new())
        .timeout(Duration::from_millis(50))
        .service(channel(addr));
    let mut client = HealthClient::new(service);

    let status = client.check(check("slow")).await.unwrap_err();
    // tonic reports a tower timeout as UNKNOWN "request timed out"
    assert_eq!(status.code(), Code::Unknown, "{status:?}");
    let client_span = telemetry
        .wait_for(CHECK, 1)
        .await
        .into_iter()
        .find(|s| s.span_kind == SpanKind::Client)
        .expect("client span ends with the timeout");
    assert_error(&client_span);
    assert_eq!(
        attr_str(&client_span, "error.type").as_deref(),
        Some("transport")
    );
    assert_eq!(attr(&client_span, "rpc.grpc.status_code"), None);
}

#[tokio::test]
async fn layer_composes_outside_a_timeout_too() {
    let telemetry = telemetry();
    let (addr, _) = serve(ServerLayer::new()).await;
    // the other order: timeout and limit around the tracing layer
    let service = tower::ServiceBuilder::new()
        .timeout(Duration::from_secs(30))
        .concurrency_limit(4)
        .layer(ClientLayer::new())
        .service(channel(addr));
    let mut client = HealthClient::new(service);
    let mut clone = client.clone();
    client.check(check("ok")).await.unwrap();
    clone.check(check("ok")).await.unwrap();
    let spans = telemetry.wait_for(CHECK, 4).await;
    assert_eq!(
        spans
            .iter()
            .filter(|s| s.span_kind == SpanKind::Client)
            .count(),
        2
    );
}

#[tokio::test]
async fn skipped_grpc_paths_export_nothing() {
    let telemetry = telemetry();
    let (addr, _) = serve(ServerLayer::new().skip_paths(["/grpc.health.v1.Health/Check"])).await;
    let mut plain = HealthClient::new(channel(addr));
    plain.check(check("ok")).await.unwrap();
    let mut stream = plain.watch(check("ok")).await.unwrap().into_inner();
    while stream.message().await.unwrap().is_some() {}
    telemetry.one(WATCH).await;
    assert!(telemetry.named(CHECK).is_empty());
}

/// W3C Level 2 random flag on gRPC calls: an HTTP service behind `http::ServerLayer` calls a
/// gRPC service through `grpc::ClientLayer`; the `traceparent` the gRPC server receives keeps
/// the incoming random flag whether or not the trace is sampled, adds none to a trace that came
/// without it, and carries it for a trace the HTTP service starts.
#[tokio::test]
async fn random_flag_is_forwarded_on_grpc_calls() {
    use axum::extract::State;
    use axum::routing::get;

    let telemetry = telemetry();
    let (grpc_addr, behaviour) = serve(ServerLayer::new()).await;
    let router = axum::Router::new()
        .route(
            "/relay",
            get(|State(addr): State<std::net::SocketAddr>| async move {
                client(addr)
                    .check(check("ok"))
                    .await
                    .unwrap()
                    .into_inner()
                    .status
                    .to_string()
            }),
        )
        .layer(tracebridge::http::ServerLayer::new())
        .with_state(grpc_addr);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let front = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    for flags in ["02", "03", "00", "01", "started"] {
        telemetry.reset();
        let mut request = reqwest::Client::new().get(format!("http://{front}/relay"));
        if flags != "started" {
            request = request.header(
                "traceparent",
                format!("00-{trace}-00f067aa0ba902b7-{flags}"),
            );
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        let traceresponse = response.headers()["traceresponse"]
            .to_str()
            .unwrap()
            .to_owned();
        let sent = behaviour
            .metadata
            .lock()
            .unwrap()
            .last()
            .expect("gRPC server called")
            .get("traceparent")
            .expect("traceparent sent")
            .to_str()
            .unwrap()
            .to_owned();
        let want = if flags == "started" { "03" } else { flags };
        assert_eq!(&sent[52..], &format!("-{want}"), "{flags}: sent {sent}");
        assert_eq!(&traceresponse[52..], &format!("-{want}"), "{flags}");
        assert_eq!(sent[3..35], traceresponse[3..35], "{flags}: one trace");
        if flags == "started" {
            let server = telemetry.one("GET /relay").await;
            assert_eq!(server.parent_span_id, SpanId::INVALID);
            let grpc = telemetry.wait_for(CHECK, 2).await;
            let grpc_client = grpc
                .iter()
                .find(|s| s.span_kind == SpanKind::Client)
                .expect("client span");
            assert_eq!(
                parse_traceparent(&sent),
                (trace_id(&server), span_id(grpc_client))
            );
        } else {
            assert_eq!(&sent[3..35], trace, "{flags}");
        }
    }
}
