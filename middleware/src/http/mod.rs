//! HTTP layers: [`ServerLayer`] for axum and any tower HTTP service, [`ClientMiddleware`] /
//! [`client`] for reqwest.
//!
//! Quick start (after `tracebridge::init()`):
//!
//! ```no_run
//! # async fn run() {
//! let app = axum::Router::new()
//!     .route("/users/{id}", axum::routing::get(|| async { "user" }))
//!     .layer(tracebridge::http::ServerLayer::new());
//! let client = tracebridge::http::client(reqwest::Client::new()); // for outgoing calls
//! # let _ = client;
//! # let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! # axum::serve(listener, app).await.unwrap();
//! # }
//! ```

mod client;
mod server;

pub use crate::body::TracedBody;
pub use client::{client, ClientMiddleware};
pub(crate) use server::{Protocol, ServerConfig};
pub use server::{ResponseFuture, ServerLayer, ServerService, DEFAULT_SKIP_PATHS};
