//! Span helpers shared by the HTTP and gRPC layers: naming, remote parents, status mapping.
//!
//! Spans are ordinary `tracing` spans at INFO level (so they survive `RUST_LOG=info`); the
//! `tracing-opentelemetry` layer turns them into OpenTelemetry spans. The name, kind and status
//! go through its special fields `otel.name`, `otel.kind` and `otel.status_code`, so the layers
//! never touch the OpenTelemetry span directly, and a span that a filter disables costs nothing.
//!
//! A span ends when its last `tracing::Span` handle is dropped: the layers keep the handle in
//! their response future and then in the response body ([`crate::body::TracedBody`]), so the
//! span covers a streamed body and ends on its own when the request or the body is dropped.

use std::sync::Arc;

use http::{HeaderMap, Method, StatusCode};
use opentelemetry::trace::{SpanContext, TraceContextExt};
use opentelemetry::Context;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

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

/// Makes `cx` (extracted from the incoming headers) the remote parent of `span`.
///
/// With `public` set (an edge service), the incoming span context becomes a link instead and
/// the incoming baggage and Sentry DSC are dropped: a new trace starts that points at the
/// caller's without trusting it (Go otelhttp's `WithPublicEndpoint`).
///
/// Must run before the span is first entered: `tracing-opentelemetry` starts the OpenTelemetry
/// span lazily, and its parent cannot change afterwards.
pub(crate) fn set_remote_parent(span: &Span, cx: Context, public: bool) {
    if public {
        let incoming = cx.span().span_context().clone();
        // Always set a parent: without one the span would inherit whatever OpenTelemetry
        // context happens to be current on this thread.
        let _ = span.set_parent(Context::new());
        if incoming.is_valid() {
            span.add_link(incoming);
        }
    } else {
        let _ = span.set_parent(cx);
    }
}

/// The span's own span context (starting the OpenTelemetry span if needed), or `None` when no
/// OpenTelemetry layer records it (filtered out, no subscriber, SDK disabled).
pub(crate) fn own_span_context(span: &Span) -> Option<SpanContext> {
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then_some(sc)
}

/// The context to inject into an outgoing request: the client span's own context, or, when
/// that span is not recorded (e.g. filtered out), the caller's current context, so headers
/// still propagate the trace the caller is in.
pub(crate) fn context_for_injection(span: &Span) -> Context {
    let cx = span.context();
    if cx.span().span_context().is_valid() {
        cx
    } else {
        Span::current().context()
    }
}

/// Marks `span` as failed with `error_type` (`error.type`).
pub(crate) fn record_error(span: &Span, error_type: &str) {
    span.record("otel.status_code", "ERROR");
    span.record("error.type", error_type);
}

/// Records an HTTP response status; 5xx (server) or 4xx/5xx (client) mark the span ERROR.
/// Returns whether it was an error.
pub(crate) fn record_http_status(span: &Span, status: StatusCode, side: Side) -> bool {
    span.record("http.response.status_code", i64::from(status.as_u16()));
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
pub(crate) fn record_grpc_status(span: &Span, code: i32, side: Side) -> bool {
    span.record("rpc.grpc.status_code", i64::from(code));
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

/// A gRPC span: `{package.Service}/{Method}`, rpc.* and `server.*` attributes, status fields
/// left empty for the response.
///
/// Every attribute known up front is passed at creation rather than recorded afterwards: each
/// `Span::record` runs every subscriber layer again (the fmt layer re-formats its fields, the
/// OpenTelemetry layer locks the span's data), which measurably costs per request.
pub(crate) fn grpc_span(path: &str, side: Side, server: Option<(&str, Option<u16>)>) -> Span {
    let (name, service, method) = match grpc_path_parts(path) {
        Some((service, method)) => (&path[1..], Some(service), Some(method)),
        None => (path, None, None),
    };
    let address = server.map(|(host, _)| host);
    let port = server.and_then(|(_, port)| port).map(i64::from);
    match side {
        Side::Server => tracing::info_span!(
            target: "tracebridge::grpc",
            "gRPC request",
            otel.name = name,
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            rpc.system = "grpc",
            rpc.service = service,
            rpc.method = method,
            rpc.grpc.status_code = tracing::field::Empty,
            server.address = address,
            server.port = port,
            error.type = tracing::field::Empty,
        ),
        Side::Client => tracing::info_span!(
            target: "tracebridge::grpc",
            "gRPC call",
            otel.name = name,
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            rpc.system = "grpc",
            rpc.service = service,
            rpc.method = method,
            rpc.grpc.status_code = tracing::field::Empty,
            server.address = address,
            server.port = port,
            error.type = tracing::field::Empty,
        ),
    }
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
    pub(crate) fn capture(&self, span: &Span, message: String) {
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
