//! Composite behaviour: precedence, context contents, merged baggage, injection of every
//! format, `OTEL_PROPAGATORS` parsing.

use super::*;
use opentelemetry::StringValue;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN: &str = "00f067aa0ba902b7";
const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        map.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_bytes(v).unwrap(),
        );
    }
    map
}

fn all() -> Propagator {
    Propagator::from_names("tracecontext,baggage,jaeger,b3,b3multi,sentry").unwrap()
}

fn remote(cx: &Context) -> (String, String, bool, bool) {
    let span = cx.span();
    let sc = span.span_context();
    (
        sc.trace_id().to_string(),
        sc.span_id().to_string(),
        sc.is_sampled(),
        sc.is_remote(),
    )
}

fn sentry_ctx(cx: &Context) -> Option<String> {
    cx.get::<::sentry::TracePropagationContext>()
        .map(|c| c.sentry_trace_header())
}

#[test]
fn w3c_extract_gives_remote_parent_and_sentry_context() {
    let cx = Propagator::default().extract(&headers(&[
        ("traceparent", TP.as_bytes()),
        ("tracestate", b"congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"),
    ]));
    assert_eq!(remote(&cx), (TRACE.into(), SPAN.into(), true, true));
    assert_eq!(
        cx.span().span_context().trace_state().header(),
        "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
    );
    assert_eq!(
        sentry_ctx(&cx).as_deref(),
        Some(&*format!("{TRACE}-{SPAN}-1"))
    );
}

#[test]
fn sentry_context_can_be_left_out_and_the_choice_survives_other_setters() {
    let h = headers(&[("sentry-trace", format!("{TRACE}-{SPAN}-1").as_bytes())]);
    let off = Propagator::default().with_sentry_context(false);
    for p in [
        off.clone(),
        off.clone().with_dsc(DscConfig::default()),
        off.clone().with_precedence(&[Format::Sentry]),
    ] {
        let cx = p.extract(&h);
        assert_eq!(remote(&cx), (TRACE.into(), SPAN.into(), true, true));
        assert_eq!(sentry_ctx(&cx), None);
    }
    let on = off.with_sentry_context(true).with_dsc(DscConfig::default());
    assert_eq!(
        sentry_ctx(&on.extract(&h)).as_deref(),
        Some(&*format!("{TRACE}-{SPAN}-1"))
    );
}

#[test]
fn w3c_round_trip_keeps_flags_and_tracestate() {
    let p = Propagator::from_names("tracecontext").unwrap();
    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02";
    let cx = p.extract(&headers(&[
        ("traceparent", tp.as_bytes()),
        ("tracestate", b"a=1, b=2"),
    ]));
    let mut out = HeaderMap::new();
    p.inject(&cx, &mut out);
    assert_eq!(out["traceparent"], tp);
    assert_eq!(out["tracestate"], "a=1,b=2");
    assert_eq!(out.len(), 2);
}

#[test]
fn duplicated_traceparent_is_ignored() {
    let cx = Propagator::default().extract(&headers(&[
        ("traceparent", TP.as_bytes()),
        ("traceparent", TP.as_bytes()),
    ]));
    assert!(!cx.span().span_context().is_valid());
    assert!(cx.get::<::sentry::TracePropagationContext>().is_none());
}

