//! Real OpenTelemetry SDK → opentelemetry-otlp exporter (gRPC and HTTP/protobuf) → OtlpReceiver,
//! asserting every decoded field against what the SDK was told to record.

use std::time::Duration;

use opentelemetry::trace::{
    Link, Span as _, SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId,
    TraceState, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::runtime;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracebridge_testkit::{trace::Trace, AttrValue, OtlpReceiver, SpanKind as Kind, Status as St};

const WAIT: Duration = Duration::from_secs(20);

/// The remote parent a request "arrived with", as a traceparent would carry it.
const REMOTE_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const REMOTE_SPAN: &str = "00f067aa0ba902b7";

fn provider(exporter: opentelemetry_otlp::SpanExporter, service: &str) -> SdkTracerProvider {
    // The async-runtime batch processor runs export on tokio, which both the tonic and the
    // async reqwest clients need.
    let processor = BatchSpanProcessor::builder(exporter, runtime::Tokio).build();
    SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(
            Resource::builder_empty()
                .with_service_name(service.to_owned())
                .with_attributes([KeyValue::new("deployment.environment.name", "test")])
                .build(),
        )
        .build()
}

/// Records a small, fully known trace: server (remote parent) > internal > client (error).
/// Returns the ids the SDK assigned: (server, internal, client).
fn record_trace(provider: &SdkTracerProvider) -> (String, String, String) {
    let tracer = provider.tracer("testkit-test");
    let remote = SpanContext::new(
        TraceId::from_hex(REMOTE_TRACE).unwrap(),
        SpanId::from_hex(REMOTE_SPAN).unwrap(),
        TraceFlags::SAMPLED,
        true,
        TraceState::from_key_value([("vendor", "v1")]).unwrap(),
    );
    let parent_cx = Context::new().with_remote_span_context(remote);

    let server = tracer
        .span_builder("GET /trace")
        .with_kind(SpanKind::Server)
        .with_attributes([
            KeyValue::new("http.request.method", "GET"),
            KeyValue::new("http.route", "/trace"),
            KeyValue::new("http.response.status_code", 200i64),
        ])
        .start_with_context(&tracer, &parent_cx);
    let server_id = server.span_context().span_id().to_string();
    let server_cx = parent_cx.with_span(server);

    let mut internal = tracer
        .span_builder("trace1")
        .with_kind(SpanKind::Internal)
        .with_links(vec![Link::with_context(SpanContext::new(
            TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap(),
            SpanId::from_hex("b7ad6b7169203331").unwrap(),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        ))])
        .start_with_context(&tracer, &server_cx);
    internal.add_event("checkpoint", vec![KeyValue::new("step", 2i64)]);
    internal.set_attribute(KeyValue::new("ratio", 0.5));
    internal.set_attribute(KeyValue::new("cached", true));
    let internal_id = internal.span_context().span_id().to_string();
    let internal_cx = server_cx.with_span(internal);

    let mut client = tracer
        .span_builder("GET")
        .with_kind(SpanKind::Client)
        .with_attributes([KeyValue::new("url.full", "http://c/work")])
        .start_with_context(&tracer, &internal_cx);
    client.set_status(Status::error("upstream 503"));
    let client_id = client.span_context().span_id().to_string();
    client.end();

    internal_cx.span().end();
    server_cx.span().set_status(Status::Ok);
    server_cx.span().end();
    (server_id, internal_id, client_id)
}

async fn flush(provider: SdkTracerProvider) {
    // force_flush/shutdown block until the tokio export task answers: keep them off the
    // runtime's worker threads.
    tokio::task::spawn_blocking(move || {
        provider.force_flush().expect("flush");
        provider.shutdown().expect("shutdown");
    })
    .await
    .unwrap();
}

async fn assert_received(receiver: &OtlpReceiver, service: &str, ids: (String, String, String)) {
    let (server_id, internal_id, client_id) = ids;
    let spans = receiver
        .wait_for_trace(REMOTE_TRACE, 3, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(spans.len(), 3, "{spans:#?}");
    assert!(receiver.request_count() >= 1);

    let trace = Trace::new(spans);
    let server = trace.expect(service, "GET /trace");
    let internal = trace.expect(service, "trace1");
    let client = trace.expect_exact(service, "GET");

    // Ids and parents exactly as the SDK assigned them.
    assert_eq!(server.trace_id, REMOTE_TRACE);
    assert_eq!(server.span_id, server_id);
    assert_eq!(server.parent_span_id.as_deref(), Some(REMOTE_SPAN));
    assert_eq!(server.trace_state, "vendor=v1");
    assert_eq!(internal.span_id, internal_id);
    assert_eq!(internal.parent_span_id.as_deref(), Some(server_id.as_str()));
    assert_eq!(client.span_id, client_id);
    assert_eq!(client.parent_span_id.as_deref(), Some(internal_id.as_str()));
    trace.assert_child_of(internal, server);
    trace.assert_child_of(client, internal);
    trace.assert_connected();
    assert_eq!(trace.root().span_id, server_id);

    // Kinds, names, status.
    assert_eq!(server.kind, Kind::Server);
    assert_eq!(internal.kind, Kind::Internal);
    assert_eq!(client.kind, Kind::Client);
    assert_eq!(server.status, St::Ok);
    assert_eq!(internal.status, St::Unset);
    assert_eq!(client.status, St::error("upstream 503"));

    // Resource and scope.
    for span in [server, internal, client] {
        assert_eq!(span.service_name, service);
        assert_eq!(span.scope_name, "testkit-test");
        assert_eq!(
            span.resource.get("deployment.environment.name"),
            Some(&AttrValue::from("test"))
        );
        assert!(span.end_unix_nanos >= span.start_unix_nanos);
    }

    // Attributes with their wire types.
    assert_eq!(server.attr_str("http.request.method"), Some("GET"));
    assert_eq!(server.attr_str("http.route"), Some("/trace"));
    assert_eq!(server.attr_i64("http.response.status_code"), Some(200));
    assert_eq!(server.attributes.len(), 3, "{:?}", server.attributes);
    assert_eq!(client.attr_str("url.full"), Some("http://c/work"));
    assert_eq!(internal.attr("ratio"), Some(&AttrValue::Double(0.5)));
    assert_eq!(internal.attr("cached"), Some(&AttrValue::Bool(true)));

    // Events and links.
    assert_eq!(internal.events.len(), 1);
    assert_eq!(internal.events[0].name, "checkpoint");
    assert_eq!(
        internal.events[0].attributes.get("step"),
        Some(&AttrValue::Int(2))
    );
    assert_eq!(internal.links.len(), 1);
    assert_eq!(
        internal.links[0].trace_id,
        "0af7651916cd43dd8448eb211c80319c"
    );
    assert_eq!(internal.links[0].span_id, "b7ad6b7169203331");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_exporter_spans_decode_exactly() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(receiver.grpc_endpoint())
        .build()
        .unwrap();
    let provider = provider(exporter, "svc-grpc");
    let ids = record_trace(&provider);
    flush(provider).await;
    assert_received(&receiver, "svc-grpc", ids).await;
    receiver.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_protobuf_exporter_spans_decode_exactly() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(receiver.http_traces_url())
        .build()
        .unwrap();
    let provider = provider(exporter, "svc-http");
    let ids = record_trace(&provider);
    flush(provider).await;
    assert_received(&receiver, "svc-http", ids).await;
    receiver.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_times_out_with_a_description_of_what_arrived() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(receiver.grpc_endpoint())
        .build()
        .unwrap();
    let provider = provider(exporter, "svc-timeout");
    record_trace(&provider);
    flush(provider).await;
    receiver.wait_for_spans(3, WAIT).await.unwrap();
    let err = receiver
        .wait_for(
            |spans| spans.iter().any(|s| s.name == "never"),
            Duration::from_millis(50),
        )
        .await
        .unwrap_err();
    assert!(err.contains("3 spans in 1 export requests"), "{err}");
    assert!(err.contains("svc-timeout GET /trace [server]"), "{err}");
    assert!(err.contains("status=ERROR(upstream 503)"), "{err}");
    drop(receiver);
}
