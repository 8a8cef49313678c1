//! A MoQT session over any WebTransport-like transport (raw QUIC or WebTransport via `web-transport-quinn`, or
//! the in-memory transport used by the tests).
//!
//! # Concurrency design
//!
//! A session is a set of small tasks that share one `Inner` (behind an `Arc`):
//!
//! * one task accepts unidirectional streams and spawns a reader per stream (the peer's control stream, subgroup
//!   streams, fetch streams);
//! * one task accepts bidirectional streams and spawns a handler per request;
//! * one task reads datagrams;
//! * every request we make or serve runs in its own task that owns its request stream.
//!
//! No task holds a lock across an `.await`; the maps in `Inner` are short critical sections. A failure that the
//! draft makes fatal (a malformed message, a wrong request id, ...) closes the session with the matching code;
//! request-level failures are answered with REQUEST_ERROR and affect only that request.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use moq_wire::codes::{PublishDoneCode, RequestErrorCode, SessionCode, StreamCode};
use moq_wire::control::*;
use moq_wire::data::{
    DataStreamHeader, Datagram, DatagramContent, FetchEntry, FetchHeader, FetchObject, FetchReader, FetchWriter,
    ObjectDatagram, ObjectHeader, StreamKind, SubgroupHeader, SubgroupIdMode, SubgroupReader, SubgroupWriter,
};
use moq_wire::kvp::{Properties, ReasonPhrase, property};
use moq_wire::namespace::{FullTrackName, TrackNamespace};
use moq_wire::params::{LocationFilter, Parameters};
use moq_wire::setup::SetupOptions;
use moq_wire::token::AuthToken;
use moq_wire::{
    Encode, GroupId, GroupOrder, Location, ObjectId, ObjectStatus, RequestId, SubgroupId, TrackAlias, Version,
};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;
use web_transport_trait::Session as WtSession;

use crate::error::{Error, from_wt};
use crate::io::{Reader, Writer};
use crate::model::*;
use crate::origin::{NamespaceEvent, Origin};

static EMPTY_NAMESPACE: TrackNamespace = TrackNamespace::empty();

/// How long to wait for the peer's SETUP.
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a data stream for an unknown track alias is held before it is abandoned.
const ALIAS_WAIT: Duration = Duration::from_secs(2);
/// Groups of one subscription being written at once; older ones are reset (TOO_FAR_BEHIND) beyond this.
const MAX_GROUPS_IN_FLIGHT: usize = 4;

/// Which end of the connection we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We connected (even Request IDs).
    Client,
    /// We accepted (odd Request IDs).
    Server,
}

/// Settings for one session.
#[derive(Clone)]
pub struct SessionConfig {
    /// What we publish to the peer.
    pub origin: Origin,
    /// Sent as MOQT_IMPLEMENTATION.
    pub implementation: String,
    /// Client over raw QUIC only: PATH (path and query of the `moqt://` URL).
    pub path: Option<String>,
    /// Client over raw QUIC only: AUTHORITY of the `moqt://` URL.
    pub authority: Option<String>,
    /// Session-level AUTHORIZATION_TOKEN options to send in SETUP.
    pub auth_tokens: Vec<AuthToken>,
    /// Groups kept per received track.
    pub window: usize,
    /// Decides whether the peer may make each request (none: everything is allowed).
    pub authorizer: Option<Authorizer>,
    /// Server side, WebTransport only: the path and query of the CONNECT request (set by `quic::Server`).
    pub connect_path: Option<String>,
    /// Counters this session adds to (shared between sessions, e.g. for a relay's metrics).
    pub stats: Arc<Stats>,
    /// Payload bytes kept per received track beyond its newest group (see `TrackProducer::with_limits`).
    pub max_cache_bytes: u64,
    /// Bidirectional streams the peer may have open at once (one per request: subscriptions, fetches,
    /// announcements). QUIC transports only. quinn reserves state for every allowed stream when a connection
    /// starts, so this and [`SessionConfig::max_uni_streams`] set most of an idle connection's memory.
    pub max_bidi_streams: u32,
    /// Unidirectional streams the peer may have open at once (one per subgroup in flight). QUIC transports only.
    pub max_uni_streams: u32,
}

/// The default [`SessionConfig::max_bidi_streams`].
pub const DEFAULT_MAX_BIDI_STREAMS: u32 = 128;
/// The default [`SessionConfig::max_uni_streams`].
pub const DEFAULT_MAX_UNI_STREAMS: u32 = 256;

/// Data-plane counters, shared by every session given the same `Arc`.
#[derive(Debug, Default)]
pub struct Stats {
    /// Objects received on subgroup streams and datagrams.
    pub objects_in: AtomicU64,
    /// Payload bytes received.
    pub bytes_in: AtomicU64,
    /// Objects sent on subgroup streams and datagrams.
    pub objects_out: AtomicU64,
    /// Payload bytes sent.
    pub bytes_out: AtomicU64,
    /// Groups a subscriber lost because it fell too far behind (streams reset with TOO_FAR_BEHIND).
    pub groups_skipped: AtomicU64,
    /// Subgroup streams reset because an object outlived its delivery timeout.
    pub delivery_timeouts: AtomicU64,
}

impl std::fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionConfig")
            .field("origin", &self.origin)
            .field("implementation", &self.implementation)
            .field("path", &self.path)
            .field("authority", &self.authority)
            .field("window", &self.window)
            .field("authorizer", &self.authorizer.is_some())
            .field("connect_path", &self.connect_path)
            .field("max_cache_bytes", &self.max_cache_bytes)
            .field("max_bidi_streams", &self.max_bidi_streams)
            .field("max_uni_streams", &self.max_uni_streams)
            .finish()
    }
}

/// What a request asks to do, for authorization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// PUBLISH_NAMESPACE or PUBLISH.
    Publish,
    /// SUBSCRIBE, FETCH, TRACK_STATUS, SUBSCRIBE_NAMESPACE or SUBSCRIBE_TRACKS.
    Subscribe,
}

/// Everything a server knows about who is asking.
#[derive(Debug, Clone)]
pub struct AuthContext<'a> {
    /// The request path with its query: the WebTransport URL's, or the PATH setup option on raw QUIC.
    pub path: Option<&'a str>,
    /// AUTHORIZATION_TOKENs from the peer's SETUP.
    pub setup_tokens: &'a [AuthToken],
    /// AUTHORIZATION_TOKEN parameters of this request.
    pub request_tokens: &'a [AuthToken],
}

/// Authorization hook: may the peer perform `Action` on this namespace? Refused requests get REQUEST_ERROR
/// UNAUTHORIZED.
pub type Authorizer = Arc<dyn Fn(&AuthContext<'_>, Action, &TrackNamespace) -> bool + Send + Sync>;

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            origin: Origin::new(),
            implementation: concat!("moq-rs/", env!("CARGO_PKG_VERSION")).to_string(),
            path: None,
            authority: None,
            auth_tokens: Vec::new(),
            window: DEFAULT_GROUP_WINDOW,
            authorizer: None,
            connect_path: None,
            stats: Arc::default(),
            max_cache_bytes: u64::MAX,
            max_bidi_streams: DEFAULT_MAX_BIDI_STREAMS,
            max_uni_streams: DEFAULT_MAX_UNI_STREAMS,
        }
    }
}

/// Something the peer did that the application may want to act on.
#[derive(Debug)]
pub enum Event {
    /// The peer published a namespace (PUBLISH_NAMESPACE); we accepted it.
    Announced(TrackNamespace),
    /// The peer withdrew a namespace.
    Unannounced(TrackNamespace),
    /// The peer pushed a track (PUBLISH); we accepted it. Its objects arrive in this track: read them with
    /// `consume()` / `consume_from_start()`, or put it in an [`Origin`] to serve it on.
    Published(TrackProducer),
    /// The peer sent GOAWAY on the control stream.
    GoAway {
        /// Where to reconnect (empty: the same URI).
        uri: String,
        /// How long the peer waits before closing.
        timeout: Duration,
    },
}

/// Options of an outgoing SUBSCRIBE.
#[derive(Debug, Clone)]
pub struct SubscribeOptions {
    /// OBJECT_DELIVERY_TIMEOUT: objects older than this are not sent (their stream is reset).
    pub delivery_timeout: Option<Duration>,
    /// SUBSCRIBER_PRIORITY (lower is more important).
    pub priority: u8,
    /// GROUP_ORDER, or the publisher's default.
    pub group_order: Option<GroupOrder>,
    /// LOCATION_FILTER, or none (from the current group on).
    pub filter: Option<LocationFilter>,
    /// FORWARD.
    pub forward: bool,
    /// AUTHORIZATION_TOKEN parameters.
    pub auth_tokens: Vec<AuthToken>,
}

impl Default for SubscribeOptions {
    fn default() -> Self {
        SubscribeOptions {
            delivery_timeout: None,
            priority: 128,
            group_order: None,
            filter: None,
            forward: true,
            auth_tokens: Vec::new(),
        }
    }
}

/// An established subscription. Dropping it cancels the subscription (stream reset + STOP_SENDING).
#[derive(Debug)]
pub struct Subscription {
    /// Our Request ID.
    pub request_id: RequestId,
    /// The publisher's alias for the track.
    pub track_alias: TrackAlias,
    /// LARGEST_OBJECT from SUBSCRIBE_OK.
    pub largest: Option<Location>,
    /// Track Properties from SUBSCRIBE_OK.
    pub track_properties: Properties,
    consumer: TrackConsumer,
    producer: TrackProducer,
    updates: mpsc::UnboundedSender<(Parameters, oneshot::Sender<Result<RequestOk, Error>>)>,
}

impl Subscription {
    /// The received track. Clone it for more readers.
    pub fn consumer(&self) -> TrackConsumer {
        self.consumer.clone()
    }

    /// The received track as a producer handle, to put it in an [`Origin`] and serve it on (a relay). It ends
    /// when the subscription ends.
    pub fn track(&self) -> TrackProducer {
        self.producer.clone()
    }

    /// Sends REQUEST_UPDATE (e.g. `forward: Some(false)` to pause) and waits for the answer.
    pub async fn update(&self, params: Parameters) -> Result<RequestOk, Error> {
        let (tx, rx) = oneshot::channel();
        self.updates.send((params, tx)).map_err(|_| Error::Cancelled)?;
        rx.await.map_err(|_| Error::Cancelled)?
    }
}

/// A namespace we published with PUBLISH_NAMESPACE. Dropping it withdraws the namespace.
#[derive(Debug)]
pub struct Announcement {
    /// The namespace.
    pub namespace: TrackNamespace,
    _cancel: oneshot::Sender<()>,
}

/// A SUBSCRIBE_NAMESPACE in progress: yields namespaces as the peer publishes and withdraws them.
#[derive(Debug)]
pub struct NamespaceSubscription {
    /// The prefix asked for.
    pub prefix: TrackNamespace,
    events: mpsc::UnboundedReceiver<NamespaceEvent>,
}

impl NamespaceSubscription {
    /// The next change (full namespaces, prefix included); `None` when the subscription ended.
    pub async fn next(&mut self) -> Option<NamespaceEvent> {
        self.events.recv().await
    }
}

