//! Tracing added to an axum service: `tracebridge::init()`, one layer, graceful shutdown.
//! Shown in `docs/adding-the-middleware.md`; keep the two in step.
//!
//! ```sh
//! OTEL_SERVICE_NAME=users OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4317 \
//!     cargo run -p tracebridge --example axum_service
//! curl -si localhost:8080/users/42 \
//!     -H 'traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
//! ```

use axum::{extract::Path, routing::get, Router};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _guard = tracebridge::init()?; // OTEL_* / SENTRY_* from the environment; flushes on drop
    let app = Router::new()
        .route("/users/{id}", get(user))
        .route("/healthz", get(|| async { "ok" })) // a default skip path: never traced
        .layer(tracebridge::http::ServerLayer::new()); // SERVER span `GET /users/{id}`
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
    axum::serve(listener, app)
        .with_graceful_shutdown(tracebridge::shutdown_signal()) // SIGTERM / Ctrl-C
        .await?;
    Ok(()) // `_guard` drops here: in-flight requests are done, their spans are flushed
}

async fn user(Path(id): Path<u32>) -> String {
    load_user(id).await
}

/// An internal span: a child of the request's SERVER span, nothing else needed.
#[tracing::instrument]
async fn load_user(id: u32) -> String {
    tracing::info!("loading"); // this log line carries trace_id= and span_id=
    format!("user {id}\n")
}
