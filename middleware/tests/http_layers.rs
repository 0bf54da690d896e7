//! The HTTP server layer and client middleware through real sockets: an axum app behind
//! `ServerLayer`, called with reqwest through `ClientMiddleware`, spans exported in memory.

mod http_support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::Router;
use opentelemetry::baggage::BaggageExt;
use opentelemetry::trace::{SpanId, SpanKind, TraceId};
use tokio::sync::{mpsc, oneshot};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use http_support::*;
use tracebridge::http::{ClientMiddleware, ServerLayer};

#[derive(Clone, Default)]
struct Seen {
    headers: Arc<Mutex<Vec<HeaderMap>>>,
    baggage_entries: Arc<Mutex<Vec<usize>>>,
    stream: Arc<Mutex<Option<mpsc::Receiver<&'static str>>>>,
    started: Arc<Mutex<Option<oneshot::Sender<()>>>>,
}

impl Seen {
    fn last_headers(&self) -> HeaderMap {
        self.headers
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("handler ran")
    }
}

#[tracing::instrument(level = "info")]
async fn load_user(id: u32) -> String {
    format!("user {id}")
}

async fn user(State(seen): State<Seen>, Path(id): Path<u32>, headers: HeaderMap) -> String {
    seen.headers.lock().unwrap().push(headers);
    // The request's context (its span, baggage, Sentry DSC) is the current OpenTelemetry
    // context while the server layer polls the handler.
    let cx = opentelemetry::Context::current();
    seen.baggage_entries
        .lock()
        .unwrap()
        .push(cx.baggage().len());
    load_user(id).await
}

