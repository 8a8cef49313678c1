//! What the relay does with each admitted session, however it arrived (QUIC, WebTransport or a WebSocket): give
//! it its request limits, register it with the router and the chat, follow its events until it ends.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use moq_transport::quic::Accepted;
use moq_transport::{RequestLimits, Session, SessionConfig};

use crate::admission::{Admission, Ticket};
use crate::router::serve_session;
use crate::routes::Router;
use crate::{Metrics, auth, chat, chat_owner};

/// The relay's side of every session: shared by the QUIC accept loop and the WebSocket upgrade route.
pub(crate) struct Sessions {
    pub(crate) router: Arc<Router>,
    pub(crate) origin: moq_transport::Origin,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) chat: Option<Arc<chat::Chat>>,
    pub(crate) policy: auth::Auth,
    pub(crate) admission: Admission,
    /// Every session's request limits (the address's subscription budget is added per session).
    pub(crate) limits: RequestLimits,
    /// The settings of sessions that do not come through the QUIC server (WebSockets).
    pub(crate) config: SessionConfig,
    /// WebSocket sessions open at once (`--http-max-connections`): an upgraded connection leaves the HTTP
    /// listener's count, and a proxy in front may make every client one trusted address.
    pub(crate) websocket_slots: Arc<tokio::sync::Semaphore>,
    next_id: AtomicU64,
}

impl Sessions {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        router: Arc<Router>,
        origin: moq_transport::Origin,
        metrics: Arc<Metrics>,
        chat: Option<Arc<chat::Chat>>,
        policy: auth::Auth,
        admission: Admission,
        limits: RequestLimits,
        config: SessionConfig,
        max_websockets: usize,
    ) -> Sessions {
        Sessions {
            router,
            origin,
            metrics,
            chat,
            policy,
            admission,
            limits,
            config,
            websocket_slots: Arc::new(tokio::sync::Semaphore::new(max_websockets)),
            next_id: AtomicU64::new(0),
        }
    }

    /// The request limits of a session admitted with `ticket`.
    pub(crate) fn limits(&self, ticket: &Ticket) -> RequestLimits {
        match ticket.trusted() {
            true => RequestLimits::UNLIMITED,
            false => RequestLimits { shared_subscriptions: ticket.subscriptions(), ..self.limits.clone() },
        }
    }

    /// Counts a failed handshake.
    pub(crate) fn handshake_failed(&self, error: &moq_transport::Error) {
        self.metrics.handshake_failures.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(%error, "handshake failed");
    }

    /// Serves an established session until it ends; `ticket` counts it against its address meanwhile.
    pub(crate) async fn serve(self: Arc<Self>, session: Session, info: Accepted, ticket: Ticket) {
        let _ticket = ticket;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let metrics = &self.metrics;
        metrics.sessions_total.fetch_add(1, Ordering::Relaxed);
        metrics.sessions_active.fetch_add(1, Ordering::Relaxed);
        let span = tracing::info_span!("session", id, remote = %info.remote, version = %info.version, via = %info.via);
        span.in_scope(|| tracing::info!(path = %info.path, "session accepted"));
        self.router.add_session(id, session.clone());
        let ended = session.clone();
        let chat = self
            .chat
            .clone()
            .map(|chat| (chat, chat_owner(id, &info, &session, self.policy.clone(), self.router.clone())));
        let served = serve_session(id, session, &self.router, &self.origin, metrics, chat);
        tracing::Instrument::instrument(served, span).await;
        self.router.remove_session(id);
        metrics.session_ended(&ended.quic_counters());
        drop(ended);
        metrics.sessions_active.fetch_sub(1, Ordering::Relaxed);
    }
}
