//! A MoQT session over any WebTransport-like transport (raw QUIC or WebTransport via `web-transport-quinn`, or
//! the in-memory transport used by the tests).
//!
//! # Concurrency design
//!
//! Everything about a session that changes is one plain struct, `State` (`state.rs`), behind one lock that is
//! never held across an `.await`; its methods are the session's rules. `Inner` holds that lock, what never
//! changes (transport, version, role, config) and a few channels. The drivers are tasks, every one of them owned
//! by the session's `Tasks` (`tasks.rs`) and aborted once it has closed:
//!
//! * one task accepts unidirectional streams and spawns a reader per stream (the peer's control stream, subgroup
//!   streams, fetch streams);
//! * one task accepts bidirectional streams and spawns a handler per request;
//! * one task reads datagrams;
//! * every request we make or serve runs in its own task that owns its request stream.
//!
//! A failure that the draft makes fatal (a malformed message, a wrong request id, ...) closes the session with
//! the matching code; request-level failures are answered with REQUEST_ERROR and affect only that request.
//!
//! # Layout
//!
//! | Module | Job |
//! |---|---|
//! | `config` | [`SessionConfig`], [`Stats`], the authorization hook |
//! | `handles` | what the application holds for a request in progress ([`Subscription`], [`FetchResponse`], ...) |
//! | `control` | the control stream: SETUP, GOAWAY |
//! | `subscriber` | requests we make: SUBSCRIBE, TRACK_STATUS, FETCH, SUBSCRIBE_NAMESPACE, SUBSCRIBE_TRACKS |
//! | `publisher` | requests we make: PUBLISH_NAMESPACE, PUBLISH |
//! | `request` | requests the peer makes: validation, dispatch |
//! | `authority` | the one authorization check, the peer's AUTHORIZATION_TOKEN alias cache |
//! | `limits` | what one peer may make a session hold ([`RequestLimits`]) |
//! | `state`, `tasks` | the session's mutable state and its rules; the tasks it owns |
//! | `serve` | serving a subscription: groups, subgroup streams, datagrams, REQUEST_UPDATE |
//! | `fetch`, `fetch_cache`, `namespaces` | serving FETCH (`fetch_cache`: from the cache) and SUBSCRIBE_NAMESPACE |
//! | `receive` | data we receive: subgroup streams, datagrams, fetch streams |

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use moq_wire::codes::{SessionCode, StreamCode};
use moq_wire::control::{ControlMessage, Setup};
use moq_wire::setup::SetupOptions;
use moq_wire::{RequestId, Version};
use tokio::sync::{mpsc, oneshot, watch};
use web_transport_trait::Session as WtSession;

use crate::error::{Error, RequestFailure, SessionError, app_code, from_wt};
use crate::io::{Reader, Writer};
use crate::origin::Origin;
use receive::{run_datagrams, run_uni};
use request::run_bi;
use state::State;
use tasks::{TASK_GRACE, Tasks};

mod answer;
mod authority;
mod config;
mod control;
mod fetch;
mod fetch_cache;
mod handles;
mod limits;
mod malformed;
mod namespaces;
mod overload;
mod publisher;
mod receive;
mod request;
mod request_ids;
mod rules;
mod serve;
mod serve_limits;
mod state;
mod subscribe;
mod subscriber;
mod subscription;
mod tasks;
mod tracks;

pub use config::{
    AckFrequency, Action, AuthContext, Authorizer, Congestion, DEFAULT_IDLE_TIMEOUT, DEFAULT_KEEP_ALIVE,
    DEFAULT_MAX_AUTH_TOKEN_CACHE, DEFAULT_MAX_BIDI_STREAMS, DEFAULT_MAX_UNI_STREAMS, DEFAULT_REQUEST_OPEN_TIMEOUT,
    DEFAULT_SEND_WINDOW, Role, SessionConfig, Stats,
};
pub use handles::{
    Announcement, Event, FetchRange, FetchResponse, NamespaceSubscription, Published, SubscribeOptions, Subscription,
    TrackStatusInfo, TracksSubscription, goaway_url,
};
pub use limits::{RequestLimits, SharedBudget};
pub use overload::Overload;

/// How long after resetting its streams a session closes the transport.
const CLOSE_AFTER_STREAMS: Duration = Duration::from_millis(100);

/// How long to wait for the peer's SETUP.
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);

