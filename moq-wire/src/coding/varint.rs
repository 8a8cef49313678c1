//! Variable-length integers in both encodings the drafts use.
//!
//! * [`leading_ones`]: draft-17 and later. The count of leading 1 bits in the first byte is the length minus one
//!   (1 to 9 bytes); the remaining bits of the first byte and the following bytes hold the value, big-endian.
//!   Every 64-bit value is representable and non-minimal encodings are valid (draft-18 §1.4.1: "the
//!   encoding is not required to be minimal").
//! * [`quic`]: RFC 9000 §16, used by drafts up to -16: a two-bit length prefix (1, 2, 4 or 8 bytes), values below
//!   2^62. Non-minimal encodings are valid too.
//!
//! Callers normally go through [`get_vi`], [`put_vi`] and [`vi_len`], which pick the encoding from the
//! [`Version`].

use bytes::{Buf, BufMut};

use crate::{DecodeError, EncodeError, IntEncoding, Version};

/// Reads one variable-length integer in the version's encoding. On [`DecodeError::Short`] nothing is consumed.
#[inline]
pub fn get_vi<B: Buf>(buf: &mut B, v: Version) -> Result<u64, DecodeError> {
    match v.int_encoding() {
        IntEncoding::LeadingOnes => leading_ones::get(buf),
        IntEncoding::Quic => quic::get(buf),
    }
}

/// Writes one variable-length integer in the version's shortest encoding.
#[inline]
pub fn put_vi<B: BufMut>(buf: &mut B, v: Version, value: u64) -> Result<(), EncodeError> {
    match v.int_encoding() {
        IntEncoding::LeadingOnes => {
            leading_ones::put(buf, value);
            Ok(())
        }
        IntEncoding::Quic => quic::put(buf, value),
    }
}

/// The number of bytes [`put_vi`] writes for `value`.
#[inline]
pub fn vi_len(v: Version, value: u64) -> usize {
    match v.int_encoding() {
        IntEncoding::LeadingOnes => leading_ones::len(value),
        IntEncoding::Quic => quic::len(value),
    }
}

/// The draft-17+ leading-ones encoding.
pub mod leading_ones {
    use super::*;

    /// The largest encoded length.
    pub const MAX_LEN: usize = 9;

    /// The encoded length announced by a first byte.
    #[inline]
    pub const fn len_from_first(first: u8) -> usize {
        first.leading_ones() as usize + 1
    }

    /// The length of the minimal encoding of `value`.
    #[inline]
    pub const fn len(value: u64) -> usize {
        // Each byte of a k-byte form (k <= 8) carries 7 value bits; the 9-byte form carries 64.
        let bits = 64 - value.leading_zeros() as usize;
        if bits > 56 {
            9
        } else if bits == 0 {
            1
        } else {
            bits.div_ceil(7)
        }
    }

    /// Reads one integer; nothing is consumed if the input is short.
    #[inline]
    pub fn get<B: Buf>(buf: &mut B) -> Result<u64, DecodeError> {
        let chunk = buf.chunk();
        let Some(&first) = chunk.first() else {
            return Err(DecodeError::Short { needed: 1 });
        };
        let len = len_from_first(first);
        if buf.remaining() < len {
            return Err(DecodeError::Short { needed: len - buf.remaining() });
        }
        if len == 1 {
            buf.advance(1);
            return Ok(first as u64);
        }
        let mut value: u64 = if len == MAX_LEN { 0 } else { (first as u64) & (0x7f >> (len - 1)) };
        if chunk.len() >= len {
            // Fast path: the whole integer is in the first chunk.
            for &b in &chunk[1..len] {
                value = (value << 8) | b as u64;
            }
            buf.advance(len);
        } else {
            buf.advance(1);
            for _ in 1..len {
                value = (value << 8) | buf.get_u8() as u64;
            }
        }
        Ok(value)
    }

    /// Writes the minimal encoding of `value`.
    #[inline]
    pub fn put<B: BufMut>(buf: &mut B, value: u64) {
        write(buf, value, len(value))
    }

    /// Writes `value` using exactly `len` bytes (1..=9), which may be longer than necessary.
    pub fn put_with_len<B: BufMut>(buf: &mut B, value: u64, len: usize) -> Result<(), EncodeError> {
        if !(1..=MAX_LEN).contains(&len) || self::len(value) > len {
            return Err(EncodeError::InvalidValue { field: "varint length", value: len as u64 });
        }
        write(buf, value, len);
        Ok(())
    }

