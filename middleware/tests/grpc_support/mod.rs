//! A gRPC test service with generated client and server (tonic-health's Health service; no
//! build script, no protoc): its behaviour is chosen by the requested service name.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::Stream;
use tonic::transport::{Channel, Endpoint, Server};
use tonic::{Request, Response, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

use tracebridge::grpc::{ClientLayer, ServerLayer};

/// A health service whose behaviour is chosen by the requested service name.
#[derive(Clone, Default)]
pub struct Behaviour {
    pub metadata: Arc<Mutex<Vec<tonic::metadata::MetadataMap>>>,
}

#[tracing::instrument(level = "info")]
fn look_up(name: &str) -> ServingStatus {
    ServingStatus::Serving
}

pub fn serving() -> HealthCheckResponse {
    HealthCheckResponse {
        status: ServingStatus::Serving as i32,
    }
}

#[tonic::async_trait]
impl Health for Behaviour {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        self.metadata
            .lock()
            .unwrap()
            .push(request.metadata().clone());
        match request.get_ref().service.as_str() {
            "internal" => Err(Status::internal("boom")),
            "not_found" => Err(Status::not_found("nobody here")),
            "panic" => panic!("handler exploded"),
            "slow" => {
                std::future::pending::<()>().await;
                unreachable!()
            }
            name => Ok(Response::new(HealthCheckResponse {
                status: look_up(name) as i32,
            })),
        }
    }

    type WatchStream =
        Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send + 'static>>;

    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let items = match request.get_ref().service.as_str() {
            "data_loss" => vec![Ok(serving()), Err(Status::data_loss("lost"))],
            _ => vec![Ok(serving()), Ok(serving())],
        };
        Ok(Response::new(Box::pin(futures_util::stream::iter(items))))
    }
}

pub async fn serve(layer: ServerLayer) -> (SocketAddr, Behaviour) {
    let behaviour = Behaviour::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = HealthServer::new(behaviour.clone());
    tokio::spawn(async move {
        Server::builder()
            .layer(layer)
            .add_service(service)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
            .await
            .unwrap()
    });
    (addr, behaviour)
}

pub fn channel(addr: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy()
}

/// The quick-start shape: tracing layer + timeout + concurrency limit, generated client.
pub fn client(
    addr: SocketAddr,
) -> HealthClient<
    tracebridge::grpc::ClientService<
        tower::timeout::Timeout<tower::limit::ConcurrencyLimit<Channel>>,
    >,
> {
    let service = tower::ServiceBuilder::new()
        .layer(ClientLayer::new())
        .timeout(Duration::from_secs(30))
        .concurrency_limit(16)
        .service(channel(addr));
    HealthClient::new(service)
}

pub fn check(name: &str) -> HealthCheckRequest {
    HealthCheckRequest {
        service: name.to_owned(),
    }
}

pub const CHECK: &str = "grpc.health.v1.Health/Check";
pub const WATCH: &str = "grpc.health.v1.Health/Watch";
