//! `init` with OTLP/gRPC export to a real receiver: a `tracing` span reaches the collector with
//! the configured service name and resource, and log lines carry its ids.
//! (Own test binary: init installs process-wide state.)

use std::collections::HashMap;
use std::time::Duration;

use opentelemetry::trace::TraceContextExt;
use tracebridge::config::Config;
use tracebridge::SpanExt;
use tracebridge_testkit::{OtlpReceiver, SpanKind};

mod init_support;
use init_support::Captured;

fn config(vars: &[(&str, String)]) -> Config {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    Config::from_lookup(|name| map.get(name).cloned()).expect("valid config")
}

// A current-thread runtime on purpose: export runs on the guard's own runtime, so neither
// exporting nor dropping the guard from async code can deadlock on this single thread.
#[tokio::test]
async fn grpc_export_carries_service_resource_and_span() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let logs = Captured::default();
    let cfg = config(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.grpc_endpoint()),
        ("OTEL_SERVICE_NAME", "checkout".into()),
        (
            "OTEL_RESOURCE_ATTRIBUTES",
            "deployment.environment=test,team=pay%20ments".into(),
        ),
        ("OTEL_BSP_SCHEDULE_DELAY", "50".into()),
        ("RUST_LOG", "info".into()),
    ]);
    let log_writer = logs.clone();
    let guard = tracebridge::Builder::from_config(cfg)
        .log_writer(move || log_writer.clone())
        .install()
        .expect("init");

    let (trace_id, parent_id, child_id) = {
        let span = tracing::info_span!("GET /orders/{id}", otel.kind = "server", order = 7);
        let _entered = span.enter();
        let child = tracing::info_span!("load_order");
        let _c = child.enter();
        tracing::info!("inside the child span");
        let pcx = span.context();
        let ccx = child.context();
        (
            pcx.span().span_context().trace_id().to_string(),
            pcx.span().span_context().span_id().to_string(),
            ccx.span().span_context().span_id().to_string(),
        )
    };
    assert_ne!(trace_id, "00000000000000000000000000000000");

    let spans = receiver
        .wait_for_trace(&trace_id, 2, Duration::from_secs(20))
        .await
        .unwrap();
    let server = spans
        .iter()
        .find(|s| s.span_id == parent_id)
        .expect("server span");
    assert_eq!(server.name, "GET /orders/{id}");
    assert_eq!(server.kind, SpanKind::Server);
    assert_eq!(server.parent_span_id, None);
    assert_eq!(server.attr_i64("order"), Some(7));
    assert_eq!(server.service_name, "checkout");
    assert_eq!(
        server
            .resource
            .get("deployment.environment")
            .and_then(|v| v.as_str()),
        Some("test")
    );
    assert_eq!(
        server.resource.get("team").and_then(|v| v.as_str()),
        Some("pay ments")
    );
    assert_eq!(
        server
            .resource
            .get("telemetry.sdk.language")
            .and_then(|v| v.as_str()),
        Some("rust")
    );
    assert_eq!(
        server
            .resource
            .get("telemetry.sdk.name")
            .and_then(|v| v.as_str()),
        Some("opentelemetry")
    );
    let child = spans
        .iter()
        .find(|s| s.span_id == child_id)
        .expect("child span");
    assert_eq!(child.name, "load_order");
    assert_eq!(child.kind, SpanKind::Internal);
    assert_eq!(child.parent_span_id.as_deref(), Some(parent_id.as_str()));

    // The log line emitted inside the child carries the child's ids.
    let line = logs
        .lines()
        .into_iter()
        .find(|l| l.contains("inside the child span"))
        .expect("log line");
    assert!(line.contains(&format!("trace_id={trace_id}")), "{line}");
    assert!(line.contains(&format!("span_id={child_id}")), "{line}");
    assert!(line.contains(" INFO "), "{line}");
    // No "export off" line: an endpoint is configured.
    assert!(!logs.lines().iter().any(|l| l.contains("export off")));

    drop(guard);
    receiver.shutdown().await;
}
