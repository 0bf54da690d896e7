//! A counting OTLP/HTTP receiver for `tb-bench rate`: it decodes every export request and
//! counts the spans, keeping nothing else.
//!
//! The testkit receiver keeps every span as an owned record (strings for every name, key and
//! value); at 50% of a bare server's capacity for 60 s that is millions of records, and the
//! decoding and the memory run on the load core, next to the load generator. This one
//! decodes with prost into messages that declare only the fields it counts by (trace id,
//! parent span id, kind) — prost still walks and checks every other field as it skips it, so a
//! malformed request is an error, not a miscount — and keeps a handful of counters.
//!
//! `POST /v1/traces` (http/protobuf, optionally `content-encoding: gzip`) → 200 with an empty
//! `ExportTraceServiceResponse`; an undecodable body → 400, counted.

use std::io::Read as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use prost::Message;

/// `ExportTraceServiceRequest`, only as deep as the spans.
#[derive(Clone, PartialEq, Message)]
struct ExportRequest {
    #[prost(message, repeated, tag = "1")]
    resource_spans: Vec<ResourceSpans>,
}

#[derive(Clone, PartialEq, Message)]
struct ResourceSpans {
    #[prost(message, repeated, tag = "2")]
    scope_spans: Vec<ScopeSpans>,
}

#[derive(Clone, PartialEq, Message)]
struct ScopeSpans {
    #[prost(message, repeated, tag = "2")]
    spans: Vec<Span>,
}

/// `Span`: the fields the counts use.
#[derive(Clone, PartialEq, Message)]
struct Span {
    #[prost(bytes = "bytes", tag = "1")]
    trace_id: Bytes,
    #[prost(bytes = "bytes", tag = "4")]
    parent_span_id: Bytes,
    #[prost(int32, tag = "6")]
    kind: i32,
}

/// `SPAN_KIND_SERVER` in OTLP.
const KIND_SERVER: i32 = 2;

/// The incoming trace a run's spans must belong to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Target {
    pub trace_id: [u8; 16],
    pub parent_span_id: [u8; 8],
}

impl Target {
    /// From the load generator's hex ids.
    pub fn from_hex(trace_id: &str, span_id: &str) -> Result<Target, String> {
        let mut t = Target::default();
        hex_into(trace_id, &mut t.trace_id)?;
        hex_into(span_id, &mut t.parent_span_id)?;
        Ok(t)
    }
}

fn hex_into(hex: &str, out: &mut [u8]) -> Result<(), String> {
    if hex.len() != 2 * out.len() {
        return Err(format!("{hex:?}: expected {} hex digits", 2 * out.len()));
    }
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
            .map_err(|_| format!("{hex:?}: not hex"))?;
    }
    Ok(())
}

/// What arrived since the last [`SpanCounter::expect`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Export requests decoded.
    pub requests: u64,
    /// Spans of the target trace.
    pub spans: u64,
    /// Of those, SERVER spans whose parent is the target's (incoming) span: one per request.
    pub roots: u64,
    /// Spans of any other trace (none should arrive).
    pub stray: u64,
    /// Requests that did not decode.
    pub bad_requests: u64,
}

impl Counts {
    /// Counts the spans of one decoded (uncompressed) export request body.
    pub fn add_request(&mut self, body: Bytes, target: &Target) -> Result<(), prost::DecodeError> {
        let request = ExportRequest::decode(body)?;
        self.requests += 1;
        for span in request
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
        {
            if span.trace_id[..] != target.trace_id {
                self.stray += 1;
                continue;
            }
            self.spans += 1;
            if span.parent_span_id[..] == target.parent_span_id && span.kind == KIND_SERVER {
                self.roots += 1;
            }
        }
        Ok(())
    }
}

#[derive(Default)]
struct Shared {
    target: Target,
    counts: Counts,
}

/// The receiver, serving on the runtime it was started on until dropped.
pub struct SpanCounter {
    addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl SpanCounter {
    /// Binds a free loopback port and serves on the current runtime.
    pub async fn start() -> std::io::Result<SpanCounter> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Mutex::new(Shared::default()));
        let app = Router::new()
            .route("/v1/traces", post(export))
            .with_state(shared.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(SpanCounter {
            addr,
            shared,
            _stop: stop,
        })
    }

    /// `OTEL_EXPORTER_OTLP_ENDPOINT` for `http/protobuf` (the exporter appends `/v1/traces`).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Starts counting for a new run: zeroes the counts, spans must belong to `target`.
    pub fn expect(&self, target: Target) {
        let mut s = self.shared.lock().expect("counter lock");
        s.target = target;
        s.counts = Counts::default();
    }

    pub fn counts(&self) -> Counts {
        self.shared.lock().expect("counter lock").counts
    }

