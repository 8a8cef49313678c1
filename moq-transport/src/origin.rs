//! What a session publishes: the local tracks and namespaces, shared by any number of sessions.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use moq_wire::codes::RequestErrorCode;
use moq_wire::namespace::{FullTrackName, TrackNamespace};
use moq_wire::{GroupOrder, Location};
use tokio::sync::broadcast;

use crate::model::{TrackConsumer, TrackProducer};

/// A change to the set of published namespaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamespaceEvent {
    /// A namespace is now published.
    Added(TrackNamespace),
    /// A namespace is no longer published.
    Removed(TrackNamespace),
}

/// Finds a track that is not held locally, e.g. by subscribing upstream (a relay); or says why not, with the
/// REQUEST_ERROR code the requester gets.
pub type Resolver =
    Arc<dyn Fn(TrackRequest) -> Pin<Box<dyn Future<Output = Result<TrackProducer, Unresolved>> + Send>> + Send + Sync>;

/// What a [`Resolver`] is asked for: the track, and what the request that needs it asked of the track, which a
/// SUBSCRIBE upstream should carry (draft-19 §NEW_GROUP_REQUEST: "A relay that receives a NEW_GROUP_REQUEST for a
/// Track without an Established subscription MUST include the NEW_GROUP_REQUEST when subscribing upstream").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackRequest {
    /// The track.
    pub name: FullTrackName,
    /// The requester's SUBSCRIBER_PRIORITY, if it gave one.
    pub priority: Option<u8>,
    /// The requester's NEW_GROUP_REQUEST, if it gave one.
    pub new_group_request: Option<u64>,
}

impl TrackRequest {
    /// A request for `name` that asks nothing more of it.
    pub fn new(name: FullTrackName) -> TrackRequest {
        TrackRequest { name, priority: None, new_group_request: None }
    }
}

/// Why a track could not be found: the REQUEST_ERROR code and reason to answer the request with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unresolved {
    /// The REQUEST_ERROR code.
    pub code: RequestErrorCode,
    /// The reason phrase.
    pub reason: String,
}

impl Unresolved {
    /// No publisher has the track (DOES_NOT_EXIST).
    pub fn not_found() -> Unresolved {
        Unresolved { code: RequestErrorCode::DoesNotExist, reason: "no such track".into() }
    }
}

/// Fetches a range the origin does not hold from elsewhere (a relay's upstream): track, start, end (exclusive;
/// object 0 = whole group), group order. `None` when it cannot; otherwise the answer streams through.
pub type Fetcher = Arc<
    dyn Fn(
            FullTrackName,
            Location,
            Location,
            GroupOrder,
        ) -> Pin<Box<dyn Future<Output = Option<crate::model::FetchSource>> + Send>>
        + Send
        + Sync,
>;

#[derive(Default)]
struct State {
    tracks: HashMap<FullTrackName, TrackProducer>,
    namespaces: BTreeSet<TrackNamespace>,
    resolver: Option<Resolver>,
    fetcher: Option<Fetcher>,
}

/// The tracks and namespaces this endpoint serves to its peers.
///
/// Cloning gives another handle to the same set, so one origin can back many sessions (a relay) or a single
/// publisher. Subscribers that ask for a track under a published namespace get it from here.
#[derive(Clone)]
pub struct Origin {
    state: Arc<Mutex<State>>,
    events: broadcast::Sender<NamespaceEvent>,
    published: broadcast::Sender<FullTrackName>,
}

impl Default for Origin {
    fn default() -> Self {
        Origin::new()
    }
}

impl std::fmt::Debug for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.lock();
        f.debug_struct("Origin").field("namespaces", &s.namespaces).field("tracks", &s.tracks.len()).finish()
    }
}

