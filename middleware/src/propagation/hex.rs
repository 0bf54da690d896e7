//! Hex helpers shared by the header formats: decoding straight from header bytes and encoding
//! into caller-provided stack buffers, so parsing and injection never go through `String`.

use opentelemetry::{SpanId, TraceId};

const LOWER: &[u8; 16] = b"0123456789abcdef";

/// Both lowercase hex digits of every byte value: one table load per byte when encoding.
static PAIRS: [[u8; 2]; 256] = {
    let mut t = [[0u8; 2]; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = [LOWER[b >> 4], LOWER[b & 0x0f]];
        b += 1;
    }
    t
};

/// A span context's trace and span id as lowercase hex, encoded once per injection and copied
/// into every format that carries them (W3C, Jaeger, B3, Sentry and the Sentry DSC write the
/// trace id up to five times; encoding it once each time was a third of injection's cost).
pub(crate) struct IdsHex {
    pub(crate) trace: [u8; 32],
    pub(crate) span: [u8; 16],
}

impl IdsHex {
    #[inline]
    pub(crate) fn new(trace_id: TraceId, span_id: SpanId) -> Self {
        let mut ids = IdsHex {
            trace: [0; 32],
            span: [0; 16],
        };
        encode_into(&trace_id.to_bytes(), &mut ids.trace);
        encode_into(&span_id.to_bytes(), &mut ids.span);
        ids
    }
}

/// Digit values for one table load per digit, with no branch: `0-9a-f` (and `A-F` in
/// [`ANY_CASE`]) → 0..=15, anything else → [`NOT_HEX`]. Decoding ORs every looked-up value
/// together and checks the [`NOT_HEX`] bit once at the end; a branch per digit (the first
/// version) cost twice the instructions of a trace id.
const fn digit_table(upper: bool) -> [u8; 256] {
    let mut t = [NOT_HEX; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' if upper => c - b'A' + 10,
            _ => NOT_HEX,
        };
        b += 1;
    }
    t
}

/// The bit that marks a byte that is not a hex digit in the tables.
const NOT_HEX: u8 = 0x80;
static LOWER_CASE: [u8; 256] = digit_table(false);
static ANY_CASE: [u8; 256] = digit_table(true);

/// Decodes exactly `2 * N` hex digits into `N` bytes; `lower_only` rejects `A-F` (W3C Trace
/// Context requires lowercase).
#[inline]
pub(crate) fn decode_fixed<const N: usize>(s: &[u8], lower_only: bool) -> Option<[u8; N]> {
    if s.len() != 2 * N {
        return None;
    }
    let table = if lower_only { &LOWER_CASE } else { &ANY_CASE };
    let mut out = [0u8; N];
    let mut seen = 0u8;
    for (o, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        let (hi, lo) = (table[usize::from(pair[0])], table[usize::from(pair[1])]);
        seen |= hi | lo;
        // Garbage when a digit is not hex; then the whole result is dropped below.
        *o = (hi << 4) | lo;
    }
    (seen & NOT_HEX == 0).then_some(out)
}

/// Decodes 1..=32 hex digits (either case) as a big-endian number, left-padded with zeros:
/// Jaeger and B3 allow 64-bit ids and ids written without leading zeros.
#[inline]
pub(crate) fn decode_var_u128(s: &[u8]) -> Option<u128> {
    if s.is_empty() || s.len() > 32 {
        return None;
    }
    let mut v: u128 = 0;
    let mut seen = 0u8;
    for &b in s {
        let d = ANY_CASE[usize::from(b)];
        seen |= d;
        v = (v << 4) | u128::from(d & 0x0f);
    }
    (seen & NOT_HEX == 0).then_some(v)
}

/// Like [`decode_var_u128`], for 1..=16 digits.
#[inline]
pub(crate) fn decode_var_u64(s: &[u8]) -> Option<u64> {
    if s.len() > 16 {
        return None;
    }
    decode_var_u128(s).map(|v| v as u64)
}

/// Writes `bytes` as lowercase hex into `out[..2 * bytes.len()]`.
#[inline]
pub(crate) fn encode_into(bytes: &[u8], out: &mut [u8]) {
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair.copy_from_slice(&PAIRS[usize::from(*b)]);
    }
}

