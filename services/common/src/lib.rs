//! What the demo services `service-a`, `service-b` and `service-c` share, so each main stays a
//! thin layer over the middleware: the service contract's environment variables and defaults
//! (see `shared/ARCHITECTURE.md`), binding with a clear error, the artificial `DEMO_DELAY_MS`
//! work, and the process skeleton (telemetry init → serve until SIGTERM / Ctrl-C → flush → exit).

pub mod env;

use std::future::Future;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

/// Any error a service reports before exiting non-zero.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// `DEMO_DELAY_MS`, parsed once: artificial work inside trace1, trace2 and trace3 so a waterfall
/// shows durations. 0 (the default) means none, so load runs measure tracing, not sleeps.
pub fn demo_delay() -> Duration {
    static DELAY: OnceLock<Duration> = OnceLock::new();
    *DELAY.get_or_init(|| {
        let ms = env::var_or(env::DEMO_DELAY_MS, "0");
        Duration::from_millis(ms.trim().parse().unwrap_or_else(|_| {
            tracing::warn!(value = %ms, "DEMO_DELAY_MS is not a whole number of milliseconds; using 0");
            0
        }))
    })
}

/// Sleeps for [`demo_delay`], or returns at once when it is zero.
pub async fn demo_work() {
    let delay = demo_delay();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
}

/// Binds the listen address named by `var` (default `default`). The error names the variable,
/// the address and the cause, e.g. `cannot listen on 127.0.0.1:8080 (A_LISTEN): Address in use`.
pub async fn bind(var: &'static str, default: &str) -> Result<TcpListener, BoxError> {
    let addr: SocketAddr = env::socket_addr(var, default)?;
    TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr} ({var}): {e}").into())
}

/// A shutdown signal that several servers of one process can wait on: resolves for every
/// clone once SIGTERM or Ctrl-C arrives.
#[derive(Clone, Debug)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// Starts listening for [`tracebridge::shutdown_signal`].
    pub fn listen() -> Self {
        let (tx, rx) = watch::channel(false);
        tokio::spawn(async move {
            tracebridge::shutdown_signal().await;
            tracing::info!("shutdown signal: finishing in-flight requests");
            let _ = tx.send(true);
        });
        Shutdown(rx)
    }

    /// Resolves when shutdown was requested (or the signal task is gone).
    pub async fn requested(mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

/// The process skeleton every service shares: telemetry from the environment (with
/// `OTEL_SERVICE_NAME` defaulting to `service`), then `serve` until it returns (it stops on
/// [`Shutdown`] after finishing in-flight requests), then flush telemetry and exit 0. Any
/// error — bad configuration, an address that cannot be bound — is printed with the service
/// name and the process exits non-zero.
pub fn run<F, Fut>(service: &'static str, serve: F) -> ExitCode
where
    F: FnOnce(Shutdown) -> Fut,
    Fut: Future<Output = Result<(), BoxError>>,
{
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("{service}: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let guard = match telemetry(service) {
            Ok(guard) => guard,
            Err(e) => {
                eprintln!("{service}: telemetry configuration: {e}");
                return ExitCode::FAILURE;
            }
        };
        let result = serve(Shutdown::listen()).await;
        // Flushing may block on the exporter; do it off the async workers so the exporter task
        // itself can still run.
        let _ = tokio::task::spawn_blocking(move || drop(guard)).await;
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{service}: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// Telemetry from the standard environment; `OTEL_SERVICE_NAME` defaults to `service`.
fn telemetry(service: &'static str) -> Result<tracebridge::Guard, tracebridge::ConfigError> {
    tracebridge::Builder::from_env()
        .default_service_name(service)
        .install()
}
