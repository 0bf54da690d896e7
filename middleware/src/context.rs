//! The current span's ids, for handlers and application code: [`current_trace`].
//!
//! While tracebridge's server layers poll a handler they make the request's OpenTelemetry
//! context current, and tracebridge's `tracing` layer makes an entered `tracing` span's
//! context current while it is entered (context activation, as tracing-opentelemetry's). So the
//! innermost span is always the current OpenTelemetry context's — which is also right when the
//! application runs a `tracing` span *around* the server layer (tower-http's `TraceLayer`
//! outside `ServerLayer`, an instrumented connection task): `tracing::Span::current()` is that
//! outer span there, not the request's.

use std::fmt;

use crate::SpanExt as _;
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId};

/// A span's trace id and span id, with its trace flags (sampled or not).
///
/// `Display` writes it as a W3C `traceparent` value,
/// `00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01`; the ids display as lower-case
/// hex (`trace_id.to_string()`), as Jaeger and Sentry show them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct TraceContext {
    /// The trace id: the same in every service of the trace, in Jaeger and in Sentry.
    pub trace_id: TraceId,
    /// The span's id.
    pub span_id: SpanId,
    /// The span's W3C trace flags (sampled `0x01`, random `0x02`).
    pub trace_flags: TraceFlags,
}

impl TraceContext {
    /// Whether the span is sampled (exported).
    pub fn is_sampled(&self) -> bool {
        self.trace_flags.is_sampled()
    }

    fn from_span_context(sc: &SpanContext) -> Option<TraceContext> {
        sc.is_valid().then(|| TraceContext {
            trace_id: sc.trace_id(),
            span_id: sc.span_id(),
            trace_flags: sc.trace_flags(),
        })
    }
}

impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            self.trace_id,
            self.span_id,
            self.trace_flags.to_u8()
        )
    }
}

/// The ids of the current span: inside a handler behind [`crate::http::ServerLayer`] or
/// [`crate::grpc::ServerLayer`], the request's SERVER span; inside an entered `tracing` span
/// (an `#[instrument]` function) that tracebridge's layer exports, that span. `None` outside
/// any span, when the current span is invalid, and with `OTEL_SDK_DISABLED=true`.
///
/// These are the ids the span is exported with, the ids in `traceresponse` (for the SERVER
/// span) and in Sentry events' trace context. The innermost span wins (see the module docs).
/// An entered `tracing` span whose context is not current — made by an OpenTelemetry layer
/// with context activation off, which tracebridge's never is — is read through
/// [`crate::SpanExt::context`].
///
/// ```
/// // A handler puts the trace id in its answer, so a caller can find the trace.
/// async fn user() -> String {
///     match tracebridge::current_trace() {
///         Some(ids) => format!("user 42, trace {}\n", ids.trace_id),
///         None => "user 42\n".to_owned(), // tracing is off
///     }
/// }
/// # let _ = user;
///
/// // What the server layer does around the handler: make the request's span current.
/// use opentelemetry::trace::{TraceContextExt, Tracer, TracerProvider as _};
/// let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
/// let request = opentelemetry::Context::current_with_span(provider.tracer("doc").start("GET /users/{id}"));
/// assert_eq!(tracebridge::current_trace(), None);
/// {
///     let _current = request.clone().attach();
///     let ids = tracebridge::current_trace().expect("the request's span is current");
///     assert_eq!(ids.trace_id, request.span().span_context().trace_id());
///     assert_eq!(ids.span_id, request.span().span_context().span_id());
///     assert!(ids.is_sampled());
/// }
/// assert_eq!(tracebridge::current_trace(), None);
/// ```
pub fn current_trace() -> Option<TraceContext> {
    let cx = opentelemetry::Context::current();
    TraceContext::from_span_context(cx.span().span_context()).or_else(|| {
        // `Span::current()` is cheap when no span is entered (no subscriber lookup).
        let span = tracing::Span::current();
        if span.is_none() {
            return None;
        }
        let cx = span.context();
        TraceContext::from_span_context(cx.span().span_context())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{Tracer, TracerProvider as _};
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_subscriber::layer::SubscriberExt;

    fn ids_of(cx: &opentelemetry::Context) -> TraceContext {
        TraceContext::from_span_context(cx.span().span_context()).expect("valid span")
    }

    /// A subscriber with an OpenTelemetry layer, as tracebridge's (`activation = true`).
    fn subscriber(
        provider: &SdkTracerProvider,
        activation: bool,
    ) -> impl tracing::Subscriber + Send + Sync {
        tracing_subscriber::registry().with(
            tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("test"))
                .with_context_activation(activation),
        )
    }

    #[test]
    fn none_outside_any_span() {
        assert_eq!(current_trace(), None);
        let provider = SdkTracerProvider::builder().build();
        tracing::subscriber::with_default(subscriber(&provider, true), || {
            assert_eq!(current_trace(), None);
        });
    }

    #[test]
    fn the_current_context_is_the_request_span() {
        let provider = SdkTracerProvider::builder().build();
        let request =
            opentelemetry::Context::current_with_span(provider.tracer("test").start("GET /x"));
        let _current = request.clone().attach();
        assert_eq!(current_trace(), Some(ids_of(&request)));
    }

    #[test]
    fn an_entered_tracing_span_is_the_child_of_the_request_span() {
        let provider = SdkTracerProvider::builder().build();
        tracing::subscriber::with_default(subscriber(&provider, true), || {
            let request =
                opentelemetry::Context::current_with_span(provider.tracer("test").start("GET /x"));
            let _current = request.clone().attach();
            let span = tracing::info_span!("load_user");
            let inner = span.in_scope(current_trace).expect("inside the span");
            let exported = ids_of(&span.context());
            assert_eq!(inner, exported);
            assert_eq!(inner.trace_id, ids_of(&request).trace_id);
            assert_ne!(inner.span_id, ids_of(&request).span_id);
            // Back in the handler: the request's span again.
            assert_eq!(current_trace(), Some(ids_of(&request)));
        });
    }

    #[test]
    fn a_tracing_span_around_the_server_layer_does_not_hide_the_request_span() {
        // tower-http's TraceLayer outside ServerLayer: its `tracing` span is entered, then the
        // server layer makes the request's context current inside it.
        let provider = SdkTracerProvider::builder().build();
        tracing::subscriber::with_default(subscriber(&provider, true), || {
            let outer = tracing::info_span!("request");
            let _entered = outer.enter();
            let request =
                opentelemetry::Context::current_with_span(provider.tracer("test").start("GET /x"));
            let _current = request.clone().attach();
            assert_eq!(current_trace(), Some(ids_of(&request)));
            assert_ne!(current_trace(), Some(ids_of(&outer.context())));
        });
    }

    #[test]
    fn an_entered_span_without_context_activation_is_read_from_the_span() {
        let provider = SdkTracerProvider::builder().build();
        tracing::subscriber::with_default(subscriber(&provider, false), || {
            let span = tracing::info_span!("job");
            let inner = span.in_scope(current_trace);
            assert_eq!(inner, Some(ids_of(&span.context())));
        });
    }

    #[test]
    fn display_is_a_traceparent() {
        let ids = TraceContext {
            trace_id: TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
            span_id: SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            trace_flags: TraceFlags::SAMPLED,
        };
        assert_eq!(
            ids.to_string(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
        assert!(ids.is_sampled());
        let unsampled = TraceContext {
            trace_flags: TraceFlags::default(),
            ..ids
        };
        assert!(unsampled.to_string().ends_with("-00"));
        assert!(!unsampled.is_sampled());
    }
}
