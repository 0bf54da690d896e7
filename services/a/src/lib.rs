//! Demo service a: the HTTP entry of the mesh, on `A_LISTEN` (default `127.0.0.1:8080`).
//!
//! | route | what |
//! |---|---|
//! | `GET /trace` | internal spans `trace1` > `trace2`, then gRPC `ping.PingB/Ping` (b calls c over HTTP) and `ping.PingC/Ping`; 200 `{"trace_id": …}` |
//! | `GET /trace?fail=b` / `?fail=c` | that service answers INTERNAL; a answers 502 `{"error": …, "trace_id": …}` |
//! | `GET /healthz` | 200, untraced (the layer's default skip paths) |
//! | `POST /conformance` | the W3C Trace Context test harness interface, see [`conformance`] |
//! | `GET /`, `/config.json`, assets | the frontend page, see [`frontend`] |
//!
//! Upstreams: `B_URL` (default `http://127.0.0.1:50051`), `C_URL` (default
//! `http://127.0.0.1:50052`), both through tonic channels wrapped in tracebridge's gRPC client
//! layer, with bounded connect and request timeouts.

pub mod conformance;
pub mod frontend;
pub mod trace;

use std::process::ExitCode;
use std::time::Duration;

use axum::http::{HeaderName, Method};
use axum::routing::{get, post};
use axum::Router;
use demo_common::env::{A_LISTEN, B_URL, C_URL, DEFAULT_A_LISTEN, DEFAULT_B_URL, DEFAULT_C_URL};
use demo_common::{BoxError, Shutdown};
use ping_proto::ping_b_client::PingBClient;
use ping_proto::ping_c_client::PingCClient;
use reqwest_middleware::ClientWithMiddleware;
use tonic::transport::{Channel, Endpoint};
use tower_http::cors::{Any, CorsLayer};

/// The service name a reports when `OTEL_SERVICE_NAME` is not set.
pub const SERVICE_NAME: &str = "service-a";

/// A tonic channel behind tracebridge's gRPC client layer.
pub type TracedChannel = <tracebridge::grpc::ClientLayer as tower::Layer<Channel>>::Service;

/// Runs service a until SIGTERM / Ctrl-C; the process exit code.
pub fn main() -> ExitCode {
    demo_common::run(SERVICE_NAME, serve)
}

/// Binds `A_LISTEN` and serves [`router`] until `shutdown`, finishing in-flight requests.
pub async fn serve(shutdown: Shutdown) -> Result<(), BoxError> {
    let listener = demo_common::bind(A_LISTEN, DEFAULT_A_LISTEN).await?;
    let state = AppState::from_env()?;
    tracing::info!(http = %listener.local_addr()?, "service-a listening");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown.requested())
        .await?;
    Ok(())
}

/// What the handlers share: the upstream clients and the frontend's source.
#[derive(Clone, Debug)]
pub struct AppState {
    /// gRPC client of b.
    pub b: PingBClient<TracedChannel>,
    /// gRPC client of c.
    pub c: PingCClient<TracedChannel>,
    /// Instrumented HTTP client (used by `/conformance`).
    pub http: ClientWithMiddleware,
    /// Where the page comes from.
    pub frontend: frontend::Frontend,
}

impl AppState {
    /// Clients from `B_URL` / `C_URL`. Channels connect lazily, so a starts (and answers
    /// /healthz) before b and c are up; a request made while one is down gets a 502.
    pub fn from_env() -> Result<Self, BoxError> {
        // Bounded, but longer than the demo's artificial work (trace3 plus b's hop to c).
        let timeout = Duration::from_secs(10) + demo_common::demo_delay() * 4;
        let b = channel(B_URL, DEFAULT_B_URL, timeout)?;
        let c = channel(C_URL, DEFAULT_C_URL, timeout)?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(AppState {
            b: PingBClient::new(b),
            c: PingCClient::new(c),
            http: tracebridge::http::client(http),
            frontend: frontend::Frontend::from_env(),
        })
    }
}

fn channel(var: &'static str, default: &str, timeout: Duration) -> Result<TracedChannel, BoxError> {
    let url = demo_common::env::base_url(var, default);
    let endpoint = Endpoint::from_shared(url.clone())
        .map_err(|e| format!("{var}={url:?} is not a valid URL: {e}"))?
        .connect_timeout(Duration::from_secs(3))
        .timeout(timeout);
    Ok(tower::ServiceBuilder::new()
        .layer(tracebridge::grpc::ClientLayer::new())
        .service(endpoint.connect_lazy()))
}

/// All routes, behind the tracing layer, behind CORS (so a browser on another origin can send
/// the Sentry SDK's `sentry-trace` + `baggage` and read `traceresponse`; preflights are
/// answered by CORS and never traced).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/trace", get(trace::trace))
        .route("/healthz", get(healthz))
        .route("/conformance", post(conformance::conformance))
        .merge(frontend::routes(&state.frontend))
        .with_state(state)
        .layer(tracebridge::http::ServerLayer::new())
        .layer(cors())
}

/// CORS of a: the trace headers browsers send, `traceresponse` readable by the page.
pub fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            HeaderName::from_static("sentry-trace"),
            HeaderName::from_static("baggage"),
            HeaderName::from_static("traceparent"),
            HeaderName::from_static("tracestate"),
            HeaderName::from_static("content-type"),
        ])
        .expose_headers([HeaderName::from_static("traceresponse")])
}

async fn healthz() -> &'static str {
    "ok\n"
}
