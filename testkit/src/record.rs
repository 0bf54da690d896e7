//! [`SpanRecord`]: one span as it arrived on the wire, decoded from OTLP into plain Rust values.
//!
//! Ids are lower-case hex (32 chars for trace ids, 16 for span ids) so they compare directly with
//! what `traceparent`, `uber-trace-id` and `sentry-trace` headers carry. Attribute maps are
//! `BTreeMap`s so `Debug` output and serialized JSON are ordered and diffable.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::{span, status, Span};
use serde::Serialize;

/// An attribute value. Arrays and key-value lists are flattened to a JSON string because tests
/// compare them as text and this keeps [`AttrValue`] `Eq`-friendly and simple to match on.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum AttrValue {
    /// A string value.
    String(String),
    /// A 64-bit integer value.
    Int(i64),
    /// A floating point value.
    Double(f64),
    /// A boolean value.
    Bool(bool),
    /// An array (or key-value list, or bytes as hex) rendered as JSON text, e.g. `["a","b"]`.
    Array(String),
}

impl AttrValue {
    /// The string value, if this is [`AttrValue::String`].
    pub fn as_str(&self) -> Option<&str> {
        match self {
            AttrValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// The integer value, if this is [`AttrValue::Int`].
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            AttrValue::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The boolean value, if this is [`AttrValue::Bool`].
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            AttrValue::Bool(b) => Some(*b),
            _ => None,
        }
    }

    fn from_any(value: &AnyValue) -> AttrValue {
        match &value.value {
            Some(any_value::Value::StringValue(s)) => AttrValue::String(s.clone()),
            Some(any_value::Value::IntValue(i)) => AttrValue::Int(*i),
            Some(any_value::Value::DoubleValue(d)) => AttrValue::Double(*d),
            Some(any_value::Value::BoolValue(b)) => AttrValue::Bool(*b),
            Some(other) => AttrValue::Array(any_to_json(Some(other)).to_string()),
            None => AttrValue::String(String::new()),
        }
    }
}

fn any_to_json(value: Option<&any_value::Value>) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        None => J::Null,
        Some(any_value::Value::StringValue(s)) => J::String(s.clone()),
        Some(any_value::Value::IntValue(i)) => J::from(*i),
        Some(any_value::Value::DoubleValue(d)) => J::from(*d),
        Some(any_value::Value::BoolValue(b)) => J::Bool(*b),
        Some(any_value::Value::BytesValue(b)) => J::String(hex(b)),
        Some(any_value::Value::ArrayValue(a)) => J::Array(
            a.values
                .iter()
                .map(|v| any_to_json(v.value.as_ref()))
                .collect(),
        ),
        Some(any_value::Value::KvlistValue(kv)) => J::Object(
            kv.values
                .iter()
                .map(|kv| {
                    (
                        kv.key.clone(),
                        any_to_json(kv.value.as_ref().and_then(|v| v.value.as_ref())),
                    )
                })
                .collect(),
        ),
        // Profiles-only string-table reference: no table here, keep the index visible.
        Some(any_value::Value::StringValueStrindex(i)) => J::String(format!("strindex:{i}")),
    }
}

impl fmt::Display for AttrValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttrValue::String(s) | AttrValue::Array(s) => f.write_str(s),
            AttrValue::Int(i) => write!(f, "{i}"),
            AttrValue::Double(d) => write!(f, "{d}"),
            AttrValue::Bool(b) => write!(f, "{b}"),
        }
    }
}

impl From<&str> for AttrValue {
    fn from(s: &str) -> Self {
        AttrValue::String(s.to_owned())
    }
}

impl From<String> for AttrValue {
    fn from(s: String) -> Self {
        AttrValue::String(s)
    }
}

impl From<i64> for AttrValue {
    fn from(i: i64) -> Self {
        AttrValue::Int(i)
    }
}

impl From<bool> for AttrValue {
    fn from(b: bool) -> Self {
        AttrValue::Bool(b)
    }
}

impl From<f64> for AttrValue {
    fn from(d: f64) -> Self {
        AttrValue::Double(d)
    }
}

