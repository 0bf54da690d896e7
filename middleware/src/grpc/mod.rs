//! gRPC layers for tonic: [`ServerLayer`] for `tonic::transport::Server::builder().layer(..)`
//! and [`ClientLayer`] for a `Channel`.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use tonic_health::pb::health_client::HealthClient;
//! // server
//! let (_, health) = tonic_health::server::health_reporter();
//! let server = tonic::transport::Server::builder()
//!     .layer(tracebridge::grpc::ServerLayer::new())
//!     .add_service(health)
//!     .serve("127.0.0.1:50051".parse()?);
//! # drop(server);
//! // client
//! let channel = tonic::transport::Endpoint::from_static("http://127.0.0.1:50051").connect_lazy();
//! let channel = tower::ServiceBuilder::new()
//!     .layer(tracebridge::grpc::ClientLayer::new())
//!     .service(channel);
//! let mut client = HealthClient::new(channel);
//! # let _ = &mut client;
//! # Ok(()) }
//! ```
//!
//! The server span is named `{package.Service}/{Method}` with `rpc.system`, `rpc.service`,
//! `rpc.method` and `rpc.grpc.status_code`, read from the response headers of a trailers-only
//! response or from the trailers, which is when the span ends (or when the body is dropped).
//! Server errors are UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE and
//! DATA_LOSS; for the client every non-OK code is an error.

mod client;
mod server;

/// The server layer's service and future are the HTTP ones, set to gRPC mode.
pub use crate::http::{ResponseFuture, ServerService};
pub use client::{ClientLayer, ClientResponseFuture, ClientService};
pub use server::ServerLayer;
