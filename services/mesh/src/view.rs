//! `mesh --serve`'s trace view: a small HTTP server over the embedded receiver's spans.
//! `/` lists the traces received so far (newest first), `/trace/{id}` shows one as an HTML
//! waterfall.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Html;
use axum::routing::get;
use axum::Router;
use tracebridge_testkit::trace::{group, Trace};
use tracebridge_testkit::OtlpReceiver;

/// The view's routes over `receiver`.
pub fn router(receiver: Arc<OtlpReceiver>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/trace/{id}", get(one))
        .with_state(receiver)
}

async fn index(State(receiver): State<Arc<OtlpReceiver>>) -> Html<String> {
    let mut traces = group(&receiver.spans());
    traces.sort_by_key(|t| std::cmp::Reverse(t.start_unix_nanos()));
    let mut page = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>mesh traces</title></head><body>\
         <h1>Traces received by the mesh</h1><p>Newest first; reload for new ones.</p><ul>",
    );
    for trace in &traces {
        let root = trace.root();
        let services: std::collections::BTreeSet<&str> =
            trace.spans().iter().map(|s| s.service_name.as_str()).collect();
        let errors = trace.spans().iter().filter(|s| s.status.is_error()).count();
        let _ = write!(
            page,
            "<li><a href=\"/trace/{id}\"><code>{id}</code></a> {name} — {n} spans, {services}{errors}</li>",
            id = escape(trace.trace_id()),
            name = escape(&format!("{} {}", root.service_name, root.name)),
            n = trace.len(),
            services = escape(&services.into_iter().collect::<Vec<_>>().join(", ")),
            errors = if errors > 0 { format!(", <b>{errors} error spans</b>") } else { String::new() },
        );
    }
    page.push_str("</ul></body></html>");
    Html(page)
}

async fn one(
    State(receiver): State<Arc<OtlpReceiver>>,
    Path(id): Path<String>,
) -> Result<Html<String>, (StatusCode, String)> {
    let spans = receiver.spans_of(&id.to_ascii_lowercase());
    if spans.is_empty() {
        return Err((StatusCode::NOT_FOUND, format!("no spans of trace {id}\n")));
    }
    Ok(Html(format!("<pre>{}</pre>", escape(&Trace::new(spans).dump()))))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
