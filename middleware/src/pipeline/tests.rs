//! The pipeline against real servers over real sockets: the testkit's OTLP receiver (both
//! protocols, decoding the wire format) for delivery, and scripted HTTP (axum) and gRPC (tonic)
//! collectors for the retry rules, partial success and compression.
//!
//! Each test starts its own [`Pipeline`] (no global state) with a log subscriber of its own;
//! waits are bounded polls, and no duration is asserted except the lower bounds a collector
//! asked for (`Retry-After`, `RetryInfo`): a retry sooner than that is a bug, not noise.

use std::collections::{BTreeMap, VecDeque};
use std::io::Read as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::KeyValue;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_sdk::trace::{SpanData, SpanProcessor as _};
use prost::Message as _;
use tracebridge_testkit::faults::SlowProxy;
use tracebridge_testkit::OtlpReceiver;

use super::processor::QueueProcessor;
use super::Pipeline;
use crate::config::Config;
use crate::test_support::Captured;

const SERVICE: &str = "pipeline-test";

/// A sampled SERVER span with ids and a name derived from `i`.
fn span(i: u64) -> SpanData {
    let now = SystemTime::now();
    SpanData {
        span_context: SpanContext::new(
            TraceId::from(0x4bf9_2f35_77b3_4da6_a3ce_0000_0000_0000_u128 + u128::from(i)),
            SpanId::from(0x00f0_67aa_0000_0000_u64 + i),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id: SpanId::INVALID,
        parent_span_is_remote: false,
        span_kind: SpanKind::Server,
        name: format!("GET /item/{i}").into(),
        start_time: now,
        end_time: now,
        attributes: vec![KeyValue::new("item", i as i64)],
        dropped_attributes_count: 0,
        events: Default::default(),
        links: Default::default(),
        status: Status::Unset,
        instrumentation_scope: Default::default(),
    }
}

/// span id (hex) → name, as the spans of `ids` were made by [`span`].
fn expected(ids: impl IntoIterator<Item = u64>) -> BTreeMap<String, String> {
    ids.into_iter()
        .map(|i| {
            let s = span(i);
            (s.span_context.span_id().to_string(), s.name.into_owned())
        })
        .collect()
}

/// One pipeline with its own log capture.
struct Harness {
    pipeline: Option<Pipeline>,
    processor: Arc<QueueProcessor>,
    logs: Captured,
    dispatch: tracing::Dispatch,
}

impl Harness {
    fn start(vars: &[(&str, &str)]) -> Harness {
        let mut vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        vars.push(("OTEL_SERVICE_NAME".into(), SERVICE.into()));
        let cfg = Config::from_lookup(|name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
        .expect("config");
        let resource = opentelemetry_sdk::Resource::builder_empty()
            .with_attribute(KeyValue::new("service.name", SERVICE))
            .build();
        let logs = Captured::default();
        let writer = logs.clone();
        let dispatch = tracing::Dispatch::new(
            tracing_subscriber::fmt()
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .finish(),
        );
        let (pipeline, processor) = tracing::dispatcher::with_default(&dispatch, || {
            Pipeline::start(&cfg, cfg.endpoint.as_ref().expect("endpoint"), &resource)
        })
        .expect("pipeline");
        Harness {
            pipeline: Some(pipeline),
            processor: Arc::new(processor),
            logs,
            dispatch,
        }
    }

    /// Ends the spans `ids` (into the queue, as the SDK's `on_end` does).
    fn end(&self, ids: impl IntoIterator<Item = u64>) {
        tracing::dispatcher::with_default(&self.dispatch, || {
            for i in ids {
                self.processor.on_end(span(i));
            }
        });
    }

    /// `force_flush`, off the async test's threads; whether everything was exported.
    async fn flush(&self) -> bool {
        let processor = self.processor.clone();
        tokio::time::timeout(
            Duration::from_secs(60),
            tokio::task::spawn_blocking(move || processor.force_flush().is_ok()),
        )
        .await
        .expect("flush must return")
        .unwrap()
    }

    /// Shuts the pipeline down; whether everything was exported, and the log output.
    async fn shutdown(mut self) -> (bool, String) {
        let mut pipeline = self.pipeline.take().unwrap();
        let done = tokio::time::timeout(
            Duration::from_secs(60),
            tokio::task::spawn_blocking(move || pipeline.shutdown()),
        )
        .await
        .expect("shutdown must return")
        .unwrap();
        (done, self.logs.text())
    }
}

/// span id → name of what `receiver` holds, after checking trace ids, kind and service.
fn received(receiver: &OtlpReceiver) -> BTreeMap<String, String> {
    let spans = receiver.spans();
    let mut out = BTreeMap::new();
    for s in &spans {
        assert_eq!(s.service_name, SERVICE, "{}", s.summary());
        assert_eq!(
            s.kind,
            tracebridge_testkit::SpanKind::Server,
            "{}",
            s.summary()
        );
        let i: u64 = s.name.strip_prefix("GET /item/").unwrap().parse().unwrap();
        assert_eq!(
            s.trace_id,
            span(i).span_context.trace_id().to_string(),
            "{}",
            s.summary()
        );
        assert!(
            out.insert(s.span_id.clone(), s.name.clone()).is_none(),
            "{} received twice",
            s.span_id
        );
    }
    out
}

async fn delivers_exactly(protocol: &str, compression: &str) {
    let receiver = OtlpReceiver::start().await.unwrap();
    let endpoint = match protocol {
        "grpc" => receiver.grpc_endpoint(),
        _ => receiver.http_endpoint(),
    };
    let h = Harness::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", compression),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "7"),
        ("OTEL_BSP_SCHEDULE_DELAY", "3600000"),
    ]);
    h.end(0..20);
    assert!(h.flush().await, "flush exported everything");
    assert_eq!(received(&receiver), expected(0..20));
    h.end(20..23);
    let (done, logs) = h.shutdown().await;
    assert!(done, "{logs}");
    assert_eq!(received(&receiver), expected(0..23));
    // 7 + 7 + 6 at the flush (two full batches, then the rest), 3 at shutdown.
    assert_eq!(receiver.request_count(), 4);
    assert!(!logs.contains("WARN"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_delivers_exactly_the_spans_ended() {
    delivers_exactly("grpc", "none").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_protobuf_delivers_exactly_the_spans_ended() {
    delivers_exactly("http/protobuf", "none").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_gzip_delivers_exactly_the_spans_ended() {
    delivers_exactly("grpc", "gzip").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_gzip_delivers_exactly_the_spans_ended() {
    delivers_exactly("http/protobuf", "gzip").await;
}

/// A batch reaching the batch size wakes the export thread: no flush, no timer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_batch_is_exported_without_a_flush() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let h = Harness::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.grpc_endpoint()),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "10"),
        ("OTEL_BSP_SCHEDULE_DELAY", "3600000"),
    ]);
    h.end(0..9);
    h.end(9..10);
    receiver
        .wait_for(|s| s.len() >= 10, Duration::from_secs(30))
        .await
        .expect("the 10th span wakes the export thread");
    assert_eq!(received(&receiver), expected(0..10));
    h.shutdown().await;
}

/// A request a scripted collector received.
#[derive(Debug, Clone)]
struct Seen {
    at: Instant,
    headers: http::HeaderMap,
    /// The body as sent (compressed if it was).
    body: Bytes,
}

impl Seen {
    /// span id → name of the request's spans (the body gunzipped if `Content-Encoding: gzip`).
    fn spans(&self) -> BTreeMap<String, String> {
        let raw = match self.headers.get("content-encoding") {
            Some(v) if v == "gzip" => {
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(&self.body[..])
                    .read_to_end(&mut out)
                    .expect("a gzip body");
                out
            }
            _ => self.body.to_vec(),
        };
        spans_of(&ExportTraceServiceRequest::decode(&raw[..]).expect("a protobuf request"))
    }
}

fn spans_of(request: &ExportTraceServiceRequest) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for rs in &request.resource_spans {
        for ss in &rs.scope_spans {
            for s in &ss.spans {
                let id: String = s.span_id.iter().map(|b| format!("{b:02x}")).collect();
                out.insert(id, s.name.clone());
            }
        }
    }
    out
}

/// A scripted HTTP answer: status, headers, body.
type Answer = (u16, Vec<(&'static str, String)>, Vec<u8>);

/// span id → name of one request's spans.
type SpanNames = BTreeMap<String, String>;

/// An OTLP/HTTP collector answering from a script (then 200 with an empty response).
#[derive(Clone, Default)]
struct ScriptedHttp {
    seen: Arc<Mutex<Vec<Seen>>>,
    script: Arc<Mutex<VecDeque<Answer>>>,
}

impl ScriptedHttp {
    /// Starts it on a free port; returns its base URL.
    async fn start(&self) -> String {
        let this = self.clone();
        let app = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |headers: http::HeaderMap, body: Bytes| {
                let this = this.clone();
                async move {
                    this.seen.lock().unwrap().push(Seen {
                        at: Instant::now(),
                        headers,
                        body,
                    });
                    let (status, headers, body) =
                        this.script.lock().unwrap().pop_front().unwrap_or((
                            200,
                            Vec::new(),
                            ExportTraceServiceResponse::default().encode_to_vec(),
                        ));
                    let mut response = http::Response::builder().status(status);
                    for (k, v) in headers {
                        response = response.header(k, v);
                    }
                    response
                        .header("content-type", "application/x-protobuf")
                        .body(axum::body::Body::from(body))
                        .unwrap()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn http_harness(base: &str, extra: &[(&str, &str)]) -> Harness {
    let mut vars = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", base),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ("OTEL_BSP_SCHEDULE_DELAY", "3600000"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=blue"),
    ];
    vars.extend_from_slice(extra);
    Harness::start(&vars)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_503_is_retried_after_its_retry_after_with_the_same_body() {
    let collector = ScriptedHttp::default();
    collector.script.lock().unwrap().push_back((
        503,
        vec![("retry-after", "1".into())],
        Vec::new(),
    ));
    let base = collector.start().await;
    let h = http_harness(&base, &[]);
    h.end(0..5);
    assert!(h.flush().await, "the retry succeeded");
    let seen = collector.seen();
    assert_eq!(seen.len(), 2, "one retry");
    assert_eq!(seen[0].body, seen[1].body, "the same request again");
    assert_eq!(seen[1].spans(), expected(0..5));
    assert!(
        seen[1].at.duration_since(seen[0].at) >= Duration::from_secs(1),
        "retried before Retry-After"
    );
    for s in &seen {
        assert_eq!(s.headers["content-type"], "application/x-protobuf");
        assert_eq!(s.headers["x-tenant"], "blue");
        assert!(s.headers.get("content-encoding").is_none());
    }
    let (done, logs) = h.shutdown().await;
    assert!(done);
    assert!(
        !logs.contains("WARN"),
        "a retried success is not a failure: {logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_400_is_not_retried_and_the_loss_is_reported() {
    let collector = ScriptedHttp::default();
    let status = tonic_types::Status {
        code: 3,
        message: "bad span".into(),
        details: Vec::new(),
    };
    collector
        .script
        .lock()
        .unwrap()
        .push_back((400, Vec::new(), status.encode_to_vec()));
    let base = collector.start().await;
    let h = http_harness(&base, &[]);
    h.end(0..4);
    assert!(
        !h.flush().await,
        "a rejected export is not a successful flush"
    );
    assert_eq!(collector.seen().len(), 1, "400 is permanent: not retried");
    let (_, logs) = h.shutdown().await;
    let lines: Vec<&str> = logs.lines().filter(|l| l.contains("lost_spans")).collect();
    assert_eq!(lines.len(), 1, "{logs}");
    assert!(lines[0].contains(" WARN "), "{}", lines[0]);
    assert!(lines[0].contains("lost_spans=4"), "{}", lines[0]);
    assert!(
        lines[0].contains("HTTP 400 Bad Request: bad span"),
        "{}",
        lines[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_partial_success_is_counted_and_reported() {
    let collector = ScriptedHttp::default();
    let partial = ExportTraceServiceResponse {
        partial_success: Some(ExportTracePartialSuccess {
            rejected_spans: 2,
            error_message: "2 spans over the size limit".into(),
        }),
    };
    for _ in 0..2 {
        collector
            .script
            .lock()
            .unwrap()
            .push_back((200, Vec::new(), partial.encode_to_vec()));
    }
    let base = collector.start().await;
    let h = http_harness(&base, &[]);
    h.end(0..6);
    assert!(h.flush().await, "a partial success is a success");
    h.end(6..9);
    assert!(h.flush().await);
    assert_eq!(collector.seen().len(), 2);
    let (_, logs) = h.shutdown().await;
    let lines: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("rejected_spans"))
        .collect();
    // The first at once; the second within the interval, so in the shutdown total.
    assert_eq!(lines.len(), 2, "{logs}");
    assert!(lines[0].contains("rejected_spans=2"), "{}", lines[0]);
    assert!(
        lines[0].contains("2 spans over the size limit"),
        "{}",
        lines[0]
    );
    assert!(lines[1].contains("rejected_spans=2"), "{}", lines[1]);
    assert!(!logs.contains("lost_spans"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_gzip_body_is_a_gzipped_protobuf_request() {
    let collector = ScriptedHttp::default();
    let base = collector.start().await;
    let h = http_harness(&base, &[("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")]);
    h.end(0..3);
    assert!(h.flush().await);
    let seen = collector.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].headers["content-encoding"], "gzip");
    assert_eq!(&seen[0].body[..2], &[0x1f, 0x8b], "gzip magic");
    assert_eq!(seen[0].spans(), expected(0..3));
    h.shutdown().await;
}

/// An OTLP/gRPC collector answering from a script (then OK).
#[derive(Clone, Default)]
struct ScriptedGrpc {
    seen: Arc<Mutex<Vec<(Instant, SpanNames)>>>,
    /// `grpc-encoding` of each request.
    encodings: Arc<Mutex<Vec<Option<String>>>>,
    script: Arc<Mutex<VecDeque<tonic::Status>>>,
}

#[tonic::async_trait]
impl TraceService for ScriptedGrpc {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.seen
            .lock()
            .unwrap()
            .push((Instant::now(), spans_of(request.get_ref())));
        self.encodings.lock().unwrap().push(
            request
                .metadata()
                .get("grpc-encoding")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        );
        match self.script.lock().unwrap().pop_front() {
            Some(status) => Err(status),
            None => Ok(tonic::Response::new(ExportTraceServiceResponse::default())),
        }
    }
}

impl ScriptedGrpc {
    async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let service = TraceServiceServer::new(self.clone())
            .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
                .await
        });
        format!("http://{addr}")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_gzip_requests_are_gzip_encoded() {
    for (compression, want) in [("gzip", Some("gzip")), ("none", None)] {
        let collector = ScriptedGrpc::default();
        let h = Harness::start(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.start().await),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", compression),
            ("OTEL_BSP_SCHEDULE_DELAY", "3600000"),
        ]);
        h.end(0..3);
        assert!(h.flush().await);
        assert_eq!(collector.seen.lock().unwrap()[0].1, expected(0..3));
        assert_eq!(
            *collector.encodings.lock().unwrap(),
            [want.map(str::to_owned)],
            "{compression}"
        );
        h.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_unavailable_is_retried_after_its_retry_info() {
    use tonic_types::{ErrorDetails, StatusExt as _};
    let collector = ScriptedGrpc::default();
    collector
        .script
        .lock()
        .unwrap()
        .push_back(tonic::Status::with_error_details(
            tonic::Code::Unavailable,
            "collector busy",
            ErrorDetails::with_retry_info(Some(Duration::from_secs(1))),
        ));
    let h = Harness::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.start().await),
        ("OTEL_BSP_SCHEDULE_DELAY", "3600000"),
    ]);
    h.end(0..5);
    assert!(h.flush().await, "the retry succeeded");
    let seen = collector.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "one retry");
    assert_eq!(seen[0].1, expected(0..5));
    assert_eq!(seen[1].1, expected(0..5));
    assert!(
        seen[1].0.duration_since(seen[0].0) >= Duration::from_secs(1),
        "retried before RetryInfo's delay"
    );
    let (_, logs) = h.shutdown().await;
    assert!(!logs.contains("WARN"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_permanent_codes_and_bare_resource_exhausted_are_not_retried() {
    let collector = ScriptedGrpc::default();
    collector.script.lock().unwrap().extend([
        tonic::Status::invalid_argument("bad span"),
        tonic::Status::resource_exhausted("over quota"),
    ]);
    let h = Harness::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.start().await),
        ("OTEL_BSP_SCHEDULE_DELAY", "3600000"),
    ]);
    h.end(0..2);
    assert!(!h.flush().await);
    assert_eq!(
        collector.seen.lock().unwrap().len(),
        1,
        "INVALID_ARGUMENT: not retried"
    );
    // Past the back-off window a failed export opened (500 ms; only time passes here).
    std::thread::sleep(crate::export::BACKOFF_INITIAL + Duration::from_millis(100));
    h.end(2..3);
    assert!(!h.flush().await);
    assert_eq!(
        collector.seen.lock().unwrap().len(),
        2,
        "RESOURCE_EXHAUSTED without RetryInfo: not retried"
    );
    let (_, logs) = h.shutdown().await;
    assert!(logs.contains("InvalidArgument: bad span"), "{logs}");
}

/// The queue holds `OTEL_BSP_MAX_QUEUE_SIZE` spans while an export is in flight; the spans
/// beyond are dropped and counted exactly; everything queued is exported at shutdown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_drops_exactly_the_overflow_and_shutdown_exports_the_rest() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let proxy = SlowProxy::start(receiver.grpc_addr(), Duration::from_millis(1))
        .await
        .unwrap();
    proxy.pause();
    let h = Harness::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &proxy.endpoint()),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "8"),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "8"),
        ("OTEL_BSP_SCHEDULE_DELAY", "3600000"),
    ]);
    // The first 8 make a batch: the export thread takes them and is held by the proxy.
    h.end(0..8);
    tokio::time::timeout(Duration::from_secs(30), async {
        while proxy.chunks_in() == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the first batch is in flight");
    // 8 more fill the queue; the 5 after them are dropped.
    h.end(8..21);
    assert_eq!(h.pipeline.as_ref().unwrap().queue.dropped(), 5);
    proxy.resume();
    let (done, logs) = h.shutdown().await;
    assert!(done, "{logs}");
    assert_eq!(received(&receiver), expected(0..16));
    let first: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("span queue full"))
        .collect();
    assert_eq!(first.len(), 1, "{logs}");
    assert!(first[0].contains(" WARN "), "{}", first[0]);
    let total: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("dropped_spans_total="))
        .collect();
    assert_eq!(total.len(), 1, "{logs}");
    assert!(total[0].contains("dropped_spans_total=5"), "{}", total[0]);
}

