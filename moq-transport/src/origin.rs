//! What a session publishes: the local tracks and namespaces, shared by any number of sessions.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use moq_wire::namespace::{FullTrackName, TrackNamespace};
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

#[derive(Default)]
struct State {
    tracks: HashMap<FullTrackName, TrackProducer>,
    namespaces: BTreeSet<TrackNamespace>,
}

/// The tracks and namespaces this endpoint serves to its peers.
///
/// Cloning gives another handle to the same set, so one origin can back many sessions (a relay) or a single
/// publisher. Subscribers that ask for a track under a published namespace get it from here.
#[derive(Clone)]
pub struct Origin {
    state: Arc<Mutex<State>>,
    events: broadcast::Sender<NamespaceEvent>,
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
        Origin { state: Arc::default(), events: broadcast::channel(1024).0 }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes a track (and its namespace). Replaces a track of the same name.
    pub fn publish_track(&self, track: TrackProducer) {
        let name = track.info().name.clone();
        self.publish_namespace(name.namespace.clone());
        self.lock().tracks.insert(name, track);
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
}
