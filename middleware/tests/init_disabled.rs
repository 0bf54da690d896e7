//! `OTEL_SDK_DISABLED=true`: no provider, nothing exported even with an endpoint, the layers
//! are told to pass through.

use std::collections::HashMap;
use std::time::Duration;

use opentelemetry::trace::TraceContextExt;
use tracebridge::config::Config;
use tracebridge::SpanExt;
use tracebridge_testkit::OtlpReceiver;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_exports_nothing_and_sets_the_flag() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let vars: HashMap<String, String> = [
        ("OTEL_SDK_DISABLED", "true".to_owned()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.grpc_endpoint()),
        ("OTEL_BSP_SCHEDULE_DELAY", "10".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let cfg = Config::from_lookup(|n| vars.get(n).cloned()).unwrap();
    let guard = tracebridge::Builder::from_config(cfg)
        .install()
        .expect("init");

    assert!(tracebridge::global::settings().disabled);
    assert!(guard.tracer_provider().is_none());
    for _ in 0..10 {
        let span = tracing::info_span!("GET /x", otel.kind = "server");
        let _e = span.enter();
        assert!(!span.context().span().span_context().is_valid());
        assert!(!opentelemetry::Context::current()
            .span()
            .span_context()
            .is_valid());
    }
    tokio::task::spawn_blocking(move || drop(guard))
        .await
        .unwrap();
    // Give a (wrongly) configured exporter time to show up; none may.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(receiver.request_count(), 0);
    assert!(receiver.spans().is_empty());
    receiver.shutdown().await;
}
