//! The HTTP client middleware: a CLIENT span per outgoing reqwest request, and the trace headers
//! of every configured format injected from that span.
//!
//! ```no_run
//! # async fn run() -> Result<(), reqwest_middleware::Error> {
//! let client = tracebridge::http::client(reqwest::Client::new());
//! let body = client.get("http://127.0.0.1:8083/work").send().await?.text().await?;
//! # Ok(()) }
//! ```
//!
//! Trace headers carry the trace id and baggage to whoever receives the request. To keep them
//! away from third parties, restrict them with [`ClientMiddleware::allow_hosts`] /
//! [`ClientMiddleware::allow_url_prefixes`]: a request to anything else gets no trace headers
//! and no baggage (its span is still recorded).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http::Extensions;
use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::SpanKind;
use reqwest_middleware::{ClientWithMiddleware, Middleware, Next};

use crate::propagation::Propagator;
use crate::span::{method_name, record_error, record_http_status, LayerSpan, Side};

/// Wraps `client` with [`ClientMiddleware`] (default settings: inject to every host).
pub fn client(client: reqwest::Client) -> ClientWithMiddleware {
    reqwest_middleware::ClientBuilder::new(client)
        .with(ClientMiddleware::new())
        .build()
}

/// reqwest-middleware middleware: CLIENT span + trace header injection.
///
/// Attributes: `http.request.method`, `url.full` (no credentials, query values redacted — see
/// [`crate::redact::url_full`]), `server.address`, `server.port`, `http.response.status_code`;
/// 4xx/5xx and transport errors mark the span ERROR (`error.type` = status code, or the kind of
/// transport failure: `timeout`, `connect`, `request`, `body`, `decode`, `redirect`, `_OTHER`).
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct ClientMiddleware {
    propagator: Option<Propagator>,
    allow_hosts: Arc<[String]>,
    allow_url_prefixes: Arc<[String]>,
}

impl ClientMiddleware {
    /// Injects with the installed propagator into requests to any host.
    pub fn new() -> Self {
        Self::default()
    }

    /// Inject with `propagator` instead of the one installed by `init()`.
    pub fn propagator(mut self, propagator: Propagator) -> Self {
        self.propagator = Some(propagator);
        self
    }

    /// Hosts (exact, case-insensitive; `host` or `host:port`) that may receive trace headers.
    /// Setting this or [`Self::allow_url_prefixes`] turns the allowlist on.
    pub fn allow_hosts<I, H>(mut self, hosts: I) -> Self
    where
        I: IntoIterator<Item = H>,
        H: Into<String>,
    {
        self.allow_hosts = hosts
            .into_iter()
            .map(|h| h.into().to_ascii_lowercase())
            .collect();
        self
    }

    /// URL prefixes (`https://api.example.com/v1/`) that may receive trace headers. A prefix
    /// matches only at a boundary (`/`, `?`, `#` or the end), so `http://a.example` does not
    /// match `http://a.example.evil.com`.
    pub fn allow_url_prefixes<I, P>(mut self, prefixes: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        self.allow_url_prefixes = prefixes.into_iter().map(Into::into).collect();
        self
    }

    /// Whether `url` may receive trace headers and baggage.
    pub fn is_allowed(&self, url: &url::Url) -> bool {
        if self.allow_hosts.is_empty() && self.allow_url_prefixes.is_empty() {
            return true;
        }
        let host = url.host_str().unwrap_or_default();
        let host_allowed = self.allow_hosts.iter().any(|allowed| {
            match allowed.rsplit_once(':') {
                // `host:port` (an IPv6 literal is bracketed, so its colons are not the port's).
                Some((h, port)) if !allowed.ends_with(']') && port.parse::<u16>().is_ok() => {
                    h.eq_ignore_ascii_case(host)
                        && url
                            .port_or_known_default()
                            .map(|p| p.to_string())
                            .as_deref()
                            == Some(port)
                }
                _ => allowed.eq_ignore_ascii_case(host),
            }
        });
        host_allowed
            || self.allow_url_prefixes.iter().any(|prefix| {
                let url = url.as_str();
                url.starts_with(prefix.as_str())
                    && (prefix.ends_with('/')
                        || matches!(
                            url.as_bytes().get(prefix.len()),
                            None | Some(b'/' | b'?' | b'#')
                        ))
            })
    }

