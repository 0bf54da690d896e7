//! The composite propagator: W3C Trace Context, W3C Baggage, Jaeger, B3 (single and multi
//! header) and Sentry, extracted with one precedence and injected from one span context.
//!
//! SKELETON: the interface the layers build against. The implementation lands with the
//! propagation work (issue 2).

use http::HeaderMap;
use opentelemetry::Context;

/// One header format, as named in `OTEL_PROPAGATORS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// `tracecontext`: `traceparent` + `tracestate`.
    TraceContext,
    /// `baggage`: W3C `baggage`.
    Baggage,
    /// `jaeger`: `uber-trace-id` + `uberctx-*`.
    Jaeger,
    /// `b3`: the single `b3` header.
    B3,
    /// `b3multi`: `X-B3-*` headers.
    B3Multi,
    /// `sentry`: `sentry-trace` + the `sentry-*` entries of `baggage`.
    Sentry,
}

/// What a service that starts a trace writes as its own Sentry dynamic sampling context.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DscConfig {
    /// `sentry-public_key`: the public key of the DSN.
    pub public_key: Option<String>,
    /// `sentry-environment`.
    pub environment: Option<String>,
    /// `sentry-release`.
    pub release: Option<String>,
    /// `sentry-sample_rate`.
    pub sample_rate: Option<f64>,
}

/// The composite propagator. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Propagator {}

impl Propagator {
    /// Parses `OTEL_PROPAGATORS` syntax (`tracecontext,baggage,jaeger`); `none` disables all.
    pub fn from_names(_names: &str) -> Result<Self, crate::ConfigError> {
        Ok(Propagator {})
    }

    /// The same propagator, writing `dsc` when this service starts a trace.
    pub fn with_dsc(self, _dsc: DscConfig) -> Self {
        self
    }

    /// Extracts the remote context (span context, baggage, Sentry DSC) from request headers.
    /// Never fails: anything malformed is ignored and an empty context is returned.
    pub fn extract(&self, _headers: &HeaderMap) -> Context {
        Context::new()
    }

    /// Injects every configured format from `cx`'s span context, one merged `baggage` header.
    pub fn inject(&self, _cx: &Context, _headers: &mut HeaderMap) {}
}
