//! The relay's HTTP listener, hardened for the open internet: a cap on connections, a deadline for request
//! headers, a bound on their size, and a longest lifetime per connection. The routes are `lib.rs`'s.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::Metrics;

/// Limits of the HTTP side.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// Connections open at once; more are closed as soon as they are accepted.
    pub max_connections: usize,
    /// A client must send a request's headers within this time (also the idle time between keep-alive
    /// requests), or the connection is closed: slow-header (Slowloris) clients cannot pin connections.
    pub header_timeout: Duration,
    /// Largest request head (request line and headers), in bytes.
    pub max_header_bytes: usize,
    /// Longest time a connection stays open, whatever it does.
    pub max_lifetime: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_connections: 1024,
            header_timeout: Duration::from_secs(5),
            max_header_bytes: 16 * 1024,
            max_lifetime: Duration::from_secs(300),
        }
    }
}

/// Serves `app` on `listener` within `limits` until the listener fails.
pub(crate) async fn serve(listener: TcpListener, app: axum::Router, limits: HttpLimits, metrics: Arc<Metrics>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // Out of descriptors, typically: wait a moment rather than spin.
                tracing::warn!(error = %e, "http accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // No Nagle delay: a WebSocket session's small objects go out at once.
        let _ = stream.set_nodelay(true);
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics.http_refused.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%peer, "http connection refused: at --http-max-connections");
            drop(stream);
            continue;
        };
        // The routes see the peer's address (WebSocket sessions are admitted by it).
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
            tower::ServiceExt::oneshot(app.clone(), request)
        });
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .max_buf_size(limits.max_header_bytes.max(8192));
            // With upgrades: a WebSocket leaves the HTTP connection (and its lifetime limit) once switched.
            let connection = builder.serve_connection(TokioIo::new(stream), service).with_upgrades();
            if tokio::time::timeout(limits.max_lifetime, connection).await.is_err() {
                tracing::debug!(%peer, "http connection closed at its longest lifetime");
            }
            drop(slot);
        });
    }
}
