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

/// Runs `mesh --free-ports {args}` to completion, asserts it exits 0 and shows a waterfall
/// with every service per request; its stdout.
fn run_mesh(args: &[&str]) -> String {
    let child = Command::new(env!("CARGO_BIN_EXE_mesh"))
        .arg("--free-ports")
        .args(args)
        .env_remove("MESH_JAEGER")
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
    assert!(
        status.success(),
        "mesh failed: {status}\nstdout:\n{out}\nstderr:\n{err}"
    );

    for title in [
        "no trace headers",
        "W3C traceparent",
        "Jaeger uber-trace-id",
        "B3 (single header)",
        "Sentry only",
        "fail=c",
    ] {
        assert!(
            out.contains("== GET /trace") && out.contains(title),
            "no section for {title}:\n{out}"
        );
    }
    let sections: Vec<&str> = out.split("\n== ").skip(1).collect();
    assert_eq!(sections.len(), 6, "one waterfall per request:\n{out}");
    for section in &sections {
        for needle in [
            "service-a",
            "service-b",
            "service-c",
            "trace1",
            "trace2",
            "trace3",
            "W3C ",
            "Jaeger ",
            "Sentry ",
        ] {
            assert!(section.contains(needle), "{needle} missing in:\n{section}");
        }
    }
    assert!(out.contains("mesh: all services stopped cleanly"), "{out}");
    out
}

#[test]
fn mesh_runs_to_completion_and_shows_every_service() {
    let out = run_mesh(&[]);
    assert!(
        !out.contains("Jaeger query API") && !out.contains("mesh: Jaeger"),
        "no Jaeger without --jaeger:\n{out}"
    );
}

/// `mesh --jaeger PATH`: Jaeger runs beside the mesh, each waterfall is followed by the query
/// API URL of its trace (printed once Jaeger holds every span of it), and Jaeger is stopped.
#[test]
fn mesh_with_jaeger_prints_each_traces_query_api_url_and_stops_jaeger() {
    let jaeger = tracebridge_testkit::jaeger::binary().unwrap_or_else(|e| panic!("{e}"));
    let out = run_mesh(&["--jaeger", jaeger.to_str().unwrap()]);
    let pid_line = out
        .lines()
        .find(|l| l.starts_with("mesh: Jaeger (pid "))
        .unwrap_or_else(|| panic!("no Jaeger line:\n{out}"));
    let pid: u32 = pid_line["mesh: Jaeger (pid ".len()..]
        .split(')')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let base = pid_line
        .split("query API ")
        .nth(1)
        .unwrap()
        .trim_end_matches("/api/traces/{trace id}")
        .to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{pid_line}");
    let trace_ids: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("mesh: GET /trace"))
        .map(|l| l.rsplit(" trace ").next().unwrap())
        .collect();
    assert_eq!(trace_ids.len(), 6, "{out}");
    let sections: Vec<&str> = out.split("\n== ").skip(1).collect();
    for (section, id) in sections.iter().zip(&trace_ids) {
        let url = format!("  Jaeger query API: {base}/api/traces/{id}");
        assert!(section.contains(&url), "{url} missing in:\n{section}");
    }
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "Jaeger (pid {pid}) is stopped when mesh exits"
    );
}

#[test]
fn mesh_fails_clearly_when_a_service_cannot_start() {
    // Every service rejects the configuration at init; mesh must say which one and why.
    let output = Command::new(env!("CARGO_BIN_EXE_mesh"))
        .arg("--free-ports")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env("OTEL_PROPAGATORS", "bogus")
        .output()
        .expect("run mesh");
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains("mesh: service-c exited during startup"),
        "{err}"
    );
    assert!(err.contains("OTEL_PROPAGATORS"), "{err}");
}
