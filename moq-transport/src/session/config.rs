//! Session settings, counters and the authorization hook.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use moq_wire::namespace::TrackNamespace;
use moq_wire::token::AuthToken;

use super::limits::RequestLimits;
use super::overload::Overload;
use crate::model::DEFAULT_GROUP_WINDOW;
use crate::origin::Origin;

/// The default [`SessionConfig::max_auth_token_cache`]: room for a few JWTs.
pub const DEFAULT_MAX_AUTH_TOKEN_CACHE: u64 = 8 * 1024;

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
    /// Write a MoQT qlog of each session (draft-pardue-moq-qlog-moq-events) into this directory: one JSON-SEQ
    /// file per session, for debugging interop. `None` (the default): no log.
    pub qlog_dir: Option<std::path::PathBuf>,
    /// Sent as MOQT_IMPLEMENTATION.
    pub implementation: String,
    /// Client over raw QUIC only: PATH (path and query of the `moqt://` URL).
    pub path: Option<String>,
    /// Client over raw QUIC only: AUTHORITY of the `moqt://` URL.
    pub authority: Option<String>,
    /// Session-level AUTHORIZATION_TOKEN options to send in SETUP.
    pub auth_tokens: Vec<AuthToken>,
    /// MAX_AUTH_TOKEN_CACHE_SIZE we announce: bytes of AUTHORIZATION_TOKEN aliases the peer may register
    /// (16 per token plus its value). 0 allows no aliases.
    pub max_auth_token_cache: u64,
    /// What the peer may make this session hold (requests by kind, updates per second).
    pub limits: RequestLimits,
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
    /// How long a request of ours waits for the peer to allow another bidirectional stream (its stream credit)
    /// before it fails with [`RequestFailure::Timeout`](crate::RequestFailure::Timeout); without a limit, a peer that never grants one holds the
    /// request forever.
    pub request_open_timeout: Duration,
    /// Unidirectional streams the peer may have open at once (one per subgroup in flight). QUIC transports only.
    pub max_uni_streams: u32,
    /// QUIC keep-alive: how often to send a PING when nothing else is sent. QUIC transports only.
    pub keep_alive: Duration,
    /// QUIC idle timeout we offer: a connection silent this long is dead. Both ends use the smaller of the two
    /// offers, so a client (say a relay's cluster link) that offers a short one gets fast failure detection on
    /// both sides. Keep it a few keep-alive intervals long. QUIC transports only.
    pub idle_timeout: Duration,
    /// Bytes QUIC may hold for sending per connection, written but not yet acknowledged (quinn's
    /// `send_window`). Small enough, it keeps a subscriber's backlog where [`SessionConfig::max_latency`] can see
    /// and drop it, rather than queued inside QUIC. QUIC transports only.
    pub send_window: u64,
    /// Load shedding for live subscriptions (those that start at the live edge): an object that has waited this
    /// long to be sent, while a newer group exists, ends its group for that subscriber (the stream is reset
    /// with DELIVERY_TIMEOUT and counted in `groups_shed`), so that a subscriber the relay cannot keep up with
    /// stays near the live edge. Lower-priority streams wait first, so they are shed first. `None`: never.
    pub max_latency: Option<Duration>,
    /// Overload control shared by the sessions of a relay: while it reports the runtime short of CPU, live
    /// subscriptions skip a share of new groups, least important first (counted in `groups_shed`). `None`: never.
    pub overload: Option<Arc<Overload>>,
    /// QUIC's congestion controller. QUIC transports only.
    pub congestion: Congestion,
    /// How often we ask the peer to acknowledge what we send (QUIC ACK frequency, draft-ietf-quic-ack-frequency;
    /// peers without the extension ignore it). `None` (the default): QUIC's own, an ACK for every second packet.
    /// QUIC transports only.
    pub ack_frequency: Option<AckFrequency>,
}

/// The ACK frequency we ask a peer for: an ACK once more than `threshold` ack-eliciting packets arrived, or
/// `max_delay` after the first unacknowledged one, whichever comes first. A packet out of order is still
/// acknowledged at once, so loss detection stays as quick as without it.
///
/// Fewer ACKs are fewer packets for a sender to receive and process: a relay at 100 subscribers spent about 10 %
/// less CPU with a threshold of 16 and 2 ms, but some connections then stalled for 0.1-1.3 s now and then, so it
/// is off by default (docs/performance.md, "QUIC ACK frequency").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckFrequency {
    /// Ack-eliciting packets the peer may receive without acknowledging them.
    pub threshold: u32,
    /// How long the peer may hold an ACK back. quinn caps it at the larger of the path's RTT and 25 ms.
    pub max_delay: Duration,
}