#[test]
fn invalid_traceparent_falls_through_to_next_format() {
    let cx = Propagator::default().extract(&headers(&[
        (
            "traceparent",
            b"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        ),
        ("uber-trace-id", b"a3ce929d0e0e4736:f067aa0ba902b7:0:1"),
    ]));
    assert_eq!(
        remote(&cx),
        (
            "0000000000000000a3ce929d0e0e4736".into(),
            SPAN.into(),
            true,
            true
        )
    );
}

#[test]
fn non_utf8_and_hostile_values_give_empty_context() {
    let cx = all().extract(&headers(&[
        (
            "traceparent",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-\xff1",
        ),
        ("uber-trace-id", b"\xfe:1:0:1"),
        ("b3", b"\x80"),
        ("sentry-trace", "é".repeat(40).as_bytes()),
        ("baggage", b"k=\xff\xfe"),
    ]));
    assert!(!cx.span().span_context().is_valid());
    assert_eq!(cx.baggage().len(), 0);
    assert!(cx.get::<SentryDsc>().is_none());
}

#[test]
fn default_precedence_when_formats_disagree() {
    let t = |c: char| c.to_string().repeat(32);
    let s = |c: char| c.to_string().repeat(16);
    let h = headers(&[
        (
            "traceparent",
            format!("00-{}-{}-01", t('a'), s('a')).as_bytes(),
        ),
        (
            "uber-trace-id",
            format!("{}:{}:0:1", t('b'), s('b')).as_bytes(),
        ),
        ("b3", format!("{}-{}-1", t('c'), s('c')).as_bytes()),
        (
            "sentry-trace",
            format!("{}-{}-1", t('d'), s('d')).as_bytes(),
        ),
    ]);
    let p = all();
    assert_eq!(remote(&p.extract(&h)).0, t('a'));
    let p = all().with_precedence(&[Format::Sentry, Format::TraceContext]);
    assert_eq!(remote(&p.extract(&h)).0, t('d'));
    let p = all().with_precedence(&[Format::B3Multi]);
    assert_eq!(remote(&p.extract(&h)).0, t('c'));
    let p = Propagator::from_names("jaeger,sentry").unwrap();
    assert_eq!(
        remote(&p.extract(&h)).0,
        t('b'),
        "unconfigured formats are not read"
    );
    let p = Propagator::from_names("sentry").unwrap();
    assert_eq!(remote(&p.extract(&h)).0, t('d'));
}

#[test]
fn sentry_only_request_continues_the_trace() {
    let trace = "771a43a4192642f0b136d5159a501700";
    let dsc = format!(
        "sentry-trace_id={trace},sentry-public_key=49d0f7386ad645858ae85020e393bef3,\
         sentry-sample_rate=0.01337,sentry-sampled=true,sentry-sample_rand=0.0042"
    );
    let cx = Propagator::default().extract(&headers(&[
        (
            "sentry-trace",
            format!("{trace}-b7ad6b7169203331-1").as_bytes(),
        ),
        ("baggage", format!("{dsc},userId=alice").as_bytes()),
    ]));
    assert_eq!(
        remote(&cx),
        (trace.into(), "b7ad6b7169203331".into(), true, true)
    );
    assert_eq!(
        sentry_ctx(&cx).unwrap(),
        format!("{trace}-b7ad6b7169203331-1")
    );
    assert_eq!(cx.get::<SentryDsc>().unwrap().as_str(), dsc);
    assert_eq!(
        cx.baggage().get("userId"),
        Some(&StringValue::from("alice"))
    );
    assert!(cx.baggage().get("sentry-trace_id").is_none());
}

#[test]
fn sentry_without_sampled_flag_is_deferred() {
    let trace = "771a43a4192642f0b136d5159a501700";
    let cx = Propagator::default().extract(&headers(&[(
        "sentry-trace",
        format!("{trace}-b7ad6b7169203331").as_bytes(),
    )]));
    // Sampled in OpenTelemetry (so the trace reaches Jaeger), undecided for Sentry.
    assert_eq!(
        remote(&cx),
        (trace.into(), "b7ad6b7169203331".into(), true, true)
    );
    assert_eq!(
        sentry_ctx(&cx).unwrap(),
        format!("{trace}-b7ad6b7169203331")
    );
    let cx = Propagator::default().extract(&headers(&[(
        "sentry-trace",
        format!("{trace}-b7ad6b7169203331-0").as_bytes(),
    )]));
    assert!(!remote(&cx).2);
    assert_eq!(
        sentry_ctx(&cx).unwrap(),
        format!("{trace}-b7ad6b7169203331-0")
    );
}

#[test]
fn dsc_of_another_trace_is_dropped() {
    let cx = Propagator::default().extract(&headers(&[
        ("traceparent", TP.as_bytes()),
        (
            "baggage",
            b"sentry-trace_id=771a43a4192642f0b136d5159a501700,k=v",
        ),
    ]));
    assert!(cx.get::<SentryDsc>().is_none());
    assert_eq!(cx.baggage().get("k"), Some(&StringValue::from("v")));
}

#[test]
fn jaeger_uberctx_goes_into_baggage_w3c_wins() {
    let cx = Propagator::default().extract(&headers(&[
        (
            "uber-trace-id",
            b"4bf92f3577b34da6a3ce929d0e0e4736%3A00f067aa0ba902b7%3A0%3A1",
        ),
        ("uberctx-user", b"alice%20smith"),
        ("uberctx-k", b"jaeger"),
        ("baggage", b"k=w3c"),
    ]));
    assert_eq!(remote(&cx), (TRACE.into(), SPAN.into(), true, true));
    assert_eq!(
        cx.baggage().get("user"),
        Some(&StringValue::from("alice smith"))
    );
    assert_eq!(cx.baggage().get("k"), Some(&StringValue::from("w3c")));
}

#[test]
fn b3_multi_extract_and_inject() {
    let p = Propagator::from_names("b3multi").unwrap();
    let cx = p.extract(&headers(&[
        ("X-B3-TraceId", TRACE.as_bytes()),
        ("X-B3-SpanId", SPAN.as_bytes()),
        ("X-B3-Sampled", b"0"),
    ]));
    assert_eq!(remote(&cx), (TRACE.into(), SPAN.into(), false, true));
    let mut out = HeaderMap::new();
    p.inject(&cx, &mut out);
    assert_eq!(out["x-b3-traceid"], TRACE);
    assert_eq!(out["x-b3-spanid"], SPAN);
    assert_eq!(out["x-b3-sampled"], "0");
    assert!(out.get("b3").is_none());
    // A single b3 is read by a b3multi propagator too.
    let cx = p.extract(&headers(&[("b3", format!("{TRACE}-{SPAN}-1").as_bytes())]));
    assert_eq!(remote(&cx), (TRACE.into(), SPAN.into(), true, true));
}

fn span_cx(trace: &str, span: &str, sampled: bool) -> Context {
    Context::new().with_remote_span_context(SpanContext::new(
        TraceId::from_hex(trace).unwrap(),
        SpanId::from_hex(span).unwrap(),
        TraceFlags::default().with_sampled(sampled),
        false,
        TraceState::NONE,
    ))
}

#[test]
fn inject_all_formats_with_own_dsc() {
    let p = all().with_dsc(DscConfig {
        public_key: Some("abc123".into()),
        environment: Some("prod east".into()),
        release: Some("svc@1.2.3".into()),
        sample_rate: Some(0.25),
    });
    let cx = span_cx(TRACE, SPAN, true);
    let mut out = HeaderMap::new();
    p.inject(&cx, &mut out);
    assert_eq!(out["traceparent"], TP);
    assert!(out.get("tracestate").is_none());
    assert_eq!(out["uber-trace-id"], format!("{TRACE}:{SPAN}:0:1"));
    assert_eq!(out["b3"], format!("{TRACE}-{SPAN}-1"));
    assert_eq!(out["x-b3-traceid"], TRACE);
    assert_eq!(out["x-b3-sampled"], "1");
    assert_eq!(out["sentry-trace"], format!("{TRACE}-{SPAN}-1"));
    let mut rand = Vec::new();
    sentry::sample_rand(TraceId::from_hex(TRACE).unwrap(), &mut rand);
    assert_eq!(
        out["baggage"],
        format!(
            "sentry-trace_id={TRACE},sentry-sampled=true,sentry-sample_rand={},\
             sentry-public_key=abc123,sentry-sample_rate=0.25,sentry-environment=prod%20east,\
             sentry-release=svc%401.2.3",
            String::from_utf8(rand).unwrap()
        )
    );
    assert_eq!(out.get_all("baggage").iter().count(), 1);
}

#[test]
fn inject_every_header_at_once() {
    let cx = Context::new()
        .with_remote_span_context(SpanContext::new(
            TraceId::from_hex(TRACE).unwrap(),
            SpanId::from_hex(SPAN).unwrap(),
            TraceFlags::SAMPLED,
            false,
            TraceState::from_key_value([("a", "1")]).unwrap(),
        ))
        .with_baggage([opentelemetry::KeyValue::new("k", "v")]);
    let mut out = HeaderMap::new();
    all().inject(&cx, &mut out);
    let mut names: Vec<&str> = out.keys().map(HeaderName::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "b3",
            "baggage",
            "sentry-trace",
            "traceparent",
            "tracestate",
            "uber-trace-id",
            "x-b3-sampled",
            "x-b3-spanid",
            "x-b3-traceid"
        ]
    );
    assert_eq!(out["tracestate"], "a=1");
    assert!(out["baggage"].to_str().unwrap().ends_with(",k=v"));
}

