//! The encoder against the reference: opentelemetry-proto 0.32's transform (the code
//! opentelemetry-otlp runs on every export) + prost encoding, decoded with prost and compared
//! field by field. opentelemetry-proto groups scopes through a `HashMap` (random order), so
//! `ScopeSpans` are put in one canonical order on both sides before comparing (see
//! [`normalize`]); with a single scope the bytes themselves must be identical.

use std::borrow::Cow;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{
    Event, Link, SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId,
    TraceState, Tracer, TracerProvider,
};
use opentelemetry::{Array, Context, InstrumentationScope, KeyValue, StringValue, Value};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue as PKeyValue};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};
use opentelemetry_sdk::Resource;
use proptest::prelude::*;
use prost::Message;

use super::encode::Encoder;

/// What opentelemetry-otlp 0.32 puts on the wire for `spans`.
fn reference_bytes(resource: &Resource, spans: &[SpanData]) -> Vec<u8> {
    let resource = ResourceAttributesWithSchema::from(resource);
    ExportTraceServiceRequest {
        resource_spans: group_spans_by_resource_and_scope(spans.to_vec(), &resource),
    }
    .encode_to_vec()
}

fn decode(bytes: &[u8]) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest::decode(bytes).expect("valid ExportTraceServiceRequest")
}

fn ours(encoder: &mut Encoder, spans: &[SpanData]) -> Vec<u8> {
    let mut out = Vec::new();
    encoder.encode(spans, &mut out);
    out
}

/// Every double as its bit pattern (so NaN compares equal to the same NaN, and -0.0 differs
/// from 0.0), then `ScopeSpans` sorted by their prost encoding.
fn normalize(mut req: ExportTraceServiceRequest) -> ExportTraceServiceRequest {
    fn value(v: &mut AnyValue) {
        match &mut v.value {
            Some(any_value::Value::DoubleValue(d)) => {
                v.value = Some(any_value::Value::StringValue(format!(
                    "f64 bits {:016x}",
                    d.to_bits()
                )))
            }
            Some(any_value::Value::ArrayValue(a)) => a.values.iter_mut().for_each(value),
            _ => {}
        }
    }
    fn attrs(kvs: &mut [PKeyValue]) {
        for kv in kvs {
            if let Some(v) = &mut kv.value {
                value(v);
            }
        }
    }
    for rs in &mut req.resource_spans {
        if let Some(r) = &mut rs.resource {
            attrs(&mut r.attributes);
        }
        for ss in &mut rs.scope_spans {
            if let Some(s) = &mut ss.scope {
                attrs(&mut s.attributes);
            }
            for span in &mut ss.spans {
                attrs(&mut span.attributes);
                span.events
                    .iter_mut()
                    .for_each(|e| attrs(&mut e.attributes));
                span.links.iter_mut().for_each(|l| attrs(&mut l.attributes));
            }
        }
        rs.scope_spans.sort_by_cached_key(|ss| ss.encode_to_vec());
    }
    req
}

/// Ours decodes to the reference, field by field; with one scope group the bytes are equal.
fn assert_matches_reference(resource: &Resource, spans: &[SpanData]) -> ExportTraceServiceRequest {
    let mut encoder = Encoder::new(resource);
    let ours = ours(&mut encoder, spans);
    let reference = reference_bytes(resource, spans);
    let decoded = decode(&ours);
    let expected = decode(&reference);
    let groups = expected.resource_spans[0].scope_spans.len();
    assert_eq!(normalize(decoded.clone()), normalize(expected));
    if groups <= 1 {
        assert!(ours == reference, "same message, different bytes");
    }
    decoded
}

fn nanos(n: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(n)
}

fn resource() -> Resource {
    Resource::builder_empty()
        .with_schema_url(
            [
                KeyValue::new("service.name", "svc-c"),
                KeyValue::new("deployment.environment", "test"),
                KeyValue::new("host.cpus", 2),
            ],
            "https://opentelemetry.io/schemas/1.26.0",
        )
        .build()
}

fn span_events(events: Vec<Event>, dropped: u32) -> SpanEvents {
    let mut e = SpanEvents::default();
    e.events = events;
    e.dropped_count = dropped;
    e
}

fn span_links(links: Vec<Link>, dropped: u32) -> SpanLinks {
    let mut l = SpanLinks::default();
    l.links = links;
    l.dropped_count = dropped;
    l
}