/// Trims HTTP optional whitespace (space, tab) from both ends.
#[inline]
pub(crate) fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_decoding_respects_case_rule() {
        assert_eq!(decode_fixed::<2>(b"0aff", true), Some([0x0a, 0xff]));
        assert_eq!(decode_fixed::<2>(b"0AFF", true), None);
        assert_eq!(decode_fixed::<2>(b"0AFF", false), Some([0x0a, 0xff]));
        assert_eq!(decode_fixed::<2>(b"0af", false), None);
        assert_eq!(decode_fixed::<2>(b"0ag0", false), None);
    }

    /// Hex decoding written the obvious way: what the table decoders must agree with.
    fn reference(s: &[u8], lower_only: bool) -> Option<Vec<u8>> {
        let digit = |b: u8| match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' if !lower_only => Some(b - b'A' + 10),
            _ => None,
        };
        if !s.len().is_multiple_of(2) {
            return None;
        }
        s.chunks(2)
            .map(|p| Some((digit(p[0])? << 4) | digit(p[1])?))
            .collect()
    }

    proptest::proptest! {
        #[test]
        fn table_decoding_agrees_with_the_reference(
            s in proptest::collection::vec(
                proptest::prop_oneof![
                    4 => proptest::sample::select(b"0123456789abcdefABCDEFgG/:@`".to_vec()),
                    1 => proptest::prelude::any::<u8>(),
                ],
                0..36,
            ),
            lower_only in proptest::prelude::any::<bool>(),
        ) {
            let want = reference(&s, lower_only);
            let fixed = |got: Option<&[u8]>| {
                proptest::prop_assert_eq!(got.map(<[u8]>::to_vec), want.clone());
                Ok(())
            };
            match s.len() {
                2 => fixed(decode_fixed::<1>(&s, lower_only).as_ref().map(|a| &a[..]))?,
                16 => fixed(decode_fixed::<8>(&s, lower_only).as_ref().map(|a| &a[..]))?,
                32 => fixed(decode_fixed::<16>(&s, lower_only).as_ref().map(|a| &a[..]))?,
                8 => fixed(decode_fixed::<4>(&s, lower_only).as_ref().map(|a| &a[..]))?,
                _ => proptest::prop_assert!(decode_fixed::<4>(&s, lower_only).is_none()),
            }
            // Any length 1..=32, either case, as a number.
            let number = (!s.is_empty() && s.len() <= 32)
                .then(|| {
                    s.iter().try_fold(0u128, |v, &b| {
                        Some((v << 4) | u128::from(reference(&[b'0', b], false)?[0]))
                    })
                })
                .flatten();
            proptest::prop_assert_eq!(decode_var_u128(&s), number);
        }
    }

    #[test]
    fn variable_decoding_pads_and_bounds() {
        assert_eq!(decode_var_u128(b"1"), Some(1));
        assert_eq!(decode_var_u128(b"Ab"), Some(0xab));
        assert_eq!(decode_var_u128(&[b'f'; 32]), Some(u128::MAX));
        assert_eq!(decode_var_u128(&[b'f'; 33]), None);
        assert_eq!(decode_var_u128(b""), None);
        assert_eq!(decode_var_u64(&[b'f'; 17]), None);
        assert_eq!(
            decode_var_u64(b"00f067aa0ba902b7"),
            Some(0x00f0_67aa_0ba9_02b7)
        );
    }

    #[test]
    fn encoding_and_trim() {
        let mut buf = [0u8; 4];
        encode_into(&[0x0a, 0xff], &mut buf);
        assert_eq!(&buf, b"0aff");
        let ids = IdsHex::new(
            TraceId::from(0x0123_4567_89ab_cdef_fedc_ba98_7654_3210),
            SpanId::from(0x00f0_67aa_0ba9_02b7),
        );
        assert_eq!(&ids.trace, b"0123456789abcdeffedcba9876543210");
        assert_eq!(&ids.span, b"00f067aa0ba902b7");
        assert_eq!(trim_ows(b" \t a b\t "), b"a b");
        assert_eq!(trim_ows(b" \t "), b"");
    }
}
