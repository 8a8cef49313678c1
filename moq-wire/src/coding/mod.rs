//! Encoding and decoding building blocks: the [`Decode`] and [`Encode`] traits, integers, and bounded reads.

pub mod varint;

use bytes::{Buf, BufMut, Bytes, BytesMut};

pub use varint::{get_vi, put_vi, vi_len};

use crate::{DecodeError, EncodeError, Version};

/// A value that can be read from the wire.
///
/// Implementations may consume part of `buf` before failing; use [`Decode::decode_prefix`] or
/// [`Decode::decode_from`] to get the guarantee that the caller's buffer is only advanced on success.
pub trait Decode: Sized {
    /// Reads one value from the front of `buf`.
    fn decode<B: Buf>(buf: &mut B, v: Version) -> Result<Self, DecodeError>;

    /// Decodes one value from the front of `data`, returning it and the number of bytes it occupied.
    /// `data` itself is never modified.
    fn decode_prefix(data: &[u8], v: Version) -> Result<(Self, usize), DecodeError> {
        let mut cursor = data;
        let value = Self::decode(&mut cursor, v)?;
        Ok((value, data.len() - cursor.len()))
    }

    /// Decodes one value from the front of `buf` and advances it past the value, only if decoding succeeds.
    /// On any error, including [`DecodeError::Short`], `buf` is untouched.
    fn decode_from(buf: &mut BytesMut, v: Version) -> Result<Self, DecodeError> {
        let (value, used) = Self::decode_prefix(&buf[..], v)?;
        buf.advance(used);
        Ok(value)
    }

    /// Decodes a value that must occupy all of `data`.
    fn decode_exact(data: &[u8], v: Version, what: &'static str) -> Result<Self, DecodeError> {
        let (value, used) = Self::decode_prefix(data, v).map_err(|e| e.within(what))?;
        if used != data.len() {
            return Err(DecodeError::TrailingBytes { what, bytes: data.len() - used });
        }
        Ok(value)
    }
}

/// A value that can be written to the wire.
pub trait Encode {
    /// Appends the encoding of `self` to `buf`.
    fn encode<B: BufMut>(&self, buf: &mut B, v: Version) -> Result<(), EncodeError>;

    /// Encodes into a new byte vector.
    fn encode_to_vec(&self, v: Version) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        self.encode(&mut out, v)?;
        Ok(out)
    }
}

/// Fails with [`DecodeError::Short`] unless `buf` has at least `n` bytes.
#[inline]
pub(crate) fn need<B: Buf>(buf: &B, n: usize) -> Result<(), DecodeError> {
    let have = buf.remaining();
    if have < n { Err(DecodeError::Short { needed: n - have }) } else { Ok(()) }
}

/// Reads one byte.
#[inline]
pub(crate) fn get_u8<B: Buf>(buf: &mut B) -> Result<u8, DecodeError> {
    need(buf, 1)?;
    Ok(buf.get_u8())
}

/// Reads a big-endian 16-bit integer.
#[inline]
pub(crate) fn get_u16<B: Buf>(buf: &mut B) -> Result<u16, DecodeError> {
    need(buf, 2)?;
    Ok(buf.get_u16())
}

/// Reads `len` bytes. Zero-copy when `B` is `Bytes`.
#[inline]
pub(crate) fn get_bytes<B: Buf>(buf: &mut B, len: usize) -> Result<Bytes, DecodeError> {
    need(buf, len)?;
    Ok(buf.copy_to_bytes(len))
}

/// Reads a varint that is used as a length and checks it against `max`.
#[inline]
pub(crate) fn get_len<B: Buf>(buf: &mut B, v: Version, field: &'static str, max: usize) -> Result<usize, DecodeError> {
    let len = get_vi(buf, v)?;
    if len > max as u64 {
        return Err(DecodeError::TooLong { field, len: usize::try_from(len).unwrap_or(usize::MAX), max });
    }
    Ok(len as usize)
}

/// Reads a varint length followed by that many bytes, at most `max`.
#[inline]
pub(crate) fn get_len_bytes<B: Buf>(
    buf: &mut B,
    v: Version,
    field: &'static str,
    max: usize,
) -> Result<Bytes, DecodeError> {
    let len = get_len(buf, v, field, max)?;
    get_bytes(buf, len)
}

/// Writes a varint length and the bytes, refusing more than `max`.
#[inline]
pub(crate) fn put_len_bytes<B: BufMut>(
    buf: &mut B,
    v: Version,
    field: &'static str,
    max: usize,
    bytes: &[u8],
) -> Result<(), EncodeError> {
    if bytes.len() > max {
        return Err(EncodeError::TooLong { field, len: bytes.len(), max });
    }
    put_vi(buf, v, bytes.len() as u64)?;
    buf.put_slice(bytes);
    Ok(())
}

/// Runs `f` on exactly the next `len` bytes of `buf`, which it must consume entirely.
///
/// Inside a length-delimited container, running out of bytes is [`DecodeError::Truncated`], not `Short`.
pub(crate) fn decode_bounded<B: Buf, T>(
    buf: &mut B,
    len: usize,
    what: &'static str,
    f: impl FnOnce(&mut &[u8]) -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    need(buf, len)?;
    // Bodies are small (control messages are at most 64 KiB); a contiguous view keeps the inner decoders simple.
    let chunk = buf.chunk();
    let value = if chunk.len() >= len {
        let mut body = &chunk[..len];
        let value = f(&mut body).map_err(|e| e.within(what))?;
        if !body.is_empty() {
            return Err(DecodeError::TrailingBytes { what, bytes: body.len() });
        }
        value
    } else {
        let copy = buf.copy_to_bytes(len);
        let mut body = &copy[..];
        let value = f(&mut body).map_err(|e| e.within(what))?;
        if !body.is_empty() {
            return Err(DecodeError::TrailingBytes { what, bytes: body.len() });
        }
        return Ok(value);
    };
    buf.advance(len);
    Ok(value)
}

/// Encodes with `f` into `buf` behind a varint length prefix.
pub(crate) fn encode_len_prefixed<B: BufMut>(
    buf: &mut B,
    v: Version,
    field: &'static str,
    max: usize,
    f: impl FnOnce(&mut Vec<u8>) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    let mut inner = Vec::new();
    f(&mut inner)?;
    put_len_bytes(buf, v, field, max, &inner)
}
