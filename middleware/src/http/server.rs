//! The server layer: a SERVER span per request, continued from the incoming trace headers.
//!
//! The same service serves HTTP ([`ServerLayer`]) and gRPC ([`crate::grpc::ServerLayer`]): both
//! are HTTP requests on the wire; only the span's name and attributes and the way the outcome
//! is read (status code vs. `grpc-status`) differ, selected by the layer.
//!
//! Per request, unless the path is skipped or `OTEL_SDK_DISABLED` is set:
//! 1. extract the remote context with the propagator and make it the span's parent (or a link,
//!    for a public endpoint);
//! 2. bind a fresh Sentry hub (when Sentry is on), enter the span and run the inner service in
//!    it, catching panics (→ 500, or gRPC INTERNAL);
//! 3. record the status, add `traceresponse` (HTTP), capture a Sentry event on a server error,
//!    and hand the span to the response body, which ends it when the body ends or is dropped.

use std::borrow::Cow;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderValue, Request, Response, StatusCode};
use opentelemetry::trace::{Link, SpanKind};
use opentelemetry::KeyValue;
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use crate::body::{GrpcOutcome, TracedBody, Tracking};
use crate::propagation::Propagator;
use crate::span::{
    grpc_span, method_name, protocol_version, record_error, record_grpc_status, record_http_status,
    remote_parent, LayerSpan, SentryReport, Side,
};

/// Paths not traced by default: health checks would drown the interesting traces.
pub const DEFAULT_SKIP_PATHS: [&str; 3] = ["/healthz", "/readyz", "/livez"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Protocol {
    Http,
    Grpc,
}

/// Configuration shared by the HTTP and gRPC server layers.
#[derive(Clone, Debug)]
pub(crate) struct ServerConfig {
    pub(crate) protocol: Protocol,
    pub(crate) propagator: Option<Propagator>,
    pub(crate) skip_paths: Arc<[String]>,
    pub(crate) public_endpoint: bool,
}

impl ServerConfig {
    pub(crate) fn new(protocol: Protocol, skip_paths: &[&str]) -> Self {
        ServerConfig {
            protocol,
            propagator: None,
            skip_paths: skip_paths.iter().map(|p| (*p).to_owned()).collect(),
            public_endpoint: false,
        }
    }
}

/// Tower layer that traces every request of an HTTP service (axum `Router::layer`, or any tower
/// service over `http::Request`).
///
/// ```no_run
/// # async fn run() {
/// let app = axum::Router::new()
///     .route("/hello", axum::routing::get(|| async { "hi" }))
///     .layer(tracebridge::http::ServerLayer::new());
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await.unwrap();
/// axum::serve(listener, app).await.unwrap();
/// # }
/// ```
///
/// Use `Router::layer` (not a layer around the whole router) so axum's `MatchedPath` is
/// available and spans are named `GET /users/{id}` rather than `GET`.
#[derive(Clone, Debug)]
#[must_use]
pub struct ServerLayer {
    config: ServerConfig,
}

impl Default for ServerLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerLayer {
    /// A layer with the installed settings (`tracebridge::init`) and the default skip paths.
    pub fn new() -> Self {
        ServerLayer {
            config: ServerConfig::new(Protocol::Http, &DEFAULT_SKIP_PATHS),
        }
    }

    /// Extract with `propagator` instead of the one installed by `init()`.
    pub fn propagator(mut self, propagator: Propagator) -> Self {
        self.config.propagator = Some(propagator);
        self
    }

    /// Paths (exact match) that pass through untraced; replaces the default
    /// `/healthz`, `/readyz`, `/livez`.
    pub fn skip_paths<I, P>(mut self, paths: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        self.config.skip_paths = paths.into_iter().map(Into::into).collect();
        self
    }

    /// For an edge service facing untrusted callers: the incoming trace context becomes a span
    /// link instead of the parent (a new trace starts) and incoming baggage is dropped.
    pub fn public_endpoint(mut self, public: bool) -> Self {
        self.config.public_endpoint = public;
        self
    }
}

impl<S> Layer<S> for ServerLayer {
    type Service = ServerService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ServerService {
            inner,
            config: self.config.clone(),
        }
    }
}

