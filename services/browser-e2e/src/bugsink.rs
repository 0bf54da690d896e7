//! A throwaway Bugsink (Sentry-compatible server) and the parts of its REST API the test reads.
//!
//! Started by `scripts/bugsink-start.sh` (free port, fresh data dir, one project per name),
//! stopped by `scripts/bugsink-stop.sh` with its pid when the [`Bugsink`] is dropped.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;

use crate::process::{output_within, repo_root};

/// One Bugsink project.
#[derive(Clone, Debug, Deserialize)]
pub struct Project {
    /// Numeric project id, as text.
    pub id: String,
    /// Its DSN (`http://KEY@127.0.0.1:PORT/ID`).
    pub dsn: String,
}

/// A running Bugsink; dropping it stops the server and removes its data dir.
#[derive(Debug, Deserialize)]
pub struct Bugsink {
    /// Base URL, `http://127.0.0.1:PORT`.
    pub url: String,
    /// The canonical API root, `{url}/api/canonical/0`.
    pub api: String,
    /// API token (`Authorization: Bearer`).
    pub token: String,
    /// gunicorn's master pid.
    pub pid: u32,
    /// The data dir (SQLite databases, config, log).
    pub data_dir: PathBuf,
    /// The projects, by name.
    pub projects: BTreeMap<String, Project>,
    #[serde(skip)]
    http: reqwest::Client,
}

impl Bugsink {
    /// Starts Bugsink with one project per name. Fails with what to run when the venv from
    /// `scripts/ensure-bugsink.sh` is missing.
    pub fn start(projects: &[&str]) -> Result<Bugsink, String> {
        let root = repo_root();
        let venv = std::env::var_os("BUGSINK_VENV")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join(".venv-bugsink"));
        if !venv.join("bin/gunicorn").is_file() {
            return Err(format!(
                "Bugsink is not installed in {}: run scripts/ensure-bugsink.sh",
                venv.display()
            ));
        }
        let mut command = Command::new("bash");
        command
            .arg(root.join("scripts/bugsink-start.sh"))
            .args(projects)
            .env("BUGSINK_VENV", &venv);
        let out = output_within(command, Duration::from_secs(180))
            .map_err(|e| format!("scripts/bugsink-start.sh: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "scripts/bugsink-start.sh failed ({}):\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout.lines().last().unwrap_or_default();
        let mut bugsink: Bugsink = serde_json::from_str(line)
            .map_err(|e| format!("bugsink-start.sh printed {stdout:?}: {e}"))?;
        bugsink.http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(bugsink)
    }

    /// The project `name` (one of those given to [`Bugsink::start`]).
    pub fn project(&self, name: &str) -> &Project {
        self.projects
            .get(name)
            .unwrap_or_else(|| panic!("no Bugsink project {name:?}"))
    }

    /// The DSN of project `name`.
    pub fn dsn(&self, name: &str) -> &str {
        &self.project(name).dsn
    }

    async fn get(&self, path_and_query: &str) -> Result<Value, String> {
        let url = format!("{}{}", self.api, path_and_query);
        let res = self
            .http
            .get(&url)
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        let status = res.status();
        let body = res.text().await.map_err(|e| format!("GET {url}: {e}"))?;
        if !status.is_success() {
            return Err(format!("GET {url}: {status}: {body}"));
        }
        serde_json::from_str(&body).map_err(|e| format!("GET {url}: {e}: {body}"))
    }

    /// Every stored event of project `name` (the event payloads, `data` in Bugsink's API):
    /// the issues of the project, their events, then each event in full.
    pub async fn events(&self, name: &str) -> Result<Vec<Value>, String> {
        let project = &self.project(name).id;
        let issues = self.get(&format!("/issues/?project={project}")).await?;
        let mut events = Vec::new();
        for issue in results(&issues) {
            let issue_id = issue["id"].as_str().unwrap_or_default();
            let listed = self.get(&format!("/events/?issue={issue_id}")).await?;
            for event in results(&listed) {
                let id = event["id"].as_str().unwrap_or_default();
                let full = self.get(&format!("/events/{id}/")).await?;
                events.push(full["data"].clone());
            }
        }
        Ok(events)
    }

    /// Waits (up to `timeout`) until project `name` holds an event whose
    /// `contexts.trace.trace_id` is `trace_id`, and returns all such events. Ingest is inline
    /// (the `local` template), but the SDKs send in the background, so the event may arrive a
    /// little after the request that caused it.
    pub async fn wait_for_trace_events(
        &self,
        name: &str,
        trace_id: &str,
        timeout: Duration,
    ) -> Result<Vec<Value>, String> {
        let deadline = Instant::now() + timeout;
        let mut last_error = None;
        loop {
            match self.events(name).await {
                Ok(events) => {
                    let found: Vec<Value> = events
                        .into_iter()
                        .filter(|e| event_trace_id(e) == Some(trace_id))
                        .collect();
                    if !found.is_empty() {
                        return Ok(found);
                    }
                }
                Err(e) => last_error = Some(e),
            }
            if Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let all = self.events(name).await.unwrap_or_default();
        let seen: Vec<_> = all
            .iter()
            .map(|e| event_trace_id(e).unwrap_or("-"))
            .collect();
        Err(format!(
            "Bugsink project {name} has no event of trace {trace_id} after {timeout:?}; \
             trace ids of its {} events: {seen:?}; last API error: {last_error:?}",
            all.len()
        ))
    }
}

impl Drop for Bugsink {
    fn drop(&mut self) {
        let mut command = Command::new("bash");
        command
            .arg(repo_root().join("scripts/bugsink-stop.sh"))
            .arg(self.pid.to_string())
            .arg(&self.data_dir);
        let _ = output_within(command, Duration::from_secs(30));
    }
}

fn results(page: &Value) -> impl Iterator<Item = &Value> {
    page["results"].as_array().into_iter().flatten()
}

/// `contexts.trace.trace_id` of an event payload.
pub fn event_trace_id(event: &Value) -> Option<&str> {
    event["contexts"]["trace"]["trace_id"].as_str()
}

/// `contexts.trace.span_id` of an event payload.
pub fn event_span_id(event: &Value) -> Option<&str> {
    event["contexts"]["trace"]["span_id"].as_str()
}
