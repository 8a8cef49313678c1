//! The evaluation's HTTPS origin (HTTP/2 and HTTP/1.1 over TLS): the LL-HLS packager's playlist and media with
//! blocking reload, a directory of ffmpeg's HLS output, and the player pages.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::llhls::{Packager, Ready};

/// Requests and bytes served.
#[derive(Debug, Default)]
pub struct Counters {
    /// Requests answered.
    pub requests: AtomicU64,
    /// Body bytes of media and playlist responses (LL-HLS and /hls).
    pub bytes: AtomicU64,
    /// Blocking requests that timed out (503).
    pub timeouts: AtomicU64,
}

/// The LL-HLS side: the packager and a signal bumped whenever it changes.
#[derive(Debug, Clone)]
pub struct Live {
    packager: Arc<Mutex<Packager>>,
    changed: watch::Sender<u64>,
}

impl Live {
    /// Wraps a packager.
    pub fn new(packager: Packager) -> Live {
        Live { packager: Arc::new(Mutex::new(packager)), changed: watch::Sender::new(0) }
    }

    /// Changes the packager and wakes the blocked requests.
    pub fn update(&self, f: impl FnOnce(&mut Packager)) {
        if let Ok(mut p) = self.packager.lock() {
            f(&mut p);
        }
        self.changed.send_modify(|v| *v += 1);
    }

    /// Answers with `check` once it is ready, or after `timeout` with 503.
    async fn wait<T>(&self, timeout: Duration, check: impl Fn(&Packager) -> Ready<T>) -> Result<T, StatusCode> {
        let mut rx = self.changed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let ready = match self.packager.lock() {
                Ok(p) => check(&p),
                Err(_) => return Err(StatusCode::INTERNAL_SERVER_ERROR),
            };
            match ready {
                Ready::Now(v) => return Ok(v),
                Ready::Gone => return Err(StatusCode::NOT_FOUND),
                Ready::TooFar => return Err(StatusCode::BAD_REQUEST),
                Ready::Later => {}
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                _ => return Err(StatusCode::SERVICE_UNAVAILABLE),
            }
        }
    }

    /// Three target durations: how long a blocking request may wait (RFC 8216bis 6.2.5.2).
    fn hold(&self) -> Duration {
        let segment =
            self.packager.lock().map(|p| f64::from(p.config().segment_frames) / p.config().fps).unwrap_or(2.0);
        Duration::from_secs_f64(3.0 * segment)
    }
}

/// What the origin serves.
#[derive(Debug, Clone)]
pub struct Site {
    /// The player pages (web/dist).
    pub pages: PathBuf,
    /// ffmpeg's HLS output, served under /hls.
    pub hls_dir: Option<PathBuf>,
    /// The LL-HLS packager, served under /ll.
    pub live: Option<Live>,
    /// Served at /relay/certificate.sha256 (the relay's fingerprint, for the MoQ player page).
    pub fingerprint: Option<String>,
}

#[derive(Clone)]
struct AppState {
    live: Option<Live>,
    counters: Arc<Counters>,
}

#[derive(Debug, Deserialize)]
struct Blocking {
    #[serde(rename = "_HLS_msn")]
    msn: Option<u64>,
    #[serde(rename = "_HLS_part")]
    part: Option<usize>,
}

fn media(counters: &Counters, bytes: Bytes, kind: &'static str) -> Response {
    counters.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
    ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "no-cache")], bytes).into_response()
}