#[test]
fn inject_forwards_dsc_unchanged_and_merges_baggage() {
    let trace = "771a43a4192642f0b136d5159a501700";
    let dsc = format!("sentry-trace_id={trace},sentry-sample_rate=0.5,sentry-sampled=true");
    let p = Propagator::default().with_dsc(DscConfig {
        public_key: Some("ours".into()),
        ..DscConfig::default()
    });
    let incoming = p.extract(&headers(&[
        (
            "sentry-trace",
            format!("{trace}-b7ad6b7169203331-1").as_bytes(),
        ),
        ("baggage", format!("{dsc},third=party%2C1;prop").as_bytes()),
    ]));
    // A local child span of the remote parent keeps the context values.
    let cx = incoming.with_remote_span_context(SpanContext::new(
        TraceId::from_hex(trace).unwrap(),
        SpanId::from_hex(SPAN).unwrap(),
        TraceFlags::SAMPLED,
        false,
        TraceState::NONE,
    ));
    let mut out = HeaderMap::new();
    p.inject(&cx, &mut out);
    assert_eq!(out["baggage"], format!("{dsc},third=party%2C1;prop"));
    assert_eq!(out["sentry-trace"], format!("{trace}-{SPAN}-1"));
    assert_eq!(out.get_all("baggage").iter().count(), 1);
}

#[test]
fn inject_replaces_existing_headers_and_skips_invalid_span() {
    let p = Propagator::default();
    let mut out = headers(&[("traceparent", b"stale"), ("baggage", b"old=1")]);
    p.inject(&span_cx(TRACE, SPAN, false), &mut out);
    assert_eq!(out.get_all("traceparent").iter().count(), 1);
    assert_eq!(
        out["traceparent"],
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
    );
    assert!(out["baggage"]
        .to_str()
        .unwrap()
        .starts_with("sentry-trace_id="));
    assert!(out["baggage"]
        .to_str()
        .unwrap()
        .contains("sentry-sampled=false"));

    let mut out = HeaderMap::new();
    p.inject(&Context::new(), &mut out);
    assert!(out.is_empty(), "{out:?}");
    // Baggage alone still propagates without a span.
    let cx = Context::new().with_baggage([opentelemetry::KeyValue::new("k", "v")]);
    p.inject(&cx, &mut out);
    assert_eq!(out["baggage"], "k=v");
    assert_eq!(out.len(), 1);
}

#[test]
fn uberctx_written_only_without_baggage_format() {
    let cx = span_cx(TRACE, SPAN, true).with_baggage([opentelemetry::KeyValue::new("User", "a b")]);
    let mut out = HeaderMap::new();
    Propagator::from_names("jaeger")
        .unwrap()
        .inject(&cx, &mut out);
    assert_eq!(out["uberctx-user"], "a%20b");
    assert!(out.get("baggage").is_none());
    let mut out = HeaderMap::new();
    Propagator::from_names("jaeger,baggage")
        .unwrap()
        .inject(&cx, &mut out);
    assert!(out.get("uberctx-user").is_none());
    assert_eq!(out["baggage"], "User=a%20b");
}

