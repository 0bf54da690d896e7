//! [`SpanExt`]: a `tracing` span's OpenTelemetry side — its context, a parent from elsewhere,
//! attributes, status and links.

use opentelemetry::trace::{Link, SpanContext, Status};
use opentelemetry::{Context, KeyValue};
use tracing_subscriber::registry::{LookupSpan, SpanData};
use tracing_subscriber::Registry;

use super::{prevent_reentrant_call, SpanState};

/// What tracing-opentelemetry's `OpenTelemetrySpanExt` does, for the spans tracebridge's layer
/// records: read a `tracing` span's OpenTelemetry context, give it a parent from elsewhere (a
/// message's headers), add attributes, a status or links after it was created.
///
/// With `SENTRY_TRACES_SAMPLE_RATE` above 0 tracebridge records `tracing` spans through
/// tracing-opentelemetry (Sentry's span processor needs SDK spans), and these methods use
/// `OpenTelemetrySpanExt`; so they work in both cases. They need a subscriber built on
/// `tracing_subscriber::Registry` (what `init` and `Builder::build` expect).
///
/// ```no_run
/// use tracebridge::SpanExt as _;
/// # fn headers_context() -> opentelemetry::Context { opentelemetry::Context::new() }
/// let span = tracing::info_span!("consume");
/// // A job from a queue: its trace continues the producer's.
/// span.set_parent(headers_context());
/// span.set_attribute("messaging.system", "kafka");
/// let _entered = span.enter();
/// ```
pub trait SpanExt {
    /// The span's context (it starts the span when it has not started): its ids are
    /// `context().span().span_context()`. An empty context when no layer records the span.
    fn context(&self) -> Context;

    /// Makes `parent`'s span the span's parent. Only before the span starts (it starts when it
    /// is first entered, gets a child or is asked for its context); returns whether the parent
    /// was set.
    fn set_parent(&self, parent: Context) -> bool;

    /// Adds an attribute.
    fn set_attribute(
        &self,
        key: impl Into<opentelemetry::Key>,
        value: impl Into<opentelemetry::Value>,
    );

    /// Sets the span's status (an error, or OK).
    fn set_status(&self, status: Status);

    /// Links the span to another span (a batch job to the requests it serves).
    fn add_link(&self, span_context: SpanContext);
}

/// Runs `f` on the span's state when tracebridge's layer records the span; `None` otherwise.
fn with_state<T>(span: &tracing::Span, f: impl FnOnce(&mut SpanState) -> T) -> Option<T> {
    span.with_subscriber(|(id, dispatch)| {
        let registry = dispatch.downcast_ref::<Registry>()?;
        let data = registry.span_data(id)?;
        let mut ext = data.extensions_mut();
        let state = ext.get_mut::<SpanState>()?;
        Some(prevent_reentrant_call(|| f(state)))
    })
    .flatten()
}

impl SpanExt for tracing::Span {
    fn context(&self) -> Context {
        with_state(self, |state| state.started().clone())
            .unwrap_or_else(|| tracing_opentelemetry::OpenTelemetrySpanExt::context(self))
    }

    fn set_parent(&self, parent: Context) -> bool {
        let mut parent = Some(parent);
        with_state(self, |state| state.set_parent(parent.take().expect("once"))).unwrap_or_else(
            || {
                parent.take().is_some_and(|parent| {
                    tracing_opentelemetry::OpenTelemetrySpanExt::set_parent(self, parent).is_ok()
                })
            },
        )
    }

    fn set_attribute(
        &self,
        key: impl Into<opentelemetry::Key>,
        value: impl Into<opentelemetry::Value>,
    ) {
        let mut kv = Some(KeyValue::new(key, value));
        let ours = with_state(self, |state| state.set_attribute(kv.take().expect("once")));
        if let (None, Some(kv)) = (ours, kv) {
            tracing_opentelemetry::OpenTelemetrySpanExt::set_attribute(self, kv.key, kv.value);
        }
    }

    fn set_status(&self, status: Status) {
        let mut status = Some(status);
        let ours = with_state(self, |state| state.set_status(status.take().expect("once")));
        if let (None, Some(status)) = (ours, status) {
            tracing_opentelemetry::OpenTelemetrySpanExt::set_status(self, status);
        }
    }

    fn add_link(&self, span_context: SpanContext) {
        let mut sc = Some(span_context);
        let ours = with_state(self, |state| {
            state.add_link(Link::with_context(sc.take().expect("once")))
        });
        if let (None, Some(sc)) = (ours, sc) {
            tracing_opentelemetry::OpenTelemetrySpanExt::add_link(self, sc);
        }
    }
}
