//! W3C Baggage: `baggage: key=value;property,...`, percent-encoded values.
//!
//! Limits (W3C Baggage): at most [`MAX_ENTRIES`] list members, [`MAX_ENTRY_BYTES`] per member
//! and [`MAX_TOTAL_BYTES`] in all; members beyond a limit are dropped, the rest are kept.
//! Malformed members (bad key, bad octet, value not UTF-8 after decoding) are dropped one by one.
//!
//! OpenTelemetry's [`Baggage`] holds at most 64 entries. The members it cannot take (the 65th
//! to the 180th) are not dropped: they are kept verbatim, still percent-encoded, beside it
//! ([`Overflow`]), and injection writes them after the [`Baggage`] entries, so a service
//! forwards every entry it received within the W3C limits. Application code reading
//! [`Baggage`] sees the first 64.
//!
//! `sentry-*` members are the Sentry DSC: when the `sentry` format is on they are split off into
//! a [`SentryDsc`] (verbatim) instead of the [`Baggage`].

use http::HeaderValue;
use opentelemetry::baggage::Baggage;
use opentelemetry::TraceId;
use percent_encoding::{percent_decode, AsciiSet, CONTROLS};

use super::hex::trim_ows;
use super::sentry::SentryDsc;

/// Most list members read or written.
pub const MAX_ENTRIES: usize = 180;
/// Longest list member read or written.
pub const MAX_ENTRY_BYTES: usize = 4096;
/// Longest `baggage` header written; reading stops after this many bytes of members and the
/// commas between them.
pub const MAX_TOTAL_BYTES: usize = 8192;

/// Everything that is not a `baggage-octet` (W3C Baggage: 0x21, 0x23-0x2B, 0x2D-0x3A,
/// 0x3C-0x5B, 0x5D-0x7E), plus `%` itself.
const VALUE_ENCODE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b',')
    .add(b';')
    .add(b'\\')
    .add(b'%');

// Byte classes for the member scanner: one table load per byte tells whether it may appear in
// a key (RFC 7230 `tchar`), a value (W3C `baggage-octet`: 0x21, 0x23-0x2B, 0x2D-0x3A,
// 0x3C-0x5B, 0x5D-0x7E) or properties (visible ASCII and space).
const KEY: u8 = 1;
const VALUE: u8 = 2;
const PROPERTY: u8 = 4;

static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        let tchar = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        let octet = matches!(c, 0x21 | 0x23..=0x2b | 0x2d..=0x3a | 0x3c..=0x5b | 0x5d..=0x7e);
        let property = matches!(c, 0x20..=0x7e);
        let mut class = 0;
        if tchar {
            class |= KEY;
        }
        if octet {
            class |= VALUE;
        }
        if property {
            class |= PROPERTY;
        }
        t[b] = class;
        b += 1;
    }
    t
};

fn has(b: u8, class: u8) -> bool {
    CLASS[usize::from(b)] & class != 0
}

/// Index of the first byte at or after `i` that is not of `class`, or the end of `v`.
///
/// Eight bytes at a time while they last: ANDing their classes says whether all eight are of
/// `class`, one branch per eight bytes instead of one per byte (keys and values are most of a
/// `baggage` header; the byte-by-byte loop was a third of extracting a browser's DSC).
#[inline]
fn skip_class(v: &[u8], mut i: usize, class: u8) -> usize {
    while let Some(chunk) = v.get(i..i + 8).and_then(|c| <&[u8; 8]>::try_from(c).ok()) {
        let all = chunk
            .iter()
            .fold(u8::MAX, |acc, &b| acc & CLASS[usize::from(b)]);
        if all & class == 0 {
            break;
        }
        i += 8;
    }
    while i < v.len() && has(v[i], class) {
        i += 1;
    }
    i
}

fn skip_ows(m: &[u8], mut i: usize) -> usize {
    while i < m.len() && matches!(m[i], b' ' | b'\t') {
        i += 1;
    }
    i
}

/// One list member of a `baggage` value, as found by [`next_member`].
struct Member<'a> {
    /// The member with surrounding OWS trimmed: what the limits count and what a DSC copies.
    /// Empty for an empty member (`,,` or only OWS), which is skipped and not counted.
    raw: &'a [u8],
    /// Where `raw` starts in the value.
    start: usize,
    /// Key, value and properties (`key OWS "=" OWS value OWS [";" properties]`); `None` when
    /// any byte is out of its class.
    parts: Option<(&'a [u8], &'a [u8], &'a [u8])>,
}

