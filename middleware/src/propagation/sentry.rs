//! Sentry: `sentry-trace: {32 hex trace id}-{16 hex span id}[-{0|1}]` and the dynamic sampling
//! context (DSC): the `sentry-*` members of `baggage`.
//!
//! Hex of either case is accepted (Sentry's own Rust SDK does); surrounding spaces/tabs are
//! trimmed. A missing sampled flag means the head SDK deferred the decision (see the module docs
//! of `propagation` for what we do with it).
//!
//! The DSC is frozen by the head SDK: whatever `sentry-*` members arrive are kept verbatim in a
//! [`SentryDsc`] on the context and forwarded unchanged. A service that starts a trace writes its
//! own from [`DscConfig`](super::DscConfig) and the span context.

use http::HeaderValue;
use opentelemetry::{SpanId, TraceId};

use super::hex;

/// Longest `sentry-trace` value considered.
pub const MAX_SENTRY_TRACE: usize = 128;

/// Parses one `sentry-trace` value; the flag is `None` when deferred.
pub(crate) fn parse(value: &[u8]) -> Option<(TraceId, SpanId, Option<bool>)> {
    if value.len() > MAX_SENTRY_TRACE {
        return None;
    }
    let v = hex::trim_ows(value);
    if v.len() < 49 || v[32] != b'-' {
        return None;
    }
    let trace = TraceId::from_bytes(hex::decode_fixed::<16>(&v[..32], false)?);
    let span = SpanId::from_bytes(hex::decode_fixed::<8>(&v[33..49], false)?);
    let sampled = match &v[49..] {
        b"" => None,
        b"-1" => Some(true),
        b"-0" => Some(false),
        _ => return None,
    };
    if trace == TraceId::INVALID || span == SpanId::INVALID {
        return None;
    }
    Some((trace, span, sampled))
}

/// Appends `{trace}-{span}-{0|1}` to `out`.
pub(crate) fn push(ids: &hex::IdsHex, sampled: bool, out: &mut Vec<u8>) {
    out.extend_from_slice(&ids.trace);
    out.push(b'-');
    out.extend_from_slice(&ids.span);
    out.extend_from_slice(if sampled { b"-1" } else { b"-0" });
}

/// The incoming Sentry dynamic sampling context: the head SDK's `sentry-*` baggage members,
/// verbatim (still percent-encoded, in arrival order), forwarded unchanged by injection.
///
/// Stored as a value on the extracted [`opentelemetry::Context`]; read it with
/// `cx.get::<SentryDsc>()`.
#[derive(Clone)]
pub struct SentryDsc {
    /// The members are `header[start..end]`: when they are one run of the incoming `baggage`
    /// value (the usual case, a browser SDK writes its members together), `header` is that
    /// value itself, shared and not copied, even when W3C members follow or precede them (it
    /// then lives as long as the context: the request's header bytes, which a server's
    /// `HeaderValue`s share anyway).
    header: HeaderValue,
    start: usize,
    end: usize,
    trace_id: Option<TraceId>,
}

impl PartialEq for SentryDsc {
    /// Equal members (and so the same trace id), wherever they are stored.
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes() && self.trace_id == other.trace_id
    }
}

impl Eq for SentryDsc {}

impl std::fmt::Debug for SentryDsc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentryDsc")
            .field("members", &self.as_str())
            .field("trace_id", &self.trace_id)
            .finish()
    }
}

impl SentryDsc {
    /// Builds a DSC from comma-separated `sentry-*` members (as they appear in `baggage`).
    /// Returns `None` if any member is not a `sentry-` member or not visible ASCII, or if they
    /// are longer than a `baggage` header may be ([`MAX_TOTAL_BYTES`](super::MAX_TOTAL_BYTES)).
    pub fn from_members(members: &str) -> Option<Self> {
        if members.len() > super::MAX_TOTAL_BYTES || !members.is_ascii() {
            return None;
        }
        let header = HeaderValue::from_str(members).ok()?;
        let dsc = SentryDsc {
            start: 0,
            end: header.len(),
            trace_id: None,
            header,
        };
        if dsc.iter().any(|(k, _)| !k.starts_with("sentry-")) || dsc.as_str().is_empty() {
            return None;
        }
        Some(dsc.with_parsed_trace_id())
    }

    /// Wraps members already validated by the baggage parser, `header[start..end]`, which also
    /// decoded the value of the first `sentry-trace_id` member.
    pub(crate) fn from_validated_parts(
        header: HeaderValue,
        start: usize,
        end: usize,
        trace_id: Option<TraceId>,
    ) -> Self {
        debug_assert!(start < end && end <= header.len());
        let dsc = SentryDsc {
            header,
            start,
            end,
            trace_id,
        };
        debug_assert_eq!(dsc, dsc.clone().with_parsed_trace_id());
        dsc
    }

    fn with_parsed_trace_id(mut self) -> Self {
        self.trace_id = self
            .get("sentry-trace_id")
            .and_then(|v| hex::decode_fixed::<16>(v.as_bytes(), false))
            .map(TraceId::from_bytes);
        self
    }

    /// The members, comma-separated, exactly as forwarded.
    pub fn as_str(&self) -> &str {
        // Only ever built from visible ASCII, space and tab.
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }

