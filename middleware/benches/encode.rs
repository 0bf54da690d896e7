//! OTLP encoding cost: ns per encoded span, tracebridge's hand-written encoder vs the path
//! opentelemetry-otlp 0.32 runs (clone the batch, opentelemetry-proto's transform into prost
//! structs, prost encode), for one typical SERVER span (a dozen attributes) and a batch of 512.
//!
//! Issue 11: a span with a dozen attributes encodes in ≈ 220 ns when lengths are computed once
//! and static keys are pre-encoded. Run: `cargo bench -p tracebridge --bench encode -- --quick`.

use std::borrow::Cow;
use std::hint::black_box;
use std::time::{Duration, UNIX_EPOCH};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use opentelemetry_sdk::Resource;
use prost::Message;

// The encoder is crate-internal: compile its file into the bench (it only needs the
// opentelemetry crates), so the bench measures exactly the code the export thread runs.
#[allow(dead_code)]
#[path = "../src/pipeline/encode.rs"]
mod encode;

fn resource() -> Resource {
    Resource::builder()
        .with_service_name("c")
        .with_attribute(KeyValue::new("deployment.environment", "bench"))
        .build()
}

/// service c's `GET /work` SERVER span as the HTTP layer records it: a dozen attributes.
fn server_span(i: u64) -> SpanData {
    SpanData {
        span_context: SpanContext::new(
            TraceId::from(0x4bf92f3577b34da6a3ce929d0e0e4736 + i as u128),
            SpanId::from(0x00f067aa0ba902b7 + i),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id: SpanId::from(0x1111222233334444),
        parent_span_is_remote: true,
        span_kind: SpanKind::Server,
        name: Cow::Borrowed("GET /work"),
        start_time: UNIX_EPOCH + Duration::from_nanos(1_764_460_800_123_456_789),
        end_time: UNIX_EPOCH + Duration::from_nanos(1_764_460_800_123_999_999),
        attributes: vec![
            KeyValue::new("http.request.method", "GET"),
            KeyValue::new("http.route", "/work"),
            KeyValue::new("url.path", "/work"),
            KeyValue::new("url.scheme", "http"),
            KeyValue::new("http.response.status_code", 200),
            KeyValue::new("network.protocol.version", "1.1"),
            KeyValue::new("server.address", "127.0.0.1"),
            KeyValue::new("server.port", 8083),
            KeyValue::new("client.address", "127.0.0.1"),
            KeyValue::new("user_agent.original", "tracebridge-bench/1.0"),
            KeyValue::new("otel.kind", "server"),
            KeyValue::new("busy_ns", 41_250),
        ],
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: Status::Unset,
        instrumentation_scope: InstrumentationScope::builder("tracebridge")
            .with_version("0.1.0")
            .build(),
    }
}

fn bench(c: &mut Criterion) {
    let resource = resource();
    let reference_resource = ResourceAttributesWithSchema::from(&resource);
    for n in [1usize, 512] {
        let spans: Vec<SpanData> = (0..n as u64).map(server_span).collect();
        let mut group = c.benchmark_group(format!("encode/{n}_spans"));
        group.throughput(Throughput::Elements(n as u64));

        let mut encoder = encode::Encoder::new(&resource);
        let mut out = Vec::new();
        group.bench_function("tracebridge", |b| {
            b.iter(|| {
                out.clear();
                encoder.encode(black_box(&spans), &mut out);
                black_box(out.len())
            })
        });

        // opentelemetry-otlp clones the batch it is handed, then transforms and encodes it.
        let mut buf = Vec::new();
        group.bench_function("opentelemetry-proto+prost", |b| {
            b.iter_batched_ref(
                || (),
                |()| {
                    let request = ExportTraceServiceRequest {
                        resource_spans: group_spans_by_resource_and_scope(
                            black_box(&spans).clone(),
                            &reference_resource,
                        ),
                    };
                    buf.clear();
                    request.encode(&mut buf).unwrap();
                    black_box(buf.len())
                },
                BatchSize::SmallInput,
            )
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