async fn playlist(State(s): State<AppState>, Query(q): Query<Blocking>) -> Response {
    let Some(live) = s.live else { return StatusCode::NOT_FOUND.into_response() };
    if let Some(msn) = q.msn {
        if let Err(code) = live.wait(live.hold(), |p| p.playlist_ready(msn, q.part)).await {
            if code == StatusCode::SERVICE_UNAVAILABLE {
                s.counters.timeouts.fetch_add(1, Ordering::Relaxed);
            }
            return code.into_response();
        }
    } else if q.part.is_some() {
        return StatusCode::BAD_REQUEST.into_response(); // _HLS_part without _HLS_msn
    }
    let text = match live.packager.lock() {
        Ok(p) => p.playlist(),
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    media(&s.counters, Bytes::from(text), "application/vnd.apple.mpegurl")
}

/// `part12.3.m4s`, `seg12.m4s` or `init.mp4`.
async fn ll_media(State(s): State<AppState>, UrlPath(name): UrlPath<String>) -> Response {
    let Some(live) = s.live else { return StatusCode::NOT_FOUND.into_response() };
    let hold = live.hold();
    let answer = if name == "init.mp4" {
        live.wait(hold, |p| p.init().map_or(Ready::Later, Ready::Now)).await
    } else if let Some(rest) = name.strip_prefix("part").and_then(|r| r.strip_suffix(".m4s")) {
        let Some((msn, index)) = rest.split_once('.').and_then(|(m, i)| Some((m.parse().ok()?, i.parse().ok()?)))
        else {
            return StatusCode::NOT_FOUND.into_response();
        };
        live.wait(hold, |p| p.part(msn, index)).await
    } else if let Some(msn) = name.strip_prefix("seg").and_then(|r| r.strip_suffix(".m4s")).and_then(|m| m.parse().ok())
    {
        live.wait(hold, |p| p.segment_bytes(msn)).await
    } else {
        Err(StatusCode::NOT_FOUND)
    };
    match answer {
        Ok(bytes) => media(&s.counters, bytes, if name.ends_with(".mp4") { "video/mp4" } else { "video/iso.segment" }),
        Err(code) => {
            if code == StatusCode::SERVICE_UNAVAILABLE {
                s.counters.timeouts.fetch_add(1, Ordering::Relaxed);
            }
            code.into_response()
        }
    }
}

async fn stats(State(s): State<AppState>) -> Response {
    let c = &s.counters;
    axum::Json(serde_json::json!({
        "requests": c.requests.load(Ordering::Relaxed),
        "bytes": c.bytes.load(Ordering::Relaxed),
        "timeouts": c.timeouts.load(Ordering::Relaxed),
    }))
    .into_response()
}

/// The routes.
pub fn router(site: Site, counters: Arc<Counters>) -> Router {
    let no_store = SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let state = AppState { live: site.live.clone(), counters: counters.clone() };
    let mut app = Router::new()
        .route("/ll/live.m3u8", axum::routing::get(playlist))
        .route("/ll/{name}", axum::routing::get(ll_media))
        .route("/stats", axum::routing::get(stats));
    if let Some(fp) = site.fingerprint.clone() {
        app = app.route("/relay/certificate.sha256", axum::routing::get(move || async move { fp.clone() }));
    }
    if let Some(dir) = &site.hls_dir {
        let counted = counters.clone();
        let hls = Router::new().fallback_service(ServeDir::new(dir)).layer(axum::middleware::map_response(
            move |r: Response| {
                let counted = counted.clone();
                async move {
                    let len = r.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse().ok());
                    counted.bytes.fetch_add(len.unwrap_or(0), Ordering::Relaxed);
                    r
                }
            },
        ));
        app = app.nest("/hls", hls.layer(no_store.clone()));
    }
    // Pages by their name without `.html` too (/watch), like the relay serves them.
    for page in html_pages(&site.pages) {
        let path = site.pages.join(format!("{page}.html"));
        app = app.route_service(&format!("/{page}"), ServeFile::new(path));
    }
    let counted = counters;
    app.fallback_service(ServeDir::new(&site.pages))
        .layer(SetResponseHeaderLayer::overriding(
            header::HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::HeaderName::from_static("cross-origin-embedder-policy"),
            HeaderValue::from_static("require-corp"),
        ))
        .layer(no_store)
        .layer(axum::middleware::map_request(move |r: axum::extract::Request| {
            counted.requests.fetch_add(1, Ordering::Relaxed);
            async move { r }
        }))
        .with_state(state)
}

fn html_pages(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries.filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".html").map(str::to_string)).collect()
}

/// Serves `app` over TLS on `listener`: HTTP/2 when the client offers it (ALPN), HTTP/1.1 otherwise.
pub async fn serve(listener: TcpListener, tls: rustls::ServerConfig, app: Router) {
    let mut tls = tls;
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                _ => {
                    tracing::debug!(%peer, "TLS handshake failed");
                    return;
                }
            };
            let service = TowerToHyperService::new(app);
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            if let Err(e) = builder.serve_connection(TokioIo::new(stream), service).await {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
        });
    }
}
