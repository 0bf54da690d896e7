//! The composite propagator: W3C Trace Context, W3C Baggage, Jaeger, B3 (single and multi
//! header) and Sentry, extracted with one precedence and injected from one span context.
//!
//! # Extraction
//!
//! Formats are tried in precedence order and the first one that parses wins; the default is
//! `traceparent` > `uber-trace-id` > `b3` (single, then `X-B3-*`) > `sentry-trace`, changed with
//! [`Propagator::with_precedence`]. Only configured formats are read. The winner becomes the
//! context's remote span context (`is_remote`, sampled flag kept, `tracestate` kept for W3C),
//! so a request that carries only `sentry-trace` continues that trace id in OpenTelemetry.
//! Whenever a span context wins, a [`sentry::TracePropagationContext`] with the same ids is put
//! on the context too: `sentry-opentelemetry`'s span processor reads it to continue the remote
//! trace with the right parent in Sentry. Nothing else reads it, so [`crate::init`] turns it off
//! ([`Propagator::with_sentry_context`]) when it installs no Sentry span processor: one context
//! value less per request.
//!
//! W3C `baggage` entries and Jaeger `uberctx-*` headers go into OpenTelemetry's [`Baggage`]
//! (W3C entries win on a key clash). The `sentry-*` members of `baggage` (the head SDK's
//! dynamic sampling context, frozen by it) go verbatim into a [`SentryDsc`] context value; it
//! is dropped when its `sentry-trace_id` names another trace than the winning span context.
//!
//! **Deferred sampling.** `sentry-trace` without the `-0`/`-1` flag (and B3 without a sampling
//! state) means the head did not decide. OpenTelemetry has no "undecided" remote parent: a
//! parent-based sampler would drop every span of a not-sampled parent, so the trace the browser
//! started would never reach Jaeger. We therefore mark a deferred remote parent **sampled** in
//! OpenTelemetry, and leave `sampled` unset in the Sentry propagation context so Sentry applies
//! its own `traces_sample_rate` to its transaction. What we send downstream is always decided
//! (`-1`/`-0` from our span).
//!
//! **W3C Trace Context Level 2.** `tracestate` follows the Level 2 key grammar and is inherited
//! with duplicated keys (`traceparent` module docs); the `random` flag (0x02) is kept on
//! every outgoing `traceparent` and in `traceresponse` for a trace that came with it or that a
//! layer started, sampled or not, where the SDK's span context loses it
//! (`keep_random_flag`). `jaeger-debug-id` without a trace context forces sampling and is
//! kept for the root span's attribute (`jaeger` module docs). W3C baggage members past
//! OpenTelemetry's 64-entry [`Baggage`] are kept verbatim beside it and forwarded, up to the W3C
//! limits (`baggage` module docs).
//!
//! Everything malformed is ignored, never an error: bad ids, all-zero ids, `traceparent`
//! version `ff`, uppercase hex in `traceparent`, two `traceparent` headers, values that are not
//! UTF-8 or longer than the per-format caps ([`MAX_TRACEPARENT`], [`MAX_UBER_TRACE_ID`],
//! [`MAX_B3`], [`MAX_SENTRY_TRACE`]), so a new trace starts. Parsing works on
//! [`HeaderValue::as_bytes`] with no regex, no `String` for ids, and bounded work per header.
//!
//! # Injection
//!
//! From the context's span context (nothing trace-related when it is invalid) every configured
//! format is written: `traceparent` (+ `tracestate`), `uber-trace-id`
//! (`{trace}:{span}:0:{0|1}`), `b3` or `X-B3-*`, `sentry-trace` (`{trace}-{span}-{0|1}`). One
//! `baggage` header carries the W3C entries and the Sentry DSC: the incoming [`SentryDsc`]
//! unchanged, or, when this service started the trace, our own DSC (`sentry-trace_id`,
//! `sentry-sampled`, `sentry-sample_rand` derived from the trace id so every injection of a
//! trace agrees, and `sentry-public_key`, `sentry-sample_rate`, `sentry-environment`,
//! `sentry-release` from [`DscConfig`]). The DSC is written first and always fits; W3C entries
//! that would push the header past the limits ([`MAX_ENTRIES`], [`MAX_ENTRY_BYTES`],
//! [`MAX_TOTAL_BYTES`]) are left out. `uberctx-*` headers are written only when the `baggage`
//! format is off (with it on, the `baggage` header already carries the same entries, and a
//! receiver reading both would see each twice). All header values of one injection share one
//! buffer: one allocation for the bytes, no `String` on the way.
//!
//! # Why Jaeger is implemented here
//!
//! `opentelemetry-jaeger-propagator` is deprecated upstream (Jaeger ingests OTLP and W3C
//! headers), it parses through `String`s on its own pass over the headers, and keeps
//! `uberctx-*` baggage apart from W3C baggage. Parsing `uber-trace-id` here takes one pass over
//! the bytes, shares the precedence and caps with the other formats, and folds `uberctx-*` into
//! the same [`Baggage`].