struct Inner<S: WtSession> {
    transport: S,
    version: Version,
    role: Role,
    config: SessionConfig,
    /// Everything that changes, behind one lock that is never held across an `.await`.
    state: Mutex<State<S::RecvStream>>,
    /// Our control stream, once SETUP is written.
    control: tokio::sync::Mutex<Option<Writer<S::SendStream>>>,
    /// Counts the track aliases added ([`State::incoming`]): readers waiting for one watch it.
    aliases: watch::Sender<u64>,
    events: mpsc::UnboundedSender<Event>,
    events_rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<Event>>,
    /// The peer's SETUP, set before the session is returned.
    peer_setup: OnceLock<SetupOptions>,
    closed: watch::Sender<Option<Error>>,
    /// Every task the session started.
    tasks: Tasks,
    /// The session's qlog ([`SessionConfig::qlog_dir`]).
    qlog: Option<Arc<crate::qlog::Qlog>>,
}

/// A MoQT session. Cheap to clone; every clone is a handle to the same session. When the last handle is dropped
/// the session is closed with NO_ERROR (like a QUIC connection).
pub struct Session<S: WtSession = crate::transport::Transport> {
    inner: Arc<Inner<S>>,
    _handle: Option<Arc<CloseOnDrop>>,
}

/// Closes the session when the last application handle goes away (the session's own tasks hold `Inner`, not
/// this).
struct CloseOnDrop(Box<dyn Fn() + Send + Sync>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        (self.0)()
    }
}

impl<S: WtSession> Clone for Session<S> {
    fn clone(&self) -> Self {
        Session { inner: self.inner.clone(), _handle: self._handle.clone() }
    }
}

impl<S: WtSession> std::fmt::Debug for Session<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("version", &self.inner.version).field("role", &self.inner.role).finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<S: WtSession> Session<S> {
    /// Runs the SETUP exchange on an established transport and starts the session's tasks.
    pub async fn establish(transport: S, version: Version, role: Role, config: SessionConfig) -> Result<Self, Error> {
        let (events, events_rx) = mpsc::unbounded_channel();
        let vantage = if role == Role::Client { "client" } else { "server" };
        let qlog = config.qlog_dir.as_deref().and_then(|dir| {
            crate::qlog::Qlog::create(dir, vantage)
                .inspect_err(|e| tracing::warn!(dir = %dir.display(), error = %e, "cannot write the qlog"))
                .ok()
        });
        let inner = Arc::new(Inner {
            transport,
            version,
            role,
            state: Mutex::new(State::new(role, &config)),
            config,
            control: tokio::sync::Mutex::new(None),
            aliases: watch::Sender::new(0),
            events,
            events_rx: tokio::sync::Mutex::new(events_rx),
            peer_setup: OnceLock::new(),
            closed: watch::Sender::new(None),
            tasks: Tasks::new(),
            qlog,
        });
        let weak = Arc::downgrade(&inner);
        let handle = CloseOnDrop(Box::new(move || {
            if let Some(inner) = weak.upgrade() {
                inner.close(Error::Session(SessionError::Closed {
                    code: SessionCode::NoError,
                    reason: "session dropped".into(),
                }));
            }
        }));
        let session = Session { inner: inner.clone(), _handle: Some(Arc::new(handle)) };

        // Our control stream: SETUP first.
        let mut options = SetupOptions {
            implementation: Some(inner.config.implementation.clone()),
            auth_tokens: inner.config.auth_tokens.clone(),
            max_auth_token_cache_size: (inner.config.max_auth_token_cache > 0)
                .then_some(inner.config.max_auth_token_cache),
            ..Default::default()
        };
        if role == Role::Client {
            options.path = inner.config.path.as_ref().map(|p| Bytes::copy_from_slice(p.as_bytes()));
            options.authority = inner.config.authority.as_ref().map(|a| Bytes::copy_from_slice(a.as_bytes()));
        }
        // One deadline for the whole exchange: opening our control stream may wait too (a QMux peer grants no
        // stream until its transport parameters arrive, and a hostile one never sends them).
        let deadline = tokio::time::Instant::now() + SETUP_TIMEOUT;
        let opened = tokio::time::timeout_at(deadline, async {
            let stream = inner.transport.open_uni().await.map_err(from_wt)?;
            let mut writer = Writer::new(stream).logged(inner.stream_log(true, Some("control")));
            writer.set_priority(i32::MAX);
            writer.message(&ControlMessage::Setup(Setup { options }), version).await?;
            Ok::<_, Error>(writer)
        })
        .await;
        let writer = match opened {
            Ok(Ok(writer)) => writer,
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(session.fail(Error::Session(SessionError::SetupTimeout))),
        };
        *inner.control.lock().await = Some(writer);

        let (setup_tx, setup_rx) = oneshot::channel();
        inner.tasks.spawn(run_uni(inner.clone(), setup_tx));
        let peer = match tokio::time::timeout_at(deadline, setup_rx).await {
            Ok(Ok(Ok(setup))) => setup,
            Ok(Ok(Err(e))) => return Err(session.fail(e)),
            Ok(Err(_)) => return Err(session.closed_error()),
            Err(_) => return Err(session.fail(Error::Session(SessionError::SetupTimeout))),
        };
        //= draft-ietf-moq-transport-19#path
        //# When a PATH parameter is received from a server, or when a PATH parameter is received
        //# while WebTransport is used, ... the session MUST be closed with `INVALID_PATH`.
        if role == Role::Client && peer.path.is_some() {
            return Err(session.fail(Error::Session(SessionError::InvalidPath("PATH from the server"))));
        }
        if role == Role::Client && peer.authority.is_some() {
            return Err(session.fail(Error::Session(SessionError::InvalidAuthority("AUTHORITY from the server"))));
        }
        let taken = inner.state().tokens.take_setup(&peer.auth_tokens, role == Role::Server);
        if let Err(e) = taken {
            return Err(session.fail(e));
        }
        let _ = inner.peer_setup.set(peer);
        inner.tasks.spawn(run_bi(inner.clone()));
        inner.tasks.spawn(run_datagrams(inner.clone()));
        tracing::debug!(%version, ?role, "session established");
        Ok(session)
    }

