//! End to end through real sockets: one `tracing` span, exported by OTLP to the testkit's
//! OtlpReceiver and seen by Sentry (HTTP transport to the testkit's SentryReceiver) as both a
//! transaction and an error event — all with the same trace id. The guard's drop delivers
//! both (Sentry flush + span flush).

use std::collections::HashMap;
use std::time::Duration;

use opentelemetry::trace::TraceContextExt;
use tracebridge::config::Config;
use tracebridge::SpanExt;
use tracebridge_testkit::{OtlpReceiver, SentryReceiver};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jaeger_and_sentry_see_one_trace_id() {
    let otlp = OtlpReceiver::start().await.unwrap();
    let sentry_rx = SentryReceiver::start().await.unwrap();
    let vars: HashMap<&str, String> = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.grpc_endpoint()),
        ("OTEL_SERVICE_NAME", "service-a".to_owned()),
        ("OTEL_BSP_SCHEDULE_DELAY", "600000".to_owned()),
        ("SENTRY_DSN", sentry_rx.dsn("pubkey")),
        ("SENTRY_TRACES_SAMPLE_RATE", "1".to_owned()),
        ("JAEGER_UI_URL", "http://127.0.0.1:16686".to_owned()),
    ]
    .into_iter()
    .collect();
    let cfg = Config::from_lookup(|n| vars.get(n).cloned()).unwrap();
    let guard = tracebridge::Builder::from_config(cfg)
        .install()
        .expect("init");

    let span = tracing::info_span!("GET /trace", otel.kind = "server");
    let cx = span.context();
    let trace_id = cx.span().span_context().trace_id().to_string();
    let span_id = cx.span().span_context().span_id().to_string();
    span.in_scope(|| tracing::error!("b failed"));
    drop(span);
    tokio::task::spawn_blocking(move || drop(guard))
        .await
        .unwrap();

    // Jaeger's side.
    let spans = otlp.spans_of(&trace_id);
    assert_eq!(spans.len(), 1, "{spans:#?}");
    assert_eq!(spans[0].span_id, span_id);
    assert_eq!(spans[0].service_name, "service-a");

    // Sentry's side: delivered by the guard's flush.
    let events = sentry_rx
        .wait_for_events(1, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(events.len(), 1, "{events:#?}");
    let event = &events[0];
    assert_eq!(
        event
            .pointer("/contexts/trace/trace_id")
            .and_then(|v| v.as_str()),
        Some(trace_id.as_str())
    );
    assert_eq!(
        event
            .pointer("/contexts/trace/span_id")
            .and_then(|v| v.as_str()),
        Some(span_id.as_str())
    );
    assert_eq!(
        event
            .pointer("/tags/jaeger_trace_url")
            .and_then(|v| v.as_str()),
        Some(format!("http://127.0.0.1:16686/trace/{trace_id}").as_str())
    );
    let transactions = sentry_rx
        .wait_for_transactions(1, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(transactions.len(), 1, "{transactions:#?}");
    assert_eq!(
        transactions[0]
            .pointer("/contexts/trace/trace_id")
            .and_then(|v| v.as_str()),
        Some(trace_id.as_str())
    );
    assert_eq!(
        transactions[0]
            .pointer("/contexts/trace/span_id")
            .and_then(|v| v.as_str()),
        Some(span_id.as_str())
    );
    assert!(sentry_rx
        .envelopes()
        .iter()
        .all(|e| e.public_key.as_deref() == Some("pubkey")));

    otlp.shutdown().await;
    sentry_rx.shutdown().await;
}
