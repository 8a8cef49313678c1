//! Counters and gauges, exposed on /metrics in the Prometheus text format.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use moq_transport::Origin;
use moq_transport::quic::QuicCounters;
use moq_transport::wire::namespace::TrackNamespace;

/// Counters exposed on /metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Sessions accepted.
    pub sessions_total: AtomicU64,
    /// Sessions open now.
    pub sessions_active: AtomicU64,
    /// Failed handshakes.
    pub handshake_failures: AtomicU64,
    /// Upstream subscriptions made.
    pub upstream_subscriptions: AtomicU64,
    /// Namespaces announced by publishers.
    pub announcements: AtomicU64,
    /// Requests refused as unauthorized.
    pub auth_failures: AtomicU64,
    /// HTTP connections closed at once because --http-max-connections were open.
    pub http_refused: AtomicU64,
    /// Chat messages added to a room.
    pub chat_messages: AtomicU64,
    /// Chat posts refused (malformed, too long, a reserved name, muted, not a moderator).
    pub chat_rejected: AtomicU64,
    /// Chat posts refused by the per-session or per-address rate limit.
    pub chat_rate_limited: AtomicU64,
    /// Connections sent a QUIC Retry (address validation) while handshakes arrived beyond --retry-above.
    pub retries: AtomicU64,
    /// Connections refused at --max-sessions-per-address.
    pub refused_sessions_per_address: AtomicU64,
    /// Connections refused beyond --handshakes-per-second from their address.
    pub refused_handshakes: AtomicU64,
    /// Data-plane counters of every session (objects and bytes in/out, skips, delivery timeouts).
    pub data: Arc<moq_transport::Stats>,
    /// Overload control, when enabled: its level and lag are gauges.
    pub overload: Option<Arc<moq_transport::Overload>>,
    /// QUIC counters of the sessions that have ended (those of open sessions are added when rendering).
    pub quic_ended: Mutex<QuicCounters>,
    /// Sessions ended, by the draft's close code (e.g. `AUTH_TOKEN_CACHE_OVERFLOW`).
    pub sessions_closed: Mutex<std::collections::BTreeMap<&'static str, u64>>,
    /// Chat rooms held and participants followed now.
    pub chat_rooms: AtomicU64,
    pub chat_participants: AtomicU64,
}

impl Metrics {
    /// Counts a session that ended with `code`.
    pub fn session_closed(&self, code: moq_transport::wire::codes::SessionCode) {
        *self.sessions_closed.lock().unwrap_or_else(|e| e.into_inner()).entry(code.name()).or_default() += 1;
    }

    /// Adds an ended session's QUIC counters.
    pub fn session_ended(&self, quic: &QuicCounters) {
        self.quic_ended.lock().unwrap_or_else(|e| e.into_inner()).add(quic);
    }

