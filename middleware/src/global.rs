//! Process-wide settings installed by [`crate::init`], read by every layer at request time.
//!
//! Layers read this on each request (one atomic load) instead of capturing it when they are
//! built, so a layer constructed before `init()` still sees the installed configuration.

use std::sync::{Arc, OnceLock};

use http::HeaderName;

use crate::propagation::Propagator;

/// What the layers need to know about the installed telemetry.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `OTEL_SDK_DISABLED=true`: every layer is a pass-through.
    pub disabled: bool,
    /// The composite propagator built from `OTEL_PROPAGATORS`.
    pub propagator: Propagator,
    /// Sentry is initialised (a DSN was set): layers bind a hub per request.
    pub sentry_enabled: bool,
    /// Base URL of Jaeger UI (`JAEGER_UI_URL`), used to link Sentry events to the trace.
    pub jaeger_ui_url: Option<Arc<str>>,
    /// Headers never recorded anywhere (on top of authorization, cookie, set-cookie,
    /// proxy-authorization).
    pub sensitive_headers: Arc<[HeaderName]>,
    /// The tracer the layers start their spans with; `None` uses OpenTelemetry's global
    /// tracer provider (`opentelemetry::global::set_tracer_provider`) at each span.
    pub tracer: Option<opentelemetry_sdk::trace::SdkTracer>,
    /// When set, the layers record their spans with tracebridge's own recorder instead of
    /// `tracer` (see [`SpanRecorder`]).
    pub recorder: Option<SpanRecorder>,
}

/// tracebridge's own span recorder, installed by [`crate::init`] unless Sentry transactions are
/// on (`SENTRY_TRACES_SAMPLE_RATE` above 0, whose span processor needs SDK spans): the layers'
/// SERVER and CLIENT spans, the `tracing` spans and the OpenTelemetry API's spans are then
/// compact records sent straight to the export queue, not OpenTelemetry SDK spans. Opaque:
/// only `init` makes one.
#[derive(Clone, Debug)]
pub struct SpanRecorder(pub(crate) Arc<crate::pipeline::recorder::Recorder>);

impl Default for Settings {
    fn default() -> Self {
        Settings {
            disabled: false,
            propagator: Propagator::default(),
            sentry_enabled: false,
            jaeger_ui_url: None,
            sensitive_headers: Arc::from(Vec::new()),
            tracer: None,
            recorder: None,
        }
    }
}

/// Headers that are never recorded (spans, logs, Sentry events), whatever the configuration.
pub const ALWAYS_SENSITIVE_HEADERS: [&str; 4] = [
    "authorization",
    "cookie",
    "set-cookie",
    "proxy-authorization",
];

impl Settings {
    /// Whether a header must never be recorded: one of [`ALWAYS_SENSITIVE_HEADERS`] or one
    /// listed in `TRACEBRIDGE_SENSITIVE_HEADERS`. Case-insensitive.
    pub fn is_sensitive_header(&self, name: &str) -> bool {
        is_sensitive_header(name, &self.sensitive_headers)
    }
}

/// [`Settings::is_sensitive_header`] for an explicit extra list.
pub fn is_sensitive_header(name: &str, extra: &[HeaderName]) -> bool {
    ALWAYS_SENSITIVE_HEADERS
        .iter()
        .any(|h| h.eq_ignore_ascii_case(name))
        || extra.iter().any(|h| h.as_str().eq_ignore_ascii_case(name))
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();
static DEFAULT: OnceLock<Settings> = OnceLock::new();

/// The installed settings, or the defaults when `init()` has not run.
pub fn settings() -> &'static Settings {
    SETTINGS
        .get()
        .unwrap_or_else(|| DEFAULT.get_or_init(Settings::default))
}

/// Installs the settings; the first call wins (like a global subscriber). Returns false when
/// settings were already installed.
pub fn install(settings: Settings) -> bool {
    SETTINGS.set(settings).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitive_headers_are_case_insensitive_and_include_the_extra_list() {
        let extra = [HeaderName::from_static("x-api-key")];
        for h in [
            "Authorization",
            "COOKIE",
            "set-cookie",
            "Proxy-Authorization",
            "X-Api-Key",
        ] {
            assert!(is_sensitive_header(h, &extra), "{h}");
        }
        assert!(!is_sensitive_header("x-request-id", &extra));
        assert!(!is_sensitive_header("x-api-key", &[]));
    }
}
