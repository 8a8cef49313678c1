//! Control messages (draft-18/19 §9): SETUP and GOAWAY on the control streams, everything else on request streams.
//!
//! Every message is framed as `Type (vi64), Length (16), Body`. The body must be consumed exactly: a field that
//! runs past the length is [`DecodeError::Truncated`], bytes left over are [`DecodeError::TrailingBytes`]; both
//! close the session with `PROTOCOL_VIOLATION`.

pub mod compat;
mod fetch;
mod namespace;
mod request;
mod setup;
mod subscribe;

pub use fetch::{Fetch, FetchOk, FetchType};
pub use namespace::{Namespace, NamespaceDone, PublishNamespace, PublishSkipped, SubscribeNamespace, SubscribeTracks};
pub use request::{Redirect, RequestError, RequestOk, RequestUpdate};
pub use setup::{GoAway, MAX_GOAWAY_URI_LEN, Setup};
pub use subscribe::{Publish, PublishDone, Subscribe, SubscribeOk, TrackStatus};

use bytes::{Buf, BufMut, BytesMut};

use crate::coding::{Decode, decode_bounded, get_u16, get_vi, need, put_vi};
use crate::{DecodeError, EncodeError, Version};

/// The largest control message body: the Length field is 16 bits.
pub const MAX_MESSAGE_LEN: usize = u16::MAX as usize;

/// The body of one control message type.
pub trait Message: Sized {
    /// The Message Type.
    const TYPE: u64;
    /// The draft's name for the message.
    const NAME: &'static str;

    /// Reads the body, which is exactly the bytes of `body`.
    fn decode_body(body: &mut &[u8], v: Version) -> Result<Self, DecodeError>;

    /// Writes the body.
    fn encode_body<B: BufMut>(&self, buf: &mut B, v: Version) -> Result<(), EncodeError>;
}

/// Writes `Type, Length, Body` for one message into `out`, filling in the length after the body is written.
/// On error, `out` is left as it was.
pub fn encode_framed<M: Message>(msg: &M, out: &mut BytesMut, v: Version) -> Result<(), EncodeError> {
    let start = out.len();
    let result = (|| {
        put_vi(out, v, M::TYPE)?;
        let len_at = out.len();
        out.put_u16(0);
        msg.encode_body(out, v)?;
        let len = out.len() - len_at - 2;
        if len > MAX_MESSAGE_LEN {
            return Err(EncodeError::TooLong { field: M::NAME, len, max: MAX_MESSAGE_LEN });
        }
        out[len_at..len_at + 2].copy_from_slice(&(len as u16).to_be_bytes());
        Ok(())
    })();
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// The framing of a control message, readable before its body has arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// The Message Type.
    pub message_type: u64,
    /// The body length.
    pub body_len: usize,
    /// The bytes taken by type and length.
    pub header_len: usize,
}

impl FrameHeader {
    /// Reads the type and length at the front of `data` without consuming anything. Unknown types are rejected
    /// here, before waiting for a body that will never be valid.
    pub fn peek(data: &[u8], v: Version) -> Result<FrameHeader, DecodeError> {
        let mut cursor = data;
        let message_type = get_vi(&mut cursor, v)?;
        if !ControlMessage::is_known_type(message_type, v) {
            return Err(DecodeError::UnknownType { kind: "control message", value: message_type });
        }
        let body_len = get_u16(&mut cursor)? as usize;
        Ok(FrameHeader { message_type, body_len, header_len: data.len() - cursor.len() })
    }

    /// The length of the whole message.
    pub fn total_len(&self) -> usize {
        self.header_len + self.body_len
    }
}