/// A SUBSCRIBE_TRACKS in progress: the peer PUBLISHes matching tracks, which arrive as [`Event::Published`].
/// Dropping it cancels the request.
#[derive(Debug)]
pub struct TracksSubscription {
    /// The prefix asked for.
    pub prefix: TrackNamespace,
    _cancel: oneshot::Sender<()>,
}

/// A track we push with PUBLISH; dropping it ends the publication.
#[derive(Debug)]
pub struct Published {
    /// Our Request ID.
    pub request_id: RequestId,
    /// The alias we chose.
    pub track_alias: TrackAlias,
    _cancel: oneshot::Sender<()>,
}

/// The answer to TRACK_STATUS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackStatusInfo {
    /// The largest location the peer has seen, if any.
    pub largest: Option<Location>,
    /// The track's properties.
    pub track_properties: Properties,
}

/// What a FETCH asks for.
#[derive(Debug, Clone)]
pub enum FetchRange {
    /// Objects of `track` from `start` (inclusive) to `end` (exclusive; `end.object == 0` means all of
    /// `end.group`).
    Standalone {
        /// The track.
        track: FullTrackName,
        /// First location.
        start: Location,
        /// End, exclusive.
        end: Location,
    },
    /// The `groups_back` groups before the joining location of one of our subscriptions (Relative Joining).
    Joining {
        /// The subscription's Request ID.
        subscription: RequestId,
        /// How many groups before the current one.
        groups_back: u64,
    },
}

/// One object of a FETCH response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedObject {
    /// Its location.
    pub location: Location,
    /// Its subgroup (`None` for datagram objects).
    pub subgroup: Option<SubgroupId>,
    /// Publisher priority.
    pub priority: u8,
    /// Object Properties.
    pub properties: Properties,
    /// The payload.
    pub payload: Bytes,
}

/// Both halves of a request stream.
type RequestStream<S> = (Writer<<S as WtSession>::SendStream>, Reader<<S as WtSession>::RecvStream>);

/// The objects of a FETCH, as they arrive.
pub struct FetchResponse<S: WtSession> {
    /// From FETCH_OK: whether the range reaches the end of the track.
    pub end_of_track: bool,
    /// From FETCH_OK: the end of the range (exclusive).
    pub end_location: Location,
    reader: Option<(Reader<S::RecvStream>, FetchReader)>,
    pending: Option<oneshot::Receiver<Reader<S::RecvStream>>>,
    /// The request stream stays open until the response is complete: dropping its receive side would send
    /// STOP_SENDING, which cancels the FETCH.
    request: Option<RequestStream<S>>,
    order: GroupOrder,
    version: Version,
}

impl<S: WtSession> std::fmt::Debug for FetchResponse<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FetchResponse")
            .field("end_of_track", &self.end_of_track)
            .field("end_location", &self.end_location)
            .finish()
    }
}

impl<S: WtSession> FetchResponse<S> {
    /// The next object, or `None` when the response is complete.
    pub async fn next(&mut self) -> Result<Option<FetchedObject>, Error> {
        if self.reader.is_none() {
            let Some(rx) = self.pending.take() else {
                return Ok(None);
            };
            let reader = tokio::time::timeout(Duration::from_secs(10), rx)
                .await
                .map_err(|_| Error::Timeout)?
                .map_err(|_| Error::Cancelled)?;
            self.reader = Some((reader, FetchReader::new(self.order, self.version)));
        }
        let Some((reader, state)) = self.reader.as_mut() else {
            return Ok(None);
        };
        loop {
            let Some(entry) = reader.decode_with(|b| state.decode_entry(b)).await? else {
                // Complete: release the request stream.
                self.request = None;
                return Ok(None);
            };
            match entry {
                FetchEntry::EndOfRange(_) => continue,
                FetchEntry::Object(o) => {
                    let payload = reader.payload(o.payload_len).await?;
                    return Ok(Some(FetchedObject {
                        location: o.location(),
                        subgroup: o.subgroup_id,
                        priority: o.publisher_priority,
                        properties: o.properties,
                        payload,
                    }));
                }
            }
        }
    }
}

/// Receive state of a track we get objects for (our SUBSCRIBE, or the peer's PUBLISH).
struct Incoming {
    producer: TrackProducer,
    /// Data streams received for this track (to wait for PUBLISH_DONE's Stream Count).
    streams: AtomicU64,
    groups: Mutex<BTreeMap<u64, GroupProducer>>,
    window: usize,
}

impl Incoming {
    /// A new subgroup producer in group `group`, creating the group if it is newer than all others.
    fn subgroup(&self, group: u64, subgroup: u64, priority: u8) -> Option<SubgroupProducer> {
        let mut groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(g) = groups.get(&group) {
            return Some(g.create_subgroup(subgroup, priority));
        }
        if groups.last_key_value().is_some_and(|(latest, _)| *latest > group) {
            // An older group that we never saw: too late for a live track.
            return None;
        }
        let g = self.producer.create_group(group).ok()?;
        let sg = g.create_subgroup(subgroup, priority);
        // A newer group has started: the older ones get no more subgroups (live delivery; a subgroup stream of
        // an older group arriving later is dropped above). Without this, readers that walk a group's subgroups
        // would wait until the group left the window.
        for older in groups.values() {
            older.finish();
        }
        groups.insert(group, g);
        while groups.len() > self.window {
            groups.pop_first();
        }
        Some(sg)
    }

    fn finish_group(&self, group: u64) {
        if let Some(g) = self.groups.lock().unwrap_or_else(|e| e.into_inner()).get(&group) {
            g.finish();
        }
    }
}

/// A subscription the peer made that we serve, kept for joining FETCH.
struct Served {
    track: TrackProducer,
    state: SubState,
}

struct Inner<S: WtSession> {
    transport: S,
    version: Version,
    role: Role,
    config: SessionConfig,
    next_request: AtomicU64,
    next_alias: AtomicU64,
    control: tokio::sync::Mutex<Option<Writer<S::SendStream>>>,
    incoming: Mutex<HashMap<u64, Arc<Incoming>>>,
    alias_added: tokio::sync::Notify,
    fetches: Mutex<HashMap<u64, oneshot::Sender<Reader<S::RecvStream>>>>,
    served: Mutex<HashMap<u64, Served>>,
    peer_ids: Mutex<HashSet<u64>>,
    namespace_prefixes: Mutex<Vec<TrackNamespace>>,
    events: mpsc::UnboundedSender<Event>,
    events_rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<Event>>,
    peer_setup: OnceLock<SetupOptions>,
    goaway_received: AtomicBool,
    goaway_sent: AtomicBool,
    closed: watch::Sender<Option<Error>>,
}

/// A MoQT session. Cheap to clone; every clone is a handle to the same session. When the last handle is dropped
/// the session is closed with NO_ERROR (like a QUIC connection).
pub struct Session<S: WtSession = web_transport_quinn::Session> {
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
        let inner = Arc::new(Inner {
            transport,
            version,
            role,
            next_request: AtomicU64::new(if role == Role::Client { 0 } else { 1 }),
            next_alias: AtomicU64::new(0),
            config,
            control: tokio::sync::Mutex::new(None),
            incoming: Mutex::default(),
            alias_added: tokio::sync::Notify::new(),
            fetches: Mutex::default(),
            served: Mutex::default(),
            peer_ids: Mutex::default(),
            namespace_prefixes: Mutex::default(),
            events,
            events_rx: tokio::sync::Mutex::new(events_rx),
            peer_setup: OnceLock::new(),
            goaway_received: AtomicBool::new(false),
            goaway_sent: AtomicBool::new(false),
            closed: watch::Sender::new(None),
        });
        let weak = Arc::downgrade(&inner);
        let handle = CloseOnDrop(Box::new(move || {
            if let Some(inner) = weak.upgrade() {
                inner.close(Error::Closed { code: SessionCode::NoError, reason: "session dropped".into() });
            }
        }));
        let session = Session { inner: inner.clone(), _handle: Some(Arc::new(handle)) };

        // Our control stream: SETUP first.
        let mut options = SetupOptions {
            implementation: Some(inner.config.implementation.clone()),
            auth_tokens: inner.config.auth_tokens.clone(),
            ..Default::default()
        };
        if role == Role::Client {
            options.path = inner.config.path.as_ref().map(|p| Bytes::copy_from_slice(p.as_bytes()));
            options.authority = inner.config.authority.as_ref().map(|a| Bytes::copy_from_slice(a.as_bytes()));
        }
        let stream = inner.transport.open_uni().await.map_err(from_wt)?;
        let mut writer = Writer::new(stream);
        writer.set_priority(i32::MAX);
        writer.message(&ControlMessage::Setup(Setup { options }), version).await?;
        *inner.control.lock().await = Some(writer);

