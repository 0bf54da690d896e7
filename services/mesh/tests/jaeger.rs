//! The real Jaeger v2 (scripts/ensure-jaeger.sh builds it; `$TRACEBRIDGE_JAEGER` overrides):
//! the real `service-a`, `-b`, `-c` export by OTLP/gRPC, and by OTLP http/protobuf, to a tee
//! (testkit's `Jaeger::tee`, an `OtlpReceiver`) that keeps every export in memory and forwards
//! it unchanged, in the same protocol, to Jaeger. Each trace read back through Jaeger's query
//! API must be exactly the tree the in-memory receiver decoded from the same exports, and c's
//! `trace3` event (one per `trace3` span) a log of that span in Jaeger with its fields.

mod support;

use mesh::traffic::{headers, Incoming, Parent};
use support::{assert_mesh_trace, assert_trace3_events, start_with, SPAN_WAIT};
use tracebridge_testkit::jaeger::Jaeger;
use tracebridge_testkit::sentry::trace_id_of;
use tracebridge_testkit::SentryReceiver;

async fn mesh_to_jaeger(protocol: &str) {
    let jaeger = Jaeger::start().await.unwrap_or_else(|e| panic!("{e}"));
    let tee = jaeger.tee().await.unwrap();
    let endpoint = match protocol {
        "grpc" => tee.grpc_endpoint(),
        _ => tee.http_endpoint(),
    };
    let sentry = SentryReceiver::start().await.unwrap();
    let dsn = sentry.dsn("jaeger");
    let ui = jaeger.ui_url();
    let t = start_with(
        tee,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
            ("SENTRY_DSN", dsn.as_str()),
            ("SENTRY_TRACES_SAMPLE_RATE", "0"),
            ("JAEGER_UI_URL", ui.as_str()),
        ],
    )
    .await;

    for format in Incoming::ALL {
        let parent = Parent::random();
        let (answer, trace_id) = t.get_trace(&headers(format, &parent)).await;
        let incoming = (format != Incoming::None).then_some(&parent);
        let trace = t.trace(&trace_id, 11).await;
        let a_server = assert_mesh_trace(&trace, incoming, &answer);

        // The trace id from traceresponse opens the trace in Jaeger: the same 11 spans.
        let got = jaeger
            .wait_for_trace(&trace_id, 11, SPAN_WAIT)
            .await
            .unwrap_or_else(|e| panic!("{format}: {e}"));
        got.assert_same_as(&trace);
        assert_trace3_events(&trace, &got, 2);
        assert_eq!(got.services(), ["service-a", "service-b", "service-c"]);
        let root = got.by_id(&a_server).expect("a's SERVER span in Jaeger");
        assert_eq!(
            root.parent_span_id.as_deref(),
            incoming.map(|p| p.span_id.as_str()),
            "{format}: in Jaeger, a's SERVER span continues the incoming parent\n{}",
            got.dump()
        );
        assert_eq!(root.tag_str("span.kind"), Some("server"));
        assert_eq!(root.tag_str("http.route"), Some("/trace"));
        assert!(
            got.spans.iter().all(|s| !s.tags.contains_key("error")),
            "{format}: no ERROR in a successful trace\n{}",
            got.dump()
        );
    }

    // The failing path: ERROR exactly where it happened and where it surfaced.
    let answer = t.get("/trace?fail=c", &[]).await;
    assert_eq!(answer.status, 502, "{}", answer.body);
    let trace_id = answer
        .traceresponse_trace_id()
        .expect("traceresponse")
        .to_owned();
    let trace = t.trace(&trace_id, 10).await;
    trace.assert_len(10);
    let got = jaeger
        .wait_for_trace(&trace_id, 10, SPAN_WAIT)
        .await
        .unwrap();
    got.assert_same_as(&trace);
    let mut errors: Vec<(&str, &str)> = got
        .spans
        .iter()
        .filter(|s| s.tags.get("error") == Some(&serde_json::Value::Bool(true)))
        .map(|s| (s.service_name.as_str(), s.operation_name.as_str()))
        .collect();
    errors.sort();
    assert_eq!(
        errors,
        [
            ("service-a", "GET /trace"),
            ("service-a", "ping.PingC/Ping"),
            ("service-c", "ping.PingC/Ping"),
        ],
        "{}",
        got.dump()
    );
    for (service, name) in &errors {
        let span = got.expect_exact(service, name);
        assert_eq!(span.tag_str("otel.status_code"), Some("ERROR"));
    }
    // c's HTTP /work still ran (b's call): its trace3 and that one event, as a log.
    assert_trace3_events(&trace, &got, 1);

    // Sentry: a's and c's error events carry the Jaeger link, which opens this trace.
    let sentry_events = sentry
        .wait_for(
            |envs| {
                envs.iter()
                    .flat_map(|e| e.payloads("event"))
                    .filter(|p| trace_id_of(p) == Some(trace_id.as_str()))
                    .count()
                    >= 2
            },
            SPAN_WAIT,
        )
        .await
        .unwrap();
    let links: Vec<String> = sentry_events
        .iter()
        .flat_map(|e| e.payloads("event"))
        .filter(|p| trace_id_of(p) == Some(trace_id.as_str()))
        .map(|p| {
            p.pointer("/tags/jaeger_trace_url")
                .and_then(|v| v.as_str())
                .unwrap_or_else(|| panic!("no jaeger_trace_url tag in {p}"))
                .to_owned()
        })
        .collect();
    assert_eq!(links.len(), 2, "{links:?}");
    for link in links {
        assert_eq!(link, format!("{ui}/trace/{trace_id}"));
        let id = link.rsplit('/').next().unwrap();
        let opened = jaeger.trace(id).await.unwrap().expect("the link's trace");
        assert_eq!(opened.trace_id, trace_id);
        assert_eq!(opened.spans.len(), 10);
    }
    assert_eq!(t.receiver.forward_errors(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_grpc_every_format_and_the_failing_path_read_back_from_jaeger() {
    mesh_to_jaeger("grpc").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_http_protobuf_every_format_and_the_failing_path_read_back_from_jaeger() {
    mesh_to_jaeger("http/protobuf").await;
}
