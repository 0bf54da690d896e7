//! `GET /trace`: the demo's user action. trace1 > trace2 inside a, then b (which calls c over
//! HTTP) and c over gRPC, one after the other so a waterfall reads left to right.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use opentelemetry::trace::TraceContextExt;
use ping_proto::PingRequest;
use serde_json::{json, Value};

use crate::AppState;

/// `?fail=b` or `?fail=c`.
#[derive(Debug, Default, serde::Deserialize)]
pub struct TraceParams {
    /// The service that should fail.
    pub fail: Option<String>,
}

/// The handler: 200 `{"trace_id", "b", "c"}`, 502 `{"error", "trace_id"}` when b or c fails,
/// 400 for an unknown `fail` value.
pub async fn trace(
    State(state): State<AppState>,
    Query(params): Query<TraceParams>,
) -> (StatusCode, Json<Value>) {
    let trace_id = current_trace_id();
    let (fail_b, fail_c) = match params.fail.as_deref() {
        None | Some("") => (false, false),
        Some("b") => (true, false),
        Some("c") => (false, true),
        Some(_) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": "fail must be b or c", "trace_id": trace_id})),
            )
        }
    };

    trace1().await;

    let b = state
        .b
        .clone()
        .ping(PingRequest {
            from: crate::SERVICE_NAME.into(),
            fail: fail_b,
        })
        .await;
    let b = match b {
        Ok(reply) => reply.into_inner().message,
        Err(status) => return upstream_failed("service-b", &status, trace_id),
    };
    let c = state
        .c
        .clone()
        .ping(PingRequest {
            from: crate::SERVICE_NAME.into(),
            fail: fail_c,
        })
        .await;
    let c = match c {
        Ok(reply) => reply.into_inner().message,
        Err(status) => return upstream_failed("service-c", &status, trace_id),
    };
    (
        StatusCode::OK,
        Json(json!({"trace_id": trace_id, "b": b, "c": c})),
    )
}

fn upstream_failed(
    service: &str,
    status: &tonic::Status,
    trace_id: Option<String>,
) -> (StatusCode, Json<Value>) {
    let error = format!(
        "{service} failed: {:?}: {}",
        status.code(),
        status.message()
    );
    // A warning: the server layer reports the 502 to Sentry once, with this as a breadcrumb.
    tracing::warn!(upstream = service, code = ?status.code(), "{error}");
    (
        StatusCode::BAD_GATEWAY,
        Json(json!({"error": error, "trace_id": trace_id})),
    )
}

/// The trace id of the request's span (None when tracing is off, e.g. `OTEL_SDK_DISABLED`).
pub fn current_trace_id() -> Option<String> {
    // The server layer attaches the request's context while it polls the handler (and entered
    // `tracing` spans activate theirs), so the current OpenTelemetry context is the request's.
    let cx = opentelemetry::Context::current();
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid().then(|| sc.trace_id().to_string())
}

/// a's internal work: its own span, with trace2 inside it.
#[tracing::instrument]
async fn trace1() {
    demo_common::demo_work().await;
    trace2().await;
}

/// The nested internal span.
#[tracing::instrument]
async fn trace2() {
    demo_common::demo_work().await;
}