#[test]
fn a_forwarded_dsc_at_the_size_limit_stays_within_it() {
    // 100 Sentry members of 91 bytes: the member bytes pass 8192 after 90 of them, and the
    // commas between those 90 must count too, or the forwarded header is 8279 bytes.
    let members: Vec<String> = (0..100)
        .map(|i| format!("sentry-k{i:02}={}", "v".repeat(80)))
        .collect();
    let value = members.join(",");
    let cx = Propagator::default().extract(&headers(&[
        ("sentry-trace", format!("{TRACE}-{SPAN}-1").as_bytes()),
        ("baggage", value.as_bytes()),
    ]));
    let dsc = cx.get::<SentryDsc>().unwrap();
    assert!(
        dsc.as_str().len() <= MAX_TOTAL_BYTES,
        "{}",
        dsc.as_str().len()
    );
    assert_eq!(
        dsc.iter().count(),
        89,
        "89 members and 88 commas fit in 8192 bytes"
    );
    let mut out = HeaderMap::new();
    Propagator::default().inject(&cx, &mut out);
    assert!(
        out["baggage"].len() <= MAX_TOTAL_BYTES,
        "{}",
        out["baggage"].len()
    );
}

#[test]
fn baggage_limits_on_inject_keep_dsc() {
    let mut bag = Baggage::new();
    for i in 0..3 {
        bag.insert_with_metadata(format!("k{i}"), "x".repeat(2700), "");
    }
    let cx = span_cx(TRACE, SPAN, true).with_baggage(bag);
    let mut out = HeaderMap::new();
    Propagator::default().inject(&cx, &mut out);
    let b = out["baggage"].to_str().unwrap();
    assert!(b.starts_with("sentry-trace_id="));
    assert!(b.len() <= MAX_TOTAL_BYTES, "{}", b.len());
    assert_eq!(b.matches("=xxxx").count(), 2, "third entry does not fit");
}

#[test]
fn traceresponse_value() {
    let cx = span_cx(TRACE, SPAN, true);
    assert_eq!(traceresponse(&cx).unwrap(), TP);
    assert_eq!(traceresponse(&Context::new()), None);
    // The random mark of the trace shows, as in `traceparent`.
    let marked = cx.with_value(RandomTraceId(TraceId::from_hex(TRACE).unwrap()));
    assert_eq!(traceresponse(&marked).unwrap(), TP.replace("-01", "-03"));
    // A mark of another trace does not.
    let other = span_cx(TRACE, SPAN, false).with_value(RandomTraceId(
        TraceId::from_hex(&TRACE.replace('4', "5")).unwrap(),
    ));
    assert_eq!(traceresponse(&other).unwrap(), TP.replace("-01", "-00"));
}

/// Tracestate keys of the Level 2 grammar that OpenTelemetry's `TraceState` refuses are
/// forwarded with the rest of the list; duplicates are inherited.
#[test]
fn level2_tracestate_is_forwarded_as_it_came() {
    let p = Propagator::from_names("tracecontext").unwrap();
    for (incoming, on_span, forwarded) in [
        (&["foo@=1,bar=2"][..], "foo@=1,bar=2", "foo@=1,bar=2"),
        (&["foo@@bar=1,bar=2"], "bar=2", "foo@@bar=1,bar=2"),
        (&["foo=1,foo=2"], "foo=1,foo=2", "foo=1,foo=2"),
        (
            &["foo=1,bar=2", "foo=3"],
            "foo=1,bar=2,foo=3",
            "foo=1,bar=2,foo=3",
        ),
        (&["a@b=1", " , foo@@x=2 "], "a@b=1", "a@b=1,foo@@x=2"),
        (&["foo@@bar=1,foo@@bar=2"], "", "foo@@bar=1,foo@@bar=2"),
    ] {
        let mut h = headers(&[("traceparent", TP.as_bytes())]);
        for v in incoming {
            h.append("tracestate", HeaderValue::from_str(v).unwrap());
        }
        let cx = p.extract(&h);
        assert_eq!(
            cx.span().span_context().trace_state().header(),
            on_span,
            "{incoming:?}"
        );
        let mut out = HeaderMap::new();
        p.inject(&cx, &mut out);
        assert_eq!(out["traceparent"], TP);
        assert_eq!(out["tracestate"], forwarded, "{incoming:?}");
    }
    // Grammar breaks drop the tracestate, not the traceparent.
    let z256 = format!("{}=1,bar=2", "z".repeat(256));
    let z257 = format!("{}=1,bar=2", "z".repeat(257));
    for bad in ["@foo=1,bar=2", z257.as_str()] {
        let cx = p.extract(&headers(&[
            ("traceparent", TP.as_bytes()),
            ("tracestate", bad.as_bytes()),
        ]));
        assert_eq!(remote(&cx), (TRACE.into(), SPAN.into(), true, true));
        let mut out = HeaderMap::new();
        p.inject(&cx, &mut out);
        assert_eq!(out["traceparent"], TP);
        assert!(out.get("tracestate").is_none(), "{bad}");
    }
    let cx = p.extract(&headers(&[
        ("traceparent", TP.as_bytes()),
        ("tracestate", z256.as_bytes()),
    ]));
    let mut out = HeaderMap::new();
    p.inject(&cx, &mut out);
    assert_eq!(out["tracestate"], z256.as_str());
}

