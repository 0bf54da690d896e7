//! Jaeger: `uber-trace-id: {trace-id}:{span-id}:{parent-span-id}:{flags}`, `uberctx-{key}` and
//! `jaeger-debug-id`.
//!
//! `jaeger-debug-id: {any string}` is read as Jaeger's clients read it: when the request carries
//! no trace context (no format won extraction), the trace it starts is forced sampled
//! ([`DebugSampler`], installed by [`crate::init`]) and the server span, the service's root
//! span, gets the value as the attribute `jaeger-debug-id`, so the trace can be searched by it
//! in Jaeger. With a valid parent the header is ignored (so do Jaeger's clients). Values are
//! trimmed; empty ones, ones longer than [`MAX_DEBUG_ID`] or with bytes outside visible ASCII
//! and space are ignored. A public endpoint drops it with the rest of the caller's context.
//!
//! Ids are hex of any case, 1..=32 digits for the trace id (64-bit ids are zero-extended) and
//! 1..=16 for span ids, leading zeros optional. The url-encoded form (`%3A` for `:`, as some
//! HTTP clients send it) is accepted. Flags: bit 1 sampled, bit 2 debug (debug implies
//! sampled, as in Jaeger's own clients). The parent span id is deprecated in Jaeger and ignored;
//! we write `0`.

use opentelemetry::trace::TraceFlags;
use opentelemetry::{SpanId, TraceId};

use super::hex;

/// Longest `uber-trace-id` value considered (128-bit trace id, two span ids, flags, each
/// separator possibly url-encoded, plus slack).
pub const MAX_UBER_TRACE_ID: usize = 128;

/// Longest `jaeger-debug-id` value kept.
pub const MAX_DEBUG_ID: usize = 256;

/// A `jaeger-debug-id` on a context that starts a trace (see the module docs).
#[derive(Clone, Debug)]
pub(crate) struct DebugId(pub(crate) opentelemetry::StringValue);

/// Reads a `jaeger-debug-id` value (module docs for what is accepted).
pub(crate) fn parse_debug_id(value: &[u8]) -> Option<DebugId> {
    let value = hex::trim_ows(value);
    if value.is_empty()
        || value.len() > MAX_DEBUG_ID
        || !value.iter().all(|b| (0x20..0x7f).contains(b))
    {
        return None;
    }
    let value = std::str::from_utf8(value).ok()?;
    Some(DebugId(value.to_owned().into()))
}

/// The `jaeger-debug-id` a context carries (it starts a debug trace), for the root span's
/// attribute.
pub(crate) fn debug_id(cx: &opentelemetry::Context) -> Option<opentelemetry::StringValue> {
    cx.get::<DebugId>().map(|d| d.0.clone())
}

/// Samples every span started in a context carrying a `jaeger-debug-id` (a debug trace, as
/// Jaeger's clients force it), and defers to the configured sampler otherwise.
#[derive(Clone, Debug)]
pub(crate) struct DebugSampler<S>(pub(crate) S);

impl<S> opentelemetry_sdk::trace::ShouldSample for DebugSampler<S>
where
    S: opentelemetry_sdk::trace::ShouldSample + Clone + 'static,
{
    fn should_sample(
        &self,
        parent_context: Option<&opentelemetry::Context>,
        trace_id: TraceId,
        name: &str,
        span_kind: &opentelemetry::trace::SpanKind,
        attributes: &[opentelemetry::KeyValue],
        links: &[opentelemetry::trace::Link],
    ) -> opentelemetry_sdk::trace::SamplingResult {
        use opentelemetry::trace::TraceContextExt;
        if let Some(cx) = parent_context.filter(|cx| cx.get::<DebugId>().is_some()) {
            return opentelemetry_sdk::trace::SamplingResult {
                decision: opentelemetry_sdk::trace::SamplingDecision::RecordAndSample,
                attributes: Vec::new(),
                trace_state: cx.span().span_context().trace_state().clone(),
            };
        }
        self.0
            .should_sample(parent_context, trace_id, name, span_kind, attributes, links)
    }
}

