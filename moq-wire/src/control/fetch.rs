//! FETCH and FETCH_OK: retrieving past objects on one unidirectional stream.

use bytes::BufMut;

use super::Message;
use crate::coding::{Decode, Encode, get_u8, get_vi, put_vi};
use crate::ids::{Location, RequestId};
use crate::kvp::Properties;
use crate::namespace::FullTrackName;
use crate::params::{ParamContext, Parameters};
use crate::{DecodeError, EncodeError, Version};

/// What a FETCH asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchType {
    /// Standalone Fetch (0x1): a range of a named track.
    Standalone {
        /// The track.
        track: FullTrackName,
        /// The first location, inclusive.
        start: Location,
        /// One past the last object; `end.object == 0` means the whole of `end.group`.
        end: Location,
    },
    /// Relative Joining Fetch (0x2): `joining_start` groups before the joining subscription's Joining Location.
    RelativeJoining {
        /// The subscription in this session to join.
        joining_request_id: RequestId,
        /// How many groups back to start.
        joining_start: u64,
    },
    /// Absolute Joining Fetch (0x3): from group `joining_start` up to the joining subscription's Joining Location.
    AbsoluteJoining {
        /// The subscription in this session to join.
        joining_request_id: RequestId,
        /// The first group.
        joining_start: u64,
    },
}

impl FetchType {
    /// The Fetch Type code point.
    pub const fn code(&self) -> u64 {
        match self {
            FetchType::Standalone { .. } => 0x1,
            FetchType::RelativeJoining { .. } => 0x2,
            FetchType::AbsoluteJoining { .. } => 0x3,
        }
    }
}

/// FETCH (0x16).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetch {
    /// The request id.
    pub request_id: RequestId,
    /// Standalone or joining, with its fields.
    pub fetch_type: FetchType,
    /// The parameters (SUBSCRIBER_PRIORITY, GROUP_ORDER, AUTHORIZATION_TOKEN, FILL_TIMEOUT, range filters).
    pub params: Parameters,
}

impl Message for Fetch {
    const TYPE: u64 = 0x16;
    const NAME: &'static str = "FETCH";

    fn decode_body(body: &mut &[u8], v: Version) -> Result<Self, DecodeError> {
        let request_id = RequestId::decode(body, v)?;
        let fetch_type = match get_vi(body, v)? {
            0x1 => FetchType::Standalone {
                track: FullTrackName::decode(body, v)?,
                start: Location::decode(body, v)?,
                end: Location::decode(body, v)?,
            },
            0x2 => FetchType::RelativeJoining {
                joining_request_id: RequestId::decode(body, v)?,
                joining_start: get_vi(body, v)?,
            },
            0x3 => FetchType::AbsoluteJoining {
                joining_request_id: RequestId::decode(body, v)?,
                joining_start: get_vi(body, v)?,
            },
            //= draft-ietf-moq-transport-19#message-fetch
            //# An endpoint that receives a Fetch Type other than 0x1, 0x2 or 0x3 MUST close the session with a
            //# `PROTOCOL_VIOLATION`.
            other => {
                return Err(DecodeError::InvalidValue { field: "fetch type", value: other });
            }
        };
        let params = Parameters::decode(body, v, ParamContext::Fetch)?;
        Ok(Fetch { request_id, fetch_type, params })
    }

    fn encode_body<B: BufMut>(&self, buf: &mut B, v: Version) -> Result<(), EncodeError> {
        self.request_id.encode(buf, v)?;
        put_vi(buf, v, self.fetch_type.code())?;
        match &self.fetch_type {
            FetchType::Standalone { track, start, end } => {
                track.encode(buf, v)?;
                start.encode(buf, v)?;
                end.encode(buf, v)?;
            }
            FetchType::RelativeJoining { joining_request_id, joining_start }
            | FetchType::AbsoluteJoining { joining_request_id, joining_start } => {
                joining_request_id.encode(buf, v)?;
                put_vi(buf, v, *joining_start)?;
            }
        }
        self.params.encode(buf, v, ParamContext::Fetch)
    }
}

/// FETCH_OK (0x18).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FetchOk {
    /// Every object of the track has been published and `end_location` covers the last one.
    pub end_of_track: bool,
    /// One past the last object that will be delivered (`object == 0`: all of `group`).
    pub end_location: Location,
    /// The parameters (none are defined for FETCH_OK).
    pub params: Parameters,
    /// The Track Properties.
    pub track_properties: Properties,
}

impl Message for FetchOk {
    const TYPE: u64 = 0x18;
    const NAME: &'static str = "FETCH_OK";

    fn decode_body(body: &mut &[u8], v: Version) -> Result<Self, DecodeError> {
        let end_of_track = match get_u8(body)? {
            0 => false,
            1 => true,
            other => {
                return Err(DecodeError::InvalidValue { field: "end of track", value: other as u64 });
            }
        };
        Ok(FetchOk {
            end_of_track,
            end_location: Location::decode(body, v)?,
            params: Parameters::decode(body, v, ParamContext::FetchOk)?,
            track_properties: Properties::decode_all(body, v)?,
        })
    }

    fn encode_body<B: BufMut>(&self, buf: &mut B, v: Version) -> Result<(), EncodeError> {
        buf.put_u8(self.end_of_track as u8);
        self.end_location.encode(buf, v)?;
        self.params.encode(buf, v, ParamContext::FetchOk)?;
        self.track_properties.encode_all(buf, v)
    }
}