    /// The Prometheus text exposition of every counter, and gauges of what `origin` holds. `open`: the QUIC
    /// counters of the sessions open now.
    pub fn render(&self, origin: &Origin, open: impl IntoIterator<Item = QuicCounters>) -> String {
        let registry = prometheus::Registry::new();
        let ended = *self.quic_ended.lock().unwrap_or_else(|e| e.into_inner());
        let quic: QuicCounters = std::iter::once(ended).chain(open).sum();
        for (name, help, value) in [
            ("moq_relay_quic_datagrams_sent_total", "UDP datagrams sent", quic.datagrams_sent),
            (
                "moq_relay_quic_send_calls_total",
                "UDP send system calls (datagrams per call: the GSO batch achieved)",
                quic.send_calls,
            ),
            ("moq_relay_quic_udp_bytes_sent_total", "UDP payload bytes sent", quic.udp_bytes_sent),
            ("moq_relay_quic_datagrams_received_total", "UDP datagrams received", quic.datagrams_received),
            ("moq_relay_quic_acks_received_total", "QUIC ACK frames received", quic.acks_received),
            ("moq_relay_quic_acks_sent_total", "QUIC ACK frames sent", quic.acks_sent),
        ] {
            if let Ok(c) = prometheus::IntCounter::new(name, help) {
                c.inc_by(value);
                let _ = registry.register(Box::new(c));
            }
        }
        for (name, help, v) in [
            ("moq_relay_sessions_total", "Sessions accepted", &self.sessions_total),
            ("moq_relay_handshake_failures_total", "Failed handshakes", &self.handshake_failures),
            ("moq_relay_upstream_subscriptions_total", "Upstream subscriptions", &self.upstream_subscriptions),
            ("moq_relay_announcements_total", "Namespaces announced", &self.announcements),
            ("moq_relay_auth_failures_total", "Requests refused as unauthorized", &self.auth_failures),
            ("moq_relay_http_refused_total", "HTTP connections refused at the connection cap", &self.http_refused),
            ("moq_relay_chat_messages_total", "Chat messages added to a room", &self.chat_messages),
            ("moq_relay_chat_rejected_total", "Chat posts refused (but for the rate limit)", &self.chat_rejected),
            (
                "moq_relay_chat_rate_limited_total",
                "Chat posts refused by --chat-rate or --chat-address-rate",
                &self.chat_rate_limited,
            ),
            ("moq_relay_quic_retries_total", "Connections sent a QUIC Retry (--retry-above)", &self.retries),
            (
                "moq_relay_refused_sessions_per_address_total",
                "Connections refused at --max-sessions-per-address",
                &self.refused_sessions_per_address,
            ),
            (
                "moq_relay_refused_handshakes_total",
                "Connections refused beyond --handshakes-per-second from their address",
                &self.refused_handshakes,
            ),
            ("moq_relay_refused_requests_total", "Requests refused at --max-requests", &self.data.refused_requests),
            (
                "moq_relay_refused_subscriptions_total",
                "SUBSCRIBE and PUBLISH refused at --max-subscriptions",
                &self.data.refused_subscriptions,
            ),
            (
                "moq_relay_refused_namespaces_total",
                "PUBLISH_NAMESPACE refused at --max-namespaces",
                &self.data.refused_namespaces,
            ),
            (
                "moq_relay_refused_prefixes_total",
                "SUBSCRIBE_NAMESPACE and SUBSCRIBE_TRACKS refused at --max-prefixes",
                &self.data.refused_prefixes,
            ),
            (
                "moq_relay_refused_updates_total",
                "REQUEST_UPDATEs refused beyond --max-updates-per-second",
                &self.data.refused_updates,
            ),
            ("moq_relay_objects_in_total", "Objects received", &self.data.objects_in),
            ("moq_relay_bytes_in_total", "Payload bytes received", &self.data.bytes_in),
            ("moq_relay_objects_out_total", "Objects sent", &self.data.objects_out),
            ("moq_relay_bytes_out_total", "Payload bytes sent", &self.data.bytes_out),
            (
                "moq_relay_groups_skipped_total",
                "Groups skipped for subscribers too far behind",
                &self.data.groups_skipped,
            ),
            (
                "moq_relay_groups_shed_total",
                "Groups a subscriber lost to load shedding (--max-latency, or skipped while short of CPU)",
                &self.data.groups_shed,
            ),
            (
                "moq_relay_delivery_timeouts_total",
                "Subgroup streams reset by delivery timeouts",
                &self.data.delivery_timeouts,
            ),
        ] {
            let value = v.load(Ordering::Relaxed);
            if let Ok(c) = prometheus::IntCounter::new(name, help) {
                c.inc_by(value);
                let _ = registry.register(Box::new(c));
            }
        }
        let tracks = origin.tracks(&TrackNamespace::empty());
        let live = tracks.iter().filter(|t| t.ended().is_none()).count();
        let cache: u64 = tracks.iter().map(|t| t.cached_bytes()).sum();
        for (name, help, value) in [
            ("moq_relay_sessions_active", "Sessions open", self.sessions_active.load(Ordering::Relaxed) as i64),
            ("moq_relay_chat_rooms", "Chat rooms held", self.chat_rooms.load(Ordering::Relaxed) as i64),
            (
                "moq_relay_chat_participants",
                "Chat participants followed",
                self.chat_participants.load(Ordering::Relaxed) as i64,
            ),
            ("moq_relay_tracks", "Tracks held (live)", live as i64),
            ("moq_relay_cache_bytes", "Payload bytes held in track caches", cache as i64),
            (
                "moq_relay_overload_level_permille",
                "Share of new groups skipped at the default priority while short of CPU, in thousandths",
                self.overload.as_ref().map_or(0, |o| (o.level() * 1000.0) as i64),
            ),
            (
                "moq_relay_overload_lag_us",
                "Smoothed lag of the runtime's timers, microseconds (the overload probe)",
                self.overload.as_ref().map_or(0, |o| o.lag().as_micros() as i64),
            ),
        ] {
            if let Ok(g) = prometheus::IntGauge::new(name, help) {
                g.set(value);
                let _ = registry.register(Box::new(g));
            }
        }
        let closed = prometheus::IntCounterVec::new(
            prometheus::Opts::new("moq_relay_sessions_closed_total", "Sessions ended, by close code"),
            &["code"],
        );
        if let Ok(closed) = closed {
            for (code, n) in self.sessions_closed.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                closed.with_label_values(&[*code]).inc_by(*n);
            }
            let _ = registry.register(Box::new(closed));
        }
        prometheus::TextEncoder::new().encode_to_string(&registry.gather()).unwrap_or_default()
    }
}
