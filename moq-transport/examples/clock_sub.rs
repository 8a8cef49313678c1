//! Subscribes to a clock track and prints each object (one per second).
//!
//! ```text
//! cargo run -p moq-transport --example clock_sub -- moqt://localhost:4443/ --fingerprint <hex from clock_pub>
//! cargo run -p moq-transport --example clock_sub -- https://localhost:4443/ --insecure
//! ```

use anyhow::Context;
use clap::Parser;
use moq_transport::quic::Client;
use moq_transport::tls::{Trust, parse_fingerprint};
use moq_transport::wire::namespace::{FullTrackName, TrackNamespace};
use moq_transport::*;

#[derive(Parser)]
struct Args {
    /// The publisher or relay (moqt:// for raw QUIC, https:// for WebTransport).
    url: url::Url,
    /// Namespace, `/`-separated.
    #[arg(long, default_value = "clock")]
    namespace: String,
    /// Track name.
    #[arg(long, default_value = "now")]
    track: String,
    /// Trust the server certificate with this SHA-256 (hex).
    #[arg(long)]
    fingerprint: Option<String>,
    /// Do not verify the server certificate (development only).
    #[arg(long)]
    insecure: bool,
    /// Stop after this many objects (0: run until the track ends).
    #[arg(long, default_value_t = 0)]
    count: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let args = Args::parse();
    let trust = match (&args.fingerprint, args.insecure) {
        (Some(fp), _) => Trust::Fingerprints(vec![parse_fingerprint(fp)?]),
        (None, true) => Trust::Insecure,
        (None, false) => Trust::System,
    };
    let client = Client::new(trust, SessionConfig::default())?;
    let session = client.connect(&args.url).await.with_context(|| format!("connect {}", args.url))?;
    let name = FullTrackName::new(TrackNamespace::from_path(&args.namespace)?, args.track.as_str());
    let sub = session.subscribe(name.clone(), SubscribeOptions::default()).await.context("SUBSCRIBE")?;
    eprintln!("subscribed to {name} over {} ({})", args.url.scheme(), session.version());
    let mut track = sub.consumer();
    let mut received = 0;
    while let Ok(mut group) = track.next_group().await {
        while let Some(mut subgroup) = group.next_subgroup().await {
            while let Ok(object) = subgroup.next().await {
                println!("{} {}", group.id(), String::from_utf8_lossy(&object.payload));
                received += 1;
                if args.count > 0 && received >= args.count {
                    return Ok(());
                }
            }
        }
    }
    Ok(())
}