const TRACE: u128 = 0x4bf92f3577b34da6a3ce929d0e0e4736;

/// A SERVER span with a remote parent, trace state, every attribute kind, two events, two links
/// and an error status.
fn full_span() -> SpanData {
    let state = TraceState::from_str("vendor=abc,other=x-y").unwrap();
    SpanData {
        span_context: SpanContext::new(
            TraceId::from(TRACE),
            SpanId::from(0x00f067aa0ba902b7),
            TraceFlags::SAMPLED,
            false,
            state.clone(),
        ),
        parent_span_id: SpanId::from(0x1111222233334444),
        parent_span_is_remote: true,
        span_kind: SpanKind::Server,
        name: Cow::Borrowed("GET /work"),
        start_time: nanos(1_764_460_800_123_456_789),
        end_time: nanos(1_764_460_800_123_999_999),
        attributes: vec![
            KeyValue::new("http.request.method", "GET"),
            KeyValue::new("http.route", "/work"),
            KeyValue::new("http.response.status_code", 500),
            KeyValue::new("negative", i64::MIN),
            KeyValue::new("ratio", -0.5),
            KeyValue::new("ok", false),
            KeyValue::new("empty", ""),
            KeyValue::new("bools", Value::Array(Array::Bool(vec![true, false]))),
            KeyValue::new("ints", Value::Array(Array::I64(vec![0, -1, i64::MAX]))),
            KeyValue::new("floats", Value::Array(Array::F64(vec![f64::INFINITY, 0.0]))),
            KeyValue::new(
                "strings",
                Value::Array(Array::String(vec![
                    StringValue::from("ü"),
                    StringValue::from(""),
                ])),
            ),
            KeyValue::new("empty_array", Value::Array(Array::I64(vec![]))),
        ],
        dropped_attributes_count: 3,
        events: span_events(
            vec![
                Event::new(
                    "exception",
                    nanos(1_764_460_800_123_500_000),
                    vec![KeyValue::new("exception.message", "boom")],
                    1,
                ),
                Event::new("", UNIX_EPOCH, vec![], 0),
            ],
            7,
        ),
        links: span_links(
            vec![
                Link::new(
                    SpanContext::new(
                        TraceId::from(0xabc),
                        SpanId::from(0xdef),
                        TraceFlags::default(),
                        true,
                        state,
                    ),
                    vec![KeyValue::new("link.kind", "follows")],
                    2,
                ),
                Link::with_context(SpanContext::new(
                    TraceId::from(TRACE),
                    SpanId::from(5),
                    TraceFlags::SAMPLED,
                    false,
                    TraceState::default(),
                )),
            ],
            1,
        ),
        status: Status::error("upstream failed"),
        instrumentation_scope: InstrumentationScope::builder("tracebridge")
            .with_version("0.1.0")
            .build(),
    }
}

#[test]
fn full_span_matches_opentelemetry_otlp() {
    let decoded = assert_matches_reference(&resource(), &[full_span()]);
    // And the values themselves, so a shared misunderstanding cannot pass unnoticed.
    let rs = &decoded.resource_spans[0];
    assert_eq!(rs.schema_url, "https://opentelemetry.io/schemas/1.26.0");
    assert_eq!(rs.resource.as_ref().unwrap().attributes.len(), 3);
    let ss = &rs.scope_spans[0];
    assert_eq!(ss.scope.as_ref().unwrap().name, "tracebridge");
    assert_eq!(ss.scope.as_ref().unwrap().version, "0.1.0");
    let span = &ss.spans[0];
    assert_eq!(span.trace_id, TRACE.to_be_bytes());
    assert_eq!(span.span_id, 0x00f067aa0ba902b7u64.to_be_bytes());
    assert_eq!(span.parent_span_id, 0x1111222233334444u64.to_be_bytes());
    assert_eq!(span.trace_state, "vendor=abc,other=x-y");
    assert_eq!(
        span.flags, 0x301,
        "sampled + is_remote known + remote parent"
    );
    assert_eq!(span.name, "GET /work");
    assert_eq!(span.kind, 2);
    assert_eq!(span.start_time_unix_nano, 1_764_460_800_123_456_789);
    assert_eq!(span.end_time_unix_nano, 1_764_460_800_123_999_999);
    assert_eq!(span.attributes.len(), 12);
    assert_eq!(
        span.attributes[3].value.as_ref().unwrap().value,
        Some(any_value::Value::IntValue(i64::MIN))
    );
    assert_eq!(span.dropped_attributes_count, 3);
    assert_eq!(span.events.len(), 2);
    assert_eq!(span.events[0].name, "exception");
    assert_eq!(span.events[0].dropped_attributes_count, 1);
    assert_eq!(span.dropped_events_count, 7);
    assert_eq!(span.links[0].flags, 0x300, "unsampled, remote link");
    assert_eq!(span.links[0].trace_state, "vendor=abc,other=x-y");
    assert_eq!(span.links[0].dropped_attributes_count, 2);
    assert_eq!(span.links[1].flags, 0x101, "sampled, local link");
    assert_eq!(span.dropped_links_count, 1);
    let status = span.status.as_ref().unwrap();
    assert_eq!(status.code, StatusCode::Error as i32);
    assert_eq!(status.message, "upstream failed");
}

