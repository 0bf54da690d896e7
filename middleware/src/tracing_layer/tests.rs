//! [`RecordLayer`] against what it replaces: tracing-opentelemetry 0.33 (default configuration)
//! on tracebridge's recorder, which `pipeline::recorder`'s tests prove equal to the SDK. The
//! same `tracing` programs run under both; the exported spans must be equal field by field
//! (random ids replaced by their order, clock readings cleared) — and are checked for what
//! they are, so a mistake both share cannot pass.

use std::sync::Arc;

use opentelemetry::trace::{
    SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId, Tracer as _,
};
use opentelemetry::{Context, KeyValue, Value};
use opentelemetry_sdk::trace::{Sampler, SpanData, SpanLimits};
use tracing_subscriber::layer::SubscriberExt as _;

use super::RecordLayer;
use crate::pipeline::recorder::tests::{both_with, queued, remote_parent, spans_of, work};
use crate::pipeline::recorder::RecordTracer;
use crate::SpanExt as _;

/// `program` under tracing-opentelemetry on a recorder and under [`RecordLayer`] on another
/// (same sampler and limits); returns both exports and both results of `program`.
fn under_both<T: PartialEq + std::fmt::Debug>(
    sampler: Sampler,
    limits: SpanLimits,
    program: impl Fn(&RecordTracer) -> T,
) -> (Vec<SpanData>, Vec<SpanData>) {
    let theirs = both_with(sampler.clone(), limits);
    let queue = theirs.queue.clone();
    let recorder = Arc::new(theirs.recorder);
    let tracer = RecordTracer::new(recorder.clone());
    let mut out_theirs = None;
    let via_otel = spans_of(
        tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(RecordTracer::new(recorder))),
        || out_theirs = Some(program(&tracer)),
        || queued(&queue),
    );

    let ours = both_with(sampler, limits);
    let queue = ours.queue.clone();
    let recorder = Arc::new(ours.recorder);
    let tracer = RecordTracer::new(recorder.clone());
    let mut out_ours = None;
    let via_layer = spans_of(
        tracing_subscriber::registry().with(RecordLayer::new(recorder)),
        || out_ours = Some(program(&tracer)),
        || queued(&queue),
    );
    assert_eq!(out_ours, out_theirs, "the program saw the same");
    (via_layer, via_otel)
}

fn always() -> Sampler {
    Sampler::ParentBased(Box::new(Sampler::AlwaysOn))
}

#[test]
fn the_recorder_tests_program_gives_the_same_spans() {
    let (ours, theirs) = under_both(always(), SpanLimits::default(), |_| work());
    assert_eq!(ours.len(), 4);
    assert_eq!(ours, theirs);
    let names: Vec<&str> = ours.iter().map(|s| s.name.as_ref()).collect();
    assert_eq!(names, ["trace3", "pending", "a new trace", "request"]);
    assert_eq!(ours[0].parent_span_id, SpanId::from(4));
    assert_eq!(ours[3].parent_span_id, SpanId::from(0x00f067aa0ba902b7));
    assert!(ours[3].parent_span_is_remote);
    assert_eq!(ours[3].span_kind, SpanKind::Server);
    assert_eq!(ours[0].status, Status::error(""));
    // trace3's attributes, in order: where, which thread, target, the field, the timings.
    let keys: Vec<&str> = ours[0]
        .attributes
        .iter()
        .map(|kv| kv.key.as_str())
        .collect();
    let thread = std::thread::current();
    let mut want = vec![
        "code.file.path",
        "code.module.name",
        "code.line.number",
        "thread.id",
    ];
    if thread.name().is_some() {
        want.push("thread.name");
    }
    want.extend(["target", "step", "busy_ns", "idle_ns"]);
    assert_eq!(keys, want);
    assert!(ours[0].attributes.contains(&KeyValue::new("step", "work")));
    let event = &ours[0].events.events[0];
    assert_eq!(event.name, "trace3 finished");
    let event_keys: Vec<&str> = event.attributes.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(
        event_keys,
        [
            "level",
            "target",
            "step",
            "code.file.path",
            "code.module.name",
            "code.line.number"
        ]
    );
}

