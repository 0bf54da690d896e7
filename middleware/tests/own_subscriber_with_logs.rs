//! `Builder::with_logs(true).build()`: the returned layer includes tracebridge's log layer, so
//! an application's subscriber gets tracebridge's lines (`trace_id=` / `span_id=` of the
//! current span, filtered by `RUST_LOG`) next to its own. Its own process: the subscriber is
//! global.

use std::collections::HashMap;

use opentelemetry::trace::TraceContextExt;
use tracebridge::config::Config;
use tracebridge::SpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

mod init_support;
use init_support::Captured;

#[test]
fn with_logs_adds_tracebridges_log_lines_to_the_applications_subscriber() {
    let vars: HashMap<&str, &str> = [("RUST_LOG", "warn")].into_iter().collect();
    let cfg = Config::from_lookup(|n| vars.get(n).map(|v| v.to_string())).unwrap();
    let tracebridge_logs = Captured::default();
    let writer = tracebridge_logs.clone();
    let (guard, telemetry) = tracebridge::Builder::from_config(cfg)
        .log_writer(move || writer.clone())
        .with_logs(true)
        .build()
        .expect("build");

    let app_logs = Captured::default();
    tracing_subscriber::registry()
        .with(init_support::app_json_layer(&app_logs))
        .with(telemetry)
        .init();

    let span = tracing::info_span!("checkout");
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    assert!(sc.is_valid());
    span.in_scope(|| {
        tracing::info!("info: the application's logs only (RUST_LOG=warn)");
        tracing::warn!(attempt = 2, "retrying");
    });

    // The ids are the current span's; its name is not printed, because the INFO span is below
    // the log layer's own filter (RUST_LOG=warn), as with `install()`.
    let lines = tracebridge_logs.lines();
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0].ends_with(&format!(
            " WARN trace_id={} span_id={} own_subscriber_with_logs: retrying attempt=2",
            sc.trace_id(),
            sc.span_id()
        )),
        "{}",
        lines[0]
    );
    let app: Vec<serde_json::Value> = app_logs
        .lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let messages: Vec<&str> = app
        .iter()
        .filter_map(|l| l["fields"]["message"].as_str())
        .collect();
    assert_eq!(
        messages,
        [
            "info: the application's logs only (RUST_LOG=warn)",
            "retrying"
        ]
    );
    drop(guard);
}