    /// The negotiated draft version.
    pub fn version(&self) -> Version {
        self.inner.version
    }

    /// Our role.
    pub fn role(&self) -> Role {
        self.inner.role
    }

    /// The peer's SETUP options (PATH, AUTHORITY, tokens, implementation, limits).
    pub fn peer_setup(&self) -> &SetupOptions {
        self.inner.peer_setup.get().expect("set before the session is returned")
    }

    /// The origin this session serves from.
    pub fn origin(&self) -> &Origin {
        &self.inner.config.origin
    }

    /// The underlying transport.
    pub fn transport(&self) -> &S {
        &self.inner.transport
    }

    /// The next thing the peer did ([`Event`]); `None` once the session is closed.
    pub async fn next_event(&self) -> Option<Event> {
        let mut rx = self.inner.events_rx.lock().await;
        let mut closed = self.inner.closed.subscribe();
        tokio::select! {
            e = rx.recv() => e,
            _ = closed.wait_for(|c| c.is_some()) => rx.try_recv().ok(),
        }
    }

    /// Closes the session with a code and reason.
    pub fn close(&self, code: SessionCode, reason: &str) {
        self.inner.close(Error::Session(SessionError::Closed { code, reason: reason.to_string() }));
    }

    /// Closes the session and waits until the transport is closed too, so that the peer is told before the
    /// process exits. [`Session::close`] closes the transport a moment after resetting the streams, from a task
    /// that a runtime shutting down would never run: the peer would see only the reset control stream and keep
    /// the connection until its idle timeout. Call this (and [`crate::quic::Client::wait_idle`]) before exiting.
    pub async fn close_and_wait(&self, code: SessionCode, reason: &str) {
        self.close(code, reason);
        let _ = tokio::time::timeout(CLOSE_AFTER_STREAMS * 3, self.inner.transport.closed()).await;
    }

    /// Waits until the session is closed and returns why.
    pub async fn closed(&self) -> Error {
        let mut rx = self.inner.closed.subscribe();
        // `wait_for` returns a read guard; it must be gone before `closed_error` reads again. (A second read of a
        // lock whose writer is waiting blocks behind it, and the writer waits for the first read: a deadlock.)
        let closed = async move {
            let _ = rx.wait_for(|c| c.is_some()).await;
        };
        tokio::select! {
            e = self.inner.transport.closed() => {
                let e = from_wt(e);
                self.inner.record_closed(e);
                self.closed_error()
            }
            () = closed => self.closed_error(),
        }
    }

    fn closed_error(&self) -> Error {
        self.inner.closed.borrow().clone().unwrap_or(Error::Request(RequestFailure::Cancelled))
    }

    fn fail(&self, e: Error) -> Error {
        self.inner.close(e.clone());
        e
    }

    fn request_id(&self) -> Result<RequestId, Error> {
        if let Some(e) = self.inner.closed.borrow().clone() {
            return Err(e);
        }
        self.inner.state().next_request_id()
    }

    /// Opens a request stream, waiting at most `open_within` for the peer's stream credit, and writes `msg`.
    async fn open_request(
        &self,
        msg: ControlMessage,
        open_within: Duration,
    ) -> Result<(Writer<S::SendStream>, Reader<S::RecvStream>), Error> {
        let open = self.inner.transport.open_bi();
        let (send, recv) = match tokio::time::timeout(open_within, open).await {
            Ok(opened) => opened.map_err(from_wt)?,
            Err(_) => return Err(Error::Request(RequestFailure::Timeout)),
        };
        let log = self.inner.stream_log(true, None);
        let mut writer = Writer::new(send).logged(log.clone());
        writer.set_priority(i32::MAX - 1);
        writer.message(&msg, self.inner.version).await?;
        Ok((writer, Reader::request(recv, self.inner.role == Role::Server).logged(log)))
    }
}

