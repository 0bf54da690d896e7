//! The layers' spans: naming, remote parents, status mapping, and [`LayerSpan`], the
//! OpenTelemetry span a layer owns for one request or call.
//!
//! The layers create their SERVER and CLIENT spans directly with the OpenTelemetry tracer —
//! not as `tracing` spans turned into OpenTelemetry spans by a `tracing` layer. The
//! `tracing` route costs a registry slot, every subscriber layer's `on_new_span` (the fmt layer
//! formats every field into a string nobody prints), and a context switch per enter/exit;
//! measured in process it was ~35 k of the ~62 k instructions the server layer added per
//! request (docs/performance.md). Nothing is lost for the application: while the layer polls
//! the inner service it attaches the span's [`Context`], so `tracing` spans created inside a
//! handler (`#[instrument]`) become its children through the `tracing` layer's context
//! activation, log lines carry its trace and span id, and outgoing calls continue it.
//!
//! The tracer is the one [`crate::init`] installed, or else OpenTelemetry's global tracer
//! provider (`opentelemetry::global::set_tracer_provider`), so the layers also work under an
//! OpenTelemetry setup of the application's own.
//!
//! A span ends when its [`LayerSpan`] is dropped: the layers keep it in their response future
//! and then in the response body ([`crate::body::TracedBody`]), so the span covers a streamed
//! body and ends on its own when the request or the body is dropped.

use std::borrow::Cow;
use std::sync::Arc;

use http::{HeaderMap, Method, StatusCode};
use opentelemetry::trace::{Link, SpanBuilder, SpanKind, Status, TraceContextExt, Tracer as _};
use opentelemetry::{Context, KeyValue};

use crate::pipeline::record::Attrs;

/// An attribute list for a layer's span, with room for `items` attributes and `text` bytes of
/// string values: from the recorder's pool of reused buffers when tracebridge's recorder runs.
pub(crate) fn new_attrs(items: usize, text: usize) -> Attrs {
    match &crate::global::settings().recorder {
        Some(recorder) => recorder.0.attrs(items, text),
        None => Attrs::with_capacity(items, text),
    }
}

/// A string with room for `len` bytes for a span's name: from the recorder's pool of reused
/// strings when tracebridge's recorder runs.
pub(crate) fn new_name(len: usize) -> String {
    match &crate::global::settings().recorder {
        Some(recorder) => recorder.0.name(len),
        None => String::with_capacity(len),
    }
}

/// The OpenTelemetry span of one request (server) or call (client), ended on drop.
pub(crate) struct LayerSpan {
    /// The parent's context (baggage, Sentry DSC, …) with this span as its active span: what
    /// the inner service runs in and what is injected downstream.
    cx: Context,
}

impl LayerSpan {
    /// Starts a span with every attribute known now (an attribute set later takes the span's
    /// lock once more). `links` is used by public endpoints (the caller's context as a link).
    ///
    /// With tracebridge's recorder installed the span is a compact record
    /// ([`crate::pipeline::recorder`]); otherwise an OpenTelemetry SDK span.
    pub(crate) fn start(
        name: impl Into<Cow<'static, str>>,
        kind: SpanKind,
        attributes: Attrs,
        links: Vec<Link>,
        parent: &Context,
    ) -> Self {
        let settings = crate::global::settings();
        if let Some(recorder) = &settings.recorder {
            let cx = recorder
                .0
                .start(name.into(), kind, attributes, links, parent);
            return LayerSpan {
                cx: crate::propagation::keep_random_flag(parent, cx),
            };
        }
        let mut builder = SpanBuilder::from_name(name)
            .with_kind(kind)
            .with_attributes(attributes.to_key_values());
        if !links.is_empty() {
            builder = builder.with_links(links);
        }
        let cx = match &settings.tracer {
            Some(tracer) => parent.with_span(tracer.build_with_context(builder, parent)),
            None => {
                let tracer = opentelemetry::global::tracer(crate::pipeline::TRACER_NAME);
                parent.with_span(tracer.build_with_context(builder, parent))
            }
        };
        // The W3C `random` flag where the SDK's span context cannot carry it.
        LayerSpan {
            cx: crate::propagation::keep_random_flag(parent, cx),
        }
    }