/// Reads the list member that starts at `v[*pos..]`, validating every byte on the way, and
/// moves `*pos` past the `,` that ends it; `None` once the value is used up.
///
/// One scan finds the member's end and its parts: splitting the value at `,` first and then
/// splitting and checking each member read every byte twice or more, and was the largest single
/// cost of extracting a request's context (4.7k of 7.8k instructions for a browser's DSC).
fn next_member<'a>(v: &'a [u8], pos: &mut usize) -> Option<Member<'a>> {
    let n = v.len();
    if *pos >= n {
        return None;
    }
    let start = skip_ows(v, *pos);
    let mut i = skip_class(v, start, KEY);
    let key = &v[start..i];
    i = skip_ows(v, i);
    let mut parts = None;
    if !key.is_empty() && i < n && v[i] == b'=' {
        i = skip_ows(v, i + 1);
        let value_start = i;
        i = skip_class(v, i, VALUE);
        let value = &v[value_start..i];
        i = skip_ows(v, i);
        if i == n || v[i] == b',' {
            parts = Some((key, value, &b""[..]));
        } else if v[i] == b';' {
            let props_start = i + 1;
            i = find_comma(v, props_start);
            let props = trim_ows(&v[props_start..i]);
            if props.iter().all(|&b| has(b, PROPERTY)) {
                parts = Some((key, value, props));
            }
        }
    }
    if parts.is_none() {
        i = find_comma(v, i);
    }
    // `i` is at the `,` ending the member (or the end): trim the OWS before it.
    let mut end = i;
    while end > start && matches!(v[end - 1], b' ' | b'\t') {
        end -= 1;
    }
    *pos = i + 1;
    Some(Member {
        raw: &v[start..end],
        start,
        parts,
    })
}

/// Index of the first `,` at or after `from`, or the end of `v`.
fn find_comma(v: &[u8], from: usize) -> usize {
    v[from.min(v.len())..]
        .iter()
        .position(|&b| b == b',')
        .map_or(v.len(), |k| from + k)
}

/// The `sentry-*` members read so far, kept as a range of one header value while they are
/// adjacent there (the usual case: a Sentry SDK writes its members together), copied into a
/// buffer only once they are not.
#[derive(Default)]
struct DscMembers<'a> {
    /// The adjacent run `value[start..end]`, with the value's `HeaderValue` when the source
    /// has one.
    run: Option<Run<'a>>,
    /// Members copied so far, `,`-separated (the run is appended after them at the end).
    copied: Vec<u8>,
}

struct Run<'a> {
    value: &'a [u8],
    header: Option<&'a HeaderValue>,
    start: usize,
    end: usize,
}

impl<'a> DscMembers<'a> {
    fn push(&mut self, value: &'a [u8], header: Option<&'a HeaderValue>, member: &Member<'a>) {
        let end = member.start + member.raw.len();
        if let Some(run) = &mut self.run {
            // The same value (same address) with only the `,` in between: extend the run.
            if std::ptr::eq(run.value, value) && member.start == run.end + 1 {
                run.end = end;
                return;
            }
        }
        self.flush_run();
        self.run = Some(Run {
            value,
            header,
            start: member.start,
            end,
        });
    }

    fn flush_run(&mut self) {
        if let Some(run) = self.run.take() {
            if !self.copied.is_empty() {
                self.copied.push(b',');
            }
            self.copied
                .extend_from_slice(&run.value[run.start..run.end]);
        }
    }

    /// The members as `(header value, start, end)`: the incoming `HeaderValue` itself (shared,
    /// no copy, no re-validation) when they are one run of it, otherwise one copy.
    fn into_header(mut self) -> Option<(HeaderValue, usize, usize)> {
        if self.copied.is_empty() {
            let run = self.run?;
            // `header` is the value's own `HeaderValue` (the source pairs them), so the address
            // says it is the same bytes without comparing them.
            if let Some(h) = run.header.filter(|h| std::ptr::eq(h.as_bytes(), run.value)) {
                return Some((h.clone(), run.start, run.end));
            }
            let h = HeaderValue::from_bytes(&run.value[run.start..run.end]).ok()?;
            let len = h.len();
            return Some((h, 0, len));
        }
        self.flush_run();
        let h = HeaderValue::from_maybe_shared(bytes::Bytes::from(self.copied)).ok()?;
        let len = h.len();
        Some((h, 0, len))
    }
}

