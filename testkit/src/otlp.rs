//! [`OtlpReceiver`]: a real OTLP trace collector on loopback that keeps spans in memory.
//!
//! It stands in for Jaeger (which ingests OTLP) in tests and in the `mesh` demo. Both OTLP
//! transports are served, each on its own port:
//!
//! - OTLP/gRPC: `opentelemetry.proto.collector.trace.v1.TraceService/Export` through
//!   `opentelemetry-proto`'s generated `TraceServiceServer` on tonic (gzip accepted);
//! - OTLP/HTTP: `POST /v1/traces` with a protobuf `ExportTraceServiceRequest` body
//!   (`application/x-protobuf`) or OTLP/JSON (`application/json`), optionally
//!   `Content-Encoding: gzip` or `deflate`.
//!
//! With [`OtlpReceiver::start_forwarding`] it is also a tee: every export it receives is
//! forwarded, in the protocol it arrived in, to another OTLP endpoint (a real Jaeger) before it
//! is answered, so a test sees the very same spans in memory and in that backend.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use tracebridge_testkit::OtlpReceiver;
//!
//! let receiver = OtlpReceiver::start().await?;
//! // point an exporter at receiver.grpc_endpoint() or receiver.http_endpoint() ...
//! let spans = receiver
//!     .wait_for(|spans| spans.iter().any(|s| s.name == "GET /trace"), Duration::from_secs(10))
//!     .await?;
//! # let _ = spans;
//! receiver.shutdown().await;
//! # Ok(()) }
//! ```

use std::io::{self, Read};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::codec::CompressionEncoding;

use crate::record::{decode_request, SpanRecord};
use crate::store::Store;

/// Exports can be large (a batch of 512 spans with attributes); axum's 2 MB default is too small.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// How long `shutdown()` waits for open connections to drain before aborting the server tasks.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// An in-memory OTLP trace receiver serving gRPC and HTTP on two loopback ports.
///
/// Dropping it stops both servers (in the background); [`OtlpReceiver::shutdown`] stops them
/// and waits.
#[derive(Debug)]
pub struct OtlpReceiver {
    store: Arc<Store<SpanRecord>>,
    forward_errors: Arc<Mutex<Vec<String>>>,
    grpc_addr: SocketAddr,
    http_addr: SocketAddr,
    servers: Vec<Server>,
}

#[derive(Debug)]
struct Server {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Server {
    fn signal(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.signal();
    }
}

impl OtlpReceiver {
    /// Starts both servers on free loopback ports (`127.0.0.1:0`).
    pub async fn start() -> io::Result<OtlpReceiver> {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        OtlpReceiver::start_on(any, any).await
    }

    /// Starts a tee on free loopback ports: every export is kept in memory *and* forwarded to
    /// `forward` in the protocol it arrived in (gRPC to [`Forward::grpc`], HTTP bodies as sent —
    /// protobuf or JSON, compressed or not — to [`Forward::http`]), before the exporter gets its
    /// answer. A forwarding failure does not fail the export (the exporter would retry and
    /// duplicate spans in memory); it is recorded in [`OtlpReceiver::forward_errors`].
    pub async fn start_forwarding(forward: Forward) -> io::Result<OtlpReceiver> {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        OtlpReceiver::start_inner(any, any, Some(forward)).await
    }

    /// Starts the gRPC server on `grpc_addr` and the HTTP server on `http_addr` (for a demo
    /// binary that wants the standard 4317/4318 ports, or any fixed address).
    pub async fn start_on(
        grpc_addr: SocketAddr,
        http_addr: SocketAddr,
    ) -> io::Result<OtlpReceiver> {
        OtlpReceiver::start_inner(grpc_addr, http_addr, None).await
    }