/// The service made by [`ServerLayer`] (and [`crate::grpc::ServerLayer`]).
#[derive(Clone, Debug)]
pub struct ServerService<S> {
    inner: S,
    config: ServerConfig,
}

impl<S> ServerService<S> {
    pub(crate) fn with_config(inner: S, config: ServerConfig) -> Self {
        ServerService { inner, config }
    }

    fn is_skipped(&self, path: &str) -> bool {
        self.config.skip_paths.iter().any(|p| p == path)
    }
}

/// Everything the response future needs to finish a traced request.
struct Traced {
    span: LayerSpan,
    protocol: Protocol,
    sentry: Option<SentryReport>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ServerService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<TracedBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let settings = crate::global::settings();
        if settings.disabled || self.is_skipped(req.uri().path()) {
            return ResponseFuture {
                inner: Some(self.inner.call(req)),
                traced: None,
                passthrough: true,
            };
        }

        let propagator = self
            .config
            .propagator
            .as_ref()
            .unwrap_or(&settings.propagator);
        let (parent, links) = remote_parent(
            propagator.extract(req.headers()),
            self.config.public_endpoint,
        );
        // `what` (the span name, for Sentry messages) is only copied when Sentry is on.
        let (span, what) = match self.config.protocol {
            Protocol::Http => http_server_span(&req, &parent, links, settings.sentry_enabled),
            Protocol::Grpc => {
                let address = server_address(&req);
                let server = address.as_ref().map(|(host, port)| (&**host, *port));
                let span = grpc_span(req.uri().path(), Side::Server, server, &parent, links);
                let what = settings
                    .sentry_enabled
                    .then(|| req.uri().path().trim_start_matches('/').to_owned());
                (span, what)
            }
        };
        // `jaeger-debug-id` (no trace context came with it): searchable on the root span.
        if let Some(id) = crate::propagation::jaeger_debug_id(&parent) {
            span.set_attribute(KeyValue::new("jaeger-debug-id", id));
        }
        drop(parent);

        // A hub per request (like sentry-tower's NewSentryLayer), so scope data set by one
        // request never leaks into another's events.
        let sentry = what.map(|what| SentryReport {
            hub: Arc::new(sentry::Hub::new_from_top(sentry::Hub::current())),
            what,
        });

        let inner = &mut self.inner;
        let call = || span.in_scope(|| catch_unwind(AssertUnwindSafe(|| inner.call(req))).ok());
        let fut = match &sentry {
            Some(report) => sentry::Hub::run(report.hub.clone(), call),
            None => call(),
        };
        ResponseFuture {
            inner: fut,
            traced: Some(Traced {
                span,
                protocol: self.config.protocol,
                sentry,
            }),
            passthrough: false,
        }
    }
}

/// The HTTP SERVER span with its request attributes, and, when `describe`, the short
/// description used in Sentry messages (the span name).
fn http_server_span<B>(
    req: &Request<B>,
    parent: &opentelemetry::Context,
    links: Vec<Link>,
    describe: bool,
) -> (LayerSpan, Option<String>) {
    let method = method_name(req.method());
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|m| m.as_str());
    // semconv: `{method} {route}`, or the method alone; unknown methods are named `HTTP`.
    let name: Cow<'static, str> = match (method, route) {
        ("_OTHER", Some(route)) => words("HTTP", route).into(),
        ("_OTHER", None) => "HTTP".into(),
        (method, Some(route)) => words(method, route).into(),
        (method, None) => method.into(),
    };
    let uri = req.uri();
    let agent = req
        .headers()
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    let address = server_address(req);
    let text = route.map_or(0, str::len)
        + uri.path().len()
        + agent.map_or(0, str::len)
        + address.as_ref().map_or(0, |(h, _)| h.len());
    let mut attributes = crate::span::new_attrs(9, text);
    attributes.push_static("http.request.method", method);
    if let Some(route) = route {
        attributes.push_str("http.route", route);
    }
    attributes.push_str("url.path", uri.path());
    match uri.scheme_str() {
        None | Some("http") => attributes.push_static("url.scheme", "http"),
        Some("https") => attributes.push_static("url.scheme", "https"),
        Some(other) => attributes.push_str("url.scheme", other),
    }
    if let Some((host, port)) = &address {
        attributes.push_str("server.address", host);
        if let Some(port) = port {
            attributes.push_i64("server.port", i64::from(*port));
        }
    }
    if let Some(agent) = agent {
        attributes.push_str("user_agent.original", agent);
    }
    attributes.push_static("network.protocol.version", protocol_version(req.version()));
    let what = describe.then(|| name.to_string());
    let span = LayerSpan::start(name, SpanKind::Server, attributes, links, parent);
    (span, what)
}

