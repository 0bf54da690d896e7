//! Extraction and injection cost per format and for the composite propagator.
//!
//! Targets (issue 5): composite extraction (traceparent + uber-trace-id + sentry-trace +
//! baggage) ≤ 250 ns, injection of every format ≤ 300 ns.
//! Run: `cargo bench -p tracebridge --bench propagation -- --quick`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::trace::{SpanContext, TraceContextExt, TraceFlags, TraceState};
use opentelemetry::{Context, SpanId, TraceId};
use tracebridge::propagation::{DscConfig, Propagator};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN: &str = "00f067aa0ba902b7";

fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        map.append(
            HeaderName::from_static(k),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    map
}

/// (label, `OTEL_PROPAGATORS`, request headers)
type Case = (&'static str, &'static str, Vec<(&'static str, String)>);

fn extract(c: &mut Criterion) {
    let mut g = c.benchmark_group("extract");
    let cases: [Case; 7] = [
        ("tracecontext", "tracecontext", vec![("traceparent", format!("00-{TRACE}-{SPAN}-01"))]),
        ("jaeger", "jaeger", vec![("uber-trace-id", format!("{TRACE}:{SPAN}:0:1"))]),
        ("b3", "b3", vec![("b3", format!("{TRACE}-{SPAN}-1"))]),
        (
            "b3multi",
            "b3multi",
            vec![
                ("x-b3-traceid", TRACE.into()),
                ("x-b3-spanid", SPAN.into()),
                ("x-b3-sampled", "1".into()),
            ],
        ),
        ("sentry", "sentry", vec![("sentry-trace", format!("{TRACE}-{SPAN}-1"))]),
        (
            "composite",
            "tracecontext,baggage,jaeger,sentry",
            vec![
                ("traceparent", format!("00-{TRACE}-{SPAN}-01")),
                ("uber-trace-id", format!("{TRACE}:{SPAN}:0:1")),
                ("sentry-trace", format!("{TRACE}-{SPAN}-1")),
                (
                    "baggage",
                    format!(
                        "sentry-trace_id={TRACE},sentry-public_key=49d0f7386ad645858ae85020e393bef3,\
                         sentry-sample_rate=1.0,sentry-sampled=true,sentry-sample_rand=0.4242,\
                         sentry-environment=prod,sentry-release=web%401.0"
                    ),
                ),
                ("accept", "application/json".into()),
                ("user-agent", "bench".into()),
            ],
        ),
        // The request of `server_layer` (the callgrind figure): a browser's DSC followed by one
        // W3C member, so the DSC is a part of the header and `Baggage` holds one entry.
        (
            "composite_dsc_and_w3c",
            "tracecontext,baggage,jaeger,sentry",
            vec![
                ("traceparent", format!("00-{TRACE}-{SPAN}-01")),
                ("uber-trace-id", format!("{TRACE}:{SPAN}:0:1")),
                ("sentry-trace", format!("{TRACE}-{SPAN}-1")),
                (
                    "baggage",
                    format!(
                        "sentry-trace_id={TRACE},sentry-public_key=49d0f7386ad645858ae85020e393bef3,\
                         sentry-sample_rate=1,sentry-sampled=true,sentry-environment=prod,\
                         user.tier=gold"
                    ),
                ),
                ("host", "127.0.0.1:8080".into()),
                ("user-agent", "bench/1.0".into()),
            ],
        ),
    ];
    let composite = headers(&cases[5].2);
    for (label, names, pairs) in cases {
        let p = Propagator::from_names(names).unwrap();
        let h = headers(&pairs);
        assert!(p.extract(&h).span().span_context().is_valid(), "{label}");
        g.bench_function(label, |b| b.iter(|| black_box(p.extract(black_box(&h)))));
    }
    // What `init` configures when no Sentry span processor is installed: no Sentry propagation
    // context on the extracted context (one context value less).
    let p = Propagator::default().with_sentry_context(false);
    g.bench_function("composite_without_sentry_context", |b| {
        b.iter(|| black_box(p.extract(black_box(&composite))))
    });
    g.finish();
}

/// Injects into a map that is cleared and reused, the way a client's request map is warm in
/// cache when the layer writes into it: the figure is the injection (building the values,
/// inserting them, and dropping the previous ones in `clear`), not a fresh map's allocation.
fn inject_into_reused(p: &Propagator, cx: &Context, h: &mut HeaderMap) {
    h.clear();
    p.inject(black_box(cx), h);
    black_box(h);
}

fn inject(c: &mut Criterion) {
    let mut g = c.benchmark_group("inject");
    let mut h = HeaderMap::with_capacity(16);
    let cx = Context::new().with_remote_span_context(SpanContext::new(
        TraceId::from_hex(TRACE).unwrap(),
        SpanId::from_hex(SPAN).unwrap(),
        TraceFlags::SAMPLED,
        false,
        TraceState::NONE,
    ));
    let dsc = DscConfig {
        public_key: Some("49d0f7386ad645858ae85020e393bef3".into()),
        environment: Some("prod".into()),
        release: Some("svc@1.0.0".into()),
        sample_rate: Some(1.0),
    };
    for (label, names) in [
        ("tracecontext", "tracecontext"),
        ("jaeger", "jaeger"),
        ("b3", "b3"),
        ("b3multi", "b3multi"),
        ("sentry", "sentry"),
        ("default", "tracecontext,baggage,jaeger,sentry"),
        ("all", "tracecontext,baggage,jaeger,b3,b3multi,sentry"),
    ] {
        let p = Propagator::from_names(names).unwrap().with_dsc(dsc.clone());
        g.bench_function(label, |b| b.iter(|| inject_into_reused(&p, &cx, &mut h)));
    }
    // Forwarding an incoming context (DSC + W3C baggage) instead of writing our own DSC.
    let p = Propagator::default();
    let incoming = p.extract(&headers(&[
        ("sentry-trace", format!("{TRACE}-{SPAN}-1")),
        (
            "baggage",
            format!(
                "sentry-trace_id={TRACE},sentry-sample_rate=1.0,sentry-sampled=true,user=alice"
            ),
        ),
    ]));
    g.bench_function("default_forwarding", |b| {
        b.iter(|| inject_into_reused(&p, &incoming, &mut h))
    });
    // The same injection into a freshly allocated map per iteration: adds the first-touch cost
    // of new memory (see `floor/headermap_insert_one_fresh`), which is the allocator's, not ours.
    let p = Propagator::default().with_dsc(dsc);
    g.bench_function("default_fresh_map", |b| {
        b.iter_batched_ref(
            || HeaderMap::with_capacity(16),
            |h| p.inject(black_box(&cx), h),
            criterion::BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// The floor set by opentelemetry's `Context` API alone: a remote span context plus the two
/// values composite extraction adds (Sentry propagation context, DSC). Compare with
/// `extract/composite` to see what the parsing itself costs.
fn context_floor(c: &mut Criterion) {
    let sc = SpanContext::new(
        TraceId::from_hex(TRACE).unwrap(),
        SpanId::from_hex(SPAN).unwrap(),
        TraceFlags::SAMPLED,
        true,
        TraceState::NONE,
    );
    c.bench_function("floor/context_span_and_two_values", |b| {
        b.iter(|| {
            black_box(
                Context::new()
                    .with_remote_span_context(black_box(sc.clone()))
                    .with_value(black_box(1u64))
                    .with_value(black_box(2u32)),
            )
        })
    });
    let mut h = HeaderMap::with_capacity(16);
    c.bench_function("floor/headermap_insert_one", |b| {
        b.iter(|| {
            h.clear();
            h.insert(
                HeaderName::from_static("traceparent"),
                HeaderValue::from_static("x"),
            );
            black_box(&mut h);
        })
    });
    c.bench_function("floor/headermap_insert_one_fresh", |b| {
        b.iter_batched_ref(
            || HeaderMap::with_capacity(16),
            |h| {
                h.insert(
                    HeaderName::from_static("traceparent"),
                    HeaderValue::from_static("x"),
                )
            },
            criterion::BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, extract, inject, context_floor);
criterion_main!(benches);
