//! Demo service c: the leaf of the mesh.
//!
//! - gRPC `ping.PingC/Ping` on `C_LISTEN` (default `127.0.0.1:50052`): the internal span
//!   `trace3`, or INTERNAL when the request carries `fail` (a's `?fail=c`).
//! - HTTP `GET /work` on `C_HTTP_LISTEN` (default `127.0.0.1:8083`): `trace3` too; this is what
//!   b calls over HTTP.
//!
//! Both servers run behind tracebridge's server layers, so `trace3` nests under the request's
//! span whatever header format the caller used. `trace3` records one event, `trace3 finished`
//! with `step = "done"`: a span event on every `trace3` span.

use std::process::ExitCode;

use axum::extract::Query;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use demo_common::env::{C_HTTP_LISTEN, C_LISTEN, DEFAULT_C_HTTP_LISTEN, DEFAULT_C_LISTEN};
use demo_common::{BoxError, Shutdown};
use ping_proto::ping_c_server::{PingC, PingCServer};
use ping_proto::{PingReply, PingRequest};
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

/// The service name c reports when `OTEL_SERVICE_NAME` is not set.
pub const SERVICE_NAME: &str = "service-c";

/// Runs service c until SIGTERM / Ctrl-C; the process exit code.
pub fn main() -> ExitCode {
    demo_common::run(SERVICE_NAME, serve)
}

/// Binds both listeners, then serves gRPC and HTTP until `shutdown`, finishing in-flight
/// requests. Fails (with the variable named) when either address cannot be bound.
pub async fn serve(shutdown: Shutdown) -> Result<(), BoxError> {
    let grpc_listener = demo_common::bind(C_LISTEN, DEFAULT_C_LISTEN).await?;
    let http_listener = demo_common::bind(C_HTTP_LISTEN, DEFAULT_C_HTTP_LISTEN).await?;
    tracing::info!(
        grpc = %grpc_listener.local_addr()?,
        http = %http_listener.local_addr()?,
        "service-c listening"
    );

    let grpc = tonic::transport::Server::builder()
        .layer(tracebridge::grpc::ServerLayer::new())
        .add_service(PingCServer::new(ServiceC))
        .serve_with_incoming_shutdown(
            TcpIncoming::from(grpc_listener),
            shutdown.clone().requested(),
        );
    let http = axum::serve(http_listener, router()).with_graceful_shutdown(shutdown.requested());

    let (grpc, http) = tokio::join!(grpc, http);
    grpc?;
    http?;
    Ok(())
}

/// The HTTP side: `GET /work`, behind the tracing layer.
pub fn router() -> Router {
    Router::new()
        .route("/work", get(work))
        .layer(tracebridge::http::ServerLayer::new())
}

/// The internal work of c, as its own span under whichever server span is current; its one
/// event (`trace3 finished`, `step = "done"`) becomes a span event of `trace3` (a log in Jaeger).
#[tracing::instrument]
async fn trace3() {
    demo_common::demo_work().await;
    tracing::info!(step = "done", "trace3 finished");
}

#[derive(Debug, serde::Deserialize)]
struct WorkParams {
    #[serde(default)]
    fail: bool,
}

async fn work(Query(params): Query<WorkParams>) -> (StatusCode, &'static str) {
    if params.fail {
        tracing::warn!("service-c /work failed on request (fail=true)");
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "service-c failed on request\n",
        );
    }
    trace3().await;
    (StatusCode::OK, "service-c: work done\n")
}

/// The gRPC side: `ping.PingC`.
#[derive(Clone, Copy, Debug, Default)]
pub struct ServiceC;

#[tonic::async_trait]
impl PingC for ServiceC {
    async fn ping(&self, request: Request<PingRequest>) -> Result<Response<PingReply>, Status> {
        let request = request.into_inner();
        if request.fail {
            // A warning, not an error: the server layer reports the failed call to Sentry once; this
            // line rides along as its breadcrumb.
            tracing::warn!(from = %request.from, "service-c failed on request (fail=c)");
            return Err(Status::internal("service-c failed on request (fail=c)"));
        }
        trace3().await;
        Ok(Response::new(PingReply {
            service: SERVICE_NAME.into(),
            message: "trace3 done".into(),
        }))
    }
}