/// `"{a} {b}"`, built directly: `format!` costs ~800 instructions per request here, the
/// copy ~100; into a string the export thread handed back when there is one.
fn words(a: &str, b: &str) -> String {
    let mut s = crate::span::new_name(a.len() + 1 + b.len());
    s.push_str(a);
    s.push(' ');
    s.push_str(b);
    s
}

/// The server's host and port (`server.address` / `server.port`): from the URI (HTTP/2) or
/// the `Host` header.
fn server_address<B>(req: &Request<B>) -> Option<(Cow<'_, str>, Option<u16>)> {
    match req.uri().authority() {
        Some(a) => Some((a.host().into(), a.port_u16())),
        None => req
            .headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .and_then(host_and_port),
    }
}

/// `host[:port]` of a `Host` header, exactly as [`http::uri::Authority`] reads it. The usual
/// shape — a name or IPv4 address, then optionally a numeric port — is split here; anything
/// else is parsed as an `Authority` (a copy and a full parse: ~1k instructions per request,
/// a twentieth of the layer's cost, for a header that is nearly always `name:port`).
fn host_and_port(h: &str) -> Option<(Cow<'_, str>, Option<u16>)> {
    let (host, port) = match h.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (h, None),
    };
    let plain_host = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    let port = match port {
        None => Some(None),
        Some(p) if (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()) => {
            p.parse::<u16>().ok().map(Some)
        }
        Some(_) => None,
    };
    match (plain_host, port) {
        (true, Some(port)) => Some((host.into(), port)),
        _ => {
            let a = h.parse::<http::uri::Authority>().ok()?;
            Some((a.host().to_owned().into(), a.port_u16()))
        }
    }
}

pin_project! {
    /// Response future of [`ServerService`].
    pub struct ResponseFuture<F> {
        // `None` once finished, or when the inner `call` panicked.
        #[pin]
        inner: Option<F>,
        traced: Option<Traced>,
        passthrough: bool,
    }
}

impl<F, ResBody, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = Result<Response<TracedBody<ResBody>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if *this.passthrough {
            let fut = this
                .inner
                .as_pin_mut()
                .expect("ResponseFuture polled after completion");
            return fut
                .poll(cx)
                .map(|r| r.map(|res| res.map(TracedBody::untraced)));
        }

        let traced = this
            .traced
            .as_ref()
            .expect("ResponseFuture polled after completion");
        let outcome = match this.inner.as_mut().as_pin_mut() {
            None => None,
            Some(fut) => {
                let poll = || {
                    traced
                        .span
                        .in_scope(|| catch_unwind(AssertUnwindSafe(|| fut.poll(cx))))
                };
                let polled = match &traced.sentry {
                    Some(report) => sentry::Hub::run(report.hub.clone(), poll),
                    None => poll(),
                };
                match polled {
                    Ok(Poll::Pending) => return Poll::Pending,
                    Ok(Poll::Ready(result)) => Some(result),
                    Err(_panic) => None,
                }
            }
        };
        this.inner.set(None);
        let traced = this.traced.take().expect("checked above");

        Poll::Ready(match outcome {
            Some(Ok(response)) => Ok(finish_response(traced, response)),
            Some(Err(error)) => {
                // The inner service failed without a response (axum never does; other tower
                // services may). The span ends here, as an error.
                record_error(&traced.span, "_OTHER");
                Err(error)
            }
            None => Ok(panic_response(traced)),
        })
    }
}