impl AckFrequency {
    /// What command-line flags ask for: `threshold` 0 means none (QUIC's default).
    pub fn from_flags(threshold: u32, max_delay: Duration) -> Option<AckFrequency> {
        (threshold > 0).then_some(AckFrequency { threshold, max_delay })
    }
}

/// A QUIC congestion controller (quinn's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Congestion {
    /// CUBIC (RFC 9438), quinn's own default: every loss is taken for congestion. At 1 % random loss and 50 ms
    /// RTT it cannot carry a 2.6 Mb/s stream (docs/evaluation.md).
    Cubic,
    /// NewReno (RFC 9002).
    NewReno,
    /// BBR, our default: paces at the measured bottleneck rate, so random loss does not cut the rate.
    #[default]
    Bbr,
}

impl std::str::FromStr for Congestion {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "cubic" => Ok(Congestion::Cubic),
            "newreno" | "new-reno" => Ok(Congestion::NewReno),
            "bbr" => Ok(Congestion::Bbr),
            other => Err(format!("unknown congestion controller `{other}` (cubic, newreno, bbr)")),
        }
    }
}

impl std::fmt::Display for Congestion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Congestion::Cubic => "cubic",
            Congestion::NewReno => "newreno",
            Congestion::Bbr => "bbr",
        })
    }
}

/// The default [`SessionConfig::send_window`]: quinn's own (10 MB).
pub const DEFAULT_SEND_WINDOW: u64 = 10_000_000;

/// The default [`SessionConfig::keep_alive`].
pub const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(4);
/// The default [`SessionConfig::idle_timeout`].
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The default [`SessionConfig::request_open_timeout`].
pub const DEFAULT_REQUEST_OPEN_TIMEOUT: Duration = Duration::from_secs(5);

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
    /// Groups a subscriber lost because it fell too far behind (streams reset with CANCELLED).
    pub groups_skipped: AtomicU64,
    /// Subgroup streams reset because an object outlived its delivery timeout.
    pub delivery_timeouts: AtomicU64,
    /// Groups a subscriber lost to load shedding ([`SessionConfig::max_latency`]).
    pub groups_shed: AtomicU64,
    /// Requests refused at [`RequestLimits::max_requests`].
    pub refused_requests: AtomicU64,
    /// SUBSCRIBEs and PUBLISHes refused at [`RequestLimits::max_subscriptions`].
    pub refused_subscriptions: AtomicU64,
    /// PUBLISH_NAMESPACEs refused at [`RequestLimits::max_namespaces`].
    pub refused_namespaces: AtomicU64,
    /// SUBSCRIBE_NAMESPACE and SUBSCRIBE_TRACKS refused at [`RequestLimits::max_prefixes`].
    pub refused_prefixes: AtomicU64,
    /// REQUEST_UPDATEs refused beyond [`RequestLimits::updates_per_second`].
    pub refused_updates: AtomicU64,
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
            .field("request_open_timeout", &self.request_open_timeout)
            .field("max_uni_streams", &self.max_uni_streams)
            .field("send_window", &self.send_window)
            .field("congestion", &self.congestion)
            .field("ack_frequency", &self.ack_frequency)
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
            qlog_dir: None,
            implementation: concat!("moq-rs/", env!("CARGO_PKG_VERSION")).to_string(),
            path: None,
            authority: None,
            auth_tokens: Vec::new(),
            max_auth_token_cache: DEFAULT_MAX_AUTH_TOKEN_CACHE,
            limits: RequestLimits::default(),
            window: DEFAULT_GROUP_WINDOW,
            authorizer: None,
            connect_path: None,
            stats: Arc::default(),
            max_cache_bytes: u64::MAX,
            max_bidi_streams: DEFAULT_MAX_BIDI_STREAMS,
            request_open_timeout: DEFAULT_REQUEST_OPEN_TIMEOUT,
            max_uni_streams: DEFAULT_MAX_UNI_STREAMS,
            keep_alive: DEFAULT_KEEP_ALIVE,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            send_window: DEFAULT_SEND_WINDOW,
            max_latency: None,
            overload: None,
            congestion: Congestion::default(),
            ack_frequency: None,
        }
    }
}
