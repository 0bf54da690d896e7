//! The view's JSON: Jaeger's query API (`/api/services`, `/api/services/{service}/operations`,
//! `/api/operations`, `/api/traces`, `/api/traces/{id}`) over the receiver's spans, and the
//! view's own `/api/view/traces/{id}` — every field the receiver decoded (link attributes,
//! OTLP span flags with the remote-parent bits, scope version), which Jaeger's model drops.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{Path, Query as UrlQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use tracebridge_testkit::{OtlpReceiver, SpanKind};

use super::jaeger;
use super::search::Query;

type Receiver = State<Arc<OtlpReceiver>>;

fn answer(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

fn bad_request(msg: &str) -> Response {
    answer(StatusCode::BAD_REQUEST, jaeger::error(400, msg))
}

/// `GET /api/services`: every service name, sorted.
pub async fn services(State(receiver): Receiver) -> Json<Value> {
    let names: BTreeSet<String> = receiver
        .spans()
        .into_iter()
        .map(|s| s.service_name)
        .collect();
    let total = names.len();
    Json(jaeger::envelope(json!(names), total))
}

/// `GET /api/services/{service}/operations`: the service's span names, sorted (`null` for a
/// service without spans, as Jaeger answers).
pub async fn operations(State(receiver): Receiver, Path(service): Path<String>) -> Json<Value> {
    let names: BTreeSet<String> = receiver
        .spans()
        .into_iter()
        .filter(|s| s.service_name == service)
        .map(|s| s.name)
        .collect();
    let total = names.len();
    let data = if names.is_empty() {
        Value::Null
    } else {
        json!(names)
    };
    Json(jaeger::envelope(data, total))
}

/// `GET /api/operations?service=…[&spanKind=…]`: `[{"name", "spanKind"}]`, sorted.
pub async fn operations_with_kind(
    State(receiver): Receiver,
    UrlQuery(params): UrlQuery<Vec<(String, String)>>,
) -> Response {
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let Some(service) = param("service") else {
        return bad_request("parameter 'service' is required");
    };
    let kind_name = |kind: SpanKind| match kind {
        SpanKind::Unspecified => "",
        other => other.as_str(),
    };
    let ops: BTreeSet<(String, &'static str)> = receiver
        .spans()
        .into_iter()
        .filter(|s| s.service_name == service)
        .map(|s| (s.name, kind_name(s.kind)))
        .filter(|(_, kind)| param("spanKind").is_none_or(|k| k == *kind))
        .collect();
    let total = ops.len();
    let data: Vec<Value> = ops
        .into_iter()
        .map(|(name, kind)| json!({ "name": name, "spanKind": kind }))
        .collect();
    answer(StatusCode::OK, jaeger::envelope(json!(data), total))
}

/// `GET /api/traces/{id}`: one trace; 404 with Jaeger's error body when no span of it arrived.
pub async fn trace(State(receiver): Receiver, Path(id): Path<String>) -> Response {
    let Some(id) = jaeger::parse_trace_id(&id) else {
        return bad_request(&format!("invalid trace id {id:?}"));
    };
    let spans = receiver.spans_of(&id);
    if spans.is_empty() {
        return answer(StatusCode::NOT_FOUND, jaeger::error(404, "trace not found"));
    }
    answer(
        StatusCode::OK,
        jaeger::envelope(json!([jaeger::trace(&spans)]), 0),
    )
}

/// `GET /api/traces?service=…`: the search (see [`super::search`]), the trace received last
/// first.
pub async fn search(
    State(receiver): Receiver,
    UrlQuery(params): UrlQuery<Vec<(String, String)>>,
) -> Response {
    let query = match Query::parse(&params) {
        Ok(query) => query,
        Err(msg) => return bad_request(&msg),
    };
    // Most recently received trace first, as Jaeger's memory store answers.
    let traces = jaeger::by_trace(receiver.spans());
    let data: Vec<Value> = traces
        .iter()
        .rev()
        .filter(|trace| query.matches(trace))
        .take(query.limit)
        .map(|trace| jaeger::trace(trace))
        .collect();
    answer(StatusCode::OK, jaeger::envelope(json!(data), 0))
}

/// `GET /api/view/traces/{id}`: `{"traceID", "spans": [SpanRecord…]}`, spans in start order.
pub async fn view_trace(State(receiver): Receiver, Path(id): Path<String>) -> Response {
    let Some(id) = jaeger::parse_trace_id(&id) else {
        return bad_request(&format!("invalid trace id {id:?}"));
    };
    let mut spans = receiver.spans_of(&id);
    if spans.is_empty() {
        return answer(StatusCode::NOT_FOUND, jaeger::error(404, "trace not found"));
    }
    spans.sort_by(|a, b| (a.start_unix_nanos, &a.span_id).cmp(&(b.start_unix_nanos, &b.span_id)));
    answer(StatusCode::OK, json!({ "traceID": id, "spans": spans }))
}
