//! `mesh --serve`'s trace explorer over the embedded OTLP receiver, in Jaeger's shape so the
//! rest of the product works against it when no Jaeger runs:
//!
//! - pages (`pages.rs`): `/` and `/search` (find traces by service, operation, errors, minimum
//!   duration or id; new traces appear without a reload) and `/trace/{id}` (waterfall, span
//!   details), plain HTML/CSS/JS embedded in the binary — no CDN, no build step;
//! - JSON (`api.rs`): Jaeger's query API — `/api/services`, `/api/services/{service}/operations`,
//!   `/api/operations`, `/api/traces?service=…`, `/api/traces/{id}` — in the JSON Jaeger v2
//!   returns for the same spans (`jaeger.rs`, `search.rs`), and `/api/view/traces/{id}` with every
//!   field the receiver decoded.
//!
//! `mesh --serve` binds the view before it starts the services so their `JAEGER_UI_URL` can
//! point at it: the demo page's trace link and Sentry events' Jaeger links open the view.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tracebridge_testkit::OtlpReceiver;

mod api;
mod jaeger;
mod pages;
mod search;

/// The view's routes over `receiver`.
pub fn router(receiver: Arc<OtlpReceiver>) -> Router {
    Router::new()
        .route("/", get(pages::search))
        .route("/search", get(pages::search))
        .route("/trace/{id}", get(pages::trace))
        .route("/static/{file}", get(pages::asset))
        .route("/api/services", get(api::services))
        .route("/api/services/{service}/operations", get(api::operations))
        .route("/api/operations", get(api::operations_with_kind))
        .route("/api/traces", get(api::search))
        .route("/api/traces/{id}", get(api::trace))
        .route("/api/view/traces/{id}", get(api::view_trace))
        .with_state(receiver)
}

/// The view bound to a loopback port, not yet serving.
#[derive(Debug)]
pub struct View {
    listener: TcpListener,
    addr: SocketAddr,
    receiver: Arc<OtlpReceiver>,
}

impl View {
    /// Binds `127.0.0.1:0` (a free port) for the view over `receiver`.
    pub async fn bind(receiver: Arc<OtlpReceiver>) -> io::Result<View> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        Ok(View {
            listener,
            addr,
            receiver,
        })
    }

    /// `http://127.0.0.1:PORT`, what `JAEGER_UI_URL` is set to.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Serves the view on a background task until the runtime stops.
    pub fn spawn(self) {
        let app = router(self.receiver);
        tokio::spawn(async move {
            let _ = axum::serve(self.listener, app).await;
        });
    }
}

impl View {
    /// `mesh`'s view: when `wanted` (`--serve` with the embedded receiver), binds it, serves it
    /// and, unless `JAEGER_UI_URL` is set, adds `JAEGER_UI_URL=<the view>` to the services'
    /// `env`. Returns the view's URL.
    pub async fn for_serve(
        wanted: bool,
        receiver: &Arc<OtlpReceiver>,
        env: &mut Vec<(String, String)>,
    ) -> Result<Option<String>, String> {
        if !wanted {
            return Ok(None);
        }
        let view = View::bind(receiver.clone())
            .await
            .map_err(|e| format!("cannot bind the trace view: {e}"))?;
        let url = view.url();
        view.spawn();
        let user_set = std::env::var("JAEGER_UI_URL").is_ok_and(|v| !v.trim().is_empty());
        if !user_set {
            env.push(("JAEGER_UI_URL".to_owned(), url.clone()));
        }
        Ok(Some(url))
    }
}
