//! The routing table: who publishes what (announced namespaces and the sessions behind them), the relay's
//! copies of tracks and the upstream subscriptions feeding them. Plain table operations only: what a change
//! sets off (subscribing upstream, the cluster link) lives in `router.rs`, `upstream.rs` and `cluster.rs`,
//! which all depend on this module and not the other way round.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use moq_transport::wire::namespace::{FullTrackName, TrackNamespace};
use moq_transport::{Origin, Session, Subscription};

use crate::merge::Merged;

/// The router id of namespaces learned from the cluster root.
pub(crate) const CLUSTER_ID: u64 = u64::MAX;

/// A track the relay subscribed to upstream: its merged copy and a subscription per publisher feeding it.
pub(crate) struct Upstream {
    pub(crate) merged: Arc<Merged>,
    /// The publishing session's router id and the subscription to it.
    pub(crate) sources: Vec<(u64, Subscription)>,
}

impl Upstream {
    /// Whether session `id` feeds the track now; sources whose subscription ended (their session died) are
    /// dropped first, so that a session reusing the id (the cluster link after a reconnect) subscribes again.
    pub(crate) fn feeds_from(&mut self, id: u64) -> bool {
        self.sources.retain(|(_, sub)| sub.track().ended().is_none());
        self.sources.iter().any(|(sid, _)| *sid == id)
    }
}

/// The routing table's contents, changed only under [`Router`]'s one lock by the methods in this file.
#[derive(Default)]
struct Table {
    /// Every open session, by router id.
    sessions: HashMap<u64, Session>,
    /// Announced namespaces and the sessions that announced them.
    publishers: Vec<(TrackNamespace, u64, Session)>,
    /// The relay's copies of tracks it subscribed to upstream (or was PUBLISHed).
    upstream: HashMap<FullTrackName, Upstream>,
    /// One lock per track being resolved upstream, so that its viewers share one upstream SUBSCRIBE.
    resolving: HashMap<FullTrackName, Arc<tokio::sync::Mutex<()>>>,
    /// Namespaces the relay publishes itself (`--demo`), announced to the cluster like a local publisher's.
    own: Vec<TrackNamespace>,
}

/// Who publishes what, and the relay's copies of tracks: one table behind one lock (never held across an
/// `.await`), plus what never changes.
pub(crate) struct Router {
    table: Mutex<Table>,
    /// The cache limits of the relay's copies of tracks: groups and bytes.
    pub(crate) cache: (usize, u64),
    /// How long a track whose publishers were all lost waits for one to come back (see [`Merged`]).
    pub(crate) grace: std::time::Duration,
    /// Bumped whenever the publishers change, so that the cluster link re-announces what is local.
    pub(crate) changed: tokio::sync::watch::Sender<u64>,
}

