//! `frontend/scripts/drive.mjs`: loads the page in Debian's headless Chromium (playwright-core,
//! fresh profile), clicks, and reports what the page showed, sent and received.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::Deserialize;

use crate::process::{output_within, repo_root};

/// What `drive.mjs` reports (its stdout's last line).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DriveReport {
    /// `#trace-id` after the last call.
    pub trace_id: Option<String>,
    /// `#trace-id` after each call, in click order.
    pub trace_ids: Vec<String>,
    /// `on` when the page initialised Sentry (a DSN was configured), else `off`.
    pub sentry: String,
    /// The Jaeger UI link next to `#trace-id` (`None` without `JAEGER_UI_URL`).
    pub jaeger_link: Option<String>,
    /// Every `GET /trace` the page made.
    pub calls: Vec<Call>,
    /// Every Sentry envelope the page POSTed.
    pub envelopes: Vec<Envelope>,
    /// The first error event the page sent to Sentry.
    pub error_event: Option<EnvelopeItem>,
    /// Uncaught errors on the page.
    pub page_errors: Vec<String>,
}

/// One `GET /trace` from the page.
#[derive(Clone, Debug, Deserialize)]
pub struct Call {
    /// Full URL.
    pub url: String,
    /// Response status.
    pub status: Option<u16>,
    /// The trace headers the browser sent (`sentry-trace`, `baggage`, `traceparent`,
    /// `tracestate`), by name.
    pub sent: BTreeMap<String, String>,
    /// The `traceresponse` header of the response.
    pub traceresponse: Option<String>,
}

/// One envelope POST.
#[derive(Clone, Debug, Deserialize)]
pub struct Envelope {
    /// Where it went.
    pub url: String,
    /// The server's answer.
    pub status: Option<u16>,
    /// Its items.
    pub items: Vec<EnvelopeItem>,
}

/// One envelope item, as far as the test looks at it.
#[derive(Clone, Debug, Deserialize)]
pub struct EnvelopeItem {
    /// `event`, `transaction`, …
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The event id (32 hex).
    pub event_id: Option<String>,
    /// `contexts.trace.trace_id`.
    pub trace_id: Option<String>,
    /// `contexts.trace.span_id`.
    pub span_id: Option<String>,
    /// `contexts.trace.parent_span_id`.
    pub parent_span_id: Option<String>,
    /// The transaction name.
    pub transaction: Option<String>,
    /// The first exception's message.
    pub message: Option<String>,
}

/// Chromium to drive: `TRACEBRIDGE_CHROMIUM` or Debian's `/usr/bin/chromium`.
pub fn chromium() -> PathBuf {
    std::env::var_os("TRACEBRIDGE_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// What to do on the page.
#[derive(Clone, Copy, Debug, Default)]
pub struct Drive<'a> {
    /// Buttons to click, in order (`#call-mesh`, `#call-fail`, `#throw`).
    pub clicks: &'a [&'a str],
    /// Where to save a screenshot of the page after the clicks.
    pub screenshot: Option<&'a Path>,
    /// Headers removed from the page's calls before they leave the browser (`traceparent`:
    /// the page then sends only Sentry's headers, like a plain Sentry frontend).
    pub drop_headers: &'a [&'a str],
}

/// Loads `url` in headless Chromium, does `what` (waiting for each call to finish, and for the
/// error envelope after `#throw`) and returns the report. Errors name the ensure script when
/// Chromium, the npm packages or the built page are missing.
pub fn drive(url: &str, what: &Drive<'_>) -> Result<DriveReport, String> {
    let frontend = repo_root().join("frontend");
    let chromium = chromium();
    if !chromium.is_file() {
        return Err(format!(
            "no Chromium at {}: run scripts/ensure-chromium.sh",
            chromium.display()
        ));
    }
    if !frontend.join("node_modules/playwright-core").is_dir() {
        return Err(
            "frontend/node_modules has no playwright-core: run scripts/ensure-frontend.sh".into(),
        );
    }
    if !frontend.join("dist/index.html").is_file() {
        return Err("frontend/dist is not built: run scripts/ensure-frontend.sh".into());
    }

    let mut command = Command::new("node");
    command
        .current_dir(&frontend)
        .arg("scripts/drive.mjs")
        .args(["--url", url, "--chromium"])
        .arg(&chromium)
        .args(["--timeout-ms", "90000"]);
    for click in what.clicks {
        command.args(["--click", click]);
    }
    for name in what.drop_headers {
        command.args(["--drop-header", name]);
    }
    if let Some(path) = what.screenshot {
        command.arg("--screenshot").arg(path);
    }
    let out = output_within(command, Duration::from_secs(120))
        .map_err(|e| format!("node scripts/drive.mjs: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "node scripts/drive.mjs failed ({}):\n{}\n{}",
            out.status,
            stdout,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).map_err(|e| format!("drive.mjs printed {stdout:?}: {e}"))
}
