//! W3C Trace Context (Level 2): `traceparent` and `tracestate`.
//!
//! `traceparent: {version}-{trace-id}-{parent-id}-{flags}`, lowercase hex only. Version `00`
//! must be exactly 55 bytes; a later version may carry more fields after a `-` (the spec's
//! forward compatibility rule); version `ff`, all-zero ids, uppercase hex, a value longer than
//! [`MAX_TRACEPARENT`] and two `traceparent` headers are invalid, so a new trace starts. Leading
//! and trailing spaces/tabs are accepted (the W3C test suite requires it). Of the flags we keep
//! `sampled` (0x01) and Level 2's `random` (0x02); unknown bits are not propagated.
//!
//! `tracestate`: every `tracestate` header is one comma-separated list (several headers merge in
//! order), empty members are skipped, and the whole `tracestate` is discarded (the `traceparent`
//! is still used) when a member is malformed, a key repeats, or there are more than 32 members,
//! as the W3C test suite's strict level requires: a vendor must not propagate a list it could
//! not parse.

use opentelemetry::trace::{TraceFlags, TraceState};
use opentelemetry::{SpanId, TraceId};

use super::hex;

/// Longest `traceparent` value considered; longer values are ignored without being scanned.
pub const MAX_TRACEPARENT: usize = 512;
/// Most `tracestate` list members (W3C limit).
pub const MAX_TRACESTATE_MEMBERS: usize = 32;
/// Longest combined `tracestate` considered (32 members of 256-byte keys and values, plus
/// separators); anything longer cannot be valid and is ignored without being scanned.
pub const MAX_TRACESTATE_BYTES: usize = 32 * (256 + 1 + 256) + 31 * 2;

/// Flag bits we propagate: sampled and random.
const KNOWN_FLAGS: u8 = 0x03;

/// Parses one `traceparent` value.
pub(crate) fn parse(value: &[u8]) -> Option<(TraceId, SpanId, TraceFlags)> {
    if value.len() > MAX_TRACEPARENT {
        return None;
    }
    let v = hex::trim_ows(value);
    if v.len() < 55 {
        return None;
    }
    let version = hex::decode_fixed::<1>(&v[0..2], true)?[0];
    if version == 0xff {
        return None;
    }
    if version == 0x00 && v.len() != 55 {
        return None;
    }
    // Later versions: the 00 layout is a prefix, and any extra data starts with '-'.
    if v.len() > 55 && v[55] != b'-' {
        return None;
    }
    if v[2] != b'-' || v[35] != b'-' || v[52] != b'-' {
        return None;
    }
    let trace_id = TraceId::from_bytes(hex::decode_fixed::<16>(&v[3..35], true)?);
    let span_id = SpanId::from_bytes(hex::decode_fixed::<8>(&v[36..52], true)?);
    let flags = hex::decode_fixed::<1>(&v[53..55], true)?[0];
    if trace_id == TraceId::INVALID || span_id == SpanId::INVALID {
        return None;
    }
    Some((trace_id, span_id, TraceFlags::new(flags & KNOWN_FLAGS)))
}

/// Writes `00-{trace}-{span}-{flags}` (55 bytes) into `out`.
#[inline]
pub(crate) fn encode(ids: &hex::IdsHex, flags: TraceFlags, out: &mut [u8; 55]) {
    out[0] = b'0';
    out[1] = b'0';
    out[2] = b'-';
    out[3..35].copy_from_slice(&ids.trace);
    out[35] = b'-';
    out[36..52].copy_from_slice(&ids.span);
    out[52] = b'-';
    hex::encode_into(&[flags.to_u8() & KNOWN_FLAGS], &mut out[53..55]);
}

/// Parses every `tracestate` header value (in order) into one [`TraceState`]; `None` means
/// "no usable tracestate" (absent, empty or discarded).
pub(crate) fn parse_tracestate<'a>(values: impl Iterator<Item = &'a [u8]>) -> Option<TraceState> {
    let mut members: Vec<(&str, &str)> = Vec::new();
    let mut total = 0usize;
    for value in values {
        total += value.len();
        if total > MAX_TRACESTATE_BYTES {
            return None;
        }
        for member in value.split(|&b| b == b',') {
            let member = hex::trim_ows(member);
            if member.is_empty() {
                continue;
            }
            let eq = member.iter().position(|&b| b == b'=')?;
            let (key, val) = (&member[..eq], &member[eq + 1..]);
            if !valid_key(key) || !valid_value(val) {
                return None;
            }
            if members.len() == MAX_TRACESTATE_MEMBERS {
                return None;
            }
            // Validated as ASCII above, so these conversions cannot fail.
            let key = std::str::from_utf8(key).ok()?;
            let val = std::str::from_utf8(val).ok()?;
            if members.iter().any(|(k, _)| *k == key) {
                return None;
            }
            members.push((key, val));
        }
    }
    if members.is_empty() {
        return None;
    }
    TraceState::from_key_value(members.iter().copied())
        .ok()
        .or_else(|| {
            // opentelemetry's own key check is one short on the `@system` part (it refuses a
            // 14-character system, which the spec allows): keep the members it accepts.
            TraceState::from_key_value(
                members
                    .into_iter()
                    .filter(|m| TraceState::from_key_value([*m]).is_ok()),
            )
            .ok()
        })
}

