//! The page a serves at `/` (the Sentry browser demo of issue 4).
//!
//! The real page is a build output of `frontend/` (npm, bundled, never committed). a serves it
//! from a directory: `FRONTEND_DIR` when set, else `frontend/dist` under the working directory,
//! else `frontend/dist` of the source tree a was built from. `GET /` answers that directory's
//! `index.html` (read per request, so a rebuilt bundle shows without a restart) and every other
//! unmatched path is a file from it (the bundle's assets). Without a built frontend, `GET /`
//! answers a small embedded page with the same button ids, so the mesh is usable from a fresh
//! clone.
//!
//! `GET /config.json` gives the page a's browser-side configuration:
//! `{"sentryDsn", "jaegerUiUrl", "environment", "release"}` from `SENTRY_BROWSER_DSN` (default
//! `SENTRY_DSN`), `JAEGER_UI_URL`, `SENTRY_ENVIRONMENT`, `SENTRY_RELEASE`; unset values are
//! null. A DSN is a public key by design (browsers embed it), so exposing it is safe.

use std::path::{Path, PathBuf};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tower_http::services::ServeDir;

use crate::AppState;

/// The page shown when no built frontend is found.
pub const FALLBACK_PAGE: &str = include_str!("../assets/fallback.html");

/// Where the page comes from.
#[derive(Clone, Debug, Default)]
pub struct Frontend {
    /// Directory holding `index.html` + assets, or `None` for the embedded page.
    pub dir: Option<PathBuf>,
}

impl Frontend {
    /// Resolves the directory as described in the module docs.
    pub fn from_env() -> Self {
        if let Some(dir) =
            std::env::var_os(demo_common::env::FRONTEND_DIR).filter(|d| !d.is_empty())
        {
            let dir = PathBuf::from(dir);
            if dir.join("index.html").is_file() {
                return Frontend { dir: Some(dir) };
            }
            tracing::warn!(dir = %dir.display(), "FRONTEND_DIR has no index.html; serving the built-in page");
            return Frontend { dir: None };
        }
        let candidates = [
            PathBuf::from("frontend/dist"),
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../frontend/dist"),
        ];
        Frontend {
            dir: candidates
                .into_iter()
                .find(|d| d.join("index.html").is_file()),
        }
    }
}

/// `/`, `/config.json` and (with a built frontend) the assets.
pub fn routes(frontend: &Frontend) -> Router<AppState> {
    let router = Router::new()
        .route("/", get(index))
        .route("/config.json", get(config));
    match &frontend.dir {
        Some(dir) => router.fallback_service(ServeDir::new(dir)),
        None => router,
    }
}

async fn index(State(state): State<AppState>) -> Response {
    if let Some(dir) = &state.frontend.dir {
        match tokio::fs::read_to_string(dir.join("index.html")).await {
            Ok(page) => return Html(page).into_response(),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot read index.html; serving the built-in page")
            }
        }
    }
    Html(FALLBACK_PAGE).into_response()
}

async fn config() -> impl IntoResponse {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let body = json!({
        "sentryDsn": var("SENTRY_BROWSER_DSN").or_else(|| var("SENTRY_DSN")),
        "jaegerUiUrl": var("JAEGER_UI_URL"),
        "environment": var("SENTRY_ENVIRONMENT"),
        "release": var("SENTRY_RELEASE"),
    });
    (
        StatusCode::OK,
        [(header::CACHE_CONTROL, "no-store")],
        Json(body),
    )
}
