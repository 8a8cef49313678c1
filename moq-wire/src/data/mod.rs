//! The data plane (draft-18/19 §10): unidirectional stream types, subgroup and fetch streams, datagrams, padding.
//!
//! Data streams are not length-framed. A reader decodes the stream header once, then object headers one at a
//! time; each object header says how many payload bytes follow, and the payload is handed on as `Bytes` without
//! being copied or parsed. The per-stream readers ([`SubgroupReader`], [`FetchReader`]) keep the little state the
//! draft's delta encodings need and only update it when a decode succeeds.

mod datagram;
mod fetch;
mod subgroup;

pub use datagram::{Datagram, DatagramContent, ObjectDatagram, PADDING_DATAGRAM_TYPE};
pub use fetch::{
    END_OF_NON_EXISTENT_RANGE, END_OF_UNKNOWN_RANGE, EndOfRange, FetchEntry, FetchHeader, FetchObject, FetchReader,
    FetchWriter,
};
pub use subgroup::{Object, ObjectHeader, SubgroupHeader, SubgroupIdMode, SubgroupReader, SubgroupWriter};

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::coding::{Decode, get_vi, put_vi};
use crate::{DecodeError, EncodeError, Version};

/// The stream type of a FETCH_HEADER stream.
pub const FETCH_STREAM_TYPE: u64 = 0x05;
/// The stream type of a control stream, which is also the SETUP message type.
pub const CONTROL_STREAM_TYPE: u64 = 0x2F00;
/// The stream type of a padding stream.
pub const PADDING_STREAM_TYPE: u64 = 0x132B_3E28;

/// What a unidirectional stream carries, from its first varint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// A control stream: the type is the SETUP message's type, so decode a
    /// [`ControlMessage`](crate::control::ControlMessage) from the very start of the stream.
    Control,
    /// A SUBGROUP_HEADER stream with this type byte.
    Subgroup(u8),
    /// A FETCH_HEADER stream.
    Fetch,
    /// A padding stream: discard everything.
    Padding,
}

impl StreamKind {
    /// Looks at the stream type at the front of `data` without consuming it.
    pub fn peek(data: &[u8], v: Version) -> Result<StreamKind, DecodeError> {
        let mut cursor = data;
        let ty = get_vi(&mut cursor, v)?;
        StreamKind::from_type(ty)
    }

    /// Classifies a stream type value.
    pub fn from_type(ty: u64) -> Result<StreamKind, DecodeError> {
        match ty {
            FETCH_STREAM_TYPE => Ok(StreamKind::Fetch),
            CONTROL_STREAM_TYPE => Ok(StreamKind::Control),
            PADDING_STREAM_TYPE => Ok(StreamKind::Padding),
            t if SubgroupHeader::is_valid_type(t) => Ok(StreamKind::Subgroup(t as u8)),
            //= draft-ietf-moq-transport-19#stream-types
            //# An endpoint that receives an unknown stream type MUST close the session.
            t => Err(DecodeError::UnknownType { kind: "stream", value: t }),
        }
    }
}

/// The header of a data stream (every unidirectional stream except the control stream).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataStreamHeader {
    /// SUBGROUP_HEADER.
    Subgroup(SubgroupHeader),
    /// FETCH_HEADER.
    Fetch(FetchHeader),
    /// PADDING: the rest of the stream is zero bytes to discard.
    Padding,
}

impl Decode for DataStreamHeader {
    fn decode<B: Buf>(buf: &mut B, v: Version) -> Result<Self, DecodeError> {
        let ty = get_vi(buf, v)?;
        match StreamKind::from_type(ty)? {
            StreamKind::Subgroup(t) => SubgroupHeader::decode_after_type(t, buf, v).map(DataStreamHeader::Subgroup),
            StreamKind::Fetch => FetchHeader::decode_after_type(buf, v).map(DataStreamHeader::Fetch),
            StreamKind::Padding => Ok(DataStreamHeader::Padding),
            StreamKind::Control => Err(DecodeError::Malformed("control stream is not a data stream")),
        }
    }
}

impl crate::Encode for DataStreamHeader {
    fn encode<B: BufMut>(&self, buf: &mut B, v: Version) -> Result<(), EncodeError> {
        match self {
            DataStreamHeader::Subgroup(h) => h.encode(buf, v),
            DataStreamHeader::Fetch(h) => h.encode(buf, v),
            DataStreamHeader::Padding => put_vi(buf, v, PADDING_STREAM_TYPE),
        }
    }
}

/// Splits `len` payload bytes off the front of `buf` without copying, or reports how many more are needed.
pub fn take_payload(buf: &mut BytesMut, len: usize) -> Result<Bytes, DecodeError> {
    if buf.len() < len {
        return Err(DecodeError::Short { needed: len - buf.len() });
    }
    Ok(buf.split_to(len).freeze())
}

/// Converts a wire payload length to `usize`.
pub(crate) fn payload_len(len: u64) -> Result<usize, DecodeError> {
    usize::try_from(len).map_err(|_| DecodeError::TooLong { field: "object payload", len: usize::MAX, max: usize::MAX })
}
