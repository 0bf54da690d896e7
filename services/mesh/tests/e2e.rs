//! End to end through real processes: `service-a`, `service-b`, `service-c` started as
//! separate binaries on free loopback ports, exporting OTLP/gRPC to an in-memory receiver.

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use mesh::traffic::{headers, Incoming, Parent};
use mesh::Service;
use support::{assert_mesh_trace, start, SPAN_WAIT};
use tracebridge_testkit::SpanKind;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_incoming_format_gives_one_connected_trace_across_a_b_c() {
    let t = start(&[]).await;
    for format in Incoming::ALL {
        let parent = Parent::random();
        let (answer, trace_id) = t.get_trace(&headers(format, &parent)).await;
        let incoming = (format != Incoming::None).then_some(&parent);
        if incoming.is_none() {
            assert_ne!(trace_id, parent.trace_id);
        }
        let trace = t.trace(&trace_id, 11).await;
        assert_mesh_trace(&trace, incoming, &answer);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_in_c_answers_502_with_error_spans_where_it_happened_and_surfaced() {
    let t = start(&[]).await;
    let answer = t.get("/trace?fail=c", &[]).await;
    assert_eq!(answer.status, 502);
    let error = answer.body["error"].as_str().expect("JSON error");
    assert!(
        error.contains("service-c") && error.contains("Internal"),
        "{error}"
    );
    let trace_id = answer
        .traceresponse_trace_id()
        .expect("traceresponse")
        .to_owned();
    assert_eq!(answer.body_trace_id(), Some(trace_id.as_str()));

    // a: server, trace1, trace2, client PingB, client PingC; b: server, client GET;
    // c: GET /work, trace3, server PingC (failed before its trace3).
    let trace = t.trace(&trace_id, 10).await;
    trace.assert_len(10);
    trace.assert_connected();
    let c_server = trace.expect_exact("service-c", "ping.PingC/Ping");
    let a_client = trace.expect_exact("service-a", "ping.PingC/Ping");
    let a_server = trace.expect_exact("service-a", "GET /trace");
    assert_eq!(c_server.kind, SpanKind::Server);
    assert_eq!(a_client.kind, SpanKind::Client);
    trace.assert_child_of(c_server, a_client);
    for span in [c_server, a_client] {
        assert!(span.status.is_error(), "{}", span.summary());
        assert_eq!(
            span.attr_i64("rpc.grpc.status_code"),
            Some(13),
            "INTERNAL: {}",
            span.summary()
        );
    }
    assert!(a_server.status.is_error(), "{}", a_server.summary());
    assert_eq!(a_server.attr_i64("http.response.status_code"), Some(502));
    let errors: Vec<_> = trace
        .spans()
        .iter()
        .filter(|s| s.status.is_error())
        .map(|s| s.span_id.as_str())
        .collect();
    assert_eq!(
        errors.len(),
        3,
        "only the failing path is ERROR\n{}",
        trace.dump()
    );
    assert_eq!(
        trace.find_all("service-c", "trace3").len(),
        1,
        "c did no work for the failing call"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_in_b_answers_502_and_c_is_not_reached() {
    let t = start(&[]).await;
    let answer = t.get("/trace?fail=b", &[]).await;
    assert_eq!(answer.status, 502);
    assert!(
        answer.body["error"].as_str().unwrap().contains("service-b"),
        "{}",
        answer.body
    );
    let trace_id = answer
        .traceresponse_trace_id()
        .expect("traceresponse")
        .to_owned();
    let trace = t.trace(&trace_id, 5).await;
    trace.assert_len(5);
    trace.assert_connected();
    let b_server = trace.expect_exact("service-b", "ping.PingB/Ping");
    let a_client = trace.expect_exact("service-a", "ping.PingB/Ping");
    trace.assert_child_of(b_server, a_client);
    for span in [
        b_server,
        a_client,
        trace.expect_exact("service-a", "GET /trace"),
    ] {
        assert!(span.status.is_error(), "{}", span.summary());
    }
    assert!(
        trace.spans().iter().all(|s| s.service_name != "service-c"),
        "{}",
        trace.dump()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_answers_200_and_exports_nothing() {
    let t = start(&[]).await;
    let health = t
        .get("/healthz", &headers(Incoming::W3c, &Parent::random()))
        .await;
    assert_eq!(health.status, 200);
    assert_eq!(
        health.traceresponse, None,
        "an untraced path has no traceresponse"
    );
    // A traced request after it: once its spans are in, a's earlier spans would be too.
    let answer = t.get("/trace", &[]).await;
    let trace_id = answer
        .traceresponse_trace_id()
        .expect("traceresponse")
        .to_owned();
    t.trace(&trace_id, 11).await;
    let all = t.receiver.spans();
    assert!(
        all.iter().all(|s| s.trace_id == trace_id),
        "only the /trace request exported spans: {:#?}",
        all.iter().map(|s| s.summary()).collect::<Vec<_>>()
    );
    assert_eq!(all.len(), 11);
}

/// An HTTP server recording the headers of every request it gets.
async fn header_recorder() -> (SocketAddr, Arc<Mutex<Vec<HeaderMap>>>) {
    let seen: Arc<Mutex<Vec<HeaderMap>>> = Arc::default();
    let app = axum::Router::new()
        .fallback(
            |State(seen): State<Arc<Mutex<Vec<HeaderMap>>>>, headers: HeaderMap| async move {
                seen.lock().unwrap().push(headers);
                "recorded"
            },
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, seen)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    let values: Vec<_> = headers.get_all(name).iter().collect();
    assert_eq!(values.len(), 1, "exactly one {name} header in {headers:?}");
    values[0].to_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_forwards_every_format_with_the_incoming_trace_and_a_fresh_span_per_call() {
    let t = start(&[]).await;
    let (recorder, seen) = header_recorder().await;
    let parent = Parent::random();
    let trace_id = parent.trace_id.clone();
    let dsc = format!(
        "sentry-trace_id={trace_id},sentry-public_key=abc,sentry-sample_rate=1,sentry-sampled=true"
    );
    let body = serde_json::json!([
        {"url": format!("http://{recorder}/first"), "arguments": []},
        {"url": format!("http://{recorder}/second"), "arguments": [{"url": "http://nowhere", "arguments": []}]},
    ]);
    let response = t
        .client
        .post(format!("{}/conformance", t.a_url))
        .header(
            "traceparent",
            format!("00-{trace_id}-{}-01", parent.span_id),
        )
        .header("baggage", format!("userId=alice,{dsc}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "one POST per call, in order");
    let mut span_ids = Vec::new();
    for headers in &seen {
        let traceparent = header(headers, "traceparent");
        let parts: Vec<_> = traceparent.split('-').collect();
        assert_eq!(parts.len(), 4, "{traceparent}");
        assert_eq!(
            (parts[0], parts[1], parts[3]),
            ("00", trace_id.as_str(), "01"),
            "{traceparent}"
        );
        let span_id = parts[2].to_owned();
        assert_ne!(
            span_id, parent.span_id,
            "a fresh span, not the incoming one"
        );

        let uber = header(headers, "uber-trace-id");
        let fields: Vec<_> = uber.split(':').collect();
        assert_eq!(fields.len(), 4, "{uber}");
        assert_eq!(format!("{:0>32}", fields[0]), trace_id, "{uber}");
        assert_eq!(format!("{:0>16}", fields[1]), span_id, "{uber}");
        assert_eq!(fields[3], "1", "sampled: {uber}");

        assert_eq!(
            header(headers, "sentry-trace"),
            format!("{trace_id}-{span_id}-1")
        );
        assert_eq!(header(headers, "b3"), format!("{trace_id}-{span_id}-1"));

        let baggage: std::collections::BTreeSet<&str> = header(headers, "baggage")
            .split(',')
            .map(str::trim)
            .collect();
        let sent = format!("userId=alice,{dsc}");
        let expected: std::collections::BTreeSet<&str> = sent.split(',').collect();
        assert_eq!(
            baggage, expected,
            "app baggage and the frozen Sentry DSC, in one header"
        );
        span_ids.push(span_id);
    }
    assert_ne!(span_ids[0], span_ids[1], "a fresh span per call");

    // The forwarded span ids are a's CLIENT spans, children of its SERVER span.
    let trace = t.trace(&trace_id, 3).await;
    trace.assert_len(3);
    let server = trace.expect_exact("service-a", "POST /conformance");
    assert_eq!(
        server.parent_span_id.as_deref(),
        Some(parent.span_id.as_str())
    );
    for span_id in &span_ids {
        let client = trace
            .by_id(span_id)
            .unwrap_or_else(|| panic!("no span {span_id}\n{}", trace.dump()));
        assert_eq!(client.kind, SpanKind::Client);
        assert_eq!(client.name, "POST");
        trace.assert_child_of(client, server);
    }
}

/// SIGTERM to `target` while a slow request is inside it: the request completes 200, the
/// process exits 0, and every span of the request (the target's included) reaches the
/// receiver. `trigger` is a span that ends just before the request enters `target`'s slow part.
async fn sigterm_finishes_in_flight(target: Service, trigger: (&str, &str)) {
    let mut t = start(&[("DEMO_DELAY_MS", "1000")]).await;
    let parent = Parent::random();
    let request = {
        let client = t.client.clone();
        let a_url = t.a_url.clone();
        let headers = headers(Incoming::W3c, &parent);
        tokio::spawn(async move { mesh::traffic::get(&client, &a_url, "/trace", &headers).await })
    };
    let (service, name) = trigger;
    let trace_id = parent.trace_id.clone();
    t.receiver
        .wait_for(
            |spans| {
                spans
                    .iter()
                    .any(|s| s.trace_id == trace_id && s.service_name == service && s.name == name)
            },
            SPAN_WAIT,
        )
        .await
        .unwrap();
    // The trigger is exported up to ~100 ms after it ends; the target's work lasts 1 s.
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(
        t.mesh.exit_status(target).is_none(),
        "{target} still runs before SIGTERM"
    );
    t.mesh.terminate(target).unwrap();

    let answer = request
        .await
        .unwrap()
        .expect("the in-flight request is answered");
    assert_eq!(answer.status, 200, "{target}: {}", answer.body);
    let status =
        tokio::task::block_in_place(|| t.mesh.wait_exit(target, Duration::from_secs(30))).unwrap();
    assert!(
        status.success(),
        "{target} exits 0 after SIGTERM: {status}\n{}",
        t.mesh.log(target)
    );
    let trace = t.trace(&parent.trace_id, 11).await;
    assert_mesh_trace(&trace, Some(&parent), &answer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_to_a_finishes_the_in_flight_request_and_flushes() {
    sigterm_finishes_in_flight(Service::A, ("service-a", "trace1")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_to_b_finishes_the_in_flight_request_and_flushes() {
    sigterm_finishes_in_flight(Service::B, ("service-a", "trace1")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_to_c_finishes_the_in_flight_request_and_flushes() {
    sigterm_finishes_in_flight(Service::C, ("service-b", "ping.PingB/Ping")).await;
}

#[test]
fn a_service_that_cannot_bind_exits_non_zero_naming_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let output = std::process::Command::new(support::service_binaries().join("service-a"))
        .env("A_LISTEN", addr.to_string())
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env("OTEL_SDK_DISABLED", "true")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on {addr} (A_LISTEN)")),
        "stderr: {stderr}"
    );
}

/// The W3C harness's Level 2 cases against a real `service-a` through `POST /conformance`
/// (the calls the W3C test suite makes, judged on what reaches the harness's endpoint):
/// tracestate keys of the Level 2 grammar and duplicated keys are inherited, a grammar break
/// drops the tracestate but keeps the trace, and the random flag comes out as it went in,
/// sampled or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_follows_trace_context_level_2() {
    let t = start(&[]).await;
    let (recorder, seen) = header_recorder().await;
    let trace_id = "12345678901234567890123456789012";
    let cases: Vec<(&str, Vec<&str>, Option<&str>)> = vec![
        ("02", vec!["foo@=1,bar=2"], Some("foo@=1,bar=2")),
        ("00", vec!["foo@@bar=1,bar=2"], Some("foo@@bar=1,bar=2")),
        ("03", vec!["foo=1,foo=1"], Some("foo=1,foo=1")),
        ("01", vec!["foo=1,foo=2"], Some("foo=1,foo=2")),
        ("02", vec!["foo=1", "foo=2"], Some("foo=1,foo=2")),
        ("01", vec!["@foo=1,bar=2"], None),
    ];
    for (flags, tracestate, forwarded) in &cases {
        seen.lock().unwrap().clear();
        let mut request = t
            .client
            .post(format!("{}/conformance", t.a_url))
            .header(
                "traceparent",
                format!("00-{trace_id}-1234567890123456-{flags}"),
            )
            .json(&serde_json::json!([
                {"url": format!("http://{recorder}/test"), "arguments": []},
            ]));
        for value in tracestate {
            request = request.header("tracestate", *value);
        }
        assert_eq!(request.send().await.unwrap().status(), 200);
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 1, "{tracestate:?}");
        let traceparent = header(&seen[0], "traceparent");
        let parts: Vec<_> = traceparent.split('-').collect();
        assert_eq!(
            (parts[0], parts[1], parts[3]),
            ("00", trace_id, *flags),
            "{tracestate:?}: {traceparent}"
        );
        assert_ne!(parts[2], "1234567890123456", "a new parent id");
        assert_eq!(
            seen[0].get("tracestate").map(|v| v.to_str().unwrap()),
            *forwarded,
            "{tracestate:?}"
        );
    }
}
