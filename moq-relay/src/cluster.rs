//! Clustering: several relays form one service by talking MoQT to a root relay.
//!
//! Every node keeps one session to the root (`--cluster-root`; further ones are standby roots, tried in order).
//! Over it the node announces the namespaces its own publishers announced (PUBLISH_NAMESPACE) and learns
//! everything the cluster publishes (SUBSCRIBE_NAMESPACE on the root). A subscriber on node B asking for a track published on node A is routed B → root → A: each relay
//! holds at most one upstream subscription per track, so each link carries one copy. A node never re-announces
//! what it learned from the root, which keeps the star free of loops. When a node dies, the root withdraws its
//! namespaces and the other nodes follow; when the publisher reconnects elsewhere, the new route is learned.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use moq_transport::quic::Client;
use moq_transport::tls::Trust;
use moq_transport::wire::namespace::TrackNamespace;
use moq_transport::{Announcement, NamespaceEvent, Origin, Session, SessionConfig};
use url::Url;

use crate::router::announce;
use crate::routes::{CLUSTER_ID, Router, withdraw};

/// The first wait before reconnecting to the root, doubled after each failure up to [`RETRY_MAX`].
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);

/// Whether `ns` was announced by a local publisher or is the relay's own (not learned from the root).
fn is_local(router: &Router, ns: &TrackNamespace) -> bool {
    router.local_namespaces().contains(ns)
}

/// Keeps a session to a root, reconnecting after failures: each time to the first of `roots` that answers, so that
/// a node on a standby root returns to the first one only when its link is lost again.
///
/// `config` carries the relay's origin, cache limits, counters and implementation name, so the link behaves like
/// any other session of this relay.
pub(crate) async fn run(roots: Vec<Url>, trust: Trust, config: SessionConfig, router: Arc<Router>) {
    let origin = config.origin.clone();
    // Retry at once after a link was up (a restarted root is usually back within milliseconds), then back off.
    let mut backoff = RETRY_MIN;
    // Where the last root's GOAWAY told us to go: tried first, once.
    let mut moved_to: Option<Url> = None;
    loop {
        let client = match Client::new(trust.clone(), config.clone()) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cluster client");
                return;
            }
        };
        let candidates: Vec<Url> = moved_to.take().into_iter().chain(roots.iter().cloned()).collect();
        for root in &candidates {
            match client.connect(root).await {
                Ok(session) => {
                    backoff = RETRY_MIN;
                    tracing::info!(%root, "joined the cluster");
                    match serve(&session, root, &origin, &router).await {
                        Ok(next) => moved_to = next,
                        Err(e) => tracing::warn!(%root, error = %e, "cluster link failed"),
                    }
                    withdraw(CLUSTER_ID, None, &router, &origin);
                    break;
                }
                Err(e) => tracing::warn!(%root, error = %e, "cannot reach the cluster root"),
            }
        }
        if moved_to.is_none() {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(RETRY_MAX);
        }
    }
}

/// Serves one link to the root until it ends; returns the URI its GOAWAY named, if any.
async fn serve(
    session: &Session,
    root: &Url,
    origin: &Origin,
    router: &Arc<Router>,
) -> Result<Option<Url>, moq_transport::Error> {
    let mut learned = session.subscribe_namespace(TrackNamespace::empty()).await?;
    let mut changed = router.changed.subscribe();
    // What we announced to the root: kept equal to the local namespaces (local publishers and our own).
    let mut announced: HashMap<TrackNamespace, Announcement> = HashMap::new();
    loop {
        let local = router.local_namespaces();
        announced.retain(|ns, _| local.contains(ns));
        for ns in local {
            if !announced.contains_key(&ns) {
                tracing::info!(namespace = %ns, "announced to the cluster");
                announced.insert(ns.clone(), session.publish_namespace(ns).await?);
            }
        }
        tokio::select! {
            event = learned.next() => match event {
                Some(NamespaceEvent::Added(ns)) => {
                    if !is_local(router, &ns) {
                        tracing::info!(namespace = %ns, "learned from the cluster");
                        announce(router, ns, CLUSTER_ID, session, origin);
                    }
                }
                Some(NamespaceEvent::Removed(ns)) => withdraw(CLUSTER_ID, Some(&ns), router, origin),
                None => return Ok(None),
            },
            c = changed.changed() => if c.is_err() { return Ok(None) },
            event = session.next_event() => match event {
                Some(event) => if let Some(next) = event.goaway_target(root) {
                    // The root is shutting down: leave now (it drains only until its sessions are gone) and join
                    // the one it names (or, naming none, the one that replaces it) rather than hold on until its
                    // deadline.
                    tracing::info!(%next, "the cluster root is going away; reconnecting");
                    session.close(moq_transport::wire::codes::SessionCode::NoError, "root going away");
                    return Ok((&next != root).then_some(next));
                },
                None => return Ok(None),
            },
            e = session.closed() => return Err(e),
        }
    }
}
