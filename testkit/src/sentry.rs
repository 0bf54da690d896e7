//! [`SentryReceiver`]: a loopback HTTP server that accepts what Sentry SDKs send, for tests.
//!
//! Bugsink (the Sentry-compatible server used elsewhere) keeps errors but drops transactions;
//! this receiver keeps everything, so tests can check that a backend transaction, a backend
//! error and a browser event all carry one trace id.
//!
//! Accepted, for any project id:
//! - `POST /api/{project_id}/envelope/` — the envelope format: a header JSON line (with the
//!   `trace` dynamic sampling context), then items, each an item-header JSON line (with an
//!   optional `length`) followed by its payload (`length` bytes, or up to the next newline);
//! - `POST /api/{project_id}/store/` — the legacy single-event JSON body;
//! - `Content-Encoding: gzip` / `deflate` bodies, and CORS preflights (`OPTIONS`) so browser
//!   SDKs can post cross-origin.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use tracebridge_testkit::SentryReceiver;
//!
//! let sentry = SentryReceiver::start().await?;
//! let dsn = sentry.dsn("public"); // http://public@127.0.0.1:PORT/1
//! // ... sentry::init(dsn), do work, flush ...
//! let transactions = sentry.wait_for_transactions(1, Duration::from_secs(10)).await?;
//! # let _ = transactions;
//! # Ok(()) }
//! ```

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tower_http::cors::CorsLayer;

use crate::otlp::decode_body;
use crate::store::Store;

const MAX_BODY: usize = 64 * 1024 * 1024;
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Which endpoint a payload arrived on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Endpoint {
    /// `/api/{project}/envelope/`.
    Envelope,
    /// `/api/{project}/store/` (legacy JSON event; stored as an envelope with one `event` item).
    Store,
}

/// One envelope item.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EnvelopeItem {
    /// The item type (`event`, `transaction`, `attachment`, `client_report`, ...).
    pub item_type: String,
    /// The item header as sent.
    pub header: Value,
    /// The payload parsed as JSON, or, when it is not JSON (attachments), the payload as a
    /// (lossily decoded) string.
    pub payload: Value,
}

/// One received envelope.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Envelope {
    /// Project id from the URL.
    pub project_id: String,
    /// Where it arrived.
    pub endpoint: Endpoint,
    /// The public key from `X-Sentry-Auth` or the `sentry_key` query parameter.
    pub public_key: Option<String>,
    /// The envelope header (`event_id`, `sent_at`, `dsn`, `trace` = the DSC, ...).
    pub headers: Value,
    /// The items in order.
    pub items: Vec<EnvelopeItem>,
}

impl Envelope {
    /// The `trace` envelope header: the dynamic sampling context (`trace_id`, `public_key`,
    /// `sample_rate`, `sampled`, ...).
    pub fn trace_header(&self) -> Option<&Value> {
        self.headers.get("trace")
    }

    /// Payloads of the items of `item_type`.
    pub fn payloads<'a>(&'a self, item_type: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.items
            .iter()
            .filter(move |i| i.item_type == item_type)
            .map(|i| &i.payload)
    }
}

/// `contexts.trace.trace_id` of an event or transaction payload.
pub fn trace_id_of(payload: &Value) -> Option<&str> {
    payload.pointer("/contexts/trace/trace_id")?.as_str()
}

