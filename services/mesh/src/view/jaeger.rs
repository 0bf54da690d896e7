//! Spans in Jaeger's query-API JSON (the `ui` model Jaeger UI renders from), built the way
//! Jaeger v2 (2.13) translates OTLP: attributes become typed tags, the span kind the tag
//! `span.kind`, the status the tags `otel.status_code`, `otel.status_description` and
//! `error=true`, the scope `otel.scope.name` / `otel.scope.version`, the `tracestate`
//! `w3c.tracestate`; events become logs (the event's name as the field `event`), the parent a
//! `CHILD_OF` reference and links `FOLLOWS_FROM` references; resource attributes are the
//! process's tags. Tags are sorted by key, as Jaeger's query service sorts them.
//!
//! Hand-written instead of a crate: there is no Rust crate for Jaeger's JSON model, and it is a
//! few plain objects.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};
use tracebridge_testkit::{AttrValue, SpanKind, SpanRecord, Status};

/// A trace id as Jaeger prints it: 16 hex digits when the high 64 bits are zero, else 32.
pub fn trace_id(id: &str) -> String {
    match id.strip_prefix("0000000000000000") {
        Some(low) if id.len() == 32 => low.to_owned(),
        _ => id.to_owned(),
    }
}

/// A trace id from a URL as Jaeger accepts it (1 to 32 hex digits, leading zeros optional), as
/// the 32 lower-case hex digits the receiver stores; `None` when it is not one.
pub fn parse_trace_id(id: &str) -> Option<String> {
    if id.is_empty() || id.len() > 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(format!("{:0>32}", id.to_ascii_lowercase()))
}

fn typed(key: &str, value: &AttrValue) -> Value {
    let (kind, value) = match value {
        AttrValue::String(s) | AttrValue::Array(s) => ("string", json!(s)),
        AttrValue::Int(i) => ("int64", json!(i)),
        AttrValue::Double(d) => ("float64", json!(d)),
        AttrValue::Bool(b) => ("bool", json!(b)),
    };
    json!({ "key": key, "type": kind, "value": value })
}

fn string_tag(key: &str, value: &str) -> Value {
    json!({ "key": key, "type": "string", "value": value })
}

/// The span's tags, sorted by key.
fn tags(span: &SpanRecord) -> Vec<Value> {
    let mut tags: Vec<(String, Value)> = span
        .attributes
        .iter()
        .map(|(k, v)| (k.clone(), typed(k, v)))
        .collect();
    let mut add = |key: &str, tag: Value| tags.push((key.to_owned(), tag));
    if !span.scope_name.is_empty() {
        add(
            "otel.scope.name",
            string_tag("otel.scope.name", &span.scope_name),
        );
    }
    if !span.scope_version.is_empty() {
        add(
            "otel.scope.version",
            string_tag("otel.scope.version", &span.scope_version),
        );
    }
    let kind = match span.kind {
        SpanKind::Unspecified => None,
        other => Some(other.as_str()),
    };
    if let Some(kind) = kind {
        add("span.kind", string_tag("span.kind", kind));
    }
    match &span.status {
        Status::Unset => {}
        Status::Ok => add("otel.status_code", string_tag("otel.status_code", "OK")),
        Status::Error { message } => {
            add(
                "error",
                json!({ "key": "error", "type": "bool", "value": true }),
            );
            add("otel.status_code", string_tag("otel.status_code", "ERROR"));
            if !message.is_empty() {
                add(
                    "otel.status_description",
                    string_tag("otel.status_description", message),
                );
            }
        }
    }
    if !span.trace_state.is_empty() {
        add(
            "w3c.tracestate",
            string_tag("w3c.tracestate", &span.trace_state),
        );
    }
    // Stable: a span attribute and a derived tag with the same key keep that order.
    tags.sort_by(|a, b| a.0.cmp(&b.0));
    tags.into_iter().map(|(_, tag)| tag).collect()
}

fn logs(span: &SpanRecord) -> Vec<Value> {
    span.events
        .iter()
        .map(|event| {
            let mut fields = Vec::new();
            if !event.name.is_empty() {
                fields.push(string_tag("event", &event.name));
            }
            fields.extend(event.attributes.iter().map(|(k, v)| typed(k, v)));
            json!({ "timestamp": event.time_unix_nanos / 1000, "fields": fields })
        })
        .collect()
}

fn references(span: &SpanRecord) -> Vec<Value> {
    let mut refs = Vec::new();
    if let Some(parent) = &span.parent_span_id {
        refs.push(json!({
            "refType": "CHILD_OF",
            "traceID": trace_id(&span.trace_id),
            "spanID": parent,
        }));
    }
    refs.extend(span.links.iter().map(|link| {
        json!({
            "refType": "FOLLOWS_FROM",
            "traceID": trace_id(&link.trace_id),
            "spanID": link.span_id,
        })
    }));
    refs
}

