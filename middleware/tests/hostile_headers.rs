//! Fuzzing every header parser through the public extraction API, in-process.
//!
//! Why not cargo-fuzz: a nightly toolchain is on the machine, but neither `cargo-fuzz` nor
//! `libfuzzer-sys` is, and CI runs on a fresh machine from the project's own files. This file is
//! a small deterministic fuzzer instead (xorshift PRNG, a seed corpus of valid and near-valid
//! values for every format, generators and byte-level mutators), so the same code is the CI
//! smoke run (part of `cargo test`) and the documented long run (`scripts/fuzz.sh`, sized by
//! `FUZZ_ITERATIONS`, seeded by `FUZZ_SEED`; see docs/operations.md).
//!
//! Every input is a whole header map (1–6 headers drawn from every name the propagator reads,
//! repeated names included) extracted by a propagator with every format on, under two
//! precedences, through both entry points (`Propagator::extract` on an `http::HeaderMap` and
//! `TextMapPropagator::extract` on a `HashMap` extractor). The oracles, beyond "no panic":
//! - a remote parent, when one is found, is valid, remote, and its trace id and span id appear
//!   in the input (hex, any case; 64-bit ids zero-extended) — nothing is invented;
//! - a lone `traceparent` is accepted exactly when an independent spec-reading parser accepts it,
//!   with the same ids;
//! - baggage stays within OpenTelemetry's 64 entries and every key/value came from the input;
//! - injecting the extracted context and extracting again gives the same span context, and the
//!   `baggage` written is within [`MAX_TOTAL_BYTES`];
//! - bounded work: every header value the fuzzer builds is capped (a few KiB), and the
//!   oversized-input tests below assert that huge values are ignored outright.

use std::collections::HashMap;

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::baggage::BaggageExt;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanContext, TraceContextExt};
use opentelemetry::{Context, SpanId, TraceId};
use tracebridge::propagation::{Format, Propagator, MAX_ENTRIES, MAX_TOTAL_BYTES, MAX_TRACEPARENT};

/// xorshift64*: deterministic, no dependency, good enough to drive mutations.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const HEADERS: [&str; 14] = [
    "traceparent",
    "tracestate",
    "baggage",
    "uber-trace-id",
    "uberctx-tenant",
    "uberctx-user-id",
    "b3",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-sampled",
    "x-b3-flags",
    "sentry-trace",
    "jaeger-debug-id",
    "x-unrelated",
];

/// Valid and near-valid values for each header: the mutators start from these.
fn seeds(name: &str) -> &'static [&'static str] {
    match name {
        "traceparent" => &[
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03-future",
            "  00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-02\t",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        ],
        "tracestate" => &[
            "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7",
            "a@b=1,tenant@system=x, ,,c=2",
            "k=v=v,=",
            "foo=bar,foo=baz",
        ],
        "baggage" => &[
            "tenant=acme,user=42;ttl=3",
            "sentry-trace_id=4bf92f3577b34da6a3ce929d0e0e4736,sentry-sampled=true,sentry-public_key=abc",
            "key=%E2%9C%93,other=%ZZ,=x, k = v ;p=q",
            "sentry-release=1.0%2B1,sentry-environment=prod,k=v",
        ],
        "uber-trace-id" => &[
            "4bf92f3577b34da6a3ce929d0e0e4736:00f067aa0ba902b7:0:1",
            "a3ce929d0e0e4736:f067aa0ba902b7:0:3",
            "4bf92f3577b34da6%3Aa3ce929d0e0e4736",
            "4bf92f3577b34da6a3ce929d0e0e4736%3A00f067aa0ba902b7%3A0%3A1",
            "1:2:3:4:5",
        ],
        "uberctx-tenant" | "uberctx-user-id" => &["acme", "%E2%9C%93", "a b", "%"],
        "b3" => &[
            "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1-05e3ac9a4f6e3b90",
            "a3ce929d0e0e4736-00f067aa0ba902b7-d",
            "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "0",
            "1",
        ],
        "x-b3-traceid" => &["4bf92f3577b34da6a3ce929d0e0e4736", "a3ce929d0e0e4736"],
        "x-b3-spanid" => &["00f067aa0ba902b7", "0"],
        "x-b3-sampled" => &["1", "0", "true", "d"],
        "x-b3-flags" => &["1", "0"],
        "sentry-trace" => &[
            "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7",
            "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-2",
        ],
        "jaeger-debug-id" => &["some-debug-id"],
        _ => &["value"],
    }
}

