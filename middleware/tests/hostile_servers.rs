//! A corpus of malformed, oversized and non-UTF-8 trace headers sent over real sockets to an
//! axum server behind `http::ServerLayer` and a tonic server behind `grpc::ServerLayer` (every
//! format on): every request succeeds, and every SERVER span starts a new valid trace — a
//! fresh trace id that is none of the ids in the garbage, no remote parent, no link.

mod grpc_support;
mod http_support;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::routing::get;
use axum::Router;
use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::trace::{SpanId, SpanKind, TraceId};
use opentelemetry_sdk::trace::SpanData;

use grpc_support::{check, CHECK};
use http_support::*;
use tracebridge::propagation::{Format, Propagator};

/// Ids that appear inside the corpus: none of them may become a trace.
const IDS: [&str; 3] = [
    "4bf92f3577b34da6a3ce929d0e0e4736",
    "0af7651916cd43dd8448eb211c80319c",
    "a3ce929d0e0e4736",
];
const SPAN: &str = "00f067aa0ba902b7";

/// One request's trace headers. `big` entries exceed HTTP/2's default 16 KiB header list and
/// are sent over HTTP/1.1 only (a gRPC server refuses them in the transport, before any layer).
struct Case {
    what: String,
    headers: Vec<(&'static str, Vec<u8>)>,
    big: bool,
}

fn case(what: &str, headers: Vec<(&'static str, Vec<u8>)>) -> Case {
    Case {
        what: what.to_owned(),
        headers,
        big: false,
    }
}

fn corpus() -> Vec<Case> {
    let (t, t64) = (IDS[0], IDS[2]);
    let s = SPAN;
    let b = |v: &str| v.as_bytes().to_vec();
    let mut c = vec![
        case(
            "all-zero trace id",
            vec![("traceparent", b(&format!("00-{}-{s}-01", "0".repeat(32))))],
        ),
        case(
            "all-zero span id",
            vec![("traceparent", b(&format!("00-{t}-{}-01", "0".repeat(16))))],
        ),
        case(
            "version ff",
            vec![("traceparent", b(&format!("ff-{t}-{s}-01")))],
        ),
        case(
            "uppercase hex",
            vec![("traceparent", b(&format!("00-{}-{s}-01", t.to_uppercase())))],
        ),
        case(
            "version 00 with suffix",
            vec![("traceparent", b(&format!("00-{t}-{s}-01-extra")))],
        ),
        case(
            "short trace id",
            vec![("traceparent", b(&format!("00-{}-{s}-01", &t[1..])))],
        ),
        case(
            "non-hex",
            vec![("traceparent", b(&format!("00-{}g-{s}-01", &t[1..])))],
        ),
        case(
            "two traceparents",
            vec![
                ("traceparent", b(&format!("00-{t}-{s}-01"))),
                ("traceparent", b(&format!("00-{}-{s}-01", IDS[1]))),
            ],
        ),
        case("separators only", vec![("traceparent", b("---"))]),
        case("empty", vec![("traceparent", b(""))]),
        case("jaeger garbage", vec![("uber-trace-id", b("zz:yy:xx:ww"))]),
        case(
            "jaeger zero trace",
            vec![("uber-trace-id", b(&format!("0:{s}:0:1")))],
        ),
        case(
            "jaeger 33 hex",
            vec![("uber-trace-id", b(&format!("1{t}:{s}:0:1")))],
        ),
        case(
            "jaeger missing parts",
            vec![("uber-trace-id", b(&format!("{t}:{s}")))],
        ),
        case(
            "jaeger half-encoded",
            vec![("uber-trace-id", b(&format!("{t}%3{s}%3A0%3A1")))],
        ),
        case("b3 garbage", vec![("b3", b("1-2-3-4-5"))]),
        case(
            "b3 zero span",
            vec![("b3", b(&format!("{t}-0000000000000000-1")))],
        ),
        case(
            "b3 multi without span",
            vec![("x-b3-traceid", b(t)), ("x-b3-sampled", b("1"))],
        ),
        case(
            "b3 multi bad span",
            vec![("x-b3-traceid", b(t64)), ("x-b3-spanid", b("xyz"))],
        ),
        case("sentry garbage", vec![("sentry-trace", b("not-a-trace"))]),
        case(
            "sentry bad flag",
            vec![("sentry-trace", b(&format!("{t}-{s}-2")))],
        ),
        case(
            "sentry short",
            vec![("sentry-trace", b(&format!("{}-{s}", &t[2..])))],
        ),
        case(
            "baggage only garbage",
            vec![("baggage", b("=;;,,=,%%%,k=\\,sentry-trace_id=zz"))],
        ),
        case(
            "tracestate only garbage",
            vec![("tracestate", b(",,,=,=,a@@b=c"))],
        ),
        case(
            "every format malformed at once",
            vec![
                ("traceparent", b(&format!("00-{t}-{s}-0"))),
                ("uber-trace-id", b(&format!("{t}::0:1"))),
                ("b3", b(&format!("{t}-{s}-x"))),
                ("sentry-trace", b(&format!("{t}-{s}-1-"))),
                ("baggage", b(&format!("sentry-trace_id={t},bad key=1"))),
            ],
        ),
    ];
    // Non-UTF-8 bytes inside otherwise valid values.
    for (name, valid) in [
        ("traceparent", format!("00-{t}-{s}-01")),
        ("uber-trace-id", format!("{t}:{s}:0:1")),
        ("b3", format!("{t}-{s}-1")),
        ("sentry-trace", format!("{t}-{s}-1")),
    ] {
        let mut v = valid.into_bytes();
        v[7] = 0xff;
        v.push(0xc3);
        c.push(case(&format!("non-UTF-8 {name}"), vec![(name, v)]));
    }
    c.push(case(
        "non-UTF-8 baggage",
        vec![("baggage", b"a=\xff\xfe,b=\xc3".to_vec())],
    ));
    // Oversized: 64 KiB traceparent, 10 000 baggage entries, 1 000 tracestate members.
    let mut long = format!("01-{t}-{s}-01-").into_bytes();
    long.resize(64 * 1024, b'a');
    let baggage: Vec<String> = (0..10_000).map(|i| format!("k{i}=v{i}")).collect();
    let members: Vec<String> = (0..1000).map(|i| format!("k{i}=v")).collect();
    for (what, headers) in [
        ("64 KiB traceparent", vec![("traceparent", long)]),
        (
            "10 000 baggage entries",
            vec![("baggage", baggage.join(",").into_bytes())],
        ),
        (
            "1 000 tracestate members with a bad traceparent",
            vec![
                ("traceparent", format!("00-{t}-{s}").into_bytes()),
                ("tracestate", members.join(",").into_bytes()),
            ],
        ),
    ] {
        c.push(Case {
            what: what.to_owned(),
            headers,
            big: true,
        });
    }
    c
}

fn header_map(case: &Case) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in &case.headers {
        map.append(
            HeaderName::from_static(name),
            HeaderValue::from_bytes(value).unwrap(),
        );
    }
    map
}

fn all_formats() -> Propagator {
    Propagator::from_formats(&Format::ALL)
}

/// Each span is a root of its own new trace, with none of the corpus' ids.
fn assert_new_traces(spans: &[SpanData], expected: usize) {
    assert_eq!(spans.len(), expected);
    let garbage: Vec<TraceId> = IDS
        .iter()
        .map(|id| TraceId::from_hex(id).unwrap())
        .collect();
    let mut seen = HashSet::new();
    for span in spans {
        assert!(span.span_context.is_valid(), "{}", span.name);
        assert_ne!(span.span_context.trace_id(), TraceId::INVALID);
        assert_eq!(span.parent_span_id, SpanId::INVALID, "no remote parent");
        assert!(!span.parent_span_is_remote);
        assert!(span.links.links.is_empty(), "no link either");
        assert!(
            !garbage.contains(&trace_id(span)),
            "garbage id became the trace"
        );
        assert!(
            seen.insert(trace_id(span)),
            "each request starts its own trace"
        );
    }
}

#[tokio::test]
async fn http_server_answers_200_and_starts_a_new_trace_for_every_malformed_header() {
    let telemetry = telemetry();
    let app = Router::new()
        .route("/work", get(|| async { "done" }))
        .layer(tracebridge::http::ServerLayer::new().propagator(all_formats()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let client = reqwest::Client::new();
    let corpus = corpus();
    for case in &corpus {
        let response = client
            .get(format!("http://{addr}/work"))
            .headers(header_map(case))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", case.what));
        assert_eq!(response.status(), 200, "{}", case.what);
        let tr = response.headers()["traceresponse"].to_str().unwrap();
        let (t, _) = parse_traceparent(tr);
        assert!(!IDS.iter().any(|id| t == TraceId::from_hex(id).unwrap()));
        assert_eq!(response.text().await.unwrap(), "done", "{}", case.what);
    }
    let spans = telemetry.wait_for("GET /work", corpus.len()).await;
    for span in &spans {
        assert_kind(span, SpanKind::Server);
        assert_eq!(attr_i64(span, "http.response.status_code"), Some(200));
    }
    assert_new_traces(&spans, corpus.len());
}

#[tokio::test]
async fn grpc_server_answers_ok_and_starts_a_new_trace_for_every_malformed_header() {
    let telemetry = telemetry();
    let (addr, behaviour) =
        grpc_support::serve(tracebridge::grpc::ServerLayer::new().propagator(all_formats())).await;

    // The raw header bytes go onto the HTTP/2 request under the generated client, so values
    // tonic's metadata API would refuse (non-UTF-8) reach the server too.
    let next: Arc<Mutex<HeaderMap>> = Arc::default();
    let service = tower::ServiceBuilder::new()
        .map_request({
            let next = next.clone();
            move |mut req: http::Request<tonic::body::Body>| {
                let headers = std::mem::take(&mut *next.lock().unwrap());
                for (name, value) in &headers {
                    req.headers_mut().append(name.clone(), value.clone());
                }
                req
            }
        })
        .service(grpc_support::channel(addr));
    let mut client = tonic_health::pb::health_client::HealthClient::new(service);

    let corpus: Vec<Case> = corpus().into_iter().filter(|c| !c.big).collect();
    for case in &corpus {
        *next.lock().unwrap() = header_map(case);
        let reply = client
            .check(check("ok"))
            .await
            .unwrap_or_else(|s| panic!("{}: {s:?}", case.what));
        assert_eq!(reply.get_ref(), &grpc_support::serving(), "{}", case.what);
    }
    // The server saw the garbage (it was sent, not lost on the way).
    {
        let seen = behaviour.metadata.lock().unwrap();
        assert_eq!(seen.len(), corpus.len());
        assert!(seen[0].get("traceparent").is_some());
    }

    let spans = telemetry.wait_for(CHECK, corpus.len()).await;
    for span in &spans {
        assert_kind(span, SpanKind::Server);
        assert_eq!(attr_i64(span, "rpc.grpc.status_code"), Some(0));
    }
    assert_new_traces(&spans, corpus.len());
}