    /// Polls (every 20 ms) until `spans` spans of the target trace arrived, or none arrived
    /// for `quiet` (the exporter has nothing left to send: a batch processor exports at least
    /// every schedule delay, 5 s by default), or `timeout` passed; the counts either way.
    pub fn wait_for_spans(&self, spans: u64, quiet: Duration, timeout: Duration) -> Counts {
        let start = Instant::now();
        let mut last = self.counts();
        let mut last_change = start;
        loop {
            let c = self.counts();
            if c.spans >= spans || start.elapsed() >= timeout || last_change.elapsed() >= quiet {
                return c;
            }
            if c != last {
                last = c;
                last_change = Instant::now();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

async fn export(
    State(shared): State<Arc<Mutex<Shared>>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, [(header::HeaderName, &'static str); 1], Bytes) {
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    let body = if gzip {
        let mut out = Vec::new();
        match flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut out) {
            Ok(_) => Bytes::from(out),
            Err(_) => Bytes::from_static(b"\xff"), // not protobuf: counted as bad below
        }
    } else {
        body
    };
    let mut s = shared.lock().expect("counter lock");
    let target = s.target;
    let status = match s.counts.add_request(body, &target) {
        Ok(()) => StatusCode::OK,
        Err(_) => {
            s.counts.bad_requests += 1;
            StatusCode::BAD_REQUEST
        }
    };
    // An empty `ExportTraceServiceResponse` encodes to zero bytes.
    (
        status,
        [(header::CONTENT_TYPE, "application/x-protobuf")],
        Bytes::new(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
    use opentelemetry_proto::tonic::trace::v1::{span, ResourceSpans, ScopeSpans, Span};

    const TRACE: [u8; 16] = [0xab; 16];
    const PARENT: [u8; 8] = [0xcd; 8];

    fn span(trace: [u8; 16], parent: &[u8], kind: span::SpanKind) -> Span {
        Span {
            trace_id: trace.to_vec(),
            span_id: vec![1; 8],
            parent_span_id: parent.to_vec(),
            name: "GET /hello ✓".into(),
            kind: kind as i32,
            start_time_unix_nano: 1,
            end_time_unix_nano: 2,
            attributes: vec![KeyValue {
                key: "http.route".into(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::StringValue("/hello".into())),
                }),
                ..KeyValue::default()
            }],
            ..Span::default()
        }
    }

    /// Encoded by opentelemetry-proto's prost types (the full schema): two resources, three
    /// scopes, every field the light decoder skips.
    fn request() -> Bytes {
        let req = ExportTraceServiceRequest {
            resource_spans: vec![
                ResourceSpans {
                    scope_spans: vec![
                        ScopeSpans {
                            spans: vec![
                                span(TRACE, &PARENT, span::SpanKind::Server),
                                span(TRACE, &[7; 8], span::SpanKind::Internal),
                            ],
                            ..ScopeSpans::default()
                        },
                        ScopeSpans {
                            spans: vec![span(TRACE, &PARENT, span::SpanKind::Client)],
                            ..ScopeSpans::default()
                        },
                    ],
                    ..ResourceSpans::default()
                },
                ResourceSpans {
                    scope_spans: vec![ScopeSpans {
                        spans: vec![
                            span([0x11; 16], &PARENT, span::SpanKind::Server),
                            span(TRACE, &PARENT, span::SpanKind::Server),
                        ],
                        ..ScopeSpans::default()
                    }],
                    ..ResourceSpans::default()
                },
            ],
        };
        req.encode_to_vec().into()
    }

    fn target() -> Target {
        Target {
            trace_id: TRACE,
            parent_span_id: PARENT,
        }
    }

    #[test]
    fn counts_every_span_of_the_target_trace() {
        let mut c = Counts::default();
        c.add_request(request(), &target()).unwrap();
        c.add_request(request(), &target()).unwrap();
        assert_eq!(
            c,
            Counts {
                requests: 2,
                spans: 8,
                roots: 4,
                stray: 2,
                bad_requests: 0
            }
        );
    }

    #[test]
    fn a_truncated_request_is_an_error() {
        let body = request();
        let mut c = Counts::default();
        assert!(c
            .add_request(body.slice(..body.len() - 3), &target())
            .is_err());
        assert_eq!(c.requests, 0);
    }

    #[test]
    fn target_from_hex() {
        let t = Target::from_hex(&"ab".repeat(16), "cdcdcdcdcdcdcdcd").unwrap();
        assert_eq!(t, target());
        assert!(Target::from_hex("ab", "cd").is_err());
        assert!(Target::from_hex(&"zz".repeat(16), "cdcdcdcdcdcdcdcd").is_err());
    }

    /// Through a socket, as the exporters send it: plain and gzip bodies, then a bad one.
    #[test]
    fn serves_http_protobuf_plain_and_gzip() {
        use std::io::Write as _;
        let rt = tokio::runtime::Runtime::new().unwrap();
        let counter = rt.block_on(SpanCounter::start()).unwrap();
        counter.expect(target());
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&request()).unwrap();
        let gzipped = gz.finish().unwrap();
        let url = format!("{}/v1/traces", counter.endpoint());
        rt.block_on(async {
            assert_eq!(post(&url, request().to_vec(), None).await, 200);
            assert_eq!(post(&url, gzipped, Some("gzip")).await, 200);
            assert_eq!(post(&url, vec![0xff, 0xff], None).await, 400);
        });
        assert_eq!(
            counter.counts(),
            Counts {
                requests: 2,
                spans: 8,
                roots: 4,
                stray: 2,
                bad_requests: 1
            }
        );
        assert_eq!(
            counter
                .wait_for_spans(8, Duration::ZERO, Duration::ZERO)
                .spans,
            8
        );
        counter.expect(target());
        assert_eq!(counter.counts(), Counts::default());
    }

    /// A minimal HTTP/1.1 POST over a raw socket (the bench has no HTTP client dependency);
    /// the response's status code.
    async fn post(url: &str, body: Vec<u8>, encoding: Option<&str>) -> u16 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let rest = url.strip_prefix("http://").unwrap();
        let (host, path) = rest.split_at(rest.find('/').unwrap());
        let mut s = tokio::net::TcpStream::connect(host).await.unwrap();
        let mut head = format!(
            "POST {path} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/x-protobuf\r\ncontent-length: {}\r\nconnection: close\r\n",
            body.len()
        );
        if let Some(e) = encoding {
            head.push_str(&format!("content-encoding: {e}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(&body).await.unwrap();
        let mut response = Vec::new();
        s.read_to_end(&mut response).await.unwrap();
        std::str::from_utf8(&response[9..12])
            .unwrap()
            .parse()
            .unwrap()
    }
}
