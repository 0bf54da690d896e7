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
/// Context requires lowercase). Ids (`N` a multiple of 4) go eight digits at a time through
/// [`decode8`], the rest a digit at a time.
#[inline]
pub(crate) fn decode_fixed<const N: usize>(s: &[u8], lower_only: bool) -> Option<[u8; N]> {
    if s.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    if N.is_multiple_of(4) {
        for (o, digits) in out.chunks_exact_mut(4).zip(s.chunks_exact(8)) {
            o.copy_from_slice(&decode8(digits.try_into().ok()?, lower_only)?);
        }
        return Some(out);
    }
    let table = if lower_only { &LOWER_CASE } else { &ANY_CASE };
    let mut seen = 0u8;
    for (o, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        let (hi, lo) = (table[usize::from(pair[0])], table[usize::from(pair[1])]);
        seen |= hi | lo;
        // Garbage when a digit is not hex; then the whole result is dropped below.
        *o = (hi << 4) | lo;
    }
    (seen & NOT_HEX == 0).then_some(out)
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// Eight hex digits to four bytes in word arithmetic (SWAR): about 4 instructions a digit
/// where a table load per digit takes 6 to 7 (a trace id and a span id per `traceparent`,
/// a trace id per DSC).
#[inline]
fn decode8(digits: &[u8; 8], lower_only: bool) -> Option<[u8; 4]> {
    let x = u64::from_le_bytes(*digits);
    if x & HIGH != 0 {
        return None;
    }
    // Every byte is below 0x80, so adding at most 0x80 to each cannot carry into the next:
    // the high bit of a byte of `x + (0x80 - lo)` is set exactly when the byte is >= `lo`.
    let at_least = |lo: u8| x.wrapping_add(ONES * u64::from(0x80 - lo)) & HIGH;
    let within = |lo: u8, hi: u8| at_least(lo) & !at_least(hi + 1);
    let mut digit = within(b'0', b'9') | within(b'a', b'f');
    if !lower_only {
        digit |= within(b'A', b'F');
    }
    if digit != HIGH {
        return None;
    }
    // A digit's value is its low nibble, plus 9 for a letter (bit 6 set: 0x4_ and 0x6_).
    let nibbles = (x & (ONES * 0x0f)) + ((x >> 6) & ONES) * 9;
    // Byte k (little endian) is digit k: byte 2j becomes digit 2j << 4 | digit 2j+1, then the
    // even bytes are packed together.
    let t = ((nibbles << 4) | (nibbles >> 8)) & 0x00ff_00ff_00ff_00ff;
    let t = (t | (t >> 8)) & 0x0000_ffff_0000_ffff;
    let t = (t | (t >> 16)) & 0xffff_ffff;
    Some((t as u32).to_le_bytes())
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

    /// Byte strings of any length, and ids (2, 8, 16, 32 digits of either case) with up to two
    /// bytes replaced, mostly by the neighbours of the digit ranges.
    fn digits() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        let near = proptest::sample::select(b"/:@G`g\x00\x7f\x80\xb0\xc6\xe6".to_vec());
        let any_bytes = proptest::collection::vec(
            prop_oneof![
                4 => proptest::sample::select(b"0123456789abcdefABCDEFgG/:@`".to_vec()),
                1 => any::<u8>(),
            ],
            0..36,
        );
        let ids = (
            proptest::sample::select(vec![2usize, 8, 16, 32]).prop_flat_map(|n| {
                proptest::collection::vec(
                    proptest::sample::select(b"0123456789abcdefABCDEF".to_vec()),
                    n,
                )
            }),
            proptest::collection::vec(
                (
                    any::<proptest::sample::Index>(),
                    prop_oneof![near, any::<u8>()],
                ),
                0..3,
            ),
        )
            .prop_map(|(mut id, edits)| {
                for (at, b) in edits {
                    let i = at.index(id.len());
                    id[i] = b;
                }
                id
            });
        prop_oneof![any_bytes, ids]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(20_000))]
        #[test]
        fn table_and_word_decoding_agree_with_the_reference(
            s in digits(),
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
