//! The session's mutable state: one plain struct behind one lock ([`super::Inner::state`]), changed only by short
//! methods that never await. The decisions that need no I/O (our request ids and aliases, the GOAWAY gate, the
//! peer's request ids, namespace prefix overlap, what the peer publishes) are made here and unit-tested without
//! tokio.

use std::collections::HashMap;
use std::sync::Arc;

use moq_wire::namespace::{FullTrackName, TrackNamespace};
use moq_wire::{RequestId, TrackAlias};
use tokio::sync::{oneshot, watch};

use super::authority::TokenCache;
use super::config::{Role, SessionConfig};
use super::limits::Held;
use super::receive::Incoming;
use super::request_ids::PeerRequestIds;
use super::subscription::Served;
use crate::error::{Error, RequestFailure, SessionError};
use crate::io::Reader;

/// The two kinds of namespace prefix request whose prefixes must not overlap others of their kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PrefixKind {
    /// SUBSCRIBE_NAMESPACE.
    Namespaces,
    /// SUBSCRIBE_TRACKS.
    Tracks,
}

/// Everything about a session that changes, for a session whose receive streams are `R`.
pub(super) struct State<R> {
    /// Our next Request ID: even for a client, odd for a server, up by two.
    next_request: u64,
    /// Our next Track Alias.
    next_alias: u64,
    /// The peer sent GOAWAY: we make no new requests.
    goaway_received: bool,
    /// We sent GOAWAY: the peer's new requests are refused.
    goaway_sent: bool,
    /// Whether the peer is the client (its Request IDs are even).
    peer_is_client: bool,
    /// Request IDs the peer has used.
    peer_ids: PeerRequestIds,
    /// Tracks we receive, by alias.
    pub(super) incoming: HashMap<u64, Arc<Incoming>>,
    /// Our FETCHes waiting for their data stream, by request id.
    pub(super) fetches: HashMap<u64, oneshot::Sender<Reader<R>>>,
    /// Subscriptions we serve, by request id (a joining FETCH names one).
    pub(super) served: HashMap<u64, Served>,
    /// The peer's SUBSCRIBEs still finding their track: a joining FETCH naming one waits for it.
    pub(super) pending_subscribes: HashMap<u64, watch::Receiver<()>>,
    /// Namespaces the peer published to us (PUBLISH_NAMESPACE) and has not withdrawn.
    peer_namespaces: Vec<TrackNamespace>,
    namespace_prefixes: Vec<TrackNamespace>,
    tracks_prefixes: Vec<TrackNamespace>,
    /// The peer's registered AUTHORIZATION_TOKEN aliases.
    pub(super) tokens: TokenCache,
    /// What the peer's open requests hold, against [`SessionConfig::limits`].
    pub(super) held: Held,
}

impl<R> State<R> {
    pub(super) fn new(role: Role, config: &SessionConfig) -> State<R> {
        State {
            next_request: if role == Role::Client { 0 } else { 1 },
            next_alias: 0,
            goaway_received: false,
            goaway_sent: false,
            peer_is_client: role == Role::Server,
            peer_ids: PeerRequestIds::default(),
            incoming: HashMap::new(),
            fetches: HashMap::new(),
            served: HashMap::new(),
            pending_subscribes: HashMap::new(),
            peer_namespaces: Vec::new(),
            namespace_prefixes: Vec::new(),
            tracks_prefixes: Vec::new(),
            tokens: TokenCache::new(config.max_auth_token_cache),
            held: Held::new(&config.limits),
        }
    }

    /// A Request ID for a new request of ours (or a REQUEST_UPDATE), unless the peer sent GOAWAY.
    pub(super) fn next_request_id(&mut self) -> Result<RequestId, Error> {
        //= draft-ietf-moq-transport-19#message-goaway
        //# The client MUST NOT initiate new requests in a session once it has received a GOAWAY from the server.
        if self.goaway_received {
            return Err(Error::Request(RequestFailure::GoingAway));
        }
        let id = RequestId(self.next_request);
        self.next_request += 2;
        Ok(id)
    }

    /// A Track Alias for a track we publish.
    pub(super) fn next_alias(&mut self) -> TrackAlias {
        let alias = TrackAlias(self.next_alias);
        self.next_alias += 1;
        alias
    }

    /// Records the peer's GOAWAY.
    pub(super) fn goaway_received(&mut self) {
        self.goaway_received = true;
    }

    /// Records that we send GOAWAY; `false` if we already did.
    pub(super) fn send_goaway(&mut self) -> bool {
        !std::mem::replace(&mut self.goaway_sent, true)
    }

    /// Whether the peer's new requests are refused (we sent GOAWAY).
    pub(super) fn going_away(&self) -> bool {
        self.goaway_sent
    }

    /// Validates a Request ID from the peer: its parity, and that it is new.
    pub(super) fn check_peer_request(&mut self, id: RequestId) -> Result<(), Error> {
        //= draft-ietf-moq-transport-19#request-id
        //# If an endpoint receives a Request ID where the least significant bit is incorrect for the sender,
        //# or a duplicate Request ID, it MUST close the session with `INVALID_REQUEST_ID`.
        if id.is_client() != self.peer_is_client || !self.peer_ids.insert(id.0) {
            return Err(Error::Session(SessionError::InvalidRequestId(id.0)));
        }
        Ok(())
    }

    /// Records a namespace the peer published to us.
    pub(super) fn add_peer_namespace(&mut self, namespace: TrackNamespace) {
        self.peer_namespaces.push(namespace);
    }

    /// Forgets a namespace the peer withdrew.
    pub(super) fn remove_peer_namespace(&mut self, namespace: &TrackNamespace) {
        if let Some(i) = self.peer_namespaces.iter().position(|n| n == namespace) {
            self.peer_namespaces.remove(i);
        }
    }