        let (setup_tx, setup_rx) = oneshot::channel();
        tokio::spawn(run_uni(inner.clone(), setup_tx));
        let peer = match tokio::time::timeout(SETUP_TIMEOUT, setup_rx).await {
            Ok(Ok(Ok(setup))) => setup,
            Ok(Ok(Err(e))) => return Err(session.fail(e)),
            Ok(Err(_)) => return Err(session.closed_error()),
            Err(_) => return Err(session.fail(Error::Timeout)),
        };
        //= draft-ietf-moq-transport-19#path
        //# When a PATH parameter is received from a server, or when a PATH parameter is received
        //# while WebTransport is used, ... the session MUST be closed with `INVALID_PATH`.
        if role == Role::Client && peer.path.is_some() {
            return Err(session.fail(Error::InvalidPath("PATH from the server")));
        }
        if role == Role::Client && peer.authority.is_some() {
            return Err(session.fail(Error::InvalidAuthority("AUTHORITY from the server")));
        }
        let _ = inner.peer_setup.set(peer);
        tokio::spawn(run_bi(inner.clone()));
        tokio::spawn(run_datagrams(inner.clone()));
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
        self.inner.close(Error::Closed { code, reason: reason.to_string() });
    }

    /// Waits until the session is closed and returns why.
    pub async fn closed(&self) -> Error {
        let mut rx = self.inner.closed.subscribe();
        tokio::select! {
            e = self.inner.transport.closed() => {
                let e = from_wt(e);
                self.inner.record_closed(e);
                self.closed_error()
            }
            _ = rx.wait_for(|c| c.is_some()) => self.closed_error(),
        }
    }

    fn closed_error(&self) -> Error {
        self.inner.closed.borrow().clone().unwrap_or(Error::Cancelled)
    }

    fn fail(&self, e: Error) -> Error {
        self.inner.close(e.clone());
        e
    }

    fn request_id(&self) -> Result<RequestId, Error> {
        if self.inner.goaway_received.load(Ordering::Relaxed) {
            return Err(Error::GoingAway);
        }
        if let Some(e) = self.inner.closed.borrow().clone() {
            return Err(e);
        }
        Ok(RequestId(self.inner.next_request.fetch_add(2, Ordering::Relaxed)))
    }

    async fn open_request(&self, msg: ControlMessage) -> Result<(Writer<S::SendStream>, Reader<S::RecvStream>), Error> {
        let (send, recv) = self.inner.transport.open_bi().await.map_err(from_wt)?;
        let mut writer = Writer::new(send);
        writer.set_priority(i32::MAX - 1);
        writer.message(&msg, self.inner.version).await?;
        Ok((writer, Reader::new(recv)))
    }

    /// Publishes a namespace to the peer (PUBLISH_NAMESPACE) and waits for REQUEST_OK.
    pub async fn publish_namespace(&self, namespace: TrackNamespace) -> Result<Announcement, Error> {
        let request_id = self.request_id()?;
        let msg = PublishNamespace { request_id, namespace: namespace.clone(), params: Parameters::default() };
        let (mut writer, mut reader) = self.open_request(msg.into()).await?;
        match response(&mut reader, self.inner.version).await? {
            Some(ControlMessage::RequestOk(_)) => {}
            Some(ControlMessage::RequestError(e)) => return Err(rejected(e)),
            _ => {
                return Err(self.fail(Error::ProtocolViolation("expected REQUEST_OK or REQUEST_ERROR")));
            }
        }
        let (cancel, cancelled) = oneshot::channel::<()>();
        tokio::spawn(async move {
            tokio::select! {
                _ = cancelled => {}
                _ = reader.finished() => {}
            }
            // Withdraw: cancel the request stream in both directions.
            writer.reset(StreamCode::Cancelled.to_u64() as u32);
            reader.stop(StreamCode::Cancelled.to_u64() as u32);
        });
        Ok(Announcement { namespace, _cancel: cancel })
    }

    /// Subscribes to a track and waits for SUBSCRIBE_OK.
    pub async fn subscribe(&self, track: FullTrackName, options: SubscribeOptions) -> Result<Subscription, Error> {
        let v = self.inner.version;
        let request_id = self.request_id()?;
        let params = Parameters {
            forward: Some(options.forward),
            subscriber_priority: Some(options.priority),
            group_order: options.group_order,
            location_filter: options.filter,
            auth_tokens: options.auth_tokens.clone(),
            object_delivery_timeout: options.delivery_timeout.map(|d| d.as_millis() as u64),
            ..Default::default()
        };
        let msg = Subscribe { request_id, track: track.clone(), params };
        let (mut writer, mut reader) = self.open_request(msg.into()).await?;
        let ok = match response(&mut reader, v).await? {
            Some(ControlMessage::SubscribeOk(ok)) => ok,
            Some(ControlMessage::RequestError(e)) => return Err(rejected(e)),
            None => return Err(Error::Cancelled),
            Some(_) => {
                return Err(self.fail(Error::ProtocolViolation("expected SUBSCRIBE_OK or REQUEST_ERROR")));
            }
        };
        let mut info = TrackInfo::new(track);
        info.properties = ok.track_properties.clone();
        if let Some(p) = ok.track_properties.get_int(property::DEFAULT_PUBLISHER_PRIORITY) {
            info.priority = p.min(255) as u8;
        }
        let producer = TrackProducer::with_limits(info, self.inner.config.window, self.inner.config.max_cache_bytes);
        let consumer = producer.consume_from_start();
        let alias = ok.track_alias;
        self.inner.add_alias(alias.0, producer.clone())?;
        let producer_handle = producer.clone();

        let (updates, mut update_rx) =
            mpsc::unbounded_channel::<(Parameters, oneshot::Sender<Result<RequestOk, Error>>)>();
        let inner = self.inner.clone();
        tokio::spawn(async move {
            let mut waiting: std::collections::VecDeque<oneshot::Sender<Result<RequestOk, Error>>> = Default::default();
            let mut expected_streams = None;
            let end = loop {
                tokio::select! {
                    msg = reader.message(v) => match msg {
                        Ok(Some(ControlMessage::PublishDone(done))) => {
                            expected_streams = Some(done.stream_count);
                            break match done.status {
                                PublishDoneCode::TrackEnded | PublishDoneCode::SubscriptionEnded => TrackEnd::Ended,
                                other => TrackEnd::Error(other.to_u64()),
                            };
                        }
                        Ok(Some(ControlMessage::RequestOk(ok))) => {
                            if let Some(tx) = waiting.pop_front() { let _ = tx.send(Ok(ok)); }
                        }
                        Ok(Some(ControlMessage::RequestError(e))) => {
                            if let Some(tx) = waiting.pop_front() { let _ = tx.send(Err(rejected(e))); }
                        }
                        Ok(Some(_)) => {
                            inner.close(Error::ProtocolViolation("unexpected message on a subscription"));
                            break TrackEnd::Error(PublishDoneCode::InternalError.to_u64());
                        }
                        Ok(None) => break TrackEnd::Error(PublishDoneCode::InternalError.to_u64()),
                        Err(e) => {
                            if e.is_session_error() { inner.close(e); }
                            break TrackEnd::Error(PublishDoneCode::InternalError.to_u64());
                        }
                    },
                    update = update_rx.recv() => match update {
                        Some((params, tx)) => {
                            let request_id = match inner.goaway_received.load(Ordering::Relaxed) {
                                true => { let _ = tx.send(Err(Error::GoingAway)); continue; }
                                false => RequestId(inner.next_request.fetch_add(2, Ordering::Relaxed)),
                            };
                            let msg = ControlMessage::RequestUpdate(RequestUpdate { request_id, params });
                            match writer.message(&msg, v).await {
                                Ok(()) => waiting.push_back(tx),
                                Err(e) => { let _ = tx.send(Err(e)); }
                            }
                        }
                        None => {
                            // The Subscription was dropped: cancel.
                            writer.reset(StreamCode::Cancelled.to_u64() as u32);
                            reader.stop(StreamCode::Cancelled.to_u64() as u32);
                            break TrackEnd::Error(StreamCode::Cancelled.to_u64());
                        }
                    },
                }
            };
            inner.end_incoming(alias.0, &producer, end, expected_streams).await;
        });

        Ok(Subscription {
            request_id,
            track_alias: alias,
            largest: ok.params.largest_object,
            track_properties: ok.track_properties,
            consumer,
            producer: producer_handle,
            updates,
        })
    }

    /// Asks for the status of a track (TRACK_STATUS).
    pub async fn track_status(&self, track: FullTrackName) -> Result<TrackStatusInfo, Error> {
        let request_id = self.request_id()?;
        let msg = TrackStatus { request_id, track, params: Parameters::default() };
        let (mut writer, mut reader) = self.open_request(msg.into()).await?;
        writer.finish();
        match response(&mut reader, self.inner.version).await? {
            Some(ControlMessage::RequestOk(ok)) => {
                Ok(TrackStatusInfo { largest: ok.params.largest_object, track_properties: ok.track_properties })
            }
            Some(ControlMessage::RequestError(e)) => Err(rejected(e)),
            None => Err(Error::Cancelled),
            Some(_) => Err(self.fail(Error::ProtocolViolation("expected REQUEST_OK or REQUEST_ERROR"))),
        }
    }

    /// Fetches past objects (FETCH) and waits for FETCH_OK.
    pub async fn fetch(&self, range: FetchRange, order: GroupOrder) -> Result<FetchResponse<S>, Error> {
        let request_id = self.request_id()?;
        let fetch_type = match range {
            FetchRange::Standalone { track, start, end } => FetchType::Standalone { track, start, end },
            FetchRange::Joining { subscription, groups_back } => {
                FetchType::RelativeJoining { joining_request_id: subscription, joining_start: groups_back }
            }
        };
        let params = Parameters { group_order: Some(order), ..Default::default() };
        let (tx, rx) = oneshot::channel();
        lock(&self.inner.fetches).insert(request_id.0, tx);
        let msg = Fetch { request_id, fetch_type, params };
        let result = async {
            let (mut writer, mut reader) = self.open_request(msg.into()).await?;
            writer.finish();
            match response(&mut reader, self.inner.version).await? {
                Some(ControlMessage::FetchOk(ok)) => Ok((ok, writer, reader)),
                Some(ControlMessage::RequestError(e)) => Err(rejected(e)),
                None => Err(Error::Cancelled),
                // Some draft-18 peers answer FETCH with REQUEST_OK: fail this request, not the session.
                Some(other) => {
                    tracing::warn!(message = other.name(), "unexpected answer to FETCH");
                    Err(Error::ProtocolViolation("expected FETCH_OK or REQUEST_ERROR"))
                }
            }
        }
        .await;
        let (ok, writer, reader) = match result {
            Ok(ok) => ok,
            Err(e) => {
                lock(&self.inner.fetches).remove(&request_id.0);
                return Err(e);
            }
        };
        Ok(FetchResponse {
            end_of_track: ok.end_of_track,
            end_location: ok.end_location,
            reader: None,
            pending: Some(rx),
            request: Some((writer, reader)),
            order,
            version: self.inner.version,
        })
    }

    /// Follows the namespaces the peer publishes under `prefix` (SUBSCRIBE_NAMESPACE).
    pub async fn subscribe_namespace(&self, prefix: TrackNamespace) -> Result<NamespaceSubscription, Error> {
        let v = self.inner.version;
        let request_id = self.request_id()?;
        let msg = SubscribeNamespace { request_id, prefix: prefix.clone(), params: Parameters::default() };
        let (writer, mut reader) = self.open_request(msg.into()).await?;
        match response(&mut reader, v).await? {
            Some(ControlMessage::RequestOk(_)) => {}
            Some(ControlMessage::RequestError(e)) => return Err(rejected(e)),
            None => return Err(Error::Cancelled),
            Some(_) => {
                return Err(self.fail(Error::ProtocolViolation("expected REQUEST_OK or REQUEST_ERROR")));
            }
        }
        let (tx, events) = mpsc::unbounded_channel();
        let inner = self.inner.clone();
        let p = prefix.clone();
        tokio::spawn(async move {
            let _writer = writer; // dropped (and reset) when this task ends
            let mut known = HashSet::new();
            loop {
                let msg = tokio::select! {
                    m = reader.message(v) => m,
                    // The NamespaceSubscription was dropped: cancel.
                    _ = tx.closed() => {
                        reader.stop(StreamCode::Cancelled.to_u64() as u32);
                        break;
                    }
                };
                let event = match msg {
                    Ok(Some(ControlMessage::Namespace(n))) => match p.join(&n.suffix) {
                        Ok(ns) => {
                            known.insert(ns.clone());
                            NamespaceEvent::Added(ns)
                        }
                        Err(_) => break,
                    },
                    Ok(Some(ControlMessage::NamespaceDone(n))) => match p.join(&n.suffix) {
                        //= draft-ietf-moq-transport-19#message-subscribe-ns
                        //# If a subscriber receives a NAMESPACE_DONE before the corresponding NAMESPACE, it MUST close
                        //# the session with a 'PROTOCOL_VIOLATION'.
                        Ok(ns) if known.remove(&ns) => NamespaceEvent::Removed(ns),
                        _ => {
                            inner.close(Error::ProtocolViolation("NAMESPACE_DONE before NAMESPACE"));
                            break;
                        }
                    },
                    Ok(Some(_)) => {
                        inner.close(Error::ProtocolViolation("unexpected message on SUBSCRIBE_NAMESPACE"));
                        break;
                    }
                    Ok(None) | Err(_) => break,
                };
                if tx.send(event).is_err() {
                    reader.stop(StreamCode::Cancelled.to_u64() as u32);
                    break;
                }
            }
            // The stream ended: every namespace is done.
            for ns in known {
                let _ = tx.send(NamespaceEvent::Removed(ns));
            }
        });
        Ok(NamespaceSubscription { prefix, events })
    }

    /// Asks the peer to PUBLISH every track under `prefix` (SUBSCRIBE_TRACKS); the tracks arrive as
    /// [`Event::Published`].
    pub async fn subscribe_tracks(&self, prefix: TrackNamespace) -> Result<TracksSubscription, Error> {
        let v = self.inner.version;
        let request_id = self.request_id()?;
        let msg = SubscribeTracks { request_id, prefix: prefix.clone(), params: Parameters::default() };
        let (mut writer, mut reader) = self.open_request(msg.into()).await?;
        match response(&mut reader, v).await? {
            Some(ControlMessage::RequestOk(_)) => {}
            Some(ControlMessage::RequestError(e)) => return Err(rejected(e)),
            None => return Err(Error::Cancelled),
            Some(_) => return Err(self.fail(Error::ProtocolViolation("expected REQUEST_OK or REQUEST_ERROR"))),
        }
        let (cancel, mut cancelled) = oneshot::channel::<()>();
        let inner = self.inner.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut cancelled => break,
                    msg = reader.message(v) => match msg {
                        // PUBLISH_SKIPPED: the peer will not PUBLISH that track; the application may SUBSCRIBE.
                        Ok(Some(ControlMessage::PublishSkipped(p))) => tracing::debug!(?p, "PUBLISH_SKIPPED"),
                        Ok(Some(ControlMessage::GoAway(_))) => {}
                        Ok(Some(_)) => {
                            inner.close(Error::ProtocolViolation("unexpected message on SUBSCRIBE_TRACKS"));
                            break;
                        }
                        // The peer will send nothing more; the request stays until we drop it.
                        Ok(None) => {
                            let _ = (&mut cancelled).await;
                            break;
                        }
                        Err(_) => break,
                    },
                }
            }
            writer.reset(StreamCode::Cancelled.to_u64() as u32);
            reader.stop(StreamCode::Cancelled.to_u64() as u32);
        });
        Ok(TracksSubscription { prefix, _cancel: cancel })
    }

    /// Pushes a track to the peer (PUBLISH) and serves it once accepted.
    pub async fn publish(&self, track: TrackProducer) -> Result<Published, Error> {
        let v = self.inner.version;
        let request_id = self.request_id()?;
        let alias = TrackAlias(self.inner.next_alias.fetch_add(1, Ordering::Relaxed));
        let msg = Publish {
            request_id,
            track: track.info().name.clone(),
            track_alias: alias,
            params: Parameters { largest_object: track.largest(), forward: Some(true), ..Default::default() },
            track_properties: track_properties(track.info()),
        };
        let (mut writer, mut reader) = self.open_request(msg.into()).await?;
        let ok = match response(&mut reader, v).await? {
            Some(ControlMessage::RequestOk(ok)) => ok,
            Some(ControlMessage::RequestError(e)) => return Err(rejected(e)),
            None => return Err(Error::Cancelled),
            Some(_) => {
                return Err(self.fail(Error::ProtocolViolation("expected REQUEST_OK or REQUEST_ERROR")));
            }
        };
        let (cancel, cancelled) = oneshot::channel::<()>();
        let inner = self.inner.clone();
        let params = ok.params;
        tokio::spawn(async move {
            let state = SubState::new(&params);
            *lock(&state.joining) = track.largest();
            lock(&inner.served).insert(request_id.0, Served { track: track.clone(), state: state.clone() });
            tokio::select! {
                _ = serve_subscription(&inner, &mut writer, &mut reader, track.clone(), track.consume(), alias, Start::LiveEdge, None, &state) => {}
                _ = cancelled => {
                    writer.reset(StreamCode::Cancelled.to_u64() as u32);
                    reader.stop(StreamCode::Cancelled.to_u64() as u32);
                }
            }
            lock(&inner.served).remove(&request_id.0);
        });
        Ok(Published { request_id, track_alias: alias, _cancel: cancel })
    }

    /// Sends GOAWAY on the control stream. A server may name a new session URI.
    pub async fn goaway(&self, uri: &str, timeout: Duration) -> Result<(), Error> {
        if self.inner.role == Role::Client && !uri.is_empty() {
            return Err(Error::Config("a client must send an empty GOAWAY URI".into()));
        }
        if self.inner.goaway_sent.swap(true, Ordering::Relaxed) {
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
            None => return Err(Error::Cancelled),
        }
        drop(control);
        //= draft-ietf-moq-transport-19#message-goaway
        //# When sent on the control stream, the sender closes the session with `GOAWAY_TIMEOUT` after the
        //# indicated timeout if there are still open requests.
        if !timeout.is_zero() {
            let inner = self.inner.clone();
            tokio::spawn(async move {
                tokio::time::sleep(timeout).await;
                inner.close(Error::Closed { code: SessionCode::GoawayTimeout, reason: "GOAWAY timeout".into() });
            });
        }
        Ok(())
    }
}