    async fn start_inner(
        grpc_addr: SocketAddr,
        http_addr: SocketAddr,
        forward: Option<Forward>,
    ) -> io::Result<OtlpReceiver> {
        let store = Store::new();
        let forward_errors = Arc::new(Mutex::new(Vec::new()));
        let forwarder = match forward {
            None => None,
            Some(f) => Some(Arc::new(Forwarder::new(f, forward_errors.clone())?)),
        };

        let grpc_listener = TcpListener::bind(grpc_addr).await?;
        let grpc_addr = grpc_listener.local_addr()?;
        let http_listener = TcpListener::bind(http_addr).await?;
        let http_addr = http_listener.local_addr()?;

        let grpc = {
            let (stop, stopped) = oneshot::channel::<()>();
            let service = TraceServiceServer::new(GrpcTraceService {
                store: store.clone(),
                forwarder: forwarder.clone(),
            })
            .accept_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(MAX_BODY);
            let incoming = tonic::transport::server::TcpIncoming::from(grpc_listener);
            let task = tokio::spawn(async move {
                let result = tonic::transport::Server::builder()
                    .add_service(service)
                    .serve_with_incoming_shutdown(incoming, async {
                        let _ = stopped.await;
                    })
                    .await;
                if let Err(err) = result {
                    eprintln!("tracebridge-testkit: OTLP/gRPC receiver stopped: {err}");
                }
            });
            Server {
                stop: Some(stop),
                task: Some(task),
            }
        };

        let http = {
            let (stop, stopped) = oneshot::channel::<()>();
            let app = Router::new()
                .route("/v1/traces", post(export_http))
                .layer(DefaultBodyLimit::max(MAX_BODY))
                .with_state(HttpState {
                    store: store.clone(),
                    forwarder,
                });
            let task = tokio::spawn(async move {
                let result = axum::serve(http_listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await;
                if let Err(err) = result {
                    eprintln!("tracebridge-testkit: OTLP/HTTP receiver stopped: {err}");
                }
            });
            Server {
                stop: Some(stop),
                task: Some(task),
            }
        };

        Ok(OtlpReceiver {
            store,
            forward_errors,
            grpc_addr,
            http_addr,
            servers: vec![grpc, http],
        })
    }

    /// The gRPC endpoint for `OTEL_EXPORTER_OTLP_ENDPOINT` with protocol `grpc`,
    /// e.g. `http://127.0.0.1:41234`.
    pub fn grpc_endpoint(&self) -> String {
        format!("http://{}", self.grpc_addr)
    }

    /// The HTTP base endpoint for `OTEL_EXPORTER_OTLP_ENDPOINT` with protocol `http/protobuf`,
    /// e.g. `http://127.0.0.1:41235`; exporters append `/v1/traces`.
    pub fn http_endpoint(&self) -> String {
        format!("http://{}", self.http_addr)
    }

    /// The full OTLP/HTTP traces URL (`{http_endpoint}/v1/traces`), for
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or an exporter's `with_endpoint`.
    pub fn http_traces_url(&self) -> String {
        format!("{}/v1/traces", self.http_endpoint())
    }

    /// The bound gRPC address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    /// The bound HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Every span received so far, in arrival order.
    pub fn spans(&self) -> Vec<SpanRecord> {
        self.store.snapshot()
    }

    /// The spans of one trace, in arrival order.
    pub fn spans_of(&self, trace_id: &str) -> Vec<SpanRecord> {
        let mut spans = self.spans();
        spans.retain(|s| s.trace_id == trace_id);
        spans
    }

    /// Every span received so far, grouped into traces (see [`crate::trace::group`]).
    pub fn traces(&self) -> Vec<crate::trace::Trace> {
        crate::trace::group(&self.spans())
    }

    /// Forgets every span received so far (the request count is kept).
    pub fn clear(&self) {
        self.store.clear();
    }

    /// Every failure to forward an export (see [`OtlpReceiver::start_forwarding`]), in order;
    /// empty when every export reached the other endpoint or the receiver does not forward.
    pub fn forward_errors(&self) -> Vec<String> {
        self.forward_errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Number of export requests received (gRPC and HTTP, including empty and malformed ones).
    pub fn request_count(&self) -> u64 {
        self.store.request_count()
    }

    /// Waits until `pred(all spans received)` is true and returns those spans. On timeout the
    /// error describes everything that did arrive, one span per line.
    pub async fn wait_for<F>(&self, pred: F, timeout: Duration) -> Result<Vec<SpanRecord>, String>
    where
        F: FnMut(&[SpanRecord]) -> bool,
    {
        self.store.wait_for(pred, timeout).await.map_err(|spans| {
            let mut msg = format!(
                "timed out after {timeout:?} waiting for spans: {} spans in {} export requests",
                spans.len(),
                self.request_count()
            );
            for span in &spans {
                msg.push_str("\n  ");
                msg.push_str(&span.summary());
            }
            msg
        })
    }

    /// Waits until at least `n` spans have arrived.
    pub async fn wait_for_spans(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<SpanRecord>, String> {
        self.wait_for(|spans| spans.len() >= n, timeout).await
    }

    /// Waits until trace `trace_id` has at least `n` spans, and returns that trace's spans.
    pub async fn wait_for_trace(
        &self,
        trace_id: &str,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<SpanRecord>, String> {
        let mut spans = self
            .wait_for(
                |spans| spans.iter().filter(|s| s.trace_id == trace_id).count() >= n,
                timeout,
            )
            .await?;
        spans.retain(|s| s.trace_id == trace_id);
        Ok(spans)
    }

    /// Stops both servers and waits for them (open connections get a few seconds to drain,
    /// then are cut).
    pub async fn shutdown(mut self) {
        for server in &mut self.servers {
            server.signal();
        }
        for server in &mut self.servers {
            if let Some(mut task) = server.task.take() {
                if tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
                    .await
                    .is_err()
                {
                    task.abort();
                }
            }
        }
    }
}

/// Where a tee ([`OtlpReceiver::start_forwarding`]) forwards what it receives.
#[derive(Clone, Debug, Default)]
pub struct Forward {
    /// OTLP/gRPC endpoint (e.g. `http://127.0.0.1:4317`) for exports received over gRPC;
    /// `None` keeps them in memory only.
    pub grpc: Option<String>,
    /// OTLP/HTTP base endpoint (e.g. `http://127.0.0.1:4318`; `/v1/traces` is appended) for
    /// exports received over HTTP; `None` keeps them in memory only.
    pub http: Option<String>,
}

#[derive(Debug)]
struct Forwarder {
    grpc: Option<TraceServiceClient<tonic::transport::Channel>>,
    http: Option<(reqwest::Client, String)>,
    errors: Arc<Mutex<Vec<String>>>,
}

impl Forwarder {
    fn new(forward: Forward, errors: Arc<Mutex<Vec<String>>>) -> io::Result<Forwarder> {
        let grpc = match forward.grpc {
            None => None,
            Some(endpoint) => {
                let channel = tonic::transport::Endpoint::from_shared(endpoint.clone())
                    .map_err(|e| {
                        io::Error::new(
                            io::ErrorKind::InvalidInput,
                            format!("bad forward endpoint {endpoint:?}: {e}"),
                        )
                    })?
                    .connect_lazy();
                Some(TraceServiceClient::new(channel).max_encoding_message_size(MAX_BODY))
            }
        };
        let http = forward.http.map(|endpoint| {
            (
                reqwest::Client::new(),
                format!("{}/v1/traces", endpoint.trim_end_matches('/')),
            )
        });
        Ok(Forwarder { grpc, http, errors })
    }

    fn error(&self, message: String) {
        eprintln!("tracebridge-testkit: {message}");
        self.errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(message);
    }

    async fn grpc(&self, request: ExportTraceServiceRequest) {
        if let Some(client) = &self.grpc {
            if let Err(status) = client.clone().export(request).await {
                self.error(format!("forwarding an OTLP/gRPC export failed: {status}"));
            }
        }
    }

    async fn http(&self, headers: &HeaderMap, body: Bytes) {
        let Some((client, url)) = &self.http else {
            return;
        };
        let mut request = client.post(url).body(body);
        for name in [header::CONTENT_TYPE, header::CONTENT_ENCODING] {
            if let Some(value) = headers.get(&name) {
                request = request.header(name, value);
            }
        }
        match request.send().await {
            Ok(response) if response.status().is_success() => {}
            Ok(response) => {
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                self.error(format!(
                    "forwarding an OTLP/HTTP export to {url} got {status}: {text}"
                ));
            }
            Err(e) => self.error(format!(
                "forwarding an OTLP/HTTP export to {url} failed: {e}"
            )),
        }
    }
}

struct GrpcTraceService {
    store: Arc<Store<SpanRecord>>,
    forwarder: Option<Arc<Forwarder>>,
}

#[derive(Clone)]
struct HttpState {
    store: Arc<Store<SpanRecord>>,
    forwarder: Option<Arc<Forwarder>>,
}

#[tonic::async_trait]
impl TraceService for GrpcTraceService {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.store.push_request(decode_request(request.get_ref()));
        if let Some(forwarder) = &self.forwarder {
            forwarder.grpc(request.into_inner()).await;
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// Undoes `Content-Encoding` (gzip / deflate, as OTLP exporters may send).
pub(crate) fn decode_body(headers: &HeaderMap, body: Bytes) -> Result<Bytes, String> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    let mut out = Vec::new();
    match encoding.as_str() {
        "" | "identity" => return Ok(body),
        "gzip" | "x-gzip" => flate2::read::MultiGzDecoder::new(&body[..])
            .read_to_end(&mut out)
            .map_err(|e| format!("bad gzip body: {e}"))?,
        "deflate" => {
            // HTTP "deflate" is zlib-wrapped, but some clients send raw deflate: try both.
            if flate2::read::ZlibDecoder::new(&body[..])
                .read_to_end(&mut out)
                .is_err()
            {
                out.clear();
                flate2::read::DeflateDecoder::new(&body[..])
                    .read_to_end(&mut out)
                    .map_err(|e| format!("bad deflate body: {e}"))?
            } else {
                out.len()
            }
        }
        other => return Err(format!("unsupported Content-Encoding {other:?}")),
    };
    Ok(Bytes::from(out))
}

async fn export_http(
    State(HttpState { store, forwarder }): State<HttpState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let raw = forwarder.as_ref().map(|_| body.clone());
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    let decoded = decode_body(&headers, body).and_then(|body| {
        if json {
            serde_json::from_slice::<ExportTraceServiceRequest>(&body)
                .map_err(|e| format!("bad OTLP/JSON body: {e}"))
        } else {
            ExportTraceServiceRequest::decode(body).map_err(|e| format!("bad OTLP protobuf: {e}"))
        }
    });
    match decoded {
        Ok(request) => {
            store.push_request(decode_request(&request));
            if let (Some(forwarder), Some(raw)) = (&forwarder, raw) {
                forwarder.http(&headers, raw).await;
            }
            if json {
                ([(header::CONTENT_TYPE, "application/json")], "{}").into_response()
            } else {
                (
                    [(header::CONTENT_TYPE, "application/x-protobuf")],
                    ExportTraceServiceResponse::default().encode_to_vec(),
                )
                    .into_response()
            }
        }
        Err(message) => {
            // Count the malformed request too: tests of "exporter sent something" see it.
            store.push_request([]);
            (StatusCode::BAD_REQUEST, message).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[tokio::test]
    async fn http_accepts_protobuf_gzip_and_json_and_rejects_garbage() {
        use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
        let receiver = OtlpReceiver::start().await.unwrap();
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![Span {
                        trace_id: vec![0x11; 16],
                        span_id: vec![0x22; 8],
                        name: "pb".into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let client = reqwest::Client::new();
        let url = receiver.http_traces_url();

        let resp = client
            .post(&url)
            .header("content-type", "application/x-protobuf")
            .body(request.encode_to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.headers()["content-type"],
            "application/x-protobuf",
            "OTLP/HTTP answers protobuf to protobuf"
        );

        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&request.encode_to_vec()).unwrap();
        let resp = client
            .post(&url)
            .header("content-type", "application/x-protobuf")
            .header("content-encoding", "gzip")
            .body(gz.finish().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);

        // OTLP/JSON: ids are hex strings, kind an integer.
        let json = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"js"}}]},
            "scopeSpans":[{"scope":{"name":"s"},"spans":[{"traceId":"5b8efff798038103d269b633813fc60c",
            "spanId":"eee19b7ec3c1b174","parentSpanId":"eee19b7ec3c1b173","name":"json","kind":2,
            "startTimeUnixNano":"1","endTimeUnixNano":"2","attributes":[{"key":"n","value":{"intValue":"3"}}]}]}]}]}"#;
        let resp = client
            .post(&url)
            .header("content-type", "application/json")
            .body(json)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());

        let resp = client
            .post(&url)
            .header("content-type", "application/x-protobuf")
            .body(vec![0xff, 0xff, 0xff])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400);