/// The W3C members OpenTelemetry's [`Baggage`] could not hold (its 64-entry cap), verbatim and
/// `,`-separated, in arrival order. A context value next to the [`Baggage`] they belong to.
#[derive(Debug)]
pub(crate) struct Overflow(pub(crate) bytes::Bytes);

/// Reads every `baggage` header value (each with its `HeaderValue` when the source has one):
/// W3C members go into `baggage` when `w3c` (those it cannot hold appended to `overflow`),
/// `sentry-*` members into the returned DSC when `dsc` (otherwise they are ordinary members).
pub(crate) fn parse<'a>(
    values: impl Iterator<Item = (&'a [u8], Option<&'a HeaderValue>)>,
    w3c: bool,
    dsc: bool,
    baggage: &mut Baggage,
    overflow: &mut Vec<u8>,
) -> Option<SentryDsc> {
    let mut seen = 0usize;
    let mut total = 0usize;
    let mut dsc_members = DscMembers::default();
    // `sentry-trace_id` of the first such member, decoded while we are at it (the DSC would
    // otherwise re-split its members to find it).
    let mut dsc_trace_id: Option<Option<TraceId>> = None;
    'headers: for (value, header) in values {
        let mut pos = 0;
        while let Some(member) = next_member(value, &mut pos) {
            if member.raw.is_empty() {
                continue;
            }
            seen += 1;
            // The `,` before every member but the first counts too: the DSC is forwarded as
            // these members joined by commas, and must fit in MAX_TOTAL_BYTES as a header.
            total += member.raw.len() + usize::from(seen > 1);
            if seen > MAX_ENTRIES || total > MAX_TOTAL_BYTES {
                break 'headers;
            }
            if member.raw.len() > MAX_ENTRY_BYTES {
                continue;
            }
            let Some((key, val, props)) = member.parts else {
                continue;
            };
            if dsc && key.starts_with(b"sentry-") {
                dsc_members.push(value, header, &member);
                if dsc_trace_id.is_none() && key == b"sentry-trace_id" {
                    dsc_trace_id =
                        Some(super::hex::decode_fixed::<16>(val, false).map(TraceId::from_bytes));
                }
            } else if w3c {
                // Key, value and properties were checked to be tchar / baggage-octets / visible
                // ASCII above, so they are UTF-8; a value without `%` is its own decoding.
                let val = if val.contains(&b'%') {
                    match percent_decode(val).decode_utf8() {
                        Ok(v) => v.into_owned(),
                        Err(_) => continue,
                    }
                } else {
                    let Ok(v) = std::str::from_utf8(val) else {
                        continue;
                    };
                    v.to_owned()
                };
                let Ok(key) = std::str::from_utf8(key) else {
                    continue;
                };
                let props = if props.is_empty() {
                    ""
                } else {
                    let Ok(p) = std::str::from_utf8(props) else {
                        continue;
                    };
                    p
                };
                let before = baggage.len();
                // `&str` properties: `BaggageMetadata` copies them once (from a `String` it
                // would trim-copy it again).
                let replaced = baggage.insert_with_metadata(key.to_owned(), val, props);
                // Neither replaced nor added: refused. Our member grammar is OpenTelemetry's
                // key rule and our byte limits keep it under its 8192-byte total, so only its
                // 64-entry cap refuses a member: keep the member as it came.
                if replaced.is_none() && baggage.len() == before {
                    if !overflow.is_empty() {
                        overflow.push(b',');
                    }
                    overflow.extend_from_slice(member.raw);
                }
            }
        }
    }
    dsc_members.into_header().map(|(header, start, end)| {
        SentryDsc::from_validated_parts(header, start, end, dsc_trace_id.flatten())
    })
}