mod b3;
mod baggage;
pub(crate) mod hex;
mod jaeger;
mod sentry;
mod traceparent;

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::baggage::{Baggage, BaggageExt};
use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, TraceContextExt, TraceFlags, TraceState};
use opentelemetry::{Context, SpanId, TraceId};

pub use self::b3::MAX_B3;
pub use self::baggage::{MAX_ENTRIES, MAX_ENTRY_BYTES, MAX_TOTAL_BYTES};
pub(crate) use self::jaeger::{debug_id as jaeger_debug_id, DebugSampler};
pub use self::jaeger::{MAX_DEBUG_ID, MAX_UBER_TRACE_ID};
pub use self::sentry::{SentryDsc, MAX_SENTRY_TRACE};
pub use self::traceparent::{MAX_TRACEPARENT, MAX_TRACESTATE_BYTES, MAX_TRACESTATE_MEMBERS};

const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
const BAGGAGE: HeaderName = HeaderName::from_static("baggage");
const UBER_TRACE_ID: HeaderName = HeaderName::from_static("uber-trace-id");
const B3_SINGLE: HeaderName = HeaderName::from_static("b3");
const B3_TRACE_ID: HeaderName = HeaderName::from_static("x-b3-traceid");
const B3_SPAN_ID: HeaderName = HeaderName::from_static("x-b3-spanid");
const B3_SAMPLED: HeaderName = HeaderName::from_static("x-b3-sampled");
const B3_FLAGS: HeaderName = HeaderName::from_static("x-b3-flags");
const SENTRY_TRACE: HeaderName = HeaderName::from_static("sentry-trace");
const JAEGER_DEBUG_ID: HeaderName = HeaderName::from_static("jaeger-debug-id");
const UBERCTX_PREFIX: &str = "uberctx-";

/// One header format, as named in `OTEL_PROPAGATORS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// `tracecontext`: `traceparent` + `tracestate`.
    TraceContext,
    /// `baggage`: W3C `baggage`.
    Baggage,
    /// `jaeger`: `uber-trace-id` + `uberctx-*`.
    Jaeger,
    /// `b3`: the single `b3` header.
    B3,
    /// `b3multi`: `X-B3-*` headers.
    B3Multi,
    /// `sentry`: `sentry-trace` + the `sentry-*` entries of `baggage`.
    Sentry,
}

impl Format {
    /// Every format, in `OTEL_PROPAGATORS` documentation order.
    pub const ALL: [Format; 6] = [
        Format::TraceContext,
        Format::Baggage,
        Format::Jaeger,
        Format::B3,
        Format::B3Multi,
        Format::Sentry,
    ];

    /// The `OTEL_PROPAGATORS` name.
    pub fn name(self) -> &'static str {
        match self {
            Format::TraceContext => "tracecontext",
            Format::Baggage => "baggage",
            Format::Jaeger => "jaeger",
            Format::B3 => "b3",
            Format::B3Multi => "b3multi",
            Format::Sentry => "sentry",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// What a service that starts a trace writes as its own Sentry dynamic sampling context.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DscConfig {
    /// `sentry-public_key`: the public key of the DSN.
    pub public_key: Option<String>,
    /// `sentry-environment`.
    pub environment: Option<String>,
    /// `sentry-release`.
    pub release: Option<String>,
    /// `sentry-sample_rate`.
    pub sample_rate: Option<f64>,
}

impl DscConfig {
    /// The constant members, pre-encoded once: `,sentry-public_key=…,…`.
    fn encoded_tail(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut member = |key: &str, value: &str| {
            out.push(b',');
            out.extend_from_slice(key.as_bytes());
            out.push(b'=');
            for chunk in percent_encoding::utf8_percent_encode(value, DSC_ENCODE) {
                out.extend_from_slice(chunk.as_bytes());
            }
        };
        if let Some(v) = &self.public_key {
            member("sentry-public_key", v);
        }
        if let Some(v) = self.sample_rate {
            member("sentry-sample_rate", &v.to_string());
        }
        if let Some(v) = &self.environment {
            member("sentry-environment", v);
        }
        if let Some(v) = &self.release {
            member("sentry-release", v);
        }
        out
    }
}

/// Percent-encoding for our own DSC values (baggage values; Sentry SDKs quote the same way).
const DSC_ENCODE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Trace formats in precedence order (B3 single and multi share one slot).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    TraceContext,
    Jaeger,
    B3,
    Sentry,
}

