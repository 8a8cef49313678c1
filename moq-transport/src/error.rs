//! The transport layer's errors, in three layers with their wire codes mapped here and nowhere else:
//!
//! * [`SessionError`] ends the whole session; [`SessionError::code`] is its session close code.
//! * [`RequestFailure`] ends one request; [`RequestFailure::code`] is its REQUEST_ERROR code.
//! * [`StreamError`] ends one data stream; a peer's reset carries its [`StreamCode`].
//!
//! [`Error`] is any of them, or a local failure (encoding, TLS, configuration, the application's own writes).
//! [`app_code`] is the one conversion of a code to the 32-bit application error code of the QUIC / WebTransport
//! layer.

use moq_wire::codes::{RequestErrorCode, SessionCode, StreamCode};
use moq_wire::{DecodeError, EncodeError, GroupId, ObjectId};

/// Anything that can go wrong in a session or a request.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The session ended, or must.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// One request failed.
    #[error(transparent)]
    Request(#[from] RequestFailure),
    /// One data stream failed.
    #[error(transparent)]
    Stream(#[from] StreamError),
    /// We could not encode a message (a bug or an invalid value from the application).
    #[error("encode error: {0}")]
    Encode(#[from] EncodeError),
    /// The QUIC / WebTransport layer failed.
    #[error("transport error: {0}")]
    Transport(String),
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

/// What ends a session.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The peer sent bytes that do not decode.
    #[error("decode error: {0}")]
    Decode(#[from] DecodeError),
    /// The peer broke a rule of the draft.
    #[error("protocol violation: {0}")]
    ProtocolViolation(&'static str),
    /// The peer used a Request ID of the wrong parity or twice.
    #[error("invalid request id {0}")]
    InvalidRequestId(u64),
    /// The peer reused a track alias for another track.
    #[error("duplicate track alias {0}")]
    DuplicateTrackAlias(u64),
    /// PATH was used where the draft forbids it.
    #[error("invalid path: {0}")]
    InvalidPath(&'static str),
    /// AUTHORITY was used where the draft forbids it.
    #[error("invalid authority: {0}")]
    InvalidAuthority(&'static str),
    /// No common draft version (ALPN or WebTransport protocol).
    #[error("no common MoQT version")]
    VersionNegotiation,
    /// The peer's SETUP did not come in time.
    #[error("no SETUP in time")]
    SetupTimeout,
    /// The session was closed, by either side.
    #[error("session closed: {code} {reason:?}")]
    Closed {
        /// The session close code.
        code: SessionCode,
        /// The reason.
        reason: String,
    },
}

impl SessionError {
    /// The session close code (draft-18/19 §3.4).
    pub fn code(&self) -> SessionCode {
        match self {
            SessionError::Decode(e) => SessionCode::from(e.code()),
            SessionError::ProtocolViolation(_) => SessionCode::ProtocolViolation,
            SessionError::InvalidRequestId(_) => SessionCode::InvalidRequestId,
            SessionError::DuplicateTrackAlias(_) => SessionCode::DuplicateTrackAlias,
            SessionError::InvalidPath(_) => SessionCode::InvalidPath,
            SessionError::InvalidAuthority(_) => SessionCode::InvalidAuthority,
            SessionError::VersionNegotiation => SessionCode::VersionNegotiationFailed,
            SessionError::SetupTimeout => SessionCode::ControlMessageTimeout,
            SessionError::Closed { code, .. } => *code,
        }
    }
}

/// What ends one request.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum RequestFailure {
    /// The peer rejected the request with REQUEST_ERROR.
    #[error("request rejected: {code} {reason:?}")]
    Rejected {
        /// The REQUEST_ERROR code.
        code: RequestErrorCode,
        /// The reason phrase.
        reason: String,
    },
    /// The peer sent GOAWAY; no new requests.
    #[error("peer is going away")]
    GoingAway,
    /// The request was not answered, or could not be opened, in time.
    #[error("timed out")]
    Timeout,
    /// The request was cancelled.
    #[error("cancelled")]
    Cancelled,
}

impl RequestFailure {
    /// The REQUEST_ERROR code that tells a requester of ours (a relay's viewer, say) why.
    pub fn code(&self) -> RequestErrorCode {
        match self {
            RequestFailure::Rejected { code, .. } => *code,
            RequestFailure::GoingAway => RequestErrorCode::GoingAway,
            RequestFailure::Timeout => RequestErrorCode::Timeout,
            RequestFailure::Cancelled => RequestErrorCode::InternalError,
        }
    }
}

/// What ends one data stream.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// The peer reset the stream, or stopped our side, with this code.
    #[error("stream reset by peer with code {0}")]
    Reset(u32),
    /// An object payload above the limit we accept; the stream is abandoned.
    #[error("object payload of {0} bytes is too large")]
    ObjectTooLarge(usize),
}

impl StreamError {
    /// The peer's reset code, as the draft's stream code.
    pub fn code(&self) -> Option<StreamCode> {
        match self {
            StreamError::Reset(code) => Some(StreamCode::from(u64::from(*code))),
            StreamError::ObjectTooLarge(_) => None,
        }
    }
}

impl From<DecodeError> for Error {
    fn from(e: DecodeError) -> Error {
        Error::Session(SessionError::Decode(e))
    }
}

impl Error {
    /// The session close code to close with when this error ends a session (draft-18/19 §3.4).
    pub fn session_code(&self) -> SessionCode {
        match self {
            Error::Session(e) => e.code(),
            _ => SessionCode::InternalError,
        }
    }

    /// Whether the peer broke a rule that ends the whole session (as opposed to one request or stream, or a
    /// session that has just ended).
    pub fn is_session_error(&self) -> bool {
        matches!(self, Error::Session(e) if !matches!(e, SessionError::Closed { .. }))
    }

    /// The session's end, when this is one.
    pub fn closed(code: SessionCode, reason: impl Into<String>) -> Error {
        Error::Session(SessionError::Closed { code, reason: reason.into() })
    }

    /// A rule of the draft the peer broke, ending the session.
    pub(crate) fn protocol(rule: &'static str) -> Error {
        Error::Session(SessionError::ProtocolViolation(rule))
    }

    /// The peer's REQUEST_ERROR.
    pub fn rejected(code: RequestErrorCode, reason: impl Into<String>) -> Error {
        Error::Request(RequestFailure::Rejected { code, reason: reason.into() })
    }

    /// The REQUEST_ERROR code this error should be passed on with, when a request of ours failed with it.
    pub fn request_code(&self) -> RequestErrorCode {
        match self {
            Error::Request(e) => e.code(),
            _ => RequestErrorCode::InternalError,
        }
    }

    pub(crate) fn transport(e: impl std::fmt::Display) -> Error {
        Error::Transport(e.to_string())
    }
}

/// A code as the 32-bit application error code of a QUIC or WebTransport stream or session. The draft's codes
/// are all small; a larger one (never defined) saturates rather than wrapping to another code.
pub fn app_code(code: impl Into<u64>) -> u32 {
    u32::try_from(code.into()).unwrap_or(u32::MAX)
}

/// Converts a web-transport error, keeping stream reset codes.
pub(crate) fn from_wt<E: web_transport_trait::Error>(e: E) -> Error {
    if let Some(code) = e.stream_error() {
        return Error::Stream(StreamError::Reset(code));
    }
    if let Some((code, reason)) = e.session_error() {
        return Error::closed(SessionCode::from(code as u64), reason);
    }
    Error::transport(e)
}
