//! The control stream: SETUP, then GOAWAY in both directions.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use moq_wire::codes::SessionCode;
use moq_wire::control::{ControlMessage, GoAway};
use moq_wire::setup::SetupOptions;
use tokio::sync::oneshot;
use web_transport_trait::Session as WtSession;

use super::config::Role;
use super::handles::Event;
use super::{CLOSE_AFTER_STREAMS, Inner, Session};
use crate::error::{Error, RequestFailure, SessionError, from_wt};
use crate::io::Reader;

impl<S: WtSession> Session<S> {
    /// Sends GOAWAY on the control stream. A server may name a new session URI.
    pub async fn goaway(&self, uri: &str, timeout: Duration) -> Result<(), Error> {
        if self.inner.role == Role::Client && !uri.is_empty() {
            return Err(Error::Config("a client must send an empty GOAWAY URI".into()));
        }
        if !self.inner.state().send_goaway() {
            return Ok(());
        }
        let msg = GoAway {
            new_session_uri: Bytes::copy_from_slice(uri.as_bytes()),
            timeout_ms: timeout.as_millis() as u64,
            request_id: None,
        };
        let mut control = self.inner.control.lock().await;
        match control.as_mut() {
            Some(w) => w.message(&msg.into(), self.inner.version).await?,
            None => return Err(Error::Request(RequestFailure::Cancelled)),
        }
        drop(control);
        //= draft-ietf-moq-transport-19#message-goaway
        //# When sent on the control stream, the sender closes the session with `GOAWAY_TIMEOUT` after the
        //# indicated timeout if there are still open requests.
        if !timeout.is_zero() {
            let inner = self.inner.clone();
            let tasks = inner.tasks.clone();
            tasks.spawn(async move {
                tokio::time::sleep(timeout).await;
                inner.close(Error::Session(SessionError::Closed {
                    code: SessionCode::GoawayTimeout,
                    reason: "GOAWAY timeout".into(),
                }));
            });
        }
        Ok(())
    }
}

pub(super) async fn run_control<S: WtSession>(
    inner: Arc<Inner<S>>,
    mut reader: Reader<S::RecvStream>,
    setup_tx: Option<oneshot::Sender<Result<SetupOptions, Error>>>,
) {
    let v = inner.version;
    let setup = match reader.message(v).await {
        Ok(Some(ControlMessage::Setup(s))) => Ok(s.options),
        Ok(_) => Err(Error::protocol("control stream must start with SETUP")),
        Err(e) => Err(e),
    };
    let failed = setup.as_ref().err().cloned();
    if let Some(tx) = setup_tx {
        let _ = tx.send(setup);
    }
    if let Some(e) = failed {
        inner.close(e);
        return;
    }
    let mut goaways = 0;
    loop {
        match reader.message(v).await {
            Ok(Some(ControlMessage::GoAway(g))) => {
                goaways += 1;
                //= draft-ietf-moq-transport-19#message-goaway
                //# The endpoint MUST close the session with a `PROTOCOL_VIOLATION` if it receives more than one GOAWAY
                //# on the control stream or on a single request stream.
                if goaways > 1 {
                    inner.close(Error::protocol("second GOAWAY"));
                    return;
                }
                //# If a server receives a GOAWAY with a non-zero New Session URI Length it MUST close the session
                //# with a `PROTOCOL_VIOLATION`.
                if inner.role == Role::Server && !g.new_session_uri.is_empty() {
                    inner.close(Error::protocol("GOAWAY URI from a client"));
                    return;
                }
                inner.state().goaway_received();
                let _ = inner.events.send(Event::GoAway {
                    uri: String::from_utf8_lossy(&g.new_session_uri).into_owned(),
                    timeout: Duration::from_millis(g.timeout_ms),
                });
            }
            Ok(Some(_)) => {
                inner.close(Error::protocol("unexpected message on the control stream"));
                return;
            }
            Ok(None) => {
                //= draft-ietf-moq-transport-19#session-init
                //# A control stream MUST NOT be closed at the underlying transport layer during the session's
                //# lifetime.  Doing so results in the session being closed as a `PROTOCOL_VIOLATION`.
                if inner.closed.borrow().is_none() {
                    inner.close(Error::protocol("control stream closed"));
                }
                return;
            }
            Err(e) => {
                if inner.closed.borrow().is_some() {
                    return;
                }
                if e.is_session_error() {
                    return inner.close(e);
                }
                // A peer closing the session resets its control stream a moment before it closes the transport
                // (ours does the same): wait for that close and take its reason, rather than answering a clean
                // exit with PROTOCOL_VIOLATION. A reset with no close behind it is a violation.
                match tokio::time::timeout(CLOSE_AFTER_STREAMS * 3, inner.transport.closed()).await {
                    Ok(closed) => inner.record_closed(from_wt(closed)),
                    Err(_) => inner.close(Error::protocol("control stream reset")),
                }
                return;
            }
        }
    }
}