/// Appends the W3C members of `baggage` (skipping `sentry-*` when `skip_sentry`), then the
/// `overflow` members whose key `baggage` does not hold, to `out`, `,`-separated, within
/// `budget` bytes and [`MAX_ENTRIES`] - `used_entries` members. Returns the number of members
/// written.
pub(crate) fn push(
    baggage: &Baggage,
    overflow: Option<&[u8]>,
    skip_sentry: bool,
    budget: usize,
    used_entries: usize,
    out: &mut Vec<u8>,
) -> usize {
    let start = out.len();
    let mut written = 0;
    let mut member = Vec::new();
    for (key, (value, meta)) in baggage {
        if used_entries + written >= MAX_ENTRIES {
            break;
        }
        let key = key.as_str();
        if skip_sentry && key.starts_with("sentry-") {
            continue;
        }
        member.clear();
        member.extend_from_slice(key.as_bytes());
        member.push(b'=');
        for chunk in percent_encoding::utf8_percent_encode(value.as_str(), VALUE_ENCODE) {
            member.extend_from_slice(chunk.as_bytes());
        }
        let meta = meta.as_str();
        if !meta.is_empty() {
            member.push(b';');
            member.extend_from_slice(meta.as_bytes());
        }
        let sep = usize::from(out.len() > start);
        if member.len() > MAX_ENTRY_BYTES || out.len() - start + sep + member.len() > budget {
            continue;
        }
        if sep == 1 {
            out.push(b',');
        }
        out.extend_from_slice(&member);
        written += 1;
    }
    for raw in overflow.unwrap_or_default().split(|&b| b == b',') {
        if used_entries + written >= MAX_ENTRIES {
            break;
        }
        // Validated members: the key ends at OWS or `=`.
        let key_end = raw
            .iter()
            .position(|&b| matches!(b, b'=' | b' ' | b'\t'))
            .unwrap_or(raw.len());
        let key = std::str::from_utf8(&raw[..key_end]).unwrap_or_default();
        if key.is_empty()
            || (skip_sentry && key.starts_with("sentry-"))
            || baggage.get(key).is_some()
        {
            continue;
        }
        let sep = usize::from(out.len() > start);
        if out.len() - start + sep + raw.len() > budget {
            continue;
        }
        if sep == 1 {
            out.push(b',');
        }
        out.extend_from_slice(raw);
        written += 1;
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::StringValue;
    use proptest::prelude::*;

    /// The member grammar written the obvious way (split at the first `;`, then the first `=`,
    /// trim, check each part): what [`split_member`] must agree with.
    fn split_member_reference(member: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
        let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        let octet =
            |b: u8| matches!(b, 0x21 | 0x23..=0x2b | 0x2d..=0x3a | 0x3c..=0x5b | 0x5d..=0x7e);
        let (kv, props) = match member.iter().position(|&b| b == b';') {
            Some(i) => (&member[..i], trim_ows(&member[i + 1..])),
            None => (member, &b""[..]),
        };
        let eq = kv.iter().position(|&b| b == b'=')?;
        let key = trim_ows(&kv[..eq]);
        let val = trim_ows(&kv[eq + 1..]);
        (!key.is_empty()
            && key.iter().all(|&b| tchar(b))
            && val.iter().all(|&b| octet(b))
            && props.iter().all(|&b| (0x20..=0x7e).contains(&b)))
        .then_some((key, val, props))
    }

    /// The whole header read the obvious way (split at `,`, trim, split and check each member
    /// with [`split_member_reference`], same limits): what [`parse`] must agree with.
    fn parse_reference(values: &[&[u8]], w3c: bool, dsc: bool) -> (Baggage, Option<String>) {
        let mut baggage = Baggage::new();
        let (mut seen, mut total) = (0usize, 0usize);
        let mut dsc_members: Vec<&[u8]> = Vec::new();
        'headers: for value in values {
            for member in value.split(|&b| b == b',') {
                let member = trim_ows(member);
                if member.is_empty() {
                    continue;
                }
                seen += 1;
                total += member.len() + usize::from(seen > 1);
                if seen > MAX_ENTRIES || total > MAX_TOTAL_BYTES {
                    break 'headers;
                }
                if member.len() > MAX_ENTRY_BYTES {
                    continue;
                }
                let Some((key, val, props)) = split_member_reference(member) else {
                    continue;
                };
                if dsc && key.starts_with(b"sentry-") {
                    dsc_members.push(member);
                } else if w3c {
                    if let Ok(val) = percent_decode(val).decode_utf8() {
                        baggage.insert_with_metadata(
                            String::from_utf8_lossy(key).into_owned(),
                            val.into_owned(),
                            String::from_utf8_lossy(props).into_owned(),
                        );
                    }
                }
            }
        }
        let dsc = (!dsc_members.is_empty())
            .then(|| String::from_utf8_lossy(&dsc_members.join(&b',')).into_owned());
        (baggage, dsc)
    }

    fn sorted(b: &Baggage) -> Vec<(String, String, String)> {
        let mut v: Vec<_> = b
            .iter()
            .map(|(k, (v, m))| (k.to_string(), v.to_string(), m.as_str().to_owned()))
            .collect();
        v.sort();
        v
    }

    /// Header values made of the bytes that matter to the grammar (separators, OWS, `%`, quotes,
    /// DEL, non-ASCII, a `sentry-` prefix), any byte, and whole members.
    fn header_value() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop_oneof![
                6 => proptest::sample::select(b"ab=;% \t\"-\x7f\x80,k1v".to_vec()).prop_map(|b| vec![b]),
                1 => Just(b"sentry-".to_vec()),
                1 => any::<u8>().prop_map(|b| vec![b]),
                // Whole members and separators, so values hold several well-formed members
                // (adjacent or not, Sentry's and others).
                2 => proptest::sample::select(vec![
                    b"sentry-k=v".to_vec(),
                    b"sentry-t=1;p".to_vec(),
                    b"u=1".to_vec(),
                    b",".to_vec(),
                    b" , ".to_vec(),
                ]),
            ],
            0..40,
        )
        .prop_map(|parts| parts.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]
        #[test]
        fn one_scan_member_agrees_with_the_reference(
            member in proptest::collection::vec(
                prop_oneof![
                    4 => proptest::sample::select(b"ab=;% \t\"-\x7f\x80k1v".to_vec()),
                    1 => any::<u8>().prop_filter("one member", |&b| b != b','),
                ],
                0..24,
            )
        ) {
            let mut pos = 0;
            let got = next_member(&member, &mut pos);
            let trimmed = trim_ows(&member);
            match got {
                None => prop_assert!(member.is_empty()),
                Some(m) => {
                    prop_assert_eq!(m.raw, trimmed);
                    prop_assert_eq!(pos, member.len() + 1);
                    let want = if trimmed.is_empty() { None } else { split_member_reference(trimmed) };
                    prop_assert_eq!(m.parts, want);
                }
            }
        }

        #[test]
        fn one_scan_parse_agrees_with_the_reference(
            values in proptest::collection::vec(header_value(), 0..4),
            w3c in any::<bool>(),
            dsc in any::<bool>(),
        ) {
            // Valid header values are read through their `HeaderValue` (the no-copy DSC path),
            // the others as bytes only.
            let headers: Vec<Option<HeaderValue>> =
                values.iter().map(|v| HeaderValue::from_bytes(v).ok()).collect();
            let read: Vec<(&[u8], Option<&HeaderValue>)> = values
                .iter()
                .zip(&headers)
                .map(|(v, h)| match h {
                    Some(h) => (h.as_bytes(), Some(h)),
                    None => (v.as_slice(), None),
                })
                .collect();
            let values: Vec<&[u8]> = read.iter().map(|(v, _)| *v).collect();
            let mut got = Baggage::new();
            let got_dsc = parse(read.iter().copied(), w3c, dsc, &mut got, &mut Vec::new());
            let (want, want_dsc) = parse_reference(&values, w3c, dsc);
            prop_assert_eq!(sorted(&got), sorted(&want));
            prop_assert_eq!(got_dsc.map(|d| d.as_str().to_owned()), want_dsc);
        }
    }

    /// One `baggage` value: what `Baggage` holds and the members kept verbatim past its 64.
    fn read_with_overflow(value: &str, dsc: bool) -> (Baggage, Vec<u8>) {
        let (mut b, mut over) = (Baggage::new(), Vec::new());
        parse(
            std::iter::once((value.as_bytes(), None)),
            true,
            dsc,
            &mut b,
            &mut over,
        );
        (b, over)
    }

    fn read(values: &[&str], dsc: bool) -> (Baggage, Option<SentryDsc>) {
        let mut b = Baggage::new();
        let d = parse(
            values.iter().map(|v| (v.as_bytes(), None)),
            true,
            dsc,
            &mut b,
            &mut Vec::new(),
        );
        (b, d)
    }

    #[test]
    fn spec_examples() {
        let (b, d) = read(&["key1=value1;property1;property2, key2 = value2, key3=value3; propertyKey=propertyValue"], true);
        assert!(d.is_none());
        assert_eq!(b.len(), 3);
        assert_eq!(
            b.get_with_metadata("key1").unwrap().1.as_str(),
            "property1;property2"
        );
        assert_eq!(b.get("key2"), Some(&StringValue::from("value2")));
        assert_eq!(
            b.get_with_metadata("key3").unwrap().1.as_str(),
            "propertyKey=propertyValue"
        );
        let (b, _) = read(&["userId=alice%20smith%2C%20%E2%82%AC%3B"], true);
        assert_eq!(b.get("userId").unwrap().as_str(), "alice smith, €;");
    }

    #[test]
    fn several_headers_merge_and_sentry_splits_off() {
        let (b, d) = read(
            &[
                "other=1,sentry-trace_id=771a43a4192642f0b136d5159a501700",
                "sentry-sample_rate=0.5, more=2",
            ],
            true,
        );
        assert_eq!(b.len(), 2);
        assert_eq!(
            d.unwrap().as_str(),
            "sentry-trace_id=771a43a4192642f0b136d5159a501700,sentry-sample_rate=0.5"
        );
        // With the sentry format off, sentry-* are ordinary entries.
        let (b, d) = read(&["sentry-sample_rate=0.5"], false);
        assert!(d.is_none());
        assert_eq!(b.get("sentry-sample_rate").unwrap().as_str(), "0.5");
    }

    #[test]
    fn dsc_shares_the_incoming_value_when_its_members_are_one_run() {
        let whole = HeaderValue::from_static(
            "sentry-trace_id=771a43a4192642f0b136d5159a501700,sentry-sample_rate=0.5",
        );
        let read = |h: &HeaderValue| {
            let mut b = Baggage::new();
            let dsc = parse(
                std::iter::once((h.as_bytes(), Some(h))),
                true,
                true,
                &mut b,
                &mut Vec::new(),
            )
            .unwrap();
            (dsc, b)
        };
        // Where the members are in the incoming value, when they share it.
        let offset = |dsc: &SentryDsc, h: &HeaderValue| {
            let (d, h) = (dsc.as_bytes().as_ptr_range(), h.as_bytes().as_ptr_range());
            (h.start <= d.start && d.end <= h.end).then(|| d.start as usize - h.start as usize)
        };
        let (dsc, _) = read(&whole);
        assert_eq!(dsc.as_str(), whole.to_str().unwrap());
        assert_eq!(offset(&dsc, &whole), Some(0), "shared, not copied");
        assert_eq!(
            dsc.trace_id(),
            TraceId::from_hex("771a43a4192642f0b136d5159a501700").ok()
        );
        // A browser's DSC followed by W3C members, or after them: still one run, shared.
        let prefix = HeaderValue::from_static(
            "sentry-trace_id=771a43a4192642f0b136d5159a501700,sentry-sampled=true , user.tier=gold",
        );
        let (dsc, b) = read(&prefix);
        assert_eq!(
            dsc.as_str(),
            "sentry-trace_id=771a43a4192642f0b136d5159a501700,sentry-sampled=true"
        );
        assert_eq!(offset(&dsc, &prefix), Some(0));
        assert_eq!(b.get("user.tier").unwrap().as_str(), "gold");
        let suffix =
            HeaderValue::from_static("user=1, sentry-sample_rate=0.5,sentry-sampled=true ");
        let (dsc, _) = read(&suffix);
        assert_eq!(dsc.as_str(), "sentry-sample_rate=0.5,sentry-sampled=true");
        assert_eq!(offset(&dsc, &suffix), Some(8));
        assert_eq!(dsc.trace_id(), None);
        // Members apart: one copy of them, joined.
        let mixed = HeaderValue::from_static("sentry-sample_rate=0.5,user=1,sentry-sampled=true");
        let (dsc, _) = read(&mixed);
        assert_eq!(dsc.as_str(), "sentry-sample_rate=0.5,sentry-sampled=true");
        assert_eq!(offset(&dsc, &mixed), None);
    }

    #[test]
    fn malformed_members_dropped_individually() {
        let (b, _) = read(
            &["good=1,bad key=2,noeq,=3,q=\"x\",utf=%FF,ok=%41,,sp=a b,v=ok;pro\u{7f}"],
            true,
        );
        let mut keys: Vec<_> = b.iter().map(|(k, _)| k.as_str().to_string()).collect();
        keys.sort();
        assert_eq!(keys, ["good", "ok"]);
        assert_eq!(b.get("ok").unwrap().as_str(), "A");
    }

    #[test]
    fn limits() {
        // Oversized member dropped, others kept.
        let big = format!("big={}", "x".repeat(MAX_ENTRY_BYTES));
        let (b, _) = read(&[&big, "small=1"], true);
        assert!(b.get("big").is_none());
        assert_eq!(b.get("small").unwrap().as_str(), "1");
        // 10 000 entries: bounded, 64 stored by Baggage, the rest up to 180 kept verbatim.
        let many: Vec<String> = (0..10_000).map(|i| format!("k{i}=v")).collect();
        let (b, over) = read_with_overflow(&many.join(","), false);
        assert_eq!(b.len(), 64);
        assert_eq!(over, many[64..MAX_ENTRIES].join(",").into_bytes());
        // Members past 8192 bytes total are dropped.
        let chunk = format!("a={}", "x".repeat(4000));
        let chunk2 = format!("b={}", "x".repeat(4000));
        let chunk3 = format!("c={}", "x".repeat(4000));
        let (b, _) = read(&[&chunk, &chunk2, &chunk3], true);
        assert!(b.get("a").is_some() && b.get("b").is_some() && b.get("c").is_none());
    }

    /// Once `Baggage` is full, a repeated key still replaces its entry (the last one wins, as
    /// below the cap) and is not also kept verbatim; only new keys go to the overflow.
    #[test]
    fn a_repeated_key_in_a_full_baggage_replaces_its_entry() {
        let mut members: Vec<String> = (0..64).map(|i| format!("k{i}=v")).collect();
        members.extend(["k5=new".into(), "k64=x".into(), "k6=again;p".into()]);
        let (b, over) = read_with_overflow(&members.join(","), true);
        assert_eq!(b.len(), 64);
        assert_eq!(b.get("k5").unwrap().as_str(), "new");
        assert_eq!(b.get_with_metadata("k6").unwrap().1.as_str(), "p");
        assert_eq!(over, b"k64=x");
    }

    #[test]
    fn encode_round_trip() {
        let mut b = Baggage::new();
        b.insert_with_metadata("user", "alice smith, €;%", "p1;p2=v");
        b.insert("sentry-x", "1");
        let mut out = Vec::new();
        assert_eq!(push(&b, None, true, MAX_TOTAL_BYTES, 0, &mut out), 1);
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "user=alice%20smith%2C%20%E2%82%AC%3B%25;p1;p2=v"
        );
        let (back, _) = read(&[std::str::from_utf8(&out).unwrap()], true);
        assert_eq!(back.get("user").unwrap().as_str(), "alice smith, €;%");
        assert_eq!(
            back.get_with_metadata("user").unwrap().1.as_str(),
            "p1;p2=v"
        );
    }

    /// 180 entries (the W3C limit) in, 180 out: 64 through `Baggage`, 116 verbatim.
    #[test]
    fn w3c_limit_entries_round_trip() {
        let members: Vec<String> = (0..MAX_ENTRIES)
            .map(|i| format!("k{i:03} = v%20{i};p{i}"))
            .collect();
        let (mut b, over) = read_with_overflow(&members.join(","), true);
        assert_eq!(b.len(), 64);
        let mut out = Vec::new();
        let n = push(&b, Some(&over), true, MAX_TOTAL_BYTES, 0, &mut out);
        assert_eq!(n, MAX_ENTRIES);
        let mut got: Vec<String> = std::str::from_utf8(&out)
            .unwrap()
            .split(',')
            .map(|m| m.replace(' ', ""))
            .collect();
        got.sort();
        let want: Vec<String> = members.iter().map(|m| m.replace(' ', "")).collect();
        assert_eq!(got, want);
        // With 3 entries used by a DSC, 177 W3C entries fit.
        out.clear();
        assert_eq!(
            push(&b, Some(&over), true, MAX_TOTAL_BYTES, 3, &mut out),
            177
        );
        // A key the application put back in `Baggage` is not written twice.
        b.remove("k000");
        b.insert("k100", "new");
        out.clear();
        push(&b, Some(&over), true, MAX_TOTAL_BYTES, 0, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.matches("k100").count(), 1, "{text}");
        assert!(text.contains("k100=new"));
    }

    #[test]
    fn encode_respects_budget() {
        let mut b = Baggage::new();
        b.insert("a", "x".repeat(100));
        b.insert("b", "y".repeat(100));
        let mut out = Vec::new();
        assert_eq!(push(&b, None, false, 150, 0, &mut out), 1);
        assert!(out.len() <= 150);
        out.clear();
        assert_eq!(push(&b, None, false, 8192, MAX_ENTRIES - 1, &mut out), 1);
    }
}