#[test]
fn root_span_without_parent_or_status_matches() {
    let mut span = full_span();
    span.parent_span_id = SpanId::INVALID;
    span.parent_span_is_remote = false;
    span.status = Status::Unset;
    span.span_kind = SpanKind::Internal;
    span.start_time = UNIX_EPOCH - Duration::from_secs(1); // before the epoch: 0
    let decoded = assert_matches_reference(&resource(), &[span]);
    let span = &decoded.resource_spans[0].scope_spans[0].spans[0];
    assert!(span.parent_span_id.is_empty());
    assert_eq!(span.flags, 0x101);
    assert_eq!(span.start_time_unix_nano, 0);
    assert_eq!(span.status.as_ref().unwrap().code, StatusCode::Unset as i32);

    let mut ok = full_span();
    ok.status = Status::Ok;
    ok.span_kind = SpanKind::Consumer;
    assert_matches_reference(&resource(), &[ok]);
}

#[test]
fn empty_batch_and_empty_resource_match() {
    let decoded = assert_matches_reference(&resource(), &[]);
    assert_eq!(decoded.resource_spans.len(), 1);
    assert!(decoded.resource_spans[0].scope_spans.is_empty());
    assert_matches_reference(&Resource::builder_empty().build(), &[full_span()]);
}

#[test]
fn scopes_group_in_order_of_first_appearance() {
    let scope_b = InstrumentationScope::builder("b")
        .with_version("2")
        .with_schema_url("https://example.com/schema")
        .with_attributes([KeyValue::new("x", 1), KeyValue::new("y", "z")])
        .build();
    // The same scope with its attributes in another order is the same scope (SDK equality).
    let scope_b_reordered = InstrumentationScope::builder("b")
        .with_version("2")
        .with_schema_url("https://example.com/schema")
        .with_attributes([KeyValue::new("y", "z"), KeyValue::new("x", 1)])
        .build();
    let mut spans = Vec::new();
    for (i, scope) in [
        scope_b.clone(),
        InstrumentationScope::builder("a").build(),
        scope_b_reordered,
        InstrumentationScope::builder("a").build(),
    ]
    .into_iter()
    .enumerate()
    {
        let mut span = full_span();
        span.span_context = SpanContext::new(
            TraceId::from(TRACE),
            SpanId::from(i as u64 + 1),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        );
        span.instrumentation_scope = scope;
        spans.push(span);
    }
    let decoded = assert_matches_reference(&resource(), &spans);
    let ss = &decoded.resource_spans[0].scope_spans;
    let names: Vec<&str> = ss
        .iter()
        .map(|s| s.scope.as_ref().unwrap().name.as_str())
        .collect();
    assert_eq!(names, ["b", "a"]);
    assert_eq!(ss[0].schema_url, "https://example.com/schema");
    let ids = |s: &opentelemetry_proto::tonic::trace::v1::ScopeSpans| -> Vec<Vec<u8>> {
        s.spans.iter().map(|s| s.span_id.clone()).collect()
    };
    assert_eq!(ids(&ss[0]), [1u64.to_be_bytes(), 3u64.to_be_bytes()]);
    assert_eq!(ids(&ss[1]), [2u64.to_be_bytes(), 4u64.to_be_bytes()]);
    // The group's scope is encoded from its first span's scope, as the reference's HashMap key.
    let attrs: Vec<&str> = ss[0]
        .scope
        .as_ref()
        .unwrap()
        .attributes
        .iter()
        .map(|a| a.key.as_str())
        .collect();
    assert_eq!(attrs, ["x", "y"]);
}

