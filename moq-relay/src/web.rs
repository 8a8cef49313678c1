//! Serves the browser player (the built `web/dist`) on the relay's HTTP port.
//!
//! `/` lists the live channels, `/watch?name=demo/clip` plays one (with its chat), `/studio` goes live from the
//! browser, and every other path is a file of the directory. Pages are served cross-origin isolated (COOP/COEP), which the player needs for its shared audio
//! buffer and precise clocks; the page fetches the certificate hash from `/certificate.sha256` on the same origin.
//!
//! The pages are the committed `web/dist`, compiled into the binary, so building and running the relay never needs
//! Node. `--web-dir` serves a directory instead, read at request time (for working on `web/src` with
//! `npm run build`); without a built directory there, `/` answers with how to build it.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Response, StatusCode, Uri, header};
use axum::routing::get;

/// The committed `web/dist` but for the evaluation's `eval-*` pages, compiled in
/// (`tests::every_built_page_is_embedded` keeps this list complete).
const EMBEDDED: &[(&str, &[u8])] = &[
    ("app.js", include_bytes!("../../web/dist/app.js")),
    ("audio-worklet.js", include_bytes!("../../web/dist/audio-worklet.js")),
    ("capture-worklet.js", include_bytes!("../../web/dist/capture-worklet.js")),
    ("decoder-worker.js", include_bytes!("../../web/dist/decoder-worker.js")),
    ("index.html", include_bytes!("../../web/dist/index.html")),
    ("moq-studio.js", include_bytes!("../../web/dist/moq-studio.js")),
    ("moq.js", include_bytes!("../../web/dist/moq.js")),
    ("studio-worker.js", include_bytes!("../../web/dist/studio-worker.js")),
    ("studio.html", include_bytes!("../../web/dist/studio.html")),
    ("studio.js", include_bytes!("../../web/dist/studio.js")),
    ("style.css", include_bytes!("../../web/dist/style.css")),
    ("test.html", include_bytes!("../../web/dist/test.html")),
    ("watch.html", include_bytes!("../../web/dist/watch.html")),
];

/// Where the pages come from.
#[derive(Debug, Clone)]
pub enum Pages {
    /// The bundle compiled into the binary.
    Embedded,
    /// A directory, read at request time.
    Dir(PathBuf),
}

impl Pages {
    /// `--web-dir` if given, else the embedded bundle.
    pub fn new(dir: Option<PathBuf>) -> Pages {
        dir.map_or(Pages::Embedded, Pages::Dir)
    }

    /// Whether there are pages to serve (for a startup message).
    pub fn is_built(&self) -> bool {
        match self {
            Pages::Embedded => true,
            Pages::Dir(dir) => is_built(dir),
        }
    }
}

/// The routes serving `pages`: `/`, `/watch` and a fallback for the files. Merge into a router without a fallback.
pub fn router(pages: Pages) -> Router {
    let pages = Arc::new(pages);
    let (p1, p2, p3) = (pages.clone(), pages.clone(), pages);
    Router::new()
        .route("/", get(move || serve(p1.clone(), "index.html".into())))
        .route("/watch", get(move || serve(p2.clone(), "watch.html".into())))
        .fallback(move |uri: Uri| serve(p3.clone(), uri.path().trim_start_matches('/').to_string()))
}

/// Whether `dir` holds built pages (for a startup message).
pub fn is_built(dir: &Path) -> bool {
    dir.join("index.html").is_file() && dir.join("moq.js").is_file()
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "wasm" => "application/wasm",
        _ => "application/octet-stream",
    }
}

/// A relative path with no `..`, root or prefix components, so it cannot leave the directory.
fn safe_relative(path: &str) -> Option<PathBuf> {
    let p = Path::new(path);
    if p.components().all(|c| matches!(c, Component::Normal(_))) && !path.is_empty() {
        Some(p.to_path_buf())
    } else {
        None
    }
}

async fn serve(pages: Arc<Pages>, path: String) -> Response<Body> {
    let dir = match pages.as_ref() {
        Pages::Embedded => return serve_embedded(&path),
        Pages::Dir(dir) => dir,
    };
    let Some(rel) = safe_relative(&path) else {
        return plain(StatusCode::NOT_FOUND, "not found\n");
    };
    let mut file = dir.join(&rel);
    // `/watch.html` and `/watch` alike; a bare name gets `.html` if that exists.
    if !file.is_file() && dir.join(format!("{path}.html")).is_file() {
        file = dir.join(format!("{path}.html"));
    }
    match tokio::fs::read(&file).await {
        Ok(bytes) => {
            let name = file.to_string_lossy().into_owned();
            isolated(Response::builder().status(StatusCode::OK).header(header::CONTENT_TYPE, content_type(&name)))
                .body(Body::from(bytes))
                .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "response\n"))
        }
        Err(_) if !is_built(dir) => not_built(dir),
        Err(_) => plain(StatusCode::NOT_FOUND, "not found\n"),
    }
}