/// How long a requester waits for the first response on a request stream.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads the response to a request: the first message other than a (single) GOAWAY for this request, with a
/// timeout. A missing answer fails this request only.
async fn response<R: web_transport_trait::RecvStream>(
    reader: &mut Reader<R>,
    v: Version,
) -> Result<Option<ControlMessage>, Error> {
    let mut goaways = 0;
    loop {
        let msg = tokio::time::timeout(RESPONSE_TIMEOUT, reader.message(v)).await.map_err(|_| Error::Timeout)??;
        match msg {
            Some(ControlMessage::GoAway(_)) if goaways == 0 => {
                // A GOAWAY on a request stream asks to re-issue this request elsewhere; the answer still comes.
                goaways += 1;
                tracing::debug!("GOAWAY on a request stream");
            }
            Some(ControlMessage::GoAway(_)) => {
                return Err(Error::ProtocolViolation("second GOAWAY on a request stream"));
            }
            other => return Ok(other),
        }
    }
}

fn rejected(e: RequestError) -> Error {
    Error::Rejected { code: e.code, reason: e.reason.0 }
}

fn track_properties(info: &TrackInfo) -> Properties {
    let mut props = info.properties.clone();
    if info.priority != 128 && props.get_int(property::DEFAULT_PUBLISHER_PRIORITY).is_none() {
        props = props.with_int(property::DEFAULT_PUBLISHER_PRIORITY, info.priority as u64).unwrap_or_default();
    }
    props
}

