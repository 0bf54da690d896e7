//! One OTLP export request over http/protobuf or gRPC, and what its answer means for the retry
//! rules ([`super::retry`]).
//!
//! The body is an already encoded `ExportTraceServiceRequest`: over HTTP it is POSTed as
//! `application/x-protobuf` (gzip-compressed into a reused buffer when configured); over gRPC
//! it is sent as-is on `TraceService/Export` through a pass-through codec, so no prost struct
//! is built on the way out. Responses are decoded with opentelemetry-proto (prost) — they are
//! small, and decoding them is not on any hot path.

use std::io::Write as _;
use std::time::Duration;

use bytes::{Buf as _, BufMut as _, Bytes};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message as _;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};

use crate::config::{Compression, Config, Endpoint, Protocol};
use crate::ConfigError;

/// The gRPC method every OTLP collector serves.
const GRPC_EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// What one export attempt came to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Accepted; `rejected` spans (with the collector's message) per `partial_success`.
    Sent { rejected: i64, message: String },
    /// A transient failure: the same request may be sent again, not before `retry_after` when
    /// the collector said so (HTTP `Retry-After`, gRPC `RetryInfo`).
    Retryable {
        error: String,
        retry_after: Option<Duration>,
    },
    /// A permanent failure: sending it again would fail the same way.
    Failed(String),
}

/// The configured transport.
pub(crate) enum Transport {
    Http {
        client: reqwest::Client,
        url: String,
        headers: http::HeaderMap,
        gzip: Option<Vec<u8>>,
    },
    Grpc {
        client: tonic::client::Grpc<tonic::transport::Channel>,
        metadata: tonic::metadata::MetadataMap,
    },
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Header values may be credentials: not printed.
        match self {
            Transport::Http { url, .. } => f.debug_struct("Http").field("url", url).finish(),
            Transport::Grpc { .. } => f.write_str("Grpc"),
        }
    }
}

impl Transport {
    /// Builds the transport for `cfg`; must run inside the Tokio runtime that will drive it
    /// (tonic's channel spawns its worker there). Bad headers fail here, naming the variable.
    pub(crate) fn new(cfg: &Config, endpoint: &Endpoint) -> Result<Self, ConfigError> {
        let url = endpoint.traces_url(cfg.protocol);
        let gzip = cfg.compression == Compression::Gzip;
        match cfg.protocol {
            Protocol::HttpProtobuf => {
                let mut headers = http::HeaderMap::new();
                for (k, v) in &cfg.headers {
                    let name = http::HeaderName::from_bytes(k.as_bytes()).map_err(|_| {
                        ConfigError::new(cfg.headers_var, format!("{k:?} is not a header name"))
                    })?;
                    let value = http::HeaderValue::from_str(v).map_err(|_| {
                        ConfigError::new(
                            cfg.headers_var,
                            format!("the value of {k:?} is not a valid header value"),
                        )
                    })?;
                    headers.append(name, value);
                }
                headers.insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("application/x-protobuf"),
                );
                if gzip {
                    headers.insert(
                        http::header::CONTENT_ENCODING,
                        http::HeaderValue::from_static("gzip"),
                    );
                }
                let mut builder = reqwest::Client::builder().timeout(cfg.export_cutoff());
                if !url.starts_with("https://") {
                    // Plain HTTP never uses TLS: trust no root rather than load the system's
                    // store. Loading it (rustls-platform-verifier) parsed ~150 certificates at
                    // start and kept them and their code in memory: ≈ 0.5 MiB of the traced
                    // server's RSS (docs/performance.md, "Eighth session"). An https://
                    // endpoint still gets the system's roots.
                    builder = builder.tls_certs_only(std::iter::empty());
                }
                let client = builder
                    .build()
                    .map_err(|e| ConfigError::new(endpoint.var, format!("HTTP client: {e}")))?;
                Ok(Transport::Http {
                    client,
                    url,
                    headers,
                    gzip: gzip.then(Vec::new),
                })
            }
            Protocol::Grpc => {
                let mut metadata = tonic::metadata::MetadataMap::new();
                for (k, v) in &cfg.headers {
                    let key =
                        tonic::metadata::MetadataKey::from_bytes(k.as_bytes()).map_err(|_| {
                            ConfigError::new(
                                cfg.headers_var,
                                format!("{k:?} is not valid gRPC metadata"),
                            )
                        })?;
                    let value = v.parse().map_err(|_| {
                        ConfigError::new(
                            cfg.headers_var,
                            format!("the value of {k:?} is not valid gRPC metadata"),
                        )
                    })?;
                    metadata.insert(key, value);
                }
                let mut channel = tonic::transport::Endpoint::from_shared(url.clone())
                    .map_err(|e| ConfigError::new(endpoint.var, format!("{url:?}: {e}")))?
                    .timeout(cfg.export_cutoff());
                if url.starts_with("https://") {
                    // tonic's default TLS config trusts no root at all: use the system's roots,
                    // as the HTTP transport (reqwest + rustls) does.
                    channel = channel
                        .tls_config(tonic::transport::ClientTlsConfig::new().with_native_roots())
                        .map_err(|e| ConfigError::new(endpoint.var, format!("TLS: {e}")))?;
                }
                let mut client = tonic::client::Grpc::new(channel.connect_lazy())
                    .accept_compressed(CompressionEncoding::Gzip);
                if gzip {
                    client = client.send_compressed(CompressionEncoding::Gzip);
                }
                Ok(Transport::Grpc { client, metadata })
            }
        }
    }

    /// Sends `body` (an encoded `ExportTraceServiceRequest`) once, within `timeout`. The body
    /// is shared with the request, not copied (a batch is a few hundred KiB, and a copy per
    /// attempt was the export thread's largest allocation).
    pub(crate) async fn send(&mut self, body: &Bytes, timeout: Duration) -> Outcome {
        match self {
            Transport::Http {
                client,
                url,
                headers,
                gzip,
            } => {
                let compressed = gzip.as_mut().map(|buf| {
                    buf.clear();
                    let mut gz = flate2::write::GzEncoder::new(
                        std::mem::take(buf),
                        flate2::Compression::fast(),
                    );
                    // Writing into a Vec cannot fail.
                    let _ = gz.write_all(body);
                    Bytes::from(gz.finish().unwrap_or_default())
                });
                let sent = client
                    .post(url.as_str())
                    .headers(headers.clone())
                    .timeout(timeout)
                    .body(compressed.clone().unwrap_or_else(|| body.clone()))
                    .send()
                    .await;
                if let (Some(buf), Some(compressed)) = (gzip.as_mut(), compressed) {
                    // The buffer back for the next export (no copy once the request let go).
                    *buf = Vec::from(compressed);
                }
                match sent {
                    Ok(response) => http_outcome(response).await,
                    // Connection refused or reset, a timeout: the collector may be restarting.
                    Err(e) => Outcome::Retryable {
                        error: error_chain(&e),
                        retry_after: None,
                    },
                }
            }
            Transport::Grpc { client, metadata } => {
                let mut request = tonic::Request::new(body.clone());
                *request.metadata_mut() = metadata.clone();
                request.set_timeout(timeout);
                if let Err(e) = client.ready().await {
                    return Outcome::Retryable {
                        error: format!("gRPC channel: {}", error_chain(&e)),
                        retry_after: None,
                    };
                }
                let path = http::uri::PathAndQuery::from_static(GRPC_EXPORT);
                match client.unary(request, path, BytesCodec).await {
                    Ok(response) => sent(&response.into_inner()),
                    Err(status) => grpc_outcome(&status),
                }
            }
        }
    }
}