impl Origin {
    /// An empty origin.
    pub fn new() -> Origin {
        Origin { state: Arc::default(), events: broadcast::channel(1024).0, published: broadcast::channel(1024).0 }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes a track (and its namespace). Replaces a track of the same name.
    pub fn publish_track(&self, track: TrackProducer) {
        let name = track.info().name.clone();
        let namespace = name.namespace.clone();
        // The track first: whoever hears of the namespace finds it.
        self.lock().tracks.insert(name.clone(), track);
        self.publish_namespace(namespace);
        let _ = self.published.send(name);
    }

    /// Stops publishing a track.
    pub fn remove_track(&self, name: &FullTrackName) -> Option<TrackProducer> {
        self.lock().tracks.remove(name)
    }

    /// Publishes a namespace without tracks yet.
    pub fn publish_namespace(&self, ns: TrackNamespace) {
        if self.lock().namespaces.insert(ns.clone()) {
            let _ = self.events.send(NamespaceEvent::Added(ns));
        }
    }

    /// Withdraws a namespace and every track under it.
    pub fn remove_namespace(&self, ns: &TrackNamespace) {
        let removed = {
            let mut s = self.lock();
            s.tracks.retain(|name, _| &name.namespace != ns);
            s.namespaces.remove(ns)
        };
        if removed {
            let _ = self.events.send(NamespaceEvent::Removed(ns.clone()));
        }
    }

    /// The track, if published.
    pub fn track(&self, name: &FullTrackName) -> Option<TrackProducer> {
        self.lock().tracks.get(name).cloned()
    }

    /// Sets the function that fetches ranges this origin does not hold (FETCH forwarded upstream).
    pub fn set_fetcher(&self, fetcher: Fetcher) {
        self.lock().fetcher = Some(fetcher);
    }

    /// The fetcher, if any.
    pub fn fetcher(&self) -> Option<Fetcher> {
        self.lock().fetcher.clone()
    }

    /// Sets the function that finds tracks not held locally (see [`Origin::resolve`]).
    pub fn set_resolver(&self, resolver: Resolver) {
        self.lock().resolver = Some(resolver);
    }

    /// The track if held locally, or else whatever the resolver finds (which is then held, so that every later
    /// subscriber shares it). Tracks that ended are not returned.
    pub async fn resolve(&self, name: &FullTrackName) -> Option<TrackProducer> {
        self.find(name).await.ok()
    }

    /// As [`Origin::resolve`], with the resolver's reason when the track is not found.
    pub async fn find(&self, name: &FullTrackName) -> Result<TrackProducer, Unresolved> {
        self.find_for(TrackRequest::new(name.clone())).await
    }

    /// As [`Origin::find`], for a request whose parameters the resolver passes on.
    pub async fn find_for(&self, request: TrackRequest) -> Result<TrackProducer, Unresolved> {
        let name = &request.name;
        let resolver = {
            let s = self.lock();
            if let Some(t) = s.tracks.get(name)
                && t.ended().is_none()
            {
                return Ok(t.clone());
            }
            s.resolver.clone()
        }
        .ok_or_else(Unresolved::not_found)?;
        let name = name.clone();
        let track = resolver(request).await?;
        let name = &name;
        let mut s = self.lock();
        // Another request may have resolved it meanwhile: keep the first live one.
        if let Some(existing) = s.tracks.get(name)
            && existing.ended().is_none()
        {
            return Ok(existing.clone());
        }
        s.tracks.insert(name.clone(), track.clone());
        Ok(track)
    }

    /// A consumer at the live edge of a published track.
    pub fn consume(&self, name: &FullTrackName) -> Option<TrackConsumer> {
        self.track(name).map(|t| t.consume())
    }

    /// The published namespaces under `prefix`.
    pub fn namespaces(&self, prefix: &TrackNamespace) -> Vec<TrackNamespace> {
        self.lock().namespaces.iter().filter(|ns| ns.starts_with(prefix)).cloned().collect()
    }

    /// The published tracks under `prefix`.
    pub fn tracks(&self, prefix: &TrackNamespace) -> Vec<TrackProducer> {
        self.lock().tracks.iter().filter(|(n, _)| n.namespace.starts_with(prefix)).map(|(_, t)| t.clone()).collect()
    }

    /// Whether a published namespace is a prefix of (or equal to) `ns`.
    pub fn serves(&self, ns: &TrackNamespace) -> bool {
        self.lock().namespaces.iter().any(|p| ns.starts_with(p))
    }

    /// Follows namespace changes from now on.
    pub fn watch(&self) -> broadcast::Receiver<NamespaceEvent> {
        self.events.subscribe()
    }

    /// Follows tracks published from now on (by name; [`Origin::track`] has the track).
    pub fn watch_tracks(&self) -> broadcast::Receiver<FullTrackName> {
        self.published.subscribe()
    }
}
