//! Test support for tracebridge: real receivers on loopback instead of Jaeger and Sentry.
//!
//! - [`OtlpReceiver`]: an OTLP/gRPC + OTLP/HTTP trace collector that decodes the wire protocol
//!   into [`SpanRecord`]s kept in memory (what Jaeger would ingest).
//! - [`SentryReceiver`]: a Sentry ingestion endpoint (envelopes and legacy store events) that
//!   keeps errors *and* transactions, with their `trace` headers, for trace-id assertions.
//! - [`waterfall`]: the terminal and HTML waterfall views the `mesh` demo shows.
//! - [`trace`]: trace trees ([`trace::Trace`]) with assertions that dump the tree on failure.
//!
//! Every server binds `127.0.0.1:0` (a free port) unless told otherwise, and stops when dropped.

#![warn(missing_docs)]

pub mod otlp;
pub mod record;
pub mod sentry;
mod store;
pub mod trace;
pub mod waterfall;

pub use otlp::OtlpReceiver;
pub use record::{AttrValue, EventRecord, LinkRecord, SpanKind, SpanRecord, Status};
pub use sentry::SentryReceiver;
