//! `moq-relay`: a Media over QUIC relay.
//!
//! Publishers announce namespaces (PUBLISH_NAMESPACE) or push tracks (PUBLISH); subscribers SUBSCRIBE to any
//! track under an announced namespace. The relay subscribes once per track to every publisher of it, however
//! many subscribers it has, merges what they send into its own copy of the track, and fans objects out from that
//! copy as they arrive: every subscriber reads the shared track at its own pace, so a slow one never slows the
//! publisher or the others.
//! SUBSCRIBE_NAMESPACE discovers what is published; TRACK_STATUS and FETCH are answered from the relay's copy.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

mod accept;
pub mod admission;
pub mod auth;
pub mod chat;
mod cluster;
mod config;
mod demo;
pub mod headers;
pub mod http;
mod merge;
mod metrics;
mod router;
mod routes;
mod upstream;
pub mod web;
mod websocket;

use anyhow::Context;
use moq_transport::quic::Server;
use moq_transport::tls::Certificate;
use moq_transport::wire::codes::SessionCode;
use moq_transport::wire::namespace::TrackNamespace;
use moq_transport::{Origin, Overload, Session, SessionConfig};

pub use config::{Config, file_args};
pub use metrics::Metrics;
use routes::Router;
use upstream::{fetch_upstream, resolve};

/// A running relay.
pub struct Relay {
    server: Server,
    origin: Origin,
    router: Arc<Router>,
    metrics: Arc<Metrics>,
    fingerprint: String,
    http: Option<tokio::net::TcpListener>,
    drain: std::time::Duration,
    /// The New Session URI sent in the shutdown GOAWAY.
    goaway_uri: String,
    /// The cluster roots, in order of preference, and how to trust them.
    cluster: Option<(Vec<url::Url>, moq_transport::tls::Trust)>,
    /// Settings for the link to the cluster root: those of our own sessions, minus the authorizer.
    link_config: SessionConfig,
    /// The --demo broadcast's namespace, when enabled.
    demo: Option<(TrackNamespace, String)>,
    /// Groups and bytes each track keeps (`--cache-groups`, `--cache-bytes`).
    cache: (usize, u64),
    /// The browser player's pages.
    pages: web::Pages,
    /// The chat rooms, unless disabled.
    chat: Option<Arc<chat::Chat>>,
    http_limits: http::HttpLimits,
    headers: headers::SecurityHeaders,
    /// What serves each admitted session, over QUIC or a WebSocket.
    sessions: Arc<accept::Sessions>,
}

