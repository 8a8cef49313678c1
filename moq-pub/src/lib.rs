//! `moq-pub`: publishes fragmented MP4 as a MoQT broadcast into a relay.
//!
//! ```text
//! ffmpeg ... -f mp4 -movflags cmaf+frag_every_frame+empty_moov+default_base_moof - \
//!   | moq-pub http://localhost:4443/ --namespace live/demo
//! moq-pub http://localhost:4443/ --namespace live/clip --input clip.mp4 --loop
//! ```
//!
//! The input is read and checked up to its `moov` before connecting, so bad input fails fast with a clear
//! message. The broadcast is an MSF `catalog` track plus `video0`, `video1`, ..., `audio0` (see `docs/media.md`).

use std::time::Duration;

use anyhow::Context;
use moq_media::{Broadcast, BroadcastOptions, Input, Packaging};
use moq_transport::cli::ClientArgs;
use moq_transport::wire::namespace::TrackNamespace;
use moq_transport::{Origin, SessionConfig};
use tokio::io::AsyncRead;

/// Packaging of the media tracks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PackagingArg {
    /// LOC: one frame per object, with LOC properties (timestamp, keyframe marking).
    Loc,
    /// CMAF: one moof+mdat fragment per object, init segments in the catalog.
    Cmaf,
}

/// When to publish in real time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Pace {
    /// Files are paced by their timestamps; stdin (a live encoder) is not.
    Auto,
    /// Always wait for each frame's time.
    On,
    /// Publish as fast as the input is read.
    Off,
}

/// Command-line options.
#[derive(Debug, Clone, clap::Parser)]
#[command(version, about = "Publish fragmented MP4 (ffmpeg, OBS, a file) as a MoQT broadcast")]
pub struct Args {
    /// The relay: http://host:port/ (fetches and pins its certificate fingerprint), https:// (WebTransport) or
    /// moqt:// (raw QUIC).
    pub url: url::Url,
    /// Broadcast namespace, `/`-separated (e.g. live/demo).
    #[arg(long)]
    pub namespace: String,
    /// Fragmented MP4 input: a file, or `-` for stdin.
    #[arg(long, short, default_value = "-")]
    pub input: String,
    /// Media packaging.
    #[arg(long, value_enum, default_value = "loc")]
    pub packaging: PackagingArg,
    /// Repeat a file input forever (its timeline continues across passes).
    #[arg(long = "loop")]
    pub repeat: bool,
    /// Real-time pacing.
    #[arg(long, value_enum, default_value = "auto")]
    pub pace: Pace,
    /// Groups each track keeps for late joiners.
    #[arg(long, default_value_t = moq_transport::DEFAULT_GROUP_WINDOW)]
    pub window: usize,
    /// How to trust the relay and which draft to speak.
    #[command(flatten)]
    pub client: ClientArgs,
}

impl Args {
    fn options(&self, file: bool) -> BroadcastOptions {
        BroadcastOptions {
            packaging: match self.packaging {
                PackagingArg::Loc => Packaging::Loc,
                PackagingArg::Cmaf => Packaging::Cmaf,
            },
            window: self.window,
            pace: match self.pace {
                Pace::Auto => file,
                Pace::On => true,
                Pace::Off => false,
            },
            ..Default::default()
        }
    }
}

/// Runs `moq-pub` with these options until the input ends (or forever with `--loop`).
pub async fn run(args: Args) -> anyhow::Result<()> {
    let namespace = TrackNamespace::from_path(&args.namespace).context("--namespace")?;
    if args.input == "-" {
        anyhow::ensure!(!args.repeat, "--loop needs a file --input, not stdin");
        let mut input = Input::new(tokio::io::stdin());
        publish(&args, namespace, &mut input, false).await
    } else {
        let open = || async {
            let file = tokio::fs::File::open(&args.input).await.with_context(|| format!("open {}", args.input))?;
            anyhow::Ok(Input::new(file))
        };
        let mut input = open().await?;
        if !args.repeat {
            return publish(&args, namespace, &mut input, true).await;
        }
        let tracks = input.tracks().await.with_context(|| format!("read {}", args.input))?;
        let (_client, session, mut broadcast, _announcement) = connect(&args, namespace, true).await?;
        broadcast.set_tracks(&tracks)?;
        loop {
            tokio::select! {
                r = broadcast.publish(&mut input) => r.with_context(|| format!("read {}", args.input))?,
                e = session.closed() => return Err(e).context("session closed"),
            }
            broadcast.continue_timeline();
            input = open().await?;
        }
    }
}

/// Publishes one input: checks it up to its `moov`, connects, publishes until it ends, then ends the broadcast.
pub async fn publish<R: AsyncRead + Unpin>(
    args: &Args,
    namespace: TrackNamespace,
    input: &mut Input<R>,
    file: bool,
) -> anyhow::Result<()> {
    let tracks = input.tracks().await.context("read input")?;
    for t in &tracks {
        eprintln!(
            "input track {}: {} {}x{} {} Hz",
            t.id, t.config.codec, t.config.width, t.config.height, t.config.sample_rate
        );
    }
    let (client, session, mut broadcast, announcement) = connect(args, namespace, file).await?;
    let result = tokio::select! {
        r = broadcast.publish(input) => r.context("read input"),
        e = session.closed() => return Err(e).context("session closed"),
    };
    // Even after bad input (a killed encoder's truncated last box), end the broadcast properly.
    broadcast.finish();
    // Let the relay read the last objects and PUBLISH_DONE before the connection closes.
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(announcement);
    session.close_and_wait(moq_transport::wire::codes::SessionCode::NoError, "end of input").await;
    client.wait_idle(Duration::from_millis(500)).await;
    result
}

async fn connect(
    args: &Args,
    namespace: TrackNamespace,
    file: bool,
) -> anyhow::Result<(moq_transport::quic::Client, moq_transport::Session, Broadcast, moq_transport::Announcement)> {
    let origin = Origin::new();
    let broadcast = Broadcast::new(origin.clone(), namespace.clone(), args.options(file));
    let client = args.client.client(SessionConfig { origin, ..Default::default() })?;
    let session = client.connect(&args.url).await.with_context(|| format!("connect {}", args.url))?;
    let announcement = session.publish_namespace(namespace.clone()).await.context("PUBLISH_NAMESPACE")?;
    eprintln!("publishing {} to {} ({})", args.namespace, args.url, session.version());
    Ok((client, session, broadcast, announcement))
}
