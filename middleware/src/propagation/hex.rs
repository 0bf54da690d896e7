//! Hex helpers shared by the header formats: decoding straight from header bytes and encoding
//! into caller-provided stack buffers, so parsing and injection never go through `String`.

const LOWER: &[u8; 16] = b"0123456789abcdef";

/// Value of one hex digit; `lower_only` rejects `A-F` (W3C Trace Context requires lowercase).
#[inline]
fn digit(b: u8, lower_only: bool) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' if !lower_only => Some(b - b'A' + 10),
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
    for (i, pair) in s.chunks_exact(2).enumerate() {
        out[i] = (digit(pair[0], lower_only)? << 4) | digit(pair[1], lower_only)?;
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
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = LOWER[usize::from(b >> 4)];
        out[2 * i + 1] = LOWER[usize::from(b & 0x0f)];
    }
}

/// Appends `bytes` as lowercase hex to `out`.
#[inline]
pub(crate) fn push_hex(bytes: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + 2 * bytes.len(), 0);
    encode_into(bytes, &mut out[start..]);
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
        let mut v = b"x".to_vec();
        push_hex(&[0x12], &mut v);
        assert_eq!(v, b"x12");
        assert_eq!(trim_ows(b" \t a b\t "), b"a b");
        assert_eq!(trim_ows(b" \t "), b"");
    }
}
