//! tracebridge's own span export pipeline: from an ended span to OTLP bytes on the wire.
//!
//! ```text
//! SDK span ends ─► processor::QueueProcessor::on_end ─► queue::Queue (bounded, lock-free;
//!                  a full queue drops the span and counts it)
//!               ─► worker: one export thread — batch ─► encode::Encoder (hand-written OTLP
//!                  protobuf) into a reused buffer ─► retry: OTLP retry rules ─► transport:
//!                  http/protobuf or gRPC
//! ```
//!
//! Replaces the SDK's `BatchSpanProcessor` + `opentelemetry-otlp` exporter (see
//! docs/performance.md for why: most of the export cost was opentelemetry-otlp building
//! prost structs, and the SDK's queue dropped most spans at saturation). Span records are
//! still the SDK's `SpanData`; the queue and the export thread are generic over the record
//! type ([`worker::BatchEncoder`]) so that compact records can replace it later.

pub(crate) mod encode;
pub(crate) mod processor;
pub(crate) mod queue;
pub(crate) mod retry;
pub(crate) mod transport;
pub(crate) mod worker;

#[cfg(test)]
mod encode_tests;
#[cfg(test)]
mod tests;

pub(crate) use worker::Pipeline;