/// The accepted response's partial success, if any.
fn sent(body: &[u8]) -> Outcome {
    let partial = ExportTraceServiceResponse::decode(body)
        .ok()
        .and_then(|r| r.partial_success);
    match partial {
        Some(p) => Outcome::Sent {
            rejected: p.rejected_spans,
            message: p.error_message,
        },
        None => Outcome::Sent {
            rejected: 0,
            message: String::new(),
        },
    }
}

/// OTLP/HTTP: 2xx is success (with a possible partial success); 429, 502, 503 and 504 are
/// retryable, honouring `Retry-After` (delay-seconds form); everything else is permanent.
async fn http_outcome(response: reqwest::Response) -> Outcome {
    let status = response.status();
    let retry_after = response
        .headers()
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = response.bytes().await.unwrap_or_default();
    if status.is_success() {
        return sent(&body);
    }
    // The spec: the body of a failed response is a google.rpc.Status.
    let message = tonic_types::Status::decode(body.as_ref())
        .ok()
        .map(|s| s.message)
        .filter(|m| !m.is_empty());
    let error = match message {
        Some(m) => format!("HTTP {status}: {m}"),
        None => format!("HTTP {status}"),
    };
    match status.as_u16() {
        429 | 502 | 503 | 504 => Outcome::Retryable { error, retry_after },
        _ => Outcome::Failed(error),
    }
}

/// OTLP/gRPC: the spec's retryable codes; `RESOURCE_EXHAUSTED` only when the server says when
/// to retry (`RetryInfo`), which is honoured for every retryable code.
fn grpc_outcome(status: &tonic::Status) -> Outcome {
    use tonic::Code;
    use tonic_types::StatusExt as _;
    let retry_after = status
        .get_details_retry_info()
        .and_then(|info| info.retry_delay);
    let error = format!("gRPC {:?}: {}", status.code(), status.message());
    let retryable = match status.code() {
        Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unavailable
        | Code::DataLoss => true,
        Code::ResourceExhausted => retry_after.is_some(),
        _ => false,
    };
    if retryable {
        Outcome::Retryable { error, retry_after }
    } else {
        Outcome::Failed(error)
    }
}

/// An error and its sources on one line ("error sending request: connection refused").
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

/// A gRPC codec passing already encoded protobuf bytes through, both ways.
#[derive(Debug, Clone, Copy, Default)]
struct BytesCodec;

impl Codec for BytesCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = BytesCodec;
    type Decoder = BytesCodec;

    fn encoder(&mut self) -> Self::Encoder {
        BytesCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        BytesCodec
    }
}

impl Encoder for BytesCodec {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for BytesCodec {
    type Item = Bytes;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Self::Error> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}