    async fn traced(
        &self,
        mut req: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let settings = crate::global::settings();
        if settings.disabled {
            return next.run(req, extensions).await;
        }
        let span = client_span(&req);
        if self.is_allowed(req.url()) {
            let propagator = self.propagator.as_ref().unwrap_or(&settings.propagator);
            propagator.inject(span.context(), req.headers_mut());
        }
        let result = next
            .run(req, extensions)
            .with_context(span.context().clone())
            .await;
        match &result {
            Ok(response) => {
                record_http_status(&span, response.status(), Side::Client);
            }
            Err(error) => record_error(&span, error_type(error)),
        }
        result
    }
}

/// The CLIENT span, a child of the caller's current context (the server span the layer
/// attached, or the innermost entered `tracing` span through the `tracing` layer's context
/// activation).
fn client_span(req: &reqwest::Request) -> LayerSpan {
    let method = method_name(req.method());
    let url = req.url();
    let full = crate::redact::url_full(url);
    let host = url.host_str().unwrap_or_default();
    let mut attributes = crate::span::new_attrs(4, full.len() + host.len());
    attributes.push_static("http.request.method", method);
    attributes.push_str("url.full", &full);
    attributes.push_str("server.address", host);
    if let Some(port) = url.port_or_known_default() {
        attributes.push_i64("server.port", i64::from(port));
    }
    let name = if method == "_OTHER" { "HTTP" } else { method };
    LayerSpan::start(
        name,
        SpanKind::Client,
        attributes,
        Vec::new(),
        &opentelemetry::Context::current(),
    )
}

/// A low-cardinality `error.type` for a failed request.
fn error_type(error: &reqwest_middleware::Error) -> &'static str {
    match error {
        reqwest_middleware::Error::Reqwest(e) if e.is_timeout() => "timeout",
        reqwest_middleware::Error::Reqwest(e) if e.is_connect() => "connect",
        reqwest_middleware::Error::Reqwest(e) if e.is_redirect() => "redirect",
        reqwest_middleware::Error::Reqwest(e) if e.is_body() => "body",
        reqwest_middleware::Error::Reqwest(e) if e.is_decode() => "decode",
        reqwest_middleware::Error::Reqwest(e) if e.is_request() => "request",
        reqwest_middleware::Error::Reqwest(_) => "_OTHER",
        reqwest_middleware::Error::Middleware(_) => "middleware",
    }
}

// `Middleware` is declared with `#[async_trait]`; this is its expansion, written out so the
// crate needs no `async-trait` dependency.
impl Middleware for ClientMiddleware {
    fn handle<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        req: reqwest::Request,
        extensions: &'life1 mut Extensions,
        next: Next<'life2>,
    ) -> Pin<
        Box<
            dyn Future<Output = reqwest_middleware::Result<reqwest::Response>>
                + Send
                + 'async_trait,
        >,
    >
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.traced(req, extensions, next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> url::Url {
        url::Url::parse(s).unwrap()
    }

    #[test]
    fn everything_is_allowed_by_default() {
        assert!(ClientMiddleware::new().is_allowed(&url("https://anywhere.example/x")));
    }

    #[test]
    fn hosts_match_exactly_with_optional_port() {
        let m = ClientMiddleware::new().allow_hosts(["API.example.com", "127.0.0.1:8083"]);
        assert!(m.is_allowed(&url("https://api.example.com/x")));
        assert!(!m.is_allowed(&url("https://api.example.com.evil.net/x")));
        assert!(!m.is_allowed(&url("https://sub.api.example.com/x")));
        assert!(m.is_allowed(&url("http://127.0.0.1:8083/work")));
        assert!(!m.is_allowed(&url("http://127.0.0.1:9999/work")));
    }

    #[test]
    fn prefixes_match_at_boundaries() {
        let m = ClientMiddleware::new()
            .allow_url_prefixes(["http://a.example", "http://b.example/v1/"]);
        assert!(m.is_allowed(&url("http://a.example/x")));
        assert!(!m.is_allowed(&url("http://a.example.evil.com/x")));
        assert!(m.is_allowed(&url("http://b.example/v1/items")));
        assert!(!m.is_allowed(&url("http://b.example/v2/items")));
    }
}