/// Once something changes the span's tracestate, that is what is written.
#[test]
fn a_changed_tracestate_wins_over_the_kept_list() {
    let p = Propagator::from_names("tracecontext").unwrap();
    let cx = p.extract(&headers(&[
        ("traceparent", TP.as_bytes()),
        ("tracestate", b"foo@@bar=1,bar=2"),
    ]));
    let span = cx.span();
    let sc = span.span_context();
    let changed = sc.trace_state().insert("ours", "x").unwrap();
    let child = cx.with_remote_span_context(SpanContext::new(
        sc.trace_id(),
        SpanId::from_hex("1111111111111111").unwrap(),
        sc.trace_flags(),
        false,
        changed,
    ));
    let mut out = HeaderMap::new();
    p.inject(&child, &mut out);
    assert_eq!(out["tracestate"], "ours=x,bar=2");
    // Unchanged, on a child span of the same trace: the kept list.
    let same = cx.with_remote_span_context(SpanContext::new(
        sc.trace_id(),
        SpanId::from_hex("1111111111111111").unwrap(),
        sc.trace_flags(),
        false,
        sc.trace_state().clone(),
    ));
    let mut out = HeaderMap::new();
    p.inject(&same, &mut out);
    assert_eq!(out["tracestate"], "foo@@bar=1,bar=2");
}

/// Spans started by the SDK under `parent` with `sampler`, the way the layers start theirs.
fn start(parent: &Context, sampler: opentelemetry_sdk::trace::Sampler) -> Context {
    use opentelemetry::trace::{Tracer as _, TracerProvider as _};
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_sampler(sampler)
        .build();
    let span = provider
        .tracer("t")
        .build_with_context(opentelemetry::trace::SpanBuilder::from_name("s"), parent);
    keep_random_flag(parent, parent.with_span(span))
}

fn flags_out(cx: &Context) -> String {
    let mut out = HeaderMap::new();
    Propagator::from_names("tracecontext")
        .unwrap()
        .inject(cx, &mut out);
    let tp = out["traceparent"].to_str().unwrap();
    assert_eq!(traceresponse(cx).unwrap(), tp);
    tp[53..].to_owned()
}

/// Level 2 random flag: kept from a parent that has it, sampled or not; never invented for a
/// continued trace; set on traces we start (the SDK's ids are random).
#[test]
fn random_flag_survives_sampling_decisions() {
    use opentelemetry_sdk::trace::Sampler;
    let parent_based = || Sampler::ParentBased(Box::new(Sampler::AlwaysOn));
    let p = Propagator::from_names("tracecontext").unwrap();
    for (incoming, sampler, want) in [
        ("02", parent_based(), "02"),
        ("03", parent_based(), "03"),
        ("00", parent_based(), "00"),
        ("01", parent_based(), "01"),
        ("03", Sampler::AlwaysOff, "02"),
        ("01", Sampler::AlwaysOff, "00"),
        ("02", Sampler::AlwaysOn, "03"),
    ] {
        let tp = TP.replace("-01", &format!("-{incoming}"));
        let remote = p.extract(&headers(&[("traceparent", tp.as_bytes())]));
        let server = start(&remote, sampler.clone());
        assert_eq!(flags_out(&server), want, "{incoming} {sampler:?}");
        // A span started inside (an internal or client span) keeps it too.
        let child = start(&server, sampler.clone());
        assert_eq!(flags_out(&child), want, "child of {incoming} {sampler:?}");
        assert_eq!(
            child.span().span_context().trace_id(),
            TraceId::from_hex(TRACE).unwrap()
        );
    }
    // A trace we start: random, sampled or not, and its children too.
    for (sampler, want) in [(parent_based(), "03"), (Sampler::AlwaysOff, "02")] {
        let root = start(&Context::new(), sampler.clone());
        assert_eq!(flags_out(&root), want);
        assert_eq!(flags_out(&start(&root, sampler.clone())), want);
    }
    // Continued from Jaeger (a trace id we did not see generated): no random flag.
    let jaeger = Propagator::default().extract(&headers(&[(
        "uber-trace-id",
        format!("{TRACE}:{SPAN}:0:1").as_bytes(),
    )]));
    assert_eq!(flags_out(&start(&jaeger, parent_based())), "01");
}

