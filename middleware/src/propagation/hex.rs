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

/// One table load per digit: `0-9a-f` → 0..=15, `A-F` → 16..=21 (value + 6, so the
/// lowercase-only rule is a range check), anything else → 0xff.
static DIGITS: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 16,
            _ => 0xff,
        };
        b += 1;
    }
    t
};

/// Value of one hex digit; `lower_only` rejects `A-F` (W3C Trace Context requires lowercase).
#[inline]
fn digit(b: u8, lower_only: bool) -> Option<u8> {
    match DIGITS[usize::from(b)] {
        d @ 0..=15 => Some(d),
        d @ 16..=21 if !lower_only => Some(d - 6),
        _ => None,
    }
}

/// Decodes exactly `2 * N` hex digits into `N` bytes.
#[inline]
pub(crate) fn decode_fixed<const N: usize>(s: &[u8], lower_only: bool) -> Option<[u8; N]> {
    if s.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        *o = (digit(pair[0], lower_only)? << 4) | digit(pair[1], lower_only)?;
    }
    Some(out)
}

/// Decodes 1..=32 hex digits (either case) as a big-endian number, left-padded with zeros:
/// Jaeger and B3 allow 64-bit ids and ids written without leading zeros.
#[inline]
pub(crate) fn decode_var_u128(s: &[u8]) -> Option<u128> {
    if s.is_empty() || s.len() > 32 {
        return None;
    }
    let mut v: u128 = 0;
    for &b in s {
        v = (v << 4) | u128::from(digit(b, false)?);
    }
    Some(v)
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