fn serve_embedded(path: &str) -> Response<Body> {
    let html = format!("{path}.html");
    let found = EMBEDDED.iter().find(|(name, _)| *name == path || *name == html);
    match found {
        Some((name, bytes)) => {
            isolated(Response::builder().status(StatusCode::OK).header(header::CONTENT_TYPE, content_type(name)))
                .body(Body::from(*bytes))
                .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "response\n"))
        }
        None => plain(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// Cross-origin isolation: `crossOriginIsolated` in the page (SharedArrayBuffer, 5 µs `performance.now()`).
fn isolated(b: axum::http::response::Builder) -> axum::http::response::Builder {
    b.header("cross-origin-opener-policy", HeaderValue::from_static("same-origin"))
        .header("cross-origin-embedder-policy", HeaderValue::from_static("require-corp"))
        .header(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"))
}

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut r = Response::new(Body::from(text));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

fn not_built(dir: &Path) -> Response<Body> {
    let html = format!(
        "<!doctype html><meta charset=utf-8><title>moq-relay</title><h1>The web player is not built</h1>\
         <p>The relay serves the pages from <code>{}</code>, which has none. Build them with</p>\
         <pre>cd web && npm ci && npm run build</pre><p>or start the relay with <code>--web-dir</code> pointing at a \
         built <code>web/dist</code>.</p>",
        html_escape(&dir.display().to_string())
    );
    isolated(Response::builder().status(StatusCode::SERVICE_UNAVAILABLE).header(header::CONTENT_TYPE, "text/html"))
        .body(Body::from(html))
        .unwrap_or_else(|_| plain(StatusCode::SERVICE_UNAVAILABLE, "web player not built\n"))
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside() {
        assert!(safe_relative("moq.js").is_some());
        assert!(safe_relative("a/b.js").is_some());
        for bad in ["", "../secret", "a/../../b", "/etc/passwd", "./x"] {
            assert!(safe_relative(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn types() {
        assert_eq!(content_type("x/index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("moq.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("x"), "application/octet-stream");
    }

    /// GETs `path` over a real loopback HTTP/1.1 connection served by `axum::serve`: (status, COEP, body).
    async fn get(app: &Router, path: &str) -> (StatusCode, Option<String>, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = app.clone();
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.unwrap();
        server.abort();
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let code: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
        let coep = head.lines().find_map(|l| l.strip_prefix("cross-origin-embedder-policy: ")).map(str::to_string);
        (StatusCode::from_u16(code).unwrap(), coep, body.to_string())
    }

    #[tokio::test]
    async fn serves_built_pages_isolated() {
        let dir = std::env::temp_dir().join(format!("moq-web-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("index.html"), "<h1>list</h1>").unwrap();
        std::fs::write(dir.join("watch.html"), "<h1>watch</h1>").unwrap();
        std::fs::write(dir.join("moq.js"), "export {}").unwrap();
        let app = router(Pages::Dir(dir.clone()));
        let (status, coep, body) = get(&app, "/").await;
        assert_eq!((status, coep.as_deref(), body.as_str()), (StatusCode::OK, Some("require-corp"), "<h1>list</h1>"));
        let (status, _, body) = get(&app, "/watch?name=demo/clip").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "<h1>watch</h1>"));
        assert_eq!(get(&app, "/moq.js").await.0, StatusCode::OK);
        assert_eq!(get(&app, "/nope.js").await.0, StatusCode::NOT_FOUND);
        assert_eq!(get(&app, "/../Cargo.toml").await.0, StatusCode::NOT_FOUND);
        std::fs::remove_dir_all(&dir).unwrap();
        // Not built: a page that says how to build it.
        let (status, _, body) = get(&router(Pages::Dir(dir.join("missing"))), "/").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("npm ci && npm run build"));
    }

    #[tokio::test]
    async fn every_built_page_is_embedded() {
        let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/dist");
        // The evaluation's pages (eval-*) are served by eval-origin, not the relay.
        let mut files: Vec<String> = std::fs::read_dir(&dist)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|f| !f.starts_with("eval-"))
            .collect();
        files.sort();
        let embedded: Vec<&str> = EMBEDDED.iter().map(|(name, _)| *name).collect();
        assert_eq!(files, embedded, "web/dist and EMBEDDED differ: list the new files in web.rs");
        let app = router(Pages::Embedded);
        let (status, coep, body) = get(&app, "/watch?name=demo/clip").await;
        assert_eq!((status, coep.as_deref()), (StatusCode::OK, Some("require-corp")));
        assert_eq!(body.as_bytes(), include_bytes!("../../web/dist/watch.html"));
        assert_eq!(get(&app, "/moq.js").await.0, StatusCode::OK);
        assert_eq!(get(&app, "/../Cargo.toml").await.0, StatusCode::NOT_FOUND);
    }
}