#[test]
fn encoder_reuse_leaves_no_state_behind() {
    let resource = resource();
    let mut encoder = Encoder::new(&resource);
    let mut other = full_span();
    other.instrumentation_scope = InstrumentationScope::builder("other").build();
    let batches = [
        vec![full_span(), other.clone(), full_span()],
        vec![other.clone()],
        vec![],
        vec![full_span(); 3],
    ];
    let mut out = Vec::new();
    for batch in &batches {
        out.clear();
        encoder.encode(batch, &mut out);
        assert_eq!(
            normalize(decode(&out)),
            normalize(decode(&reference_bytes(&resource, batch)))
        );
    }
    // `encode` appends: what was in `out` stays.
    let mut appended = b"prefix".to_vec();
    encoder.encode(&batches[1], &mut appended);
    assert_eq!(&appended[..6], b"prefix");
    assert_eq!(appended[6..], reference_bytes(&resource, &batches[1]));
}

/// Spans made by the SDK itself (what the SpanProcessor hands over), from two tracers.
#[test]
fn spans_from_the_sdk_match() {
    let exporter = InMemorySpanExporter::default();
    let resource = Resource::builder()
        .with_service_name("svc-a")
        .with_attribute(KeyValue::new("team", "core"))
        .build();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .with_resource(resource.clone())
        .build();
    let server = provider.tracer("tracebridge");
    let user = provider.tracer_with_scope(
        InstrumentationScope::builder("app")
            .with_version("1.2.3")
            .with_schema_url("https://opentelemetry.io/schemas/1.26.0")
            .with_attributes([KeyValue::new("lib", true)])
            .build(),
    );
    let remote = SpanContext::new(
        TraceId::from(TRACE),
        SpanId::from(0x1234),
        TraceFlags::SAMPLED,
        true,
        TraceState::from_str("congo=t61rcWkgMzE").unwrap(),
    );
    let parent = Context::new().with_remote_span_context(remote);
    let request = server
        .span_builder("GET /trace")
        .with_kind(SpanKind::Server)
        .with_attributes([
            KeyValue::new("http.request.method", "GET"),
            KeyValue::new("http.response.status_code", 200),
        ])
        .with_links(vec![Link::with_context(SpanContext::new(
            TraceId::from(7),
            SpanId::from(8),
            TraceFlags::default(),
            true,
            TraceState::default(),
        ))])
        .start_with_context(&server, &parent);
    let cx = parent.with_span(request);
    {
        let mut inner = user.start_with_context("trace1", &cx);
        opentelemetry::trace::Span::add_event(
            &mut inner,
            "log",
            vec![KeyValue::new("message", "hello")],
        );
        opentelemetry::trace::Span::set_status(&mut inner, Status::error("bad"));
    }
    cx.span().end();
    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    assert_eq!(spans.len(), 2);
    let decoded = assert_matches_reference(&resource, &spans);
    let scopes = &decoded.resource_spans[0].scope_spans;
    assert_eq!(scopes.len(), 2);
    // trace1 ended first: its scope comes first.
    assert_eq!(scopes[0].scope.as_ref().unwrap().name, "app");
    assert_eq!(scopes[0].spans[0].flags, 0x101, "local parent");
    assert_eq!(scopes[1].spans[0].flags, 0x301, "remote parent");
    assert_eq!(scopes[1].spans[0].trace_state, "congo=t61rcWkgMzE");
    assert_eq!(
        scopes[1].spans[0].links[0].flags, 0x300,
        "unsampled, remote link"
    );
}

// ---- property test -----------------------------------------------------------------------

fn arb_string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "\\PC{0,12}",
        1 => Just(String::new()),
        1 => (1usize..40_000).prop_map(|n| "ü".repeat(n)),
    ]
}

fn arb_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        proptest::num::f64::ANY,
        Just(f64::NAN),
        Just(-f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(-0.0),
        Just(f64::MIN_POSITIVE / 2.0),
    ]
}

