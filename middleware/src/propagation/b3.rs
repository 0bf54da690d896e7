//! B3 (Zipkin): the single `b3: {trace}-{span}[-{sampled}[-{parent}]]` header and the multi
//! `X-B3-TraceId` / `X-B3-SpanId` / `X-B3-Sampled` / `X-B3-Flags` headers.
//!
//! Either configured format extracts both shapes (single first), as the B3 spec asks of
//! receivers; injection writes only the configured shape. Trace ids are 16 or 32 hex digits,
//! span ids 16 (either case). Sampling: `1`/`true` sampled, `0`/`false` not, `d` or
//! `X-B3-Flags: 1` debug (= sampled); absent means deferred, handled like Sentry's deferred
//! flag (see the module docs of `propagation`). A sampling-only `b3: 0` carries no ids and is
//! ignored.

use opentelemetry::{SpanId, TraceId};

use super::hex;

/// Longest `b3` value considered: `{32}-{16}-d-{16}`.
pub const MAX_B3: usize = 68;

/// A B3 sampling state: `None` = deferred.
pub(crate) type Sampled = Option<bool>;

fn trace_id(s: &[u8]) -> Option<TraceId> {
    if s.len() != 16 && s.len() != 32 {
        return None;
    }
    let id = TraceId::from(hex::decode_var_u128(s)?);
    (id != TraceId::INVALID).then_some(id)
}

fn span_id(s: &[u8]) -> Option<SpanId> {
    if s.len() != 16 {
        return None;
    }
    let id = SpanId::from(hex::decode_var_u64(s)?);
    (id != SpanId::INVALID).then_some(id)
}

/// Parses the single `b3` header.
pub(crate) fn parse_single(value: &[u8]) -> Option<(TraceId, SpanId, Sampled)> {
    if value.len() > MAX_B3 {
        return None;
    }
    let mut parts = hex::trim_ows(value).split(|&b| b == b'-');
    let trace = trace_id(parts.next()?)?;
    let span = span_id(parts.next()?)?;
    let sampled = match parts.next() {
        None => None,
        Some(b"1" | b"d") => Some(true),
        Some(b"0") => Some(false),
        Some(_) => return None,
    };
    if let Some(parent) = parts.next() {
        span_id(parent)?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some((trace, span, sampled))
}

/// Parses the multi-header form from the (first) values of each header.
pub(crate) fn parse_multi(
    trace: &[u8],
    span: &[u8],
    sampled: Option<&[u8]>,
    flags: Option<&[u8]>,
) -> Option<(TraceId, SpanId, Sampled)> {
    let trace = trace_id(hex::trim_ows(trace))?;
    let span = span_id(hex::trim_ows(span))?;
    if flags.map(hex::trim_ows) == Some(b"1") {
        return Some((trace, span, Some(true)));
    }
    let sampled = match sampled.map(hex::trim_ows) {
        None => None,
        Some(b"1" | b"true" | b"d") => Some(true),
        Some(b"0" | b"false") => Some(false),
        // An unreadable sampling header: keep the ids, let this service decide.
        Some(_) => None,
    };
    Some((trace, span, sampled))
}

/// Appends `{trace:032x}-{span:016x}-{0|1}` to `out`.
pub(crate) fn push_single(ids: &hex::IdsHex, sampled: bool, out: &mut Vec<u8>) {
    out.extend_from_slice(&ids.trace);
    out.push(b'-');
    out.extend_from_slice(&ids.span);
    out.extend_from_slice(if sampled { b"-1" } else { b"-0" });
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const S: &str = "00f067aa0ba902b7";

    fn single(v: &str) -> Option<(String, String, Sampled)> {
        parse_single(v.as_bytes()).map(|(t, s, x)| (t.to_string(), s.to_string(), x))
    }

    #[test]
    fn single_forms() {
        assert_eq!(
            single(&format!("{T}-{S}-1")),
            Some((T.into(), S.into(), Some(true)))
        );
        assert_eq!(
            single(&format!("{T}-{S}-0")),
            Some((T.into(), S.into(), Some(false)))
        );
        assert_eq!(
            single(&format!("{T}-{S}-d")),
            Some((T.into(), S.into(), Some(true)))
        );
        assert_eq!(
            single(&format!("{T}-{S}")),
            Some((T.into(), S.into(), None))
        );
        assert_eq!(
            single(&format!("{T}-{S}-1-b7ad6b7169203331")),
            Some((T.into(), S.into(), Some(true)))
        );
        assert_eq!(
            single(&format!("a3ce929d0e0e4736-{S}-1")),
            Some((
                "0000000000000000a3ce929d0e0e4736".into(),
                S.into(),
                Some(true)
            ))
        );
    }

    #[test]
    fn single_invalid() {
        for v in [
            "0".to_string(),
            "1".to_string(),
            "d".to_string(),
            format!("{T}-{S}-x"),
            format!("{T}-{S}-1-"),
            format!("{T}-{S}-1-b7ad6b7169203331-9"),
            format!("{T}-0000000000000000-1"),
            format!("00000000000000000000000000000000-{S}-1"),
            format!("{T}1-{S}-1"),
            format!("{T}-{S}1-1"),
            format!("{T}-{S}-1-{}", "b".repeat(40)),
        ] {
            assert!(single(&v).is_none(), "{v:?}");
        }
    }

    #[test]
    fn multi_forms() {
        let m = |s: Option<&str>, f: Option<&str>| {
            parse_multi(
                T.as_bytes(),
                S.as_bytes(),
                s.map(str::as_bytes),
                f.map(str::as_bytes),
            )
            .map(|x| x.2)
        };
        assert_eq!(m(Some("1"), None), Some(Some(true)));
        assert_eq!(m(Some("true"), None), Some(Some(true)));
        assert_eq!(m(Some("0"), None), Some(Some(false)));
        assert_eq!(m(Some("false"), None), Some(Some(false)));
        assert_eq!(m(None, None), Some(None));
        assert_eq!(m(Some("0"), Some("1")), Some(Some(true)), "debug wins");
        assert!(parse_multi(b"xyz", S.as_bytes(), None, None).is_none());
        assert!(parse_multi(T.as_bytes(), b"0000000000000000", None, None).is_none());
    }

    #[test]
    fn encode_round_trip() {
        let mut out = Vec::new();
        let t = TraceId::from_hex(T).unwrap();
        let s = SpanId::from_hex(S).unwrap();
        push_single(&hex::IdsHex::new(t, s), true, &mut out);
        assert_eq!(out, format!("{T}-{S}-1").as_bytes());
        assert_eq!(parse_single(&out), Some((t, s, Some(true))));
    }
}
