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
use moq_transport::Origin;
use moq_transport::cli::{ClientArgs, ReconnectArgs};
use moq_transport::wire::namespace::TrackNamespace;
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
    /// How a lost relay is noticed and reconnected to (the broadcast is announced again on each new session).
    #[command(flatten)]
    pub reconnect: ReconnectArgs,
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
        let origin = Origin::new();
        let mut broadcast = Broadcast::new(origin.clone(), namespace.clone(), args.options(true));
        let mut link = Link::start(&args, origin, namespace).await?;
        broadcast.set_tracks(&tracks)?;
        loop {
            tokio::select! {
                r = broadcast.publish(&mut input) => r.with_context(|| format!("read {}", args.input))?,
                e = link.failed() => return Err(e),
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
    let origin = Origin::new();
    let mut broadcast = Broadcast::new(origin.clone(), namespace.clone(), args.options(file));
    let mut link = Link::start(args, origin, namespace).await?;
    let result = tokio::select! {
        r = broadcast.publish(input) => r.context("read input"),
        e = link.failed() => return Err(e),
    };
    // Even after bad input (a killed encoder's truncated last box), end the broadcast properly.
    broadcast.finish();
    // Let the relay read the last objects and PUBLISH_DONE before the connection closes.
    tokio::time::sleep(Duration::from_millis(500)).await;
    link.stop().await;
    result
}

/// The connection to the relay, kept up while the broadcast runs: the broadcast is written into an origin
/// whatever happens to the connection, and every new session announces it again, so a relay restart (or a
/// failover to another relay of the cluster at the same URL) costs viewers only the outage.
struct Link {
    failed: tokio::sync::oneshot::Receiver<anyhow::Error>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Link {
    /// Connects and announces (an error if the first attempt fails), then keeps reconnecting in the background.
    async fn start(args: &Args, origin: Origin, namespace: TrackNamespace) -> anyhow::Result<Link> {
        let client = args.client.client(args.reconnect.session_config(origin))?;
        let first = announce(&client, &args.url, &namespace).await?;
        let (fail, failed) = tokio::sync::oneshot::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let args = args.clone();
        let task = tokio::spawn(async move {
            if let Err(e) = keep(client, &args, &namespace, first, stopped).await {
                let _ = fail.send(e);
            }
        });
        Ok(Link { failed, stop: Some(stop), task })
    }

    /// Resolves if the connection is lost for good (`--no-reconnect`, or `--reconnect-timeout` passed).
    async fn failed(&mut self) -> anyhow::Error {
        match (&mut self.failed).await {
            Ok(e) => e,
            Err(_) => std::future::pending().await,
        }
    }

    /// Withdraws the broadcast, closes the session and waits for the close to go out.
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), &mut self.task).await;
    }
}

type Announced = (moq_transport::Session, moq_transport::Announcement);

async fn announce(
    client: &moq_transport::quic::Client,
    url: &url::Url,
    namespace: &TrackNamespace,
) -> anyhow::Result<Announced> {
    let session = client.connect(url).await.with_context(|| format!("connect {url}"))?;
    let announcement = session.publish_namespace(namespace.clone()).await.context("PUBLISH_NAMESPACE")?;
    let path: Vec<String> = namespace.fields().iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect();
    eprintln!("publishing {} to {url} ({})", path.join("/"), session.version());
    Ok((session, announcement))
}

/// Holds the session until told to stop; after a loss, reconnects with backoff and announces again.
async fn keep(
    client: moq_transport::quic::Client,
    args: &Args,
    namespace: &TrackNamespace,
    first: Announced,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) -> anyhow::Result<()> {
    let mut current = Some(first);
    let mut backoff = args.reconnect.backoff();
    // Where the next session goes: the relay's GOAWAY may name another (draft-19 §GOAWAY: the client MUST use it).
    let mut url = args.url.clone();
    loop {
        if let Some((session, announcement)) = current.take() {
            backoff.reset();
            let moved = loop {
                tokio::select! {
                    e = session.closed() => {
                        eprintln!("connection lost ({e}); reconnecting");
                        break None;
                    }
                    event = session.next_event() => match event.and_then(|e| e.goaway_target(&url)) {
                        Some(next) => break Some(next),
                        None => continue,
                    },
                    _ = &mut stopped => {
                        drop(announcement);
                        session.close_and_wait(moq_transport::wire::codes::SessionCode::NoError, "end of input").await;
                        client.wait_idle(Duration::from_millis(500)).await;
                        return Ok(());
                    }
                }
            };
            if let Some(next) = moved {
                // Make before break: publish on the new session, then leave the old one (its viewers move too).
                eprintln!("the relay is going away; moving to {next}");
                url = next;
                let moved = announce(&client, &url, namespace).await;
                drop(announcement);
                session.close(moq_transport::wire::codes::SessionCode::NoError, "going away");
                match moved {
                    Ok(a) => {
                        current = Some(a);
                        continue;
                    }
                    Err(e) => eprintln!("moving failed ({e:#}); retrying"),
                }
            } else if args.reconnect.no_reconnect {
                anyhow::bail!("connection lost");
            }
        }
        let Some(wait) = backoff.next_wait() else {
            anyhow::bail!("could not reconnect to {url} within {:?}", args.reconnect.reconnect_timeout);
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = &mut stopped => return Ok(()),
        }
        match announce(&client, &url, namespace).await {
            Ok(a) => current = Some(a),
            Err(e) => eprintln!("reconnect failed ({e:#}); retrying"),
        }
    }
}