fn arb_i64() -> impl Strategy<Value = i64> {
    prop_oneof![
        any::<i64>(),
        Just(i64::MIN),
        Just(i64::MAX),
        Just(0),
        Just(-1)
    ]
}

fn arb_value() -> impl Strategy<Value = Value> {
    let small = || prop::collection::vec(arb_string(), 0..4);
    prop_oneof![
        any::<bool>().prop_map(Value::Bool),
        arb_i64().prop_map(Value::I64),
        arb_f64().prop_map(Value::F64),
        arb_string().prop_map(|s| Value::String(s.into())),
        prop::collection::vec(any::<bool>(), 0..4).prop_map(|v| Value::Array(Array::Bool(v))),
        prop::collection::vec(arb_i64(), 0..4).prop_map(|v| Value::Array(Array::I64(v))),
        prop::collection::vec(arb_f64(), 0..4).prop_map(|v| Value::Array(Array::F64(v))),
        small().prop_map(|v| Value::Array(Array::String(
            v.into_iter().map(StringValue::from).collect()
        ))),
    ]
}

fn arb_attributes() -> impl Strategy<Value = Vec<KeyValue>> {
    prop::collection::vec(
        (arb_string(), arb_value()).prop_map(|(k, v)| KeyValue::new(k, v)),
        0..5,
    )
}

fn arb_count() -> impl Strategy<Value = u32> {
    prop_oneof![Just(0u32), any::<u32>()]
}

fn arb_time() -> impl Strategy<Value = SystemTime> {
    prop_oneof![
        any::<u64>().prop_map(nanos),
        Just(UNIX_EPOCH),
        Just(UNIX_EPOCH - Duration::from_secs(5)),
        // Beyond u64 nanoseconds (year 2554): the reference truncates.
        Just(UNIX_EPOCH + Duration::from_secs(1 << 36)),
    ]
}

fn arb_trace_state() -> impl Strategy<Value = TraceState> {
    prop::collection::vec(("[a-z][a-z0-9_*/-]{0,8}", "[!-+--<>-~]{1,10}"), 0..4)
        .prop_map(|kvs| TraceState::from_key_value(kvs).unwrap_or_default())
}

fn arb_context() -> impl Strategy<Value = SpanContext> {
    (
        any::<u128>(),
        any::<u64>(),
        any::<u8>(),
        any::<bool>(),
        arb_trace_state(),
    )
        .prop_map(|(t, s, f, remote, state)| {
            SpanContext::new(
                TraceId::from(t),
                SpanId::from(s),
                TraceFlags::new(f),
                remote,
                state,
            )
        })
}

fn arb_scope() -> impl Strategy<Value = InstrumentationScope> {
    (
        arb_string(),
        prop::option::of(arb_string()),
        prop::option::of(arb_string()),
        arb_attributes(),
    )
        .prop_map(|(name, version, schema, attributes)| {
            let mut b = InstrumentationScope::builder(name).with_attributes(attributes);
            if let Some(v) = version {
                b = b.with_version(v);
            }
            if let Some(s) = schema {
                b = b.with_schema_url(s);
            }
            b.build()
        })
}

fn arb_status() -> impl Strategy<Value = Status> {
    prop_oneof![
        Just(Status::Unset),
        Just(Status::Ok),
        arb_string().prop_map(Status::error),
    ]
}

fn arb_kind() -> impl Strategy<Value = SpanKind> {
    prop_oneof![
        Just(SpanKind::Internal),
        Just(SpanKind::Server),
        Just(SpanKind::Client),
        Just(SpanKind::Producer),
        Just(SpanKind::Consumer),
    ]
}

fn arb_event() -> impl Strategy<Value = Event> {
    (arb_string(), arb_time(), arb_attributes(), arb_count())
        .prop_map(|(name, time, attrs, dropped)| Event::new(name, time, attrs, dropped))
}

fn arb_link() -> impl Strategy<Value = Link> {
    (arb_context(), arb_attributes(), arb_count())
        .prop_map(|(cx, attrs, dropped)| Link::new(cx, attrs, dropped))
}

