//! The gRPC client layer: a CLIENT span per call and the trace headers injected into the
//! request metadata.
//!
//! Put it in a `tower::ServiceBuilder` over a tonic `Channel`; it composes with `.timeout()`,
//! concurrency limits and the like, and the result works with generated clients
//! (`XClient::new(service)`): the service is `Clone`, keeps the inner error type and returns a
//! body with the same `Data` and `Error` as the inner one.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use crate::body::{GrpcOutcome, TracedBody, Tracking};
use crate::propagation::Propagator;
use crate::span::{grpc_span, record_error, record_grpc_status, LayerSpan, Side};

/// Layer for a tonic `Channel` (or any gRPC client service over `http::Request`).
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct ClientLayer {
    propagator: Option<Propagator>,
}

impl ClientLayer {
    /// A layer that injects with the propagator installed by `init()`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Inject with `propagator` instead of the one installed by `init()`.
    pub fn propagator(mut self, propagator: Propagator) -> Self {
        self.propagator = Some(propagator);
        self
    }
}

impl<S> Layer<S> for ClientLayer {
    type Service = ClientService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ClientService {
            inner,
            propagator: self.propagator.clone(),
        }
    }
}

/// The service made by [`ClientLayer`].
#[derive(Clone, Debug)]
pub struct ClientService<S> {
    inner: S,
    propagator: Option<Propagator>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ClientService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<TracedBody<ResBody>>;
    type Error = S::Error;
    type Future = ClientResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let settings = crate::global::settings();
        if settings.disabled {
            return ClientResponseFuture {
                inner: self.inner.call(req),
                span: None,
            };
        }
        // `server.*` is known when the request carries a full URI (a Channel adds the origin
        // later, below this layer, so generated clients over a Channel leave it unset).
        let uri = req.uri();
        let server = uri.host().map(|host| (host, uri.port_u16()));
        // A child of the caller's current context: the server span the server layer attached,
        // or the innermost entered `tracing` span (the `tracing` layer's context activation).
        let span = grpc_span(
            uri.path(),
            Side::Client,
            server,
            &opentelemetry::Context::current(),
            Vec::new(),
        );
        let propagator = self.propagator.as_ref().unwrap_or(&settings.propagator);
        propagator.inject(span.context(), req.headers_mut());
        let inner = span.in_scope(|| self.inner.call(req));
        ClientResponseFuture {
            inner,
            span: Some(span),
        }
    }
}

pin_project! {
    /// Response future of [`ClientService`].
    pub struct ClientResponseFuture<F> {
        #[pin]
        inner: F,
        span: Option<LayerSpan>,
    }
}

impl<F, ResBody, E> Future for ClientResponseFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = Result<Response<TracedBody<ResBody>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Some(span) = this.span.as_ref() else {
            return this
                .inner
                .poll(cx)
                .map(|r| r.map(|res| res.map(TracedBody::untraced)));
        };
        let result = match span.in_scope(|| this.inner.poll(cx)) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(result) => result,
        };
        let span = this.span.take().expect("checked above");
        Poll::Ready(match result {
            Ok(response) => {
                let grpc = match crate::span::grpc_status(response.headers()) {
                    Some(code) => {
                        record_grpc_status(&span, code, Side::Client);
                        None
                    }
                    None if response.status() != http::StatusCode::OK => {
                        // Not a gRPC response at all (proxy error page, wrong port): tonic
                        // turns it into an error status, so the call failed.
                        record_error(&span, response.status().as_str());
                        None
                    }
                    None => Some(GrpcOutcome {
                        side: Side::Client,
                        sentry: None,
                    }),
                };
                let tracking = Tracking::new(span, grpc);
                Ok(response.map(|body| TracedBody::traced(body, tracking)))
            }
            Err(error) => {
                record_error(&span, "transport");
                Err(error)
            }
        })
    }
}
