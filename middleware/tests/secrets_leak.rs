//! Credentials never leave the process through telemetry. The real init (OTLP to the testkit's
//! receiver, Sentry to its envelope receiver with transactions on, log output captured at
//! DEBUG) and a real axum server behind `ServerLayer`: requests carry `authorization`,
//! `cookie`, `proxy-authorization` and a user-listed header (`TRACEBRIDGE_SENSITIVE_HEADERS`)
//! with recognisable secret values, the handler answers `set-cookie` (and fails, so Sentry gets
//! events), and it calls a second server through the instrumented client with credentials and
//! a token in the URL. Every exported span (all attributes, events, links, resource), every
//! Sentry envelope and every log line is searched for the secrets. The same requests carry a
//! non-secret header (`user-agent`) that must be found, so the search can see headers at all.
//! The handler attaches every request header to its Sentry events (as sentry-tower's request
//! layer or a user's event processor does), so the scrubbing is tested where headers really
//! are recorded.
//! The outbound allowlist keeps every trace header away from the second server, a host not on
//! it, while the call is still traced.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::Router;
use tracebridge::config::Config;
use tracebridge::http::ClientMiddleware;
use tracebridge_testkit::{OtlpReceiver, SentryReceiver, SpanKind};

mod init_support;
use init_support::Captured;

const SECRETS: [(&str, &str); 4] = [
    ("authorization", "Bearer SECRET-AUTH-0001"),
    ("cookie", "session=SECRET-COOKIE-0002"),
    ("proxy-authorization", "Basic SECRET-PROXY-0003"),
    ("x-tenant-secret", "SECRET-TENANT-0004"),
];
const SET_COOKIE: &str = "id=SECRET-SETCOOKIE-0005; HttpOnly";
const URL_PASSWORD: &str = "SECRET-URLPASS-0006";
const URL_TOKEN: &str = "SECRET-QUERY-0007";
const VISIBLE: &str = "visible-agent-0008";

