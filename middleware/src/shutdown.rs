//! Graceful shutdown trigger for servers.
//!
//! ```no_run
//! # async fn run(app: axum::Router, listener: tokio::net::TcpListener) -> std::io::Result<()> {
//! let _guard = tracebridge::init().expect("telemetry config");
//! axum::serve(listener, app)
//!     .with_graceful_shutdown(tracebridge::shutdown_signal())
//!     .await
//! // `_guard` drops here, after in-flight requests finished: their spans and Sentry events
//! // are flushed before the process exits.
//! # }
//! ```
//!
//! The same future works for tonic's `Server::serve_with_shutdown(addr, shutdown_signal())`.

/// Resolves on the first SIGTERM or Ctrl-C (SIGINT). On non-Unix platforms, Ctrl-C only.
///
/// If a signal handler cannot be installed (no Tokio runtime with signals, or the OS refuses),
/// that source is skipped with a log line rather than resolving at once: shutting a server down
/// because a handler failed to register would be worse than not reacting to that signal.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        match tokio::signal::ctrl_c().await {
            Ok(()) => tracing::info!("Ctrl-C received, shutting down"),
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for Ctrl-C");
                std::future::pending::<()>().await
            }
        }
    };

    #[cfg(unix)]
    let term = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
                tracing::info!("SIGTERM received, shutting down");
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();

    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