        let spans = receiver.spans();
        assert_eq!(receiver.request_count(), 4);
        let traces = receiver.traces();
        assert_eq!(traces.len(), 2);
        assert_eq!(traces[0].trace_id(), "11".repeat(16));
        assert_eq!(traces[0].len(), 2);
        assert_eq!(spans.len(), 3);
        assert_eq!(spans[0].name, "pb");
        assert_eq!(spans[0].trace_id, "11".repeat(16));
        assert_eq!(spans[1].name, "pb");
        let j = &spans[2];
        assert_eq!(j.name, "json");
        assert_eq!(j.service_name, "js");
        assert_eq!(j.trace_id, "5b8efff798038103d269b633813fc60c");
        assert_eq!(j.parent_span_id.as_deref(), Some("eee19b7ec3c1b173"));
        assert_eq!(j.kind, crate::SpanKind::Server);
        assert_eq!(j.attr_i64("n"), Some(3));

        receiver.clear();
        assert!(receiver.spans().is_empty());
        let err = receiver
            .wait_for_spans(1, Duration::from_millis(10))
            .await
            .unwrap_err();
        assert!(err.contains("0 spans in 4 export requests"), "{err}");
        receiver.shutdown().await;
    }

    #[tokio::test]
    async fn grpc_accepts_gzip_and_shutdown_closes_both_ports() {
        use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
        let receiver = OtlpReceiver::start().await.unwrap();
        let mut client = TraceServiceClient::connect(receiver.grpc_endpoint())
            .await
            .unwrap()
            .send_compressed(CompressionEncoding::Gzip);
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![Span {
                        trace_id: vec![0xaa; 16],
                        span_id: vec![0xbb; 8],
                        name: "gz".into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        client.export(request).await.unwrap();
        assert_eq!(receiver.request_count(), 1);
        let spans = receiver.spans();
        assert_eq!(spans.len(), 1);
        assert_eq!(spans[0].name, "gz");
        assert_eq!(spans[0].span_id, "bb".repeat(8));
        drop(client);

        let (grpc, http) = (receiver.grpc_addr(), receiver.http_addr());
        receiver.shutdown().await;
        assert!(tokio::net::TcpStream::connect(grpc).await.is_err());
        assert!(tokio::net::TcpStream::connect(http).await.is_err());
    }
}
