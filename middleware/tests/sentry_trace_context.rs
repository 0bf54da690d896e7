//! Sentry events captured inside a span carry that OpenTelemetry span's trace and span ids,
//! link to Jaeger UI, and never carry credentials; the Sentry transaction (from
//! SentrySpanProcessor) has the same trace id as the OpenTelemetry span.

use std::collections::HashMap;
use std::sync::Arc;

use opentelemetry::trace::{Span as _, TraceContextExt, Tracer as _};
use sentry::protocol::{Context, EnvelopeItem, Event, Request, TraceContext};
use tracebridge::config::Config;
use tracebridge::SpanExt;

fn trace_ids(event: &Event<'static>) -> (String, String) {
    match event.contexts.get("trace") {
        Some(Context::Trace(tc)) => (tc.trace_id.to_string(), tc.span_id.to_string()),
        other => panic!("no trace context: {other:?}"),
    }
}

/// The trace context of the one transaction among `envelopes`, which must be named `name`.
fn only_transaction(envelopes: &[sentry::Envelope], name: &str) -> TraceContext {
    let transactions: Vec<_> = envelopes
        .iter()
        .flat_map(|e| e.items())
        .filter_map(|item| match item {
            EnvelopeItem::Transaction(t) => Some(t.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(transactions.len(), 1, "{transactions:#?}");
    assert_eq!(transactions[0].name.as_deref(), Some(name));
    match transactions[0].contexts.get("trace") {
        Some(Context::Trace(tc)) => (**tc).clone(),
        other => panic!("transaction without trace context: {other:?}"),
    }
}

#[test]
fn events_carry_the_otel_trace_and_no_credentials() {
    let vars: HashMap<&str, &str> = [
        ("SENTRY_DSN", "https://public@127.0.0.1:9/42"),
        ("SENTRY_ENVIRONMENT", "test-env"),
        ("SENTRY_RELEASE", "svc@1.0.0"),
        ("SENTRY_TRACES_SAMPLE_RATE", "1.0"),
        ("JAEGER_UI_URL", "http://jaeger.local:16686/"),
        ("TRACEBRIDGE_SENSITIVE_HEADERS", "x-api-key"),
    ]
    .into_iter()
    .collect();
    let cfg = Config::from_lookup(|n| vars.get(n).map(|v| v.to_string())).unwrap();
    let transport = sentry::test::TestTransport::new();
    let guard = tracebridge::Builder::from_config(cfg)
        .sentry_transport(Arc::new(transport.clone()))
        .install()
        .expect("init");
    assert!(tracebridge::global::settings().sentry_enabled);
    // The Sentry layers' filters carry level hints too: the global maximum stays at INFO, so
    // libraries' TRACE spans are never created (see init_no_endpoint.rs).
    assert_eq!(
        tracing::level_filters::LevelFilter::current(),
        tracing::level_filters::LevelFilter::INFO
    );
    assert!(tracing::trace_span!(target: "h2::proto::streams", "poll").is_disabled());

    let span = tracing::info_span!("GET /fail", otel.kind = "server");
    let cx = span.context();
    let trace_id = cx.span().span_context().trace_id().to_string();
    let span_id = cx.span().span_context().span_id().to_string();
    {
        let _e = span.enter();
        // 1. An ERROR event through the sentry-tracing layer.
        tracing::error!(code = 502, "upstream failed");
        // 2. A captured event with a request full of credentials.
        sentry::capture_event(Event {
            message: Some("with request".into()),
            request: Some(Request {
                url: Some("https://user:pw@a.local/fail".parse().unwrap()),
                cookies: Some("session=abc".into()),
                headers: [
                    ("Authorization", "Bearer s3cret"),
                    ("Cookie", "session=abc"),
                    ("Proxy-Authorization", "Basic eA=="),
                    ("X-Api-Key", "k-123"),
                    ("x-request-id", "r-1"),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
                ..Default::default()
            }),
            ..Default::default()
        });
        // 3. The helper.
        tracebridge::sentry::capture_error(&std::io::Error::other("disk full"));

        // This service started the trace: downstream gets sentry-trace and this service's
        // DSC (public key of SENTRY_DSN, environment, release, sample rate) in `baggage`.
        let mut headers = http::HeaderMap::new();
        tracebridge::global::settings()
            .propagator
            .inject(&opentelemetry::Context::current(), &mut headers);
        assert_eq!(
            headers.get("sentry-trace").and_then(|v| v.to_str().ok()),
            Some(format!("{trace_id}-{span_id}-1").as_str())
        );
        let baggage = headers.get("baggage").unwrap().to_str().unwrap();
        let members: Vec<&str> = baggage.split(',').collect();
        for expected in [
            format!("sentry-trace_id={trace_id}"),
            "sentry-public_key=public".to_owned(),
            "sentry-sample_rate=1".to_owned(),
            "sentry-environment=test-env".to_owned(),
            "sentry-release=svc%401.0.0".to_owned(),
            "sentry-sampled=true".to_owned(),
        ] {
            assert!(
                members.contains(&expected.as_str()),
                "{expected} not in {baggage}"
            );
        }
    }
    drop(span); // ends the OTel span: SentrySpanProcessor finishes the transaction

    let envelopes = transport.fetch_and_clear_envelopes();
    let events: Vec<Event<'static>> = envelopes
        .iter()
        .filter_map(|e| e.event().cloned())
        .collect();
    assert_eq!(events.len(), 3, "{events:#?}");
    for event in &events {
        assert_eq!(
            trace_ids(event),
            (trace_id.clone(), span_id.clone()),
            "{event:#?}"
        );
        assert_eq!(
            event.tags.get("jaeger_trace_url").map(String::as_str),
            Some(format!("http://jaeger.local:16686/trace/{trace_id}").as_str())
        );
        assert_eq!(event.environment.as_deref(), Some("test-env"));
        assert_eq!(event.release.as_deref(), Some("svc@1.0.0"));
        // send_default_pii is off: no user / IP address is added.
        assert!(event.user.is_none(), "{:?}", event.user);
    }
    let from_tracing = events
        .iter()
        .find(|e| {
            e.message
                .as_deref()
                .is_some_and(|m| m.contains("upstream failed"))
        })
        .unwrap_or_else(|| panic!("tracing::error! did not become an event: {events:#?}"));
    assert_eq!(from_tracing.level, sentry::Level::Error);
    assert!(events.iter().any(|e| e
        .exception
        .values
        .iter()
        .any(|x| x.value.as_deref() == Some("disk full"))));

    let with_request = events
        .iter()
        .find(|e| e.message.as_deref() == Some("with request"))
        .expect("captured event");
    let req = with_request.request.as_ref().unwrap();
    assert_eq!(
        req.headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect::<Vec<_>>(),
        vec![("x-request-id", "r-1")]
    );
    assert_eq!(req.cookies, None);
    assert_eq!(req.url.as_ref().unwrap().as_str(), "https://a.local/fail");
    let serialized = serde_json::to_string(&events).unwrap();
    for secret in ["s3cret", "session=abc", "eA==", "k-123", ":pw@"] {
        assert!(!serialized.contains(secret), "{secret} leaked");
    }

    // The transaction continues the same trace, rooted at the same span.
    let tc = only_transaction(&envelopes, "GET /fail");
    assert_eq!(tc.trace_id.to_string(), trace_id);
    assert_eq!(tc.span_id.to_string(), span_id);

    // A continued trace: the transaction's parent is the remote span. Sentry's span processor
    // reads it from the extracted context's `TracePropagationContext`, which init keeps on
    // because that processor is installed (without it, extraction leaves it out).
    let (remote_trace, remote_span) = ("771a43a4192642f0b136d5159a501700", "b7ad6b7169203331");
    let mut incoming = http::HeaderMap::new();
    incoming.insert(
        "sentry-trace",
        format!("{remote_trace}-{remote_span}-1").parse().unwrap(),
    );
    let parent = tracebridge::global::settings()
        .propagator
        .extract(&incoming);
    let mut continued =
        opentelemetry::global::tracer("test").start_with_context("GET /continued", &parent);
    continued.end();
    let tc = only_transaction(&transport.fetch_and_clear_envelopes(), "GET /continued");
    assert_eq!(tc.trace_id.to_string(), remote_trace);
    assert_eq!(
        tc.parent_span_id.map(|s| s.to_string()).as_deref(),
        Some(remote_span)
    );

    drop(guard);
}
