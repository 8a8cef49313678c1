//! `moq-sub`: watches a MoQT broadcast and writes it as fragmented MP4.
//!
//! ```text
//! moq-sub http://localhost:4443/ --namespace demo/clip | ffplay -
//! moq-sub http://localhost:4443/ --namespace demo/clip -o recording.mp4 --stats
//! ```
//!
//! It reads the broadcast's MSF catalog, subscribes to one video rendition (the largest, or `--rendition`) and
//! the first audio track (or exactly the `--track`s given), and writes an init segment then one fragment per
//! frame. It starts at the live edge: every track at its current group, video at a keyframe.

use std::time::Duration;

use anyhow::Context;
use moq_media::{Selection, WatchOptions};
use moq_transport::SessionConfig;
use moq_transport::cli::ClientArgs;
use moq_transport::wire::namespace::TrackNamespace;
use tokio::io::AsyncWrite;

/// Command-line options.
#[derive(Debug, Clone, clap::Parser)]
#[command(version, about = "Watch a MoQT broadcast and write it as fragmented MP4")]
pub struct Args {
    /// The relay: http://host:port/ (fetches and pins its certificate fingerprint), https:// (WebTransport) or
    /// moqt:// (raw QUIC).
    pub url: url::Url,
    /// Broadcast namespace, `/`-separated (e.g. demo/clip).
    #[arg(long)]
    pub namespace: String,
    /// Write to this file instead of stdout.
    #[arg(long, short)]
    pub output: Option<std::path::PathBuf>,
    /// Watch exactly this track (repeatable); see the catalog for names.
    #[arg(long)]
    pub track: Vec<String>,
    /// Video rendition: a track name or a height (`360`, `720p`). Default: the largest.
    #[arg(long)]
    pub rendition: Option<String>,
    /// Leave audio out.
    #[arg(long)]
    pub no_audio: bool,
    /// Leave video out.
    #[arg(long)]
    pub no_video: bool,
    /// Print per-track objects, groups, bitrate, skips and publish-to-receive latency to stderr every second
    /// and at the end.
    #[arg(long)]
    pub stats: bool,
    /// Stop after this many seconds.
    #[arg(long, value_parser = seconds)]
    pub duration: Option<Duration>,
    /// Stay within this many milliseconds of the live edge: a track that falls further behind (a slow player or
    /// disk) skips to its newest group. 0 never skips.
    #[arg(long, default_value_t = moq_media::DEFAULT_MAX_LATENCY.as_millis() as u64)]
    pub max_latency: u64,
    /// Print the broadcast's catalog (JSON) and exit.
    #[arg(long)]
    pub catalog: bool,
    /// How to trust the relay and which draft to speak.
    #[command(flatten)]
    pub client: ClientArgs,
}

impl Args {
    /// The watch settings these options ask for.
    pub fn watch_options(&self) -> WatchOptions {
        WatchOptions {
            selection: Selection {
                tracks: self.track.clone(),
                rendition: self.rendition.clone(),
                no_video: self.no_video,
                no_audio: self.no_audio,
            },
            stats: self.stats.then_some(Duration::from_secs(1)),
            duration: self.duration,
            max_latency: (self.max_latency > 0).then(|| Duration::from_millis(self.max_latency)),
            ..Default::default()
        }
    }
}

fn seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s.parse().map_err(|e| format!("{s:?}: {e}"))?;
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{s:?} is not a duration in seconds"))
}

/// Runs `moq-sub` with these options until the broadcast ends (or `--duration` passes).
pub async fn run(args: Args) -> anyhow::Result<()> {
    match &args.output {
        Some(path) => {
            let file = tokio::fs::File::create(path).await.with_context(|| format!("create {}", path.display()))?;
            watch(&args, file).await
        }
        None => watch(&args, tokio::io::stdout()).await,
    }
}

/// Connects and writes the broadcast to `out`.
pub async fn watch<W: AsyncWrite + Unpin>(args: &Args, out: W) -> anyhow::Result<()> {
    let namespace = TrackNamespace::from_path(&args.namespace).context("--namespace")?;
    let client = args.client.client(SessionConfig::default())?;
    let session = client.connect(&args.url).await.with_context(|| format!("connect {}", args.url))?;
    if args.catalog {
        let catalog = moq_media::read_catalog(&session, &namespace).await?;
        println!("{}", catalog.to_json());
    } else {
        match moq_media::watch(&session, &namespace, &args.watch_options(), out).await {
            Ok(stats) => tracing::info!(tracks = stats.len(), "broadcast ended"),
            // The reader went away (`| ffprobe -`, `| head`, a closed player): a normal way to stop watching.
            Err(moq_media::Error::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                tracing::info!("output closed");
            }
            Err(e) => return Err(e.into()),
        }
    }
    // Closed and flushed before the process exits, so that the relay lets go of the session at once.
    session.close_and_wait(moq_transport::wire::codes::SessionCode::NoError, "done").await;
    client.wait_idle(Duration::from_millis(500)).await;
    Ok(())
}