/// The span kind, as OTLP carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum SpanKind {
    /// `SPAN_KIND_UNSPECIFIED` (or an unknown value).
    Unspecified,
    /// `SPAN_KIND_INTERNAL`.
    Internal,
    /// `SPAN_KIND_SERVER`.
    Server,
    /// `SPAN_KIND_CLIENT`.
    Client,
    /// `SPAN_KIND_PRODUCER`.
    Producer,
    /// `SPAN_KIND_CONSUMER`.
    Consumer,
}

impl SpanKind {
    fn from_wire(kind: i32) -> SpanKind {
        match span::SpanKind::try_from(kind) {
            Ok(span::SpanKind::Internal) => SpanKind::Internal,
            Ok(span::SpanKind::Server) => SpanKind::Server,
            Ok(span::SpanKind::Client) => SpanKind::Client,
            Ok(span::SpanKind::Producer) => SpanKind::Producer,
            Ok(span::SpanKind::Consumer) => SpanKind::Consumer,
            _ => SpanKind::Unspecified,
        }
    }

    /// Lower-case name (`server`, `client`, ...), as the waterfall prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            SpanKind::Unspecified => "unspecified",
            SpanKind::Internal => "internal",
            SpanKind::Server => "server",
            SpanKind::Client => "client",
            SpanKind::Producer => "producer",
            SpanKind::Consumer => "consumer",
        }
    }
}

impl fmt::Display for SpanKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The span status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Status {
    /// `STATUS_CODE_UNSET`.
    Unset,
    /// `STATUS_CODE_OK`.
    Ok,
    /// `STATUS_CODE_ERROR` with its description (may be empty).
    Error {
        /// The status description.
        message: String,
    },
}

impl Status {
    /// True for [`Status::Error`].
    pub fn is_error(&self) -> bool {
        matches!(self, Status::Error { .. })
    }

    /// `Status::Error` with the given message.
    pub fn error(message: impl Into<String>) -> Status {
        Status::Error {
            message: message.into(),
        }
    }
}

/// A span link.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LinkRecord {
    /// Linked trace id (32 lower-case hex chars).
    pub trace_id: String,
    /// Linked span id (16 lower-case hex chars).
    pub span_id: String,
    /// The linked context's W3C `tracestate` (empty when none).
    pub trace_state: String,
    /// Link attributes.
    pub attributes: BTreeMap<String, AttrValue>,
}

/// A span event (log line or exception recorded on the span).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EventRecord {
    /// Event name, e.g. `exception`.
    pub name: String,
    /// Event time, unix nanoseconds.
    pub time_unix_nanos: u64,
    /// Event attributes.
    pub attributes: BTreeMap<String, AttrValue>,
}

/// One span as the receiver decoded it from an OTLP export request.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SpanRecord {
    /// Trace id, 32 lower-case hex chars.
    pub trace_id: String,
    /// Span id, 16 lower-case hex chars.
    pub span_id: String,
    /// Parent span id (16 lower-case hex chars), `None` for a root span.
    pub parent_span_id: Option<String>,
    /// W3C `tracestate` the span carried (empty when none).
    pub trace_state: String,
    /// Span name.
    pub name: String,
    /// Span kind.
    pub kind: SpanKind,
    /// The resource's `service.name` (empty when the resource has none).
    pub service_name: String,
    /// All resource attributes, including `service.name`.
    pub resource: BTreeMap<String, AttrValue>,
    /// Instrumentation scope name (e.g. `tracebridge`).
    pub scope_name: String,
    /// Instrumentation scope version (empty when none).
    pub scope_version: String,
    /// Span attributes.
    pub attributes: BTreeMap<String, AttrValue>,
    /// Span status.
    pub status: Status,
    /// Start time, unix nanoseconds.
    pub start_unix_nanos: u64,
    /// End time, unix nanoseconds.
    pub end_unix_nanos: u64,
    /// Links to other spans.
    pub links: Vec<LinkRecord>,
    /// Events recorded on the span.
    pub events: Vec<EventRecord>,
    /// OTLP span flags: bits 0-7 the W3C trace flags, bit 8 (`0x100`) set when the exporter
    /// says whether the parent is remote, bit 9 (`0x200`) set when it is.
    pub flags: u32,
}

impl SpanRecord {
    /// `end - start` (zero if the clock went backwards).
    pub fn duration(&self) -> Duration {
        Duration::from_nanos(self.end_unix_nanos.saturating_sub(self.start_unix_nanos))
    }

    /// The attribute `key`, if present.
    pub fn attr(&self, key: &str) -> Option<&AttrValue> {
        self.attributes.get(key)
    }

