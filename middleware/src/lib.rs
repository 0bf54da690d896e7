//! One trace per user action across axum, tonic and reqwest — one trace id in Jaeger and in
//! Sentry, whatever header format arrives.
//!
//! `tracebridge` extracts and injects W3C `traceparent`/`tracestate` + `baggage`, Jaeger
//! `uber-trace-id` + `uberctx-*`, Sentry `sentry-trace` + `baggage` (the dynamic sampling context)
//! and B3, all from one span context. Whichever format wins on the way in (precedence
//! `traceparent` > `uber-trace-id` > `b3` > `sentry-trace`) becomes the OpenTelemetry remote parent,
//! so a request from a browser running `@sentry/browser` continues the browser's trace in the
//! spans sent to Jaeger *and* in the Sentry transaction. Spans are exported by OTLP.
//!
//! # Quick start: axum
//!
//! ```no_run
//! use axum::{routing::get, Router};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let _guard = tracebridge::init()?; // OTEL_* / SENTRY_* from the environment; flushes on drop
//!     let app = Router::new()
//!         .route("/users/{id}", get(|| async { "user" }))
//!         .layer(tracebridge::http::ServerLayer::new());
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//!     axum::serve(listener, app).with_graceful_shutdown(tracebridge::shutdown_signal()).await?;
//!     Ok(())
//! }
//! ```
//!
//! Outgoing HTTP calls: `tracebridge::http::client(reqwest::Client::new())` gives a
//! `reqwest_middleware::ClientWithMiddleware` that makes a CLIENT span and injects every
//! configured header format.
//!
//! # Quick start: tonic
//!
//! ```no_run
//! # use tonic_health::pb::health_server::{Health, HealthServer};
//! # async fn example<S: Health>(my_service: S) -> Result<(), Box<dyn std::error::Error>> {
//! let _guard = tracebridge::init()?;
//! tonic::transport::Server::builder()
//!     .layer(tracebridge::grpc::ServerLayer::new())
//!     .add_service(HealthServer::new(my_service))
//!     .serve_with_shutdown("127.0.0.1:50051".parse()?, tracebridge::shutdown_signal())
//!     .await?;
//! // a client: wrap the Channel, then use any generated client on it
//! let channel = tonic::transport::Endpoint::from_static("http://127.0.0.1:50051").connect_lazy();
//! let channel = tower::ServiceBuilder::new().layer(tracebridge::grpc::ClientLayer::new()).service(channel);
//! # let _ = tonic_health::pb::health_client::HealthClient::new(channel);
//! # Ok(()) }
//! ```
//!
//! Internal work needs nothing more: `#[tracing::instrument]` functions called from a handler
//! nest under the request's span, and log lines emitted inside a span carry `trace_id` and
//! `span_id`. A handler reads the current span's ids with [`current_trace()`] — the request's
//! SERVER span, or the `#[instrument]` span it is in:
//!
//! ```
//! async fn handler() -> String {
//!     let trace_id = tracebridge::current_trace().map(|ids| ids.trace_id.to_string());
//!     format!("trace {}\n", trace_id.as_deref().unwrap_or("off"))
//! }
//! # let _ = handler;
//! ```
//!
//! # Keeping your own subscriber
//!
//! [`init()`] installs the global `tracing` subscriber (its log format included). An application
//! with its own subscriber (JSON logs, its own layers) takes tracebridge's layer instead, with
//! [`Builder::build`]: everything else is set up as by `init()`.
//!
//! ```no_run
//! use tracing_subscriber::layer::SubscriberExt;
//! use tracing_subscriber::util::SubscriberInitExt;
//!
//! # fn main() -> Result<(), tracebridge::ConfigError> {
//! let (_guard, telemetry) = tracebridge::Builder::from_env().build()?;
//! tracing_subscriber::registry()
//!     .with(tracing_subscriber::fmt::layer()) // your own log layer(s)
//!     .with(telemetry) // spans to OTLP (and Sentry events, with SENTRY_DSN)
//!     .init();
//! # Ok(()) }
//! ```
//!
//! # Configuration
//!
//! [`init()`] reads the standard variables — `OTEL_SERVICE_NAME`, `OTEL_EXPORTER_OTLP_ENDPOINT`,
//! `OTEL_EXPORTER_OTLP_PROTOCOL`, `OTEL_PROPAGATORS`, `OTEL_TRACES_SAMPLER`, `OTEL_BSP_*`,
//! `OTEL_SDK_DISABLED`, `SENTRY_DSN`, `SENTRY_ENVIRONMENT`, `SENTRY_RELEASE`,
//! `SENTRY_TRACES_SAMPLE_RATE`, `JAEGER_UI_URL` … (see [`config`]); [`Builder`] overrides them in
//! code. A bad value fails `init()` with a [`ConfigError`] naming the variable.
//!
//! # Modules
//!
//! - [`propagation`]: the composite propagator and each header format.
//! - [`http`]: [`http::ServerLayer`] and the reqwest [`http::ClientMiddleware`].
//! - [`grpc`]: [`grpc::ServerLayer`] and [`grpc::ClientLayer`] for tonic.
//! - [`sentry`]: Sentry events tied to the OpenTelemetry trace.
//! - [`init`] / [`config`]: one init from the environment; [`Builder::build`] for your own
//!   subscriber.
//! - [`current_trace()`]: the current span's trace id and span id.

pub mod config;
pub mod global;
pub mod grpc;
pub mod http;
pub mod init;
mod pipeline;
pub mod propagation;
pub mod redact;
pub mod sentry;
pub mod shutdown;

mod body;
mod context;
pub mod export;
mod span;
#[cfg(test)]
mod test_support;
mod tracing_layer;

pub use config::ConfigError;
pub use context::{current_trace, TraceContext};
pub use init::{init, Builder, Guard};
pub use propagation::{Format, Propagator};
pub use shutdown::shutdown_signal;
pub use tracing_layer::SpanExt;