    /// Writes `value` in `len` bytes; `len` must be in 1..=9 and large enough for `value`.
    #[inline]
    fn write<B: BufMut>(buf: &mut B, value: u64, len: usize) {
        if len >= MAX_LEN {
            buf.put_u8(0xff);
            buf.put_u64(value);
            return;
        }
        // k - 1 leading ones then a zero, in the top bits of a k-byte big-endian number.
        let ones = (len - 1) as u32;
        let prefix: u64 = ((1u64 << ones) - 1) << (8 * len as u32 - ones);
        let encoded = prefix | value;
        match len {
            1 => buf.put_u8(encoded as u8),
            2 => buf.put_u16(encoded as u16),
            4 => buf.put_u32(encoded as u32),
            8 => buf.put_u64(encoded),
            _ => buf.put_slice(&encoded.to_be_bytes()[8 - len..]),
        }
    }
}

/// The RFC 9000 QUIC variable-length integer.
pub mod quic {
    use super::*;

    /// The largest value a QUIC varint can carry, 2^62 - 1.
    pub const MAX: u64 = (1 << 62) - 1;

    /// The length of the minimal encoding of `value` (8 for values above [`MAX`], which cannot be encoded).
    #[inline]
    pub const fn len(value: u64) -> usize {
        if value < 1 << 6 {
            1
        } else if value < 1 << 14 {
            2
        } else if value < 1 << 30 {
            4
        } else {
            8
        }
    }

    /// Reads one integer; nothing is consumed if the input is short.
    #[inline]
    pub fn get<B: Buf>(buf: &mut B) -> Result<u64, DecodeError> {
        let Some(&first) = buf.chunk().first() else {
            return Err(DecodeError::Short { needed: 1 });
        };
        let len = 1usize << (first >> 6);
        if buf.remaining() < len {
            return Err(DecodeError::Short { needed: len - buf.remaining() });
        }
        let mut value = (first & 0x3f) as u64;
        buf.advance(1);
        for _ in 1..len {
            value = (value << 8) | buf.get_u8() as u64;
        }
        Ok(value)
    }

    /// Writes the minimal encoding of `value`; values above [`MAX`] are an error.
    #[inline]
    pub fn put<B: BufMut>(buf: &mut B, value: u64) -> Result<(), EncodeError> {
        put_with_len(buf, value, len(value))
    }

