//! eval-origin: the HTTPS origin of the HLS and LL-HLS systems (see `moq_eval::origin`).

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use moq_eval::fragments::{Piece, Splitter};
use moq_eval::llhls::{Config, Packager};
use moq_eval::origin::{self, Counters, Live, Site};
use moq_transport::tls::Certificate;

/// HTTPS (HTTP/2 and HTTP/1.1): /ll (LL-HLS from fMP4 on stdin, with --ll), /hls (a directory), the pages.
#[derive(Debug, Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long)]
    bind: SocketAddr,
    /// Certificate chain (PEM); without it a self-signed one is made for --tls-generate.
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// Private key (PEM).
    #[arg(long)]
    key: Option<PathBuf>,
    /// Host names or addresses for the generated certificate (default: the bind address and localhost).
    #[arg(long)]
    tls_generate: Vec<String>,
    /// The player pages (web/dist).
    #[arg(long, default_value = "web/dist")]
    site: PathBuf,
    /// ffmpeg's HLS output directory, served under /hls.
    #[arg(long)]
    hls_dir: Option<PathBuf>,
    /// Package fragmented MP4 from stdin as LL-HLS under /ll.
    #[arg(long)]
    ll: bool,
    /// Part duration, ms (rounded to whole frames).
    #[arg(long, default_value_t = 333)]
    part_ms: u32,
    /// Segment duration, ms (rounded to whole frames; segments start at keyframes).
    #[arg(long, default_value_t = 2000)]
    segment_ms: u32,
    /// The stream's frame rate.
    #[arg(long, default_value_t = 30.0)]
    fps: f64,
    /// A file whose content is served at /relay/certificate.sha256.
    #[arg(long)]
    fingerprint: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    moq_transport::cli::init_logging("warn");
    moq_transport::cli::exit("eval-origin", run(Args::parse()).await)
}

async fn run(args: Args) -> anyhow::Result<()> {
    let cert = match (&args.cert, &args.key) {
        (Some(c), Some(k)) => Certificate::load(c, k)?,
        _ => {
            let mut hosts = args.tls_generate.clone();
            if hosts.is_empty() {
                hosts = vec![args.bind.ip().to_string(), "localhost".into()];
            }
            Certificate::self_signed(&hosts.iter().map(String::as_str).collect::<Vec<_>>())?
        }
    };
    let tls = moq_transport::tls::server_config(cert)?;
    let fingerprint = match &args.fingerprint {
        Some(p) => Some(std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?),
        None => None,
    };
    let live = args.ll.then(|| Live::new(Packager::new(Config::new(args.fps, args.part_ms, args.segment_ms))));
    if let Some(live) = live.clone() {
        std::thread::spawn(move || ingest(live));
    }
    let site = Site { pages: args.site.clone(), hls_dir: args.hls_dir.clone(), live, fingerprint };
    let app = origin::router(site, Arc::new(Counters::default()));
    let listener = tokio::net::TcpListener::bind(args.bind).await.with_context(|| format!("binding {}", args.bind))?;
    println!("ready https://{}", listener.local_addr()?);
    origin::serve(listener, tls, app).await;
    Ok(())
}

/// Feeds stdin to the packager until it ends.
fn ingest(live: Live) {
    let mut splitter = Splitter::new();
    let mut stdin = std::io::stdin().lock();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match stdin.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) => {
                tracing::error!(error = %e, "reading stdin");
                return;
            }
        };
        let pieces = match splitter.push(&buf[..n]) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "the input is not fragmented MP4");
                return;
            }
        };
        if pieces.is_empty() {
            continue;
        }
        live.update(|p| {
            for piece in &pieces {
                match piece {
                    Piece::Init { bytes, .. } => p.set_init(bytes.clone()),
                    Piece::Fragment(f) => p.push(f),
                }
            }
        });
    }
}
