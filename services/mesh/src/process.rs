//! Starting a, b and c as child processes, waiting until they listen, signalling and stopping
//! them by pid. [`Mesh`] stops every child it started when dropped (also when a test fails),
//! so no service outlives its owner.

use std::fmt;
use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use demo_common::env;

use crate::ports::Ports;

/// One of the demo services.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Service {
    /// `service-a`, the HTTP entry.
    A,
    /// `service-b`, gRPC → HTTP.
    B,
    /// `service-c`, the leaf.
    C,
}

impl Service {
    /// All three, in start order (leaves first, so a's first request finds its upstreams).
    pub const ALL: [Service; 3] = [Service::C, Service::B, Service::A];

    /// The binary name, also the default `OTEL_SERVICE_NAME`.
    pub fn name(self) -> &'static str {
        match self {
            Service::A => "service-a",
            Service::B => "service-b",
            Service::C => "service-c",
        }
    }

    /// The service for a binary name.
    pub fn from_name(name: &str) -> Option<Service> {
        Service::ALL.into_iter().find(|s| s.name() == name)
    }

    fn listens(self, ports: &Ports) -> Vec<SocketAddr> {
        match self {
            Service::A => vec![ports.a],
            Service::B => vec![ports.b],
            Service::C => vec![ports.c, ports.c_http],
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a service process is started.
#[derive(Clone, Debug)]
pub enum Launcher {
    /// The `mesh` executable itself, as `mesh __service service-a`: one `cargo run -p mesh`
    /// builds everything the demo needs.
    SelfExec(PathBuf),
    /// The real `service-a`, `service-b`, `service-c` binaries in this directory.
    Binaries(PathBuf),
}

impl Launcher {
    /// The hidden first argument that makes `mesh` run a service instead of the demo.
    pub const SERVICE_ARG: &'static str = "__service";

    fn command(&self, service: Service) -> Command {
        match self {
            Launcher::SelfExec(exe) => {
                let mut cmd = Command::new(exe);
                cmd.arg(Self::SERVICE_ARG).arg(service.name());
                cmd
            }
            Launcher::Binaries(dir) => Command::new(dir.join(service.name())),
        }
    }
}

/// What to start.
#[derive(Clone, Debug)]
pub struct Options {
    /// How to start each service.
    pub launcher: Launcher,
    /// Where they listen.
    pub ports: Ports,
    /// OTLP/gRPC endpoint the services export to; `None` keeps the inherited environment.
    pub otlp_endpoint: Option<String>,
    /// Further environment for every service, applied last (so it can override the defaults
    /// set here, e.g. `OTEL_BSP_SCHEDULE_DELAY`).
    pub env: Vec<(String, String)>,
    /// Where each service's stdout + stderr go (`service-a.log`, ...).
    pub log_dir: PathBuf,
    /// How long a service may take to listen.
    pub startup_timeout: Duration,
}

/// A mesh that failed to start or misbehaved; the message says which service and shows the
/// tail of its log.
#[derive(Debug)]
pub struct MeshError(pub String);

impl fmt::Display for MeshError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MeshError {}

struct Running {
    service: Service,
    child: Child,
    log: PathBuf,
}

/// The running services. Dropping it kills whatever still runs (by pid) and reaps it.
pub struct Mesh {
    running: Vec<Running>,
    /// Where they listen.
    pub ports: Ports,
}

impl Mesh {
    /// Starts c, b and a and waits until each listens on all its ports. Fails — after stopping
    /// whatever it started — when a service cannot be spawned, exits, or does not listen in
    /// time.
    pub fn start(options: &Options) -> Result<Mesh, MeshError> {
        std::fs::create_dir_all(&options.log_dir).map_err(|e| {
            MeshError(format!("cannot create log directory {}: {e}", options.log_dir.display()))
        })?;
        let mut mesh = Mesh { running: Vec::new(), ports: options.ports };
        for service in Service::ALL {
            mesh.spawn(service, options)?;
        }
        for service in Service::ALL {
            mesh.wait_listening(service, options.startup_timeout)?;
        }
        Ok(mesh)
    }

    fn spawn(&mut self, service: Service, options: &Options) -> Result<(), MeshError> {
        let log = options.log_dir.join(format!("{service}.log"));
        let out = File::create(&log)
            .map_err(|e| MeshError(format!("cannot create {}: {e}", log.display())))?;
        let err = out
            .try_clone()
            .map_err(|e| MeshError(format!("cannot open {}: {e}", log.display())))?;
        let p = &options.ports;
        let mut cmd = options.launcher.command(service);
        // Each service must report its own default name, whatever the caller's shell says.
        cmd.env_remove("OTEL_SERVICE_NAME")
            .env(env::A_LISTEN, p.a.to_string())
            .env(env::B_LISTEN, p.b.to_string())
            .env(env::C_LISTEN, p.c.to_string())
            .env(env::C_HTTP_LISTEN, p.c_http.to_string())
            .env(env::B_URL, format!("http://{}", p.b))
            .env(env::C_URL, format!("http://{}", p.c))
            .env(env::C_HTTP_URL, format!("http://{}", p.c_http))
            // Export promptly so a waterfall appears a moment after its request.
            .env("OTEL_BSP_SCHEDULE_DELAY", "100");
        if let Some(endpoint) = &options.otlp_endpoint {
            cmd.env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
                .env_remove("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
                .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc");
        }
        cmd.envs(options.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        let child = cmd.spawn().map_err(|e| {
            MeshError(format!("cannot start {service} ({:?}): {e}", cmd.get_program()))
        })?;
        self.running.push(Running { service, child, log });
        Ok(())
    }

    fn wait_listening(&mut self, service: Service, timeout: Duration) -> Result<(), MeshError> {
        let deadline = Instant::now() + timeout;
        for addr in service.listens(&self.ports) {
            loop {
                if let Some(status) = self.exit_status(service) {
                    return Err(self.failure(service, &format!("exited during startup ({status})")));
                }
                if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(self.failure(
                        service,
                        &format!("did not listen on {addr} within {}s", timeout.as_secs()),
                    ));
                }
                std::thread::sleep(Duration::from_millis(25));
            }
        }
        Ok(())
    }

    fn running(&mut self, service: Service) -> &mut Running {
        self.running
            .iter_mut()
            .find(|r| r.service == service)
            .expect("every service is started by Mesh::start")
    }

    /// The process id of `service`.
    pub fn pid(&mut self, service: Service) -> u32 {
        self.running(service).child.id()
    }

    /// `Some(status)` once `service` has exited.
    pub fn exit_status(&mut self, service: Service) -> Option<ExitStatus> {
        self.running(service).child.try_wait().ok().flatten()
    }

    /// Fails, naming the service and showing its log, when any service has exited.
    pub fn check_running(&mut self) -> Result<(), MeshError> {
        for service in Service::ALL {
            if let Some(status) = self.exit_status(service) {
                return Err(self.failure(service, &format!("exited ({status})")));
            }
        }
        Ok(())
    }

    /// Sends SIGTERM to `service` (by pid): the contract's graceful shutdown.
    pub fn terminate(&mut self, service: Service) -> Result<(), MeshError> {
        let pid = self.pid(service);
        signal(pid, "TERM").map_err(|e| MeshError(format!("cannot signal {service} (pid {pid}): {e}")))
    }

    /// Waits up to `timeout` for `service` to exit; its status, or an error if it still runs.
    pub fn wait_exit(&mut self, service: Service, timeout: Duration) -> Result<ExitStatus, MeshError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exit_status(service) {
                return Ok(status);
            }
            if Instant::now() > deadline {
                return Err(self.failure(service, &format!("still running {}s after SIGTERM", timeout.as_secs())));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM to every service still running, then wait for each to exit (up to `timeout`
    /// each); statuses in start order. What does not exit is killed when the mesh drops.
    pub fn shutdown(&mut self, timeout: Duration) -> Vec<(Service, Result<ExitStatus, MeshError>)> {
        for service in Service::ALL {
            if self.exit_status(service).is_none() {
                let _ = self.terminate(service);
            }
        }
        Service::ALL
            .into_iter()
            .map(|s| (s, self.wait_exit(s, timeout)))
            .collect()
    }

    /// The log of `service` so far (its stdout and stderr).
    pub fn log(&mut self, service: Service) -> String {
        let path = self.running(service).log.clone();
        std::fs::read_to_string(path).unwrap_or_default()
    }

    /// The path of `service`'s log file.
    pub fn log_path(&mut self, service: Service) -> &Path {
        &self.running(service).log
    }

    fn failure(&mut self, service: Service, what: &str) -> MeshError {
        let log = self.log(service);
        let tail: Vec<&str> = log.lines().rev().take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        MeshError(format!(
            "{service} {what}; last lines of its output:\n  {}",
            if tail.is_empty() { "(none)".to_owned() } else { tail.join("\n  ") }
        ))
    }
}

impl Drop for Mesh {
    fn drop(&mut self) {
        for running in &mut self.running {
            if let Ok(None) = running.child.try_wait() {
                // Child::kill sends SIGKILL to this child's pid only.
                let _ = running.child.kill();
            }
            let _ = running.child.wait();
        }
    }
}

/// Sends `SIG{name}` to one pid with the system `kill` (no process groups, no names).
pub fn signal(pid: u32, name: &str) -> std::io::Result<()> {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!("kill -{name} {pid}: {status}")))
    }
}
