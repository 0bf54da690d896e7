//! The view's pages and their assets, embedded in the binary with `include_str!`: plain HTML,
//! CSS and JavaScript (no framework, no build step, nothing fetched from another host). The
//! pages fetch the JSON of [`super::api`].

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};

const SEARCH_HTML: &str = include_str!("assets/search.html");
const TRACE_HTML: &str = include_str!("assets/trace.html");

/// `(name, content type, content)` of every static asset.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "view.css",
        "text/css; charset=utf-8",
        include_str!("assets/view.css"),
    ),
    (
        "common.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/common.js"),
    ),
    (
        "search.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/search.js"),
    ),
    (
        "trace.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/trace.js"),
    ),
];

/// `GET /`, `GET /search`: the search page (its filters live in the query string).
pub async fn search() -> Html<&'static str> {
    Html(SEARCH_HTML)
}

/// `GET /trace/{id}`: the trace page; its script reads the id from the URL, so a trace whose
/// spans have not arrived yet shows once they do.
pub async fn trace(Path(_id): Path<String>) -> Html<&'static str> {
    Html(TRACE_HTML)
}

/// `GET /static/{file}`.
pub async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, body)) => {
            ([(header::CONTENT_TYPE, *content_type)], *body).into_response()
        }
        None => (StatusCode::NOT_FOUND, "no such asset\n").into_response(),
    }
}