    /// Writes `value` using exactly `len` bytes (1, 2, 4 or 8).
    pub fn put_with_len<B: BufMut>(buf: &mut B, value: u64, len: usize) -> Result<(), EncodeError> {
        if value > MAX {
            return Err(EncodeError::InvalidValue { field: "QUIC varint", value });
        }
        let tag: u64 = match len {
            1 if value < 1 << 6 => 0,
            2 if value < 1 << 14 => 1,
            4 if value < 1 << 30 => 2,
            8 => 3,
            _ => {
                return Err(EncodeError::InvalidValue { field: "varint length", value: len as u64 });
            }
        };
        let encoded = (tag << (8 * len as u32 - 2)) | value;
        buf.put_slice(&encoded.to_be_bytes()[8 - len..]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lo(hex: &[u8]) -> Result<u64, DecodeError> {
        let mut b = hex;
        let v = leading_ones::get(&mut b)?;
        assert!(b.is_empty(), "decoder left {} bytes", b.len());
        Ok(v)
    }

    fn lo_enc(value: u64) -> Vec<u8> {
        let mut out = Vec::new();
        leading_ones::put(&mut out, value);
        out
    }

    /// The examples of draft-18/19 §1.4.1 ("Variable-Length Integers"), both directions where minimal.
    #[test]
    fn draft_examples() {
        let cases: &[(&[u8], u64, bool)] = &[
            (&[0x25], 37, true),
            (&[0x80, 0x25], 37, false),
            (&[0xbb, 0xbd], 15_293, true),
            (&[0xed, 0x7f, 0x3e, 0x7d], 226_442_877, true),
            (&[0xfa, 0xa1, 0xa0, 0xe4, 0x03, 0xd8], 2_893_212_287_960, true),
            (&[0xfc, 0x89, 0x98, 0xab, 0xc6, 0x6b, 0xc0], 151_288_809_941_952, true),
            (&[0xfe, 0xfa, 0x31, 0x8f, 0xa8, 0xe3, 0xca, 0x11], 70_423_237_261_249_041, true),
            (&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], u64::MAX, true),
        ];
        for &(bytes, value, minimal) in cases {
            assert_eq!(lo(bytes), Ok(value), "decode {bytes:02x?}");
            if minimal {
                assert_eq!(lo_enc(value), bytes, "encode {value}");
            }
        }
    }

    #[test]
    fn known_constants() {
        assert_eq!(lo_enc(0x2f00), [0xaf, 0x00]);
        assert_eq!(lo_enc(0x132b_3e28), [0xf0, 0x13, 0x2b, 0x3e, 0x28]);
        assert_eq!(lo_enc(0x80), [0x80, 0x80]);
        assert_eq!(lo_enc(0x4000), [0xc0, 0x40, 0x00]);
    }

    #[test]
    fn every_boundary() {
        // Largest value of each length, and the first value of the next.
        for k in 1..=8usize {
            let max = (1u64 << (7 * k)) - 1;
            assert_eq!(leading_ones::len(max), k, "max of {k}");
            assert_eq!(leading_ones::len(max + 1), k + 1, "max+1 of {k}");
            for value in [max, max + 1, max >> 1] {
                let enc = lo_enc(value);
                assert_eq!(enc.len(), leading_ones::len(value));
                assert_eq!(lo(&enc), Ok(value));
            }
        }
        assert_eq!(leading_ones::len(0), 1);
        assert_eq!(leading_ones::len(u64::MAX), 9);
    }

    #[test]
    fn non_minimal_accepted() {
        for value in [0u64, 1, 37, 127, 128, 16_383, 1 << 40] {
            for len in leading_ones::len(value)..=leading_ones::MAX_LEN {
                let mut out = Vec::new();
                leading_ones::put_with_len(&mut out, value, len).unwrap();
                assert_eq!(out.len(), len);
                assert_eq!(leading_ones::len_from_first(out[0]), len);
                assert_eq!(lo(&out), Ok(value), "value {value} in {len} bytes");
            }
        }
        // Zero in every length: 00, 80 00, c0 00 00, ...
        assert_eq!(lo(&[0xc0, 0, 0]), Ok(0));
        assert!(leading_ones::put_with_len(&mut Vec::new(), 128, 1).is_err());
        assert!(leading_ones::put_with_len(&mut Vec::new(), 1, 10).is_err());
    }

    #[test]
    fn short_input_consumes_nothing() {
        for value in [0u64, 200, 1 << 20, 1 << 50, u64::MAX] {
            let enc = lo_enc(value);
            for cut in 0..enc.len() {
                let mut b = &enc[..cut];
                let err = leading_ones::get(&mut b).unwrap_err();
                let needed = if cut == 0 { 1 } else { enc.len() - cut };
                assert_eq!(err, DecodeError::Short { needed });
                assert_eq!(b.len(), cut, "consumed on short input");
            }
        }
    }

    #[test]
    fn quic_rfc9000_examples() {
        // RFC 9000 Appendix A.1.
        let cases: &[(&[u8], u64, bool)] = &[
            (&[0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c], 151_288_809_941_952_652, true),
            (&[0x9d, 0x7f, 0x3e, 0x7d], 494_878_333, true),
            (&[0x7b, 0xbd], 15_293, true),
            (&[0x25], 37, true),
            (&[0x40, 0x25], 37, false),
        ];
        for &(bytes, value, minimal) in cases {
            let mut b = bytes;
            assert_eq!(quic::get(&mut b), Ok(value));
            assert!(b.is_empty());
            if minimal {
                let mut out = Vec::new();
                quic::put(&mut out, value).unwrap();
                assert_eq!(out, bytes);
            }
        }
    }

    #[test]
    fn quic_boundaries_and_limits() {
        for (value, len) in
            [(63u64, 1), (64, 2), (16_383, 2), (16_384, 4), ((1 << 30) - 1, 4), (1 << 30, 8), (quic::MAX, 8)]
        {
            let mut out = Vec::new();
            quic::put(&mut out, value).unwrap();
            assert_eq!(out.len(), len, "{value}");
            let mut b = &out[..];
            assert_eq!(quic::get(&mut b), Ok(value));
            let mut short = &out[..len - 1];
            assert_eq!(quic::get(&mut short), Err(DecodeError::Short { needed: 1 }));
        }
        assert!(quic::put(&mut Vec::new(), quic::MAX + 1).is_err());
        assert!(quic::put_with_len(&mut Vec::new(), 64, 1).is_err());
    }
}
