//! Publishes a clock track: a group per minute, an object per second (the time as text).
//!
//! Serve subscribers directly (prints the certificate fingerprint for `clock_sub --fingerprint`):
//!
//! ```text
//! cargo run -p moq-transport --example clock_pub -- --listen 127.0.0.1:4443
//! ```
//!
//! Or publish into a relay (`moqt://` for raw QUIC, `https://` for WebTransport):
//!
//! ```text
//! cargo run -p moq-transport --example clock_pub -- --connect moqt://localhost:4443/ --insecure
//! ```

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::Parser;

#[path = "common/mod.rs"]
mod common;
use moq_transport::quic::Server;
use moq_transport::tls::Certificate;
use moq_transport::*;

#[derive(Parser)]
struct Args {
    /// Serve subscribers on this UDP address (raw QUIC and WebTransport).
    #[arg(long, conflicts_with = "connect")]
    listen: Option<SocketAddr>,
    /// Publish into the relay at this URL (moqt:// or https://).
    #[arg(long)]
    connect: Option<url::Url>,
    #[command(flatten)]
    name: common::TrackArgs,
    #[command(flatten)]
    client: common::ClientArgs,
}

/// The civil date (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// "YYYY-MM-DD HH:MM:" for the minute containing `secs` (UTC).
fn minute_prefix(secs: u64) -> String {
    let (y, mo, d) = civil((secs / 86_400) as i64);
    format!("{y:04}-{mo:02}-{d:02} {:02}:{:02}:", (secs / 3600) % 24, (secs / 60) % 60)
}

/// One group per minute: object 0 is the "YYYY-MM-DD HH:MM:" prefix, then one object per second holding "SS"
/// (the same layout as moq-dev's clock, so the two interoperate).
async fn run_clock(track: TrackProducer) -> anyhow::Result<()> {
    loop {
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?;
        let minute = now.as_secs() / 60;
        let group = track.create_group(minute)?;
        let sub = group.create_subgroup(0, 0);
        sub.write(Object::new(0, minute_prefix(now.as_secs())))?;
        let mut next_id = 1;
        loop {
            let now = SystemTime::now().duration_since(UNIX_EPOCH)?;
            if now.as_secs() / 60 != minute {
                break;
            }
            sub.write(Object::new(next_id, format!("{:02}", now.as_secs() % 60)))?;
            next_id += 1;
            tokio::time::sleep(Duration::from_secs(now.as_secs() + 1) - now).await;
        }
        sub.finish();
        group.finish();
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let args = Args::parse();
    let name = args.name.name()?;
    let namespace = name.namespace.clone();
    let track = TrackProducer::new(TrackInfo::new(name));
    let origin = Origin::new();
    origin.publish_track(track.clone());
    let config = SessionConfig { origin, ..Default::default() };

    if let Some(addr) = args.listen {
        let cert = Certificate::self_signed(&["localhost", "127.0.0.1"])?;
        println!("fingerprint {}", cert.sha256_hex());
        let server = Server::bind(addr, cert, config)?;
        println!("serving {}--{} on {}", namespace, args.name.track, server.local_addr()?);
        tokio::spawn(async move {
            while let Some(incoming) = server.accept().await {
                tokio::spawn(async move {
                    match incoming.establish().await {
                        Ok((session, info)) => {
                            tracing::info!(?info, "subscriber connected");
                            let e = session.closed().await;
                            tracing::info!(error = %e, "subscriber left");
                        }
                        Err(e) => tracing::warn!(error = %e, "handshake failed"),
                    }
                });
            }
        });
        run_clock(track).await
    } else if let Some(url) = args.connect {
        let client = args.client.client(config)?;
        let session = client.connect(&url).await.with_context(|| format!("connect {url}"))?;
        let _announcement = session.publish_namespace(namespace).await.context("PUBLISH_NAMESPACE")?;
        println!("publishing {}--{} to {url}", args.name.namespace, args.name.track);
        tokio::select! {
            r = run_clock(track) => r,
            e = session.closed() => Err(e.into()),
        }
    } else {
        anyhow::bail!("give --listen ADDR or --connect URL");
    }
}