/// The process (service name + resource attributes but `service.name`, sorted) of a span.
fn process(span: &SpanRecord) -> Value {
    let tags: Vec<Value> = span
        .resource
        .iter()
        .filter(|(k, _)| k.as_str() != "service.name")
        .map(|(k, v)| typed(k, v))
        .collect();
    json!({ "serviceName": span.service_name, "tags": tags })
}

/// One trace (every span shares `trace_id`) in Jaeger's JSON, spans in start order. Process
/// ids are `p1`, `p2`, … in the order their first span starts (Jaeger numbers them in storage
/// order, so compare processes by content, not by id).
pub fn trace(spans: &[SpanRecord]) -> Value {
    let mut spans: Vec<&SpanRecord> = spans.iter().collect();
    spans.sort_by(|a, b| (a.start_unix_nanos, &a.span_id).cmp(&(b.start_unix_nanos, &b.span_id)));
    let ids: std::collections::HashSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    let mut processes: Vec<Value> = Vec::new();
    let mut out = Vec::with_capacity(spans.len());
    for span in &spans {
        let process = process(span);
        let index = match processes.iter().position(|p| *p == process) {
            Some(i) => i,
            None => {
                processes.push(process);
                processes.len() - 1
            }
        };
        // Jaeger's clock-skew adjuster warns about parents it cannot find in the trace: the
        // remote parent of the first span in this process, or a span that never arrived.
        let warnings = match &span.parent_span_id {
            Some(parent) if !ids.contains(parent.as_str()) => json!([format!(
                "invalid parent span IDs={parent}; skipping clock skew adjustment"
            )]),
            _ => Value::Null,
        };
        out.push(json!({
            "traceID": trace_id(&span.trace_id),
            "spanID": span.span_id,
            "operationName": span.name,
            "references": references(span),
            "startTime": span.start_unix_nanos / 1000,
            "duration": span.end_unix_nanos.saturating_sub(span.start_unix_nanos) / 1000,
            "tags": tags(span),
            "logs": logs(span),
            "processID": format!("p{}", index + 1),
            "warnings": warnings,
        }));
    }
    let processes: Map<String, Value> = processes
        .into_iter()
        .enumerate()
        .map(|(i, p)| (format!("p{}", i + 1), p))
        .collect();
    json!({
        "traceID": spans.first().map(|s| trace_id(&s.trace_id)).unwrap_or_default(),
        "spans": out,
        "processes": processes,
        "warnings": Value::Null,
    })
}

/// Jaeger's response envelope around `data`.
pub fn envelope(data: Value, total: usize) -> Value {
    json!({ "data": data, "total": total, "limit": 0, "offset": 0, "errors": Value::Null })
}

/// Jaeger's error envelope.
pub fn error(code: u16, msg: &str) -> Value {
    json!({
        "data": Value::Null, "total": 0, "limit": 0, "offset": 0,
        "errors": [{ "code": code, "msg": msg }],
    })
}

