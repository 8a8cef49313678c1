//! Each session's events, kept in step with the routing table (`routes.rs`): what a session publishes is
//! recorded, and the tracks the relay already holds are subscribed from it (`upstream.rs`).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use moq_transport::wire::namespace::TrackNamespace;
use moq_transport::{Event, Origin, Session};

use crate::Metrics;
use crate::routes::{Router, withdraw, withdraw_pushed};

/// Records that session `id` publishes `ns` (see [`Router::record_announce`]) and subscribes, from it, to the
/// tracks under `ns` the relay already holds.
pub(crate) fn announce(router: &Arc<Router>, ns: TrackNamespace, id: u64, session: &Session, origin: &Origin) {
    for name in router.record_announce(&ns, id, session, origin) {
        crate::upstream::add_publisher(router.clone(), name, id, session.clone());
    }
}

/// The chat rooms and who this session is to them.
pub(crate) type ChatOwner = Option<(Arc<crate::chat::Chat>, crate::chat::Owner)>;

/// Follows one session's events until it closes, keeping the routing table (and the chat's owners) in step.
pub(crate) async fn serve_session(
    id: u64,
    session: Session,
    router: &Arc<Router>,
    origin: &Origin,
    metrics: &Metrics,
    chat: ChatOwner,
) {
    let mut pushed: Vec<TrackNamespace> = Vec::new();
    while let Some(event) = session.next_event().await {
        match event {
            Event::Announced(ns) => {
                metrics.announcements.fetch_add(1, Ordering::Relaxed);
                tracing::info!(session = id, namespace = %ns, "namespace published");
                if let Some((chat, owner)) = &chat {
                    chat.set_owner(&ns, owner.clone());
                }
                announce(router, ns, id, &session, origin);
            }
            Event::Unannounced(ns) => withdraw(id, Some(&ns), router, origin),
            Event::Published(track) => {
                tracing::info!(session = id, track = %track.info().name, "track pushed");
                pushed.push(track.info().name.namespace.clone());
                crate::upstream::take_published(router, origin, track);
            }
            Event::GoAway { .. } | Event::Skipped(_) => {}
        }
    }
    let e = session.closed().await;
    tracing::info!(session = id, reason = %e, "session closed");
    metrics.session_closed(e.session_code());
    withdraw(id, None, router, origin);
    withdraw_pushed(pushed, router, origin);
    if let Some((chat, _)) = chat {
        chat.session_ended(id);
    }
}