    /// The context the inner service runs in and that is injected downstream.
    pub(crate) fn context(&self) -> &Context {
        &self.cx
    }

    /// Sets one attribute (response data).
    pub(crate) fn set_attribute(&self, attribute: KeyValue) {
        self.cx.span().set_attribute(attribute);
    }

    /// Runs `f` with the span's context attached (current): log lines, Sentry events and
    /// `tracing` spans made by `f` belong to this span.
    pub(crate) fn in_scope<R>(&self, f: impl FnOnce() -> R) -> R {
        let _attached = self.cx.clone().attach();
        f()
    }
}

impl Drop for LayerSpan {
    fn drop(&mut self) {
        self.cx.span().end();
    }
}

/// The parent context of a SERVER span extracted from `cx`, and its links.
///
/// With `public` set (an edge service), the incoming span context becomes a link instead and
/// the incoming baggage and Sentry DSC are dropped: a new trace starts that points at the
/// caller's without trusting it (Go otelhttp's `WithPublicEndpoint`).
pub(crate) fn remote_parent(cx: Context, public: bool) -> (Context, Vec<Link>) {
    if !public {
        return (cx, Vec::new());
    }
    let incoming = cx.span().span_context().clone();
    let links = if incoming.is_valid() {
        vec![Link::with_context(incoming)]
    } else {
        Vec::new()
    };
    (Context::new(), links)
}

/// Which end of a call a span describes. It decides what counts as an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    Server,
    Client,
}

/// The method as recorded in `http.request.method` and in span names. Methods outside the
/// registered set become `_OTHER` (semconv), which also keeps hostile method strings out of
/// span names and bounds their cardinality.
pub(crate) fn method_name(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "_OTHER",
    }
}

/// `network.protocol.version` for an HTTP version.
pub(crate) fn protocol_version(version: http::Version) -> &'static str {
    match version {
        http::Version::HTTP_09 => "0.9",
        http::Version::HTTP_10 => "1.0",
        http::Version::HTTP_11 => "1.1",
        http::Version::HTTP_2 => "2",
        http::Version::HTTP_3 => "3",
        _ => "_OTHER",
    }
}

/// Marks `span` as failed with `error_type` (`error.type`).
pub(crate) fn record_error(span: &LayerSpan, error_type: &str) {
    let otel = span.cx.span();
    otel.set_attribute(KeyValue::new("error.type", error_type.to_owned()));
    otel.set_status(Status::error(""));
}

/// Records an HTTP response status; 5xx (server) or 4xx/5xx (client) mark the span ERROR.
/// Returns whether it was an error.
pub(crate) fn record_http_status(span: &LayerSpan, status: StatusCode, side: Side) -> bool {
    span.set_attribute(KeyValue::new(
        "http.response.status_code",
        i64::from(status.as_u16()),
    ));
    let error = match side {
        Side::Server => status.is_server_error(),
        Side::Client => status.is_client_error() || status.is_server_error(),
    };
    if error {
        record_error(span, status.as_str());
    }
    error
}

/// `grpc-status` from a header map (response headers of a trailers-only response, or trailers).
/// A missing or unparsable value is `None`.
pub(crate) fn grpc_status(headers: &HeaderMap) -> Option<i32> {
    let value = headers.get("grpc-status")?.to_str().ok()?;
    value.trim().parse::<i32>().ok()
}

/// Whether a gRPC status code is an error for this side (ARCHITECTURE.md): a server fails only
/// for codes that mean the server is at fault; a client for anything but OK.
pub(crate) fn grpc_is_error(code: i32, side: Side) -> bool {
    match side {
        // UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS
        Side::Server => matches!(code, 2 | 4 | 12 | 13 | 14 | 15),
        Side::Client => code != 0,
    }
}

/// The canonical name of a gRPC status code (used in `error.type` and Sentry messages).
pub(crate) fn grpc_code_name(code: i32) -> &'static str {
    match code {
        0 => "OK",
        1 => "CANCELLED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => "_OTHER",
    }
}

