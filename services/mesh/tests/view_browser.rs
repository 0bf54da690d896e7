//! The trace view in a real browser (Debian's headless Chromium driven by playwright-core,
//! `frontend/scripts/view.mjs`): `mesh --serve --free-ports` runs; the search page lists the
//! demo's traces, "Errors only" leaves the failing one, its trace page shows c's
//! `ping.PingC/Ping` span with `rpc.grpc.status_code` 13; a trace that came with a parent in its
//! headers marks that incoming remote parent; a search tab left open shows the demo page's new
//! trace without a reload; and the demo page's trace link (its
//! `JAEGER_UI_URL`, which `mesh --serve` points at the view) opens the view on that trace.
//!
//! Screenshots of each page go to `$TRACEBRIDGE_VIEW_SCREENSHOTS` when set (the docs' images:
//! `TRACEBRIDGE_VIEW_SCREENSHOTS=$PWD/docs/img cargo test -p mesh --test view_browser`),
//! else to a scratch directory.
//!
//! Needs `scripts/ensure-chromium.sh` and `scripts/ensure-frontend.sh` (npm packages + the
//! built page); fails naming them when their output is missing.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Stops the mesh (SIGTERM: it stops its services; then kill) by pid when the test ends.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = mesh::process::signal(self.0.id(), "TERM");
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.0.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn chromium() -> PathBuf {
    std::env::var_os("TRACEBRIDGE_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

fn check_tools() {
    let frontend = repo().join("frontend");
    assert!(
        chromium().is_file(),
        "no Chromium at {}: run scripts/ensure-chromium.sh",
        chromium().display()
    );
    assert!(
        frontend.join("node_modules/playwright-core").is_dir(),
        "frontend/node_modules has no playwright-core: run scripts/ensure-frontend.sh"
    );
    assert!(
        frontend.join("dist/index.html").is_file(),
        "frontend/dist is not built: run scripts/ensure-frontend.sh"
    );
}

/// What `mesh --serve` printed that the test needs.
#[derive(Debug, Default)]
struct Printed {
    page: Option<String>,
    view: Option<String>,
    /// Trace id per request title.
    traces: BTreeMap<String, String>,
}

fn start_mesh() -> (KillOnDrop, Printed, mpsc::Receiver<String>) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mesh"));
    command.args(["--serve", "--free-ports"]);
    for var in [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_PROPAGATORS",
        "OTEL_SDK_DISABLED",
        "JAEGER_UI_URL",
        "SENTRY_DSN",
        "SENTRY_BROWSER_DSN",
        "FRONTEND_DIR",
    ] {
        command.env_remove(var);
    }
    let mut child = command
        .env("DEMO_DELAY_MS", "5")
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start mesh --serve");
    let stdout = child.stdout.take().unwrap();
    let child = KillOnDrop(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut printed = Printed::default();
    let mut all = String::new();
    let deadline = Instant::now() + Duration::from_secs(240);
    while printed.view.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|e| panic!("mesh --serve did not print the view's URL ({e}):\n{all}"));
        all.push_str(&line);
        all.push('\n');
        let url = |prefix: &str| {
            line.trim()
                .strip_prefix(prefix)
                .map(|rest| rest.trim().to_owned())
        };
        if let Some(page) = url("page (service a):") {
            printed.page = Some(page);
        }
        if let Some(view) = url("trace view:") {
            printed.view = Some(view.trim_end_matches('/').to_owned());
        }
        // "mesh: GET /trace — W3C traceparent: HTTP 200 trace <id>"
        if let Some((title, id)) = line
            .strip_prefix("mesh: ")
            .and_then(|rest| rest.rsplit_once(" trace "))
        {
            if let Some((title, _)) = title.rsplit_once(": HTTP") {
                printed.traces.insert(title.to_owned(), id.to_owned());
            }
        }
    }
    (child, printed, rx)
}

fn trace_of<'a>(printed: &'a Printed, title_contains: &str) -> &'a str {
    printed
        .traces
        .iter()
        .find(|(title, _)| title.contains(title_contains))
        .map(|(_, id)| id.as_str())
        .unwrap_or_else(|| panic!("mesh printed no trace for {title_contains:?}: {printed:?}"))
}

async fn get_json(url: &str) -> Value {
    reqwest::get(url)
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// The Jaeger JSON span of `service`'s `name` in `trace` (the view's `/api/traces/{id}`).
fn jaeger_span<'a>(trace: &'a Value, service: &str, name: &str) -> &'a Value {
    trace["spans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| {
            s["operationName"] == name
                && trace["processes"][s["processID"].as_str().unwrap()]["serviceName"] == service
        })
        .unwrap_or_else(|| panic!("no {service} {name} in {trace}"))
}