const DEFAULT_PRECEDENCE: [Slot; 4] = [Slot::TraceContext, Slot::Jaeger, Slot::B3, Slot::Sentry];

/// The composite propagator. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Propagator {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    formats: u8,
    precedence: [Slot; 4],
    dsc: DscConfig,
    dsc_tail: Vec<u8>,
    fields: Vec<String>,
    sentry_context: bool,
}

impl Default for Propagator {
    /// `tracecontext,baggage,jaeger,sentry`.
    fn default() -> Self {
        Propagator::from_formats(&[
            Format::TraceContext,
            Format::Baggage,
            Format::Jaeger,
            Format::Sentry,
        ])
    }
}

impl Propagator {
    /// A propagator for exactly these formats (default precedence, no DSC configuration).
    pub fn from_formats(formats: &[Format]) -> Self {
        let bits = formats.iter().fold(0, |acc, f| acc | f.bit());
        Propagator::build(bits, DEFAULT_PRECEDENCE, DscConfig::default(), true)
    }

    fn build(formats: u8, precedence: [Slot; 4], dsc: DscConfig, sentry_context: bool) -> Self {
        let has = |f: Format| formats & f.bit() != 0;
        let mut fields = Vec::new();
        if has(Format::TraceContext) {
            fields.extend(["traceparent".to_string(), "tracestate".to_string()]);
        }
        if has(Format::Baggage) || has(Format::Sentry) {
            fields.push("baggage".to_string());
        }
        if has(Format::Jaeger) {
            fields.push("uber-trace-id".to_string());
        }
        if has(Format::B3) {
            fields.push("b3".to_string());
        }
        if has(Format::B3Multi) {
            fields.extend(["x-b3-traceid", "x-b3-spanid", "x-b3-sampled"].map(String::from));
        }
        if has(Format::Sentry) {
            fields.push("sentry-trace".to_string());
        }
        let dsc_tail = dsc.encoded_tail();
        Propagator {
            inner: Arc::new(Inner {
                formats,
                precedence,
                dsc,
                dsc_tail,
                fields,
                sentry_context,
            }),
        }
    }

    /// Parses `OTEL_PROPAGATORS` syntax (`tracecontext,baggage,jaeger`); `none` disables all.
    /// Names are trimmed and case-insensitive; an empty value means the default set.
    pub fn from_names(names: &str) -> Result<Self, crate::ConfigError> {
        if names.trim().is_empty() {
            return Ok(Propagator::default());
        }
        let mut formats = Vec::new();
        for name in names.split(',') {
            let name = name.trim();
            if name.is_empty() || name.eq_ignore_ascii_case("none") {
                continue;
            }
            match Format::ALL
                .into_iter()
                .find(|f| f.name().eq_ignore_ascii_case(name))
            {
                Some(f) => formats.push(f),
                None => {
                    return Err(crate::ConfigError {
                        var: "OTEL_PROPAGATORS",
                        message: format!(
                            "unknown propagator {name:?}; accepted: tracecontext, baggage, \
                             jaeger, b3, b3multi, sentry, none"
                        ),
                    })
                }
            }
        }
        Ok(Propagator::from_formats(&formats))
    }

    /// The same propagator, writing `dsc` when this service starts a trace.
    #[must_use]
    pub fn with_dsc(self, dsc: DscConfig) -> Self {
        Propagator::build(
            self.inner.formats,
            self.inner.precedence,
            dsc,
            self.inner.sentry_context,
        )
    }

    /// Whether extraction also puts a [`sentry::TracePropagationContext`] on the context (on by
    /// default). Only `sentry-opentelemetry`'s span processor reads it; [`crate::init`] turns it
    /// off when that processor is not installed.
    #[must_use]
    pub fn with_sentry_context(self, on: bool) -> Self {
        Propagator::build(
            self.inner.formats,
            self.inner.precedence,
            self.inner.dsc.clone(),
            on,
        )
    }

    /// The same propagator with another extraction precedence: the listed formats first, in
    /// order, then the remaining ones in default order. `B3` and `B3Multi` share one place;
    /// `Baggage` carries no span context and is ignored here.
    #[must_use]
    pub fn with_precedence(self, order: &[Format]) -> Self {
        let mut precedence = Vec::with_capacity(4);
        let listed = order.iter().filter_map(|f| match f {
            Format::TraceContext => Some(Slot::TraceContext),
            Format::Jaeger => Some(Slot::Jaeger),
            Format::B3 | Format::B3Multi => Some(Slot::B3),
            Format::Sentry => Some(Slot::Sentry),
            Format::Baggage => None,
        });
        for slot in listed.chain(DEFAULT_PRECEDENCE) {
            if !precedence.contains(&slot) {
                precedence.push(slot);
            }
        }
        let precedence: [Slot; 4] = precedence.try_into().unwrap_or(DEFAULT_PRECEDENCE);
        Propagator::build(
            self.inner.formats,
            precedence,
            self.inner.dsc.clone(),
            self.inner.sentry_context,
        )
    }