    /// The string attribute `key`, if present and a string.
    pub fn attr_str(&self, key: &str) -> Option<&str> {
        self.attr(key).and_then(AttrValue::as_str)
    }

    /// The integer attribute `key`, if present and an integer.
    pub fn attr_i64(&self, key: &str) -> Option<i64> {
        self.attr(key).and_then(AttrValue::as_i64)
    }

    /// True when the span has no parent at all (not even a remote one).
    pub fn is_root(&self) -> bool {
        self.parent_span_id.is_none()
    }

    /// Whether the parent came from another process (an incoming `traceparent`, say), as the
    /// exporter flagged it (OTLP span flags bits 8 and 9); `None` when the exporter did not say.
    pub fn parent_is_remote(&self) -> Option<bool> {
        const HAS_IS_REMOTE: u32 = 0x100;
        const IS_REMOTE: u32 = 0x200;
        (self.flags & HAS_IS_REMOTE != 0).then_some(self.flags & IS_REMOTE != 0)
    }

    /// One-line summary used in dumps and error messages.
    pub fn summary(&self) -> String {
        format!(
            "{} {} [{}] {} trace={} span={} parent={} status={}",
            self.service_name,
            self.name,
            self.kind,
            format_args!("{:.3}ms", self.duration().as_secs_f64() * 1000.0),
            self.trace_id,
            self.span_id,
            self.parent_span_id.as_deref().unwrap_or("-"),
            match &self.status {
                Status::Unset => "unset".to_owned(),
                Status::Ok => "ok".to_owned(),
                Status::Error { message } => format!("ERROR({message})"),
            }
        )
    }
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 0xf) as usize] as char);
    }
    out
}

fn attributes(kvs: &[KeyValue]) -> BTreeMap<String, AttrValue> {
    kvs.iter()
        .map(|kv| {
            let value = kv
                .value
                .as_ref()
                .map(AttrValue::from_any)
                .unwrap_or_else(|| AttrValue::String(String::new()));
            (kv.key.clone(), value)
        })
        .collect()
}

fn decode_span(
    span: &Span,
    service_name: &str,
    resource: &BTreeMap<String, AttrValue>,
    scope_name: &str,
    scope_version: &str,
) -> SpanRecord {
    // An empty or all-zero parent id means "no parent" on the wire.
    let parent_span_id = if span.parent_span_id.iter().all(|b| *b == 0) {
        None
    } else {
        Some(hex(&span.parent_span_id))
    };
    let status = match &span.status {
        None => Status::Unset,
        Some(s) => match status::StatusCode::try_from(s.code) {
            Ok(status::StatusCode::Ok) => Status::Ok,
            Ok(status::StatusCode::Error) => Status::Error {
                message: s.message.clone(),
            },
            _ => Status::Unset,
        },
    };
    SpanRecord {
        trace_id: hex(&span.trace_id),
        span_id: hex(&span.span_id),
        parent_span_id,
        trace_state: span.trace_state.clone(),
        name: span.name.clone(),
        kind: SpanKind::from_wire(span.kind),
        service_name: service_name.to_owned(),
        resource: resource.clone(),
        scope_name: scope_name.to_owned(),
        scope_version: scope_version.to_owned(),
        attributes: attributes(&span.attributes),
        status,
        start_unix_nanos: span.start_time_unix_nano,
        end_unix_nanos: span.end_time_unix_nano,
        links: span
            .links
            .iter()
            .map(|l| LinkRecord {
                trace_id: hex(&l.trace_id),
                span_id: hex(&l.span_id),
                trace_state: l.trace_state.clone(),
                attributes: attributes(&l.attributes),
            })
            .collect(),
        events: span
            .events
            .iter()
            .map(|e| EventRecord {
                name: e.name.clone(),
                time_unix_nanos: e.time_unix_nano,
                attributes: attributes(&e.attributes),
            })
            .collect(),
        flags: span.flags,
    }
}