/// Spans grouped by trace id, in first-seen order.
pub fn by_trace(spans: Vec<SpanRecord>) -> Vec<Vec<SpanRecord>> {
    let mut order: Vec<String> = Vec::new();
    let mut groups: BTreeMap<String, Vec<SpanRecord>> = BTreeMap::new();
    for span in spans {
        if !groups.contains_key(&span.trace_id) {
            order.push(span.trace_id.clone());
        }
        groups.entry(span.trace_id.clone()).or_default().push(span);
    }
    order
        .into_iter()
        .filter_map(|id| groups.remove(&id))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracebridge_testkit::{EventRecord, LinkRecord};

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    fn span(id: &str, parent: Option<&str>, service: &str, start_us: u64) -> SpanRecord {
        SpanRecord {
            trace_id: TRACE.into(),
            span_id: id.into(),
            parent_span_id: parent.map(str::to_owned),
            trace_state: String::new(),
            name: format!("op-{id}"),
            kind: SpanKind::Internal,
            service_name: service.into(),
            resource: BTreeMap::from([
                ("service.name".to_owned(), AttrValue::from(service)),
                ("host.name".to_owned(), AttrValue::from("h1")),
            ]),
            scope_name: "tracebridge".into(),
            scope_version: String::new(),
            attributes: BTreeMap::new(),
            status: Status::Unset,
            start_unix_nanos: start_us * 1000,
            end_unix_nanos: start_us * 1000 + 2_500_999,
            links: vec![],
            events: vec![],
            flags: 0x301,
        }
    }

    #[test]
    fn a_span_in_jaeger_json_field_by_field() {
        let mut root = span(
            "00f067aa0ba902b7",
            Some("aaaaaaaaaaaaaaaa"),
            "service-a",
            1_000,
        );
        root.kind = SpanKind::Server;
        root.trace_state = "k=v".into();
        root.scope_version = "1.2".into();
        root.status = Status::error("it broke");
        root.attributes = BTreeMap::from([
            ("s".to_owned(), AttrValue::from("v")),
            ("i".to_owned(), AttrValue::from(7)),
            ("d".to_owned(), AttrValue::from(1.5)),
            ("b".to_owned(), AttrValue::from(true)),
            ("a".to_owned(), AttrValue::Array(r#"["x",2]"#.into())),
        ]);
        root.events = vec![EventRecord {
            name: "log line".into(),
            time_unix_nanos: 1_500_999,
            attributes: BTreeMap::from([("level".to_owned(), AttrValue::from("INFO"))]),
        }];
        root.links = vec![LinkRecord {
            trace_id: "0000000000000000000000000000abcd".into(),
            span_id: "2222222222222222".into(),
            trace_state: String::new(),
            attributes: BTreeMap::new(),
        }];
        let mut child = span(
            "b7ad6b7169203331",
            Some("00f067aa0ba902b7"),
            "service-b",
            2_000,
        );
        child.kind = SpanKind::Unspecified;
        child.status = Status::Ok;

        let got = trace(&[child, root]);
        let tag = |k: &str, t: &str, v: Value| json!({"key": k, "type": t, "value": v});
        let process = |name: &str| json!({"serviceName": name, "tags": [tag("host.name", "string", json!("h1"))]});
        let want = json!({
            "traceID": TRACE,
            "spans": [
                {
                    "traceID": TRACE,
                    "spanID": "00f067aa0ba902b7",
                    "operationName": "op-00f067aa0ba902b7",
                    "references": [
                        {"refType": "CHILD_OF", "traceID": TRACE, "spanID": "aaaaaaaaaaaaaaaa"},
                        {"refType": "FOLLOWS_FROM", "traceID": "000000000000abcd", "spanID": "2222222222222222"},
                    ],
                    "startTime": 1_000,
                    "duration": 2_500,
                    "tags": [
                        tag("a", "string", json!(r#"["x",2]"#)),
                        tag("b", "bool", json!(true)),
                        tag("d", "float64", json!(1.5)),
                        tag("error", "bool", json!(true)),
                        tag("i", "int64", json!(7)),
                        tag("otel.scope.name", "string", json!("tracebridge")),
                        tag("otel.scope.version", "string", json!("1.2")),
                        tag("otel.status_code", "string", json!("ERROR")),
                        tag("otel.status_description", "string", json!("it broke")),
                        tag("s", "string", json!("v")),
                        tag("span.kind", "string", json!("server")),
                        tag("w3c.tracestate", "string", json!("k=v")),
                    ],
                    "logs": [{"timestamp": 1_500, "fields": [
                        tag("event", "string", json!("log line")),
                        tag("level", "string", json!("INFO")),
                    ]}],
                    "processID": "p1",
                    "warnings": ["invalid parent span IDs=aaaaaaaaaaaaaaaa; skipping clock skew adjustment"],
                },
                {
                    "traceID": TRACE,
                    "spanID": "b7ad6b7169203331",
                    "operationName": "op-b7ad6b7169203331",
                    "references": [
                        {"refType": "CHILD_OF", "traceID": TRACE, "spanID": "00f067aa0ba902b7"},
                    ],
                    "startTime": 2_000,
                    "duration": 2_500,
                    "tags": [
                        tag("otel.scope.name", "string", json!("tracebridge")),
                        tag("otel.status_code", "string", json!("OK")),
                    ],
                    "logs": [],
                    "processID": "p2",
                    "warnings": null,
                },
            ],
            "processes": {"p1": process("service-a"), "p2": process("service-b")},
            "warnings": null,
        });
        assert_eq!(got, want, "{}", serde_json::to_string_pretty(&got).unwrap());
    }

    #[test]
    fn trace_ids_in_jaeger_form() {
        assert_eq!(trace_id(TRACE), TRACE);
        assert_eq!(
            trace_id("00000000000000001234567890abcdef"),
            "1234567890abcdef"
        );
        assert_eq!(
            parse_trace_id("ABCD").as_deref(),
            Some("0000000000000000000000000000abcd")
        );
        assert_eq!(parse_trace_id(TRACE).as_deref(), Some(TRACE));
        for bad in ["", "zz", "4bf92f3577b34da6a3ce929d0e0e47361", "4bf9-"] {
            assert_eq!(parse_trace_id(bad), None, "{bad:?}");
        }
    }
}
