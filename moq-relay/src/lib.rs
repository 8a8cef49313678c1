//! `moq-relay`: a Media over QUIC relay.
//!
//! Publishers announce namespaces (PUBLISH_NAMESPACE) or push tracks (PUBLISH); subscribers SUBSCRIBE to any
//! track under an announced namespace (longest prefix wins). The relay holds one upstream subscription per track
//! however many subscribers it has, and fans objects out from its own copy of the track as they arrive: every
//! subscriber reads the shared track at its own pace, so a slow one never slows the publisher or the others.
//! SUBSCRIBE_NAMESPACE discovers what is published; TRACK_STATUS and FETCH are answered from the relay's copy.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub mod auth;
mod cluster;

use anyhow::Context;
use moq_transport::quic::Server;
use moq_transport::tls::Certificate;
use moq_transport::wire::codes::SessionCode;
use moq_transport::wire::namespace::{FullTrackName, TrackNamespace};
use moq_transport::{Event, Origin, Session, SessionConfig, SubscribeOptions, Subscription, TrackProducer};

/// Relay settings.
#[derive(Debug, Clone, clap::Parser)]
#[command(about = "A Media over QUIC relay (draft-ietf-moq-transport-19/-18) over raw QUIC and WebTransport")]
pub struct Config {
    /// A TOML file with any of these settings (keys as the flags, with `_` for `-`); flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// UDP address for MoQT, raw QUIC (moqt://) and WebTransport (https://) on the same port.
    #[arg(long, default_value = "[::]:4443")]
    pub bind: SocketAddr,
    /// TCP address for HTTP: /certificate.sha256, /health, /metrics. Empty to disable.
    #[arg(long, default_value = "[::]:4443")]
    pub http_bind: String,
    /// PEM certificate chain; without it a self-signed certificate is generated.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Host names for the generated self-signed certificate (valid 14 days).
    #[arg(long, default_value = "localhost")]
    pub tls_generate: Vec<String>,
    /// Groups kept per track for late joiners and FETCH.
    #[arg(long, default_value_t = moq_transport::DEFAULT_GROUP_WINDOW)]
    pub cache_groups: usize,
    /// Payload bytes kept per track beyond its newest group (older groups are dropped first).
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    pub cache_bytes: u64,
    /// Requests (bidirectional streams) one client may have open at once: subscriptions, fetches, announcements.
    #[arg(long, default_value_t = moq_transport::DEFAULT_MAX_BIDI_STREAMS)]
    pub max_bidi_streams: u32,
    /// Subgroup streams one client may have open at once (a publisher needs about tracks × groups in flight).
    #[arg(long, default_value_t = moq_transport::DEFAULT_MAX_UNI_STREAMS)]
    pub max_uni_streams: u32,
    /// Require JWTs signed with this key (hex file; make one with `moq-relay keygen`). Without it everything is
    /// allowed.
    #[arg(long)]
    pub auth_key: Option<PathBuf>,
    /// Namespace prefix open to anonymous publish and subscribe when --auth-key is set (repeatable; "" = all).
    #[arg(long)]
    pub auth_public: Vec<String>,
    /// Join the cluster whose root relay is at this URL (moqt:// or https://); the root itself leaves it unset.
    #[arg(long)]
    pub cluster_root: Option<url::Url>,
    /// This node's own URL as other relays and clients should reach it (reported in logs and SETUP).
    #[arg(long)]
    pub cluster_node: Option<url::Url>,
    /// SHA-256 of the root's certificate (hex), to pin it; see its /certificate.sha256.
    #[arg(long)]
    pub cluster_fingerprint: Option<String>,
    /// How long an upstream subscription stays after its last subscriber (or FETCH or TRACK_STATUS) left, in case
    /// another comes back; then it is cancelled, so that the publisher stops sending.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub upstream_linger: std::time::Duration,
    /// On shutdown: GOAWAY every session, then wait this long for them to leave before closing.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub drain_timeout: std::time::Duration,
    /// Publish a built-in test clip (640x360 H.264 and Opus, looped in real time) under --demo-namespace.
    #[arg(long)]
    pub demo: bool,
    /// Namespace of the --demo broadcast.
    #[arg(long, default_value = "demo/clip")]
    pub demo_namespace: String,
}