    /// Whether the peer itself publishes `name` to us: under a namespace it announced, or PUBLISHed.
    pub(super) fn published_by_peer(&self, name: &FullTrackName) -> bool {
        self.peer_namespaces.iter().any(|ns| name.namespace.starts_with(ns))
            || self.incoming.values().any(|i| i.producer.info().name == *name)
    }

    fn prefixes(&mut self, kind: PrefixKind) -> &mut Vec<TrackNamespace> {
        match kind {
            PrefixKind::Namespaces => &mut self.namespace_prefixes,
            PrefixKind::Tracks => &mut self.tracks_prefixes,
        }
    }

    /// Claims `prefix` for a request of `kind`; `false` if it overlaps (one is a prefix of the other) a prefix
    /// already claimed by a request of that kind.
    //= draft-ietf-moq-transport-19#message-subscribe-ns
    //# PREFIX_OVERLAP: a prefix that overlaps another active SUBSCRIBE_NAMESPACE of this session is refused.
    pub(super) fn claim_prefix(&mut self, kind: PrefixKind, prefix: &TrackNamespace) -> bool {
        let prefixes = self.prefixes(kind);
        if prefixes.iter().any(|p| overlaps(p, prefix)) {
            return false;
        }
        prefixes.push(prefix.clone());
        true
    }

    /// Moves a claim from `old` to `new`; `false`, keeping `old`, if `new` overlaps another claim.
    pub(super) fn move_prefix(&mut self, kind: PrefixKind, old: &TrackNamespace, new: &TrackNamespace) -> bool {
        let prefixes = self.prefixes(kind);
        if prefixes.iter().any(|p| p != old && overlaps(p, new)) {
            return false;
        }
        if let Some(slot) = prefixes.iter_mut().find(|p| *p == old) {
            *slot = new.clone();
        }
        true
    }

    /// Releases a claim.
    pub(super) fn release_prefix(&mut self, kind: PrefixKind, prefix: &TrackNamespace) {
        let prefixes = self.prefixes(kind);
        if let Some(i) = prefixes.iter().position(|p| p == prefix) {
            prefixes.swap_remove(i);
        }
    }
}

/// Whether one prefix is a prefix of the other (the draft's overlap).
fn overlaps(a: &TrackNamespace, b: &TrackNamespace) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(role: Role) -> State<()> {
        State::new(role, &SessionConfig::default())
    }

    fn ns(path: &str) -> TrackNamespace {
        TrackNamespace::from_path(path).unwrap()
    }

    #[test]
    fn request_ids_keep_parity_and_stop_at_goaway() {
        let mut client = state(Role::Client);
        assert_eq!(client.next_request_id().unwrap(), RequestId(0));
        assert_eq!(client.next_request_id().unwrap(), RequestId(2));
        let mut server = state(Role::Server);
        assert_eq!(server.next_request_id().unwrap(), RequestId(1));
        assert_eq!(server.next_request_id().unwrap(), RequestId(3));
        client.goaway_received();
        assert!(matches!(client.next_request_id(), Err(Error::Request(RequestFailure::GoingAway))));
    }

    #[test]
    fn aliases_count_up() {
        let mut s = state(Role::Server);
        assert_eq!(s.next_alias(), TrackAlias(0));
        assert_eq!(s.next_alias(), TrackAlias(1));
    }

    #[test]
    fn goaway_is_sent_once() {
        let mut s = state(Role::Server);
        assert!(!s.going_away());
        assert!(s.send_goaway());
        assert!(!s.send_goaway());
        assert!(s.going_away());
    }

    #[test]
    fn peer_request_ids_need_the_peers_parity_and_are_used_once() {
        let mut server = state(Role::Server);
        server.check_peer_request(RequestId(0)).unwrap();
        assert!(matches!(
            server.check_peer_request(RequestId(0)),
            Err(Error::Session(SessionError::InvalidRequestId(0)))
        ));
        assert!(matches!(
            server.check_peer_request(RequestId(1)),
            Err(Error::Session(SessionError::InvalidRequestId(1)))
        ));
        let mut client = state(Role::Client);
        client.check_peer_request(RequestId(1)).unwrap();
        assert!(client.check_peer_request(RequestId(2)).is_err());
    }

    #[test]
    fn prefixes_of_one_kind_must_not_overlap() {
        let mut s = state(Role::Server);
        assert!(s.claim_prefix(PrefixKind::Namespaces, &ns("a/b")));
        assert!(!s.claim_prefix(PrefixKind::Namespaces, &ns("a")));
        assert!(!s.claim_prefix(PrefixKind::Namespaces, &ns("a/b/c")));
        assert!(s.claim_prefix(PrefixKind::Namespaces, &ns("a/c")));
        // The other kind is counted on its own.
        assert!(s.claim_prefix(PrefixKind::Tracks, &ns("a")));
        // A move may not land on another claim, but may narrow its own.
        assert!(!s.move_prefix(PrefixKind::Namespaces, &ns("a/c"), &ns("a/b/x")));
        assert!(s.move_prefix(PrefixKind::Namespaces, &ns("a/c"), &ns("a/c/d")));
        s.release_prefix(PrefixKind::Namespaces, &ns("a/b"));
        assert!(s.claim_prefix(PrefixKind::Namespaces, &ns("a/b/c")));
    }

    #[test]
    fn the_peer_publishes_what_it_announced() {
        let mut s = state(Role::Server);
        let name = FullTrackName::new(ns("live/one"), "video");
        assert!(!s.published_by_peer(&name));
        s.add_peer_namespace(ns("live"));
        assert!(s.published_by_peer(&name));
        s.remove_peer_namespace(&ns("live"));
        assert!(!s.published_by_peer(&name));
    }
}
