//! The variant servers: one process per run, pinned by the runner to its own core.
//!
//! Every variant serves the same handler (`GET /hello` → `ok`, or a unary `ping.PingC/Ping`)
//! on a Tokio runtime with one worker (what `#[tokio::main]` gives on one core). The traced
//! variants export by OTLP/gRPC to `OTEL_EXPORTER_OTLP_ENDPOINT` with the same batch
//! processor (the SDK's async-runtime one on a one-thread export runtime, `OTEL_BSP_*` from the
//! environment), so what differs between them is the instrumentation, not the export path.
//! SIGTERM stops the server; dropping the telemetry flushes, then the process exits.

use std::error::Error;
use std::net::SocketAddr;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use ping_proto::ping_c_server::{PingC, PingCServer};
use ping_proto::{PingReply, PingRequest};
use tonic::transport::server::TcpIncoming;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::variant::{Proto, Variant};

type BoxError = Box<dyn Error + Send + Sync>;

async fn hello() -> &'static str {
    "ok"
}

/// The gRPC handler: as trivial as `hello`.
#[derive(Clone, Copy, Debug, Default)]
struct Pinger;

#[tonic::async_trait]
impl PingC for Pinger {
    async fn ping(
        &self,
        _request: tonic::Request<PingRequest>,
    ) -> Result<tonic::Response<PingReply>, tonic::Status> {
        Ok(tonic::Response::new(PingReply {
            service: "bench".into(),
            message: "ok".into(),
        }))
    }
}

/// Runs `variant` on `addr` until SIGTERM, then flushes its telemetry.
pub fn serve(variant: Variant, addr: SocketAddr) -> Result<(), BoxError> {
    let telemetry = Telemetry::install(variant)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("bench-server")
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        match variant.proto() {
            Proto::Http => {
                let app = http_app(variant);
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = tracebridge::shutdown_signal().await;
                    })
                    .await?;
            }
            Proto::Grpc => serve_grpc(variant, listener).await?,
        }
        Ok::<(), BoxError>(())
    })?;
    rt.shutdown_timeout(Duration::from_secs(5));
    drop(telemetry);
    Ok(())
}

fn http_app(variant: Variant) -> Router {
    let router = Router::new().route("/hello", get(hello));
    match variant {
        Variant::AxumBare => router,
        Variant::AxumTracebridge => router.layer(tracebridge::http::ServerLayer::new()),
        Variant::AxumTowerHttp => router.layer(
            tower_http::trace::TraceLayer::new_for_http()
                .make_span_with(tower_http_span)
                .on_response(tower_http_on_response),
        ),
        Variant::AxumTracingOtel => router
            .layer(axum_tracing_opentelemetry::middleware::OtelInResponseLayer)
            .layer(axum_tracing_opentelemetry::middleware::OtelAxumLayer::default()),
        Variant::AxumSentry => router.layer(
            tower::ServiceBuilder::new()
                .layer(sentry::integrations::tower::NewSentryLayer::<
                    http::Request<axum::body::Body>,
                >::new_from_top())
                .layer(sentry::integrations::tower::SentryHttpLayer::new().enable_transaction()),
        ),
        other => unreachable!("{} is not an HTTP variant", other.name()),
    }
}

async fn serve_grpc(variant: Variant, listener: tokio::net::TcpListener) -> Result<(), BoxError> {
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let shutdown = async {
        let _ = tracebridge::shutdown_signal().await;
    };
    let service = PingCServer::new(Pinger);
    let mut builder = tonic::transport::Server::builder();
    match variant {
        Variant::TonicBare => {
            builder
                .add_service(service)
                .serve_with_incoming_shutdown(incoming, shutdown)
                .await?
        }
        Variant::TonicTracebridge => {
            builder
                .layer(tracebridge::grpc::ServerLayer::new())
                .add_service(service)
                .serve_with_incoming_shutdown(incoming, shutdown)
                .await?
        }
        Variant::TonicTracingOtel => {
            builder
                .layer(tonic_tracing_opentelemetry::middleware::server::OtelGrpcLayer::default())
                .add_service(service)
                .serve_with_incoming_shutdown(incoming, shutdown)
                .await?
        }
        other => unreachable!("{} is not a gRPC variant", other.name()),
    }
    Ok(())
}