/// Parses the Sentry envelope format into (header, items).
///
/// Never panics on hostile input: a bad header line, an item header that is not JSON, or a
/// `length` running past the body is an error naming the problem.
pub fn parse_envelope(body: &[u8]) -> Result<(Value, Vec<EnvelopeItem>), String> {
    let (first, mut pos) = line_at(body, 0);
    let headers = if first.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Default::default())
    } else {
        serde_json::from_slice::<Value>(first).map_err(|e| format!("bad envelope header: {e}"))?
    };
    if !headers.is_object() {
        return Err("envelope header is not a JSON object".into());
    }
    let mut items = Vec::new();
    while pos < body.len() {
        let (line, next) = line_at(body, pos);
        pos = next;
        if line.iter().all(u8::is_ascii_whitespace) {
            // Blank lines between items (a trailing newline, an SDK's extra newline) are noise.
            continue;
        }
        let header: Value = serde_json::from_slice(line)
            .map_err(|e| format!("bad item header #{}: {e}", items.len() + 1))?;
        let item_type = header
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_owned();
        let payload = match header.get("length") {
            Some(length) => {
                let length = length
                    .as_u64()
                    .and_then(|l| usize::try_from(l).ok())
                    .ok_or_else(|| format!("item {item_type}: bad length {length}"))?;
                let end = pos
                    .checked_add(length)
                    .filter(|end| *end <= body.len())
                    .ok_or_else(|| {
                        format!(
                            "item {item_type}: length {length} runs past the body ({} bytes left)",
                            body.len() - pos
                        )
                    })?;
                let payload = &body[pos..end];
                pos = end;
                // The payload is followed by a newline unless it is the last thing in the body.
                if body.get(pos) == Some(&b'\n') {
                    pos += 1;
                }
                payload
            }
            None => {
                let (payload, next) = line_at(body, pos);
                pos = next;
                payload
            }
        };
        items.push(EnvelopeItem {
            item_type,
            header,
            payload: parse_payload(payload),
        });
    }
    Ok((headers, items))
}

/// The line starting at `pos` (without `\n` or `\r\n`) and the position after it.
fn line_at(body: &[u8], pos: usize) -> (&[u8], usize) {
    let rest = &body[pos.min(body.len())..];
    let (line, next) = match rest.iter().position(|b| *b == b'\n') {
        Some(i) => (&rest[..i], pos + i + 1),
        None => (rest, body.len()),
    };
    (line.strip_suffix(b"\r").unwrap_or(line), next)
}

fn parse_payload(payload: &[u8]) -> Value {
    serde_json::from_slice(payload)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(payload).into_owned()))
}

/// The `sentry_key` from `X-Sentry-Auth: Sentry sentry_key=..., sentry_version=7` or the query.
fn public_key(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    let from_header = headers
        .get("x-sentry-auth")
        .and_then(|v| v.to_str().ok())
        .and_then(|auth| {
            let auth = auth.trim();
            let auth = auth.strip_prefix("Sentry ").unwrap_or(auth);
            auth.split(',').find_map(|part| {
                part.trim()
                    .strip_prefix("sentry_key=")
                    .map(|k| k.trim().to_owned())
            })
        });
    from_header.or_else(|| {
        query?
            .split('&')
            .find_map(|pair| pair.strip_prefix("sentry_key=").map(str::to_owned))
    })
}