fn finish_response<B>(traced: Traced, mut response: Response<B>) -> Response<TracedBody<B>> {
    let Traced {
        span,
        protocol,
        sentry,
    } = traced;
    let grpc = match protocol {
        Protocol::Http => {
            let status = response.status();
            if record_http_status(&span, status, Side::Server) {
                if let Some(report) = &sentry {
                    report.capture(&span, format!("HTTP {} {}", status.as_u16(), report.what));
                }
            }
            add_traceresponse(&span, &mut response);
            None
        }
        Protocol::Grpc => match crate::span::grpc_status(response.headers()) {
            // Trailers-only response: the outcome is already known.
            Some(code) => {
                report_grpc(&span, code, sentry.as_ref());
                None
            }
            None => Some(GrpcOutcome {
                side: Side::Server,
                sentry,
            }),
        },
    };
    let tracking = Tracking::new(span, grpc);
    response.map(|body| TracedBody::traced(body, tracking))
}

fn report_grpc(span: &LayerSpan, code: i32, sentry: Option<&SentryReport>) {
    if record_grpc_status(span, code, Side::Server) {
        if let Some(report) = sentry {
            report.capture(
                span,
                format!("gRPC {} {}", crate::span::grpc_code_name(code), report.what),
            );
        }
    }
}

/// The response for a panicking handler: HTTP 500, or a trailers-only gRPC INTERNAL. The Sentry
/// event for the panic itself comes from Sentry's panic integration, which runs in the panic
/// hook inside the request's hub and span.
fn panic_response<B>(traced: Traced) -> Response<TracedBody<B>> {
    let span = traced.span;
    let mut response = Response::new(());
    match traced.protocol {
        Protocol::Http => {
            *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            span.set_attribute(KeyValue::new("http.response.status_code", 500_i64));
            record_error(&span, "panic");
            add_traceresponse(&span, &mut response);
        }
        Protocol::Grpc => {
            let headers = response.headers_mut();
            headers.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/grpc"),
            );
            headers.insert("grpc-status", HeaderValue::from_static("13"));
            headers.insert("grpc-message", HeaderValue::from_static("panic"));
            span.set_attribute(KeyValue::new("rpc.grpc.status_code", 13_i64));
            record_error(&span, "panic");
        }
    }
    let tracking = Tracking::new(span, None);
    response.map(|()| TracedBody::empty(Some(tracking)))
}

/// `traceresponse` (W3C Trace Context Level 2) with the server span's own ids, so a browser or
/// caller can find the trace; its flags are those the span's outgoing calls carry (`random`
/// included: "The format and requirements for this are the same as those of the
/// random-trace-id flag in the trace-flags field in the `traceparent` request header").
fn add_traceresponse<B>(span: &LayerSpan, response: &mut Response<B>) {
    if let Some(value) = crate::propagation::traceresponse(span.context()) {
        response
            .headers_mut()
            .insert(http::HeaderName::from_static("traceresponse"), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn by_authority(h: &str) -> Option<(String, Option<u16>)> {
        let a = h.parse::<http::uri::Authority>().ok()?;
        Some((a.host().to_owned(), a.port_u16()))
    }

    #[test]
    fn host_header_shapes() {
        for h in [
            "127.0.0.1:8080",
            "example.com",
            "Example.COM:443",
            "a-b.c:0",
            "h:65535",
            "h:65536",
            "h:",
            "h:08080",
            "[::1]:8080",
            "[::1]",
            "user@h:1",
            "h:1:2",
            ":80",
            "",
            "h h",
            "h/x",
        ] {
            let got = host_and_port(h).map(|(host, port)| (host.into_owned(), port));
            assert_eq!(got, by_authority(h), "{h:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]
        #[test]
        fn host_and_port_agrees_with_authority(h in "[a-zA-Z0-9.:\\-\\[\\]@%/ ]{0,12}") {
            let got = host_and_port(&h).map(|(host, port)| (host.into_owned(), port));
            prop_assert_eq!(got, by_authority(&h));
        }
    }
}
