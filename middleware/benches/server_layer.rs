//! Per-request cost of the HTTP and gRPC server layers, in process (no sockets): the same
//! trivial axum handler bare and behind `tracebridge::http::ServerLayer`, service c's
//! `GET /work` (an `#[instrument]` span with one event inside the request) behind it, and a
//! tonic-style gRPC service bare and behind `tracebridge::grpc::ServerLayer`.
//!
//! The telemetry is tracebridge's own `init` (fmt layer at INFO into a sink, tracebridge's
//! `tracing` layer, the default propagator, always-on sampling) without an OTLP
//! endpoint, so this measures the instrumentation on the request path — extraction, the
//! SERVER span with its attributes, `traceresponse`, ending the span — and not the export,
//! which runs off the request path (the load harness in `bench/` measures everything).
//! Every request carries traceparent, uber-trace-id, sentry-trace and baggage.
//!
//! Run: `cargo bench -p tracebridge --bench server_layer -- --quick`.

use std::convert::Infallible;
use std::hint::black_box;

use axum::routing::get;
use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use futures_util::FutureExt;
use http::{HeaderValue, Request, Response};
use http_body_util::{BodyExt, Full};
use tower::{Layer, Service, ServiceExt};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN: &str = "00f067aa0ba902b7";

fn with_trace_headers<B>(mut req: Request<B>) -> Request<B> {
    let h = req.headers_mut();
    let mut put = |k: &'static str, v: String| {
        h.insert(k, HeaderValue::from_str(&v).unwrap());
    };
    put("traceparent", format!("00-{TRACE}-{SPAN}-01"));
    put("uber-trace-id", format!("{TRACE}:{SPAN}:0:1"));
    put("sentry-trace", format!("{TRACE}-{SPAN}-1"));
    put(
        "baggage",
        format!(
            "sentry-trace_id={TRACE},sentry-public_key=49d0f7386ad645858ae85020e393bef3,\
             sentry-sample_rate=1,sentry-sampled=true,sentry-environment=prod,user.tier=gold"
        ),
    );
    put("host", "127.0.0.1:8080".into());
    put("user-agent", "bench/1.0".into());
    req
}

fn http_request() -> Request<axum::body::Body> {
    with_trace_headers(
        Request::get("/hello")
            .body(axum::body::Body::empty())
            .unwrap(),
    )
}

fn work_request() -> Request<axum::body::Body> {
    with_trace_headers(
        Request::get("/work")
            .body(axum::body::Body::empty())
            .unwrap(),
    )
}

/// Service c's `trace3`: an instrumented function with one event.
#[tracing::instrument]
async fn trace3() {
    tracing::info!(step = "done", "trace3 finished");
}

async fn work() -> &'static str {
    trace3().await;
    "ok"
}

fn grpc_request() -> Request<Full<Bytes>> {
    let mut req = Request::post("/ping.PingC/Ping")
        .body(Full::new(Bytes::from_static(b"\0\0\0\0\x06\x0a\x04load")))
        .unwrap();
    req.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/grpc"));
    with_trace_headers(req)
}

/// A unary gRPC handler as tonic answers it: 200, grpc headers, body, `grpc-status` trailer.
async fn grpc_handler(_req: Request<Full<Bytes>>) -> Result<Response<GrpcBody>, Infallible> {
    let mut res = Response::new(GrpcBody::default());
    res.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/grpc"));
    Ok(res)
}

/// A one-frame body followed by `grpc-status: 0` trailers.
#[derive(Default)]
struct GrpcBody {
    state: u8,
}

impl http_body::Body for GrpcBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        self.state += 1;
        std::task::Poll::Ready(match self.state {
            1 => Some(Ok(http_body::Frame::data(Bytes::from_static(
                b"\0\0\0\0\x04\x0a\x02ok",
            )))),
            2 => {
                let mut t = http::HeaderMap::new();
                t.insert("grpc-status", HeaderValue::from_static("0"));
                Some(Ok(http_body::Frame::trailers(t)))
            }
            _ => None,
        })
    }
}

/// Calls `svc` once and reads the whole response body, without a runtime (everything is
/// ready at once).
fn call<S, B, R>(svc: &mut S, req: Request<B>) -> usize
where
    S: Service<Request<B>, Response = Response<R>>,
    S::Error: std::fmt::Debug,
    R: http_body::Body,
    R::Error: std::fmt::Debug,
{
    let res = svc
        .ready()
        .now_or_never()
        .unwrap()
        .unwrap()
        .call(req)
        .now_or_never()
        .expect("ready")
        .unwrap();
    let body = res.into_body().collect().now_or_never().expect("ready");
    body.unwrap().to_bytes().len()
}

fn server_layers(c: &mut Criterion) {
    let _guard = tracebridge::Builder::default()
        .service_name("bench")
        .log_writer(std::io::sink)
        .install()
        .unwrap();

    let mut g = c.benchmark_group("server");
    let router = axum::Router::new()
        .route("/hello", get(|| async { "ok" }))
        .route("/work", get(work));
    let mut bare = router.clone();
    let mut traced = router.layer(tracebridge::http::ServerLayer::new());
    assert_eq!(call(&mut traced, http_request()), 2);
    g.bench_function("axum_bare", |b| {
        b.iter(|| black_box(call(&mut bare, http_request())))
    });
    g.bench_function("axum_tracebridge", |b| {
        b.iter(|| black_box(call(&mut traced, http_request())))
    });
    // Service c's `GET /work`: the SERVER span plus an `#[instrument]` span with one event.
    assert_eq!(call(&mut traced, work_request()), 2);
    g.bench_function("work_axum_tracebridge", |b| {
        b.iter(|| black_box(call(&mut traced, work_request())))
    });

    let mut grpc_bare = tower::service_fn(grpc_handler);
    let mut grpc_traced =
        tracebridge::grpc::ServerLayer::new().layer(tower::service_fn(grpc_handler));
    assert_eq!(call(&mut grpc_traced, grpc_request()), 9);
    g.bench_function("grpc_bare", |b| {
        b.iter(|| black_box(call(&mut grpc_bare, grpc_request())))
    });
    g.bench_function("grpc_tracebridge", |b| {
        b.iter(|| black_box(call(&mut grpc_traced, grpc_request())))
    });
    g.finish();
}

criterion_group!(benches, server_layers);
criterion_main!(benches);
