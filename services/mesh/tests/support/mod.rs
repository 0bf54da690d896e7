//! Shared by the end-to-end tests: the real `service-a`, `service-b`, `service-c` binaries
//! (built once per test run), a mesh of them exporting to an in-memory OTLP receiver, and the
//! expected shape of a `/trace` trace.

#![allow(dead_code)]

pub mod tier;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use mesh::traffic::Answer;
use mesh::{Launcher, Mesh, Options, Parent, Ports};
use tracebridge_testkit::jaeger::JaegerTrace;
use tracebridge_testkit::trace::Trace;
use tracebridge_testkit::{AttrValue, OtlpReceiver, SpanKind, SpanRecord};

/// How long spans may take to arrive (the services export every 100 ms; this only bounds a
/// failing test, it is not a performance assertion).
pub const SPAN_WAIT: Duration = Duration::from_secs(30);

/// The directory holding the real service binaries of this build profile. Cargo builds only
/// the `mesh` package's own binaries for its tests, so the three services are built here
/// with the same cargo, target directory and profile (a no-op when they are up to date).
pub fn service_binaries() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // The test executable lives in <target>/<profile>/deps/.
        let exe = std::env::current_exe().expect("test executable path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("<target>/<profile>")
            .to_path_buf();
        let target_dir = profile_dir.parent().expect("<target>").to_path_buf();
        let profile = profile_dir
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
        let mut cmd = Command::new(cargo);
        cmd.arg("build")
            .arg("--manifest-path")
            .arg(&manifest)
            .args(["-p", "service-a", "-p", "service-b", "-p", "service-c"])
            .env("CARGO_TARGET_DIR", &target_dir);
        match profile.as_str() {
            "debug" => {}
            "release" => {
                cmd.arg("--release");
            }
            other => {
                cmd.args(["--profile", other]);
            }
        }
        let status = cmd
            .status()
            .expect("run cargo build for the service binaries");
        assert!(
            status.success(),
            "cargo build of service-a/-b/-c failed: {status}"
        );
        for name in ["service-a", "service-b", "service-c"] {
            assert!(
                profile_dir.join(name).is_file(),
                "{name} not found in {}",
                profile_dir.display()
            );
        }
        profile_dir
    })
}

/// A running mesh of the real binaries, its receiver and a plain HTTP client. Dropping it
/// kills every service still running (by pid).
pub struct TestMesh {
    pub receiver: OtlpReceiver,
    pub mesh: Mesh,
    pub client: reqwest::Client,
    pub a_url: String,
}

/// Starts c, b, a on free ports exporting to a fresh receiver; B3 on, besides the defaults.
pub async fn start(extra_env: &[(&str, &str)]) -> TestMesh {
    let receiver = OtlpReceiver::start()
        .await
        .expect("start the OTLP receiver");
    start_with(receiver, extra_env).await
}