/// The W3C limit of 180 baggage entries goes through extraction and injection whole, though
/// OpenTelemetry's `Baggage` holds 64.
#[test]
fn baggage_of_180_entries_is_forwarded_whole() {
    let members: Vec<String> = (0..MAX_ENTRIES).map(|i| format!("k{i:03}=v{i}")).collect();
    let value = members.join(",");
    let p = Propagator::from_names("tracecontext,baggage").unwrap();
    let cx = p.extract(&headers(&[
        ("traceparent", TP.as_bytes()),
        ("baggage", value.as_bytes()),
    ]));
    assert_eq!(cx.baggage().len(), 64);
    let mut out = HeaderMap::new();
    p.inject(&cx, &mut out);
    let mut got: Vec<&str> = out["baggage"].to_str().unwrap().split(',').collect();
    got.sort();
    assert_eq!(got, members.iter().map(String::as_str).collect::<Vec<_>>());
    // 181: the last is beyond the limit.
    let more = format!("{value},k180=v180");
    let cx = p.extract(&headers(&[("baggage", more.as_bytes())]));
    let mut out = HeaderMap::new();
    p.inject(&cx, &mut out);
    let b = out["baggage"].to_str().unwrap();
    assert_eq!(b.split(',').count(), MAX_ENTRIES);
    assert!(!b.contains("k180"));
}

/// `jaeger-debug-id` without a trace context: kept on the context for the root span and the
/// sampler; with a parent, or with the jaeger format off, ignored.
#[test]
fn jaeger_debug_id_marks_a_new_trace() {
    use opentelemetry_sdk::trace::{Sampler, SamplingDecision, ShouldSample};
    let id = b"  my-debug id 42 ";
    let cx = Propagator::default().extract(&headers(&[("jaeger-debug-id", id)]));
    assert!(!cx.span().span_context().is_valid());
    assert_eq!(
        jaeger_debug_id(&cx).map(|v| v.to_string()).as_deref(),
        Some("my-debug id 42")
    );
    let sampler = DebugSampler(Sampler::AlwaysOff);
    let decide = |cx: &Context| {
        sampler
            .should_sample(
                Some(cx),
                TraceId::from_hex(TRACE).unwrap(),
                "s",
                &opentelemetry::trace::SpanKind::Server,
                &[],
                &[],
            )
            .decision
    };
    assert_eq!(decide(&cx), SamplingDecision::RecordAndSample);
    assert_eq!(decide(&Context::new()), SamplingDecision::Drop);
    // Spans started under the debug root are sampled as well.
    let root = start(&cx, Sampler::ParentBased(Box::new(Sampler::AlwaysOff)));
    assert!(
        !root.span().span_context().is_sampled(),
        "plain SDK sampler"
    );
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_sampler(DebugSampler(Sampler::AlwaysOff))
        .build();
    use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
    let span = provider
        .tracer("t")
        .build_with_context(opentelemetry::trace::SpanBuilder::from_name("s"), &cx);
    assert!(span.span_context().is_sampled());

    let with_parent = Propagator::default().extract(&headers(&[
        ("jaeger-debug-id", id),
        ("traceparent", TP.as_bytes()),
    ]));
    assert!(jaeger_debug_id(&with_parent).is_none());
    let off = Propagator::from_names("tracecontext,baggage")
        .unwrap()
        .extract(&headers(&[("jaeger-debug-id", id)]));
    assert!(jaeger_debug_id(&off).is_none());
    for bad in [&b""[..], b"   ", b"a\xe2\x82b", &[b'x'; MAX_DEBUG_ID + 1]] {
        let cx = Propagator::default().extract(&headers(&[("jaeger-debug-id", bad)]));
        assert!(jaeger_debug_id(&cx).is_none(), "{bad:?}");
    }
    let max = [b'x'; MAX_DEBUG_ID];
    let cx = Propagator::default().extract(&headers(&[("jaeger-debug-id", &max)]));
    assert!(jaeger_debug_id(&cx).is_some());
}

#[test]
fn from_names_parsing() {
    let p = Propagator::from_names(" tracecontext , B3Multi,sentry ").unwrap();
    assert_eq!(
        p.formats().collect::<Vec<_>>(),
        [Format::TraceContext, Format::B3Multi, Format::Sentry]
    );
    assert_eq!(Propagator::from_names("none").unwrap().formats().count(), 0);
    assert_eq!(
        Propagator::from_names("")
            .unwrap()
            .formats()
            .collect::<Vec<_>>(),
        [
            Format::TraceContext,
            Format::Baggage,
            Format::Jaeger,
            Format::Sentry
        ]
    );
    let err = Propagator::from_names("tracecontext,xray").unwrap_err();
    assert_eq!(err.var, "OTEL_PROPAGATORS");
    assert!(err.message.contains("\"xray\""), "{}", err.message);
    assert!(err.message.contains("b3multi"), "{}", err.message);
    let none = Propagator::from_names("none").unwrap();
    let mut out = HeaderMap::new();
    none.inject(&span_cx(TRACE, SPAN, true), &mut out);
    assert!(out.is_empty());
    assert!(!none
        .extract(&headers(&[("traceparent", TP.as_bytes())]))
        .span()
        .span_context()
        .is_valid());
}

#[test]
fn text_map_propagator_interface() {
    use std::collections::HashMap;
    let p = Propagator::default();
    let mut carrier: HashMap<String, String> = HashMap::new();
    TextMapPropagator::inject_context(&p, &span_cx(TRACE, SPAN, true), &mut carrier);
    assert_eq!(carrier["traceparent"], TP);
    assert_eq!(carrier["uber-trace-id"], format!("{TRACE}:{SPAN}:0:1"));
    carrier.insert("uberctx-x".into(), "1".into());
    let cx = TextMapPropagator::extract(&p, &carrier);
    assert_eq!(remote(&cx), (TRACE.into(), SPAN.into(), true, true));
    assert_eq!(cx.baggage().get("x"), Some(&StringValue::from("1")));
    let fields: Vec<&str> = p.fields().collect();
    assert_eq!(
        fields,
        [
            "traceparent",
            "tracestate",
            "baggage",
            "uber-trace-id",
            "sentry-trace"
        ]
    );
}