/// Bytes that matter to the grammars: separators, hex edges, whitespace, percent, high bytes.
const INTERESTING: &[u8] = b"-:,;=%@ \t0fF9aAgGzZ\x7e\x80\xc3\xa9\xff";
/// Cap of one generated value: big enough to cross every per-format cap (512 bytes for
/// traceparent, 8 KiB for baggage), small enough to keep each input cheap.
const MAX_GENERATED: usize = 12 * 1024;

fn random_hex(rng: &mut Rng, len: usize, upper: bool) -> String {
    let digits: &[u8] = if upper {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    (0..len).map(|_| *rng.pick(digits) as char).collect()
}

/// A structurally plausible value for `name`, built from random parts.
fn generate(rng: &mut Rng, name: &str) -> Vec<u8> {
    let upper = rng.chance(8);
    let id32 = {
        let n = *rng.pick(&[32, 32, 32, 16, 31, 33, 0]);
        random_hex(rng, n, upper)
    };
    let id16 = {
        let n = *rng.pick(&[16, 16, 15, 17, 8, 0]);
        random_hex(rng, n, upper)
    };
    let s = match name {
        "traceparent" => {
            let version = random_hex(rng, 2, false);
            let flags = random_hex(rng, 2, false);
            let extra = if rng.chance(4) { "-xyz" } else { "" };
            format!("{version}-{id32}-{id16}-{flags}{extra}")
        }
        "tracestate" => {
            let n = rng.below(40);
            (0..n)
                .map(|i| {
                    if rng.chance(5) {
                        format!("t{i}@s{}={}", rng.below(99), random_hex(rng, 4, false))
                    } else {
                        format!("k{}={}", rng.below(50), {
                            let n = rng.below(20);
                            random_hex(rng, n, false)
                        })
                    }
                })
                .collect::<Vec<_>>()
                .join(*rng.pick(&[",", ", ", ",,", " ,\t"]))
        }
        "baggage" => {
            let n = rng.below(250);
            (0..n)
                .map(|i| {
                    let key = if rng.chance(6) {
                        format!(
                            "sentry-{}",
                            rng.pick(&["trace_id", "sampled", "release", "x"])
                        )
                    } else {
                        format!("k{i}")
                    };
                    let value = match rng.below(4) {
                        0 => {
                            let n = rng.below(64);
                            random_hex(rng, n, false)
                        }
                        1 => "%E2%9C%93%2C".to_owned(),
                        2 => "v;prop=1;flag".to_owned(),
                        _ => "x".repeat(rng.below(100)),
                    };
                    format!("{key}={value}")
                })
                .collect::<Vec<_>>()
                .join(",")
        }
        "uber-trace-id" => {
            let sep = *rng.pick(&[":", "%3A", "%3a", "-"]);
            let flags = rng.below(16);
            format!("{id32}{sep}{id16}{sep}0{sep}{flags}")
        }
        "b3" => {
            let sampled = *rng.pick(&["1", "0", "d", "", "true", "x"]);
            let parent = if rng.chance(2) {
                format!("-{}", random_hex(rng, 16, false))
            } else {
                String::new()
            };
            format!("{id32}-{id16}-{sampled}{parent}")
        }
        "x-b3-traceid" => id32,
        "x-b3-spanid" => id16,
        "sentry-trace" => {
            let sampled = *rng.pick(&["-1", "-0", "", "-", "-11"]);
            format!("{id32}-{id16}{sampled}")
        }
        _ => {
            let n = rng.below(40);
            random_hex(rng, n, false)
        }
    };
    s.into_bytes()
}

/// One byte-level mutation.
fn mutate(rng: &mut Rng, v: &mut Vec<u8>, donor: &[u8]) {
    match rng.below(9) {
        0 if !v.is_empty() => {
            let i = rng.below(v.len());
            v[i] ^= 1 << rng.below(8);
        }
        1 => {
            let i = rng.below(v.len() + 1);
            v.insert(i, *rng.pick(INTERESTING));
        }
        2 if !v.is_empty() => {
            let i = rng.below(v.len());
            v.remove(i);
        }
        3 if !v.is_empty() => {
            let i = rng.below(v.len());
            v[i] = *rng.pick(INTERESTING);
        }
        4 if !v.is_empty() => {
            // Duplicate a chunk in place (grows lists, repeats separators).
            let start = rng.below(v.len());
            let end = (start + 1 + rng.below(64)).min(v.len());
            let chunk = v[start..end].to_vec();
            let at = rng.below(v.len() + 1);
            v.splice(at..at, chunk);
        }
        5 => {
            // Splice with another header's value.
            let cut = rng.below(v.len() + 1);
            let from = rng.below(donor.len() + 1);
            v.truncate(cut);
            v.extend_from_slice(&donor[from..]);
        }
        6 => v.truncate(rng.below(v.len() + 1)),
        7 => {
            // Repeat the whole value: crosses the length caps.
            let times = 1 + rng.below(40);
            let copy = v.clone();
            for _ in 0..times {
                v.push(*rng.pick(b",-: "));
                v.extend_from_slice(&copy);
            }
        }
        _ => {
            let i = rng.below(v.len() + 1);
            let n = rng.below(8);
            let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            v.splice(i..i, bytes);
        }
    }
    v.truncate(MAX_GENERATED);
}

fn value_for(rng: &mut Rng, name: &str) -> Vec<u8> {
    let mut v = if rng.chance(3) {
        rng.pick(seeds(name)).as_bytes().to_vec()
    } else {
        generate(rng, name)
    };
    let donor_name = *rng.pick(&HEADERS);
    let donor = rng.pick(seeds(donor_name)).as_bytes().to_vec();
    let rounds = rng.below(6);
    for _ in 0..rounds {
        mutate(rng, &mut v, &donor);
    }
    v
}

/// A random header map; values `HeaderValue` refuses (control bytes) are made valid by
/// replacing those bytes, so the parsers see everything a server could hand them.
fn header_map(rng: &mut Rng) -> HeaderMap {
    let mut map = HeaderMap::new();
    let n = 1 + rng.below(6);
    for _ in 0..n {
        let name = *rng.pick(&HEADERS);
        let mut v = value_for(rng, name);
        for b in &mut v {
            if (*b < 0x20 && *b != b'\t') || *b == 0x7f {
                *b = b'?';
            }
        }
        let value = HeaderValue::from_bytes(&v).expect("control bytes replaced");
        map.append(HeaderName::from_static(name), value);
    }
    map
}

/// Whether `bytes` appear in the (lowercased) input as hex: in full, or without leading zeros
/// (Jaeger's variable-width ids; a 64-bit trace id is zero-extended to 128 bits).
fn appears(lower: &str, bytes: &[u8]) -> bool {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    if lower.contains(&hex) {
        return true;
    }
    let trimmed = hex.trim_start_matches('0');
    !trimmed.is_empty() && lower.contains(trimmed)
}

/// An independent reading of the W3C Trace Context `traceparent` grammar.
fn reference_traceparent(v: &[u8]) -> Option<(TraceId, SpanId)> {
    if v.len() > MAX_TRACEPARENT {
        return None;
    }
    // Lossy: a later version may carry any bytes after its fields; the fields are ASCII.
    let s = String::from_utf8_lossy(v);
    let s = s.trim_matches(|c| c == ' ' || c == '\t');
    let is_lhex = |p: &str| {
        p.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let parts: Vec<&str> = s.splitn(5, '-').collect();
    if parts.len() < 4 {
        return None;
    }
    let (version, trace, span, flags) = (parts[0], parts[1], parts[2], parts[3]);
    if version.len() != 2 || !is_lhex(version) || version == "ff" {
        return None;
    }
    if trace.len() != 32 || span.len() != 16 || flags.len() != 2 {
        return None;
    }
    if !is_lhex(trace) || !is_lhex(span) || !is_lhex(flags) {
        return None;
    }
    if version == "00" && parts.len() == 5 {
        return None;
    }
    let trace = TraceId::from_hex(trace).ok()?;
    let span = SpanId::from_hex(span).ok()?;
    (trace != TraceId::INVALID && span != SpanId::INVALID).then_some((trace, span))
}

fn remote(cx: &Context) -> Option<SpanContext> {
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid().then(|| sc.clone())
}

struct Stats {
    inputs: u64,
    with_parent: u64,
    with_baggage: u64,
    traceparent_checked: u64,
    bytes: u64,
}

/// Checks every oracle for one header map.
fn check(map: &HeaderMap, propagators: &[Propagator], stats: &mut Stats) {
    let text: String = map
        .iter()
        .map(|(n, v)| format!("{n}: {}\n", String::from_utf8_lossy(v.as_bytes())))
        .collect();
    let lower = text.to_ascii_lowercase();
    stats.inputs += 1;
    stats.bytes += map.iter().map(|(_, v)| v.len() as u64).sum::<u64>();
    for propagator in propagators {
        let cx = propagator.extract(map);
        if let Some(sc) = remote(&cx) {
            stats.with_parent += 1;
            assert!(sc.is_remote(), "{text}");
            assert!(
                appears(&lower, &sc.trace_id().to_bytes()),
                "trace id {} not in input:\n{text}",
                sc.trace_id()
            );
            assert!(
                appears(&lower, &sc.span_id().to_bytes()),
                "span id {} not in input:\n{text}",
                sc.span_id()
            );
        }
        let bag = cx.baggage();
        assert!(bag.len() <= 64.min(MAX_ENTRIES), "{} entries", bag.len());
        if !bag.is_empty() {
            stats.with_baggage += 1;
        }
        // A few keys per map: each check scans the whole input.
        for (key, _) in bag.iter().take(4) {
            assert!(
                lower.contains(&key.as_str().to_ascii_lowercase()),
                "key {key:?}"
            );
        }

        // Round trip: what we inject extracts to the same span context.
        let mut out = HeaderMap::new();
        propagator.inject(&cx, &mut out);
        if let Some(b) = out.get("baggage") {
            assert!(b.len() <= MAX_TOTAL_BYTES, "baggage of {} bytes", b.len());
        }
        let again = propagator.extract(&out);
        match (remote(&cx), remote(&again)) {
            (Some(a), Some(b)) => {
                assert_eq!(a.trace_id(), b.trace_id(), "{text}");
                assert_eq!(a.span_id(), b.span_id(), "{text}");
                assert_eq!(a.is_sampled(), b.is_sampled(), "{text}");
            }
            (None, None) => {}
            (a, b) => panic!("round trip changed the parent: {a:?} → {b:?}\n{text}"),
        }

        // The other entry point: a text-map extractor (opentelemetry's API).
        let mut carrier: HashMap<String, String> = HashMap::new();
        for (name, value) in map {
            if let Ok(v) = value.to_str() {
                carrier
                    .entry(name.as_str().to_owned())
                    .and_modify(|e| {
                        e.push(',');
                        e.push_str(v);
                    })
                    .or_insert_with(|| v.to_owned());
            }
        }
        let cx2 = TextMapPropagator::extract(propagator, &carrier);
        if let Some(sc) = remote(&cx2) {
            assert!(appears(&lower, &sc.trace_id().to_bytes()), "{text}");
        }
    }

    // Differential check of a lone traceparent.
    let tps: Vec<&HeaderValue> = map.get_all("traceparent").iter().collect();
    if map.len() == 1 && tps.len() == 1 {
        stats.traceparent_checked += 1;
        let only_w3c = Propagator::from_formats(&[Format::TraceContext]);
        let got = remote(&only_w3c.extract(map)).map(|sc| (sc.trace_id(), sc.span_id()));
        let want = reference_traceparent(tps[0].as_bytes());
        assert_eq!(
            got,
            want,
            "traceparent {:?}",
            String::from_utf8_lossy(tps[0].as_bytes())
        );
    }
}

fn propagators() -> Vec<Propagator> {
    let all = Propagator::from_formats(&Format::ALL);
    vec![
        all.clone(),
        all.with_precedence(&[Format::Sentry, Format::B3, Format::Jaeger]),
    ]
}

/// Runs `iterations` inputs from `seed`; returns the statistics.
fn fuzz(seed: u64, iterations: u64) -> Stats {
    let propagators = propagators();
    let mut rng = Rng::new(seed);
    let mut stats = Stats {
        inputs: 0,
        with_parent: 0,
        with_baggage: 0,
        traceparent_checked: 0,
        bytes: 0,
    };
    for _ in 0..iterations {
        let map = header_map(&mut rng);
        check(&map, &propagators, &mut stats);
    }
    // Lone traceparents get their own stream, so the differential oracle sees many.
    for _ in 0..iterations / 4 {
        let mut map = HeaderMap::new();
        let mut v = value_for(&mut rng, "traceparent");
        v.retain(|&b| b >= 0x20 && b != 0x7f || b == b'\t');
        map.insert("traceparent", HeaderValue::from_bytes(&v).unwrap());
        check(&map, &propagators, &mut stats);
    }
    stats
}

/// The CI run: a few seconds. `FUZZ_ITERATIONS` / `FUZZ_SEED` size and seed the long run
/// (scripts/fuzz.sh), which prints its numbers.
#[test]
fn fuzz_every_header_parser() {
    let iterations: u64 = std::env::var("FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4_000);
    let seed: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x7472_6163_6562_7264);
    let started = std::time::Instant::now();
    let stats = fuzz(seed, iterations);
    let elapsed = started.elapsed();
    // Reported, never asserted (speed belongs to the benchmarks).
    println!(
        "fuzz: seed={seed} header_maps={} (x{} propagators, 2 entry points + round trip) \
         header_bytes={} with_parent={} with_baggage={} lone_traceparent_differential={} \
         elapsed={:.1}s ({:.1} µs/map)",
        stats.inputs,
        propagators().len(),
        stats.bytes,
        stats.with_parent,
        stats.with_baggage,
        stats.traceparent_checked,
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / stats.inputs as f64,
    );
    assert_eq!(stats.inputs, iterations + iterations / 4);
    // The generator must reach the interesting paths, or the run proves little.
    assert!(
        stats.with_parent > stats.inputs / 20,
        "too few parents found"
    );
    assert!(stats.with_baggage > stats.inputs / 50, "too little baggage");
    assert!(stats.traceparent_checked > iterations / 4);
}

#[test]
fn the_reference_parser_agrees_on_known_values() {
    let ok = reference_traceparent(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    assert_eq!(
        ok,
        Some((
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
            SpanId::from_hex("00f067aa0ba902b7").unwrap()
        ))
    );
    assert!(
        reference_traceparent(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x")
            .is_none()
    );
    assert!(
        reference_traceparent(b"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x")
            .is_some()
    );
    assert!(
        reference_traceparent(b"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").is_none()
    );
}

// --- Oversized and non-UTF-8 input: ignored, outcomes asserted (never times). ---

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN: &str = "00f067aa0ba902b7";

fn valid_traceparent() -> String {
    format!("00-{TRACE}-{SPAN}-01")
}

fn extract(headers: &[(&str, Vec<u8>)]) -> Context {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_bytes(value).unwrap(),
        );
    }
    Propagator::from_formats(&Format::ALL).extract(&map)
}

#[test]
fn a_64_kib_traceparent_is_ignored() {
    // A valid value padded to 64 KiB with a later version's allowed `-` suffix.
    let mut v = format!("01-{TRACE}-{SPAN}-01-").into_bytes();
    v.resize(64 * 1024, b'a');
    assert!(remote(&extract(&[("traceparent", v.clone())])).is_none());
    // Same for every trace header: 64 KiB of a valid value repeated is never a parent.
    for (name, unit) in [
        ("uber-trace-id", format!("{TRACE}:{SPAN}:0:1")),
        ("b3", format!("{TRACE}-{SPAN}-1")),
        ("sentry-trace", format!("{TRACE}-{SPAN}-1")),
        ("x-b3-traceid", TRACE.to_owned()),
    ] {
        let mut big = unit.clone().into_bytes();
        while big.len() < 64 * 1024 {
            big.extend_from_slice(unit.as_bytes());
        }
        let cx = extract(&[(name, big), ("x-b3-spanid", SPAN.into())]);
        assert!(remote(&cx).is_none(), "{name}");
    }
}

#[test]
fn ten_thousand_baggage_entries_keep_only_the_first_within_the_limits() {
    let big: Vec<String> = (0..10_000).map(|i| format!("k{i}=v{i}")).collect();
    let cx = extract(&[("baggage", big.join(",").into_bytes())]);
    let bag = cx.baggage();
    // Reading stops after MAX_ENTRIES members; OpenTelemetry's Baggage keeps 64 of them.
    assert!(!bag.is_empty() && bag.len() <= 64, "{}", bag.len());
    assert_eq!(
        bag.get("k0").map(|v| v.as_str().to_owned()),
        Some("v0".to_owned())
    );
    assert!(bag.get("k9999").is_none());
    assert!(bag.get(format!("k{MAX_ENTRIES}").as_str()).is_none());

    // The same entries as 10 000 separate headers, and as 10 000 `uberctx-*` headers.
    let mut map = HeaderMap::new();
    for entry in &big {
        map.append("baggage", HeaderValue::from_str(entry).unwrap());
    }
    for i in 0..10_000 {
        map.append(
            HeaderName::from_bytes(format!("uberctx-j{i}").as_bytes()).unwrap(),
            HeaderValue::from_static("x"),
        );
    }
    let cx = Propagator::from_formats(&Format::ALL).extract(&map);
    let bag = cx.baggage();
    assert!(!bag.is_empty() && bag.len() <= 64, "{}", bag.len());
    assert!(bag.get("k9999").is_none() && bag.get("j9999").is_none());

    // What we send on stays within the W3C limits.
    let mut out = HeaderMap::new();
    Propagator::from_formats(&Format::ALL).inject(&cx, &mut out);
    assert!(out["baggage"].len() <= MAX_TOTAL_BYTES);
}

#[test]
fn a_thousand_tracestate_members_drop_the_tracestate_not_the_parent() {
    let members: Vec<String> = (0..1000).map(|i| format!("k{i}=v{i}")).collect();
    let cx = extract(&[
        ("traceparent", valid_traceparent().into_bytes()),
        ("tracestate", members.join(",").into_bytes()),
    ]);
    let sc = remote(&cx).expect("the traceparent is still used");
    assert_eq!(sc.trace_id(), TraceId::from_hex(TRACE).unwrap());
    assert_eq!(sc.trace_state().header(), "");

    // 1000 separate tracestate headers of one member each: the same.
    let mut headers = vec![("traceparent", valid_traceparent().into_bytes())];
    headers.extend(
        members
            .iter()
            .map(|m| ("tracestate", m.clone().into_bytes())),
    );
    let sc = remote(&extract(&headers)).unwrap();
    assert_eq!(sc.trace_state().header(), "");
}

#[test]
fn non_utf8_bytes_in_every_header_are_ignored() {
    let junk = |valid: &str| {
        let mut v = valid.as_bytes().to_vec();
        v[10] = 0xff;
        v.push(0xc3);
        v
    };
    for (name, valid) in [
        ("traceparent", valid_traceparent()),
        ("uber-trace-id", format!("{TRACE}:{SPAN}:0:1")),
        ("b3", format!("{TRACE}-{SPAN}-1")),
        ("sentry-trace", format!("{TRACE}-{SPAN}-1")),
    ] {
        let cx = extract(&[(name, junk(&valid))]);
        assert!(remote(&cx).is_none(), "{name}");
        // The clean value is accepted, so the rejection above is the bytes' doing.
        assert!(
            remote(&extract(&[(name, valid.into_bytes())])).is_some(),
            "{name}"
        );
    }
    // Baggage: the bad member is dropped, its neighbours kept; tracestate with a bad member
    // is dropped as a whole while the traceparent stands.
    let cx = extract(&[
        ("baggage", b"good=1,bad=\xff\xfe,also=2".to_vec()),
        ("uberctx-bin", b"\xc3\x28".to_vec()),
        ("traceparent", valid_traceparent().into_bytes()),
        ("tracestate", b"a=1,b=\xe2\x82".to_vec()),
    ]);
    let bag = cx.baggage();
    assert_eq!(bag.len(), 2, "{bag:?}");
    assert!(bag.get("good").is_some() && bag.get("also").is_some());
    let sc = remote(&cx).unwrap();
    assert_eq!(sc.trace_state().header(), "");
}

/// Found by the fuzzer: with every format on, a context carrying a tracestate and baggage
/// makes injection write 9 headers; the fixed 8-slot table indexed past its end and panicked.
#[test]
fn injecting_every_format_with_tracestate_and_baggage_writes_nine_headers() {
    let cx = extract(&[
        ("traceparent", valid_traceparent().into_bytes()),
        ("tracestate", b"congo=t61rcWkgMzE".to_vec()),
        ("baggage", b"tenant=acme".to_vec()),
    ]);
    let mut out = HeaderMap::new();
    Propagator::from_formats(&Format::ALL).inject(&cx, &mut out);
    for name in [
        "traceparent",
        "tracestate",
        "uber-trace-id",
        "b3",
        "x-b3-traceid",
        "x-b3-spanid",
        "x-b3-sampled",
        "sentry-trace",
        "baggage",
    ] {
        assert!(out.contains_key(name), "{name} missing: {out:?}");
    }
    assert_eq!(out["tracestate"], "congo=t61rcWkgMzE");
    assert!(out["traceparent"].to_str().unwrap().contains(TRACE));
}