/// Starts c, b, a on free ports exporting OTLP/gRPC to `receiver` (`extra_env` may switch
/// them to its HTTP endpoint with `OTEL_EXPORTER_OTLP_ENDPOINT` + `_PROTOCOL`).
pub async fn start_with(receiver: OtlpReceiver, extra_env: &[(&str, &str)]) -> TestMesh {
    let mut env: Vec<(String, String)> = vec![
        (
            "OTEL_PROPAGATORS".into(),
            "tracecontext,baggage,jaeger,b3,sentry".into(),
        ),
        ("DEMO_DELAY_MS".into(), "0".into()),
        ("SENTRY_DSN".into(), String::new()),
        ("OTEL_SDK_DISABLED".into(), "false".into()),
    ];
    env.extend(
        extra_env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    // A free port can be taken by another test's process between `Ports::free` and the
    // service binding it (tests of one binary start meshes and Jaegers at once): that start is
    // retried on other ports, as testkit's Jaeger does (seen in a CI run).
    let mut attempt = 0;
    let (mesh, ports) = loop {
        let ports = Ports::free().expect("free ports");
        let options = Options {
            launcher: Launcher::Binaries(service_binaries().to_path_buf()),
            ports,
            otlp_endpoint: Some(receiver.grpc_endpoint()),
            env: env.clone(),
            log_dir: std::env::temp_dir().join(format!(
                "tracebridge-e2e-{}-{}",
                std::process::id(),
                ports.a.port()
            )),
            startup_timeout: Duration::from_secs(60),
        };
        match tokio::task::spawn_blocking(move || Mesh::start(&options))
            .await
            .unwrap()
        {
            Ok(mesh) => break (mesh, ports),
            Err(e) if e.to_string().contains("Address already in use") && attempt < 5 => {
                attempt += 1;
            }
            Err(e) => panic!("mesh did not start: {e}"),
        }
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let a_url = ports.a_url();
    TestMesh {
        receiver,
        mesh,
        client,
        a_url,
    }
}

impl TestMesh {
    /// `GET {a}{path}` with `headers`.
    pub async fn get(&self, path: &str, headers: &[(&'static str, String)]) -> Answer {
        mesh::traffic::get(&self.client, &self.a_url, path, headers)
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// `GET {a}/trace` with `headers`: asserts a answers 200 and returns the answer and the
    /// trace id its `traceresponse` names.
    pub async fn get_trace(&self, headers: &[(&'static str, String)]) -> (Answer, String) {
        let answer = self.get("/trace", headers).await;
        assert_eq!(answer.status, 200, "{headers:?}: {}", answer.body);
        let trace_id = answer
            .traceresponse_trace_id()
            .expect("traceresponse")
            .to_owned();
        (answer, trace_id)
    }

    /// Waits until trace `trace_id` has `n` spans; the trace.
    pub async fn trace(&self, trace_id: &str, n: usize) -> Trace {
        let spans = self
            .receiver
            .wait_for_trace(trace_id, n, SPAN_WAIT)
            .await
            .unwrap_or_else(|e| panic!("trace {trace_id}: {e}"));
        Trace::new(spans)
    }
}

/// Asserts the span's kind and status is not ERROR.
pub fn assert_ok(trace: &Trace, span: &SpanRecord, kind: SpanKind) {
    assert_eq!(
        span.kind,
        kind,
        "kind of {}\n{}",
        span.summary(),
        trace.dump()
    );
    assert!(
        !span.status.is_error(),
        "unexpected ERROR: {}\n{}",
        span.summary(),
        trace.dump()
    );
}

/// The full shape of a successful `GET /trace` (11 spans), continuing `incoming` (or a new
/// root when `None`), and the answer pointing at it. Returns a's SERVER span id.
pub fn assert_mesh_trace(trace: &Trace, incoming: Option<&Parent>, answer: &Answer) -> String {
    trace.assert_len(11);
    trace.assert_connected();
    let a_server = trace.expect_exact("service-a", "GET /trace");
    assert_ok(trace, a_server, SpanKind::Server);
    assert_eq!(
        trace.root().span_id,
        a_server.span_id,
        "a's SERVER span is the root\n{}",
        trace.dump()
    );
    match incoming {
        Some(parent) => {
            assert_eq!(
                trace.trace_id(),
                parent.trace_id,
                "the incoming trace id is kept"
            );
            assert_eq!(
                a_server.parent_span_id.as_deref(),
                Some(parent.span_id.as_str()),
                "a's SERVER span continues the incoming span\n{}",
                trace.dump()
            );
        }
        None => assert!(
            a_server.is_root(),
            "a starts the trace: {}",
            a_server.summary()
        ),
    }
    assert_eq!(a_server.attr_str("http.route"), Some("/trace"));
    assert_eq!(a_server.attr_i64("http.response.status_code"), Some(200));

    let trace1 = trace.expect_exact("service-a", "trace1");
    let trace2 = trace.expect_exact("service-a", "trace2");
    assert_ok(trace, trace1, SpanKind::Internal);
    assert_ok(trace, trace2, SpanKind::Internal);
    trace.assert_child_of(trace1, a_server);
    trace.assert_child_of(trace2, trace1);

    // a → b and a → c over gRPC: CLIENT in a, SERVER in the callee, same name.
    for (service, rpc) in [
        ("service-b", "ping.PingB/Ping"),
        ("service-c", "ping.PingC/Ping"),
    ] {
        let client = trace.expect_exact("service-a", rpc);
        let server = trace.expect_exact(service, rpc);
        assert_ok(trace, client, SpanKind::Client);
        assert_ok(trace, server, SpanKind::Server);
        trace.assert_child_of(client, a_server);
        trace.assert_child_of(server, client);
        for span in [client, server] {
            assert_eq!(
                span.attr_str("rpc.system"),
                Some("grpc"),
                "{}",
                span.summary()
            );
            assert_eq!(
                span.attr_i64("rpc.grpc.status_code"),
                Some(0),
                "{}",
                span.summary()
            );
        }
    }

    // b → c over HTTP.
    let b_server = trace.expect_exact("service-b", "ping.PingB/Ping");
    let b_client = trace.expect_exact("service-b", "GET");
    let c_work = trace.expect_exact("service-c", "GET /work");
    assert_ok(trace, b_client, SpanKind::Client);
    assert_ok(trace, c_work, SpanKind::Server);
    trace.assert_child_of(b_client, b_server);
    trace.assert_child_of(c_work, b_client);
    assert_eq!(b_client.attr_i64("http.response.status_code"), Some(200));

    // trace3 under each of c's server spans.
    let c_grpc = trace.expect_exact("service-c", "ping.PingC/Ping");
    let trace3: Vec<_> = trace.find_all("service-c", "trace3");
    assert_eq!(
        trace3.len(),
        2,
        "trace3 once per request to c\n{}",
        trace.dump()
    );
    for parent in [c_work, c_grpc] {
        let under: Vec<_> = trace3
            .iter()
            .filter(|s| s.parent_span_id.as_deref() == Some(parent.span_id.as_str()))
            .collect();
        assert_eq!(
            under.len(),
            1,
            "one trace3 under {}\n{}",
            parent.summary(),
            trace.dump()
        );
        assert_ok(trace, under[0], SpanKind::Internal);
    }

    let services: std::collections::BTreeSet<&str> = trace
        .spans()
        .iter()
        .map(|s| s.service_name.as_str())
        .collect();
    assert_eq!(
        services.into_iter().collect::<Vec<_>>(),
        ["service-a", "service-b", "service-c"]
    );

    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.traceresponse_trace_id(), Some(trace.trace_id()));
    assert_eq!(
        answer.traceresponse_span_id(),
        Some(a_server.span_id.as_str())
    );
    assert_eq!(answer.body_trace_id(), Some(trace.trace_id()));
    a_server.span_id.clone()
}

/// c's `trace3` records one event, `trace3 finished` with `step = "done"`: asserts `trace` has
/// exactly `expected` (> 0) `trace3` spans, each with that one span event and no other span
/// with any, and that Jaeger (`got`, the same trace read back) shows each as the one log of
/// that span, with the event's name (`event`) and its `step` field — and no other log.
pub fn assert_trace3_events(trace: &Trace, got: &JaegerTrace, expected: usize) {
    assert!(expected > 0);
    let trace3 = trace.find_all("service-c", "trace3");
    assert_eq!(trace3.len(), expected, "{}", trace.dump());
    let events: usize = trace.spans().iter().map(|s| s.events.len()).sum();
    assert_eq!(
        events,
        expected,
        "one span event per trace3 span, none elsewhere\n{}",
        trace.dump()
    );
    for span in trace3 {
        assert_eq!(span.events.len(), 1, "{}", span.summary());
        let event = &span.events[0];
        assert_eq!(event.name, "trace3 finished", "{event:?}");
        assert_eq!(
            event.attributes.get("step"),
            Some(&AttrValue::String("done".into())),
            "{event:?}"
        );
        let logs = &got.by_id(&span.span_id).expect("trace3 in Jaeger").logs;
        assert_eq!(logs.len(), 1, "trace3's event as one log\n{}", got.dump());
        let field = |key: &str| logs[0].get(key).and_then(serde_json::Value::as_str);
        assert_eq!(field("event"), Some("trace3 finished"), "{:?}", logs[0]);
        assert_eq!(field("step"), Some("done"), "{:?}", logs[0]);
    }
    let logs: usize = got.spans.iter().map(|s| s.logs.len()).sum();
    assert_eq!(
        logs, expected,
        "every span event is a log in Jaeger, and nothing else"
    );
}
