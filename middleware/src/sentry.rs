//! Sentry glue: every event carries the OpenTelemetry trace it happened in, links to Jaeger UI,
//! and never carries credentials.
//!
//! [`crate::init`] installs [`before_send`] as Sentry's `before_send` hook, so this applies to
//! every event — `sentry::capture_*`, `tracing::error!` through the sentry-tracing layer,
//! panics — not only to [`capture_error`]. The hook runs synchronously on the thread that
//! captures the event, so [`opentelemetry::Context::current`] is the caller's context: with
//! the `tracing` layer's context activation (tracebridge's, or tracing-opentelemetry's when
//! Sentry transactions are on), that is the OpenTelemetry span of the entered `tracing` span.
//!
//! The parent span id is not set: the OpenTelemetry API does not expose the parent of the
//! current span, and Sentry only needs `trace_id` + `span_id` to attach the event to the trace.

use std::sync::Arc;

use http::HeaderName;
use opentelemetry::trace::TraceContextExt;
use sentry::protocol::{Context as SentryContext, Event, TraceContext};

/// Tag holding the Jaeger UI link of the event's trace (when `JAEGER_UI_URL` is set).
pub const JAEGER_TRACE_URL_TAG: &str = "jaeger_trace_url";

/// Sets `contexts.trace.trace_id` / `span_id` from the span of `cx`. Leaves the event
/// untouched when `cx` has no valid span context (no span entered, or the SDK is disabled).
pub fn apply_trace_context(event: &mut Event<'static>, cx: &opentelemetry::Context) {
    let span = cx.span();
    let sc = span.span_context();
    if !sc.is_valid() {
        return;
    }
    let trace_id = sentry::protocol::TraceId::from(sc.trace_id().to_bytes());
    let span_id = sentry::protocol::SpanId::from(sc.span_id().to_bytes());
    match event.contexts.get_mut("trace") {
        Some(SentryContext::Trace(tc)) => {
            // The scope filled in its own propagation context (a random trace id) or a Sentry
            // span/transaction; the OpenTelemetry span is the truth. The parent id belongs to
            // whatever span the scope had, so it is kept only when that span is this one.
            if tc.trace_id != trace_id || tc.span_id != span_id {
                tc.parent_span_id = None;
            }
            tc.trace_id = trace_id;
            tc.span_id = span_id;
        }
        _ => {
            event.contexts.insert(
                "trace".into(),
                TraceContext {
                    trace_id,
                    span_id,
                    ..Default::default()
                }
                .into(),
            );
        }
    }
}

/// Adds the [`JAEGER_TRACE_URL_TAG`] tag `{jaeger_ui_url}/trace/{trace_id}`, using the trace id
/// in `contexts.trace` (so call it after [`apply_trace_context`]).
pub fn add_jaeger_link(event: &mut Event<'static>, jaeger_ui_url: &str) {
    let Some(SentryContext::Trace(tc)) = event.contexts.get("trace") else {
        return;
    };
    let url = format!(
        "{}/trace/{}",
        jaeger_ui_url.trim_end_matches('/'),
        tc.trace_id
    );
    event.tags.insert(JAEGER_TRACE_URL_TAG.into(), url);
}

/// Removes credentials from `event.request`: the always-sensitive headers (authorization,
/// cookie, set-cookie, proxy-authorization), the `extra` ones, the parsed cookies, and
/// user:password in the URL.
pub fn scrub_request(event: &mut Event<'static>, extra: &[HeaderName]) {
    let Some(request) = event.request.as_mut() else {
        return;
    };
    request
        .headers
        .retain(|name, _| !crate::global::is_sensitive_header(name, extra));
    request.cookies = None;
    if let Some(url) = request.url.as_mut() {
        if url.password().is_some() || !url.username().is_empty() {
            let _ = url.set_password(None);
            let _ = url.set_username("");
        }
    }
}

/// The `before_send` hook [`crate::init`] installs: trace context from the current
/// OpenTelemetry context, the Jaeger link, and the scrubbing. Never drops an event.
pub fn before_send(
    jaeger_ui_url: Option<Arc<str>>,
    sensitive_headers: Arc<[HeaderName]>,
) -> impl Fn(Event<'static>) -> Option<Event<'static>> + Send + Sync + 'static {
    move |mut event| {
        apply_trace_context(&mut event, &opentelemetry::Context::current());
        if let Some(url) = jaeger_ui_url.as_deref() {
            add_jaeger_link(&mut event, url);
        }
        scrub_request(&mut event, &sensitive_headers);
        Some(event)
    }
}