/// Parses one `uber-trace-id` value.
pub(crate) fn parse(value: &[u8]) -> Option<(TraceId, SpanId, TraceFlags)> {
    if value.len() > MAX_UBER_TRACE_ID {
        return None;
    }
    let value = hex::trim_ows(value);
    // Decode `%3A` into a stack buffer; everything else must be literal.
    let mut buf = [0u8; MAX_UBER_TRACE_ID];
    let mut len = 0;
    let mut i = 0;
    while i < value.len() {
        let b = value[i];
        if b == b'%' {
            match value.get(i + 1..i + 3) {
                Some([b'3', b'a' | b'A']) => {
                    buf[len] = b':';
                    i += 3;
                }
                _ => return None,
            }
        } else {
            buf[len] = b;
            i += 1;
        }
        len += 1;
    }
    let mut parts = buf[..len].split(|&b| b == b':');
    let trace = parts.next()?;
    let span = parts.next()?;
    let parent = parts.next()?;
    let flags = parts.next()?;
    if parts.next().is_some() {
        return None;
    }
    let trace_id = TraceId::from(hex::decode_var_u128(trace)?);
    let span_id = SpanId::from(hex::decode_var_u64(span)?);
    hex::decode_var_u64(parent)?;
    if flags.len() > 2 {
        return None;
    }
    let flags = hex::decode_var_u64(flags)? as u8;
    if trace_id == TraceId::INVALID || span_id == SpanId::INVALID {
        return None;
    }
    let sampled = flags & 0x01 != 0 || flags & 0x02 != 0;
    Some((
        trace_id,
        span_id,
        TraceFlags::default().with_sampled(sampled),
    ))
}

/// Appends `{trace:032x}:{span:016x}:0:{0|1}` to `out`.
pub(crate) fn push(ids: &hex::IdsHex, sampled: bool, out: &mut Vec<u8>) {
    out.extend_from_slice(&ids.trace);
    out.push(b':');
    out.extend_from_slice(&ids.span);
    out.extend_from_slice(if sampled { b":0:1" } else { b":0:0" });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &str) -> Option<(String, String, bool)> {
        parse(v.as_bytes()).map(|(t, s, f)| (t.to_string(), s.to_string(), f.is_sampled()))
    }

    #[test]
    fn full_and_short_ids() {
        assert_eq!(
            ids("4bf92f3577b34da6a3ce929d0e0e4736:00f067aa0ba902b7:0:1"),
            Some((
                "4bf92f3577b34da6a3ce929d0e0e4736".into(),
                "00f067aa0ba902b7".into(),
                true
            ))
        );
        // 64-bit trace id, no leading zeros anywhere.
        assert_eq!(
            ids("a3ce929d0e0e4736:f067aa0ba902b7:0:0"),
            Some((
                "0000000000000000a3ce929d0e0e4736".into(),
                "00f067aa0ba902b7".into(),
                false
            ))
        );
        assert_eq!(
            ids("1:2:0:1"),
            Some((
                "00000000000000000000000000000001".into(),
                "0000000000000002".into(),
                true
            ))
        );
        // Uppercase hex is fine in Jaeger.
        assert!(ids("A3CE929D0E0E4736:F067AA0BA902B7:0:1").is_some());
    }

    #[test]
    fn url_encoded_form() {
        assert_eq!(
            ids("4bf92f3577b34da6a3ce929d0e0e4736%3A00f067aa0ba902b7%3A0%3A1"),
            ids("4bf92f3577b34da6a3ce929d0e0e4736:00f067aa0ba902b7:0:1")
        );
        assert!(ids("4bf92f3577b34da6%3a00f067aa0ba902b7%3a0%3a1").is_some());
        assert!(ids("4bf92f3577b34da6%2A00f067aa0ba902b7:0:1").is_none());
        assert!(ids("4bf92f3577b34da6:00f067aa0ba902b7:0:1%3").is_none());
    }

    #[test]
    fn flags() {
        assert!(ids("1:2:0:1").unwrap().2);
        assert!(ids("1:2:0:2").unwrap().2, "debug implies sampled");
        assert!(ids("1:2:0:3").unwrap().2);
        assert!(!ids("1:2:0:0").unwrap().2);
        assert!(!ids("1:2:0:4").unwrap().2);
        assert!(ids("1:2:0:100").is_none());
        assert!(ids("1:2:0:").is_none());
    }

    #[test]
    fn invalid() {
        for v in [
            "0:2:0:1",
            "1:0:0:1",
            "1:2:0",
            "1:2:0:1:5",
            "::0:1",
            "1g:2:0:1",
            "123456789012345678901234567890123:2:0:1",
            "1:12345678901234567:0:1",
            "1:2:12345678901234567:1",
            "",
            "1-2-0-1",
        ] {
            assert!(ids(v).is_none(), "{v:?}");
        }
        let long = format!("1:2:0:1{}", " ".repeat(MAX_UBER_TRACE_ID));
        assert!(ids(&long).is_none());
    }

    #[test]
    fn encode_round_trip() {
        let mut out = Vec::new();
        let t = TraceId::from(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736u128);
        let s = SpanId::from(0x00f0_67aa_0ba9_02b7u64);
        push(&hex::IdsHex::new(t, s), true, &mut out);
        assert_eq!(
            out,
            b"4bf92f3577b34da6a3ce929d0e0e4736:00f067aa0ba902b7:0:1"
        );
        let (t2, s2, f) = parse(&out).unwrap();
        assert_eq!((t2, s2, f.is_sampled()), (t, s, true));
    }
}