    /// The raw (percent-encoded) value of one member, e.g. `get("sentry-sample_rate")`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// `(key, raw value)` of each member, in order; member properties (after `;`) are dropped.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.as_str().split(',').filter_map(|member| {
            let member = member.split(';').next()?.trim();
            let (k, v) = member.split_once('=')?;
            Some((k.trim(), v.trim()))
        })
    }

    /// `sentry-trace_id`, when present and well-formed.
    pub fn trace_id(&self) -> Option<TraceId> {
        self.trace_id
    }

    /// The members' bytes, as [`SentryDsc::as_str`].
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.header.as_bytes()[self.start..self.end]
    }
}

/// `sentry-sample_rand` derived from the trace id, so every service injecting a DSC for the
/// same trace writes the same value. It is the fraction OpenTelemetry's `TraceIdRatioBased`
/// sampler compares against its ratio (the low 63 bits of the trace id over 2^63), truncated to
/// 6 decimals: for a ratio sampler, `sampled == (sample_rand < sample_rate)` up to rounding.
pub(crate) fn sample_rand(trace_id: TraceId, out: &mut Vec<u8>) {
    let low = (u128::from_be_bytes(trace_id.to_bytes()) as u64) >> 1;
    // floor(low / 2^63 * 10^6), in integer arithmetic.
    let micro = ((u128::from(low) * 1_000_000) >> 63) as u32;
    let mut digits = [b'0'; 6];
    let mut n = micro.min(999_999);
    for d in digits.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.extend_from_slice(b"0.");
    out.extend_from_slice(&digits);
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "771a43a4192642f0b136d5159a501700";
    const S: &str = "b7ad6b7169203331";

    fn p(v: &str) -> Option<(String, String, Option<bool>)> {
        parse(v.as_bytes()).map(|(t, s, x)| (t.to_string(), s.to_string(), x))
    }

    #[test]
    fn forms() {
        assert_eq!(
            p(&format!("{T}-{S}-1")),
            Some((T.into(), S.into(), Some(true)))
        );
        assert_eq!(
            p(&format!("{T}-{S}-0")),
            Some((T.into(), S.into(), Some(false)))
        );
        assert_eq!(
            p(&format!("{T}-{S}")),
            Some((T.into(), S.into(), None)),
            "deferred"
        );
        assert_eq!(
            p(&format!(" {T}-{S}-1\t")),
            Some((T.into(), S.into(), Some(true)))
        );
        assert_eq!(
            p(&format!("{}-{}-1", T.to_uppercase(), S.to_uppercase())),
            Some((T.into(), S.into(), Some(true)))
        );
    }

    #[test]
    fn invalid() {
        for v in [
            format!("{T}-{S}-2"),
            format!("{T}-{S}-"),
            format!("{T}-{S}-11"),
            format!("{T}{S}"),
            format!("{T}-{S}1"),
            format!("00000000000000000000000000000000-{S}-1"),
            format!("{T}-0000000000000000-1"),
            format!("{T}-{S}-1{}", " x".repeat(64)),
            T.to_string(),
            String::new(),
        ] {
            assert!(p(&v).is_none(), "{v:?}");
        }
    }

    #[test]
    fn encode() {
        let mut out = Vec::new();
        let ids = hex::IdsHex::new(TraceId::from_hex(T).unwrap(), SpanId::from_hex(S).unwrap());
        push(&ids, false, &mut out);
        assert_eq!(out, format!("{T}-{S}-0").as_bytes());
    }

    #[test]
    fn dsc_accessors() {
        let dsc = SentryDsc::from_members(&format!(
            "sentry-trace_id={T},sentry-sample_rate=0.5,sentry-release=a%20b"
        ))
        .unwrap();
        assert_eq!(dsc.trace_id(), Some(TraceId::from_hex(T).unwrap()));
        assert_eq!(dsc.get("sentry-sample_rate"), Some("0.5"));
        assert_eq!(dsc.get("sentry-release"), Some("a%20b"));
        assert_eq!(dsc.iter().count(), 3);
        assert!(SentryDsc::from_members("other=1").is_none());
        let long = format!("sentry-x={}", "v".repeat(super::super::MAX_TOTAL_BYTES));
        assert!(SentryDsc::from_members(&long).is_none());
        assert!(SentryDsc::from_members("").is_none());
        // Not visible ASCII (a header value may hold obs-text, a DSC may not).
        assert!(SentryDsc::from_members("sentry-release=\u{e9}").is_none());
        assert!(SentryDsc::from_members("sentry-release=a\tb").is_some());
    }

    #[test]
    fn sample_rand_is_deterministic_and_in_range() {
        let mut a = Vec::new();
        sample_rand(TraceId::from_hex(T).unwrap(), &mut a);
        let mut b = Vec::new();
        sample_rand(TraceId::from_hex(T).unwrap(), &mut b);
        assert_eq!(a, b);
        assert_eq!(a.len(), 8);
        // Low 64 bits 0xb136d5159a501700 >> 1 over 2^63 = 0.69224...
        assert_eq!(a, b"0.692242");
        let mut max = Vec::new();
        sample_rand(TraceId::from(u128::MAX), &mut max);
        assert_eq!(max, b"0.999999");
        let mut min = Vec::new();
        sample_rand(TraceId::from(1u128 << 64), &mut min);
        assert_eq!(min, b"0.000000");
    }
}