    /// Whether `format` is configured.
    pub fn has(&self, format: Format) -> bool {
        self.inner.formats & format.bit() != 0
    }

    /// The configured formats.
    pub fn formats(&self) -> impl Iterator<Item = Format> + '_ {
        Format::ALL.into_iter().filter(|f| self.has(*f))
    }

    /// Extracts the remote context (span context, baggage, Sentry DSC) from request headers.
    /// Never fails: anything malformed is ignored and an empty context is returned.
    pub fn extract(&self, headers: &HeaderMap) -> Context {
        self.extract_from(&MapSource::new(headers), &Context::new())
    }

    /// Like [`Propagator::extract`], on top of `cx`.
    pub fn extract_with_context(&self, cx: &Context, headers: &HeaderMap) -> Context {
        self.extract_from(&MapSource::new(headers), cx)
    }

    /// Injects every configured format from `cx`'s span context, one merged `baggage` header.
    pub fn inject(&self, cx: &Context, headers: &mut HeaderMap) {
        self.inject_into(cx, &mut MapSink(headers));
    }

    fn extract_from<S: Source>(&self, src: &S, base: &Context) -> Context {
        let has = |f: Format| self.has(f);
        let mut winner: Option<Remote> = None;
        for slot in self.inner.precedence {
            winner = match slot {
                Slot::TraceContext if has(Format::TraceContext) => extract_w3c(src),
                Slot::Jaeger if has(Format::Jaeger) => only_value(src, Field::UberTraceId)
                    .and_then(jaeger::parse)
                    .map(|(t, s, f)| Remote::decided(t, s, f.is_sampled())),
                Slot::B3 if has(Format::B3) || has(Format::B3Multi) => extract_b3(src),
                Slot::Sentry if has(Format::Sentry) => only_value(src, Field::SentryTrace)
                    .and_then(sentry::parse)
                    .map(|(t, s, sampled)| Remote {
                        trace_id: t,
                        span_id: s,
                        flags: TraceFlags::default().with_sampled(sampled.unwrap_or(true)),
                        sentry_sampled: sampled,
                        state: None,
                        full_state: None,
                    }),
                _ => None,
            };
            if winner.is_some() {
                break;
            }
        }

        let mut bag = Baggage::new();
        let mut overflow = Vec::new();
        let mut dsc = None;
        let (w3c_bag, sentry_on) = (has(Format::Baggage), has(Format::Sentry));
        if w3c_bag || sentry_on {
            dsc = baggage::parse(
                src.values_with_headers(Field::Baggage),
                w3c_bag,
                sentry_on,
                &mut bag,
                &mut overflow,
            );
        }
        if has(Format::Jaeger) {
            src.for_each_uberctx(|key, value| {
                if bag.len() >= MAX_ENTRIES || value.len() > MAX_ENTRY_BYTES || key.is_empty() {
                    return;
                }
                if bag.get(key).is_some() {
                    return;
                }
                if let Ok(v) = percent_encoding::percent_decode(hex::trim_ows(value)).decode_utf8()
                {
                    bag.insert(key.to_string(), v.into_owned());
                }
            });
        }

        let mut cx = base.clone();
        if winner.is_none() && has(Format::Jaeger) {
            if let Some(id) = only_value(src, Field::JaegerDebugId).and_then(jaeger::parse_debug_id)
            {
                cx = cx.with_value(id);
            }
        }
        if let Some(remote) = winner {
            let state = remote.state.unwrap_or_default();
            if let Some(header) = remote.full_state {
                cx = cx.with_value(FullTraceState {
                    trace_id: remote.trace_id,
                    state: state.clone(),
                    header,
                });
            }
            cx = cx.with_remote_span_context(SpanContext::new(
                remote.trace_id,
                remote.span_id,
                remote.flags,
                true,
                state,
            ));
            if self.inner.sentry_context {
                let mut ctx = ::sentry::TracePropagationContext::new(
                    remote.trace_id.to_bytes().into(),
                    remote.span_id.to_bytes().into(),
                );
                if let Some(sampled) = remote.sentry_sampled {
                    ctx = ctx.with_sampled(sampled);
                }
                cx = cx.with_value(ctx);
            }
            // A DSC of another trace would mislabel ours: drop it, we then write our own.
            if let Some(d) = &dsc {
                if d.trace_id().is_some_and(|t| t != remote.trace_id) {
                    dsc = None;
                }
            }
        }
        if !bag.is_empty() {
            cx = cx.with_baggage(bag);
        }
        if !overflow.is_empty() {
            cx = cx.with_value(baggage::Overflow(Bytes::from(overflow)));
        }
        if let Some(dsc) = dsc {
            cx = cx.with_value(dsc);
        }
        cx
    }

    fn inject_into<K: Sink>(&self, cx: &Context, sink: &mut K) {
        let has = |f: Format| self.has(f);
        let span = cx.span();
        let sc = span.span_context();
        let valid = sc.is_valid();
        let (trace_id, span_id, sampled) = (sc.trace_id(), sc.span_id(), sc.is_sampled());

        let ids = hex::IdsHex::new(trace_id, span_id);
        // All values go into one buffer, sliced into header values afterwards. Sized for the
        // default formats with our own DSC (≈ 380 bytes) so it is allocated once, not regrown.
        let mut buf: Vec<u8> = Vec::with_capacity(512);
        // At most: traceparent, tracestate, uber-trace-id, b3, 3 x X-B3-*, sentry-trace, baggage.
        let mut ranges: [(Option<HeaderName>, usize, usize); 9] = Default::default();
        let mut n = 0;
        let mut mark = |name: HeaderName, start: usize, end: usize| {
            ranges[n] = (Some(name), start, end);
            n += 1;
        };

        if valid {
            if has(Format::TraceContext) {
                let start = buf.len();
                let mut tp = [0u8; 55];
                traceparent::encode(&ids, w3c_flags(cx, sc), &mut tp);
                buf.extend_from_slice(&tp);
                mark(TRACEPARENT, start, buf.len());
                let start = buf.len();
                // The incoming list as it came, unless the span's tracestate changed since.
                match cx
                    .get::<FullTraceState>()
                    .filter(|f| f.trace_id == trace_id && f.state == *sc.trace_state())
                {
                    Some(full) => buf.extend_from_slice(full.header.as_bytes()),
                    None => traceparent::push_tracestate(sc.trace_state(), &mut buf),
                }
                if buf.len() > start {
                    mark(TRACESTATE, start, buf.len());
                }
            }
            if has(Format::Jaeger) {
                let start = buf.len();
                jaeger::push(&ids, sampled, &mut buf);
                mark(UBER_TRACE_ID, start, buf.len());
            }
            if has(Format::B3) {
                let start = buf.len();
                b3::push_single(&ids, sampled, &mut buf);
                mark(B3_SINGLE, start, buf.len());
            }
            if has(Format::B3Multi) {
                let start = buf.len();
                buf.extend_from_slice(&ids.trace);
                mark(B3_TRACE_ID, start, buf.len());
                let start = buf.len();
                buf.extend_from_slice(&ids.span);
                mark(B3_SPAN_ID, start, buf.len());
                let start = buf.len();
                buf.push(if sampled { b'1' } else { b'0' });
                mark(B3_SAMPLED, start, buf.len());
            }
            if has(Format::Sentry) {
                let start = buf.len();
                sentry::push(&ids, sampled, &mut buf);
                mark(SENTRY_TRACE, start, buf.len());
            }
        }

        // One `baggage`: DSC first (it always fits), then W3C entries within the limits.
        let bag = cx.baggage();
        let forwarded = cx
            .get::<SentryDsc>()
            .filter(|d| !valid || d.trace_id().is_none_or(|t| t == trace_id));
        let start = buf.len();
        let mut dsc_entries = 0;
        if has(Format::Sentry) {
            if let Some(dsc) = forwarded {
                buf.extend_from_slice(dsc.as_bytes());
                dsc_entries = dsc.iter().count();
            } else if valid {
                buf.extend_from_slice(b"sentry-trace_id=");
                buf.extend_from_slice(&ids.trace);
                buf.extend_from_slice(if sampled {
                    b",sentry-sampled=true,sentry-sample_rand="
                } else {
                    b",sentry-sampled=false,sentry-sample_rand="
                });
                sentry::sample_rand(trace_id, &mut buf);
                buf.extend_from_slice(&self.inner.dsc_tail);
                dsc_entries = 3 + self.inner.dsc_tail.iter().filter(|&&b| b == b',').count();
            }
        }
        if has(Format::Baggage) && !bag.is_empty() {
            let used = buf.len() - start;
            let sep = usize::from(used > 0);
            let budget = MAX_TOTAL_BYTES.saturating_sub(used + sep);
            let mut w3c = Vec::new();
            let overflow = cx.get::<baggage::Overflow>().map(|o| &o.0[..]);
            let n = baggage::push(
                bag,
                overflow,
                has(Format::Sentry),
                budget,
                dsc_entries,
                &mut w3c,
            );
            if n > 0 {
                if sep == 1 {
                    buf.push(b',');
                }
                buf.extend_from_slice(&w3c);
            }
        }
        if buf.len() > start {
            mark(BAGGAGE, start, buf.len());
        }

        let bytes = Bytes::from(buf);
        for (name, start, end) in &ranges[..n] {
            if let (Some(name), Ok(value)) = (
                name,
                HeaderValue::from_maybe_shared(bytes.slice(*start..*end)),
            ) {
                sink.put(name, value);
            }
        }

        if has(Format::Jaeger) && !has(Format::Baggage) {
            for (key, (value, _)) in bag {
                let name = format!("{UBERCTX_PREFIX}{}", key.as_str().to_ascii_lowercase());
                let value: String =
                    percent_encoding::utf8_percent_encode(value.as_str(), DSC_ENCODE).collect();
                if let (Ok(name), Ok(value)) = (
                    HeaderName::from_bytes(name.as_bytes()),
                    HeaderValue::from_str(&value),
                ) {
                    sink.put(&name, value);
                }
            }
        }
    }
}

