//! Keeping your own `tracing` subscriber (here: JSON logs): tracebridge's layer goes into it,
//! and a handler reads the request's ids with `tracebridge::current_trace()`.
//! Shown in `docs/adding-the-middleware.md`; keep the two in step.
//!
//! ```sh
//! OTEL_SERVICE_NAME=users OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4317 \
//!     cargo run -p tracebridge --example own_subscriber
//! curl -s localhost:8080/users/42 \
//!     -H 'traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
//! ```

use axum::{extract::Path, routing::get, Router};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{filter::LevelFilter, Layer};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // What `init()` does, except installing a subscriber: `telemetry` is tracebridge's layer.
    let (_guard, telemetry) = tracebridge::Builder::from_env().build()?;
    let json_logs = tracing_subscriber::fmt::layer().json(); // your own layers
    tracing_subscriber::registry()
        .with(json_logs.with_filter(LevelFilter::INFO))
        .with(telemetry) // `tracing` spans to OTLP, their events as span events; Sentry events
        .init();

    let app = Router::new()
        .route("/users/{id}", get(user))
        .layer(tracebridge::http::ServerLayer::new()); // SERVER span `GET /users/{id}`
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
    axum::serve(listener, app)
        .with_graceful_shutdown(tracebridge::shutdown_signal())
        .await?;
    Ok(())
}

async fn user(Path(id): Path<u32>) -> String {
    // The request's SERVER span: the trace id Jaeger, Sentry and `traceresponse` show.
    let trace_id = tracebridge::current_trace().map(|ids| ids.trace_id.to_string());
    let user = load_user(id).await;
    format!("{user} (trace {})\n", trace_id.as_deref().unwrap_or("off"))
}

/// An INTERNAL span under the SERVER span, exported through tracebridge's pipeline.
#[tracing::instrument]
async fn load_user(id: u32) -> String {
    // In here `current_trace()` is this span's ids; add them to a line if your logs need them.
    let span_id = tracebridge::current_trace().map(|ids| ids.span_id.to_string());
    tracing::info!(span_id, "loading"); // a JSON line, and a span event on `load_user`
    format!("user {id}")
}
