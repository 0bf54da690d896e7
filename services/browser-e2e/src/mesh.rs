//! Services a, b and c as separate processes (each its own Sentry client and tracer provider,
//! as in production) on free loopback ports.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::process::{free_port, wait_until, ChildGuard, ScratchDir};

/// Telemetry settings of one mesh run.
#[derive(Clone, Debug, Default)]
pub struct MeshConfig {
    /// OTLP/gRPC endpoint every service exports to.
    pub otlp_endpoint: String,
    /// `SENTRY_DSN` of a, b and c (`None`: Sentry off in that service).
    pub sentry_dsn: [Option<String>; 3],
    /// `SENTRY_BROWSER_DSN` of a (what the page gets from `/config.json`).
    pub browser_dsn: Option<String>,
    /// `SENTRY_TRACES_SAMPLE_RATE` of every service.
    pub traces_sample_rate: Option<f64>,
    /// `JAEGER_UI_URL` of every service.
    pub jaeger_ui_url: Option<String>,
    /// `FRONTEND_DIR` of a.
    pub frontend_dir: PathBuf,
}

/// Telemetry variables a test must not inherit from the developer's shell.
const SCRUBBED: &[&str] = &[
    "SENTRY_DSN",
    "SENTRY_BROWSER_DSN",
    "SENTRY_ENVIRONMENT",
    "SENTRY_RELEASE",
    "SENTRY_TRACES_SAMPLE_RATE",
    "JAEGER_UI_URL",
    "OTEL_SDK_DISABLED",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_PROPAGATORS",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "DEMO_DELAY_MS",
    "FRONTEND_DIR",
];

/// a, b and c running; dropping it stops them (SIGTERM: they flush, then exit).
#[derive(Debug)]
pub struct Mesh {
    /// a's base URL, `http://127.0.0.1:PORT` (the page is at `{a_url}/`).
    pub a_url: String,
    // Field order: the processes stop before their log directory goes.
    procs: Vec<ChildGuard>,
    _dir: ScratchDir,
}

/// Why a start failed: a service exited (a port taken, most often), or one never listened.
enum StartError {
    Exited(String),
    Other(String),
}

impl Mesh {
    /// Starts c, b, then a (`bin` is `browser-e2e-service`) and waits until each listens.
    ///
    /// The four ports are chosen free and bound by the services a moment later: another
    /// process can take one in between (a Go peer of the mesh tests lost its port that way in
    /// a run). A service that exits during the start makes the whole start again on other
    /// ports, twice at most.
    pub async fn start(bin: &Path, config: &MeshConfig) -> Result<Mesh, String> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match Self::start_once(bin, config).await {
                Ok(mesh) => return Ok(mesh),
                Err(StartError::Exited(e)) if attempt < 3 => {
                    eprintln!("{e}\n(starting the mesh again on other ports)");
                }
                Err(StartError::Exited(e) | StartError::Other(e)) => return Err(e),
            }
        }
    }

    async fn start_once(bin: &Path, config: &MeshConfig) -> Result<Mesh, StartError> {
        let dir = ScratchDir::new("mesh").map_err(|e| StartError::Other(e.to_string()))?;
        let (a, b, c, c_http) = (free_port(), free_port(), free_port(), free_port());
        let addr = |port: u16| format!("127.0.0.1:{port}");
        let mut mesh = Mesh {
            a_url: format!("http://127.0.0.1:{a}"),
            procs: Vec::new(),
            _dir: dir,
        };

        let specs = [
            (
                "c",
                2,
                vec![("C_LISTEN", addr(c)), ("C_HTTP_LISTEN", addr(c_http))],
            ),
            (
                "b",
                1,
                vec![
                    ("B_LISTEN", addr(b)),
                    ("C_HTTP_URL", format!("http://{}", addr(c_http))),
                ],
            ),
            (
                "a",
                0,
                vec![
                    ("A_LISTEN", addr(a)),
                    ("B_URL", format!("http://{}", addr(b))),
                    ("C_URL", format!("http://{}", addr(c))),
                    ("FRONTEND_DIR", config.frontend_dir.display().to_string()),
                ],
            ),
        ];
        for (name, index, vars) in specs {
            let mut command = Command::new(bin);
            command.arg(name);
            for var in SCRUBBED {
                command.env_remove(var);
            }
            command
                .env("OTEL_SERVICE_NAME", format!("service-{name}"))
                .env("OTEL_EXPORTER_OTLP_ENDPOINT", &config.otlp_endpoint)
                .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
                // Export soon after each request; the assertions wait for the spans anyway.
                .env("OTEL_BSP_SCHEDULE_DELAY", "100")
                .env("SENTRY_ENVIRONMENT", "e2e")
                .env("RUST_LOG", "info");
            if let Some(dsn) = &config.sentry_dsn[index] {
                command.env("SENTRY_DSN", dsn);
            }
            if let Some(rate) = config.traces_sample_rate {
                command.env("SENTRY_TRACES_SAMPLE_RATE", rate.to_string());
            }
            if let Some(url) = &config.jaeger_ui_url {
                command.env("JAEGER_UI_URL", url);
            }
            if name == "a" {
                if let Some(dsn) = &config.browser_dsn {
                    command.env("SENTRY_BROWSER_DSN", dsn);
                }
            }
            command.envs(vars);
            let log = mesh._dir.path().join(format!("service-{name}.log"));
            let guard = ChildGuard::spawn(&format!("service-{name}"), command, &log)
                .map_err(|e| StartError::Other(format!("spawn {} {name}: {e}", bin.display())))?;
            mesh.procs.push(guard);
        }

        let ports = [
            ("service-c", c),
            ("service-c", c_http),
            ("service-b", b),
            ("service-a", a),
        ];
        for (name, port) in ports {
            let procs = &mut mesh.procs;
            // Done when it listens, or as soon as a service has exited.
            let up = wait_until(Duration::from_secs(30), || {
                let exited = procs.iter_mut().any(|p| p.exited().is_some());
                async move {
                    exited
                        || tokio::net::TcpStream::connect(("127.0.0.1", port))
                            .await
                            .is_ok()
                }
            })
            .await;
            if mesh.procs.iter_mut().any(|p| p.exited().is_some()) {
                return Err(StartError::Exited(format!(
                    "a service exited before {name} listened on port {port}\n{}",
                    mesh.logs()
                )));
            }
            if !up {
                return Err(StartError::Other(format!(
                    "{name} is not listening on port {port} after 30 s\n{}",
                    mesh.logs()
                )));
            }
        }
        Ok(mesh)
    }

    /// Every service's output so far, for failure messages.
    pub fn logs(&self) -> String {
        self.procs
            .iter()
            .map(|p| format!("--- {} (pid {}) ---\n{}", p.name(), p.pid(), p.log()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Stops a, b and c (a first: no new requests reach b and c), each flushing on SIGTERM.
    pub fn stop(&mut self) {
        for proc in self.procs.iter_mut().rev() {
            proc.stop();
        }
    }
}

impl Drop for Mesh {
    fn drop(&mut self) {
        self.stop();
    }
}
