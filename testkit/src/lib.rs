//! Test support for tracebridge: real receivers on loopback instead of Jaeger and Sentry.
//!
//! - [`OtlpReceiver`]: an OTLP/gRPC + OTLP/HTTP trace collector that decodes the wire protocol
//!   into [`SpanRecord`]s kept in memory (what Jaeger would ingest).
//! - [`SentryReceiver`]: a Sentry ingestion endpoint (envelopes and legacy store events) that
//!   keeps errors *and* transactions, with their `trace` headers, for trace-id assertions.
//! - [`jaeger`]: a real Jaeger v2 process on free ports and its query API, compared span by
//!   span with what the [`OtlpReceiver`] (also a tee: [`OtlpReceiver::start_forwarding`]) saw.
//! - [`faults`]: misbehaving backends — a closed port, a black hole, a slow proxy.
//! - [`waterfall`]: the terminal and HTML waterfall views the `mesh` demo shows.
//! - [`trace`]: trace trees ([`trace::Trace`]) with assertions that dump the tree on failure.
//!
//! Every server binds `127.0.0.1:0` (a free port) unless told otherwise, and stops when dropped.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use tracebridge_testkit::{trace::Trace, waterfall, OtlpReceiver, SentryReceiver, SpanKind};
//!
//! let otlp = OtlpReceiver::start().await?;
//! let sentry = SentryReceiver::start().await?;
//! // Start the service under test with
//! //   OTEL_EXPORTER_OTLP_ENDPOINT = otlp.grpc_endpoint()   (or otlp.http_endpoint() with
//! //   OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf)
//! //   SENTRY_DSN = sentry.dsn("public")
//! // then send it a request carrying `traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-...`.
//! let spans = otlp
//!     .wait_for_trace("4bf92f3577b34da6a3ce929d0e0e4736", 3, Duration::from_secs(10))
//!     .await?;
//! let trace = Trace::new(spans);
//! trace.assert_connected();
//! let server = trace.expect_exact("service-a", "GET /trace");
//! assert_eq!(server.kind, SpanKind::Server);
//! trace.assert_child_of(trace.expect("service-a", "trace1"), server);
//! println!("{}", waterfall::render(trace.spans()));
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod faults;
pub mod jaeger;
pub mod otlp;
pub mod record;
pub mod sentry;
mod store;
pub mod trace;
pub mod waterfall;

pub use otlp::{Forward, OtlpReceiver};
pub use record::{AttrValue, EventRecord, LinkRecord, SpanKind, SpanRecord, Status};
pub use sentry::SentryReceiver;
