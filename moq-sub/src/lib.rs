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
use moq_transport::cli::{Backoff, ClientArgs, ReconnectArgs};
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
    /// Write the publisher's timestamps unchanged instead of starting the output at zero (with CMAF
    /// packaging: the source's own media timeline).
    #[arg(long)]
    pub keep_timestamps: bool,
    /// Print the broadcast's catalog (JSON) and exit.
    #[arg(long)]
    pub catalog: bool,
    /// How a lost relay is noticed and reconnected to (the output goes on from the next keyframe).
    #[command(flatten)]
    pub reconnect: ReconnectArgs,
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
            keep_timestamps: self.keep_timestamps,
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

/// Connects and writes the broadcast to `out`, reconnecting when the connection is lost (unless
/// `--no-reconnect`): the output goes on in the same file, from the next keyframe.
pub async fn watch<W: AsyncWrite + Unpin>(args: &Args, out: W) -> anyhow::Result<()> {
    let namespace = TrackNamespace::from_path(&args.namespace).context("--namespace")?;
    let client = args.client.client(args.reconnect.session_config(Default::default()))?;
    if args.catalog {
        let session = client.connect(&args.url).await.with_context(|| format!("connect {}", args.url))?;
        let catalog = moq_media::read_catalog(&session, &namespace).await?;
        println!("{}", catalog.to_json());
        return close(&client, &session).await;
    }
    let mut watch = moq_media::Watch::new(namespace, args.watch_options(), out);
    let mut outages = Outages::new(args.reconnect.backoff());
    // Where the next session goes: the relay's GOAWAY may name another (draft-19 §GOAWAY: the client MUST use it).
    let mut url = args.url.clone();
    let result = loop {
        let session = match client.connect(&url).await {
            Ok(s) => s,
            Err(e) if outages.retry(&e.to_string()).await => continue,
            Err(e) => break Err(anyhow::Error::from(e).context(format!("connect {url}"))),
        };
        match watch.run(&session).await {
            Ok(moq_media::WatchEnd::Ended) => {
                outages.recovered(watch.first_write());
                tracing::info!("broadcast ended");
                break close(&client, &session).await;
            }
            Ok(moq_media::WatchEnd::Lost(e)) => {
                outages.recovered(watch.first_write());
                if !outages.retry(&e.to_string()).await {
                    break Err(anyhow::anyhow!("connection lost: {e}"));
                }
                session.close(moq_transport::wire::codes::SessionCode::NoError, "reconnecting");
            }
            // A migration, not an outage: even with --no-reconnect, go on at once on the named session.
            Ok(moq_media::WatchEnd::Moved(uri)) => {
                outages.recovered(watch.first_write());
                url = moq_transport::goaway_url(&url, &uri);
                eprintln!("the relay is going away; moving to {url}");
                session.close(moq_transport::wire::codes::SessionCode::NoError, "going away");
            }
            // The reader went away (`| ffprobe -`, `| head`, a closed player): a normal way to stop watching.
            Err(e) if output_closed(&e) => {
                tracing::info!("output closed");
                break close(&client, &session).await;
            }
            // After a reconnection the broadcast may not be back yet (its publisher is reconnecting too).
            Err(e) if outages.in_outage() && outages.retry(&e.to_string()).await => {}
            Err(e) => break Err(e.into()),
        }
    };
    // The last flush may find the reader gone too.
    let stats = match watch.finish().await {
        Err(e) if output_closed(&e) => Ok(Vec::new()),
        other => other,
    };
    if args.stats && outages.count > 0 {
        eprintln!("outages: {} (longest {:.2} s)", outages.count, outages.longest.as_secs_f64());
    }
    result.and(stats.map(|_| ()).map_err(Into::into))
}

/// Whether `e` says the output's reader went away.
fn output_closed(e: &moq_media::Error) -> bool {
    matches!(e, moq_media::Error::Io(io) if io.kind() == std::io::ErrorKind::BrokenPipe)
}

/// Connection losses and the reconnection backoff.
#[derive(Debug)]
struct Outages {
    count: u32,
    longest: Duration,
    backoff: Backoff,
}

impl Outages {
    fn new(backoff: Backoff) -> Self {
        Self { count: 0, longest: Duration::ZERO, backoff }
    }

    fn in_outage(&self) -> bool {
        self.backoff.outage_since().is_some()
    }

    /// Records a failure; waits and returns `true` if we should try again.
    async fn retry(&mut self, why: &str) -> bool {
        let starts = !self.in_outage();
        let Some(wait) = self.backoff.next_wait() else { return false };
        if starts {
            self.count += 1;
        }
        eprintln!("connection lost ({why}); reconnecting in {} ms", wait.as_millis());
        tokio::time::sleep(wait).await;
        true
    }

    /// Ends the current outage if frames flowed again (from `first_write` on).
    fn recovered(&mut self, first_write: Option<std::time::Instant>) {
        if let (Some(since), Some(back)) = (self.backoff.outage_since(), first_write) {
            self.longest = self.longest.max(back.saturating_duration_since(since));
            self.backoff.reset();
        }
    }
}

/// Closes the session and lets the close reach the relay before the process exits.
async fn close(client: &moq_transport::quic::Client, session: &moq_transport::Session) -> anyhow::Result<()> {
    session.close_and_wait(moq_transport::wire::codes::SessionCode::NoError, "done").await;
    client.wait_idle(Duration::from_millis(500)).await;
    Ok(())
}