impl<S: WtSession> Inner<S> {
    /// A qlog name for a stream we opened (`local`) or accepted, logging its type when it has one in the schema
    /// ("control", "subgroup_header", "fetch_header"); `None` without a qlog.
    fn stream_log(&self, local: bool, stream_type: Option<&str>) -> Option<crate::qlog::StreamLog> {
        let log = self.qlog.as_ref()?.stream();
        if let Some(ty) = stream_type {
            log.stream_type(local, ty);
        }
        Some(log)
    }

    fn close(&self, e: Error) {
        let first = self.closed.send_if_modified(|c| {
            if c.is_some() {
                return false;
            }
            *c = Some(e.clone());
            true
        });
        if first {
            let code = e.session_code();
            if code != SessionCode::NoError {
                tracing::warn!(error = %e, code = %code, "closing session");
            }
            // Our unidirectional streams end first and the session a moment later: a peer with a read pending on
            // one of them when the session closes can fail badly (Chromium's page process crashes, docs/web.md).
            // Data tasks see `closed` and reset their streams; the control stream is reset here.
            if let Ok(mut control) = self.control.try_lock()
                && let Some(writer) = control.as_mut()
            {
                writer.reset(StreamCode::SessionClosed);
            }
            let (transport, code, reason) = (self.transport.clone(), app_code(code), e.to_string());
            if tokio::runtime::Handle::try_current().is_err() {
                transport.close(code, &reason);
                self.tasks.abort_all();
                return;
            }
            let tasks = self.tasks.clone();
            self.tasks.spawn(async move {
                tokio::time::sleep(CLOSE_AFTER_STREAMS).await;
                transport.close(code, &reason);
                tokio::time::sleep(TASK_GRACE).await;
                // This task is one of them: it ends here too.
                tasks.abort_all();
            });
        }
    }

    /// Remembers why the session ended (the transport already closed), without closing again.
    fn record_closed(&self, e: Error) {
        self.closed.send_if_modified(|c| {
            if c.is_none() {
                *c = Some(e);
                true
            } else {
                false
            }
        });
    }

    /// Validates a Request ID from the peer (parity and uniqueness).
    fn check_peer_request(&self, id: RequestId) -> Result<(), Error> {
        self.state().check_peer_request(id)
    }

    /// The session's state, locked for a short, synchronous change.
    fn state(&self) -> std::sync::MutexGuard<'_, State<S::RecvStream>> {
        lock(&self.state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{self, MemorySession};

    async fn pair() -> (Session<MemorySession>, Session<MemorySession>) {
        let (a, b) = memory::pair(None);
        let v = Version::Draft19;
        let (client, server) = tokio::join!(
            Session::establish(a, v, Role::Client, SessionConfig::default()),
            Session::establish(b, v, Role::Server, SessionConfig::default()),
        );
        (client.unwrap(), server.unwrap())
    }

    /// A peer that never lets us open our control stream (a QMux client that sends no transport parameters) is
    /// dropped at the SETUP deadline, not held for ever.
    #[tokio::test(start_paused = true)]
    async fn a_peer_that_grants_no_stream_fails_setup_in_time() {
        let (_client, server) = memory::pair(None);
        let server = server.without_stream_credit();
        let established = Session::establish(server.clone(), Version::Draft19, Role::Server, SessionConfig::default());
        let e = tokio::time::timeout(SETUP_TIMEOUT + Duration::from_secs(1), established)
            .await
            .expect("SETUP has a deadline")
            .unwrap_err();
        assert!(matches!(e, Error::Session(SessionError::SetupTimeout)), "{e}");
        tokio::time::sleep(CLOSE_AFTER_STREAMS + TASK_GRACE).await;
        assert!(server.close_reason().is_some(), "the transport is closed");
    }

    /// A closed session's tasks end with it: here the GOAWAY timer, which would otherwise hold the session for its
    /// whole timeout.
    #[tokio::test(start_paused = true)]
    async fn a_closed_session_keeps_no_task() {
        let (_client, server) = pair().await;
        server.goaway("", Duration::from_secs(600)).await.unwrap();
        assert!(Arc::strong_count(&server.inner) > 1);
        server.close(SessionCode::NoError, "done");
        tokio::time::sleep(CLOSE_AFTER_STREAMS + TASK_GRACE + Duration::from_millis(10)).await;
        assert_eq!(Arc::strong_count(&server.inner), 1, "a task still holds the session");
    }
}