mod fuzz {
    //! Arbitrary and mutated header bytes: never a panic, and the result is either an empty
    //! context or a valid remote one that survives a round trip through our own injection.

    use super::*;
    use proptest::prelude::*;

    const NAMES: [&str; 11] = [
        "traceparent",
        "tracestate",
        "baggage",
        "uber-trace-id",
        "uberctx-k",
        "b3",
        "x-b3-traceid",
        "x-b3-spanid",
        "x-b3-sampled",
        "x-b3-flags",
        "sentry-trace",
    ];

    const SEEDS: [&str; 6] = [
        TP,
        "4bf92f3577b34da6a3ce929d0e0e4736%3A00f067aa0ba902b7%3A0%3A1",
        "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1-b7ad6b7169203331",
        "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        "sentry-trace_id=4bf92f3577b34da6a3ce929d0e0e4736,k=v%20w;p,x=1",
        "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7",
    ];

    /// Bytes a `HeaderValue` can hold: visible ASCII, space, tab and obs-text.
    fn value_bytes() -> impl Strategy<Value = Vec<u8>> {
        let byte = prop_oneof![
            4 => proptest::sample::select(b"0123456789abcdefABCDEF-:%,;= \t".to_vec()),
            1 => 0x20u8..=0x7e,
            1 => 0x80u8..=0xff,
        ];
        let random = proptest::collection::vec(byte.clone(), 0..120);
        let mutated = (
            proptest::sample::select(SEEDS.to_vec()),
            proptest::collection::vec((any::<proptest::sample::Index>(), byte), 0..4),
        )
            .prop_map(|(seed, edits)| {
                let mut v = seed.as_bytes().to_vec();
                for (at, b) in edits {
                    let i = at.index(v.len());
                    v[i] = b;
                }
                v
            });
        prop_oneof![random, mutated]
    }