/// The settings a `--config` file may hold.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    bind: Option<SocketAddr>,
    http_bind: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_generate: Option<Vec<String>>,
    cache_groups: Option<usize>,
    cache_bytes: Option<u64>,
    max_bidi_streams: Option<u32>,
    max_uni_streams: Option<u32>,
    auth_key: Option<PathBuf>,
    auth_public: Option<Vec<String>>,
    cluster_root: Option<url::Url>,
    cluster_node: Option<url::Url>,
    cluster_fingerprint: Option<String>,
    drain_timeout: Option<String>,
    upstream_linger: Option<String>,
    demo: Option<bool>,
    demo_namespace: Option<String>,
}

impl Config {
    /// Fills every setting not given on the command line (per `matches`) from the `--config` file, if any.
    pub fn apply_file(&mut self, matches: &clap::ArgMatches) -> anyhow::Result<()> {
        let Some(path) = self.config.clone() else { return Ok(()) };
        let text = std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
        let file: FileConfig = toml::from_str(&text).with_context(|| format!("parse {}", path.display()))?;
        let from_file = |id: &str| matches.value_source(id) != Some(clap::parser::ValueSource::CommandLine);
        macro_rules! take {
            ($($field:ident),*) => {$(
                if from_file(stringify!($field)) && let Some(v) = file.$field {
                    self.$field = v;
                }
            )*};
        }
        macro_rules! take_opt {
            ($($field:ident),*) => {$(
                if from_file(stringify!($field)) && file.$field.is_some() {
                    self.$field = file.$field;
                }
            )*};
        }
        take!(
            bind,
            http_bind,
            tls_generate,
            cache_groups,
            cache_bytes,
            max_bidi_streams,
            max_uni_streams,
            auth_public,
            demo,
            demo_namespace
        );
        take_opt!(tls_cert, tls_key, auth_key, cluster_root, cluster_node, cluster_fingerprint);
        for (id, value, target) in [
            ("drain_timeout", file.drain_timeout, &mut self.drain_timeout),
            ("upstream_linger", file.upstream_linger, &mut self.upstream_linger),
        ] {
            if from_file(id)
                && let Some(d) = value
            {
                *target = parse_duration(&d).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            }
        }
        Ok(())
    }
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let (num, unit) = s.find(|c: char| !c.is_ascii_digit()).map(|i| s.split_at(i)).unwrap_or((s, "s"));
    let n: u64 = num.parse().map_err(|_| format!("not a duration: {s:?} (e.g. 500ms, 5s)"))?;
    match unit {
        "ms" => Ok(std::time::Duration::from_millis(n)),
        "s" | "" => Ok(std::time::Duration::from_secs(n)),
        "m" => Ok(std::time::Duration::from_secs(n * 60)),
        _ => Err(format!("unknown unit in {s:?} (ms, s or m)")),
    }
}

impl Default for Config {
    fn default() -> Self {
        <Config as clap::Parser>::parse_from(["moq-relay"])
    }
}

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
    /// Data-plane counters of every session (objects and bytes in/out, skips, delivery timeouts).
    pub data: Arc<moq_transport::Stats>,
}