/// The winning remote parent, before it becomes a [`SpanContext`].
struct Remote {
    trace_id: TraceId,
    span_id: SpanId,
    flags: TraceFlags,
    /// The sampled flag as the head sent it (`None` = deferred), for Sentry.
    sentry_sampled: Option<bool>,
    state: Option<TraceState>,
    /// The whole `tracestate` when `state` lacks a Level 2 key OpenTelemetry refuses.
    full_state: Option<HeaderValue>,
}

impl Remote {
    fn decided(trace_id: TraceId, span_id: SpanId, sampled: bool) -> Self {
        Remote {
            trace_id,
            span_id,
            flags: TraceFlags::default().with_sampled(sampled),
            sentry_sampled: Some(sampled),
            state: None,
            full_state: None,
        }
    }
}

fn extract_w3c<S: Source>(src: &S) -> Option<Remote> {
    let (trace_id, span_id, flags) =
        only_value(src, Field::Traceparent).and_then(traceparent::parse)?;
    // Most requests have no `tracestate`: skip the parser's setup then.
    let mut states = src.values(Field::Tracestate).peekable();
    let parsed = match states.peek() {
        Some(_) => traceparent::parse_tracestate(states),
        None => None,
    };
    let (state, full_state) = match parsed {
        Some(t) => (Some(t.state), t.full),
        None => (None, None),
    };
    Some(Remote {
        trace_id,
        span_id,
        flags,
        sentry_sampled: Some(flags.is_sampled()),
        state,
        full_state,
    })
}