    fn check(headers: &HeaderMap) {
        let p = all();
        let cx = p.extract(headers);
        let span = cx.span();
        let sc = span.span_context();
        if sc.is_valid() {
            assert!(sc.is_remote());
            assert_ne!(sc.trace_id(), TraceId::INVALID);
            assert_ne!(sc.span_id(), SpanId::INVALID);
            let mut out = HeaderMap::new();
            p.inject(&cx, &mut out);
            let again = p.extract(&out);
            assert_eq!(again.span().span_context().trace_id(), sc.trace_id());
            assert_eq!(again.span().span_context().span_id(), sc.span_id());
            assert_eq!(again.span().span_context().is_sampled(), sc.is_sampled());
        } else {
            assert!(cx.get::<::sentry::TracePropagationContext>().is_none());
        }
        if let Some(b) = {
            let mut out = HeaderMap::new();
            p.inject(&cx, &mut out);
            out.get("baggage").cloned()
        } {
            assert!(
                b.len() <= MAX_TOTAL_BYTES + 1024,
                "own DSC + limited W3C entries"
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000),
            ..ProptestConfig::default()
        })]

        #[test]
        fn any_single_header(name in proptest::sample::select(NAMES.to_vec()), value in value_bytes()) {
            if let Ok(value) = HeaderValue::from_bytes(&value) {
                let mut h = HeaderMap::new();
                h.insert(HeaderName::from_static(name), value);
                check(&h);
            }
        }

        #[test]
        fn any_header_set(pairs in proptest::collection::vec(
            (proptest::sample::select(NAMES.to_vec()), value_bytes()), 0..8)
        ) {
            let mut h = HeaderMap::new();
            for (name, value) in pairs {
                if let Ok(value) = HeaderValue::from_bytes(&value) {
                    h.append(HeaderName::from_static(name), value);
                }
            }
            check(&h);
        }
    }

    /// Everything extraction puts on a context, as text.
    fn summary(cx: &Context) -> String {
        let span = cx.span();
        let sc = span.span_context();
        let mut bag: Vec<String> = cx
            .baggage()
            .iter()
            .map(|(k, (v, m))| format!("{k}={v:?};{m}"))
            .collect();
        bag.sort();
        format!(
            "{:?} {:?} {:?} {} {:?} | {bag:?} | {:?} | {:?} | {:?} | {:?} | {:?}",
            sc.trace_id(),
            sc.span_id(),
            sc.trace_flags(),
            sc.is_remote(),
            sc.trace_state().header(),
            cx.get::<SentryDsc>(),
            sentry_ctx(cx),
            cx.get::<baggage::Overflow>().map(|o| o.0.clone()),
            cx.get::<FullTraceState>().map(|f| &f.header),
            jaeger_debug_id(cx),
        )
    }

    /// A [`HeaderMap`] read through the [`Extractor`] interface: every lookup by name, the
    /// straightforward reading the one-pass [`MapSource`] must agree with.
    struct ByName<'h>(&'h HeaderMap);

    impl Extractor for ByName<'_> {
        fn get(&self, key: &str) -> Option<&str> {
            self.0.get(key).and_then(|v| v.to_str().ok())
        }

        fn keys(&self) -> Vec<&str> {
            self.0.keys().map(HeaderName::as_str).collect()
        }

        fn get_all(&self, key: &str) -> Option<Vec<&str>> {
            let all: Vec<&str> = self
                .0
                .get_all(key)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            (!all.is_empty()).then_some(all)
        }
    }

    /// Header names of every field, near misses of them, and others.
    const ANY_NAMES: [&str; 21] = [
        "traceparent",
        "tracestate",
        "baggage",
        "uber-trace-id",
        "uberctx-k",
        "uberctx-other",
        "b3",
        "x-b3-traceid",
        "x-b3-spanid",
        "x-b3-sampled",
        "x-b3-flags",
        "sentry-trace",
        "jaeger-debug-id",
        "traceparentx",
        "b",
        "uber-trace",
        "x-b3-other",
        "sentry-tracestate",
        "jaeger-debug",
        "host",
        "user-agent",
    ];

    /// Well-formed values for each name (trace ids differ between formats, so precedence
    /// shows), so the formats that need several headers (B3 multi, `X-B3-Flags`, a debug id
    /// without a trace context) are met often.
    fn good_values(name: &str) -> &'static [&'static str] {
        match name {
            "traceparent" => &[
                TP,
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-02",
            ],
            "tracestate" => &["congo=t61rcWkgMzE,rojo=00f067aa0ba902b7", "a@b@c=1,k=v"],
            "baggage" => &[
                "sentry-trace_id=4bf92f3577b34da6a3ce929d0e0e4736,k=v%20w;p,x=1",
                "sentry-sample_rate=1,sentry-trace_id=771a43a4192642f0b136d5159a501700,u=2",
                "k=1,sentry-sampled=true",
            ],
            "uber-trace-id" => &[
                "6e0c63257de34c92bf9efcd03927272e:00f067aa0ba902b7:0:1",
                "6e0c63257de34c92bf9efcd03927272e%3A00f067aa0ba902b7%3A0%3A0",
            ],
            "uberctx-k" | "uberctx-other" => &["v%20w", "1"],
            "b3" => &[
                "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90",
                "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1",
                "d",
            ],
            "x-b3-traceid" => &["463ac35c9f6413ad48485a3953bb6124", "463ac35c9f6413ad"],
            "x-b3-spanid" => &["a2fb4a1d1a96d312"],
            "x-b3-sampled" => &["0", "1"],
            "x-b3-flags" => &["1"],
            "sentry-trace" => &[
                "771a43a4192642f0b136d5159a501700-b7ad6b7169203331-1",
                "771a43a4192642f0b136d5159a501700-b7ad6b7169203331",
            ],
            "jaeger-debug-id" => &["dbg-1"],
            _ => &["1"],
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000),
            ..ProptestConfig::default()
        })]

        /// One pass over the map ([`MapSource`]) finds what looking each header up by name
        /// finds: same context, for every format on, any precedence, repeated headers included.
        #[test]
        fn one_pass_agrees_with_lookups_by_name(
            pairs in proptest::collection::vec(
                (
                    proptest::sample::select(ANY_NAMES.to_vec()),
                    any::<proptest::sample::Index>(),
                    proptest::bool::weighted(0.75),
                    value_bytes(),
                ),
                0..10,
            ),
            first in proptest::sample::select(Format::ALL.to_vec()),
        ) {
            let mut h = HeaderMap::new();
            for (name, pick, good, value) in pairs {
                let value = if good {
                    let values = good_values(name);
                    values[pick.index(values.len())].as_bytes().to_vec()
                } else {
                    value
                };
                // `Extractor::get` gives one value per name, so a repeated `uberctx-*` header
                // is read whole only from a map (each value tried, as before the one pass).
                if name.starts_with(UBERCTX_PREFIX) && h.contains_key(name) {
                    continue;
                }
                // Visible ASCII only: the `Extractor` interface has strings.
                if let Ok(value) = HeaderValue::from_str(&String::from_utf8_lossy(&value)) {
                    if value.to_str().is_ok() {
                        h.append(HeaderName::from_static(name), value);
                    }
                }
            }
            let p = all().with_precedence(&[first]);
            let one_pass = p.extract(&h);
            let by_name = TextMapPropagator::extract(&p, &ByName(&h));
            prop_assert_eq!(summary(&one_pass), summary(&by_name));
        }
    }

    #[test]
    fn oversized_inputs_are_bounded() {
        let huge = "a".repeat(64 * 1024);
        let many_members = vec!["a=1"; 1000].join(",");
        let many_bag: Vec<String> = (0..10_000).map(|i| format!("k{i}=v")).collect();
        let h = headers(&[
            ("traceparent", huge.as_bytes()),
            ("tracestate", many_members.as_bytes()),
            ("baggage", many_bag.join(",").as_bytes()),
            ("uber-trace-id", huge.as_bytes()),
            ("b3", huge.as_bytes()),
            ("sentry-trace", huge.as_bytes()),
        ]);
        let cx = all().extract(&h);
        assert!(!cx.span().span_context().is_valid());
        assert_eq!(cx.baggage().len(), 64);
    }
}
