//! The OTLP encoder allocates nothing per span in steady state: once its scratch buffers and the
//! caller's `out` have grown, encoding a batch makes no heap allocation at all.
//!
//! A test binary of its own because it installs a counting global allocator; the encoder is
//! crate-internal, so its file is compiled in here (it only needs the opentelemetry crates).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::str::FromStr;
use std::time::{Duration, UNIX_EPOCH};

use opentelemetry::trace::{
    Event, Link, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{Array, InstrumentationScope, KeyValue, Value};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use opentelemetry_sdk::Resource;

#[allow(dead_code)]
#[path = "../src/pipeline/encode.rs"]
mod encode;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

struct Counting;

// SAFETY: forwards to the system allocator; only counts this thread's allocations.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

fn span(i: u64, scope: &InstrumentationScope) -> SpanData {
    let state = TraceState::from_str("vendor=abc,other=1").unwrap();
    let mut events = SpanEvents::default();
    events.events.push(Event::new(
        "exception",
        UNIX_EPOCH + Duration::from_secs(1_764_460_800),
        vec![KeyValue::new("exception.message", "boom")],
        0,
    ));
    events.dropped_count = 1;
    let mut links = SpanLinks::default();
    links.links.push(Link::new(
        SpanContext::new(
            TraceId::from(9),
            SpanId::from(9),
            TraceFlags::SAMPLED,
            true,
            state.clone(),
        ),
        vec![KeyValue::new("k", 1.5)],
        0,
    ));
    SpanData {
        span_context: SpanContext::new(
            TraceId::from(0x4bf92f3577b34da6a3ce929d0e0e4736 + u128::from(i)),
            SpanId::from(i + 1),
            TraceFlags::SAMPLED,
            false,
            state,
        ),
        parent_span_id: SpanId::from(0x1234),
        parent_span_is_remote: true,
        span_kind: SpanKind::Server,
        name: "GET /work".into(),
        start_time: UNIX_EPOCH + Duration::from_nanos(1_764_460_800_123_456_789),
        end_time: UNIX_EPOCH + Duration::from_nanos(1_764_460_800_123_999_999),
        attributes: vec![
            KeyValue::new("http.request.method", "GET"),
            KeyValue::new("http.response.status_code", 200),
            KeyValue::new("ok", true),
            KeyValue::new("ratio", 0.25),
            KeyValue::new(
                "tags",
                Value::Array(Array::String(vec!["a".into(), "b".into()])),
            ),
            KeyValue::new("ids", Value::Array(Array::I64(vec![1, -1]))),
        ],
        dropped_attributes_count: 0,
        events,
        links,
        status: Status::error("failed"),
        instrumentation_scope: scope.clone(),
    }
}

#[test]
fn steady_state_encoding_does_not_allocate() {
    let resource = Resource::builder().with_service_name("c").build();
    let server = InstrumentationScope::builder("tracebridge")
        .with_version("0.1.0")
        .with_attributes([KeyValue::new("a", 1), KeyValue::new("b", 2)])
        .build();
    let user = InstrumentationScope::builder("app").build();
    let batch: Vec<SpanData> = (0..512)
        .map(|i| span(i, if i % 3 == 0 { &user } else { &server }))
        .collect();

    let mut encoder = encode::Encoder::new(&resource);
    let mut out = Vec::new();
    encoder.encode(&batch, &mut out); // warm-up: scratch buffers, scope cache and `out` grow
    let first_len = out.len();
    assert!(first_len > 512 * 100, "encoded {first_len} bytes");

    for _ in 0..3 {
        out.clear();
        let before = allocations();
        encoder.encode(&batch, &mut out);
        assert_eq!(
            allocations() - before,
            0,
            "allocations while encoding 512 spans"
        );
        assert_eq!(out.len(), first_len);
    }
}
