//! SUBSCRIBE, SUBSCRIBE_OK, PUBLISH, PUBLISH_DONE and TRACK_STATUS: the subscription messages.

use bytes::BufMut;

use super::Message;
use crate::codes::PublishDoneCode;
use crate::coding::{Decode, Encode, get_vi, put_vi};
use crate::ids::{RequestId, TrackAlias};
use crate::kvp::{Properties, ReasonPhrase};
use crate::namespace::FullTrackName;
use crate::params::{ParamContext, Parameters};
use crate::{DecodeError, EncodeError, Version};

/// SUBSCRIBE (0x03): ask for the objects of a track from now on. Priority, group order, filter and forward
/// state are parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    /// The request id.
    pub request_id: RequestId,
    /// The track.
    pub track: FullTrackName,
    /// The parameters.
    pub params: Parameters,
}

impl Message for Subscribe {
    const TYPE: u64 = 0x03;
    const NAME: &'static str = "SUBSCRIBE";

    fn decode_body(body: &mut &[u8], v: Version) -> Result<Self, DecodeError> {
        Ok(Subscribe {
            request_id: RequestId::decode(body, v)?,
            track: FullTrackName::decode(body, v)?,
            params: Parameters::decode(body, v, ParamContext::Subscribe)?,
        })
    }

    fn encode_body<B: BufMut>(&self, buf: &mut B, v: Version) -> Result<(), EncodeError> {
        self.request_id.encode(buf, v)?;
        self.track.encode(buf, v)?;
        self.params.encode(buf, v, ParamContext::Subscribe)
    }
}

/// SUBSCRIBE_OK (0x04): the subscription is established; data will use `track_alias`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SubscribeOk {
    /// The alias data streams and datagrams use for this track.
    pub track_alias: TrackAlias,
    /// The parameters (EXPIRES, LARGEST_OBJECT).
    pub params: Parameters,
    /// The Track Properties.
    pub track_properties: Properties,
}

impl Message for SubscribeOk {
    const TYPE: u64 = 0x04;
    const NAME: &'static str = "SUBSCRIBE_OK";

    fn decode_body(body: &mut &[u8], v: Version) -> Result<Self, DecodeError> {
        Ok(SubscribeOk {
            track_alias: TrackAlias::decode(body, v)?,
            params: Parameters::decode(body, v, ParamContext::SubscribeOk)?,
            track_properties: Properties::decode_all(body, v)?,
        })
    }

    fn encode_body<B: BufMut>(&self, buf: &mut B, v: Version) -> Result<(), EncodeError> {
        self.track_alias.encode(buf, v)?;
        self.params.encode(buf, v, ParamContext::SubscribeOk)?;
        self.track_properties.encode_all(buf, v)
    }
}

/// PUBLISH (0x1D): a publisher-initiated subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// The request id.
    pub request_id: RequestId,
    /// The track.
    pub track: FullTrackName,
    /// The alias data will use.
    pub track_alias: TrackAlias,
    /// The parameters (AUTHORIZATION_TOKEN, EXPIRES, LARGEST_OBJECT, FORWARD; GROUP_ORDER in -19).
    pub params: Parameters,
    /// The Track Properties.
    pub track_properties: Properties,
}

impl Message for Publish {
    const TYPE: u64 = 0x1D;
    const NAME: &'static str = "PUBLISH";

    fn decode_body(body: &mut &[u8], v: Version) -> Result<Self, DecodeError> {
        Ok(Publish {
            request_id: RequestId::decode(body, v)?,
            track: FullTrackName::decode(body, v)?,
            track_alias: TrackAlias::decode(body, v)?,
            params: Parameters::decode(body, v, ParamContext::Publish)?,
            track_properties: Properties::decode_all(body, v)?,
        })
    }

    fn encode_body<B: BufMut>(&self, buf: &mut B, v: Version) -> Result<(), EncodeError> {
        self.request_id.encode(buf, v)?;
        self.track.encode(buf, v)?;
        self.track_alias.encode(buf, v)?;
        self.params.encode(buf, v, ParamContext::Publish)?;
        self.track_properties.encode_all(buf, v)
    }
}

/// PUBLISH_DONE (0x0B): the last message of the publisher on a subscription stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishDone {
    /// Why the subscription ended.
    pub status: PublishDoneCode,
    /// How many data streams the subscription used; [`PublishDone::UNKNOWN_STREAM_COUNT`] if unknown.
    pub stream_count: u64,
    /// Diagnostic text.
    pub reason: ReasonPhrase,
}

impl PublishDone {
    /// The Stream Count meaning "unknown": 2^62 - 1.
    pub const UNKNOWN_STREAM_COUNT: u64 = (1 << 62) - 1;
}

impl Message for PublishDone {
    const TYPE: u64 = 0x0B;
    const NAME: &'static str = "PUBLISH_DONE";

    fn decode_body(body: &mut &[u8], v: Version) -> Result<Self, DecodeError> {
        Ok(PublishDone {
            status: PublishDoneCode::from(get_vi(body, v)?),
            stream_count: get_vi(body, v)?,
            reason: ReasonPhrase::decode(body, v)?,
        })
    }

    fn encode_body<B: BufMut>(&self, buf: &mut B, v: Version) -> Result<(), EncodeError> {
        put_vi(buf, v, self.status.to_u64())?;
        put_vi(buf, v, self.stream_count)?;
        self.reason.encode(buf, v)
    }
}

/// TRACK_STATUS (0x0D): like SUBSCRIBE, but only asks for the track's state (answered by REQUEST_OK).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackStatus {
    /// The request id.
    pub request_id: RequestId,
    /// The track.
    pub track: FullTrackName,
    /// The parameters (AUTHORIZATION_TOKEN).
    pub params: Parameters,
}

impl Message for TrackStatus {
    const TYPE: u64 = 0x0D;
    const NAME: &'static str = "TRACK_STATUS";

    fn decode_body(body: &mut &[u8], v: Version) -> Result<Self, DecodeError> {
        Ok(TrackStatus {
            request_id: RequestId::decode(body, v)?,
            track: FullTrackName::decode(body, v)?,
            params: Parameters::decode(body, v, ParamContext::TrackStatus)?,
        })
    }

    fn encode_body<B: BufMut>(&self, buf: &mut B, v: Version) -> Result<(), EncodeError> {
        self.request_id.encode(buf, v)?;
        self.track.encode(buf, v)?;
        self.params.encode(buf, v, ParamContext::TrackStatus)
    }
}