/// An in-memory Sentry ingestion endpoint on loopback.
#[derive(Debug)]
pub struct SentryReceiver {
    store: Arc<Store<Envelope>>,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Drop for SentryReceiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl SentryReceiver {
    /// Starts on a free loopback port (`127.0.0.1:0`).
    pub async fn start() -> io::Result<SentryReceiver> {
        SentryReceiver::start_on(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Starts on `addr`.
    pub async fn start_on(addr: SocketAddr) -> io::Result<SentryReceiver> {
        let store = Store::new();
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let app = Router::new()
            .route(
                "/api/{project_id}/envelope/",
                post(envelope_endpoint).options(preflight),
            )
            .route(
                "/api/{project_id}/envelope",
                post(envelope_endpoint).options(preflight),
            )
            .route(
                "/api/{project_id}/store/",
                post(store_endpoint).options(preflight),
            )
            .route(
                "/api/{project_id}/store",
                post(store_endpoint).options(preflight),
            )
            .layer(DefaultBodyLimit::max(MAX_BODY))
            // Browser SDKs post cross-origin (page on service a, Sentry elsewhere).
            .layer(CorsLayer::permissive())
            .with_state(store.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let result = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(err) = result {
                eprintln!("tracebridge-testkit: Sentry receiver stopped: {err}");
            }
        });
        Ok(SentryReceiver {
            store,
            addr,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL, e.g. `http://127.0.0.1:41236`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A DSN for project 1 with this public key, e.g. `http://KEY@127.0.0.1:41236/1`.
    pub fn dsn(&self, public_key: &str) -> String {
        self.dsn_for_project(public_key, 1)
    }

    /// A DSN for `project_id` with this public key.
    pub fn dsn_for_project(&self, public_key: &str, project_id: u64) -> String {
        format!("http://{public_key}@{}/{project_id}", self.addr)
    }

    /// Every envelope received (store-endpoint events included), in arrival order.
    pub fn envelopes(&self) -> Vec<Envelope> {
        self.store.snapshot()
    }

    /// Payloads of every `event` item (errors and messages), in arrival order.
    pub fn events(&self) -> Vec<Value> {
        payloads(&self.envelopes(), "event")
    }

    /// Payloads of every `transaction` item, in arrival order.
    pub fn transactions(&self) -> Vec<Value> {
        payloads(&self.envelopes(), "transaction")
    }

    /// Forgets everything received (the request count is kept).
    pub fn clear(&self) {
        self.store.clear();
    }

    /// Number of POST requests received, including malformed ones.
    pub fn request_count(&self) -> u64 {
        self.store.request_count()
    }

    /// Waits until `pred(all envelopes)` is true; on timeout the error lists what arrived.
    pub async fn wait_for<F>(&self, pred: F, timeout: Duration) -> Result<Vec<Envelope>, String>
    where
        F: FnMut(&[Envelope]) -> bool,
    {
        self.store
            .wait_for(pred, timeout)
            .await
            .map_err(|envelopes| {
                let mut msg = format!(
                    "timed out after {timeout:?}: {} envelopes in {} requests",
                    envelopes.len(),
                    self.request_count()
                );
                for env in &envelopes {
                    let types: Vec<&str> = env.items.iter().map(|i| i.item_type.as_str()).collect();
                    msg.push_str(&format!(
                        "\n  project {} items {:?} trace header {}",
                        env.project_id,
                        types,
                        env.trace_header().map(Value::to_string).unwrap_or_default()
                    ));
                    for item in &env.items {
                        if let Some(trace_id) = trace_id_of(&item.payload) {
                            msg.push_str(&format!("\n    {} trace_id {trace_id}", item.item_type));
                        }
                    }
                }
                msg
            })
    }

    /// Waits until at least `n` `event` items arrived and returns all event payloads.
    pub async fn wait_for_events(&self, n: usize, timeout: Duration) -> Result<Vec<Value>, String> {
        let envelopes = self
            .wait_for(|envs| count(envs, "event") >= n, timeout)
            .await?;
        Ok(payloads(&envelopes, "event"))
    }

    /// Waits until at least `n` `transaction` items arrived and returns all transaction
    /// payloads.
    pub async fn wait_for_transactions(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<Value>, String> {
        let envelopes = self
            .wait_for(|envs| count(envs, "transaction") >= n, timeout)
            .await?;
        Ok(payloads(&envelopes, "transaction"))
    }

    /// Stops the server and waits for it.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }
}

fn count(envelopes: &[Envelope], item_type: &str) -> usize {
    envelopes
        .iter()
        .map(|e| e.payloads(item_type).count())
        .sum()
}

fn payloads(envelopes: &[Envelope], item_type: &str) -> Vec<Value> {
    envelopes
        .iter()
        .flat_map(|e| e.payloads(item_type).cloned())
        .collect()
}

async fn preflight() -> StatusCode {
    StatusCode::NO_CONTENT
}

fn accepted(event_id: Option<&str>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({ "id": event_id }).to_string(),
    )
        .into_response()
}

fn rejected(store: &Store<Envelope>, message: String) -> Response {
    // Count it: a test that expects "the SDK sent something" should see malformed sends.
    store.push_request([]);
    (StatusCode::BAD_REQUEST, message).into_response()
}

async fn envelope_endpoint(
    State(store): State<Arc<Store<Envelope>>>,
    Path(project_id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed = decode_body(&headers, body).and_then(|body| parse_envelope(&body));
    match parsed {
        Ok((env_headers, items)) => {
            let event_id = env_headers
                .get("event_id")
                .and_then(Value::as_str)
                .map(str::to_owned);
            store.push_request([Envelope {
                project_id,
                endpoint: Endpoint::Envelope,
                public_key: public_key(&headers, query.as_deref()),
                headers: env_headers,
                items,
            }]);
            accepted(event_id.as_deref())
        }
        Err(message) => rejected(&store, message),
    }
}

async fn store_endpoint(
    State(store): State<Arc<Store<Envelope>>>,
    Path(project_id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed = decode_body(&headers, body).and_then(|body| {
        serde_json::from_slice::<Value>(&body).map_err(|e| format!("bad event JSON: {e}"))
    });
    match parsed {
        Ok(event) => {
            let event_id = event
                .get("event_id")
                .and_then(Value::as_str)
                .map(str::to_owned);
            store.push_request([Envelope {
                project_id,
                endpoint: Endpoint::Store,
                public_key: public_key(&headers, query.as_deref()),
                headers: Value::Object(Default::default()),
                items: vec![EnvelopeItem {
                    item_type: "event".into(),
                    header: serde_json::json!({ "type": "event" }),
                    payload: event,
                }],
            }]);
            accepted(event_id.as_deref())
        }
        Err(message) => rejected(&store, message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::io::Write;

    #[test]
    fn parses_length_and_newline_delimited_items() {
        let body = b"{\"event_id\":\"9ec79c33ec9942ab8353589fcb2e04dc\",\"trace\":{\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\"}}\n\
{\"type\":\"attachment\",\"length\":10,\"filename\":\"a.txt\"}\n\
line1\nline\n\
{\"type\":\"event\"}\n\
{\"message\":\"hi\",\"contexts\":{\"trace\":{\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\"}}}\n\
\n\
{\"type\":\"transaction\",\"length\":12}\n\
{\"a\":\"b\\nc\"}";
        let (headers, items) = parse_envelope(body).unwrap();
        assert_eq!(headers["event_id"], "9ec79c33ec9942ab8353589fcb2e04dc");
        assert_eq!(
            headers["trace"]["trace_id"],
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].item_type, "attachment");
        // `length` bytes, newlines included.
        assert_eq!(items[0].payload, json!("line1\nline"));
        assert_eq!(items[0].header["filename"], "a.txt");
        assert_eq!(items[1].item_type, "event");
        assert_eq!(
            trace_id_of(&items[1].payload),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(items[2].item_type, "transaction");
        assert_eq!(items[2].payload, json!({"a": "b\nc"}));
    }

    #[test]
    fn header_only_and_crlf_envelopes() {
        let (headers, items) = parse_envelope(b"{}").unwrap();
        assert_eq!(headers, json!({}));
        assert!(items.is_empty());
        let (_, items) = parse_envelope(b"{}\r\n{\"type\":\"event\"}\r\n{\"x\":1}\r\n").unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].payload, json!({"x": 1}));
    }

    #[test]
    fn hostile_envelopes_are_errors_not_panics() {
        let cases: &[(&[u8], &str)] = &[
            (b"not json\n", "bad envelope header"),
            (b"[1,2]\n", "not a JSON object"),
            (
                b"{}\n{\"type\":\"event\",\"length\":999}\n{}",
                "runs past the body",
            ),
            (b"{}\n{\"type\":\"event\",\"length\":-1}\n{}", "bad length"),
            (
                b"{}\n{\"type\":\"event\",\"length\":18446744073709551615}\n{}",
                "runs past the body",
            ),
            (b"{}\n{oops\n", "bad item header #1"),
        ];
        for (body, expected) in cases {
            let err = parse_envelope(body).unwrap_err();
            assert!(
                err.contains(expected),
                "{err:?} for {:?}",
                String::from_utf8_lossy(body)
            );
        }
        // Binary garbage payloads without JSON are kept as text, not rejected.
        let (_, items) =
            parse_envelope(b"{}\n{\"type\":\"attachment\",\"length\":2}\n\xff\xfe").unwrap();
        assert_eq!(items[0].payload, json!("\u{fffd}\u{fffd}"));
    }

    #[test]
    fn public_key_from_auth_header_or_query() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-sentry-auth",
            "Sentry sentry_version=7, sentry_client=sentry.rust/0.49.5, sentry_key=abc"
                .parse()
                .unwrap(),
        );
        assert_eq!(public_key(&headers, None).as_deref(), Some("abc"));
        assert_eq!(
            public_key(&HeaderMap::new(), Some("sentry_version=7&sentry_key=xyz")).as_deref(),
            Some("xyz")
        );
        assert_eq!(public_key(&HeaderMap::new(), None), None);
    }

    #[tokio::test]
    async fn http_endpoints_cors_compression_and_store() {
        let receiver = SentryReceiver::start().await.unwrap();
        assert_eq!(
            receiver.dsn("k"),
            format!("http://k@127.0.0.1:{}/1", receiver.addr().port())
        );
        let client = reqwest::Client::new();
        let envelope_url = format!(
            "{}/api/7/envelope/?sentry_key=k&sentry_version=7",
            receiver.url()
        );

        // Browser preflight.
        let resp = client
            .request(reqwest::Method::OPTIONS, &envelope_url)
            .header("origin", "http://127.0.0.1:8080")
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{}", resp.status());
        assert_eq!(resp.headers()["access-control-allow-origin"], "*");

        // A gzip-compressed envelope from a browser origin.
        let body = b"{\"event_id\":\"e1\",\"trace\":{\"trace_id\":\"t\"}}\n{\"type\":\"event\"}\n{\"message\":\"m\"}\n";
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(body).unwrap();
        let resp = client
            .post(&envelope_url)
            .header("origin", "http://127.0.0.1:8080")
            .header("content-type", "text/plain;charset=UTF-8")
            .header("content-encoding", "gzip")
            .body(gz.finish().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["access-control-allow-origin"], "*");
        assert_eq!(resp.text().await.unwrap(), r#"{"id":"e1"}"#);

        // Deflate (zlib) to the legacy store endpoint, without the trailing slash.
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(br#"{"event_id":"e2","message":"legacy"}"#)
            .unwrap();
        let resp = client
            .post(format!("{}/api/3/store", receiver.url()))
            .header(
                "x-sentry-auth",
                "Sentry sentry_key=legacy, sentry_version=7",
            )
            .header("content-encoding", "deflate")
            .body(z.finish().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);

        // Malformed: rejected with 400 and counted.
        let resp = client
            .post(&envelope_url)
            .body("garbage")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400);

        let envelopes = receiver
            .wait_for(|e| e.len() == 2, Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(receiver.request_count(), 3);
        assert_eq!(envelopes[0].project_id, "7");
        assert_eq!(envelopes[0].endpoint, Endpoint::Envelope);
        assert_eq!(envelopes[0].public_key.as_deref(), Some("k"));
        assert_eq!(envelopes[0].trace_header(), Some(&json!({"trace_id": "t"})));
        assert_eq!(envelopes[1].project_id, "3");
        assert_eq!(envelopes[1].endpoint, Endpoint::Store);
        assert_eq!(envelopes[1].public_key.as_deref(), Some("legacy"));
        assert_eq!(
            receiver.events(),
            vec![
                json!({"message": "m"}),
                json!({"event_id": "e2", "message": "legacy"})
            ]
        );
        assert!(receiver.transactions().is_empty());

        let err = receiver
            .wait_for_transactions(1, Duration::from_millis(20))
            .await
            .unwrap_err();
        assert!(err.contains("2 envelopes in 3 requests"), "{err}");
        assert!(err.contains("items [\"event\"]"), "{err}");
        receiver.clear();
        assert!(receiver.envelopes().is_empty());
        receiver.shutdown().await;
    }
}