/// Four threads end 4 × 250 spans into a queue of 1000 while the export thread exports
/// batches of 64; shutdown exports the rest: all 1000 arrive, none twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_ends_and_shutdown_lose_nothing() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let h = Harness::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.grpc_endpoint()),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "1000"),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "64"),
        ("OTEL_BSP_SCHEDULE_DELAY", "3600000"),
    ]);
    std::thread::scope(|scope| {
        for t in 0..4u64 {
            let h = &h;
            scope.spawn(move || h.end(t * 250..(t + 1) * 250));
        }
    });
    let (done, logs) = h.shutdown().await;
    assert!(done, "{logs}");
    assert_eq!(received(&receiver), expected(0..1000));
    assert!(!logs.contains("dropped"), "{logs}");
}

/// Records whose attribute buffers, events' attribute lists and name strings the export thread
/// handed back carry exactly their own: after the first round is exported the pool holds its
/// five of each, the second round takes them, and nothing of the first round's values shows in
/// the second's spans, names or events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reused_attribute_buffers_carry_only_their_own_spans_attributes() {
    use opentelemetry::trace::TraceContextExt as _;
    use opentelemetry::Context;
    use opentelemetry_sdk::trace::{Sampler, SpanLimits};
    use tracebridge_testkit::AttrValue;

    use super::record::Attrs;
    use super::recorder::Recorder;

    let receiver = OtlpReceiver::start().await.unwrap();
    let h = Harness::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.grpc_endpoint()),
        ("OTEL_BSP_SCHEDULE_DELAY", "3600000"),
    ]);
    let pipeline = h.pipeline.as_ref().unwrap();
    let pool = pipeline.pool();
    let recorder = Recorder::new(
        Box::new(Sampler::AlwaysOn),
        false,
        SpanLimits::default(),
        Some(pipeline.queue()),
    )
    .with_pool(pool.clone());
    let round = |name: &str, fill: &dyn Fn(usize, &mut Attrs, &mut Vec<KeyValue>)| {
        for i in 0..5 {
            let mut attrs = recorder.attrs(4, 16);
            let mut event = recorder.event_attrs(2);
            fill(i, &mut attrs, &mut event);
            let mut span_name = recorder.name(8);
            span_name.push_str(&format!("{name} {i}"));
            let cx = recorder.start(
                span_name.into(),
                SpanKind::Server,
                attrs,
                Vec::new(),
                &Context::new(),
            );
            cx.span().add_event("event", event);
            cx.span().end();
        }
    };

    round("first", &|i, a, e| {
        a.push_str(
            "url.path",
            &format!("/first/{i}/and/a/path/longer/than/sixteen"),
        );
        a.push_i64("first.number", i as i64);
        a.push_static("first.static", "yes");
        a.push(KeyValue::new("first.bool", true));
        e.push(KeyValue::new("first.event", format!("first event {i}")));
        e.push(KeyValue::new("first.event.number", i as i64));
    });
    assert!(h.flush().await);
    assert_eq!(
        pool.len(),
        5,
        "the export thread handed the five buffers back"
    );
    assert_eq!(pool.event_attrs_len(), 5, "and the five event lists");
    assert_eq!(pool.names_len(), 5, "and the five names' strings");
    round("second", &|i, a, e| {
        a.push_str("second", &i.to_string());
        e.push(KeyValue::new("second.event", i as i64));
    });
    assert_eq!(pool.len(), 0, "the second round took them");
    assert_eq!(pool.event_attrs_len(), 0, "and the event lists");
    assert_eq!(pool.names_len(), 0, "and the names' strings");
    assert!(h.flush().await);

    let spans = receiver.spans();
    type Events = Vec<(String, BTreeMap<String, AttrValue>)>;
    let mut events: Vec<(String, Events)> = spans
        .iter()
        .map(|s| {
            let events = s
                .events
                .iter()
                .map(|e| (e.name.clone(), e.attributes.clone()))
                .collect();
            (s.name.clone(), events)
        })
        .collect();
    events.sort_by(|a, b| a.0.cmp(&b.0));
    let mut want_events = Vec::new();
    for i in 0..5 {
        want_events.push((
            format!("first {i}"),
            vec![(
                "event".to_owned(),
                BTreeMap::from([
                    (
                        "first.event".to_owned(),
                        AttrValue::String(format!("first event {i}")),
                    ),
                    ("first.event.number".to_owned(), AttrValue::Int(i as i64)),
                ]),
            )],
        ));
    }
    for i in 0..5 {
        want_events.push((
            format!("second {i}"),
            vec![(
                "event".to_owned(),
                BTreeMap::from([("second.event".to_owned(), AttrValue::Int(i as i64))]),
            )],
        ));
    }
    assert_eq!(events, want_events);

    let mut got: Vec<(String, BTreeMap<String, AttrValue>)> =
        spans.into_iter().map(|s| (s.name, s.attributes)).collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let mut want = Vec::new();
    for i in 0..5 {
        want.push((
            format!("first {i}"),
            BTreeMap::from([
                (
                    "url.path".to_owned(),
                    AttrValue::String(format!("/first/{i}/and/a/path/longer/than/sixteen")),
                ),
                ("first.number".to_owned(), AttrValue::Int(i as i64)),
                ("first.static".to_owned(), AttrValue::String("yes".into())),
                ("first.bool".to_owned(), AttrValue::Bool(true)),
            ]),
        ));
    }
    for i in 0..5 {
        want.push((
            format!("second {i}"),
            BTreeMap::from([("second".to_owned(), AttrValue::String(i.to_string()))]),
        ));
    }
    assert_eq!(got, want);
    let (done, logs) = h.shutdown().await;
    assert!(done, "{logs}");
}