/// Records `rpc.grpc.status_code` and, for an error code, the ERROR status. Returns whether it
/// was an error.
pub(crate) fn record_grpc_status(span: &LayerSpan, code: i32, side: Side) -> bool {
    span.set_attribute(KeyValue::new("rpc.grpc.status_code", i64::from(code)));
    let error = grpc_is_error(code, side);
    if error {
        record_error(span, grpc_code_name(code));
    }
    error
}

/// Splits a gRPC path `/package.Service/Method` into (`package.Service`, `Method`). Anything
/// else (not a gRPC path) yields `None`, and the caller names the span by the raw path.
pub(crate) fn grpc_path_parts(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix('/')?;
    let (service, method) = rest.split_once('/')?;
    if service.is_empty() || method.is_empty() || method.contains('/') {
        return None;
    }
    Some((service, method))
}

/// A gRPC span: `{package.Service}/{Method}` with the `rpc.*` and `server.*` attributes, a
/// child of `parent` (server: the extracted context; client: the caller's current context).
pub(crate) fn grpc_span(
    path: &str,
    side: Side,
    server: Option<(&str, Option<u16>)>,
    parent: &Context,
    links: Vec<Link>,
) -> LayerSpan {
    let mut attributes = new_attrs(5, path.len() + 32);
    attributes.push_static("rpc.system", "grpc");
    let name = match grpc_path_parts(path) {
        Some((service, method)) => {
            attributes.push_str("rpc.service", service);
            attributes.push_str("rpc.method", method);
            path[1..].to_owned()
        }
        None => path.to_owned(),
    };
    if let Some((host, port)) = server {
        attributes.push_str("server.address", host);
        if let Some(port) = port {
            attributes.push_i64("server.port", i64::from(port));
        }
    }
    let kind = match side {
        Side::Server => SpanKind::Server,
        Side::Client => SpanKind::Client,
    };
    LayerSpan::start(name, kind, attributes, links, parent)
}

/// What a layer needs to raise a Sentry event for a failed request: the request's hub and a
/// short description (`GET /trace`, `ping.PingB/Ping`).
#[derive(Clone)]
pub(crate) struct SentryReport {
    pub(crate) hub: Arc<sentry::Hub>,
    pub(crate) what: String,
}

impl SentryReport {
    /// Captures an error event inside `span`, so the event carries the span's trace context.
    pub(crate) fn capture(&self, span: &LayerSpan, message: String) {
        span.in_scope(|| {
            self.hub.capture_message(&message, sentry::Level::Error);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_paths_split_into_service_and_method() {
        assert_eq!(
            grpc_path_parts("/ping.PingB/Ping"),
            Some(("ping.PingB", "Ping"))
        );
        assert_eq!(grpc_path_parts("ping.PingB/Ping"), None);
        assert_eq!(grpc_path_parts("/ping.PingB"), None);
        assert_eq!(grpc_path_parts("/ping.PingB/"), None);
        assert_eq!(grpc_path_parts("//Ping"), None);
        assert_eq!(grpc_path_parts("/a/b/c"), None);
    }

    #[test]
    fn grpc_error_mapping_differs_by_side() {
        let server_errors: Vec<i32> = (0..=16)
            .filter(|c| grpc_is_error(*c, Side::Server))
            .collect();
        assert_eq!(server_errors, vec![2, 4, 12, 13, 14, 15]);
        let client_errors: Vec<i32> = (0..=16)
            .filter(|c| grpc_is_error(*c, Side::Client))
            .collect();
        assert_eq!(client_errors, (1..=16).collect::<Vec<_>>());
    }

    #[test]
    fn grpc_status_parses_only_numbers() {
        let mut h = HeaderMap::new();
        assert_eq!(grpc_status(&h), None);
        h.insert("grpc-status", "13".parse().unwrap());
        assert_eq!(grpc_status(&h), Some(13));
        h.insert("grpc-status", "x".parse().unwrap());
        assert_eq!(grpc_status(&h), None);
    }

    #[test]
    fn unknown_methods_are_other() {
        assert_eq!(method_name(&Method::GET), "GET");
        assert_eq!(
            method_name(&Method::from_bytes(b"PROPFIND").unwrap()),
            "_OTHER"
        );
    }
}