fn extract_b3<S: Source>(src: &S) -> Option<Remote> {
    let parsed = only_value(src, Field::B3)
        .and_then(b3::parse_single)
        .or_else(|| {
            b3::parse_multi(
                only_value(src, Field::B3TraceId)?,
                only_value(src, Field::B3SpanId)?,
                src.values(Field::B3Sampled).next(),
                src.values(Field::B3Flags).next(),
            )
        })?;
    let (trace_id, span_id, sampled) = parsed;
    Some(Remote {
        trace_id,
        span_id,
        flags: TraceFlags::default().with_sampled(sampled.unwrap_or(true)),
        sentry_sampled: sampled,
        state: None,
        full_state: None,
    })
}

/// The header's value when it appears exactly once (a repeated trace header is ambiguous).
fn only_value<S: Source>(src: &S, field: Field) -> Option<&[u8]> {
    let mut values = src.values(field);
    let first = values.next()?;
    values.next().is_none().then_some(first)
}

/// `00-{trace}-{span}-{flags}`: the W3C Trace Context Level 2 `traceresponse` value for the
/// active span of `cx` (the flags as [`Propagator::inject`] writes them, `random` included),
/// or `None` when it has no valid span.
pub fn traceresponse(cx: &Context) -> Option<HeaderValue> {
    let span = cx.span();
    let sc = span.span_context();
    if !sc.is_valid() {
        return None;
    }
    let mut out = [0u8; 55];
    let ids = hex::IdsHex::new(sc.trace_id(), sc.span_id());
    traceparent::encode(&ids, w3c_flags(cx, sc), &mut out);
    HeaderValue::from_bytes(&out).ok()
}

/// The whole incoming `tracestate` of trace `trace_id`, kept when it holds a Level 2 key that
/// OpenTelemetry's [`TraceState`] refuses; `state` is what the span context got. Injection
/// writes `header` while the span's tracestate is still `state` (nobody changed it).
struct FullTraceState {
    trace_id: TraceId,
    state: TraceState,
    header: HeaderValue,
}

