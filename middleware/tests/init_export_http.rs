//! `init` with OTLP/HTTP protobuf export: the generic endpoint gets `/v1/traces`, and dropping
//! the guard flushes spans that the (long) schedule delay would otherwise hold back.

use std::collections::HashMap;

use opentelemetry::trace::TraceContextExt;
use tracebridge::config::Config;
use tracebridge::SpanExt;
use tracebridge_testkit::{OtlpReceiver, SpanKind};

fn config(vars: &[(&str, String)]) -> Config {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    Config::from_lookup(|name| map.get(name).cloned()).expect("valid config")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_protobuf_export_and_guard_drop_flushes() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let cfg = config(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.http_endpoint()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".into()),
        (
            "OTEL_RESOURCE_ATTRIBUTES",
            "service.name=billing,region=eu".into(),
        ),
        // Nothing is exported by the timer during the test: only the guard's flush sends.
        ("OTEL_BSP_SCHEDULE_DELAY", "600000".into()),
        // RUST_LOG filters log output only: INFO spans are still exported.
        ("RUST_LOG", "warn".into()),
    ]);
    let guard = tracebridge::Builder::from_config(cfg)
        .install()
        .expect("init");

    let mut expected = Vec::new();
    for i in 0..3 {
        let span = tracing::info_span!("POST /pay", otel.kind = "client", attempt = i);
        let cx = span.context();
        let sc = cx.span().span_context().clone();
        expected.push((sc.trace_id().to_string(), sc.span_id().to_string()));
        drop(span);
    }
    // Flush happens inside drop: the spans are at the receiver when it returns.
    tokio::task::spawn_blocking(move || drop(guard))
        .await
        .unwrap();

    let spans = receiver.spans();
    assert_eq!(spans.len(), 3, "{spans:#?}");
    for (trace_id, span_id) in &expected {
        let s = spans
            .iter()
            .find(|s| &s.span_id == span_id)
            .unwrap_or_else(|| panic!("span {span_id} not exported"));
        assert_eq!(&s.trace_id, trace_id);
        assert_eq!(s.name, "POST /pay");
        assert_eq!(s.kind, SpanKind::Client);
        assert_eq!(s.service_name, "billing");
        assert_eq!(
            s.resource.get("region").and_then(|v| v.as_str()),
            Some("eu")
        );
    }
    receiver.shutdown().await;
}