fn parent_of(span: &Value) -> &str {
    span["references"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["refType"] == "CHILD_OF")
        .and_then(|r| r["spanID"].as_str())
        .unwrap_or_else(|| panic!("no parent: {span}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_view_finds_the_failing_trace_shows_span_details_and_opens_from_the_demo_page() {
    check_tools();
    let (_mesh, printed, _lines) = start_mesh();
    let view = printed.view.clone().unwrap();
    let page = printed.page.clone().expect("mesh printed the page URL");
    let failing = trace_of(&printed, "fail=c").to_owned();
    let w3c = trace_of(&printed, "W3C traceparent").to_owned();
    assert_eq!(printed.traces.len(), 6, "{printed:?}");

    // What the view's API says, to hold the page against.
    let failing_json = get_json(&format!("{view}/api/traces/{failing}")).await;
    let failing_json = &failing_json["data"][0];
    let c_server = jaeger_span(failing_json, "service-c", "ping.PingC/Ping");
    let a_client = jaeger_span(failing_json, "service-a", "ping.PingC/Ping");
    assert_eq!(parent_of(c_server), a_client["spanID"].as_str().unwrap());
    let w3c_json = get_json(&format!("{view}/api/traces/{w3c}")).await;
    let a_server = jaeger_span(&w3c_json["data"][0], "service-a", "GET /trace");
    let incoming_parent = parent_of(a_server).to_owned();

    let scratch =
        std::env::temp_dir().join(format!("tracebridge-view-shots-{}", std::process::id()));
    let shots = std::env::var_os("TRACEBRIDGE_VIEW_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| scratch.clone());
    std::fs::create_dir_all(&shots).unwrap();
    let mut node = Command::new("node");
    node.current_dir(repo().join("frontend"))
        .arg("scripts/view.mjs")
        .args([
            "--view",
            &view,
            "--page",
            &page,
            "--trace",
            &failing,
            "--incoming",
            &w3c,
        ])
        .arg("--shots")
        .arg(&shots)
        .arg("--chromium")
        .arg(chromium())
        .args(["--timeout-ms", "120000"]);
    let out = tokio::task::spawn_blocking(move || node.output())
        .await
        .unwrap()
        .expect("run node scripts/view.mjs (is node installed?)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "node scripts/view.mjs failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("view.mjs printed {stdout:?}: {e}"));
    let _ = std::fs::remove_dir_all(&scratch);
    let strs = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap_or_else(|| panic!("not a list: {v}"))
            .iter()
            .map(|x| x.as_str().unwrap().to_owned())
            .collect()
    };

    // The search page: the six demo traces, then only the failing one.
    let mut all = strs(&r["allRows"]);
    all.sort();
    let mut sent: Vec<String> = printed.traces.values().cloned().collect();
    sent.sort();
    assert_eq!(all, sent, "{r:#}");
    assert_eq!(strs(&r["errorRows"]), vec![failing.clone()], "{r:#}");
    assert_eq!(r["errorQuery"], "tag=error%3Atrue&limit=100", "{r:#}");

    // The failing trace, c's server span of ping.PingC/Ping: INTERNAL, parent a's client span.
    assert_eq!(r["openedTraceId"], failing.as_str(), "{r:#}");
    assert_eq!(r["spanCount"], 10, "{r:#}");
    assert_eq!(r["statusCode"], "13", "{r:#}");
    assert_eq!(r["spanStatus"], "ERROR", "{r:#}");
    let parent = r["spanParent"].as_str().unwrap();
    assert!(
        parent.starts_with(a_client["spanID"].as_str().unwrap())
            && parent.contains("service-a ping.PingC/Ping")
            && parent.contains("remote — another process"),
        "{parent}"
    );
    // No headers came with the failing request: nothing has an incoming remote parent.
    assert_eq!(r["incomingInFailing"], serde_json::json!([]), "{r:#}");

    // The W3C request's parent (from its traceparent) is marked on a's server span only.
    let incoming = r["incomingRows"].as_array().unwrap();
    assert_eq!(incoming.len(), 1, "{r:#}");
    assert_eq!(incoming[0]["service"], "service-a");
    assert_eq!(incoming[0]["name"], "GET /trace");
    assert_eq!(incoming[0]["spanId"], a_server["spanID"]);
    let shown = r["incomingParent"].as_str().unwrap();
    assert!(
        shown.starts_with(&incoming_parent) && shown.contains("incoming remote parent"),
        "{shown}"
    );

    // The demo page's trace link opens the view on the page's trace.
    let demo = r["demoTraceId"].as_str().unwrap();
    assert_eq!(demo.len(), 32, "{r:#}");
    assert!(demo.bytes().all(|b| b.is_ascii_hexdigit()), "{r:#}");
    // The search tab opened before the call lists the new trace without a reload (with the
    // traces of the page's own loads: a traces every route but /healthz).
    let live = strs(&r["liveRows"]);
    assert!(live.iter().any(|id| id == demo), "{r:#}");
    assert_eq!(r["liveReloads"], 1, "{r:#}");
    assert_eq!(
        r["demoLink"],
        format!("{view}/trace/{demo}").as_str(),
        "{r:#}"
    );
    assert_eq!(
        r["linkedUrl"],
        format!("{view}/trace/{demo}").as_str(),
        "{r:#}"
    );
    assert_eq!(r["linkedTraceId"], demo, "{r:#}");
    assert_eq!(r["linkedW3c"], demo, "{r:#}");
    assert_eq!(r["pageErrors"], serde_json::json!([]), "{r:#}");
}