/// Decodes every span of an OTLP export request, in wire order.
pub fn decode_request(request: &ExportTraceServiceRequest) -> Vec<SpanRecord> {
    let mut out = Vec::new();
    for rs in &request.resource_spans {
        let resource = rs
            .resource
            .as_ref()
            .map(|r| attributes(&r.attributes))
            .unwrap_or_default();
        let service_name = resource
            .get("service.name")
            .map(|v| v.to_string())
            .unwrap_or_default();
        for ss in &rs.scope_spans {
            let scope_name = ss.scope.as_ref().map(|s| s.name.as_str()).unwrap_or("");
            let scope_version = ss.scope.as_ref().map(|s| s.version.as_str()).unwrap_or("");
            for span in &ss.spans {
                out.push(decode_span(
                    span,
                    &service_name,
                    &resource,
                    scope_name,
                    scope_version,
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, InstrumentationScope};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};

    fn kv(key: &str, value: any_value::Value) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        }
    }

    #[test]
    fn decodes_every_field() {
        let span = Span {
            trace_id: vec![0x4b; 16],
            span_id: vec![1, 2, 3, 4, 5, 6, 7, 8],
            parent_span_id: vec![0xab; 8],
            trace_state: "k=v".into(),
            name: "GET /x".into(),
            kind: span::SpanKind::Server as i32,
            flags: 0x301,
            links: vec![opentelemetry_proto::tonic::trace::v1::span::Link {
                trace_id: vec![0x11; 16],
                span_id: vec![0x22; 8],
                trace_state: "a=b".into(),
                ..Default::default()
            }],
            start_time_unix_nano: 1_000,
            end_time_unix_nano: 3_500,
            attributes: vec![
                kv("s", any_value::Value::StringValue("v".into())),
                kv("i", any_value::Value::IntValue(7)),
                kv("b", any_value::Value::BoolValue(true)),
                kv("d", any_value::Value::DoubleValue(1.5)),
                kv(
                    "a",
                    any_value::Value::ArrayValue(ArrayValue {
                        values: vec![
                            AnyValue {
                                value: Some(any_value::Value::StringValue("x".into())),
                            },
                            AnyValue {
                                value: Some(any_value::Value::IntValue(2)),
                            },
                        ],
                    }),
                ),
            ],
            status: Some(opentelemetry_proto::tonic::trace::v1::Status {
                code: status::StatusCode::Error as i32,
                message: "boom".into(),
            }),
            ..Default::default()
        };
        let root = Span {
            trace_id: vec![0x4b; 16],
            span_id: vec![9; 8],
            parent_span_id: vec![0; 8],
            ..Default::default()
        };
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![kv(
                        "service.name",
                        any_value::Value::StringValue("svc".into()),
                    )],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "scope".into(),
                        version: "1.2".into(),
                        ..Default::default()
                    }),
                    spans: vec![span, root],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let spans = decode_request(&request);
        assert_eq!(spans.len(), 2);
        let s = &spans[0];
        assert_eq!(s.trace_id, "4b".repeat(16));
        assert_eq!(s.span_id, "0102030405060708");
        assert_eq!(s.parent_span_id.as_deref(), Some("abababababababab"));
        assert_eq!(s.trace_state, "k=v");
        assert_eq!(s.kind, SpanKind::Server);
        assert_eq!(s.service_name, "svc");
        assert_eq!(s.scope_name, "scope");
        assert_eq!(s.scope_version, "1.2");
        assert_eq!(s.flags, 0x301);
        assert_eq!(s.parent_is_remote(), Some(true));
        assert_eq!(s.links.len(), 1);
        assert_eq!(s.links[0].trace_id, "11".repeat(16));
        assert_eq!(s.links[0].span_id, "22".repeat(8));
        assert_eq!(s.links[0].trace_state, "a=b");
        assert_eq!(s.status, Status::error("boom"));
        assert_eq!(s.duration(), Duration::from_nanos(2_500));
        assert_eq!(s.attr_str("s"), Some("v"));
        assert_eq!(s.attr_i64("i"), Some(7));
        assert_eq!(s.attr("b"), Some(&AttrValue::Bool(true)));
        assert_eq!(s.attr("d"), Some(&AttrValue::Double(1.5)));
        assert_eq!(s.attr("a"), Some(&AttrValue::Array(r#"["x",2]"#.into())));
        // All-zero parent bytes mean "root".
        assert_eq!(spans[1].parent_span_id, None);
        assert_eq!(spans[1].kind, SpanKind::Unspecified);
        assert_eq!(spans[1].status, Status::Unset);
        // No HAS_IS_REMOTE bit: the exporter did not say.
        assert_eq!(spans[1].parent_is_remote(), None);
    }
}