/// tower-http's TraceLayer as its docs and tracing-opentelemetry's examples combine them: an
/// INFO span named `{method} {route}` with a few semconv fields, the W3C parent extracted by
/// the global propagator, the status recorded on the response.
fn tower_http_span(req: &http::Request<axum::body::Body>) -> tracing::Span {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("", |m| m.as_str());
    let span = tracing::info_span!(
        "HTTP request",
        otel.name = %format_args!("{} {}", req.method(), route),
        otel.kind = "server",
        http.request.method = %req.method(),
        http.route = route,
        url.path = req.uri().path(),
        http.response.status_code = tracing::field::Empty,
    );
    let parent = opentelemetry::global::get_text_map_propagator(|p| {
        p.extract(&opentelemetry_http::HeaderExtractor(req.headers()))
    });
    let _ = span.set_parent(parent);
    span
}

fn tower_http_on_response(
    res: &http::Response<axum::body::Body>,
    _latency: Duration,
    span: &tracing::Span,
) {
    span.record("http.response.status_code", res.status().as_u16());
}

/// What a variant installed; dropping it flushes (the fields are held only for their `Drop`).
#[allow(dead_code)]
enum Telemetry {
    None,
    Tracebridge(tracebridge::Guard),
    Otel(OtelPipeline),
    Sentry(sentry::ClientInitGuard),
}

impl Telemetry {
    fn install(variant: Variant) -> Result<Telemetry, BoxError> {
        Ok(match variant {
            Variant::AxumBare | Variant::TonicBare => Telemetry::None,
            Variant::AxumTracebridge | Variant::TonicTracebridge => Telemetry::Tracebridge(
                tracebridge::Builder::from_env()
                    .service_name(variant.name())
                    .install()?,
            ),
            Variant::AxumTowerHttp | Variant::AxumTracingOtel | Variant::TonicTracingOtel => {
                Telemetry::Otel(OtelPipeline::install(variant.name())?)
            }
            Variant::AxumSentry => {
                let dsn = std::env::var("SENTRY_DSN")
                    .map_err(|_| "the sentry variant needs SENTRY_DSN")?;
                let mut options = sentry::ClientOptions::new()
                    .traces_sample_rate(1.0)
                    .send_default_pii(false);
                options.dsn = Some(dsn.parse()?);
                Telemetry::Sentry(sentry::init(options))
            }
        })
    }
}

/// The comparison stacks' OpenTelemetry setup, built like tracebridge's `init` so the export
/// path is the same: W3C propagator, parent-based always-on sampler, the SDK's thread-based
/// batch processor with exports run on a one-thread export runtime (tracebridge's
/// `ReportingExporter`), OTLP/gRPC; a `tracing` registry with a fmt layer (INFO, the default
/// field formatting) and the tracing-opentelemetry layer (INFO).
struct OtelPipeline {
    provider: SdkTracerProvider,
    export_runtime: Option<tokio::runtime::Runtime>,
}

impl OtelPipeline {
    fn install(service: &str) -> Result<OtelPipeline, BoxError> {
        let cfg = tracebridge::config::Config::from_env()?;
        let endpoint = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
            .map_err(|_| "OTEL_EXPORTER_OTLP_ENDPOINT is not set")?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("bench-export")
            .enable_all()
            .build()?;
        let processor = {
            let _enter = rt.enter();
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .build()?;
            let exporter = tracebridge::export::ReportingExporter::new(
                exporter,
                tracebridge::export::REPORT_INTERVAL,
            )
            .on_runtime(rt.handle().clone(), cfg.export_cutoff());
            opentelemetry_sdk::trace::BatchSpanProcessor::builder(exporter)
                .with_batch_config(cfg.batch.to_sdk())
                .build()
        };
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_resource(
                opentelemetry_sdk::Resource::builder_empty()
                    .with_service_name(service.to_owned())
                    .build(),
            )
            .build();
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        opentelemetry::global::set_tracer_provider(provider.clone());
        tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_filter(EnvFilter::new("info")),
            )
            .with(
                tracing_opentelemetry::layer()
                    .with_tracer(provider.tracer("bench"))
                    .with_filter(EnvFilter::new("info")),
            )
            .try_init()?;
        Ok(OtelPipeline {
            provider,
            export_runtime: Some(rt),
        })
    }
}

impl Drop for OtelPipeline {
    fn drop(&mut self) {
        // Called outside any runtime; the processor's thread drives the exports on the export
        // runtime. Its flush message has its own channel, so a full span queue cannot refuse it.
        let _ = self.provider.force_flush();
        let _ = self.provider.shutdown();
        if let Some(rt) = self.export_runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(1));
        }
    }
}