impl Metrics {
    /// The Prometheus text exposition of every counter, and gauges of what `origin` holds.
    pub fn render(&self, origin: &Origin) -> String {
        let registry = prometheus::Registry::new();
        for (name, help, v) in [
            ("moq_relay_sessions_total", "Sessions accepted", &self.sessions_total),
            ("moq_relay_handshake_failures_total", "Failed handshakes", &self.handshake_failures),
            ("moq_relay_upstream_subscriptions_total", "Upstream subscriptions", &self.upstream_subscriptions),
            ("moq_relay_announcements_total", "Namespaces announced", &self.announcements),
            ("moq_relay_auth_failures_total", "Requests refused as unauthorized", &self.auth_failures),
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
        let live = tracks.iter().filter(|t| t.consume().ended().is_none()).count();
        let cache: u64 = tracks.iter().map(|t| t.cached_bytes()).sum();
        for (name, help, value) in [
            ("moq_relay_sessions_active", "Sessions open", self.sessions_active.load(Ordering::Relaxed) as i64),
            ("moq_relay_tracks", "Tracks held (live)", live as i64),
            ("moq_relay_cache_bytes", "Payload bytes held in track caches", cache as i64),
        ] {
            if let Ok(g) = prometheus::IntGauge::new(name, help) {
                g.set(value);
                let _ = registry.register(Box::new(g));
            }
        }
        prometheus::TextEncoder::new().encode_to_string(&registry.gather()).unwrap_or_default()
    }
}

/// Publishes the built-in clip in a loop, in real time, into the relay's own origin.
async fn demo(origin: Origin, namespace: TrackNamespace) {
    let options = moq_media::BroadcastOptions { pace: true, ..Default::default() };
    let mut broadcast = moq_media::Broadcast::new(origin, namespace, options);
    loop {
        let mut input = moq_media::Input::new(moq_media::DEMO_CLIP);
        if let Err(e) = broadcast.publish(&mut input).await {
            tracing::error!(error = %e, "demo clip failed");
            broadcast.finish();
            return;
        }
        broadcast.continue_timeline();
    }
}

/// Who publishes what: announced namespaces and the sessions that announced them.
#[derive(Default)]
struct Router {
    sessions: Mutex<HashMap<u64, Session>>,
    publishers: Mutex<Vec<(TrackNamespace, u64, Session)>>,
    upstream: Mutex<HashMap<FullTrackName, Subscription>>,
    resolving: Mutex<HashMap<FullTrackName, Arc<tokio::sync::Mutex<()>>>>,
}

impl Router {
    /// The session that published the longest namespace prefix of `ns`.
    fn route(&self, ns: &TrackNamespace) -> Option<Session> {
        let publishers = self.publishers.lock().unwrap_or_else(|e| e.into_inner());
        publishers
            .iter()
            .filter(|(p, _, _)| ns.starts_with(p))
            .max_by_key(|(p, _, _)| p.len())
            .map(|(_, _, s)| s.clone())
    }
}

/// A running relay.
pub struct Relay {
    server: Server,
    origin: Origin,
    router: Arc<Router>,
    metrics: Arc<Metrics>,
    fingerprint: String,
    http: Option<tokio::net::TcpListener>,
    drain: std::time::Duration,
    cluster: Option<(url::Url, moq_transport::tls::Trust)>,
    /// Settings for the link to the cluster root: those of our own sessions, minus the authorizer.
    link_config: SessionConfig,
    /// The --demo broadcast's namespace, when enabled.
    demo: Option<(TrackNamespace, String)>,
}

impl Relay {
    /// Binds the QUIC endpoint (and the HTTP listener unless disabled).
    pub async fn bind(config: &Config) -> anyhow::Result<Relay> {
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
        let policy = auth::Auth::new(key.as_deref(), public);
        let metrics = Arc::new(Metrics::default());
        let m = metrics.clone();
        let authorizer: moq_transport::Authorizer = Arc::new(move |ctx, action, ns| {
            let ok = policy.authorize(ctx, action, ns);
            if !ok {
                m.auth_failures.fetch_add(1, Ordering::Relaxed);
            }
            ok
        });
        let implementation = match &config.cluster_node {
            Some(node) => format!("moq-relay/{} ({node})", env!("CARGO_PKG_VERSION")),
            None => format!("moq-relay/{}", env!("CARGO_PKG_VERSION")),
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
            ..Default::default()
        };
        // One connection per node carries every track the node relays: allow it many more requests and streams.
        let link_config =
            SessionConfig { authorizer: None, max_bidi_streams: 4096, max_uni_streams: 4096, ..session_config.clone() };
        let server = Server::bind(config.bind, cert, session_config).context("bind UDP")?;
        let http = if config.http_bind.is_empty() {
            None
        } else {
            Some(tokio::net::TcpListener::bind(&config.http_bind).await.context("bind HTTP")?)
        };
        let router = Arc::new(Router::default());
        let r = router.clone();
        let m = metrics.clone();
        let o = origin.clone();
        let linger = config.upstream_linger;
        origin.set_resolver(Arc::new(move |name: FullTrackName| {
            let (router, metrics, origin) = (r.clone(), m.clone(), o.clone());
            Box::pin(async move { resolve(&router, &metrics, &origin, name, linger).await })
        }));
        let cluster = match &config.cluster_root {
            Some(url) => {
                let trust = match &config.cluster_fingerprint {
                    Some(fp) => {
                        moq_transport::tls::Trust::Fingerprints(vec![moq_transport::tls::parse_fingerprint(fp)?])
                    }
                    None => moq_transport::tls::Trust::System,
                };
                Some((url.clone(), trust))
            }
            None => None,
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
        Ok(Relay {
            server,
            origin,
            router,
            metrics,
            fingerprint,
            http,
            drain: config.drain_timeout,
            cluster,
            link_config,
            demo,
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
        let client_url = match self.http.as_ref().and_then(|l| l.local_addr().ok()) {
            Some(http) => format!("http://localhost:{}/", http.port()),
            None => format!("moqt://localhost:{}/ --fingerprint {}", self.local_addr()?.port(), self.fingerprint),
        };
        if let Some(listener) = self.http {
            let fp = self.fingerprint.clone();
            let metrics = self.metrics.clone();
            let origin = self.origin.clone();
            let app = axum::Router::new()
                .route("/certificate.sha256", axum::routing::get(move || std::future::ready(fp.clone())))
                .route("/health", axum::routing::get(|| std::future::ready("ok\n")))
                .route("/metrics", axum::routing::get(move || std::future::ready(metrics.render(&origin))));
            tracing::info!(addr = ?listener.local_addr().ok(), "http listening");
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, app).await {
                    tracing::warn!(error = %e, "http server stopped");
                }
            });
        }
        if let Some((namespace, path)) = self.demo.clone() {
            tokio::spawn(demo(self.origin.clone(), namespace));
            eprintln!(
                "demo: publishing {path} (H.264 + Opus, looped). Watch it with\n  \
                 cargo run --release -p moq-sub -- {client_url} --namespace {path} | ffplay -\n\
                 or record 10 s with\n  \
                 cargo run --release -p moq-sub -- {client_url} --namespace {path} --duration 10 -o demo.mp4 --stats"
            );
        }
        if let Some((root, trust)) = self.cluster.clone() {
            tokio::spawn(cluster::run(root, trust, self.link_config.clone(), self.router.clone()));
        }
        let next_id = AtomicU64::new(0);
        tokio::pin!(shutdown);
        loop {
            let incoming = tokio::select! {
                i = self.server.accept() => match i { Some(i) => i, None => break },
                _ = &mut shutdown => break,
            };
            let id = next_id.fetch_add(1, Ordering::Relaxed);
            let (router, origin, metrics) = (self.router.clone(), self.origin.clone(), self.metrics.clone());
            tokio::spawn(async move {
                let (session, info) = match incoming.establish().await {
                    Ok(s) => s,
                    Err(e) => {
                        metrics.handshake_failures.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(error = %e, "handshake failed");
                        return;
                    }
                };
                metrics.sessions_total.fetch_add(1, Ordering::Relaxed);
                metrics.sessions_active.fetch_add(1, Ordering::Relaxed);
                let span = tracing::info_span!("session", id, remote = %info.remote, version = %info.version, wt = info.webtransport);
                span.in_scope(|| tracing::info!(path = %info.path, "session accepted"));
                router.sessions.lock().unwrap_or_else(|e| e.into_inner()).insert(id, session.clone());
                tracing::Instrument::instrument(serve_session(id, session, &router, &origin, &metrics), span).await;
                router.sessions.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
                metrics.sessions_active.fetch_sub(1, Ordering::Relaxed);
            });
        }
        // Graceful shutdown: GOAWAY to everyone, give them the drain timeout to move, then close.
        let sessions: Vec<Session> =
            self.router.sessions.lock().unwrap_or_else(|e| e.into_inner()).values().cloned().collect();
        tracing::info!(sessions = sessions.len(), drain = ?self.drain, "shutting down");
        for s in &sessions {
            let _ = s.goaway("", self.drain).await;
        }
        let deadline = tokio::time::Instant::now() + self.drain;
        while self.metrics.sessions_active.load(Ordering::Relaxed) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        self.server.close(SessionCode::NoError.to_u64() as u32, "relay shutting down");
        Ok(())
    }
}

/// Follows one session's events until it closes, keeping the routing table in step.
async fn serve_session(id: u64, session: Session, router: &Router, origin: &Origin, metrics: &Metrics) {
    let mut pushed: Vec<TrackProducer> = Vec::new();
    while let Some(event) = session.next_event().await {
        match event {
            Event::Announced(ns) => {
                metrics.announcements.fetch_add(1, Ordering::Relaxed);
                tracing::info!(session = id, namespace = %ns, "namespace published");
                router.publishers.lock().unwrap_or_else(|e| e.into_inner()).push((ns.clone(), id, session.clone()));
                origin.publish_namespace(ns);
            }
            Event::Unannounced(ns) => withdraw(id, Some(&ns), router, origin),
            Event::Published(track) => {
                tracing::info!(session = id, track = %track.info().name, "track pushed");
                pushed.push(track.clone());
                origin.publish_track(track);
            }
            Event::GoAway { .. } => {}
        }
    }
    let e = session.closed().await;
    tracing::info!(session = id, reason = %e, "session closed");
    withdraw(id, None, router, origin);
    withdraw_pushed(id, pushed, router, origin);
}

/// Removes the tracks a closed session pushed with PUBLISH (unless another session has replaced them since), and
/// their namespaces once nothing else serves them.
fn withdraw_pushed(id: u64, pushed: Vec<TrackProducer>, router: &Router, origin: &Origin) {
    let mut namespaces: Vec<TrackNamespace> = Vec::new();
    for track in pushed {
        let name = &track.info().name;
        if origin.track(name).is_some_and(|t| t.is_same(&track)) {
            origin.remove_track(name);
        }
        if !namespaces.contains(&name.namespace) {
            namespaces.push(name.namespace.clone());
        }
    }
    let publishers = router.publishers.lock().unwrap_or_else(|e| e.into_inner());
    for ns in namespaces {
        let announced = publishers.iter().any(|(p, _, _)| p == &ns);
        let tracks_left = origin.tracks(&ns).iter().any(|t| t.info().name.namespace == ns);
        if !announced && !tracks_left {
            tracing::info!(session = id, namespace = %ns, "namespace withdrawn");
            origin.remove_namespace(&ns);
        }
    }
}

/// Removes a session's namespaces (one, or all); namespaces no other publisher serves are withdrawn.
fn withdraw(id: u64, ns: Option<&TrackNamespace>, router: &Router, origin: &Origin) {
    let gone: Vec<TrackNamespace> = {
        let mut publishers = router.publishers.lock().unwrap_or_else(|e| e.into_inner());
        let removed: Vec<TrackNamespace> = publishers
            .iter()
            .filter(|(p, sid, _)| *sid == id && ns.is_none_or(|n| n == p))
            .map(|(p, _, _)| p.clone())
            .collect();
        publishers.retain(|(p, sid, _)| !(*sid == id && ns.is_none_or(|n| n == p)));
        removed.into_iter().filter(|p| !publishers.iter().any(|(q, _, _)| q == p)).collect()
    };
    for ns in gone {
        tracing::info!(session = id, namespace = %ns, "namespace withdrawn");
        origin.remove_namespace(&ns);
    }
}

/// Finds a track for a subscriber: one upstream subscription per track, shared by everyone.
async fn resolve(
    router: &Arc<Router>,
    metrics: &Metrics,
    origin: &Origin,
    name: FullTrackName,
    linger: std::time::Duration,
) -> Option<TrackProducer> {
    let lock = router.resolving.lock().unwrap_or_else(|e| e.into_inner()).entry(name.clone()).or_default().clone();
    let _guard = lock.lock().await;
    // Someone may have subscribed upstream while we waited.
    if let Some(t) = origin.track(&name)
        && t.consume().ended().is_none()
    {
        return Some(t);
    }
    let upstream = router.route(&name.namespace)?;
    let sub = match upstream.subscribe(name.clone(), SubscribeOptions::default()).await {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(track = %name, error = %e, "upstream subscribe failed");
            return None;
        }
    };
    metrics.upstream_subscriptions.fetch_add(1, Ordering::Relaxed);
    tracing::info!(track = %name, "subscribed upstream");
    let track = sub.track();
    let ended = track.consume();
    // What the relay itself holds; every served subscription or FETCH adds one more.
    let own_consumers = track.consumer_count();
    router.upstream.lock().unwrap_or_else(|e| e.into_inner()).insert(name.clone(), sub);
    let (router, origin, watched) = (router.clone(), origin.clone(), track.clone());
    tokio::spawn(async move {
        watch_upstream(&router, &origin, &name, watched, ended, own_consumers, linger).await;
    });
    Some(track)
}

