//! Demo service b: gRPC `ping.PingB/Ping` on `B_LISTEN` (default `127.0.0.1:50051`). Each call
//! does an HTTP `GET {C_HTTP_URL}/work` on c (default `http://127.0.0.1:8083`) through
//! tracebridge's instrumented reqwest client, so the trace crosses from gRPC to HTTP. A request
//! with `fail` set (a's `?fail=b`) answers INTERNAL without calling c.

use std::process::ExitCode;
use std::time::Duration;

use demo_common::env::{B_LISTEN, C_HTTP_URL, DEFAULT_B_LISTEN, DEFAULT_C_HTTP_URL};
use demo_common::{BoxError, Shutdown};
use ping_proto::ping_b_server::{PingB, PingBServer};
use ping_proto::{PingReply, PingRequest};
use reqwest_middleware::ClientWithMiddleware;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

/// The service name b reports when `OTEL_SERVICE_NAME` is not set.
pub const SERVICE_NAME: &str = "service-b";

/// Runs service b until SIGTERM / Ctrl-C; the process exit code.
pub fn main() -> ExitCode {
    demo_common::run(SERVICE_NAME, serve)
}

/// Binds `B_LISTEN` and serves `PingB` until `shutdown`, finishing in-flight requests.
pub async fn serve(shutdown: Shutdown) -> Result<(), BoxError> {
    let listener = demo_common::bind(B_LISTEN, DEFAULT_B_LISTEN).await?;
    let service = ServiceB::from_env()?;
    tracing::info!(grpc = %listener.local_addr()?, c = %service.work_url, "service-b listening");
    tonic::transport::Server::builder()
        .layer(tracebridge::grpc::ServerLayer::new())
        .add_service(PingBServer::new(service))
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), shutdown.requested())
        .await?;
    Ok(())
}

/// The gRPC side: `ping.PingB`, holding the instrumented HTTP client to c.
#[derive(Clone, Debug)]
pub struct ServiceB {
    http: ClientWithMiddleware,
    work_url: String,
}

impl ServiceB {
    /// c's `/work` from `C_HTTP_URL`, and a client with a bounded timeout (long enough for the
    /// demo's artificial delay) so a stuck c surfaces as an error instead of a hung request.
    pub fn from_env() -> Result<Self, BoxError> {
        let base = demo_common::env::base_url(C_HTTP_URL, DEFAULT_C_HTTP_URL);
        let timeout = Duration::from_secs(10) + demo_common::demo_delay() * 4;
        let client = reqwest::Client::builder().timeout(timeout).build()?;
        Ok(ServiceB {
            http: tracebridge::http::client(client),
            work_url: format!("{base}/work"),
        })
    }
}

#[tonic::async_trait]
impl PingB for ServiceB {
    async fn ping(&self, request: Request<PingRequest>) -> Result<Response<PingReply>, Status> {
        let request = request.into_inner();
        if request.fail {
            tracing::error!(from = %request.from, "service-b failed on request (fail=b)");
            return Err(Status::internal("service-b failed on request (fail=b)"));
        }
        let response = self.http.get(&self.work_url).send().await.map_err(|e| {
            tracing::error!(error = %e, url = %self.work_url, "service-b cannot reach service-c");
            Status::unavailable(format!("service-c unreachable: {e}"))
        })?;
        let status = response.status();
        if !status.is_success() {
            tracing::error!(%status, "service-c /work failed");
            return Err(Status::internal(format!(
                "service-c /work answered {status}"
            )));
        }
        Ok(Response::new(PingReply {
            service: SERVICE_NAME.into(),
            message: format!("service-c /work: {status}"),
        }))
    }
}