/// Captures `error` (with its source chain) in the current hub, tagged with the current
/// OpenTelemetry trace and span ids even when Sentry was initialised without [`before_send`].
/// Returns the event id (nil when Sentry is off).
pub fn capture_error(error: &dyn std::error::Error) -> sentry::types::Uuid {
    let mut event = sentry::event_from_error(error);
    apply_trace_context(&mut event, &opentelemetry::Context::current());
    let settings = crate::global::settings();
    if let Some(url) = settings.jaeger_ui_url.as_deref() {
        add_jaeger_link(&mut event, url);
    }
    sentry::Hub::current().capture_event(event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

    fn otel_cx(trace: u128, span: u64) -> opentelemetry::Context {
        opentelemetry::Context::new().with_remote_span_context(SpanContext::new(
            TraceId::from(trace),
            SpanId::from(span),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ))
    }

    #[test]
    fn trace_context_replaces_the_scope_one() {
        let mut event = Event::default();
        event.contexts.insert(
            "trace".into(),
            TraceContext {
                trace_id: "00000000000000000000000000000001".parse().unwrap(),
                span_id: "0000000000000001".parse().unwrap(),
                parent_span_id: Some("0000000000000002".parse().unwrap()),
                op: Some("http.server".into()),
                ..Default::default()
            }
            .into(),
        );
        apply_trace_context(
            &mut event,
            &otel_cx(0x4bf92f3577b34da6a3ce929d0e0e4736, 0x00f067aa0ba902b7),
        );
        let Some(SentryContext::Trace(tc)) = event.contexts.get("trace") else {
            panic!("no trace context")
        };
        assert_eq!(tc.trace_id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(tc.span_id.to_string(), "00f067aa0ba902b7");
        assert_eq!(tc.parent_span_id, None);
        assert_eq!(tc.op.as_deref(), Some("http.server"));
    }

    #[test]
    fn parent_is_kept_only_for_the_same_span() {
        let cx = otel_cx(0x42, 0x7);
        let scope_tc = |span: &str| -> Event<'static> {
            let mut event = Event::default();
            event.contexts.insert(
                "trace".into(),
                TraceContext {
                    trace_id: "00000000000000000000000000000042".parse().unwrap(),
                    span_id: span.parse().unwrap(),
                    parent_span_id: Some("0000000000000009".parse().unwrap()),
                    ..Default::default()
                }
                .into(),
            );
            event
        };
        let parent = |event: &Event<'static>| match event.contexts.get("trace") {
            Some(SentryContext::Trace(tc)) => tc.parent_span_id.map(|p| p.to_string()),
            _ => panic!("no trace context"),
        };
        let mut same = scope_tc("0000000000000007");
        apply_trace_context(&mut same, &cx);
        assert_eq!(parent(&same).as_deref(), Some("0000000000000009"));
        // The scope's transaction is an ancestor of the current span: its parent is not ours.
        let mut other = scope_tc("0000000000000003");
        apply_trace_context(&mut other, &cx);
        assert_eq!(parent(&other), None);
    }

    #[test]
    fn no_span_leaves_the_event_alone() {
        let mut event = Event::default();
        apply_trace_context(&mut event, &opentelemetry::Context::new());
        assert!(!event.contexts.contains_key("trace"));
        add_jaeger_link(&mut event, "http://jaeger:16686");
        assert!(event.tags.is_empty());
    }

    #[test]
    fn jaeger_link_uses_the_trace_id() {
        let mut event = Event::default();
        apply_trace_context(&mut event, &otel_cx(0xabc, 0x1));
        add_jaeger_link(&mut event, "http://jaeger:16686/");
        assert_eq!(
            event.tags.get(JAEGER_TRACE_URL_TAG).map(String::as_str),
            Some("http://jaeger:16686/trace/00000000000000000000000000000abc")
        );
    }

    #[test]
    fn scrubs_credentials() {
        let mut event = Event {
            request: Some(sentry::protocol::Request {
                url: Some("https://user:pw@example.com/x?a=1".parse().unwrap()),
                cookies: Some("session=1".into()),
                headers: [
                    ("Authorization", "Bearer s3cret"),
                    ("cookie", "session=1"),
                    ("Set-Cookie", "a=b"),
                    ("proxy-authorization", "Basic x"),
                    ("X-Api-Key", "k"),
                    ("x-request-id", "r1"),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
                ..Default::default()
            }),
            ..Default::default()
        };
        scrub_request(&mut event, &[HeaderName::from_static("x-api-key")]);
        let req = event.request.unwrap();
        assert_eq!(
            req.headers.into_iter().collect::<Vec<_>>(),
            vec![("x-request-id".to_owned(), "r1".to_owned())]
        );
        assert_eq!(req.cookies, None);
        assert_eq!(req.url.unwrap().as_str(), "https://example.com/x?a=1");
    }

    #[test]
    fn before_send_does_all_three() {
        let hook = before_send(Some(Arc::from("http://j:16686")), Arc::from(Vec::new()));
        let _g = otel_cx(0x42, 0x7).attach();
        let event = Event {
            request: Some(sentry::protocol::Request {
                headers: [("authorization".to_owned(), "x".to_owned())]
                    .into_iter()
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let event = hook(event).expect("never dropped");
        let Some(SentryContext::Trace(tc)) = event.contexts.get("trace") else {
            panic!("no trace context")
        };
        assert_eq!(tc.trace_id.to_string(), "00000000000000000000000000000042");
        assert_eq!(tc.span_id.to_string(), "0000000000000007");
        assert_eq!(
            event.tags.get(JAEGER_TRACE_URL_TAG).map(String::as_str),
            Some("http://j:16686/trace/00000000000000000000000000000042")
        );
        assert!(event.request.unwrap().headers.is_empty());
    }
}
