//! Waiting for the answer to a request we made: the one place that decides what a REQUEST_ERROR, a missing
//! answer or an unexpected message means.

use std::time::Duration;

use moq_wire::control::{ControlMessage, FetchOk, RequestError, RequestOk, SubscribeOk};
use web_transport_trait::Session as WtSession;

use super::Session;
use super::handles::RequestStream;
use crate::error::{Error, RequestFailure, SessionError};

/// How long a requester waits for the first response on a request stream.
pub(super) const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

/// What an unexpected answer costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OnUnexpected {
    /// The draft's rule: the session closes with PROTOCOL_VIOLATION.
    CloseSession,
    /// Only this request fails (leniency towards a known peer departure).
    FailRequest,
}

/// The answer a request stream may carry, as `accept` picks it.
pub(super) struct Expected<T> {
    /// Takes the expected message; `None` for anything else.
    pub(super) accept: fn(ControlMessage) -> Option<T>,
    /// For the error, e.g. "expected SUBSCRIBE_OK or REQUEST_ERROR".
    pub(super) what: &'static str,
    pub(super) on_unexpected: OnUnexpected,
}

/// REQUEST_OK.
pub(super) const REQUEST_OK: Expected<RequestOk> = Expected {
    accept: |m| match m {
        ControlMessage::RequestOk(ok) => Some(ok),
        _ => None,
    },
    what: "expected REQUEST_OK or REQUEST_ERROR",
    on_unexpected: OnUnexpected::CloseSession,
};

/// REQUEST_OK with no Track Properties: the answer to PUBLISH, PUBLISH_NAMESPACE and SUBSCRIBE_NAMESPACE.
//= draft-ietf-moq-transport-19#message-request-ok
//# they are empty in PUBLISH_OK, REQUEST_UPDATE_OK,
//# SUBSCRIBE_NAMESPACE_OK and PUBLISH_NAMESPACE_OK.  If an endpoint
//# receives Track Properties in one of these messages it MUST close the
//# session with a `PROTOCOL_VIOLATION`.
pub(super) const EMPTY_REQUEST_OK: Expected<RequestOk> = Expected {
    accept: |m| match m {
        ControlMessage::RequestOk(ok) if ok.track_properties.is_empty() => Some(ok),
        _ => None,
    },
    what: "expected REQUEST_OK without Track Properties, or REQUEST_ERROR",
    on_unexpected: OnUnexpected::CloseSession,
};

/// SUBSCRIBE_OK.
pub(super) const SUBSCRIBE_OK: Expected<SubscribeOk> = Expected {
    accept: |m| match m {
        ControlMessage::SubscribeOk(ok) => Some(ok),
        _ => None,
    },
    what: "expected SUBSCRIBE_OK or REQUEST_ERROR",
    on_unexpected: OnUnexpected::CloseSession,
};

/// FETCH_OK. Some draft-18 peers answer FETCH with REQUEST_OK: that fails the FETCH, not the session.
pub(super) const FETCH_OK: Expected<FetchOk> = Expected {
    accept: |m| match m {
        ControlMessage::FetchOk(ok) => Some(ok),
        _ => None,
    },
    what: "expected FETCH_OK or REQUEST_ERROR",
    on_unexpected: OnUnexpected::FailRequest,
};

impl<S: WtSession> Session<S> {
    /// Opens a request stream with `msg` and waits for its answer: the expected message; REQUEST_ERROR fails the
    /// request ([`Error::Request(RequestFailure::Rejected)`]); the stream ending first cancels it; anything else is `expected`'s
    /// violation. `finish` closes our side at once (requests that take no REQUEST_UPDATE).
    pub(super) async fn request<T>(
        &self,
        msg: ControlMessage,
        finish: bool,
        expected: Expected<T>,
    ) -> Result<(RequestStream<S>, T), Error> {
        self.request_within(msg, finish, expected, RESPONSE_TIMEOUT).await
    }

    /// [`Session::request`], waiting `within` for the answer.
    pub(super) async fn request_within<T>(
        &self,
        msg: ControlMessage,
        finish: bool,
        expected: Expected<T>,
        within: Duration,
    ) -> Result<(RequestStream<S>, T), Error> {
        let open_within = self.inner.config.request_open_timeout;
        self.request_opening(msg, finish, expected, open_within, within).await
    }

    /// [`Session::request_within`], waiting at most `open_within` for the peer to allow the request stream.
    pub(super) async fn request_opening<T>(
        &self,
        msg: ControlMessage,
        finish: bool,
        expected: Expected<T>,
        open_within: Duration,
        within: Duration,
    ) -> Result<(RequestStream<S>, T), Error> {
        let (mut writer, mut reader) = self.open_request(msg, open_within).await?;
        if finish {
            writer.finish();
        }
        let answer = tokio::time::timeout(within, reader.request_message(self.inner.version));
        let answer = match answer.await.map_err(|_| Error::Request(RequestFailure::Timeout))?? {
            None => return Err(Error::Request(RequestFailure::Cancelled)),
            Some(ControlMessage::RequestError(e)) => return Err(rejected(e)),
            Some(m) => (m.name(), (expected.accept)(m)),
        };
        match answer {
            (_, Some(ok)) => Ok(((writer, reader), ok)),
            (name, None) => {
                tracing::warn!(message = name, "{}", expected.what);
                let e = Error::Session(SessionError::ProtocolViolation(expected.what));
                Err(match expected.on_unexpected {
                    OnUnexpected::CloseSession => self.fail(e),
                    OnUnexpected::FailRequest => e,
                })
            }
        }
    }
}

pub(super) fn rejected(e: RequestError) -> Error {
    Error::Request(RequestFailure::Rejected { code: e.code, reason: e.reason.0 })
}