impl Relay {
    /// Binds the QUIC endpoint (and the HTTP listener unless disabled).
    pub async fn bind(config: &Config) -> anyhow::Result<Relay> {
        if !config.goaway_uri.is_empty() {
            url::Url::parse(&config.goaway_uri).map_err(|e| anyhow::anyhow!("--goaway-uri: {e}"))?;
            anyhow::ensure!(config.goaway_uri.len() <= 8192, "--goaway-uri: longer than the draft's 8,192 bytes");
        }
        let cert = match (&config.tls_cert, &config.tls_key) {
            (Some(c), Some(k)) => Certificate::load(c, k)?,
            _ => {
                let hosts: Vec<&str> = config.tls_generate.iter().map(String::as_str).collect();
                Certificate::self_signed(&hosts)?
            }
        };
        let fingerprint = cert.sha256_hex();
        let origin = Origin::new();
        let key = config.auth_key.as_deref().map(auth::load_key).transpose()?;
        let public = config
            .auth_public
            .iter()
            .map(|p| TrackNamespace::from_path(p).map_err(|e| anyhow::anyhow!("--auth-public {p:?}: {e}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let policy = auth::Auth::new(key.as_deref(), public).with_leeway(config.auth_leeway.as_secs());
        let overload = (!config.overload_lag.is_zero()).then(|| Arc::new(Overload::new(config.overload_lag)));
        let metrics = Arc::new(Metrics { overload: overload.clone(), ..Metrics::default() });
        let m = metrics.clone();
        let checker = policy.clone();
        let authorizer: moq_transport::Authorizer = Arc::new(move |ctx, action, ns| {
            let ok = checker.authorize(ctx, action, ns);
            if !ok {
                m.auth_failures.fetch_add(1, Ordering::Relaxed);
            }
            ok
        });
        let implementation = match &config.cluster_node {
            Some(node) => format!("moq-relay/{} ({node})", env!("CARGO_PKG_VERSION")),
            None => format!("moq-relay/{}", env!("CARGO_PKG_VERSION")),
        };
        let limits = moq_transport::RequestLimits {
            max_requests: config.max_requests,
            max_subscriptions: config.max_subscriptions,
            max_namespaces: config.max_namespaces,
            max_prefixes: config.max_prefixes,
            updates_per_second: config.max_updates_per_second,
            update_burst: (config.max_updates_per_second * 2.0).clamp(1.0, u32::MAX as f64) as u32,
            shared_subscriptions: None,
        };
        let session_config = SessionConfig {
            implementation,
            origin: origin.clone(),
            window: config.cache_groups,
            authorizer: Some(authorizer),
            stats: metrics.data.clone(),
            max_cache_bytes: config.cache_bytes,
            max_bidi_streams: config.max_bidi_streams,
            max_uni_streams: config.max_uni_streams,
            request_open_timeout: config.request_open_timeout,
            send_window: config.send_window,
            congestion: config.congestion,
            ack_frequency: moq_transport::AckFrequency::from_flags(config.ack_threshold, config.max_ack_delay),
            max_latency: (!config.max_latency.is_zero()).then_some(config.max_latency),
            overload,
            limits: limits.clone(),
            max_auth_token_cache: config.max_auth_token_cache,
            qlog_dir: config.qlog_dir.clone(),
            ..Default::default()
        };
        // One connection per node carries every track the node relays: allow it many more requests and streams.
        // It must notice a dead peer within about a second, so that tracks re-route.
        let link_config = SessionConfig {
            authorizer: None,
            max_bidi_streams: 4096,
            max_uni_streams: 4096,
            keep_alive: config.cluster_keepalive,
            idle_timeout: config.cluster_idle_timeout,
            // A link carries every track between two relays: room for all of them, and nothing shed on it.
            send_window: moq_transport::DEFAULT_SEND_WINDOW.max(config.send_window),
            max_latency: None,
            overload: None,
            limits: moq_transport::RequestLimits::UNLIMITED,
            ..session_config.clone()
        };
        let server = Server::bind(config.bind, cert, session_config.clone()).context("bind UDP")?;
        let http = if config.http_bind.is_empty() {
            None
        } else {
            Some(tokio::net::TcpListener::bind(&config.http_bind).await.context("bind HTTP")?)
        };
        let router = Arc::new(Router::new(config.cache_groups, config.cache_bytes, config.reroute_grace));
        let chat = match config.chat_prefix.as_str() {
            "" => None,
            p => {
                let prefix = TrackNamespace::from_path(p).map_err(|e| anyhow::anyhow!("--chat-prefix {p:?}: {e}"))?;
                let limits = chat::ChatLimits {
                    burst: config.chat_burst,
                    per_second: config.chat_rate,
                    address_burst: config.chat_address_burst,
                    address_per_second: config.chat_address_rate,
                    max_rooms: config.chat_max_rooms.max(1),
                    max_participants: config.chat_max_participants.max(1),
                    ..Default::default()
                };
                Some(chat::Chat::new(prefix, limits, origin.clone(), metrics.clone()))
            }
        };
        let r = router.clone();
        let m = metrics.clone();
        let o = origin.clone();
        let c = chat.clone();
        let linger = config.upstream_linger;
        origin.set_resolver(Arc::new(move |request: moq_transport::TrackRequest| {
            let (router, metrics, origin) = (r.clone(), m.clone(), o.clone());
            let room = c.as_ref().and_then(|c| c.room_track(&request.name));
            Box::pin(async move {
                match room {
                    Some(room) => Ok(room),
                    None => resolve(&router, &metrics, &origin, request, linger).await,
                }
            })
        }));
        let cluster = if config.cluster_root.is_empty() {
            None
        } else {
            let trust = match &config.cluster_fingerprint {
                Some(fp) => moq_transport::tls::Trust::Fingerprints(vec![moq_transport::tls::parse_fingerprint(fp)?]),
                None => moq_transport::tls::Trust::System,
            };
            Some((config.cluster_root.clone(), trust))
        };
        let r = router.clone();
        origin.set_fetcher(Arc::new(move |name, start, end, order| {
            let router = r.clone();
            Box::pin(async move { fetch_upstream(&router, name, start, end, order).await })
        }));
        let demo = match config.demo {
            true => Some((
                TrackNamespace::from_path(&config.demo_namespace)
                    .map_err(|e| anyhow::anyhow!("--demo-namespace {:?}: {e}", config.demo_namespace))?,
                config.demo_namespace.clone(),
            )),
            false => None,
        };
        let headers = headers::SecurityHeaders::new(&config.frame_ancestors)?;
        let admission = admission::Admission::new(
            admission::AdmissionLimits {
                sessions_per_address: config.max_sessions_per_address,
                handshakes_per_second: config.handshakes_per_second,
                subscriptions_per_address: config.max_subscriptions_per_address,
                retry_above: config.retry_above,
                limit_loopback: config.limit_loopback,
            },
            admission::Trusted(config.trusted_address.clone()),
            metrics.clone(),
        );
        let sessions = Arc::new(accept::Sessions::new(
            router.clone(),
            origin.clone(),
            metrics.clone(),
            chat.clone(),
            policy,
            admission,
            limits,
            session_config,
            config.http_max_connections.max(1),
        ));
        Ok(Relay {
            headers,
            sessions,
            server,
            origin,
            router,
            metrics,
            fingerprint,
            http,
            drain: config.drain_timeout,
            goaway_uri: config.goaway_uri.clone(),
            cluster,
            link_config,
            demo,
            cache: (config.cache_groups, config.cache_bytes),
            pages: web::Pages::new(config.web_dir.clone()),
            chat,
            http_limits: http::HttpLimits {
                max_connections: config.http_max_connections.max(1),
                header_timeout: config.http_header_timeout,
                ..Default::default()
            },
        })
    }

    /// The UDP address MoQT is served on.
    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.server.local_addr()?)
    }

    /// The HTTP address, if enabled.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The SHA-256 of the certificate, hex.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The relay's origin: every track and namespace it serves.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// The counters.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Serves until `shutdown` resolves, then closes every session with GOAWAY semantics (NO_ERROR).
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        tracing::info!(addr = %self.local_addr()?, fingerprint = %self.fingerprint, "relay listening");
        // How clients reach us: http:// fetches the certificate fingerprint; without HTTP, pin it by hand.
        let http_port = self.http.as_ref().and_then(|l| l.local_addr().ok()).map(|a| a.port());
        let client_url = match http_port {
            Some(port) => format!("http://localhost:{port}/"),
            None => format!("moqt://localhost:{}/ --fingerprint {}", self.local_addr()?.port(), self.fingerprint),
        };
        // The HTTP server, demo, chat and cluster link stop with the relay (an in-process restart rebinds).
        let mut background: Vec<tokio::task::JoinHandle<()>> = Vec::new();
        if let Some(listener) = self.http {
            let fp = self.fingerprint.clone();
            let metrics = self.metrics.clone();
            let origin = self.origin.clone();
            let router = self.router.clone();
            let render = move || {
                let open: Vec<_> = router.sessions().iter().map(|s| s.quic_counters()).collect();
                std::future::ready(metrics.render(&origin, open))
            };
            let app = axum::Router::new()
                .route("/certificate.sha256", axum::routing::get(move || std::future::ready(fp.clone())))
                .route("/health", axum::routing::get(|| std::future::ready("ok\n")))
                .route("/metrics", axum::routing::get(render))
                .merge(web::router(self.pages.clone()))
                .layer(axum::middleware::from_fn_with_state(self.sessions.clone(), websocket::layer))
                .layer(axum::middleware::from_fn_with_state(self.headers.clone(), headers::SecurityHeaders::layer));
            if !self.pages.is_built() {
                tracing::warn!(pages = ?self.pages, "no browser player there: cd web && npm ci && npm run build");
            }
            tracing::info!(addr = ?listener.local_addr().ok(), "http listening");
            background.push(tokio::spawn(http::serve(listener, app, self.http_limits, self.metrics.clone())));
        }
        if let Some((namespace, path)) = self.demo.clone() {
            self.router.publish_own(namespace.clone(), &self.origin);
            let (window, bytes) = self.cache;
            background.push(tokio::spawn(demo::demo(self.origin.clone(), namespace, window, bytes)));
            if let Some(port) = http_port {
                eprintln!("demo: watch it in a browser: http://localhost:{port}/watch?name={path}");
            }
            eprintln!(
                "demo: publishing {path} (H.264 + Opus, looped). Watch it with\n  \
                 cargo run --release -p moq-sub -- {client_url} --namespace {path} | ffplay -\n\
                 or record 10 s with\n  \
                 cargo run --release -p moq-sub -- {client_url} --namespace {path} --duration 10 -o demo.mp4 --stats"
            );
        }
        if let Some(chat) = self.chat.clone() {
            background.push(tokio::spawn(chat.run()));
        }
        if let Some(overload) = self.metrics.overload.clone() {
            background.push(tokio::spawn(async move { overload.run().await }));
        }
        if let Some((roots, trust)) = self.cluster.clone() {
            background.push(tokio::spawn(cluster::run(roots, trust, self.link_config.clone(), self.router.clone())));
        }
        tokio::pin!(shutdown);
        loop {
            let incoming = tokio::select! {
                i = self.server.accept() => match i { Some(i) => i, None => break },
                _ = &mut shutdown => break,
            };
            let remote = incoming.remote_address();
            let ticket = match self.sessions.admission.admit(remote.ip(), incoming.remote_address_validated()) {
                admission::Verdict::Admit(ticket) => ticket,
                admission::Verdict::Retry => {
                    incoming.retry();
                    continue;
                }
                admission::Verdict::Refuse(why) => {
                    tracing::debug!(%remote, why, "connection refused");
                    incoming.refuse();
                    continue;
                }
            };
            let incoming = incoming.with_limits(self.sessions.limits(&ticket));
            let sessions = self.sessions.clone();
            tokio::spawn(async move {
                match incoming.establish().await {
                    Ok((session, info)) => sessions.serve(session, info, ticket).await,
                    Err(e) => sessions.handshake_failed(&e),
                }
            });
        }
        // Graceful shutdown: GOAWAY to everyone, give them the drain timeout to move, then close.
        let sessions: Vec<Session> = self.router.sessions();
        tracing::info!(sessions = sessions.len(), drain = ?self.drain, "shutting down");
        for s in &sessions {
            // Only a server may name a new URI (a cluster node's link to its root is a client session).
            if s.goaway(&self.goaway_uri, self.drain).await.is_err() {
                let _ = s.goaway("", self.drain).await;
            }
        }
        let deadline = tokio::time::Instant::now() + self.drain;
        while self.metrics.sessions_active.load(Ordering::Relaxed) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        self.server.close(moq_transport::app_code(SessionCode::NoError), "relay shutting down");
        for task in background {
            task.abort();
        }
        Ok(())
    }
}