/// Trace `0` has a random trace id (the W3C Level 2 `random` flag), where the span context's
/// flags cannot say it: the OpenTelemetry SDK starts a root span without the flag and gives a
/// span it does not sample flags `00`, whatever its parent's flags. Put on a context by
/// [`keep_random_flag`]; read by injection and `traceresponse`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct RandomTraceId(TraceId);

/// The W3C flags to write for `sc`: sampled and random as the span context has them, plus
/// random when `cx` marks the trace random ([`RandomTraceId`]).
fn w3c_flags(cx: &Context, sc: &SpanContext) -> TraceFlags {
    let marked = cx
        .get::<RandomTraceId>()
        .is_some_and(|r| r.0 == sc.trace_id());
    if marked {
        TraceFlags::new(sc.trace_flags().to_u8() | traceparent::RANDOM)
    } else {
        sc.trace_flags()
    }
}

/// Keeps the W3C `random` flag on `cx`, the context of a span just started under `parent`.
///
/// Level 2 (`random-trace-id` flag): "When at least the right-most 7 bytes of the trace-id are
/// randomly (or pseudo-randomly) generated, the random-trace-id flag SHOULD be set to 1", and
/// "If the flag is unset in the incoming traceparent header, it MUST also be unset in any
/// outgoing traceparent headers which use the same trace-id". So the flag is on when the span
/// starts a trace (`parent` has no valid span: the SDK's id generator draws every byte at
/// random) or continues one whose parent had it, and off otherwise. The SDK keeps a parent's
/// flags on the spans it samples (nothing to do then) but not on a root span or a span it
/// drops; only then is the trace marked on the context ([`RandomTraceId`], one context value
/// per request), and children started in that context inherit the mark.
pub(crate) fn keep_random_flag(parent: &Context, cx: Context) -> Context {
    let span = cx.span();
    let sc = span.span_context();
    let trace_id = sc.trace_id();
    if !sc.is_valid() || sc.trace_flags().to_u8() & traceparent::RANDOM != 0 {
        return cx;
    }
    let parent_span = parent.span();
    let psc = parent_span.span_context();
    let random = if psc.is_valid() {
        psc.trace_id() == trace_id
            && psc.trace_flags().to_u8() & traceparent::RANDOM != 0
            && cx.get::<RandomTraceId>() != Some(&RandomTraceId(trace_id))
    } else {
        cx.get::<RandomTraceId>() != Some(&RandomTraceId(trace_id))
    };
    if random {
        cx.with_value(RandomTraceId(trace_id))
    } else {
        cx
    }
}

/// A header extraction reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Traceparent,
    Tracestate,
    Baggage,
    UberTraceId,
    B3,
    B3TraceId,
    B3SpanId,
    B3Sampled,
    B3Flags,
    SentryTrace,
    JaegerDebugId,
}

impl Field {
    const COUNT: usize = Field::JaegerDebugId as usize + 1;

    fn name(self) -> HeaderName {
        match self {
            Field::Traceparent => TRACEPARENT,
            Field::Tracestate => TRACESTATE,
            Field::Baggage => BAGGAGE,
            Field::UberTraceId => UBER_TRACE_ID,
            Field::B3 => B3_SINGLE,
            Field::B3TraceId => B3_TRACE_ID,
            Field::B3SpanId => B3_SPAN_ID,
            Field::B3Sampled => B3_SAMPLED,
            Field::B3Flags => B3_FLAGS,
            Field::SentryTrace => SENTRY_TRACE,
            Field::JaegerDebugId => JAEGER_DEBUG_ID,
        }
    }