/// `key = simple-key / multi-tenant-key` (lcalpha/digit first; `tenant@system`, tenant ≤ 241,
/// system ≤ 14, whole simple key ≤ 256).
fn valid_key(key: &[u8]) -> bool {
    let allowed = |b: u8| {
        b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'*' | b'/')
    };
    let first_ok = |s: &[u8]| {
        s.first()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    match key.iter().position(|&b| b == b'@') {
        None => key.len() <= 256 && first_ok(key) && key.iter().all(|&b| allowed(b)),
        Some(at) => {
            let (tenant, system) = (&key[..at], &key[at + 1..]);
            (1..=241).contains(&tenant.len())
                && (1..=14).contains(&system.len())
                && first_ok(tenant)
                && first_ok(system)
                && tenant.iter().all(|&b| allowed(b))
                && system.iter().all(|&b| allowed(b))
        }
    }
}

/// `value = 0*255(chr) nblk-chr`, chr = 0x20..0x7E except `,` and `=`; no trailing space.
fn valid_value(val: &[u8]) -> bool {
    let chr = |b: u8| (0x20..=0x7e).contains(&b) && b != b',' && b != b'=';
    !val.is_empty() && val.len() <= 256 && val.last() != Some(&b' ') && val.iter().all(|&b| chr(b))
}

