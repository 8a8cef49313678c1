//! The transport layer's error, with the single mapping to the draft's session close codes.

use moq_wire::codes::{RequestErrorCode, SessionCode};
use moq_wire::{DecodeError, EncodeError, GroupId, ObjectId};

/// Anything that can go wrong in a session or a request.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The peer sent bytes that do not decode.
    #[error("decode error: {0}")]
    Decode(#[from] DecodeError),
    /// We could not encode a message (a bug or an invalid value from the application).
    #[error("encode error: {0}")]
    Encode(#[from] EncodeError),
    /// The peer broke a rule of the draft.
    #[error("protocol violation: {0}")]
    ProtocolViolation(&'static str),
    /// The peer used a Request ID of the wrong parity or twice.
    #[error("invalid request id {0}")]
    InvalidRequestId(u64),
    /// The peer reused a track alias for another track.
    #[error("duplicate track alias {0}")]
    DuplicateTrackAlias(u64),
    /// PATH or AUTHORITY was used where the draft forbids it.
    #[error("invalid path or authority: {0}")]
    InvalidPath(&'static str),
    /// No common draft version (ALPN or WebTransport protocol).
    #[error("no common MoQT version")]
    VersionNegotiation,
    /// The peer rejected a request with REQUEST_ERROR.
    #[error("request rejected: {code} {reason:?}")]
    Rejected {
        /// The REQUEST_ERROR code.
        code: RequestErrorCode,
        /// The reason phrase.
        reason: String,
    },
    /// The session was closed, by either side.
    #[error("session closed: {code} {reason:?}")]
    Closed {
        /// The session close code.
        code: SessionCode,
        /// The reason.
        reason: String,
    },
    /// The QUIC / WebTransport layer failed.
    #[error("transport error: {0}")]
    Transport(String),
    /// A stream was reset or stopped by the peer with this code.
    #[error("stream reset by peer with code {0}")]
    StreamReset(u32),
    /// The request was cancelled.
    #[error("cancelled")]
    Cancelled,
    /// An object payload above the limit we accept; the stream is abandoned.
    #[error("object payload of {0} bytes is too large")]
    ObjectTooLarge(usize),
    /// AUTHORITY was used where the draft forbids it.
    #[error("invalid authority: {0}")]
    InvalidAuthority(&'static str),
    /// The peer sent GOAWAY; no new requests.
    #[error("peer is going away")]
    GoingAway,
    /// A timeout expired.
    #[error("timed out")]
    Timeout,
    /// Object ids within a subgroup must increase.
    #[error("object {0} is not after the previous object")]
    InvalidObject(ObjectId),
    /// Group ids within a track must increase.
    #[error("group {0} is not after the previous group")]
    InvalidGroup(GroupId),
    /// TLS or certificate setup failed.
    #[error("tls: {0}")]
    Tls(String),
    /// A bad URL or configuration.
    #[error("invalid configuration: {0}")]
    Config(String),
}

impl Error {
    /// The session termination code to close with when this error ends a session (draft-18/19 §3.4).
    pub fn session_code(&self) -> SessionCode {
        match self {
            Error::Decode(e) => SessionCode::from(e.code()),
            Error::ProtocolViolation(_) => SessionCode::ProtocolViolation,
            Error::InvalidRequestId(_) => SessionCode::InvalidRequestId,
            Error::DuplicateTrackAlias(_) => SessionCode::DuplicateTrackAlias,
            Error::InvalidPath(_) => SessionCode::InvalidPath,
            Error::InvalidAuthority(_) => SessionCode::InvalidAuthority,
            Error::VersionNegotiation => SessionCode::VersionNegotiationFailed,
            Error::Closed { code, .. } => *code,
            Error::Timeout => SessionCode::ControlMessageTimeout,
            _ => SessionCode::InternalError,
        }
    }

    /// Whether this error ends the whole session (as opposed to one request).
    pub fn is_session_error(&self) -> bool {
        matches!(
            self,
            Error::Decode(_)
                | Error::ProtocolViolation(_)
                | Error::InvalidRequestId(_)
                | Error::DuplicateTrackAlias(_)
                | Error::InvalidPath(_)
                | Error::InvalidAuthority(_)
                | Error::VersionNegotiation
        )
    }

    pub(crate) fn transport(e: impl std::fmt::Display) -> Error {
        Error::Transport(e.to_string())
    }
}

/// Converts a web-transport error, keeping stream reset codes.
pub(crate) fn from_wt<E: web_transport_trait::Error>(e: E) -> Error {
    if let Some(code) = e.stream_error() {
        return Error::StreamReset(code);
    }
    if let Some((code, reason)) = e.session_error() {
        return Error::Closed { code: SessionCode::from(code as u64), reason };
    }
    Error::transport(e)
}