fn app(seen: Seen, layer: ServerLayer) -> Router {
    Router::new()
        .route("/users/{id}", get(user))
        .route(
            "/fail",
            get(|| async { (StatusCode::BAD_GATEWAY, "upstream failed") }),
        )
        .route(
            "/missing",
            get(|| async { (StatusCode::NOT_FOUND, "no such thing") }),
        )
        .route(
            "/panic",
            get(|| async {
                if true {
                    panic!("handler exploded");
                }
                "unreachable"
            }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/stream",
            get(|State(seen): State<Seen>| async move {
                let rx = seen.stream.lock().unwrap().take().expect("one stream");
                let chunks = futures_util::stream::unfold(rx, |mut rx| async move {
                    rx.recv()
                        .await
                        .map(|chunk| (Ok::<_, std::io::Error>(chunk), rx))
                });
                axum::body::Body::from_stream(chunks)
            }),
        )
        .route(
            "/hang",
            get(|State(seen): State<Seen>| async move {
                if let Some(tx) = seen.started.lock().unwrap().take() {
                    let _ = tx.send(());
                }
                std::future::pending::<&'static str>().await
            }),
        )
        .layer(layer)
        .with_state(seen)
}

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

fn traced_client() -> reqwest_middleware::ClientWithMiddleware {
    tracebridge::http::client(reqwest::Client::new())
}

#[tokio::test]
async fn client_span_is_parent_of_server_span_and_internal_spans_nest() {
    let telemetry = telemetry();
    let seen = Seen::default();
    let addr = serve(app(seen.clone(), ServerLayer::new())).await;

    let response = traced_client()
        .get(format!("http://{addr}/users/42?token=secret"))
        .header("user-agent", "layers-test/1")
        .header("authorization", "Bearer hunter2")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let traceresponse = response.headers()["traceresponse"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(response.text().await.unwrap(), "user 42");

    let client = telemetry.one("GET").await;
    let server = telemetry.one("GET /users/{id}").await;
    let internal = telemetry.one("load_user").await;

    // one trace, client → server → internal
    assert_kind(&client, SpanKind::Client);
    assert_kind(&server, SpanKind::Server);
    assert_eq!(client.parent_span_id, SpanId::INVALID);
    assert_eq!(trace_id(&server), trace_id(&client));
    assert_eq!(server.parent_span_id, span_id(&client));
    assert!(server.parent_span_is_remote);
    assert_eq!(trace_id(&internal), trace_id(&server));
    assert_eq!(internal.parent_span_id, span_id(&server));

    // traceresponse carries the server span's own ids
    assert_eq!(
        parse_traceparent(&traceresponse),
        (trace_id(&server), span_id(&server))
    );

    // what the server actually received: a traceparent naming the client span
    let headers = seen.last_headers();
    let sent = headers["traceparent"].to_str().unwrap();
    assert_eq!(
        parse_traceparent(sent),
        (trace_id(&client), span_id(&client))
    );

    // server attributes
    assert_eq!(
        attr_str(&server, "http.request.method").as_deref(),
        Some("GET")
    );
    assert_eq!(
        attr_str(&server, "http.route").as_deref(),
        Some("/users/{id}")
    );
    assert_eq!(attr_str(&server, "url.path").as_deref(), Some("/users/42"));
    assert_eq!(attr_str(&server, "url.scheme").as_deref(), Some("http"));
    assert_eq!(
        attr_str(&server, "server.address").as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(
        attr_i64(&server, "server.port"),
        Some(i64::from(addr.port()))
    );
    assert_eq!(
        attr_str(&server, "user_agent.original").as_deref(),
        Some("layers-test/1")
    );
    assert_eq!(
        attr_str(&server, "network.protocol.version").as_deref(),
        Some("1.1")
    );
    assert_eq!(attr_i64(&server, "http.response.status_code"), Some(200));
    assert_not_error(&server);

    // client attributes: query values redacted
    assert_eq!(
        attr_str(&client, "http.request.method").as_deref(),
        Some("GET")
    );
    assert_eq!(
        attr_str(&client, "url.full"),
        Some(format!("http://{addr}/users/42?token=REDACTED"))
    );
    assert_eq!(
        attr_str(&client, "server.address").as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(
        attr_i64(&client, "server.port"),
        Some(i64::from(addr.port()))
    );
    assert_eq!(attr_i64(&client, "http.response.status_code"), Some(200));
    assert_not_error(&client);

    // no credential in any attribute of any span
    for span in telemetry.spans() {
        for kv in &span.attributes {
            let value = kv.value.as_str();
            assert!(!value.contains("hunter2"), "{} leaks {}", span.name, kv.key);
            assert!(!value.contains("secret"), "{} leaks {}", span.name, kv.key);
        }
    }
}

#[tokio::test]
async fn incoming_traceparent_becomes_the_parent() {
    let telemetry = telemetry();
    let seen = Seen::default();
    let addr = serve(app(seen, ServerLayer::new())).await;

    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent = "00f067aa0ba902b7";
    let response = reqwest::Client::new()
        .get(format!("http://{addr}/users/7"))
        .header("traceparent", traceparent(trace, parent))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (resp_trace, resp_span) =
        parse_traceparent(response.headers()["traceresponse"].to_str().unwrap());

    let server = telemetry.one("GET /users/{id}").await;
    assert_eq!(trace_id(&server), TraceId::from_hex(trace).unwrap());
    assert_eq!(server.parent_span_id, SpanId::from_hex(parent).unwrap());
    assert_eq!(
        (resp_trace, resp_span),
        (trace_id(&server), span_id(&server))
    );
}

#[tokio::test]
async fn server_errors_are_error_spans_and_client_errors_only_on_the_client() {
    let telemetry = telemetry();
    let addr = serve(app(Seen::default(), ServerLayer::new())).await;
    let client = traced_client();

    let response = client
        .get(format!("http://{addr}/fail"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    let server = telemetry.one("GET /fail").await;
    assert_error(&server);
    assert_eq!(attr_i64(&server, "http.response.status_code"), Some(502));
    assert_eq!(attr_str(&server, "error.type").as_deref(), Some("502"));
    let client_span = telemetry.one("GET").await;
    assert_error(&client_span);
    assert_eq!(
        attr_i64(&client_span, "http.response.status_code"),
        Some(502)
    );
    telemetry.reset();

    let response = client
        .get(format!("http://{addr}/missing"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let server = telemetry.one("GET /missing").await;
    assert_not_error(&server);
    assert_eq!(attr_i64(&server, "http.response.status_code"), Some(404));
    let client_span = telemetry.one("GET").await;
    assert_error(&client_span);
    assert_eq!(attr_str(&client_span, "error.type").as_deref(), Some("404"));
}

#[tokio::test]
async fn panicking_handler_answers_500_with_an_error_span() {
    let telemetry = telemetry();
    let addr = serve(app(Seen::default(), ServerLayer::new())).await;

    let response = reqwest::get(format!("http://{addr}/panic")).await.unwrap();
    assert_eq!(response.status(), 500);
    let (resp_trace, resp_span) =
        parse_traceparent(response.headers()["traceresponse"].to_str().unwrap());

    let server = telemetry.one("GET /panic").await;
    assert_error(&server);
    assert_eq!(attr_i64(&server, "http.response.status_code"), Some(500));
    assert_eq!(attr_str(&server, "error.type").as_deref(), Some("panic"));
    assert_eq!(
        (resp_trace, resp_span),
        (trace_id(&server), span_id(&server))
    );

    // the server keeps serving
    let response = reqwest::get(format!("http://{addr}/users/1"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn skipped_paths_export_nothing() {
    let telemetry = telemetry();
    let addr = serve(app(Seen::default(), ServerLayer::new())).await;

    let response = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("traceresponse").is_none());
    assert_eq!(response.text().await.unwrap(), "ok");
    // a traced request afterwards proves the server had time to finish the first one
    reqwest::get(format!("http://{addr}/users/1"))
        .await
        .unwrap();
    telemetry.one("GET /users/{id}").await;
    assert_eq!(
        telemetry
            .spans()
            .iter()
            .map(|s| s.name.to_string())
            .collect::<Vec<_>>(),
        vec!["load_user".to_owned(), "GET /users/{id}".to_owned()]
    );
}

#[tokio::test]
async fn custom_skip_paths_replace_the_defaults() {
    let telemetry = telemetry();
    let addr = serve(app(
        Seen::default(),
        ServerLayer::new().skip_paths(["/users/1"]),
    ))
    .await;
    reqwest::get(format!("http://{addr}/users/1"))
        .await
        .unwrap();
    reqwest::get(format!("http://{addr}/healthz"))
        .await
        .unwrap();
    telemetry.one("GET /healthz").await;
    assert!(telemetry.named("GET /users/{id}").is_empty());
}

#[tokio::test]
async fn streamed_body_keeps_the_span_open_until_it_ends() {
    let telemetry = telemetry();
    let seen = Seen::default();
    let (tx, rx) = mpsc::channel(4);
    *seen.stream.lock().unwrap() = Some(rx);
    let addr = serve(app(seen, ServerLayer::new())).await;

    let mut response = reqwest::get(format!("http://{addr}/stream")).await.unwrap();
    assert_eq!(response.status(), 200);
    tx.send("first ").await.unwrap();
    assert_eq!(&response.chunk().await.unwrap().unwrap()[..], b"first ");
    // headers and a first chunk are out, the body is not over: the span is still open
    assert!(telemetry.named("GET /stream").is_empty());

    tx.send("last").await.unwrap();
    drop(tx);
    assert_eq!(&response.chunk().await.unwrap().unwrap()[..], b"last");
    assert!(response.chunk().await.unwrap().is_none());
    let server = telemetry.one("GET /stream").await;
    assert_not_error(&server);
    assert_eq!(attr_i64(&server, "http.response.status_code"), Some(200));
}

#[tokio::test]
async fn dropped_request_ends_the_span() {
    use tokio::io::AsyncWriteExt;

    let telemetry = telemetry();
    let seen = Seen::default();
    let (started_tx, started_rx) = oneshot::channel();
    *seen.started.lock().unwrap() = Some(started_tx);
    let addr = serve(app(seen, ServerLayer::new())).await;

    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /hang HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    started_rx.await.unwrap();
    assert!(telemetry.named("GET /hang").is_empty());
    drop(stream); // the caller goes away while the handler still runs

    let server = telemetry.one("GET /hang").await;
    assert_eq!(attr(&server, "http.response.status_code"), None);
}

#[tokio::test]
async fn hostile_trace_headers_start_a_new_valid_trace() {
    let telemetry = telemetry();
    let addr = serve(app(Seen::default(), ServerLayer::new())).await;
    let long = "a".repeat(64 * 1024);
    let hostile: Vec<(&str, String)> = vec![
        (
            "traceparent",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01".into(),
        ),
        (
            "traceparent",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
        ),
        (
            "traceparent",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01".into(),
        ),
        ("traceparent", format!("00-{long}")),
        ("uber-trace-id", "zz:yy:xx:ww".into()),
        ("sentry-trace", "not-a-trace".into()),
        ("baggage", "=;;,,=,%%%".into()),
        ("tracestate", ",,,=,=".into()),
    ];
    for (i, (name, value)) in hostile.iter().enumerate() {
        let response = reqwest::Client::new()
            .get(format!("http://{addr}/users/{i}"))
            .header(*name, value)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{name}: {value:.40}");
        let (t, s) = parse_traceparent(response.headers()["traceresponse"].to_str().unwrap());
        assert_ne!(t, TraceId::INVALID);
        assert_ne!(s, SpanId::INVALID);
    }
    let spans = telemetry.wait_for("GET /users/{id}", hostile.len()).await;
    for span in spans {
        assert!(span.span_context.is_valid());
        assert_eq!(span.parent_span_id, SpanId::INVALID, "new trace");
        assert_ne!(
            trace_id(&span),
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap()
        );
    }
}

#[tokio::test]
async fn public_endpoint_links_the_caller_and_drops_baggage() {
    let telemetry = telemetry();
    let seen = Seen::default();
    let addr = serve(app(seen.clone(), ServerLayer::new().public_endpoint(true))).await;

    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent = "00f067aa0ba902b7";
    let response = reqwest::Client::new()
        .get(format!("http://{addr}/users/3"))
        .header("traceparent", traceparent(trace, parent))
        .header("baggage", "tenant=acme,user=42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let server = telemetry.one("GET /users/{id}").await;
    assert_ne!(trace_id(&server), TraceId::from_hex(trace).unwrap());
    assert_eq!(server.parent_span_id, SpanId::INVALID);
    let links = &server.links.links;
    assert_eq!(links.len(), 1);
    assert_eq!(
        links[0].span_context.trace_id(),
        TraceId::from_hex(trace).unwrap()
    );
    assert_eq!(
        links[0].span_context.span_id(),
        SpanId::from_hex(parent).unwrap()
    );
    assert_eq!(*seen.baggage_entries.lock().unwrap(), vec![0]);
}

#[tokio::test]
async fn baggage_reaches_the_handler_on_a_private_endpoint() {
    let _telemetry = telemetry();
    let seen = Seen::default();
    let addr = serve(app(seen.clone(), ServerLayer::new())).await;
    reqwest::Client::new()
        .get(format!("http://{addr}/users/3"))
        .header("baggage", "tenant=acme,user=42")
        .send()
        .await
        .unwrap();
    assert_eq!(*seen.baggage_entries.lock().unwrap(), vec![2]);
}

#[tokio::test]
async fn allowlist_keeps_trace_headers_from_other_hosts() {
    let telemetry = telemetry();
    let seen = Seen::default();
    let addr = serve(app(
        seen.clone(),
        ServerLayer::new().skip_paths(Vec::<String>::new()),
    ))
    .await;

    let allowed_elsewhere = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(ClientMiddleware::new().allow_hosts(["api.example.com"]))
        .build();
    let parent = tracing::info_span!("caller");
    let _ = parent.set_parent(
        opentelemetry::Context::new()
            .with_baggage(vec![opentelemetry::KeyValue::new("tenant", "acme")]),
    );
    {
        use tracing::Instrument;
        allowed_elsewhere
            .get(format!("http://{addr}/users/5"))
            .send()
            .instrument(parent.clone())
            .await
            .unwrap();
    }
    let headers = seen.last_headers();
    for name in [
        "traceparent",
        "tracestate",
        "baggage",
        "uber-trace-id",
        "sentry-trace",
        "b3",
    ] {
        assert!(
            headers.get(name).is_none(),
            "{name} sent to a non-allowed host"
        );
    }
    // the client span is still recorded
    let client = telemetry.one("GET").await;
    assert_kind(&client, SpanKind::Client);

    // the same client, host allowed by prefix: headers go out
    let allowed_here = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(ClientMiddleware::new().allow_url_prefixes([format!("http://{addr}/users/")]))
        .build();
    allowed_here
        .get(format!("http://{addr}/users/6"))
        .send()
        .await
        .unwrap();
    assert!(seen.last_headers().get("traceparent").is_some());
    drop(parent);
}

#[tokio::test]
async fn transport_errors_are_error_client_spans() {
    let telemetry = telemetry();
    let port = closed_port();
    let error = traced_client()
        .get(format!("http://user:pw@127.0.0.1:{port}/x"))
        .send()
        .await
        .unwrap_err();
    assert!(error.is_connect(), "{error}");
    let client = telemetry.one("GET").await;
    assert_error(&client);
    assert_eq!(attr_str(&client, "error.type").as_deref(), Some("connect"));
    assert_eq!(
        attr_str(&client, "url.full"),
        Some(format!("http://127.0.0.1:{port}/x"))
    );
    assert_eq!(attr(&client, "http.response.status_code"), None);
}

#[tokio::test]
async fn without_matched_path_the_span_is_named_by_method() {
    let telemetry = telemetry();
    // the layer around the whole router sees no MatchedPath
    let router = Router::new().route("/users/{id}", get(|| async { "x" }));
    let service = tower::Layer::layer(&ServerLayer::new(), router);
    let addr = serve(Router::new().fallback_service(service)).await;
    let response = reqwest::get(format!("http://{addr}/users/9"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let server = telemetry.one("GET").await;
    assert_eq!(attr(&server, "http.route"), None);
    assert_eq!(attr_str(&server, "url.path").as_deref(), Some("/users/9"));
}

#[tokio::test]
async fn every_incoming_format_continues_the_trace() {
    let telemetry = telemetry();
    let addr = serve(app(Seen::default(), ServerLayer::new())).await;
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent = "00f067aa0ba902b7";
    let formats: Vec<(&str, String)> = vec![
        ("traceparent", traceparent(trace, parent)),
        ("uber-trace-id", format!("{trace}:{parent}:0:1")),
        ("sentry-trace", format!("{trace}-{parent}-1")),
    ];
    for (i, (name, value)) in formats.iter().enumerate() {
        let response = reqwest::Client::new()
            .get(format!("http://{addr}/users/{i}"))
            .header(*name, value)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let (t, _) = parse_traceparent(response.headers()["traceresponse"].to_str().unwrap());
        assert_eq!(t, TraceId::from_hex(trace).unwrap(), "{name}");
    }
    let spans = telemetry.wait_for("GET /users/{id}", formats.len()).await;
    for span in spans {
        assert_eq!(trace_id(&span), TraceId::from_hex(trace).unwrap());
        assert_eq!(span.parent_span_id, SpanId::from_hex(parent).unwrap());
        assert!(span.parent_span_is_remote);
    }
}
