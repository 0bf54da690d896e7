//! The README's demo command runs to completion: `mesh` starts a, b, c (re-running itself),
//! sends its traffic, prints a waterfall per trace with all three services, and exits 0.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Kills the mesh (by pid) if the test fails before it exits; mesh stops its own children.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            // SIGTERM first so mesh stops its children, then make sure.
            let _ = mesh::process::signal(self.0.id(), "TERM");
            std::thread::sleep(Duration::from_secs(2));
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

#[test]
fn mesh_runs_to_completion_and_shows_every_service() {
    let child = Command::new(env!("CARGO_BIN_EXE_mesh"))
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_PROPAGATORS")
        .env_remove("SENTRY_DSN")
        .env("DEMO_DELAY_MS", "5")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mesh");
    let mut child = KillOnDrop(child);
    let mut stdout = child.0.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        out
    });
    let deadline = Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "mesh did not finish");
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = reader.join().unwrap();
    let mut err = String::new();
    let _ = child.0.stderr.take().unwrap().read_to_string(&mut err);
    assert!(status.success(), "mesh failed: {status}\nstdout:\n{out}\nstderr:\n{err}");

    for title in [
        "no trace headers",
        "W3C traceparent",
        "Jaeger uber-trace-id",
        "B3 (single header)",
        "Sentry only",
        "fail=c",
    ] {
        assert!(out.contains(&format!("== GET /trace")) && out.contains(title), "no section for {title}:\n{out}");
    }
    let sections: Vec<&str> = out.split("\n== ").skip(1).collect();
    assert_eq!(sections.len(), 6, "one waterfall per request:\n{out}");
    for section in &sections {
        for needle in ["service-a", "service-b", "service-c", "trace1", "trace2", "trace3", "traceparent:", "uber-trace-id:", "sentry-trace:"] {
            assert!(section.contains(needle), "{needle} missing in:\n{section}");
        }
    }
    assert!(out.contains("mesh: all services stopped cleanly"), "{out}");
}
