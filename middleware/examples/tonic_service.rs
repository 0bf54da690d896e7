//! Tracing added to a tonic server and a tonic client, with tonic-health's generated service
//! (no proto build). Shown in `docs/adding-the-middleware.md`; keep the two in step.
//!
//! ```sh
//! cargo run -p tracebridge --example tonic_service            # the server, until Ctrl-C
//! cargo run -p tracebridge --example tonic_service -- client  # one traced call to it
//! ```

use std::time::Duration;

use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let _guard = tracebridge::init()?; // OTEL_* / SENTRY_* from the environment; flushes on drop
    match std::env::args().nth(1).as_deref() {
        Some("client") => client().await,
        _ => server().await,
    }
}

async fn server() -> Result<(), Error> {
    let (_reporter, health) = tonic_health::server::health_reporter();
    tonic::transport::Server::builder()
        .layer(tracebridge::grpc::ServerLayer::new()) // SERVER span `grpc.health.v1.Health/Check`
        .add_service(health)
        .serve_with_shutdown("127.0.0.1:50051".parse()?, tracebridge::shutdown_signal())
        .await?;
    Ok(())
}

#[tracing::instrument] // the root span of this trace; the CLIENT span nests under it
async fn client() -> Result<(), Error> {
    let channel = tonic::transport::Endpoint::from_static("http://127.0.0.1:50051").connect_lazy();
    let channel = tower::ServiceBuilder::new()
        .layer(tracebridge::grpc::ClientLayer::new()) // CLIENT span + trace headers
        .timeout(Duration::from_secs(5))
        .service(channel);
    let mut health = HealthClient::new(channel);
    let reply = health.check(HealthCheckRequest::default()).await?;
    println!("status: {:?}", reply.into_inner().status());
    Ok(())
}
