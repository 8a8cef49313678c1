//! SETUP and GOAWAY: the messages of the unidirectional control streams.

use bytes::{BufMut, Bytes};

use super::Message;
use crate::coding::{Decode, Encode, get_len_bytes, get_vi, put_len_bytes, put_vi};
use crate::ids::RequestId;
use crate::setup::SetupOptions;
use crate::{DecodeError, EncodeError, Version};

/// SETUP (0x2F00): the first message on each endpoint's control stream. Its type doubles as the stream type.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Setup {
    /// The Setup Options.
    pub options: SetupOptions,
}

impl Message for Setup {
    const TYPE: u64 = 0x2F00;
    const NAME: &'static str = "SETUP";

    fn decode_body(body: &mut &[u8], v: Version) -> Result<Self, DecodeError> {
        Ok(Setup { options: SetupOptions::decode_all(body, v)? })
    }

    fn encode_body<B: BufMut>(&self, buf: &mut B, v: Version) -> Result<(), EncodeError> {
        self.options.encode_all(buf, v)
    }
}

/// The longest New Session URI.
pub const MAX_GOAWAY_URI_LEN: usize = 8192;

/// GOAWAY (0x10): the sender will close the session (on the control stream) or the request (on a request stream).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GoAway {
    /// Where to reconnect; empty means the current URI. Clients always send it empty.
    pub new_session_uri: Bytes,
    /// How long, in ms, the sender waits before closing; 0 means no specific timeout.
    pub timeout_ms: u64,
    /// Draft-18 only, control stream only: the smallest peer Request ID that was not (or might not have been)
    /// processed. Removed in draft-19.
    pub request_id: Option<RequestId>,
}

impl Message for GoAway {
    const TYPE: u64 = 0x10;
    const NAME: &'static str = "GOAWAY";

    fn decode_body(body: &mut &[u8], v: Version) -> Result<Self, DecodeError> {
        //= draft-ietf-moq-transport-19#message-goaway
        //# The maximum length of the New Session URI is 8,192 bytes.  If an endpoint receives a length
        //# exceeding the maximum, it MUST close the session with a `PROTOCOL_VIOLATION`.
        let new_session_uri = get_len_bytes(body, v, "new session URI", MAX_GOAWAY_URI_LEN)?;
        let timeout_ms = get_vi(body, v)?;
        // -18: "Present only when sent on the control stream", so its presence is told by the body length.
        let request_id =
            if v == Version::Draft18 && !body.is_empty() { Some(RequestId::decode(body, v)?) } else { None };
        Ok(GoAway { new_session_uri, timeout_ms, request_id })
    }

    fn encode_body<B: BufMut>(&self, buf: &mut B, v: Version) -> Result<(), EncodeError> {
        put_len_bytes(buf, v, "new session URI", MAX_GOAWAY_URI_LEN, &self.new_session_uri)?;
        put_vi(buf, v, self.timeout_ms)?;
        if let Some(id) = self.request_id {
            if v != Version::Draft18 {
                return Err(EncodeError::Unsupported { field: "GOAWAY Request ID", version: v });
            }
            id.encode(buf, v)?;
        }
        Ok(())
    }
}
