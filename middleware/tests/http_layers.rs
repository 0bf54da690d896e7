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

/// A front service behind `ServerLayer` whose `/relay` handler calls the back service's
/// `/users/1` with the traced client; answers the back's status.
async fn front(back: SocketAddr, server: ServerLayer, client: ClientMiddleware) -> SocketAddr {
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(client)
        .build();
    let router = Router::new()
        .route(
            "/relay",
            get(move || {
                let client = client.clone();
                async move {
                    let status = client
                        .get(format!("http://{back}/users/1"))
                        .send()
                        .await
                        .unwrap()
                        .status();
                    status.as_u16().to_string()
                }
            }),
        )
        .layer(server);
    serve(router).await
}

/// Calls the front's `/relay` with `headers`; returns its `traceresponse` and the headers the
/// back service received.
async fn relay(front: SocketAddr, seen: &Seen, headers: &[(&str, String)]) -> (String, HeaderMap) {
    let mut request = reqwest::Client::new().get(format!("http://{front}/relay"));
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    let traceresponse = response.headers()["traceresponse"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(response.text().await.unwrap(), "200");
    (traceresponse, seen.last_headers())
}

/// W3C Level 2 random flag (0x02) through a service: kept on the outgoing call whether or not
/// the span is sampled, never added to a trace that came without it, and in `traceresponse`.
#[tokio::test]
async fn random_flag_is_forwarded_sampled_or_not() {
    let telemetry = telemetry();
    let seen = Seen::default();
    let back = serve(app(seen.clone(), ServerLayer::new())).await;
    let front = front(back, ServerLayer::new(), ClientMiddleware::new()).await;
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    for flags in ["02", "03", "00", "01"] {
        telemetry.reset();
        let incoming = format!("00-{trace}-00f067aa0ba902b7-{flags}");
        let (traceresponse, got) = relay(front, &seen, &[("traceparent", incoming)]).await;
        let sent = got["traceparent"].to_str().unwrap();
        assert_eq!(&sent[..36], &format!("00-{trace}-"), "{flags}");
        assert_eq!(&sent[52..], &format!("-{flags}"), "{flags}: sent {sent}");
        assert_eq!(&traceresponse[..36], &format!("00-{trace}-"));
        assert_eq!(&traceresponse[52..], &format!("-{flags}"), "{flags}");
        if flags.ends_with('1') || flags == "03" {
            // Sampled: the ids written are the exported spans'.
            let client = telemetry.one("GET").await;
            let server = telemetry.one("GET /relay").await;
            assert_eq!(
                parse_traceparent(sent),
                (trace_id(&client), span_id(&client))
            );
            assert_eq!(
                parse_traceparent(&traceresponse),
                (trace_id(&server), span_id(&server))
            );
            assert_eq!(client.span_context.trace_flags().to_u8() & 1, 1);
        }
    }
}

/// A trace the service starts has random ids: the random flag goes out with it.
#[tokio::test]
async fn a_started_trace_carries_the_random_flag() {
    let telemetry = telemetry();
    let seen = Seen::default();
    let back = serve(app(seen.clone(), ServerLayer::new())).await;
    let front = front(back, ServerLayer::new(), ClientMiddleware::new()).await;
    let (traceresponse, got) = relay(front, &seen, &[]).await;
    let sent = got["traceparent"].to_str().unwrap().to_owned();
    assert!(sent.ends_with("-03"), "{sent}");
    assert!(traceresponse.ends_with("-03"), "{traceresponse}");
    let server = telemetry.one("GET /relay").await;
    let client = telemetry.one("GET").await;
    assert_eq!(server.parent_span_id, SpanId::INVALID);
    assert_eq!(
        parse_traceparent(&traceresponse),
        (trace_id(&server), span_id(&server))
    );
    assert_eq!(
        parse_traceparent(&sent),
        (trace_id(&server), span_id(&client))
    );
    // The back service continued it, random flag included, in its own traceresponse.
    let back_server = telemetry.one("GET /users/{id}").await;
    assert_eq!(trace_id(&back_server), trace_id(&server));
    assert_eq!(back_server.parent_span_id, span_id(&client));
}

/// Level 2 tracestate through a service: `@` keys and duplicated keys are inherited as they
/// came (in one header or several); a grammar break drops the tracestate, not the trace.
#[tokio::test]
async fn level2_tracestate_reaches_the_next_hop() {
    let _telemetry = telemetry();
    let seen = Seen::default();
    let back = serve(app(seen.clone(), ServerLayer::new())).await;
    let front = front(back, ServerLayer::new(), ClientMiddleware::new()).await;
    let tp = || {
        (
            "traceparent",
            traceparent("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"),
        )
    };
    let z256 = format!("{}=1", "z".repeat(256));
    for (tracestate, forwarded) in [
        (vec!["foo@=1,bar=2"], Some("foo@=1,bar=2".to_owned())),
        (
            vec!["foo@@bar=1,bar=2"],
            Some("foo@@bar=1,bar=2".to_owned()),
        ),
        (vec!["foo=1,foo=2"], Some("foo=1,foo=2".to_owned())),
        (
            vec!["foo=1", "bar=2,foo=3"],
            Some("foo=1,bar=2,foo=3".to_owned()),
        ),
        (vec![z256.as_str()], Some(z256.clone())),
        (vec!["@foo=1,bar=2"], None),
    ] {
        let mut headers = vec![tp()];
        headers.extend(tracestate.iter().map(|v| ("tracestate", (*v).to_owned())));
        let (_, got) = relay(front, &seen, &headers).await;
        assert!(
            got["traceparent"]
                .to_str()
                .unwrap()
                .starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
            "{tracestate:?}"
        );
        assert_eq!(
            got.get("tracestate")
                .map(|v| v.to_str().unwrap().to_owned()),
            forwarded,
            "{tracestate:?}"
        );
    }
    let z257 = format!("{}=1,bar=2", "z".repeat(257));
    let (_, got) = relay(front, &seen, &[tp(), ("tracestate", z257)]).await;
    assert!(got.get("tracestate").is_none());
}

/// 180 baggage entries (the W3C limit) reach the next hop whole, though OpenTelemetry's
/// `Baggage` holds 64.
#[tokio::test]
async fn baggage_of_180_entries_reaches_the_next_hop() {
    let _telemetry = telemetry();
    let seen = Seen::default();
    let back = serve(app(seen.clone(), ServerLayer::new())).await;
    let w3c = tracebridge::Propagator::from_names("tracecontext,baggage").unwrap();
    let front = front(
        back,
        ServerLayer::new().propagator(w3c.clone()),
        ClientMiddleware::new().propagator(w3c),
    )
    .await;
    let members: Vec<String> = (0..180).map(|i| format!("k{i:03}=v%20{i}")).collect();
    let (_, got) = relay(front, &seen, &[("baggage", members.join(","))]).await;
    let mut forwarded: Vec<&str> = got["baggage"].to_str().unwrap().split(',').collect();
    forwarded.sort();
    assert_eq!(
        forwarded,
        members.iter().map(String::as_str).collect::<Vec<_>>()
    );
}