/// A span; its scope is picked later from the batch's few scopes (so groups form).
fn arb_span() -> impl Strategy<Value = (SpanData, usize)> {
    (
        (
            arb_context(),
            any::<u64>(),
            any::<bool>(),
            arb_kind(),
            arb_string(),
        ),
        (arb_time(), arb_time(), arb_attributes(), arb_count()),
        (
            prop::collection::vec(arb_event(), 0..3),
            arb_count(),
            prop::collection::vec(arb_link(), 0..3),
            arb_count(),
        ),
        (arb_status(), 0usize..3),
    )
        .prop_map(
            |(
                (cx, parent, parent_remote, kind, name),
                (start, end, attributes, dropped),
                (events, dropped_events, links, dropped_links),
                (status, scope),
            )| {
                let span = SpanData {
                    span_context: cx,
                    parent_span_id: SpanId::from(parent),
                    parent_span_is_remote: parent_remote,
                    span_kind: kind,
                    name: name.into(),
                    start_time: start,
                    end_time: end,
                    attributes,
                    dropped_attributes_count: dropped,
                    events: span_events(events, dropped_events),
                    links: span_links(links, dropped_links),
                    status,
                    instrumentation_scope: InstrumentationScope::default(),
                };
                (span, scope)
            },
        )
}