    /// The field a (lowercase) header name is, if any: the first byte picks the candidates,
    /// so a request's other headers mostly cost one comparison.
    fn of(name: &str) -> Option<Field> {
        let field = match name.as_bytes().first()? {
            b't' => match name {
                "traceparent" => Field::Traceparent,
                "tracestate" => Field::Tracestate,
                _ => return None,
            },
            b'b' => match name {
                "baggage" => Field::Baggage,
                "b3" => Field::B3,
                _ => return None,
            },
            b'u' if name == "uber-trace-id" => Field::UberTraceId,
            b'x' => match name {
                "x-b3-traceid" => Field::B3TraceId,
                "x-b3-spanid" => Field::B3SpanId,
                "x-b3-sampled" => Field::B3Sampled,
                "x-b3-flags" => Field::B3Flags,
                _ => return None,
            },
            b's' if name == "sentry-trace" => Field::SentryTrace,
            b'j' if name == "jaeger-debug-id" => Field::JaegerDebugId,
            _ => return None,
        };
        Some(field)
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// Where extraction reads header values from.
trait Source {
    /// Every value of the header, in order.
    fn values(&self, field: Field) -> impl Iterator<Item = &[u8]>;
    /// Like [`Source::values`], each with its `HeaderValue` when the source holds them (so a
    /// value can be kept without copying it); sources of plain strings have none.
    fn values_with_headers(
        &self,
        field: Field,
    ) -> impl Iterator<Item = (&[u8], Option<&HeaderValue>)> {
        self.values(field).map(|v| (v, None))
    }
    /// Calls `f(rest of name, value)` for each `uberctx-*` header.
    fn for_each_uberctx(&self, f: impl FnMut(&str, &[u8]));
}

/// A request's [`HeaderMap`], with the trace headers found in one pass over it.
///
/// Looking each trace header up cost a hash of its name and a probe (≈ 200 instructions each,
/// three to five per request), and `uberctx-*` a pass over every header anyway: one pass that
/// notes where the trace headers are replaces both.
struct MapSource<'h> {
    map: &'h HeaderMap,
    /// The first value of each field.
    first: [Option<&'h HeaderValue>; Field::COUNT],
    /// Fields with more than one value (rare): read through [`HeaderMap::get_all`].
    repeated: u16,
    /// Whether any `uberctx-*` header is present.
    uberctx: bool,
}

impl<'h> MapSource<'h> {
    fn new(map: &'h HeaderMap) -> Self {
        let mut src = MapSource {
            map,
            first: [None; Field::COUNT],
            repeated: 0,
            uberctx: false,
        };
        for (name, value) in map {
            let name = name.as_str();
            if let Some(field) = Field::of(name) {
                let first = &mut src.first[field as usize];
                if first.is_some() {
                    src.repeated |= field.bit();
                } else {
                    *first = Some(value);
                }
            } else if name.starts_with(UBERCTX_PREFIX) {
                src.uberctx = true;
            }
        }
        src
    }

    fn headers(&self, field: Field) -> impl Iterator<Item = &'h HeaderValue> {
        let all = (self.repeated & field.bit() != 0).then(|| self.map.get_all(field.name()));
        let one = if all.is_none() {
            self.first[field as usize]
        } else {
            None
        };
        one.into_iter().chain(all.into_iter().flatten())
    }
}

impl Source for MapSource<'_> {
    fn values(&self, field: Field) -> impl Iterator<Item = &[u8]> {
        self.headers(field).map(HeaderValue::as_bytes)
    }

    fn values_with_headers(
        &self,
        field: Field,
    ) -> impl Iterator<Item = (&[u8], Option<&HeaderValue>)> {
        self.headers(field).map(|h| (h.as_bytes(), Some(h)))
    }

    fn for_each_uberctx(&self, mut f: impl FnMut(&str, &[u8])) {
        if !self.uberctx {
            return;
        }
        for (name, value) in self.map {
            if let Some(rest) = name.as_str().strip_prefix(UBERCTX_PREFIX) {
                f(rest, value.as_bytes());
            }
        }
    }
}

struct ExtractorSource<'e>(&'e dyn Extractor);

impl Source for ExtractorSource<'_> {
    fn values(&self, field: Field) -> impl Iterator<Item = &[u8]> {
        self.0
            .get_all(field.name().as_str())
            .unwrap_or_default()
            .into_iter()
            .map(str::as_bytes)
    }

    fn for_each_uberctx(&self, mut f: impl FnMut(&str, &[u8])) {
        let prefix = UBERCTX_PREFIX;
        for key in self.0.keys() {
            let matches = key.len() > prefix.len()
                && key.is_char_boundary(prefix.len())
                && key[..prefix.len()].eq_ignore_ascii_case(prefix);
            if matches {
                if let Some(value) = self.0.get(key) {
                    f(&key[prefix.len()..], value.as_bytes());
                }
            }
        }
    }
}

/// Where injection writes header values to.
trait Sink {
    fn put(&mut self, name: &HeaderName, value: HeaderValue);
}

struct MapSink<'h>(&'h mut HeaderMap);

impl Sink for MapSink<'_> {
    fn put(&mut self, name: &HeaderName, value: HeaderValue) {
        self.0.insert(name.clone(), value);
    }
}

struct InjectorSink<'i>(&'i mut dyn Injector);

impl Sink for InjectorSink<'_> {
    fn put(&mut self, name: &HeaderName, value: HeaderValue) {
        if let Ok(v) = value.to_str() {
            self.0.set(name.as_str(), v.to_owned());
        }
    }
}

impl TextMapPropagator for Propagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        self.inject_into(cx, &mut InjectorSink(injector));
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        self.extract_from(&ExtractorSource(extractor), cx)
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(&self.inner.fields)
    }
}

#[cfg(test)]
mod tests;