/// Who a session is to the chat: its id, address, and whether it is a broadcast's streamer. With `--auth-key`
/// that is a token (SETUP or URL) granting publish on the broadcast; on a relay without one (anyone may publish)
/// it is a session from an address that publishes the broadcast here now.
pub(crate) fn chat_owner(
    id: u64,
    info: &moq_transport::quic::Accepted,
    session: &Session,
    policy: auth::Auth,
    router: Arc<Router>,
) -> chat::Owner {
    let (path, ip) = (info.path.clone(), info.remote.ip());
    let tokens = session.peer_setup().auth_tokens.clone();
    let publishes: Arc<dyn Fn(&TrackNamespace) -> bool + Send + Sync> = if policy.checks_tokens() {
        Arc::new(move |ns| {
            let ctx = moq_transport::AuthContext { path: Some(&path), setup_tokens: &tokens, request_tokens: &[] };
            policy.authorize(&ctx, moq_transport::Action::Publish, ns)
        })
    } else {
        Arc::new(move |ns| router.published_from(ns, ip))
    };
    chat::Owner { session: id, ip, publishes }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Once a publisher leaves, the relay lets go of the track's upstream subscription, its lock and its cache.
    #[tokio::test]
    async fn ended_upstream_tracks_are_forgotten() {
        use moq_transport::quic::Client;
        use moq_transport::tls::{Trust, parse_fingerprint};
        use moq_transport::{Object, SubscribeOptions, TrackInfo, TrackProducer};
        use std::time::Duration;

        let config = Config {
            bind: "127.0.0.1:0".parse().unwrap(),
            http_bind: String::new(),
            reroute_grace: Duration::from_millis(100),
            ..Config::default()
        };
        let relay = Relay::bind(&config).await.unwrap();
        let url = url::Url::parse(&format!("moqt://localhost:{}/", relay.local_addr().unwrap().port())).unwrap();
        let trust = Trust::Fingerprints(vec![parse_fingerprint(relay.fingerprint()).unwrap()]);
        let (router, origin) = (relay.router.clone(), relay.origin.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(relay.run(async {
            let _ = stopped.await;
        }));
        let connect = |origin: Origin| {
            let client = Client::new(trust.clone(), SessionConfig { origin, ..Default::default() }).unwrap();
            let url = url.clone();
            async move { client.connect(&url).await.unwrap() }
        };
        let name = moq_transport::wire::namespace::FullTrackName::new(TrackNamespace::from_path("gone").unwrap(), "v");
        let published = Origin::new();
        let track = TrackProducer::new(TrackInfo::new(name.clone()));
        published.publish_track(track.clone());
        let publisher = connect(published).await;
        let ann = publisher.publish_namespace(name.namespace.clone()).await.unwrap();
        let viewer = connect(Origin::new()).await;
        let sub = viewer.subscribe(name.clone(), SubscribeOptions::default()).await.unwrap();
        track.write_group(0, [Object::new(0, "x")]).unwrap();
        let mut c = sub.consumer();
        tokio::time::timeout(Duration::from_secs(10), c.next_group()).await.unwrap().unwrap();
        let held = |r: &Router| r.held();
        assert_eq!(held(&router), 2, "one upstream subscription and its lock while live");
        drop((ann, publisher));
        tokio::time::timeout(Duration::from_secs(10), c.closed()).await.unwrap();
        tokio::time::timeout(Duration::from_secs(10), async {
            while held(&router) > 0 || origin.track(&name).is_some() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("the relay still holds the ended track");
        let _ = stop.send(());
    }
}
