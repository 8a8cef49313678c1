//! Subscribes to a clock track and prints each object (one per second).
//!
//! ```text
//! cargo run -p moq-transport --example clock_sub -- moqt://localhost:4443/ --fingerprint <hex from clock_pub>
//! cargo run -p moq-transport --example clock_sub -- https://localhost:4443/ --insecure
//! ```
//!
//! Or wait for a publisher to connect and announce the namespace (`--listen`), then subscribe to it:
//!
//! ```text
//! cargo run -p moq-transport --example clock_sub -- --listen 127.0.0.1:4443
//! ```

use anyhow::Context;
use clap::Parser;

#[path = "common/mod.rs"]
mod common;
use moq_transport::quic::Server;
use moq_transport::tls::Certificate;
use moq_transport::*;

#[derive(Parser)]
struct Args {
    /// The publisher or relay (moqt:// for raw QUIC, https:// for WebTransport).
    #[arg(required_unless_present = "listen")]
    url: Option<url::Url>,
    /// Instead of connecting, accept a publisher on this UDP address and subscribe once it announces.
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    #[command(flatten)]
    name: common::TrackArgs,
    #[command(flatten)]
    client: common::ClientArgs,
    /// Stop after this many objects (0: run until the track ends).
    #[arg(long, default_value_t = 0)]
    count: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let args = Args::parse();
    let name = args.name.name()?;
    let session = match (&args.url, args.listen) {
        (_, Some(addr)) => {
            let cert = Certificate::self_signed(&["localhost", "127.0.0.1"])?;
            println!("fingerprint {}", cert.sha256_hex());
            let server = Server::bind(addr, cert, SessionConfig::default())?;
            eprintln!("waiting for a publisher of {name} on {}", server.local_addr()?);
            loop {
                let incoming = server.accept().await.context("endpoint closed")?;
                let (session, _) = match incoming.establish().await {
                    Ok(s) => s,
                    Err(e) => {
                        eprintln!("handshake failed: {e}");
                        continue;
                    }
                };
                // Wait for the publisher to announce the namespace (PUBLISH_NAMESPACE).
                let mut announced = false;
                while let Some(event) = session.next_event().await {
                    if let Event::Announced(ns) = event
                        && name.namespace.starts_with(&ns)
                    {
                        announced = true;
                        break;
                    }
                }
                if announced {
                    break session;
                }
            }
        }
        (Some(url), None) => {
            let client = args.client.client(SessionConfig::default())?;
            client.connect(url).await.with_context(|| format!("connect {url}"))?
        }
        (None, None) => anyhow::bail!("give a URL or --listen ADDR"),
    };
    let sub = session.subscribe(name.clone(), SubscribeOptions::default()).await.context("SUBSCRIBE")?;
    eprintln!("subscribed to {name} ({})", session.version());
    let mut track = sub.consumer();
    let mut received = 0;
    while let Ok(mut group) = track.next_group().await {
        while let Some(mut subgroup) = group.next_subgroup().await {
            // Object 0 of each group is the "YYYY-MM-DD HH:MM:" prefix, the others the seconds.
            let mut prefix = String::new();
            while let Ok(object) = subgroup.next().await {
                let text = String::from_utf8_lossy(&object.payload).into_owned();
                if object.id.0 == 0 {
                    prefix = text;
                    continue;
                }
                println!("{prefix}{text}");
                received += 1;
                if args.count > 0 && received >= args.count {
                    return Ok(());
                }
            }
        }
    }
    Ok(())
}
