//! tracebridge's own span export pipeline: from an ended span to OTLP bytes on the wire.
//!
//! ```text
//! record ends (recorder::RecordSpan::end) ─┐
//! SDK span ends (QueueProcessor::on_end) ──┴► queue::Queue (bounded, lock-free;
//!                  a full queue drops the span and counts it)
//!               ─► worker: one export thread — batch ─► encode::Encoder (hand-written OTLP
//!                  protobuf) into a reused buffer ─► retry: OTLP retry rules ─► transport:
//!                  http/protobuf or gRPC
//! ```
//!
//! Replaces the SDK's `BatchSpanProcessor` + `opentelemetry-otlp` exporter (see
//! docs/performance.md for why: most of the export cost was opentelemetry-otlp building
//! prost structs, and the SDK's queue dropped most spans at saturation).
//!
//! Two kinds of finished spans share the queue ([`Finished`]). Tracebridge's compact
//! [`record::SpanRecord`]s, written by [`recorder::Recorder`] without the SDK, are the layers'
//! SERVER and CLIENT spans, the `tracing` spans (tracebridge's `tracing` layer) and the `opentelemetry::global::tracer` spans
//! ([`recorder::RecordTracerProvider`]). The SDK's `SpanData`, through
//! [`processor::QueueProcessor`], are every span when Sentry's span processor is installed
//! (`SENTRY_TRACES_SAMPLE_RATE` above 0) and spans started from `Guard::tracer_provider()`.

pub(crate) mod encode;
pub(crate) mod pool;
pub(crate) mod processor;
pub(crate) mod queue;
pub(crate) mod record;
pub(crate) mod recorder;
pub(crate) mod retry;
pub(crate) mod transport;
pub(crate) mod worker;

#[cfg(test)]
mod encode_tests;
#[cfg(test)]
mod tests;

pub(crate) use worker::Pipeline;

use std::time::SystemTime;

use opentelemetry::trace::{Event, Link, SpanContext, SpanId, SpanKind, Status};
use opentelemetry::InstrumentationScope;
use opentelemetry_sdk::trace::SpanData;

use encode::{AttrValue, SpanView};
use record::SpanRecord;

/// The name of tracebridge's tracer: the instrumentation scope of the layers' spans (records
/// and SDK spans alike) and of the `tracing` spans.
pub(crate) const TRACER_NAME: &str = "tracebridge";

/// The instrumentation scope `SdkTracerProvider::tracer(TRACER_NAME)` gives its spans.
pub(crate) fn tracer_scope() -> InstrumentationScope {
    InstrumentationScope::builder(TRACER_NAME).build()
}

/// A finished span waiting for export.
#[derive(Debug)]
// The record is the common case, written on the request path: it stays inline (no allocation
// per span); the rare SDK span is the boxed one.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Finished {
    /// A span of the OpenTelemetry SDK (the OpenTelemetry API, or every span when Sentry's span
    /// processor is installed). Boxed: the queue preallocates every slot (`OTEL_BSP_MAX_QUEUE_SIZE`
    /// of them, all touched at start), and a `SpanData` is 352 bytes against a record's 272.
    Sdk(Box<SpanData>),
    /// A span of tracebridge's layers.
    Record(SpanRecord),
}

/// Delegates to the span inside.
macro_rules! each {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            Finished::Sdk($s) => $e,
            Finished::Record($s) => $e,
        }
    };
}

impl SpanView for Finished {
    fn scope(&self) -> Option<&InstrumentationScope> {
        each!(self, s => s.scope())
    }
    fn span_context(&self) -> &SpanContext {
        each!(self, s => s.span_context())
    }
    fn parent_span_id(&self) -> SpanId {
        each!(self, s => s.parent_span_id())
    }
    fn parent_is_remote(&self) -> bool {
        each!(self, s => s.parent_is_remote())
    }
    fn name(&self) -> &str {
        each!(self, s => s.name())
    }
    fn kind(&self) -> &SpanKind {
        each!(self, s => s.kind())
    }
    fn start_time(&self) -> SystemTime {
        each!(self, s => s.start_time())
    }
    fn end_time(&self) -> SystemTime {
        each!(self, s => s.end_time())
    }
    fn for_each_attribute<F: FnMut(&str, AttrValue<'_>)>(&self, f: F) {
        each!(self, s => s.for_each_attribute(f))
    }
    fn dropped_attributes_count(&self) -> u32 {
        each!(self, s => s.dropped_attributes_count())
    }
    fn events(&self) -> &[Event] {
        each!(self, s => s.events())
    }
    fn dropped_events_count(&self) -> u32 {
        each!(self, s => s.dropped_events_count())
    }
    fn links(&self) -> &[Link] {
        each!(self, s => s.links())
    }
    fn dropped_links_count(&self) -> u32 {
        each!(self, s => s.dropped_links_count())
    }
    fn status(&self) -> &Status {
        each!(self, s => s.status())
    }
}
