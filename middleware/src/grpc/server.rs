//! The gRPC server layer: the HTTP server service in gRPC mode.

use tower::Layer;

use crate::http::{Protocol, ServerConfig, ServerService};
use crate::propagation::Propagator;

/// Tower layer tracing every call of a tonic server:
/// `Server::builder().layer(tracebridge::grpc::ServerLayer::new())`.
///
/// A panicking handler becomes a trailers-only INTERNAL response and an ERROR span.
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
    /// A layer with the installed settings (`tracebridge::init`); no path is skipped.
    pub fn new() -> Self {
        ServerLayer {
            config: ServerConfig::new(Protocol::Grpc, &[]),
        }
    }

    /// Extract with `propagator` instead of the one installed by `init()`.
    pub fn propagator(mut self, propagator: Propagator) -> Self {
        self.config.propagator = Some(propagator);
        self
    }

    /// Paths (exact match, e.g. `/grpc.health.v1.Health/Check`) that pass through untraced.
    pub fn skip_paths<I, P>(mut self, paths: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        self.config.skip_paths = paths.into_iter().map(Into::into).collect();
        self
    }

    /// Incoming trace context becomes a span link instead of the parent, and incoming baggage is
    /// dropped (for services facing untrusted callers).
    pub fn public_endpoint(mut self, public: bool) -> Self {
        self.config.public_endpoint = public;
        self
    }
}

impl<S> Layer<S> for ServerLayer {
    type Service = ServerService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ServerService::with_config(inner, self.config.clone())
    }
}