/// Appends the `tracestate` header value for `ts` to `out` (nothing for an empty state).
pub(crate) fn push_tracestate(ts: &TraceState, out: &mut Vec<u8>) {
    for (i, (k, v)) in ts.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(k.as_bytes());
        out.push(b'=');
        out.extend_from_slice(v.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn ids(v: &str) -> Option<(String, String, u8)> {
        parse(v.as_bytes()).map(|(t, s, f)| (t.to_string(), s.to_string(), f.to_u8()))
    }

    #[test]
    fn spec_example() {
        assert_eq!(
            ids(SPEC),
            Some((
                "4bf92f3577b34da6a3ce929d0e0e4736".into(),
                "00f067aa0ba902b7".into(),
                1
            ))
        );
        assert_eq!(
            ids("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"),
            Some((
                "0af7651916cd43dd8448eb211c80319c".into(),
                "b7ad6b7169203331".into(),
                0
            ))
        );
    }

    #[test]
    fn keeps_random_flag_drops_unknown_bits() {
        assert_eq!(ids(&SPEC.replace("-01", "-03")).unwrap().2, 3);
        assert_eq!(ids(&SPEC.replace("-01", "-ff")).unwrap().2, 3);
        assert_eq!(ids(&SPEC.replace("-01", "-02")).unwrap().2, 2);
    }

    #[test]
    fn ows_is_trimmed() {
        for v in [
            format!(" {SPEC}"),
            format!("\t{SPEC}"),
            format!("{SPEC} "),
            format!("{SPEC}\t"),
            format!("\t {SPEC} \t"),
        ] {
            assert!(ids(&v).is_some(), "{v:?}");
        }
    }

    #[test]
    fn versions() {
        let body = &SPEC[2..];
        assert!(ids(&format!("ff{body}")).is_none(), "version ff is invalid");
        assert!(ids(&format!("cc{body}")).is_some(), "future version");
        assert!(ids(&format!("cc{body}-what-the-future-will-be-like")).is_some());
        assert!(ids(&format!("cc{body}.what-the-future-will-not-be-like")).is_none());
        assert!(
            ids(&format!("00{body}-extra")).is_none(),
            "00 must be exact"
        );
        assert!(ids(&format!("00{body}.")).is_none());
        assert!(ids(&format!("0{body}")).is_none());
        assert!(ids(&format!("000{body}")).is_none());
        assert!(ids(&format!("0g{body}")).is_none());
        assert!(ids(&format!("CC{body}")).is_none(), "uppercase version");
    }

    #[test]
    fn invalid_ids_and_case() {
        let bad = [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0.",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-001",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "",
            " ",
        ];
        for v in bad {
            assert!(ids(v).is_none(), "{v:?}");
        }
    }

    #[test]
    fn oversized_is_ignored() {
        let v = format!("cc{}-{}", &SPEC[2..], "x".repeat(MAX_TRACEPARENT));
        assert!(ids(&v).is_none());
        let v = format!("cc{}-{}", &SPEC[2..], "x".repeat(MAX_TRACEPARENT - 56));
        assert_eq!(v.len(), MAX_TRACEPARENT);
        assert!(ids(&v).is_some());
    }

    #[test]
    fn encode_round_trip() {
        let (t, s, f) = parse(SPEC.as_bytes()).unwrap();
        let mut out = [0u8; 55];
        encode(&hex::IdsHex::new(t, s), f, &mut out);
        assert_eq!(&out[..], SPEC.as_bytes());
    }

    fn ts(values: &[&str]) -> Option<String> {
        parse_tracestate(values.iter().map(|v| v.as_bytes())).map(|t| t.header())
    }

    #[test]
    fn tracestate_merges_headers_in_order() {
        assert_eq!(
            ts(&["foo=1,bar=2", "rojo=1,congo=2", "baz=3"]).as_deref(),
            Some("foo=1,bar=2,rojo=1,congo=2,baz=3")
        );
        assert_eq!(ts(&["", "foo=1"]).as_deref(), Some("foo=1"));
        assert_eq!(ts(&["foo=1", ""]).as_deref(), Some("foo=1"));
        assert_eq!(ts(&[""]), None);
        assert_eq!(ts(&[]), None);
    }

    #[test]
    fn tracestate_ows() {
        assert_eq!(
            ts(&["foo=1 \t , \t bar=2, \t baz=3"]).as_deref(),
            Some("foo=1,bar=2,baz=3")
        );
        assert_eq!(ts(&["\t foo=1 \t"]).as_deref(), Some("foo=1"));
    }

    #[test]
    fn tracestate_invalid_discards_all() {
        for v in [
            &["foo=1,foo=1"][..],
            &["foo=1,foo=2"],
            &["foo=1", "foo=2"],
            &["foo =1"],
            &["FOO=1"],
            &["foo.bar=1"],
            &["foo@=1,bar=2"],
            &["@foo=1,bar=2"],
            &["foo@@bar=1,bar=2"],
            &["foo@bar@baz=1,bar=2"],
            &["foo=bar=baz"],
            &["foo=,bar=3"],
            &["foo"],
            &["foo=1", "bar=\u{7f}"],
        ] {
            assert_eq!(ts(v), None, "{v:?}");
        }
    }

    #[test]
    fn tracestate_limits() {
        let members: Vec<String> = (1..=32).map(|i| format!("bar{i:02}={i:02}")).collect();
        let refs: Vec<&str> = members.iter().map(String::as_str).collect();
        assert_eq!(
            parse_tracestate(refs.iter().map(|v| v.as_bytes()))
                .unwrap()
                .into_iter()
                .count(),
            32
        );
        let mut more = members.clone();
        more.push("bar33=33".into());
        let refs: Vec<&str> = more.iter().map(String::as_str).collect();
        assert_eq!(ts(&refs), None);

        let k256 = format!("{}=1", "z".repeat(256));
        assert!(ts(&["foo=1", &k256]).is_some());
        let k257 = format!("{}=1", "z".repeat(257));
        assert_eq!(ts(&["foo=1", &k257]), None);
        let vendor = format!("{}@{}=1", "t".repeat(241), "v".repeat(14));
        assert!(ts(&["foo=1", &vendor]).unwrap().starts_with("foo=1"));
        let vendor13 = format!("{}@{}", "t".repeat(241), "v".repeat(13));
        let state = ts(&["foo=1", &format!("{vendor13}=1")]).unwrap();
        assert_eq!(state, format!("foo=1,{vendor13}=1"));
        let tenant = format!("{}@v=1", "t".repeat(242));
        assert_eq!(ts(&["foo=1", &tenant]), None);
        let sys = format!("t@{}=1", "v".repeat(15));
        assert_eq!(ts(&["foo=1", &sys]), None);
        // 1000 members: discarded, bounded work.
        let big = vec!["a=1"; 1000].join(",");
        assert_eq!(ts(&[&big]), None);
    }

    #[test]
    fn tracestate_all_allowed_characters() {
        let key = "abcdefghijklmnopqrstuvwxyz0123456789_-*/";
        let value: String = (0x20u8..=0x2b)
            .chain(0x2d..=0x3c)
            .chain(0x3e..=0x7e)
            .map(char::from)
            .collect();
        let state = parse_tracestate([format!("{key}={value}").as_bytes()].into_iter()).unwrap();
        assert_eq!(state.get(key), Some(value.as_str()));
        let vkey = format!("{key}@a-z0-9_-*/");
        let state = parse_tracestate([format!("{vkey}={value}").as_bytes()].into_iter()).unwrap();
        assert_eq!(state.get(&vkey), Some(value.as_str()));
    }
}
