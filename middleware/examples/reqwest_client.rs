//! Outgoing HTTP calls with reqwest: a CLIENT span per request, the trace headers injected,
//! and an allowlist that keeps them away from everything else. Runs on its own: a small echo
//! server stands in for the services you call and prints the trace headers it received.
//! Shown in `docs/adding-the-middleware.md`; keep the two in step.
//!
//! ```sh
//! cargo run -p tracebridge --example reqwest_client
//! ```

use axum::http::HeaderMap;
use opentelemetry::baggage::BaggageExt;
use opentelemetry::KeyValue;
use reqwest_middleware::ClientWithMiddleware;
use tracebridge::SpanExt;
use tracing::Instrument as _;

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let _guard = tracebridge::init()?;
    let base = echo_server().await?;

    // Trace headers (and baggage) go only to URLs under `{base}/internal/`; every request
    // gets its CLIENT span either way.
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(
            tracebridge::http::ClientMiddleware::new()
                .allow_url_prefixes([format!("{base}/internal/")]),
        )
        .build();
    // `tracebridge::http::client(reqwest::Client::new())` is the same without an allowlist.

    let span = tracing::info_span!("checkout");
    // Baggage for everything called inside `checkout` (a new trace: nothing came in here).
    let _ = span
        .set_parent(opentelemetry::Context::new().with_baggage([KeyValue::new("tenant", "acme")]));
    checkout(&client, &base).instrument(span).await
}

/// Two calls inside one span: the first may receive trace headers, the second may not.
async fn checkout(client: &ClientWithMiddleware, base: &str) -> Result<(), Error> {
    for path in ["/internal/stock", "/public/search"] {
        let received = client
            .get(format!("{base}{path}"))
            .send()
            .await?
            .text()
            .await?;
        println!("{path} received:\n{received}");
    }
    Ok(())
}

/// A loopback server answering with the trace headers of each request.
async fn echo_server() -> std::io::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let app =
        axum::Router::new().fallback(|headers: HeaderMap| async move { trace_headers(&headers) });
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(base)
}

fn trace_headers(headers: &HeaderMap) -> String {
    const TRACE: [&str; 9] = [
        "traceparent",
        "tracestate",
        "baggage",
        "uber-trace-id",
        "sentry-trace",
        "b3",
        "x-b3-traceid",
        "x-b3-spanid",
        "x-b3-sampled",
    ];
    let mut out = String::new();
    for (name, value) in headers {
        if TRACE.contains(&name.as_str()) || name.as_str().starts_with("uberctx-") {
            out.push_str(&format!(
                "  {name}: {}\n",
                value.to_str().unwrap_or("<not UTF-8>")
            ));
        }
    }
    if out.is_empty() {
        out.push_str("  (no trace headers)\n");
    }
    out
}
