//! `moq-load`: drive any MoQT draft-18/19 relay with one publisher and N subscriber connections, and report
//! delivery, throughput and publish-to-receive latency as JSON lines and a human summary.
//!
//! ```text
//! cargo run --release -p moq-bench --bin moq-load -- --relay http://localhost:4443/ --subscribers 50 \
//!     --fps 30 --frame-size 40000 --group-size 30 --warmup 2s --duration 10s --relay-pid $(pidof moq-relay)
//! ```
//!
//! Each frame carries the time it was written (nanoseconds since the tool started) in its first 8 bytes, so
//! latency is measured on one clock. With `--relay-pid`, the relay's CPU seconds and peak RSS come from /proc.
//! `quic-fanout` does the same fan-out over plain QUIC streams, for the ceiling.

use anyhow::Context;
use clap::Parser;
use moq_bench::load::{Clock, Meter, Shape};
use moq_transport::cli::{AckArgs, ClientArgs};
use moq_transport::wire::namespace::{FullTrackName, TrackNamespace};
use moq_transport::*;

#[derive(Parser)]
struct Args {
    /// The relay (moqt://, https:// or http:// to fetch and pin its fingerprint).
    #[arg(long)]
    relay: url::Url,
    #[command(flatten)]
    shape: Shape,
    /// How to trust the relay (`--fingerprint`, `--insecure`) and which draft to speak.
    #[command(flatten)]
    client: ClientArgs,
    /// Namespace to publish under.
    #[arg(long, default_value = "load")]
    namespace: String,
    /// The ACK frequency this tool's connections ask the relay for.
    #[command(flatten)]
    ack: AckArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let shape = &args.shape;
    anyhow::ensure!(shape.frame_size >= 8, "--frame-size must be at least 8");
    let name = FullTrackName::new(TrackNamespace::from_path(&args.namespace)?, "video");

    // Publisher.
    let track = TrackProducer::new(TrackInfo::new(name.clone()));
    let origin = Origin::new();
    origin.publish_track(track.clone());
    let publisher = args
        .client
        .client(SessionConfig { origin, ack_frequency: args.ack.ack_frequency(), ..Default::default() })?
        .connect(&args.relay)
        .await
        .context("publisher connect")?;
    let _announcement = publisher.publish_namespace(name.namespace.clone()).await.context("PUBLISH_NAMESPACE")?;

    // Subscribers, each its own QUIC connection.
    let (meter, latencies) = Meter::new();
    let mut keep = Vec::new();
    for _ in 0..shape.subscribers {
        let config = SessionConfig { ack_frequency: args.ack.ack_frequency(), ..Default::default() };
        let session = args.client.client(config)?.connect(&args.relay).await.context("subscriber")?;
        let sub = session.subscribe(name.clone(), SubscribeOptions::default()).await.context("SUBSCRIBE")?;
        let mut consumer = sub.consumer();
        let meter = meter.clone();
        tokio::spawn(async move {
            while let Ok(mut group) = consumer.next_group().await {
                while let Some(mut subgroup) = group.next_subgroup().await {
                    while let Ok(o) = subgroup.next().await {
                        meter.received(&o.payload);
                    }
                }
            }
            meter.skipped.fetch_add(consumer.skipped(), std::sync::atomic::Ordering::Relaxed);
        });
        keep.push((session, sub));
    }

    // Publish at the frame rate.
    let mut clock = Clock::new(shape, meter.clone());
    let mut group: Option<(GroupProducer, SubgroupProducer)> = None;
    let group_size = shape.group_size.max(1);
    while let Some(frame) = clock.tick().await {
        if frame.is_multiple_of(group_size) {
            if let Some((g, s)) = group.take() {
                s.finish();
                g.finish();
            }
            let g = track.create_group(frame / group_size)?;
            let s = g.create_subgroup(0, 0);
            group = Some((g, s));
        }
        if let Some((_, s)) = &group {
            s.write(Object::new(frame % group_size, meter.frame(shape.frame_size)))?;
        }
    }
    clock.report(latencies, || keep.iter().map(|(session, _)| session.quic_counters()).sum()).await;
    drop(keep);
    Ok(())
}