/// A plain server (no tracing) that records the headers it receives.
async fn recorder() -> (SocketAddr, Arc<Mutex<Vec<HeaderMap>>>) {
    let seen: Arc<Mutex<Vec<HeaderMap>>> = Arc::default();
    let app = Router::new().route(
        "/x",
        get({
            let seen = seen.clone();
            move |headers: HeaderMap| async move {
                seen.lock().unwrap().push(headers);
                "recorded"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_never_reach_spans_logs_or_sentry_and_trace_headers_stay_on_allowed_hosts() {
    let otlp = OtlpReceiver::start().await.unwrap();
    let sentry = SentryReceiver::start().await.unwrap();
    let vars: HashMap<&str, String> = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.grpc_endpoint()),
        ("OTEL_SERVICE_NAME", "secrets".to_owned()),
        ("OTEL_BSP_SCHEDULE_DELAY", "50".to_owned()),
        ("SENTRY_DSN", sentry.dsn("pubkey")),
        ("SENTRY_TRACES_SAMPLE_RATE", "1".to_owned()),
        (
            "TRACEBRIDGE_SENSITIVE_HEADERS",
            "X-Tenant-Secret".to_owned(),
        ),
        ("RUST_LOG", "debug".to_owned()),
    ]
    .into_iter()
    .collect();
    let cfg = Config::from_lookup(|n| vars.get(n).cloned()).unwrap();
    let logs = Captured::default();
    let w = logs.clone();
    let guard = tracebridge::Builder::from_config(cfg)
        .log_writer(move || w.clone())
        .install()
        .expect("init");

    let (other, recorded) = recorder().await;
    // Trace headers may go to `allowed.invalid` only; the recorder is another host.
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(ClientMiddleware::new().allow_hosts(["allowed.invalid"]))
        .build();
    let app = Router::new()
        .route(
            "/fail",
            get(move |headers: HeaderMap| {
                let client = client.clone();
                async move {
                    tracing::info!(n = headers.len(), "handler saw the request");
                    let all: Vec<(String, String)> = headers
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
                        .collect();
                    sentry::configure_scope(|scope| {
                        scope.add_event_processor(move |mut event| {
                            event.request = Some(sentry::protocol::Request {
                                headers: all.iter().cloned().collect(),
                                ..Default::default()
                            });
                            Some(event)
                        })
                    });
                    let url = format!("http://user:{URL_PASSWORD}@{other}/x?token={URL_TOKEN}");
                    let body = client.get(url).send().await.unwrap().text().await.unwrap();
                    assert_eq!(body, "recorded");
                    tracing::error!("the work failed");
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        [(http::header::SET_COOKIE, SET_COOKIE)],
                        "failed",
                    )
                }
            }),
        )
        .route(
            "/ok",
            get(|| async { ([(http::header::SET_COOKIE, SET_COOKIE)], "ok") }),
        )
        .layer(tracebridge::http::ServerLayer::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let plain = reqwest::Client::new();
    let mut trace_ids = Vec::new();
    for path in ["/fail", "/ok"] {
        let mut request = plain
            .get(format!("http://{addr}{path}?q=1"))
            .header("user-agent", VISIBLE)
            .header("baggage", "tenant=acme");
        for (name, value) in SECRETS {
            request = request.header(name, value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(
            response.headers()["set-cookie"],
            SET_COOKIE,
            "the answer itself keeps it"
        );
        let tr = response.headers()["traceresponse"]
            .to_str()
            .unwrap()
            .to_owned();
        trace_ids.push(tr.split('-').nth(1).unwrap().to_owned());
    }

    // The allowlist: the recorder got the request, with no trace header and no baggage.
    let seen = recorded.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    for name in [
        "traceparent",
        "tracestate",
        "baggage",
        "uber-trace-id",
        "sentry-trace",
        "b3",
        "x-b3-traceid",
    ] {
        assert!(
            !seen[0].contains_key(name),
            "{name} sent to a non-allowed host"
        );
    }

    // Everything delivered: the guard's drop flushes spans and Sentry.
    let fail_trace = trace_ids[0].clone();
    otlp.wait_for(
        |s| {
            s.iter()
                .any(|x| x.trace_id == fail_trace && x.kind == SpanKind::Client)
        },
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    tokio::task::spawn_blocking(move || drop(guard))
        .await
        .unwrap();
    let spans = otlp.spans();
    let envelopes = sentry.envelopes();
    let log = logs.text();

    // Positive controls: what the search runs over really holds the requests.
    let server = spans
        .iter()
        .find(|s| s.trace_id == fail_trace && s.name == "GET /fail")
        .expect("server span of /fail");
    assert_eq!(server.attr_str("user_agent.original"), Some(VISIBLE));
    let client_span = spans
        .iter()
        .find(|s| s.trace_id == fail_trace && s.kind == SpanKind::Client)
        .expect("the call to the other host is traced");
    let url_full = client_span.attr_str("url.full").unwrap();
    assert!(url_full.contains(&format!("{other}/x")), "{url_full}");
    assert!(spans.iter().any(|s| s.trace_id == trace_ids[1]));
    let events: Vec<&serde_json::Value> =
        envelopes.iter().flat_map(|e| e.payloads("event")).collect();
    assert!(
        events
            .iter()
            .any(|e| tracebridge_testkit::sentry::trace_id_of(e) == Some(fail_trace.as_str())),
        "a Sentry event for the failed request: {envelopes:#?}"
    );
    assert!(
        !envelopes
            .iter()
            .all(|e| e.payloads("transaction").next().is_none()),
        "transactions"
    );
    assert!(log.contains("handler saw the request"), "{log}");

    // The search.
    let spans_text = format!("{spans:?}");
    let sentry_text = serde_json::to_string(&envelopes).unwrap();
    let mut secrets: Vec<&str> = SECRETS.iter().map(|(_, v)| *v).collect();
    secrets.extend([SET_COOKIE, URL_PASSWORD, URL_TOKEN]);
    for secret in secrets {
        // The distinctive part, so partial copies (a value without its scheme) are caught.
        let needle = secret
            .split([' ', '=', ';'])
            .find(|p| p.starts_with("SECRET-"))
            .unwrap();
        assert!(!spans_text.contains(needle), "{needle} in an exported span");
        assert!(
            !sentry_text.contains(needle),
            "{needle} in a Sentry envelope"
        );
        assert!(!log.contains(needle), "{needle} in the log output");
    }
    assert!(spans_text.contains(VISIBLE) && sentry_text.contains(VISIBLE));

    // Sentry PII is off by default: no cookies, no user IP.
    for e in &events {
        assert!(e["request"]["cookies"].is_null(), "{e}");
        assert!(e["user"]["ip_address"].is_null(), "{e}");
    }
}