fn arb_resource() -> impl Strategy<Value = Resource> {
    (arb_attributes(), prop::option::of(arb_string())).prop_map(|(attrs, schema)| match schema {
        Some(url) => Resource::builder_empty()
            .with_schema_url(attrs, url)
            .build(),
        None => Resource::builder_empty().with_attributes(attrs).build(),
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn random_batches_match_opentelemetry_otlp(
        resource in arb_resource(),
        scopes in prop::collection::vec(arb_scope(), 3),
        spans in prop::collection::vec(arb_span(), 0..5),
        root in any::<bool>(),
    ) {
        let spans: Vec<SpanData> = spans
            .into_iter()
            .map(|(mut span, scope)| {
                span.instrumentation_scope = scopes[scope].clone();
                if root {
                    span.parent_span_id = SpanId::INVALID;
                }
                span
            })
            .collect();
        assert_matches_reference(&resource, &spans);
    }
}

/// The bytes opentelemetry-otlp's http/protobuf exporter really POSTs for the same batch (one
/// scope: identical bytes; two scopes: the same message, scope groups normalised).
#[tokio::test]
async fn bytes_equal_what_opentelemetry_otlp_posts() {
    use opentelemetry_otlp::{Protocol, WithExportConfig};
    use opentelemetry_sdk::trace::SpanExporter as _;

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<bytes::Bytes>();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: bytes::Bytes| {
            let tx = tx.clone();
            async move {
                tx.send(body).unwrap();
                ""
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let resource = resource();
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("http://{addr}/v1/traces"))
        .build()
        .unwrap();
    exporter.set_resource(&resource);
    let mut encoder = Encoder::new(&resource);

    let one_scope = vec![full_span(), full_span()];
    exporter.export(one_scope.clone()).await.unwrap();
    let posted = rx.recv().await.unwrap();
    assert!(posted[..] == ours(&mut encoder, &one_scope)[..]);

    let mut other = full_span();
    other.instrumentation_scope = InstrumentationScope::builder("other").build();
    let two_scopes = vec![full_span(), other];
    exporter.export(two_scopes.clone()).await.unwrap();
    let posted = rx.recv().await.unwrap();
    assert_eq!(
        normalize(decode(&ours(&mut encoder, &two_scopes))),
        normalize(decode(&posted))
    );
    server.abort();
}

// ---- tracebridge's compact records ------------------------------------------------------

/// `span` as the layers record it: string values copied into the text buffer, integers inline,
/// everything else as the API's value.
fn record_of(span: &SpanData, scope: Option<InstrumentationScope>) -> super::record::SpanRecord {
    let mut attrs = super::record::Attrs::with_capacity(span.attributes.len(), 0);
    for kv in &span.attributes {
        match &kv.value {
            Value::String(s) => attrs.push_str(kv.key.clone(), s.as_str()),
            Value::I64(i) => attrs.push_i64(kv.key.clone(), *i),
            other => attrs.push(KeyValue::new(kv.key.clone(), other.clone())),
        }
    }
    super::record::SpanRecord {
        scope: scope.map(std::sync::Arc::new),
        span_context: span.span_context.clone(),
        parent_span_id: span.parent_span_id,
        parent_is_remote: span.parent_span_is_remote,
        kind: span.span_kind.clone(),
        name: span.name.clone(),
        start: span.start_time,
        end: span.end_time,
        attrs,
        dropped_attributes: span.dropped_attributes_count,
        events: span.events.events.clone(),
        dropped_events: span.events.dropped_count,
        links: span.links.links.clone(),
        dropped_links: span.links.dropped_count,
        status: span.status.clone(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// A batch mixing records and SDK spans encodes to exactly the bytes of the same batch as
    /// `SpanData` (records converted the way the SDK would hold them, in the encoder's own
    /// scope) — so records inherit the SpanData path's proof against opentelemetry-otlp, which
    /// the same batch is checked against too.
    #[test]
    fn records_encode_exactly_as_the_sdk_spans_they_replace(
        resource in arb_resource(),
        scopes in prop::collection::vec(arb_scope(), 3),
        spans in prop::collection::vec((arb_span(), 0u8..3), 0..6),
    ) {
        let own = scopes[0].clone();
        let mut mixed = Vec::new();
        let mut as_sdk = Vec::new();
        for ((mut span, scope), what) in spans {
            // 0: an SDK span; 1: a record in the encoder's own scope; 2: a record with a scope.
            if what > 0 {
                let record = record_of(&span, (what == 2).then(|| scopes[scope].clone()));
                as_sdk.push(record.to_span_data(own.clone()));
                mixed.push(super::Finished::Record(record));
            } else {
                span.instrumentation_scope = scopes[scope].clone();
                as_sdk.push(span.clone());
                mixed.push(super::Finished::Sdk(Box::new(span)));
            }
        }
        let mut encoder = Encoder::new(&resource).with_own_scope(own);
        let mut from_records = Vec::new();
        encoder.encode(&mixed, &mut from_records);
        let from_sdk = ours(&mut encoder, &as_sdk);
        prop_assert!(from_records == from_sdk, "records and SpanData encode differently");
        assert_matches_reference(&resource, &as_sdk);
    }
}

/// One record with every kind of value, against opentelemetry-otlp's bytes for its `SpanData`.
#[test]
fn a_record_encodes_to_opentelemetry_otlp_bytes() {
    let resource = resource();
    let mut span = full_span();
    span.attributes.push(KeyValue::new("empty", ""));
    span.attributes.push(KeyValue::new("ünïcode", "välüe"));
    span.attributes.push(KeyValue::new("neg", -1_i64));
    let scope = span.instrumentation_scope.clone();
    let record = record_of(&span, None);
    assert_eq!(
        record.to_span_data(scope.clone()).attributes,
        span.attributes
    );
    let mut encoder = Encoder::new(&resource).with_own_scope(scope);
    let mut out = Vec::new();
    encoder.encode(&[super::Finished::Record(record)], &mut out);
    assert!(out == reference_bytes(&resource, &[span]));
}

/// The short-attribute fast path (`put_attr`) at its edges: key and value lengths whose
/// `KeyValue` needs one length byte or two, empty keys and values, and integers whose varint
/// takes one byte to ten — as a record's attributes and as `SpanData`'s, against
/// opentelemetry-otlp's bytes.
#[test]
fn attributes_at_the_edge_of_one_byte_lengths_match_opentelemetry_otlp() {
    let resource = resource();
    let mut span = full_span();
    span.attributes.clear();
    for key_len in [0, 1, 60, 110, 111, 112, 113, 120, 121, 122, 123, 130] {
        let key = "k".repeat(key_len);
        for total in [119, 120, 121, 122, 123, 124] {
            let value = "v".repeat(total - key_len.min(total));
            span.attributes.push(KeyValue::new(key.clone(), value));
        }
        span.attributes.push(KeyValue::new(key.clone(), ""));
        span.attributes
            .push(KeyValue::new(key.clone(), "ü".repeat(61)));
        for int in [0, 1, 127, 128, 16_383, 16_384, -1, i64::MIN, i64::MAX] {
            span.attributes.push(KeyValue::new(key.clone(), int));
        }
    }
    let scope = span.instrumentation_scope.clone();
    let want = reference_bytes(&resource, std::slice::from_ref(&span));
    let mut encoder = Encoder::new(&resource).with_own_scope(scope);
    assert!(ours(&mut encoder, std::slice::from_ref(&span)) == want);
    let mut out = Vec::new();
    encoder.encode(&[super::Finished::Record(record_of(&span, None))], &mut out);
    assert!(out == want);
}