macro_rules! control_messages {
    ($( $(#[$doc:meta])* $variant:ident ),* $(,)?) => {
        /// Any control message.
        #[derive(Debug, Clone, PartialEq, Eq)]
        #[allow(clippy::large_enum_variant)]
        pub enum ControlMessage {
            $( $(#[$doc])* $variant($variant), )*
        }

        impl ControlMessage {
            /// The Message Type.
            pub fn message_type(&self) -> u64 {
                match self {
                    $( ControlMessage::$variant(_) => <$variant as Message>::TYPE, )*
                }
            }

            /// The draft's name (draft-19 names; PUBLISH_SKIPPED is PUBLISH_BLOCKED in -18).
            pub fn name(&self) -> &'static str {
                match self {
                    $( ControlMessage::$variant(_) => <$variant as Message>::NAME, )*
                }
            }

            /// Whether `ty` is a message type of version `v`.
            pub fn is_known_type(ty: u64, v: Version) -> bool {
                match ty {
                    $( <$variant as Message>::TYPE => true, )*
                    // draft-18 still lists 0x1E as PUBLISH_OK, an alias of REQUEST_OK.
                    LEGACY_PUBLISH_OK => v == Version::Draft18,
                    _ => false,
                }
            }

            fn decode_body(ty: u64, body: &mut &[u8], v: Version) -> Result<ControlMessage, DecodeError> {
                match ty {
                    $( <$variant as Message>::TYPE => $variant::decode_body(body, v).map(ControlMessage::$variant), )*
                    LEGACY_PUBLISH_OK if v == Version::Draft18 => RequestOk::decode_body(body, v).map(ControlMessage::RequestOk),
                    other => Err(DecodeError::UnknownType { kind: "control message", value: other }),
                }
            }

            /// Appends the framed message to `out`; on error `out` is unchanged.
            pub fn encode(&self, out: &mut BytesMut, v: Version) -> Result<(), EncodeError> {
                match self {
                    $( ControlMessage::$variant(m) => encode_framed(m, out, v), )*
                }
            }
        }

        $(
            impl From<$variant> for ControlMessage {
                fn from(m: $variant) -> ControlMessage {
                    ControlMessage::$variant(m)
                }
            }
        )*
    };
}

/// The -18 table's stale code for PUBLISH_OK, accepted as REQUEST_OK when decoding -18.
const LEGACY_PUBLISH_OK: u64 = 0x1E;

control_messages! {
    /// SETUP (0x2F00).
    Setup,
    /// GOAWAY (0x10).
    GoAway,
    /// SUBSCRIBE (0x03).
    Subscribe,
    /// SUBSCRIBE_OK (0x04).
    SubscribeOk,
    /// REQUEST_UPDATE (0x02).
    RequestUpdate,
    /// PUBLISH (0x1D).
    Publish,
    /// PUBLISH_DONE (0x0B).
    PublishDone,
    /// FETCH (0x16).
    Fetch,
    /// FETCH_OK (0x18).
    FetchOk,
    /// TRACK_STATUS (0x0D).
    TrackStatus,
    /// PUBLISH_NAMESPACE (0x06).
    PublishNamespace,
    /// SUBSCRIBE_NAMESPACE (0x50).
    SubscribeNamespace,
    /// SUBSCRIBE_TRACKS (0x51).
    SubscribeTracks,
    /// NAMESPACE (0x08).
    Namespace,
    /// NAMESPACE_DONE (0x0E).
    NamespaceDone,
    /// PUBLISH_SKIPPED (0x0F; PUBLISH_BLOCKED in -18).
    PublishSkipped,
    /// REQUEST_OK (0x07).
    RequestOk,
    /// REQUEST_ERROR (0x05).
    RequestError,
}

impl ControlMessage {
    /// Whether this message may open a request stream (draft-18/19 §3.3.2): TRACK_STATUS, SUBSCRIBE, PUBLISH,
    /// FETCH, PUBLISH_NAMESPACE, SUBSCRIBE_NAMESPACE or SUBSCRIBE_TRACKS.
    pub fn is_request(&self) -> bool {
        matches!(
            self,
            ControlMessage::TrackStatus(_)
                | ControlMessage::Subscribe(_)
                | ControlMessage::Publish(_)
                | ControlMessage::Fetch(_)
                | ControlMessage::PublishNamespace(_)
                | ControlMessage::SubscribeNamespace(_)
                | ControlMessage::SubscribeTracks(_)
        )
    }

    /// Encodes into a new vector.
    pub fn encode_to_vec(&self, v: Version) -> Result<Vec<u8>, EncodeError> {
        let mut out = BytesMut::new();
        self.encode(&mut out, v)?;
        Ok(out.to_vec())
    }
}

impl Decode for ControlMessage {
    fn decode<B: Buf>(buf: &mut B, v: Version) -> Result<Self, DecodeError> {
        let ty = get_vi(buf, v)?;
        if !ControlMessage::is_known_type(ty, v) {
            //= draft-ietf-moq-transport-19#message
            //# An endpoint that receives an unknown message type MUST close the session.
            return Err(DecodeError::UnknownType { kind: "control message", value: ty });
        }
        let len = get_u16(buf)? as usize;
        need(buf, len)?;
        //# If the length does not match the length of the Message Body, the receiver MUST close the session
        //# with a `PROTOCOL_VIOLATION`.
        decode_bounded(buf, len, "control message", |body| ControlMessage::decode_body(ty, body, v))
    }
}