impl Router {
    /// An empty table; the relay's track copies keep `window` groups and `max_bytes` payload bytes, and wait
    /// `grace` for a lost publisher to be replaced.
    pub(crate) fn new(window: usize, max_bytes: u64, grace: std::time::Duration) -> Router {
        Router {
            table: Mutex::default(),
            cache: (window, max_bytes),
            grace,
            changed: tokio::sync::watch::Sender::new(0),
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records an open session.
    pub(crate) fn add_session(&self, id: u64, session: Session) {
        self.table().sessions.insert(id, session);
    }

    /// Forgets a closed session.
    pub(crate) fn remove_session(&self, id: u64) {
        self.table().sessions.remove(&id);
    }

    /// Every open session.
    pub(crate) fn sessions(&self) -> Vec<Session> {
        self.table().sessions.values().cloned().collect()
    }

    /// Publishes `ns` as the relay's own (its tracks are in the origin), so the cluster learns it too.
    pub(crate) fn publish_own(&self, ns: TrackNamespace, origin: &Origin) {
        self.table().own.push(ns.clone());
        origin.publish_namespace(ns);
        self.changed.send_modify(|n| *n += 1);
    }

    /// The namespaces announced by local publishers or the relay's own (not learned from the cluster root).
    pub(crate) fn local_namespaces(&self) -> Vec<TrackNamespace> {
        let table = self.table();
        let mut out: Vec<TrackNamespace> =
            table.publishers.iter().filter(|(_, id, _)| *id != CLUSTER_ID).map(|(p, _, _)| p.clone()).collect();
        out.extend(table.own.iter().cloned());
        out.sort();
        out.dedup();
        out
    }

    /// Runs `f` on the relay's track copies, under the table's lock.
    pub(crate) fn upstreams<R>(&self, f: impl FnOnce(&mut HashMap<FullTrackName, Upstream>) -> R) -> R {
        f(&mut self.table().upstream)
    }

    /// The lock that makes the viewers of `name` share one upstream SUBSCRIBE.
    pub(crate) fn resolving(&self, name: &FullTrackName) -> Arc<tokio::sync::Mutex<()>> {
        self.table().resolving.entry(name.clone()).or_default().clone()
    }

    /// Drops the resolving lock of `name` when nobody holds it.
    pub(crate) fn forget_resolving(&self, name: &FullTrackName) {
        let mut table = self.table();
        if table.resolving.get(name).is_some_and(|lock| Arc::strong_count(lock) == 1) {
            table.resolving.remove(name);
        }
    }

    /// How many track copies and resolving locks the table holds.
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        let table = self.table();
        table.upstream.len() + table.resolving.len()
    }

    /// Records that session `id` publishes `ns` and makes it known, under the lock that orders every namespace
    /// change (so a concurrent withdraw cannot undo it). Returns the tracks under `ns` the relay already holds a
    /// copy of that this session does not feed yet: the caller subscribes to them from it.
    pub(crate) fn record_announce(
        &self,
        ns: &TrackNamespace,
        id: u64,
        session: &Session,
        origin: &Origin,
    ) -> Vec<FullTrackName> {
        let mut table = self.table();
        table.publishers.push((ns.clone(), id, session.clone()));
        origin.publish_namespace(ns.clone());
        self.changed.send_modify(|n| *n += 1);
        table
            .upstream
            .iter_mut()
            .filter(|(name, _)| name.namespace.starts_with(ns))
            .filter_map(|(name, u)| (!u.feeds_from(id)).then(|| name.clone()))
            .collect()
    }

    /// The session that published the longest namespace prefix of `ns`.
    pub(crate) fn route(&self, ns: &TrackNamespace) -> Option<Session> {
        self.routes(ns).into_iter().next().map(|(_, s)| s)
    }

    /// Every session publishing a namespace prefix of `ns`, once each, the longest prefix first. The cluster
    /// root is a route only when no local publisher matches: a leaf serving the root from a local publisher must
    /// not ask the root back (which would loop the track root → leaf → root).
    /// Whether a session from `ip` publishes `ns` (or a prefix of it) here now.
    pub(crate) fn published_from(&self, ns: &TrackNamespace, ip: std::net::IpAddr) -> bool {
        self.table()
            .publishers
            .iter()
            .any(|(p, id, s)| *id != CLUSTER_ID && ns.starts_with(p) && s.remote_address().ip() == ip)
    }

    pub(crate) fn routes(&self, ns: &TrackNamespace) -> Vec<(u64, Session)> {
        let table = self.table();
        let mut matching: Vec<&(TrackNamespace, u64, Session)> =
            table.publishers.iter().filter(|(p, _, _)| ns.starts_with(p)).collect();
        if matching.iter().any(|(_, id, _)| *id != CLUSTER_ID) {
            matching.retain(|(_, id, _)| *id != CLUSTER_ID);
        }
        matching.sort_by_key(|(p, _, _)| std::cmp::Reverse(p.len()));
        let mut out: Vec<(u64, Session)> = Vec::new();
        for (_, id, s) in matching {
            if out.iter().all(|(seen, _)| seen != id) {
                out.push((*id, s.clone()));
            }
        }
        out
    }
}

/// The namespaces of the tracks a closed session pushed with PUBLISH: withdrawn once nothing else serves them.
/// (The relay's copies of the tracks end on their own, after the grace a lost publisher gets.)
pub(crate) fn withdraw_pushed(pushed: Vec<TrackNamespace>, router: &Router, origin: &Origin) {
    for ns in pushed {
        withdraw_if_unserved(router, origin, &ns);
    }
}

/// Withdraws `ns` from the origin unless a session announces it or a live track under it remains.
pub(crate) fn withdraw_if_unserved(router: &Router, origin: &Origin, ns: &TrackNamespace) {
    let table = router.table();
    let announced = table.publishers.iter().any(|(p, _, _)| p == ns);
    let tracks_left = origin.tracks(ns).iter().any(|t| t.info().name.namespace == *ns && t.ended().is_none());
    if !announced && !tracks_left {
        tracing::info!(namespace = %ns, "namespace withdrawn");
        origin.remove_namespace(ns);
    }
}

/// Removes a session's namespaces (one, or all); namespaces no other publisher serves are withdrawn.
pub(crate) fn withdraw(id: u64, ns: Option<&TrackNamespace>, router: &Router, origin: &Origin) {
    // The origin changes under the same lock as the table, so a concurrent announce is never wiped.
    let mut table = router.table();
    let publishers = &mut table.publishers;
    let removed: Vec<TrackNamespace> = publishers
        .iter()
        .filter(|(p, sid, _)| *sid == id && ns.is_none_or(|n| n == p))
        .map(|(p, _, _)| p.clone())
        .collect();
    publishers.retain(|(p, sid, _)| !(*sid == id && ns.is_none_or(|n| n == p)));
    for ns in removed {
        if !publishers.iter().any(|(q, _, _)| q == &ns) {
            tracing::info!(session = id, namespace = %ns, "namespace withdrawn");
            origin.remove_namespace(&ns);
        }
    }
    if ns.is_none() {
        // The session is gone: so are its subscriptions, even before they notice. A new session reusing the id
        // (the cluster link after a GOAWAY moves it within milliseconds) must subscribe again.
        for u in table.upstream.values_mut() {
            u.sources.retain(|(sid, _)| *sid != id);
        }
    }
    drop(table);
    router.changed.send_modify(|n| *n += 1);
}