/// Keeps an upstream subscription while anyone uses its track, cancels it once nobody has for `linger`, and
/// forgets the track when it ends either way.
async fn watch_upstream(
    router: &Arc<Router>,
    origin: &Origin,
    name: &FullTrackName,
    track: TrackProducer,
    mut ended: moq_transport::TrackConsumer,
    own_consumers: usize,
    linger: std::time::Duration,
) {
    let poll = (linger / 4).clamp(std::time::Duration::from_millis(10), std::time::Duration::from_millis(500));
    let mut idle_since: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            _ = ended.closed() => break,
            _ = tokio::time::sleep(poll) => {}
        }
        if track.consumer_count() > own_consumers {
            idle_since = None;
            continue;
        }
        let since = *idle_since.get_or_insert_with(tokio::time::Instant::now);
        if since.elapsed() < linger {
            continue;
        }
        // Nobody came back: take the track out of the origin first, so that no new subscriber finds it, then
        // cancel upstream (dropping the subscription sends the cancel).
        if origin.track(name).is_some_and(|t| t.is_same(&track)) {
            origin.remove_track(name);
        }
        let sub = {
            let mut upstream = router.upstream.lock().unwrap_or_else(|e| e.into_inner());
            match upstream.get(name) {
                Some(s) if s.track().is_same(&track) => upstream.remove(name),
                _ => None,
            }
        };
        tracing::info!(track = %name, "no subscribers left; upstream subscription cancelled");
        drop(sub);
        break;
    }
    forget_ended(router, origin, name);
}

