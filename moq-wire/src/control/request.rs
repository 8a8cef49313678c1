//! REQUEST_OK, REQUEST_ERROR (with Redirect) and REQUEST_UPDATE: the generic request-stream messages.

use bytes::{BufMut, Bytes};

use super::Message;
use crate::codes::RequestErrorCode;
use crate::coding::{Decode, Encode, get_len_bytes, get_vi, put_len_bytes, put_vi};
use crate::ids::RequestId;
use crate::kvp::{Properties, ReasonPhrase};
use crate::namespace::{FullTrackName, TrackName, TrackNamespace};
use crate::params::{ParamContext, Parameters};
use crate::{DecodeError, EncodeError, Version};

/// REQUEST_OK (0x07): the positive answer to PUBLISH (PUBLISH_OK), REQUEST_UPDATE, TRACK_STATUS,
/// SUBSCRIBE_NAMESPACE, SUBSCRIBE_TRACKS and PUBLISH_NAMESPACE.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestOk {
    /// The parameters.
    pub params: Parameters,
    /// Track Properties: only a TRACK_STATUS answer may carry any.
    pub track_properties: Properties,
}

impl Message for RequestOk {
    const TYPE: u64 = 0x07;
    const NAME: &'static str = "REQUEST_OK";

    fn decode_body(body: &mut &[u8], v: Version) -> Result<Self, DecodeError> {
        Ok(RequestOk {
            params: Parameters::decode(body, v, ParamContext::RequestOk)?,
            track_properties: Properties::decode_all(body, v)?,
        })
    }

    fn encode_body<B: BufMut>(&self, buf: &mut B, v: Version) -> Result<(), EncodeError> {
        self.params.encode(buf, v, ParamContext::RequestOk)?;
        self.track_properties.encode_all(buf, v)
    }
}

/// Where a REDIRECT sends the requester.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Redirect {
    /// The session to use; empty means the current one.
    pub connect_uri: Bytes,
    /// The namespace to ask for; with an empty `name` too, the original one.
    pub namespace: TrackNamespace,
    /// The track name to ask for (empty for namespace-scoped requests).
    pub name: TrackName,
}

/// REQUEST_ERROR (0x05): the negative answer to any request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestError {
    /// Why.
    pub code: RequestErrorCode,
    /// 0: do not retry; otherwise one more than the minimum wait in ms before retrying.
    pub retry_interval: u64,
    /// Diagnostic text.
    pub reason: ReasonPhrase,
    /// Present exactly when `code` is [`RequestErrorCode::Redirect`].
    pub redirect: Option<Redirect>,
}

impl RequestError {
    /// A REQUEST_ERROR with no retry and no redirect.
    pub fn new(code: RequestErrorCode, reason: impl Into<String>) -> RequestError {
        RequestError { code, retry_interval: 0, reason: ReasonPhrase(reason.into()), redirect: None }
    }
}

impl Message for RequestError {
    const TYPE: u64 = 0x05;
    const NAME: &'static str = "REQUEST_ERROR";

    fn decode_body(body: &mut &[u8], v: Version) -> Result<Self, DecodeError> {
        let code = RequestErrorCode::from_wire(get_vi(body, v)?, v);
        let retry_interval = get_vi(body, v)?;
        let reason = ReasonPhrase::decode(body, v)?;
        let redirect = if code == RequestErrorCode::Redirect {
            // No maximum is given for the Connect URI; the message length bounds it.
            let connect_uri = get_len_bytes(body, v, "connect URI", u16::MAX as usize)?;
            let track = FullTrackName::decode(body, v)?;
            Some(Redirect { connect_uri, namespace: track.namespace, name: track.name })
        } else {
            None
        };
        Ok(RequestError { code, retry_interval, reason, redirect })
    }

    fn encode_body<B: BufMut>(&self, buf: &mut B, v: Version) -> Result<(), EncodeError> {
        if self.redirect.is_some() != (self.code == RequestErrorCode::Redirect) {
            return Err(EncodeError::InvalidValue {
                field: "redirect without REDIRECT code",
                value: self.code.to_u64(),
            });
        }
        put_vi(buf, v, self.code.to_u64())?;
        put_vi(buf, v, self.retry_interval)?;
        self.reason.encode(buf, v)?;
        if let Some(r) = &self.redirect {
            put_len_bytes(buf, v, "connect URI", u16::MAX as usize, &r.connect_uri)?;
            FullTrackName { namespace: r.namespace.clone(), name: r.name.clone() }.encode(buf, v)?;
        }
        Ok(())
    }
}

/// REQUEST_UPDATE (0x02): change the parameters of the request whose stream carries it. Takes a new Request ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestUpdate {
    /// The new request id of this update.
    pub request_id: RequestId,
    /// The parameters to change; omitted ones keep their value.
    pub params: Parameters,
}

impl Message for RequestUpdate {
    const TYPE: u64 = 0x02;
    const NAME: &'static str = "REQUEST_UPDATE";

    fn decode_body(body: &mut &[u8], v: Version) -> Result<Self, DecodeError> {
        Ok(RequestUpdate {
            request_id: RequestId::decode(body, v)?,
            params: Parameters::decode(body, v, ParamContext::RequestUpdate)?,
        })
    }

    fn encode_body<B: BufMut>(&self, buf: &mut B, v: Version) -> Result<(), EncodeError> {
        self.request_id.encode(buf, v)?;
        self.params.encode(buf, v, ParamContext::RequestUpdate)
    }
}