#[derive(Debug)]
struct Outer(Inner);
#[derive(Debug)]
struct Inner;
impl std::fmt::Display for Outer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("outer failed")
    }
}
impl std::fmt::Display for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("inner cause")
    }
}
impl std::error::Error for Outer {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}
impl std::error::Error for Inner {}

/// Everything else the layer reads: value kinds, `otel.*` fields at creation and recorded
/// later, error fields on spans and events, explicit parents, follows-from, `SpanExt` before
/// and after the start, an OpenTelemetry API span inside an entered span, several polls.
fn more_work(tracer: &RecordTracer) -> Vec<bool> {
    let mut seen = Vec::new();
    let err = Outer(Inner);
    let root = tracing::info_span!(
        "job",
        otel.name = "job 42",
        otel.kind = "consumer",
        count = 3_u64,
        ratio = 0.5_f64,
        flag = true,
        neg = -7_i64,
        who = ?("alice", 1),
        shown = %"display",
        failure = &err as &(dyn std::error::Error + 'static),
        later = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    seen.push(root.set_parent(remote_parent(TraceFlags::SAMPLED, "")));
    root.record("later", "before start");
    root.add_link(opentelemetry::trace::SpanContext::new(
        TraceId::from(7),
        SpanId::from(8),
        TraceFlags::SAMPLED,
        true,
        Default::default(),
    ));
    for poll in 0..3 {
        let _entered = root.enter();
        if poll == 0 {
            // Started now: too late for a parent, still fine for attributes.
            seen.push(root.set_parent(Context::new()));
            root.record("later", "after start");
            root.set_attribute("ext.attr", 9_i64);
            let api = tracer.start("api child");
            drop(api);
            tracing::error!(error = %err);
            tracing::warn!(
                cause = &err as &(dyn std::error::Error + 'static),
                "with a cause"
            );
        }
    }
    root.record("otel.status_code", "ok");
    let explicit = tracing::info_span!(parent: &root, "explicit child", n = 1);
    let follower = tracing::info_span!(parent: None, "follower");
    follower.follows_from(&explicit);
    follower.set_status(Status::error("set through SpanExt"));
    let ids = explicit.context().span().span_context().span_id();
    seen.push(ids != SpanId::INVALID);
    drop(explicit);
    {
        let _f = follower.enter();
        let inner = tracing::info_span!("inner", otel.status_description = "bad input");
        inner.in_scope(|| {
            seen.push(
                crate::current_trace().map(|t| t.span_id)
                    == Some(inner.context().span().span_context().span_id()),
            );
        });
        seen.push(
            crate::current_trace().map(|t| t.span_id)
                == Some(follower.context().span().span_context().span_id()),
        );
    }
    seen.push(crate::current_trace().is_none());
    drop(follower);
    // An error event in a span that never starts before it closes: the span is an error.
    let never_entered = tracing::info_span!("never entered");
    tracing::error!(parent: &never_entered, "failed before the start");
    drop(never_entered);
    // Unsampled upstream: nothing of it is exported, its child neither.
    let unsampled = tracing::info_span!("unsampled");
    seen.push(unsampled.set_parent(remote_parent(TraceFlags::default(), "")));
    unsampled.in_scope(|| tracing::info_span!("its child").in_scope(|| tracing::info!("x")));
    seen
}

#[test]
fn every_kind_of_field_parent_and_status_gives_the_same_spans() {
    let (ours, theirs) = under_both(always(), SpanLimits::default(), more_work);
    assert_eq!(ours, theirs);
    let names: Vec<&str> = ours.iter().map(|s| s.name.as_ref()).collect();
    assert_eq!(
        names,
        [
            "api child",
            "explicit child",
            "inner",
            "follower",
            "never entered",
            "job 42"
        ]
    );
    assert_eq!(ours[4].status, Status::error(""));
    assert_eq!(ours[4].events[0].name, "failed before the start");
    let job = &ours[5];
    assert_eq!(job.span_kind, SpanKind::Consumer);
    assert_eq!(job.status, Status::Ok);
    assert_eq!(job.parent_span_id, SpanId::from(0x00f067aa0ba902b7));
    assert_eq!(job.links.links[0].span_context.span_id(), SpanId::from(8));
    let attr = |span: &SpanData, key: &str| {
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.clone())
    };
    assert_eq!(attr(job, "count"), Some(Value::from("3"))); // u64: its Debug form
    assert_eq!(attr(job, "ratio"), Some(Value::F64(0.5)));
    assert_eq!(attr(job, "flag"), Some(Value::Bool(true)));
    assert_eq!(attr(job, "neg"), Some(Value::I64(-7)));
    assert_eq!(attr(job, "who"), Some(Value::from("(\"alice\", 1)")));
    assert_eq!(attr(job, "shown"), Some(Value::from("display")));
    assert_eq!(attr(job, "failure"), Some(Value::from("outer failed")));
    assert_eq!(
        attr(job, "exception.message"),
        Some(Value::from("outer failed"))
    );
    assert_eq!(attr(job, "ext.attr"), Some(Value::I64(9)));
    let later: Vec<&KeyValue> = job
        .attributes
        .iter()
        .filter(|kv| kv.key.as_str() == "later")
        .collect();
    assert_eq!(later.len(), 2);
    let events: Vec<&str> = job.events.iter().map(|e| e.name.as_ref()).collect();
    assert_eq!(events, ["exception", "with a cause"]);
    assert_eq!(ours[0].parent_span_id, SpanId::from(6)); // the API span under the entered job
    assert_eq!(ours[1].parent_span_id, SpanId::from(6));
    assert_eq!(ours[2].parent_span_id, SpanId::from(4)); // inner under the entered follower
    assert_eq!(ours[2].status, Status::error("bad input"));
    assert_eq!(ours[3].parent_span_id, SpanId::INVALID);
    assert_eq!(ours[3].status, Status::error("set through SpanExt"));
    assert_eq!(
        ours[3].links.links[0].span_context.span_id(),
        SpanId::from(2)
    );
}

#[test]
fn the_program_saw_what_it_expects() {
    // The booleans `more_work` collects, under tracebridge's layer alone.
    let b = both_with(always(), SpanLimits::default());
    let recorder = Arc::new(b.recorder);
    let tracer = RecordTracer::new(recorder.clone());
    let mut seen = Vec::new();
    let _ = spans_of(
        tracing_subscriber::registry().with(RecordLayer::new(recorder)),
        || seen = more_work(&tracer),
        || queued(&b.queue),
    );
    // set_parent before the start; not after; ids; current_trace in inner, in follower,
    // outside; set_parent on the unsampled one.
    assert_eq!(seen, [true, false, true, true, true, true, true]);
}

#[test]
fn limits_apply_as_they_did() {
    let limits = SpanLimits {
        max_attributes_per_span: 5,
        max_events_per_span: 1,
        max_links_per_span: 1,
        max_attributes_per_event: 2,
        max_attributes_per_link: 1,
    };
    let (ours, theirs) = under_both(always(), limits, more_work);
    assert_eq!(ours, theirs);
    let job = &ours[5];
    assert_eq!(job.name, "job 42");
    assert_eq!(job.attributes.len(), 5);
    assert!(job.dropped_attributes_count > 0);
    assert_eq!(job.events.len(), 1);
    assert_eq!(job.events.dropped_count, 1);
}

#[test]
fn an_unsampling_sampler_is_obeyed() {
    let (ours, theirs) = under_both(
        Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
        SpanLimits::default(),
        more_work,
    );
    assert_eq!(ours, theirs);
    // Only the job, continued from a sampled remote parent, and what it parents are kept.
    let names: Vec<&str> = ours.iter().map(|s| s.name.as_ref()).collect();
    assert_eq!(names, ["api child", "explicit child", "job 42"]);
    assert!(theirs.iter().all(|s| s.name != "never entered"));
}
