//! `POST /conformance`: the interface of the W3C Trace Context test harness
//! (<https://github.com/w3c/trace-context/tree/main/test>). The body is a list of calls,
//! `[{"url": "...", "arguments": [...]}, ...]`; for each, in order, a POSTs `arguments` as
//! JSON to `url` through the instrumented HTTP client — a fresh CLIENT span per call, so each
//! carries the incoming trace id with a new parent id — then answers 200.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::Value;

use crate::AppState;

/// One call the harness asks for.
#[derive(Debug, serde::Deserialize)]
pub struct Call {
    /// Where to POST.
    pub url: String,
    /// The JSON body to POST (the harness nests further calls here).
    #[serde(default)]
    pub arguments: Value,
}

/// The handler. A call that fails (refused, timeout, bad URL) is logged and skipped: the
/// harness judges the headers it received, not a's answer.
pub async fn conformance(
    State(state): State<AppState>,
    Json(calls): Json<Vec<Call>>,
) -> StatusCode {
    for call in calls {
        if let Err(e) = state
            .http
            .post(&call.url)
            .json(&call.arguments)
            .send()
            .await
        {
            tracing::warn!(url = %call.url, error = %e, "conformance call failed");
        }
    }
    StatusCode::OK
}