/// Drops what the relay holds for a track whose upstream subscription ended (its cache, its routing entries),
/// unless a newer live subscription has replaced it meanwhile.
fn forget_ended(router: &Router, origin: &Origin, name: &FullTrackName) {
    {
        let mut upstream = router.upstream.lock().unwrap_or_else(|e| e.into_inner());
        if upstream.get(name).is_some_and(|s| s.track().consume().ended().is_some()) {
            upstream.remove(name);
        }
    }
    {
        let mut resolving = router.resolving.lock().unwrap_or_else(|e| e.into_inner());
        if resolving.get(name).is_some_and(|lock| Arc::strong_count(lock) == 1) {
            resolving.remove(name);
        }
    }
    if origin.track(name).is_some_and(|t| t.consume().ended().is_some()) {
        origin.remove_track(name);
    }
    tracing::debug!(track = %name, "upstream track ended; forgotten");
}

/// Forwards a FETCH for history the relay does not hold to the track's publisher, and collects the answer
/// (bounded: at most 64 MiB of payload).
async fn fetch_upstream(
    router: &Router,
    name: FullTrackName,
    start: moq_transport::wire::Location,
    end: moq_transport::wire::Location,
    order: moq_transport::wire::GroupOrder,
) -> Option<Vec<moq_transport::FetchedObject>> {
    const MAX_BYTES: usize = 64 * 1024 * 1024;
    let upstream = router.route(&name.namespace)?;
    let range = moq_transport::FetchRange::Standalone { track: name.clone(), start, end };
    let mut response = upstream.fetch(range, order).await.ok()?;
    let mut objects = Vec::new();
    let mut bytes = 0;
    while let Ok(Some(o)) = response.next().await {
        bytes += o.payload.len();
        if bytes > MAX_BYTES {
            tracing::warn!(track = %name, "upstream FETCH larger than the relay forwards; truncated");
            break;
        }
        objects.push(o);
    }
    tracing::debug!(track = %name, objects = objects.len(), "FETCH forwarded upstream");
    Some(objects)
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
    use clap::{CommandFactory, FromArgMatches};

    fn load(args: &[&str]) -> anyhow::Result<Config> {
        let matches = Config::command().try_get_matches_from(args)?;
        let mut config = Config::from_arg_matches(&matches)?;
        config.apply_file(&matches)?;
        Ok(config)
    }

    #[test]
    fn config_file_and_flags() {
        let path = std::env::temp_dir().join(format!("moq-relay-test-{}.toml", std::process::id()));
        std::fs::write(
            &path,
            "bind = \"127.0.0.1:5000\"\ncache_groups = 3\nauth_public = [\"demo\"]\ndrain_timeout = \"250ms\"\n\
             max_uni_streams = 64\ndemo = true\n",
        )
        .unwrap();
        let p = path.to_str().unwrap();
        let c = load(&["moq-relay", "--config", p]).unwrap();
        assert_eq!(c.bind, "127.0.0.1:5000".parse().unwrap());
        assert_eq!(c.cache_groups, 3);
        assert_eq!(c.auth_public, vec!["demo".to_string()]);
        assert_eq!(c.drain_timeout, std::time::Duration::from_millis(250));
        assert_eq!(
            (c.max_uni_streams, c.max_bidi_streams, c.demo),
            (64, moq_transport::DEFAULT_MAX_BIDI_STREAMS, true)
        );
        // Flags win over the file; defaults do not.
        let c = load(&["moq-relay", "--config", p, "--cache-groups", "9"]).unwrap();
        assert_eq!((c.cache_groups, c.bind), (9, "127.0.0.1:5000".parse().unwrap()));
        // Unknown keys are an error, not silently ignored.
        std::fs::write(&path, "bnid = \"x\"\n").unwrap();
        assert!(load(&["moq-relay", "--config", p]).is_err());
        let _ = std::fs::remove_file(&path);
    }

    /// Once a publisher leaves, the relay lets go of the track's upstream subscription, its lock and its cache.
    #[tokio::test]
    async fn ended_upstream_tracks_are_forgotten() {
        use moq_transport::quic::Client;
        use moq_transport::tls::{Trust, parse_fingerprint};
        use moq_transport::{Object, TrackInfo};
        use std::time::Duration;

        let config = Config { bind: "127.0.0.1:0".parse().unwrap(), http_bind: String::new(), ..Config::default() };
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
        let name = FullTrackName::new(TrackNamespace::from_path("gone").unwrap(), "v");
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
        let held = |r: &Router| r.upstream.lock().unwrap().len() + r.resolving.lock().unwrap().len();
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
