//! hls-load: N HTTP/2 viewers following an HLS or LL-HLS playlist, fetching every new part (LL-HLS, with
//! blocking playlist reloads) or segment (HLS, polling once per target duration). Prints one JSON line.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use moq_eval::playlist::MediaPlaylist;
use moq_transport::tls::{Trust, client_config};

/// Load on an HLS origin.
#[derive(Debug, Parser)]
struct Args {
    /// The media playlist.
    #[arg(long)]
    url: url::Url,
    /// Viewers (each its own connection).
    #[arg(long, default_value_t = 10)]
    viewers: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 20.0)]
    seconds: f64,
}

#[derive(Default)]
struct Totals {
    requests: AtomicU64,
    bytes: AtomicU64,
    media: AtomicU64,
    errors: AtomicU64,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    moq_transport::cli::init_logging("error");
    moq_transport::cli::exit("hls-load", run(Args::parse()).await)
}

async fn run(args: Args) -> anyhow::Result<()> {
    let totals = Arc::new(Totals::default());
    let end = Instant::now() + Duration::from_secs_f64(args.seconds);
    let mut tls = client_config(&Trust::Insecure)?;
    tls.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(tls));
    let mut tasks = Vec::new();
    for _ in 0..args.viewers {
        let client = H2::connect(&connector, &args.url).await?;
        let (url, totals) = (args.url.clone(), totals.clone());
        tasks.push(tokio::spawn(async move { viewer(client, url, totals, end).await }));
    }
    let mut ok = 0;
    for t in tasks {
        if matches!(t.await, Ok(Ok(true))) {
            ok += 1;
        }
    }
    let t = &totals;
    println!(
        "{}",
        serde_json::json!({
            "url": args.url.as_str(), "viewers": args.viewers, "seconds": args.seconds, "viewers_ok": ok,
            "requests": t.requests.load(Ordering::Relaxed), "bytes": t.bytes.load(Ordering::Relaxed),
            "media": t.media.load(Ordering::Relaxed), "errors": t.errors.load(Ordering::Relaxed),
        })
    );
    Ok(())
}

/// One HTTP/2 connection (each viewer has its own, like a browser tab would).
#[derive(Clone)]
struct H2 {
    send: hyper::client::conn::http2::SendRequest<http_body_util::Empty<bytes::Bytes>>,
}

impl H2 {
    async fn connect(connector: &tokio_rustls::TlsConnector, url: &url::Url) -> anyhow::Result<H2> {
        let host = url.host_str().context("a URL without a host")?.to_string();
        let port = url.port_or_known_default().unwrap_or(443);
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .with_context(|| format!("connecting to {host}:{port}"))?;
        tcp.set_nodelay(true)?;
        let name = rustls::pki_types::ServerName::try_from(host.clone())?;
        let tls = connector.connect(name, tcp).await.context("TLS handshake")?;
        let (send, conn) = hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
            .handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .context("HTTP/2 handshake")?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended");
            }
        });
        Ok(H2 { send })
    }

    async fn get(&mut self, url: &url::Url) -> anyhow::Result<bytes::Bytes> {
        use http_body_util::BodyExt;
        let request = hyper::Request::get(url.as_str()).body(http_body_util::Empty::new())?;
        let response = self.send.send_request(request).await?;
        anyhow::ensure!(response.status().is_success(), "status {}", response.status());
        Ok(response.into_body().collect().await?.to_bytes())
    }
}

async fn get(client: &mut H2, url: url::Url, totals: &Totals) -> anyhow::Result<bytes::Bytes> {
    totals.requests.fetch_add(1, Ordering::Relaxed);
    match client.get(&url).await {
        Ok(b) => {
            totals.bytes.fetch_add(b.len() as u64, Ordering::Relaxed);
            Ok(b)
        }
        Err(e) => {
            totals.errors.fetch_add(1, Ordering::Relaxed);
            Err(e).with_context(|| format!("GET {url}"))
        }
    }
}

/// One viewer until `end`; true when it got media.
async fn viewer(mut client: H2, url: url::Url, totals: Arc<Totals>, end: Instant) -> anyhow::Result<bool> {
    let mut seen = std::collections::HashSet::new();
    let mut got_media = false;
    let mut next: Option<(u64, usize)> = None;
    while Instant::now() < end {
        let mut request = url.clone();
        if let Some((msn, part)) = next {
            request
                .query_pairs_mut()
                .append_pair("_HLS_msn", &msn.to_string())
                .append_pair("_HLS_part", &part.to_string());
        }
        let left = end.saturating_duration_since(Instant::now());
        let text = match tokio::time::timeout(left, get(&mut client, request, &totals)).await {
            Err(_) => break,
            Ok(Ok(b)) => String::from_utf8_lossy(&b).into_owned(),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "playlist");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let Ok(pl) = MediaPlaylist::parse(&text) else {
            totals.errors.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let low_latency = pl.can_block_reload && pl.part_target.is_some();
        // A low-latency viewer fetches the parts near the edge; a classic one the segments.
        // Joining, both start about three parts or segments behind the edge, as players do.
        let uris: Vec<String> = if low_latency {
            let edge = pl.segments.iter().rev().take(1).flat_map(|s| s.parts.iter());
            let parts: Vec<String> = edge.chain(pl.trailing_parts.iter()).map(|p| p.uri.clone()).collect();
            if seen.is_empty() {
                let skip = parts.len().saturating_sub(3);
                seen.extend(parts[..skip].iter().cloned());
            }
            parts
        } else {
            pl.segments.iter().rev().take(3).rev().map(|s| s.uri.clone()).collect()
        };
        for uri in uris {
            if !seen.insert(uri.clone()) {
                continue;
            }
            let Ok(media) = url.join(&uri) else { continue };
            if get(&mut client, media, &totals).await.is_ok() {
                totals.media.fetch_add(1, Ordering::Relaxed);
                got_media = true;
            }
        }
        if low_latency {
            next = pl.next_part();
        } else {
            tokio::time::sleep(Duration::from_secs_f64(pl.target_duration.max(0.5) / 2.0)).await;
        }
    }
    Ok(got_media)
}