impl<S: WtSession> Inner<S> {
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
            self.transport.close(code.to_u64() as u32, &e.to_string());
        }
    }

    /// Ends a received track once its data streams have arrived: PUBLISH_DONE gives their number; without it
    /// (or with 0, which some peers always send) a short grace period lets streams already in flight land.
    async fn end_incoming(&self, alias: u64, producer: &TrackProducer, end: TrackEnd, expected: Option<u64>) {
        let incoming = lock(&self.incoming).get(&alias).filter(|i| i.producer.is_same(producer)).cloned();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        match (incoming.as_ref(), expected) {
            (Some(i), Some(n)) if n > 0 && n != PublishDone::UNKNOWN_STREAM_COUNT => {
                while i.streams.load(Ordering::Relaxed) < n && tokio::time::Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
        producer.end(end);
        // Remove only our own entry: the alias may have been reused by a newer subscription meanwhile.
        let mut map = lock(&self.incoming);
        if map.get(&alias).is_some_and(|i| i.producer.is_same(producer)) {
            map.remove(&alias);
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

    fn add_alias(&self, alias: u64, producer: TrackProducer) -> Result<(), Error> {
        let mut map = lock(&self.incoming);
        //= draft-ietf-moq-transport-19#track-alias
        //# If a subscriber receives PUBLISH or SUBSCRIBE_OK that uses the same Track Alias as a different
        //# Track with an `Established` subscription, it MUST close the session with error `DUPLICATE_TRACK_ALIAS`.
        if map.get(&alias).is_some_and(|i| i.producer.info().name != producer.info().name) {
            drop(map);
            let e = Error::DuplicateTrackAlias(alias);
            self.close(e.clone());
            return Err(e);
        }
        map.insert(
            alias,
            Arc::new(Incoming {
                producer,
                streams: AtomicU64::new(0),
                groups: Mutex::default(),
                window: self.config.window,
            }),
        );
        drop(map);
        self.alias_added.notify_waiters();
        Ok(())
    }

    async fn wait_alias(&self, alias: u64) -> Option<Arc<Incoming>> {
        let deadline = tokio::time::Instant::now() + ALIAS_WAIT;
        loop {
            let notified = self.alias_added.notified();
            if let Some(i) = lock(&self.incoming).get(&alias) {
                return Some(i.clone());
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }

    /// Validates a Request ID from the peer (parity and uniqueness).
    fn check_peer_request(&self, id: RequestId) -> Result<(), Error> {
        let peer_is_client = self.role == Role::Server;
        //= draft-ietf-moq-transport-19#request-id
        //# If an endpoint receives a Request ID where the least significant bit is incorrect for the sender,
        //# or a duplicate Request ID, it MUST close the session with `INVALID_REQUEST_ID`.
        if id.is_client() != peer_is_client || !lock(&self.peer_ids).insert(id.0) {
            return Err(Error::InvalidRequestId(id.0));
        }
        Ok(())
    }
}

// ---- unidirectional streams ----

async fn run_uni<S: WtSession>(inner: Arc<Inner<S>>, setup_tx: oneshot::Sender<Result<SetupOptions, Error>>) {
    let setup_tx = Arc::new(Mutex::new(Some(setup_tx)));
    let control_seen = Arc::new(AtomicBool::new(false));
    loop {
        let recv = match inner.transport.accept_uni().await {
            Ok(r) => r,
            Err(e) => {
                let e = from_wt(e);
                inner.record_closed(e.clone());
                if let Some(tx) = lock(&setup_tx).take() {
                    let _ = tx.send(Err(e));
                }
                return;
            }
        };
        // Each stream gets its own task at once: a stream that never sends its type must not hold up the others.
        let inner = inner.clone();
        let setup_tx = setup_tx.clone();
        let control_seen = control_seen.clone();
        tokio::spawn(async move {
            let mut reader = Reader::new(recv);
            let kind = match reader.decode_with(|b| StreamKind::peek(b, inner.version).map(|k| (k, 0))).await {
                Ok(Some(k)) => k,
                Ok(None) => return,
                // A stream reset before its type arrived is not the session's problem.
                Err(e) if !e.is_session_error() => return,
                Err(e) => return inner.close(e),
            };
            match kind {
                StreamKind::Control => {
                    if control_seen.swap(true, Ordering::Relaxed) {
                        return inner.close(Error::ProtocolViolation("second control stream"));
                    }
                    let tx = lock(&setup_tx).take();
                    run_control(inner, reader, tx).await;
                }
                _ => {
                    if let Err(e) = handle_data_stream(&inner, reader).await
                        && e.is_session_error()
                    {
                        inner.close(e);
                    }
                }
            }
        });
    }
}

async fn run_control<S: WtSession>(
    inner: Arc<Inner<S>>,
    mut reader: Reader<S::RecvStream>,
    setup_tx: Option<oneshot::Sender<Result<SetupOptions, Error>>>,
) {
    let v = inner.version;
    let setup = match reader.message(v).await {
        Ok(Some(ControlMessage::Setup(s))) => Ok(s.options),
        Ok(_) => Err(Error::ProtocolViolation("control stream must start with SETUP")),
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
                    inner.close(Error::ProtocolViolation("second GOAWAY"));
                    return;
                }
                //# If a server receives a GOAWAY with a non-zero New Session URI Length it MUST close the session
                //# with a `PROTOCOL_VIOLATION`.
                if inner.role == Role::Server && !g.new_session_uri.is_empty() {
                    inner.close(Error::ProtocolViolation("GOAWAY URI from a client"));
                    return;
                }
                inner.goaway_received.store(true, Ordering::Relaxed);
                let _ = inner.events.send(Event::GoAway {
                    uri: String::from_utf8_lossy(&g.new_session_uri).into_owned(),
                    timeout: Duration::from_millis(g.timeout_ms),
                });
            }
            Ok(Some(_)) => {
                inner.close(Error::ProtocolViolation("unexpected message on the control stream"));
                return;
            }
            Ok(None) => {
                //= draft-ietf-moq-transport-19#session-init
                //# A control stream MUST NOT be closed at the underlying transport layer during the session's
                //# lifetime.  Doing so results in the session being closed as a `PROTOCOL_VIOLATION`.
                if inner.closed.borrow().is_none() {
                    inner.close(Error::ProtocolViolation("control stream closed"));
                }
                return;
            }
            Err(e) => {
                if inner.closed.borrow().is_none() {
                    inner.close(if e.is_session_error() {
                        e
                    } else {
                        Error::ProtocolViolation("control stream reset")
                    });
                }
                return;
            }
        }
    }
}

async fn handle_data_stream<S: WtSession>(
    inner: &Arc<Inner<S>>,
    mut reader: Reader<S::RecvStream>,
) -> Result<(), Error> {
    let v = inner.version;
    let Some(header) = reader.decode::<DataStreamHeader>(v).await? else {
        return Ok(());
    };
    match header {
        DataStreamHeader::Padding => Ok(()),
        DataStreamHeader::Fetch(h) => {
            let tx = lock(&inner.fetches).remove(&h.request_id.0);
            match tx {
                Some(tx) => {
                    let _ = tx.send(reader);
                }
                None => reader.stop(StreamCode::Cancelled.to_u64() as u32),
            }
            Ok(())
        }
        DataStreamHeader::Subgroup(h) => {
            let Some(incoming) = inner.wait_alias(h.track_alias.0).await else {
                reader.stop(StreamCode::Cancelled.to_u64() as u32);
                return Ok(());
            };
            incoming.streams.fetch_add(1, Ordering::Relaxed);
            let priority = h.publisher_priority.unwrap_or(incoming.producer.info().priority);
            let mut state = SubgroupReader::new(h, v);
            // With the subgroup id in the header the subgroup exists now; in FirstObjectId mode, at the first object.
            let mut sub: Option<SubgroupProducer> = match h.subgroup {
                SubgroupIdMode::FirstObjectId => None,
                _ => match incoming.subgroup(h.group_id.0, h.subgroup_id(ObjectId(0)).0, priority) {
                    Some(s) => Some(s),
                    None => {
                        reader.stop(StreamCode::TooFarBehind.to_u64() as u32);
                        return Ok(());
                    }
                },
            };
            loop {
                let next = reader.decode_with(|b| state.decode_header(b)).await;
                match next {
                    Ok(Some(obj)) => {
                        let payload = reader.payload(obj.payload_len).await?;
                        inner.config.stats.objects_in.fetch_add(1, Ordering::Relaxed);
                        inner.config.stats.bytes_in.fetch_add(payload.len() as u64, Ordering::Relaxed);
                        if sub.is_none() {
                            let id = h.subgroup_id(obj.object_id).0;
                            match incoming.subgroup(h.group_id.0, id, priority) {
                                Some(s) => sub = Some(s),
                                None => {
                                    reader.stop(StreamCode::TooFarBehind.to_u64() as u32);
                                    return Ok(());
                                }
                            }
                        }
                        if let Some(s) = &sub {
                            let status = obj.status;
                            let _ = s.write(Object { id: obj.object_id, properties: obj.properties, payload, status });
                            if status == ObjectStatus::EndOfTrack {
                                incoming.producer.end(TrackEnd::Ended);
                            }
                        }
                    }
                    Ok(None) => {
                        if let Some(s) = &sub {
                            s.finish();
                        }
                        if h.end_of_group {
                            incoming.finish_group(h.group_id.0);
                        }
                        return Ok(());
                    }
                    Err(Error::StreamReset(code)) => {
                        if let Some(s) = &sub {
                            s.abort(code as u64);
                        }
                        return Ok(());
                    }
                    Err(e) => {
                        if let Some(s) = &sub {
                            s.abort(StreamCode::InternalError.to_u64());
                        }
                        return Err(e);
                    }
                }
            }
        }
    }
}

async fn run_datagrams<S: WtSession>(inner: Arc<Inner<S>>) {
    loop {
        let Ok(bytes) = inner.transport.recv_datagram().await else {
            return;
        };
        let d = match Datagram::decode(&bytes, inner.version) {
            Ok(Datagram::Object(d)) => d,
            Ok(Datagram::Padding) => continue,
            Err(e) => {
                inner.close(e.into());
                return;
            }
        };
        let Some(incoming) = lock(&inner.incoming).get(&d.track_alias.0).cloned() else {
            continue;
        };
        let priority = d.publisher_priority.unwrap_or(incoming.producer.info().priority);
        // A datagram object is delivered as a subgroup of its own, keyed by object id.
        if let Some(sub) = incoming.subgroup(d.group_id.0, d.object_id.0, priority) {
            let (payload, status) = match d.content {
                DatagramContent::Payload(p) => (p, ObjectStatus::Normal),
                DatagramContent::Status(s) => (Bytes::new(), s),
            };
            let _ = sub.write(Object { id: d.object_id, properties: d.properties, payload, status });
            sub.finish();
            if d.end_of_group {
                incoming.finish_group(d.group_id.0);
            }
        }
    }
}

// ---- requests from the peer ----

async fn run_bi<S: WtSession>(inner: Arc<Inner<S>>) {
    loop {
        let (send, recv) = match inner.transport.accept_bi().await {
            Ok(s) => s,
            Err(e) => {
                let e = from_wt(e);
                inner.record_closed(e.clone());
                return;
            }
        };
        let inner = inner.clone();
        tokio::spawn(async move {
            let mut writer = Writer::new(send);
            let mut reader = Reader::new(recv);
            if let Err(e) = handle_request(&inner, &mut writer, &mut reader).await {
                if e.is_session_error() {
                    inner.close(e);
                } else {
                    tracing::debug!(error = %e, "request ended");
                }
            }
        });
    }
}

async fn reject<W: web_transport_trait::SendStream>(
    writer: &mut Writer<W>,
    v: Version,
    code: RequestErrorCode,
    reason: &str,
) -> Result<(), Error> {
    writer.message(&RequestError::new(code, reason).into(), v).await?;
    writer.finish();
    Ok(())
}

async fn handle_request<S: WtSession>(
    inner: &Arc<Inner<S>>,
    writer: &mut Writer<S::SendStream>,
    reader: &mut Reader<S::RecvStream>,
) -> Result<(), Error> {
    let v = inner.version;
    let Some(first) = reader.message(v).await? else {
        return Ok(());
    };
    //= draft-ietf-moq-transport-19#session-init
    //# Bidirectional streams MUST NOT begin with any other message type unless negotiated. If they do,
    //# the peer MUST close the Session with a `PROTOCOL_VIOLATION`.
    if !first.is_request() {
        return Err(Error::ProtocolViolation("request stream must start with a request"));
    }
    let request_id = match &first {
        ControlMessage::Subscribe(m) => m.request_id,
        ControlMessage::Publish(m) => m.request_id,
        ControlMessage::Fetch(m) => m.request_id,
        ControlMessage::TrackStatus(m) => m.request_id,
        ControlMessage::PublishNamespace(m) => m.request_id,
        ControlMessage::SubscribeNamespace(m) => m.request_id,
        ControlMessage::SubscribeTracks(m) => m.request_id,
        _ => return Err(Error::ProtocolViolation("not a request")),
    };
    inner.check_peer_request(request_id)?;
    if inner.goaway_sent.load(Ordering::Relaxed) {
        return reject(writer, v, RequestErrorCode::GoingAway, "going away").await;
    }
    if let Some(authorize) = &inner.config.authorizer {
        let (action, namespace, tokens) = match &first {
            ControlMessage::Subscribe(m) => (Action::Subscribe, &m.track.namespace, &m.params.auth_tokens),
            ControlMessage::TrackStatus(m) => (Action::Subscribe, &m.track.namespace, &m.params.auth_tokens),
            ControlMessage::SubscribeNamespace(m) => (Action::Subscribe, &m.prefix, &m.params.auth_tokens),
            ControlMessage::SubscribeTracks(m) => (Action::Subscribe, &m.prefix, &m.params.auth_tokens),
            ControlMessage::PublishNamespace(m) => (Action::Publish, &m.namespace, &m.params.auth_tokens),
            ControlMessage::Publish(m) => (Action::Publish, &m.track.namespace, &m.params.auth_tokens),
            ControlMessage::Fetch(m) => match &m.fetch_type {
                FetchType::Standalone { track, .. } => (Action::Subscribe, &track.namespace, &m.params.auth_tokens),
                // A joining fetch rides on a subscription that was authorized already.
                _ => (Action::Subscribe, &EMPTY_NAMESPACE, &m.params.auth_tokens),
            },
            _ => return Err(Error::ProtocolViolation("not a request")),
        };
        let setup = inner.peer_setup.get();
        let path = inner
            .config
            .connect_path
            .clone()
            .or_else(|| setup.and_then(|s| s.path.as_ref()).map(|p| String::from_utf8_lossy(p).into_owned()));
        let ctx = AuthContext {
            path: path.as_deref(),
            setup_tokens: setup.map(|s| s.auth_tokens.as_slice()).unwrap_or_default(),
            request_tokens: tokens,
        };
        let joining =
            matches!(&first, ControlMessage::Fetch(m) if !matches!(m.fetch_type, FetchType::Standalone { .. }));
        if !joining && !authorize(&ctx, action, namespace) {
            tracing::info!(?action, %namespace, "unauthorized request");
            return reject(writer, v, RequestErrorCode::Unauthorized, "unauthorized").await;
        }
    }
    let origin = &inner.config.origin;
    match first {
        ControlMessage::Subscribe(m) => {
            let Some(track) = origin.resolve(&m.track).await else {
                return reject(writer, v, RequestErrorCode::DoesNotExist, "no such track").await;
            };
            let alias = TrackAlias(inner.next_alias.fetch_add(1, Ordering::Relaxed));
            let largest = track.largest();
            let start = match m.params.location_filter {
                None => Start::LiveEdge,
                Some(LocationFilter::NextGroupStart) => {
                    Start::At(largest.map(|l| Location::new(l.group.0.saturating_add(1), 0)).unwrap_or_default())
                }
                Some(LocationFilter::LargestObject) => Start::At(
                    largest.map(|l| Location::new(l.group.0, l.object.0.saturating_add(1))).unwrap_or_default(),
                ),
                Some(LocationFilter::AbsoluteStart { start }) | Some(LocationFilter::AbsoluteRange { start, .. }) => {
                    Start::Cached(start)
                }
            };
            // The consumer is taken now, with LARGEST_OBJECT, so that what we send starts where SUBSCRIBE_OK
            // says (objects written while SUBSCRIBE_OK is on its way are not skipped).
            let consumer = match start {
                Start::Cached(_) => track.consume_from_start(),
                _ => track.consume(),
            };
            let end_group = m.params.location_filter.and_then(|f| f.end_group()).map(|g| g.0);
            if let (Some(end), Some(l)) = (end_group, largest)
                && end < l.group.0
            {
                return reject(writer, v, RequestErrorCode::InvalidRange, "end group already published").await;
            }
            let ok = SubscribeOk {
                track_alias: alias,
                params: Parameters { largest_object: largest, ..Default::default() },
                track_properties: track_properties(track.info()),
            };
            // Registered before SUBSCRIBE_OK goes out, so a joining FETCH right behind it finds the subscription.
            let state = SubState::new(&m.params);
            if *state.forward.borrow() {
                *lock(&state.joining) = largest;
            }
            lock(&inner.served).insert(request_id.0, Served { track: track.clone(), state: state.clone() });
            let result = writer.message(&ok.into(), v).await;
            if result.is_ok() {
                serve_subscription(inner, writer, reader, track, consumer, alias, start, end_group, &state).await;
            }
            lock(&inner.served).remove(&request_id.0);
            result
        }
        ControlMessage::TrackStatus(m) => {
            let Some(track) = origin.resolve(&m.track).await else {
                return reject(writer, v, RequestErrorCode::DoesNotExist, "no such track").await;
            };
            let ok = RequestOk {
                params: Parameters { largest_object: track.largest(), ..Default::default() },
                track_properties: track_properties(track.info()),
            };
            writer.message(&ok.into(), v).await?;
            writer.finish();
            Ok(())
        }
        ControlMessage::Fetch(m) => serve_fetch(inner, writer, m).await,
        ControlMessage::PublishNamespace(m) => {
            writer.message(&RequestOk::default().into(), v).await?;
            let _ = inner.events.send(Event::Announced(m.namespace.clone()));
            // The namespace stays published until the peer cancels the request (a FIN is not a cancel).
            hold_request(inner, writer, reader).await?;
            let _ = inner.events.send(Event::Unannounced(m.namespace));
            Ok(())
        }
        ControlMessage::SubscribeNamespace(m) => {
            let overlaps = {
                let mut prefixes = lock(&inner.namespace_prefixes);
                // A prefix that overlaps another active SUBSCRIBE_NAMESPACE of this session is refused
                // (draft-19 §9.22, PREFIX_OVERLAP).
                let overlaps = prefixes.iter().any(|p| p.starts_with(&m.prefix) || m.prefix.starts_with(p));
                if !overlaps {
                    prefixes.push(m.prefix.clone());
                }
                overlaps
            };
            if overlaps {
                return reject(writer, v, RequestErrorCode::PrefixOverlap, "prefix overlaps").await;
            }
            let result = serve_namespaces(inner, writer, reader, &m.prefix).await;
            lock(&inner.namespace_prefixes).retain(|p| p != &m.prefix);
            result
        }
        ControlMessage::SubscribeTracks(m) => {
            writer.message(&RequestOk::default().into(), v).await?;
            // An internal handle: it must not close the session when dropped.
            let session = Session { inner: inner.clone(), _handle: None };
            let mut published = Vec::new();
            for track in origin.tracks(&m.prefix) {
                match session.publish(track).await {
                    Ok(p) => published.push(p),
                    Err(e) => tracing::debug!(error = %e, "PUBLISH for SUBSCRIBE_TRACKS failed"),
                }
            }
            // Keep the publications until the peer cancels SUBSCRIBE_TRACKS.
            hold_request(inner, writer, reader).await?;
            drop(published);
            Ok(())
        }
        ControlMessage::Publish(m) => {
            let mut info = TrackInfo::new(m.track.clone());
            info.properties = m.track_properties.clone();
            if let Some(p) = m.track_properties.get_int(property::DEFAULT_PUBLISHER_PRIORITY) {
                info.priority = p.min(255) as u8;
            }
            let producer = TrackProducer::with_limits(info, inner.config.window, inner.config.max_cache_bytes);
            inner.add_alias(m.track_alias.0, producer.clone())?;
            writer.message(&RequestOk::default().into(), v).await?;
            let _ = inner.events.send(Event::Published(producer.clone()));
            // The publisher's only message after PUBLISH_OK is PUBLISH_DONE.
            let mut expected_streams = None;
            let end = match reader.message(v).await {
                Ok(Some(ControlMessage::PublishDone(d))) => {
                    expected_streams = Some(d.stream_count);
                    match d.status {
                        PublishDoneCode::TrackEnded | PublishDoneCode::SubscriptionEnded => TrackEnd::Ended,
                        other => TrackEnd::Error(other.to_u64()),
                    }
                }
                Ok(Some(_)) => {
                    return Err(Error::ProtocolViolation("unexpected message on PUBLISH"));
                }
                Ok(None) | Err(_) => TrackEnd::Error(StreamCode::Cancelled.to_u64()),
            };
            inner.end_incoming(m.track_alias.0, &producer, end, expected_streams).await;
            writer.finish();
            Ok(())
        }
        _ => Err(Error::ProtocolViolation("not a request")),
    }
}

/// Keeps a request open until the requester cancels it (reset, or STOP_SENDING), answering REQUEST_UPDATEs with
/// REQUEST_OK. A FIN means only that no more updates will come.
async fn hold_request<S: WtSession>(
    inner: &Arc<Inner<S>>,
    writer: &mut Writer<S::SendStream>,
    reader: &mut Reader<S::RecvStream>,
) -> Result<(), Error> {
    let v = inner.version;
    loop {
        let msg = tokio::select! {
            m = reader.message(v) => m,
            _ = writer.closed() => return Ok(()),
        };
        match msg {
            Ok(Some(ControlMessage::RequestUpdate(u))) => {
                inner.check_peer_request(u.request_id)?;
                writer.message(&RequestOk::default().into(), v).await?;
            }
            Ok(Some(ControlMessage::GoAway(_))) => {}
            Ok(Some(m)) => return Err(Error::ProtocolViolation(unexpected(&m))),
            Ok(None) => {
                let _ = writer.closed().await;
                return Ok(());
            }
            Err(e) if e.is_session_error() => return Err(e),
            Err(_) => return Ok(()),
        }
    }
}

fn unexpected(m: &ControlMessage) -> &'static str {
    match m {
        ControlMessage::Setup(_) => "SETUP on a request stream",
        _ => "unexpected message on a request stream",
    }
}

async fn serve_namespaces<S: WtSession>(
    inner: &Arc<Inner<S>>,
    writer: &mut Writer<S::SendStream>,
    reader: &mut Reader<S::RecvStream>,
    prefix: &TrackNamespace,
) -> Result<(), Error> {
    let v = inner.version;
    let origin = inner.config.origin.clone();
    let mut watch = origin.watch();
    writer.message(&RequestOk::default().into(), v).await?;
    let mut sent = HashSet::new();
    let mut fin = false;
    for ns in origin.namespaces(prefix) {
        if let Some(suffix) = ns.strip_prefix(prefix) {
            writer.message(&Namespace { suffix }.into(), v).await?;
            sent.insert(ns);
        }
    }
    loop {
        tokio::select! {
            ev = watch.recv() => match ev {
                Ok(NamespaceEvent::Added(ns)) if ns.starts_with(prefix) && sent.insert(ns.clone()) => {
                    if let Some(suffix) = ns.strip_prefix(prefix) {
                        writer.message(&Namespace { suffix }.into(), v).await?;
                    }
                }
                Ok(NamespaceEvent::Removed(ns)) if sent.remove(&ns) => {
                    if let Some(suffix) = ns.strip_prefix(prefix) {
                        writer.message(&NamespaceDone { suffix }.into(), v).await?;
                    }
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    // We missed changes: resynchronise against the origin's current set.
                    let now: HashSet<TrackNamespace> = origin.namespaces(prefix).into_iter().collect();
                    for gone in sent.difference(&now).cloned().collect::<Vec<_>>() {
                        sent.remove(&gone);
                        if let Some(suffix) = gone.strip_prefix(prefix) {
                            writer.message(&NamespaceDone { suffix }.into(), v).await?;
                        }
                    }
                    for new in now {
                        if sent.insert(new.clone()) && let Some(suffix) = new.strip_prefix(prefix) {
                            writer.message(&Namespace { suffix }.into(), v).await?;
                        }
                    }
                }
                Err(_) => return Ok(()),
            },
            msg = reader.message(v), if !fin => match msg {
                Ok(Some(ControlMessage::RequestUpdate(u))) => {
                    inner.check_peer_request(u.request_id)?;
                    writer.message(&RequestOk::default().into(), v).await?
                }
                Ok(Some(ControlMessage::GoAway(_))) => {}
                Ok(Some(_)) => return Err(Error::ProtocolViolation("unexpected message on SUBSCRIBE_NAMESPACE")),
                // A FIN from the subscriber is not a cancel: keep sending until STOP_SENDING or a reset.
                Ok(None) => fin = true,
                Err(e) if e.is_session_error() => return Err(e),
                Err(_) => {
                    writer.reset(StreamCode::Cancelled.to_u64() as u32);
                    return Ok(());
                }
            },
            _ = writer.closed() => return Ok(()),
        }
    }
}

async fn serve_fetch<S: WtSession>(
    inner: &Arc<Inner<S>>,
    writer: &mut Writer<S::SendStream>,
    m: Fetch,
) -> Result<(), Error> {
    let v = inner.version;
    let order = m.params.group_order.unwrap_or(GroupOrder::Ascending);
    let (track, start, end) = match m.fetch_type {
        FetchType::Standalone { track: name, start, end } => {
            let track = inner.config.origin.resolve(&name).await;
            // A range older than what is held here is fetched from upstream when the origin knows how.
            let held_from = track.as_ref().and_then(|t| t.consume().cached_groups().first().map(|g| g.id()));
            if held_from.is_none_or(|first| start.group < first)
                && let Some(fetcher) = inner.config.origin.fetcher()
                && let Some(objects) = fetcher(name.clone(), start, end, order).await
            {
                return serve_fetched(inner, writer, m.request_id, order, start, end, objects).await;
            }
            match track {
                Some(t) => (t, start, end),
                None => return reject(writer, v, RequestErrorCode::DoesNotExist, "no such track").await,
            }
        }
        FetchType::RelativeJoining { joining_request_id, joining_start }
        | FetchType::AbsoluteJoining { joining_request_id, joining_start } => {
            let relative = matches!(m.fetch_type, FetchType::RelativeJoining { .. });
            let served = lock(&inner.served)
                .get(&joining_request_id.0)
                .map(|s| (s.track.clone(), *lock(&s.state.joining), *s.state.forward.borrow()));
            let Some((track, joining, forward)) = served else {
                return reject(writer, v, RequestErrorCode::InvalidJoiningRequestId, "no such subscription").await;
            };
            //= draft-ietf-moq-transport-19#joining-fetches
            //# If no Objects have been published for the track the publisher MUST respond with a REQUEST_ERROR
            //# with error code `INVALID_RANGE`.
            if !forward {
                return reject(writer, v, RequestErrorCode::InvalidRange, "joining subscription has Forward 0").await;
            }
            let Some(joining) = joining else {
                return reject(writer, v, RequestErrorCode::InvalidRange, "nothing published yet").await;
            };
            //= draft-ietf-moq-transport-19#joining-fetch-range-calculation
            //# The publisher receiving a Joining Fetch sets the End Location to
            //# {Joining Location.Group, Joining Location.Object + 1}
            let start_group = if relative { joining.group.0.saturating_sub(joining_start) } else { joining_start };
            (track, Location::new(start_group, 0), Location::new(joining.group.0, joining.object.0.saturating_add(1)))
        }
    };
    let Some(largest) = track.largest() else {
        return reject(writer, v, RequestErrorCode::InvalidRange, "track is empty").await;
    };
    if start > largest {
        return reject(writer, v, RequestErrorCode::InvalidRange, "start is after the largest object").await;
    }
    // Clip the end to what exists: {Largest.Group, Largest.Object + 1}; objects past it are not sent.
    let clipped_end = Location::new(largest.group.0, largest.object.0.saturating_add(1));
    let end_location = if end.object.0 == 0 {
        if end.group >= largest.group { clipped_end } else { end }
    } else {
        end.min(clipped_end)
    };
    let in_range = |l: Location| {
        l >= start && if end_location.object.0 == 0 { l.group <= end_location.group } else { l < end_location }
    };
    let consumer = track.consume();
    let end_of_track = consumer.ended() == Some(TrackEnd::Ended) && end_location == clipped_end;
    let datagrams = track.info().delivery == Delivery::Datagrams;
    let mut groups: Vec<GroupConsumer> = consumer.cached_groups();
    if order == GroupOrder::Descending {
        groups.reverse();
    }
    writer.message(&FetchOk { end_of_track, end_location, ..Default::default() }.into(), v).await?;
    let stream = inner.transport.open_uni().await.map_err(from_wt)?;
    let mut data = Writer::new(stream);
    let mut buf = BytesMut::new();
    FetchHeader { request_id: m.request_id }.encode(&mut buf, v)?;
    let mut fw = FetchWriter::new(order, v);
    for g in groups {
        let mut objects: Vec<(u64, u8, crate::model::Object)> = Vec::new();
        for sg in g.subgroups() {
            let c = sg.clone();
            for o in c.available() {
                objects.push((sg.id().0, sg.priority(), o));
            }
            let _ = c.closed();
        }
        objects.sort_by_key(|(_, _, o)| o.id);
        for (sg, prio, o) in objects {
            if o.status != ObjectStatus::Normal || !in_range(Location { group: g.id(), object: o.id }) {
                continue;
            }
            let fo = FetchObject {
                group_id: g.id(),
                // Objects of a datagram track have no subgroup (serialization flag 0x40).
                subgroup_id: if datagrams { None } else { Some(SubgroupId(sg)) },
                object_id: o.id,
                publisher_priority: prio,
                properties: o.properties.clone(),
                payload_len: o.payload.len(),
            };
            fw.write_object(&mut buf, &fo)?;
            data.write(&buf).await?;
            buf.clear();
            data.write_chunk(o.payload.clone()).await?;
        }
    }
    if !buf.is_empty() {
        data.write(&buf).await?;
    }
    data.finish();
    writer.finish();
    Ok(())
}

/// Answers a FETCH with objects obtained elsewhere (upstream).
async fn serve_fetched<S: WtSession>(
    inner: &Arc<Inner<S>>,
    writer: &mut Writer<S::SendStream>,
    request_id: RequestId,
    order: GroupOrder,
    start: Location,
    end: Location,
    objects: Vec<FetchedObject>,
) -> Result<(), Error> {
    let v = inner.version;
    let Some(last) = objects.iter().map(|o| o.location).max() else {
        return reject(writer, v, RequestErrorCode::InvalidRange, "no objects in the range").await;
    };
    let reached = Location::new(last.group.0, last.object.0.saturating_add(1));
    let end_location = if end.object.0 == 0 && end.group > last.group { reached } else { end.min(reached).max(start) };
    writer.message(&FetchOk { end_of_track: false, end_location, ..Default::default() }.into(), v).await?;
    let stream = inner.transport.open_uni().await.map_err(from_wt)?;
    let mut data = Writer::new(stream);
    let mut buf = BytesMut::new();
    FetchHeader { request_id }.encode(&mut buf, v)?;
    let mut fw = FetchWriter::new(order, v);
    for o in objects {
        let fo = FetchObject {
            group_id: o.location.group,
            subgroup_id: o.subgroup,
            object_id: o.location.object,
            publisher_priority: o.priority,
            properties: o.properties,
            payload_len: o.payload.len(),
        };
        if fw.write_object(&mut buf, &fo).is_err() {
            buf.clear();
            continue; // out of the requested order: skip rather than fail the whole response
        }
        data.write(&buf).await?;
        buf.clear();
        data.write_chunk(o.payload).await?;
    }
    if !buf.is_empty() {
        data.write(&buf).await?;
    }
    data.finish();
    writer.finish();
    Ok(())
}

// ---- serving a subscription (the peer's SUBSCRIBE, or our PUBLISH) ----

/// Where a served subscription starts.
#[derive(Debug, Clone, Copy)]
enum Start {
    /// From the latest group, whole.
    LiveEdge,
    /// From this location among new objects (Largest Object / Next Group Start).
    At(Location),
    /// From this location, including cached groups (AbsoluteStart / AbsoluteRange).
    Cached(Location),
}

/// The mutable state of a served subscription (changed by REQUEST_UPDATE).
#[derive(Clone)]
struct SubState {
    order: GroupOrder,
    /// OBJECT_DELIVERY_TIMEOUT and SUBGROUP_DELIVERY_TIMEOUT from the subscriber, ms (0: none).
    object_timeout: Arc<AtomicU64>,
    subgroup_timeout: Arc<AtomicU64>,
    forward: Arc<watch::Sender<bool>>,
    cancel: Arc<watch::Sender<bool>>,
    priority: Arc<AtomicU64>,
    streams: Arc<AtomicU64>,
    skipped: Arc<AtomicU64>,
    /// The Joining Location: the largest location when Forward last went to 1.
    joining: Arc<Mutex<Option<Location>>>,
}

impl SubState {
    fn new(params: &Parameters) -> SubState {
        let forward = params.forward.unwrap_or(true);
        let priority = params.subscriber_priority.unwrap_or(128);
        SubState {
            order: params.group_order.unwrap_or_default(),
            object_timeout: Arc::new(AtomicU64::new(params.object_delivery_timeout.unwrap_or(0))),
            subgroup_timeout: Arc::new(AtomicU64::new(params.subgroup_delivery_timeout.unwrap_or(0))),
            forward: Arc::new(watch::Sender::new(forward)),
            cancel: Arc::new(watch::Sender::new(false)),
            priority: Arc::new(AtomicU64::new(priority as u64)),
            streams: Arc::default(),
            skipped: Arc::default(),
            joining: Arc::default(),
        }
    }
}

/// Serves one subscription on its request stream until the track or the filter ends (PUBLISH_DONE, FIN) or the
/// subscriber cancels (reset / STOP_SENDING; our side is then reset too, and so are the data streams).
#[allow(clippy::too_many_arguments)]
async fn serve_subscription<S: WtSession>(
    inner: &Arc<Inner<S>>,
    writer: &mut Writer<S::SendStream>,
    reader: &mut Reader<S::RecvStream>,
    track: TrackProducer,
    consumer: TrackConsumer,
    alias: TrackAlias,
    start: Start,
    end_group: Option<u64>,
    state: &SubState,
) {
    let serve = serve_track(inner.clone(), consumer, alias, start, end_group, state.clone());
    tokio::pin!(serve);
    let outcome = tokio::select! {
        out = &mut serve => Some(out),
        _ = read_updates(inner, reader, writer, &track, state) => None,
    };
    match outcome {
        Some(status) => {
            let done = PublishDone {
                status,
                stream_count: state.streams.load(Ordering::Relaxed),
                reason: ReasonPhrase::default(),
            };
            if writer.message(&done.into(), inner.version).await.is_ok() {
                writer.finish();
            }
        }
        None => {
            // Cancelled: dropping `serve` aborts the data stream tasks, whose writers reset their streams.
            state.cancel.send_replace(true);
            writer.reset(StreamCode::Cancelled.to_u64() as u32);
            reader.stop(StreamCode::Cancelled.to_u64() as u32);
        }
    }
}

/// Reads REQUEST_UPDATEs from the subscriber and answers them. Returns when the subscriber cancels: a reset of
/// its side, or STOP_SENDING on ours. A FIN only means "no more updates" (draft-19 §3.3.2.1) and serving goes on.
async fn read_updates<S: WtSession>(
    inner: &Arc<Inner<S>>,
    reader: &mut Reader<S::RecvStream>,
    writer: &mut Writer<S::SendStream>,
    track: &TrackProducer,
    state: &SubState,
) {
    let v = inner.version;
    loop {
        let msg = tokio::select! {
            m = reader.message(v) => m,
            _ = writer.closed() => return, // STOP_SENDING
        };
        match msg {
            Ok(Some(ControlMessage::RequestUpdate(u))) => {
                if let Err(e) = inner.check_peer_request(u.request_id) {
                    inner.close(e);
                    return;
                }
                if let Some(f) = u.params.forward {
                    let was = state.forward.send_replace(f);
                    //= draft-ietf-moq-transport-19#joining-fetches
                    //# MUST save the Largest Location communicated in SUBSCRIBE_OK, PUBLISH or REQUEST_UPDATE_OK that
                    //# changes the Forward State from 0 to 1
                    if f && !was {
                        *lock(&state.joining) = track.largest();
                    }
                }
                if let Some(p) = u.params.subscriber_priority {
                    state.priority.store(p as u64, Ordering::Relaxed);
                }
                if let Some(t) = u.params.object_delivery_timeout {
                    state.object_timeout.store(t, Ordering::Relaxed);
                }
                if let Some(t) = u.params.subgroup_delivery_timeout {
                    state.subgroup_timeout.store(t, Ordering::Relaxed);
                }
                let ok = RequestOk {
                    params: Parameters { largest_object: track.largest(), ..Default::default() },
                    ..Default::default()
                };
                if writer.message(&ok.into(), v).await.is_err() {
                    return;
                }
            }
            Ok(Some(ControlMessage::GoAway(_))) => {} // migration hint for this request; nothing to do here
            Ok(Some(_)) => {
                inner.close(Error::ProtocolViolation("unexpected message on a subscription"));
                return;
            }
            Ok(None) => {
                // FIN: no more updates. Keep serving until STOP_SENDING.
                let _ = writer.closed().await;
                return;
            }
            Err(_) => return,
        }
    }
}

/// The send order for a subgroup stream: subscriber priority, then publisher priority (lower is more
/// important), then group order. quinn sends higher values first.
fn send_order(subscriber: u8, publisher: u8, group: u64, order: GroupOrder) -> i32 {
    let p = ((subscriber as i32) << 8) | publisher as i32;
    let g = (group & 0x3fff) as i32;
    let g = match order {
        GroupOrder::Ascending => 0x3fff - g,
        GroupOrder::Descending => g,
    };
    -(p << 14) + g
}

/// Serves one track to one subscriber: a task per group, a stream per subgroup. Returns the PUBLISH_DONE
/// status when the track (or the filter's range) ends.
async fn serve_track<S: WtSession>(
    inner: Arc<Inner<S>>,
    mut consumer: TrackConsumer,
    alias: TrackAlias,
    start: Start,
    end_group: Option<u64>,
    state: SubState,
) -> PublishDoneCode {
    let from = match start {
        Start::LiveEdge => None,
        Start::At(l) | Start::Cached(l) => Some(l),
    };
    let mut tasks = JoinSet::new();
    let mut in_flight: std::collections::VecDeque<(u64, watch::Sender<bool>)> = Default::default();
    let mut cancel = state.cancel.subscribe();
    let mut forward = state.forward.subscribe();
    let status = loop {
        let group = tokio::select! {
            g = consumer.next_group() => g,
            _ = cancel.wait_for(|c| *c) => break PublishDoneCode::InternalError,
            Ok(()) = forward.changed() => {
                // Forward went to 0: no more objects, so the streams in flight are abandoned.
                if !*forward.borrow_and_update() {
                    for (_, stop) in in_flight.drain(..) {
                        stop.send_replace(true);
                    }
                }
                continue;
            }
        };
        let group = match group {
            Ok(g) => g,
            Err(TrackEnd::Ended) => break PublishDoneCode::TrackEnded,
            Err(TrackEnd::Error(_)) => break PublishDoneCode::InternalError,
        };
        let gid = group.id().0;
        if from.is_some_and(|f| gid < f.group.0) {
            continue;
        }
        if end_group.is_some_and(|e| gid > e) {
            break PublishDoneCode::SubscriptionEnded;
        }
        //= draft-ietf-moq-transport-19#subscriptions
        //# The publisher does not send Objects if the Forward State is 0
        if !*state.forward.borrow() {
            continue;
        }
        // Bound the groups in flight: a subscriber this far behind loses the oldest group.
        while in_flight.len() >= MAX_GROUPS_IN_FLIGHT {
            if let Some((_, stop)) = in_flight.pop_front() {
                stop.send_replace(true);
                state.skipped.fetch_add(1, Ordering::Relaxed);
                inner.config.stats.groups_skipped.fetch_add(1, Ordering::Relaxed);
            }
        }
        let (stop, stopped) = watch::channel(false);
        in_flight.push_back((gid, stop));
        let first_object = from.filter(|f| f.group.0 == gid).map(|f| f.object);
        tasks.spawn(serve_group(
            inner.clone(),
            consumer.info().clone(),
            group,
            alias,
            first_object,
            state.clone(),
            stopped,
        ));
        // Forget finished groups.
        while let Some(done) = tasks.try_join_next() {
            let _ = done;
        }
        in_flight.retain(|(_, stop)| !stop.is_closed());
        if end_group == Some(gid) {
            // The last group of an AbsoluteRange: finish it, then end.
            while tasks.join_next().await.is_some() {}
            break PublishDoneCode::SubscriptionEnded;
        }
    };
    if status == PublishDoneCode::InternalError && *cancel.borrow() {
        for (_, stop) in in_flight {
            stop.send_replace(true);
        }
    }
    // PUBLISH_DONE only after every stream of the subscription is closed.
    while tasks.join_next().await.is_some() {}
    status
}

async fn serve_group<S: WtSession>(
    inner: Arc<Inner<S>>,
    info: TrackInfo,
    mut group: GroupConsumer,
    alias: TrackAlias,
    first_object: Option<ObjectId>,
    state: SubState,
    stopped: watch::Receiver<bool>,
) {
    let mut subgroups = JoinSet::new();
    let mut stop = stopped.clone();
    let timeouts = Timeouts::new(&info, &state);
    loop {
        let sub = tokio::select! {
            s = group.next_subgroup() => s,
            _ = stop.wait_for(|s| *s) => break,
        };
        let Some(sub) = sub else { break };
        match info.delivery {
            Delivery::Streams => subgroups.spawn(serve_subgroup(
                inner.clone(),
                Job { group: group.id(), alias, first_object, timeouts },
                sub,
                state.clone(),
                stopped.clone(),
            )),
            Delivery::Datagrams => subgroups.spawn(serve_datagrams(
                inner.clone(),
                Job { group: group.id(), alias, first_object, timeouts },
                sub,
                stopped.clone(),
            )),
        };
    }
    while subgroups.join_next().await.is_some() {}
}

/// The effective delivery timeouts of a subscription: the smaller non-zero value of the subscriber's parameter
/// and the track's property (draft-19 §10.5.1).
#[derive(Debug, Clone, Copy)]
struct Timeouts {
    object: Option<Duration>,
    subgroup: Option<Duration>,
}

impl Timeouts {
    fn new(info: &TrackInfo, state: &SubState) -> Timeouts {
        let pick = |sub: u64, track: Option<u64>| {
            let values = [sub, track.unwrap_or(0)];
            values.into_iter().filter(|v| *v > 0).min().map(Duration::from_millis)
        };
        Timeouts {
            object: pick(
                state.object_timeout.load(Ordering::Relaxed),
                info.properties.get_int(property::OBJECT_DELIVERY_TIMEOUT),
            ),
            subgroup: pick(
                state.subgroup_timeout.load(Ordering::Relaxed),
                info.properties.get_int(property::SUBGROUP_DELIVERY_TIMEOUT),
            ),
        }
    }
}

/// What one subgroup task sends.
#[derive(Debug, Clone, Copy)]
struct Job {
    group: GroupId,
    alias: TrackAlias,
    /// Skip objects before this one (filters that start mid-group).
    first_object: Option<ObjectId>,
    timeouts: Timeouts,
}

/// Sends each object of a subgroup as one OBJECT_DATAGRAM.
async fn serve_datagrams<S: WtSession>(
    inner: Arc<Inner<S>>,
    job: Job,
    mut sub: SubgroupConsumer,
    mut stopped: watch::Receiver<bool>,
) {
    let Job { group, alias, first_object, timeouts } = job;
    let v = inner.version;
    let max = inner.transport.max_datagram_size();
    loop {
        let next = tokio::select! {
            n = sub.next_timed() => n,
            _ = stopped.wait_for(|s| *s) => return,
        };
        let Ok((o, at)) = next else { return };
        if first_object.is_some_and(|f| o.id < f) {
            continue;
        }
        // A late datagram is dropped rather than sent.
        if timeouts.object.is_some_and(|t| at.elapsed() > t) {
            continue;
        }
        let content = match o.status {
            ObjectStatus::Normal if !o.payload.is_empty() => DatagramContent::Payload(o.payload),
            status => DatagramContent::Status(status),
        };
        let d = ObjectDatagram {
            track_alias: alias,
            group_id: group,
            object_id: o.id,
            publisher_priority: Some(sub.priority()),
            properties: o.properties,
            end_of_group: false,
            content,
        };
        let Ok(bytes) = d.encode_to_vec(v) else { continue };
        //= draft-ietf-moq-transport-19#object-datagram
        //# When the total size is larger than the maximum datagram size for the session, the Object will be
        //# dropped without any explicit notification.
        if bytes.len() <= max {
            let _ = inner.transport.send_datagram(Bytes::from(bytes));
        }
    }
}

async fn serve_subgroup<S: WtSession>(
    inner: Arc<Inner<S>>,
    job: Job,
    mut sub: SubgroupConsumer,
    state: SubState,
    mut stopped: watch::Receiver<bool>,
) {
    let Job { group, alias, first_object, timeouts } = job;
    let v = inner.version;
    let Ok(stream) = inner.transport.open_uni().await else {
        return;
    };
    state.streams.fetch_add(1, Ordering::Relaxed);
    let mut writer = Writer::new(stream);
    let prio = state.priority.load(Ordering::Relaxed) as u8;
    writer.set_priority(send_order(prio, sub.priority(), group.0, state.order));
    let header = SubgroupHeader {
        track_alias: alias,
        group_id: group,
        subgroup: if sub.id().0 == 0 { SubgroupIdMode::Zero } else { SubgroupIdMode::Explicit(sub.id()) },
        publisher_priority: Some(sub.priority()),
        has_properties: true,
        end_of_group: false,
        first_object: first_object.is_none_or(|f| f.0 == 0),
    };
    let mut w = SubgroupWriter::new(header, v);
    let mut buf = BytesMut::with_capacity(64);
    // The header goes out at once: the subscriber learns the subgroup exists even if it is reset later.
    if w.write_header(&mut buf).is_err() || writer.write(&buf).await.is_err() {
        return;
    }
    buf.clear();
    enum Step {
        Next(Result<(crate::model::Object, std::time::Instant), Closed>),
        Stop,
        PeerStopped,
    }
    loop {
        let step = tokio::select! {
            n = sub.next_timed() => Step::Next(n),
            _ = stopped.wait_for(|s| *s) => Step::Stop,
            _ = writer.closed() => Step::PeerStopped,
        };
        let next = match step {
            Step::Next(n) => n,
            Step::Stop => {
                writer.reset(StreamCode::TooFarBehind.to_u64() as u32);
                return;
            }
            Step::PeerStopped => return,
        };
        match next {
            Ok((o, at)) => {
                if first_object.is_some_and(|f| o.id < f) {
                    continue;
                }
                //= draft-ietf-moq-transport-19#delivery-timeouts
                //# if the time elapsed exceeds OBJECT_DELIVERY_TIMEOUT, it MUST reset the underlying transport stream
                //# with the reset stream code DELIVERY_TIMEOUT
                if timeouts.object.is_some_and(|t| at.elapsed() > t) {
                    inner.config.stats.delivery_timeouts.fetch_add(1, Ordering::Relaxed);
                    writer.reset(StreamCode::DeliveryTimeout.to_u64() as u32);
                    return;
                }
                let h = ObjectHeader {
                    object_id: o.id,
                    properties: o.properties,
                    payload_len: o.payload.len(),
                    status: o.status,
                };
                if w.write_object_header(&mut buf, &h).is_err() {
                    writer.reset(StreamCode::InternalError.to_u64() as u32);
                    return;
                }
                if writer.write(&buf).await.is_err() {
                    return;
                }
                buf.clear();
                inner.config.stats.objects_out.fetch_add(1, Ordering::Relaxed);
                inner.config.stats.bytes_out.fetch_add(o.payload.len() as u64, Ordering::Relaxed);
                if !o.payload.is_empty() && writer.write_chunk(o.payload).await.is_err() {
                    return;
                }
            }
            Err(Closed::Finished) => {
                if !buf.is_empty() && writer.write(&buf).await.is_err() {
                    return;
                }
                writer.finish();
                // The subgroup delivery timeout runs from the FIN until the peer has everything.
                if let Some(t) = timeouts.subgroup
                    && tokio::time::timeout(t, writer.closed()).await.is_err()
                {
                    writer.reset(StreamCode::DeliveryTimeout.to_u64() as u32);
                }
                return;
            }
            Err(Closed::Reset(code)) => {
                writer.reset(code as u32);
                return;
            }
        }
    }
}
