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

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::{BufMut, Bytes, BytesMut};
use clap::Parser;
use moq_transport::quic::Client;
use moq_transport::tls::{Trust, parse_fingerprint};
use moq_transport::wire::namespace::{FullTrackName, TrackNamespace};
use moq_transport::*;

#[derive(Parser)]
struct Args {
    /// The relay (moqt://, https:// or http:// to fetch and pin its fingerprint).
    #[arg(long)]
    relay: url::Url,
    /// Subscriber connections.
    #[arg(long, default_value_t = 10)]
    subscribers: usize,
    /// Frames per second.
    #[arg(long, default_value_t = 30)]
    fps: u32,
    /// Bytes per frame (at least 8).
    #[arg(long, default_value_t = 40_000)]
    frame_size: usize,
    /// Frames per group.
    #[arg(long, default_value_t = 30)]
    group_size: u64,
    /// Seconds before measuring.
    #[arg(long, default_value = "2", value_parser = secs)]
    warmup: Duration,
    /// Seconds measured.
    #[arg(long, default_value = "10", value_parser = secs)]
    duration: Duration,
    /// The relay's process id, for its CPU time and peak RSS.
    #[arg(long)]
    relay_pid: Option<u32>,
    /// Pin the relay's certificate (hex SHA-256).
    #[arg(long)]
    fingerprint: Option<String>,
    /// Do not verify the relay's certificate.
    #[arg(long)]
    insecure: bool,
    /// Namespace to publish under.
    #[arg(long, default_value = "load")]
    namespace: String,
}

fn secs(s: &str) -> Result<Duration, String> {
    let s = s.trim_end_matches('s');
    s.parse::<f64>().map(Duration::from_secs_f64).map_err(|e| e.to_string())
}

/// (utime + stime) seconds and peak RSS bytes of a process.
fn proc_stats(pid: u32) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let hwm = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?.split_whitespace().next()?.parse::<u64>().ok()?;
    Some((ticks / 100.0, hwm * 1024))
}

fn own_cpu() -> f64 {
    proc_stats(std::process::id()).map(|(c, _)| c).unwrap_or(0.0)
}

#[derive(Default)]
struct Counters {
    received: AtomicU64,
    bytes: AtomicU64,
    skipped: AtomicU64,
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.frame_size >= 8, "--frame-size must be at least 8");
    let trust = match (&args.fingerprint, args.insecure) {
        (Some(fp), _) => Trust::Fingerprints(vec![parse_fingerprint(fp)?]),
        (None, true) => Trust::Insecure,
        (None, false) => Trust::System,
    };
    let base = Instant::now();
    let name = FullTrackName::new(TrackNamespace::from_path(&args.namespace)?, "video");

    // Publisher.
    let track = TrackProducer::new(TrackInfo::new(name.clone()));
    let origin = Origin::new();
    origin.publish_track(track.clone());
    let publisher = Client::new(trust.clone(), SessionConfig { origin, ..Default::default() })?
        .connect(&args.relay)
        .await
        .context("publisher connect")?;
    let _announcement = publisher.publish_namespace(name.namespace.clone()).await.context("PUBLISH_NAMESPACE")?;

    // Subscribers, each its own QUIC connection; latencies in nanoseconds go to one channel.
    let counters = Arc::new(Counters::default());
    let measuring = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (lat_tx, mut lat_rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
    let mut keep = Vec::new();
    for _ in 0..args.subscribers {
        let session =
            Client::new(trust.clone(), SessionConfig::default())?.connect(&args.relay).await.context("subscriber")?;
        let sub = session.subscribe(name.clone(), SubscribeOptions::default()).await.context("SUBSCRIBE")?;
        let mut consumer = sub.consumer();
        let (counters, measuring, lat_tx) = (counters.clone(), measuring.clone(), lat_tx.clone());
        tokio::spawn(async move {
            while let Ok(mut group) = consumer.next_group().await {
                while let Some(mut subgroup) = group.next_subgroup().await {
                    while let Ok(o) = subgroup.next().await {
                        if !measuring.load(Ordering::Relaxed) || o.payload.len() < 8 {
                            continue;
                        }
                        let sent = u64::from_be_bytes(o.payload[..8].try_into().unwrap_or_default());
                        let now = base.elapsed().as_nanos() as u64;
                        counters.received.fetch_add(1, Ordering::Relaxed);
                        counters.bytes.fetch_add(o.payload.len() as u64, Ordering::Relaxed);
                        let _ = lat_tx.send(now.saturating_sub(sent));
                    }
                }
            }
            counters.skipped.fetch_add(consumer.skipped(), Ordering::Relaxed);
        });
        keep.push((session, sub));
    }

    // Publish at the frame rate.
    let interval = Duration::from_secs_f64(1.0 / args.fps as f64);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut frame = 0u64;
    let mut group: Option<(GroupProducer, SubgroupProducer)> = None;
    let mut sent = 0u64;
    let warm_until = Instant::now() + args.warmup;
    let end = warm_until + args.duration;
    let (mut relay_before, mut own_before, mut started) = (None, 0.0, None);
    loop {
        ticker.tick().await;
        let now = Instant::now();
        if now >= end {
            break;
        }
        if started.is_none() && now >= warm_until {
            started = Some(now);
            measuring.store(true, Ordering::Relaxed);
            relay_before = args.relay_pid.and_then(proc_stats);
            own_before = own_cpu();
        }
        if frame.is_multiple_of(args.group_size.max(1)) {
            if let Some((g, s)) = group.take() {
                s.finish();
                g.finish();
            }
            let g = track.create_group(frame / args.group_size)?;
            let s = g.create_subgroup(0, 0);
            group = Some((g, s));
        }
        let mut payload = BytesMut::with_capacity(args.frame_size);
        payload.put_u64(base.elapsed().as_nanos() as u64);
        payload.resize(args.frame_size, 0x42);
        if let Some((_, s)) = &group {
            s.write(Object::new(frame % args.group_size, Bytes::from(payload)))?;
        }
        if started.is_some() {
            sent += 1;
        }
        frame += 1;
    }
    tokio::time::sleep(Duration::from_millis(500)).await; // let the last frames land
    measuring.store(false, Ordering::Relaxed);
    let elapsed = started.map(|s| s.elapsed()).unwrap_or_default().as_secs_f64();
    let relay_after = args.relay_pid.and_then(proc_stats);
    let own_cpu_used = own_cpu() - own_before;

    drop(lat_tx);
    let mut lat = Vec::new();
    while let Ok(l) = lat_rx.try_recv() {
        lat.push(l);
    }
    lat.sort_unstable();
    let received = counters.received.load(Ordering::Relaxed);
    let expected = sent * args.subscribers as u64;
    let bytes = counters.bytes.load(Ordering::Relaxed);
    let egress_mbps = bytes as f64 * 8.0 / elapsed.max(1e-9) / 1e6;
    let ms = |ns: u64| ns as f64 / 1e6;
    let (relay_cpu, relay_rss) = match (relay_before, relay_after) {
        (Some((c0, _)), Some((c1, rss))) => (Some(c1 - c0), Some(rss)),
        _ => (None, None),
    };
    let gbit = bytes as f64 * 8.0 / 1e9;
    let json = format!(
        "{{\"subscribers\":{},\"fps\":{},\"frame_size\":{},\"seconds\":{:.2},\"objects_sent\":{},\"objects_expected\":{},\"objects_received\":{},\"loss\":{:.6},\"skipped_groups\":{},\"egress_mbps\":{:.1},\"latency_ms\":{{\"p50\":{:.3},\"p90\":{:.3},\"p99\":{:.3},\"max\":{:.3}}},\"relay_cpu_s\":{},\"relay_cpu_s_per_gbit\":{},\"relay_peak_rss_bytes\":{},\"load_cpu_s\":{:.3},\"load_cpu_s_per_gbit\":{:.4}}}",
        args.subscribers,
        args.fps,
        args.frame_size,
        elapsed,
        sent,
        expected,
        received,
        if expected > 0 { 1.0 - received as f64 / expected as f64 } else { 0.0 },
        counters.skipped.load(Ordering::Relaxed),
        egress_mbps,
        ms(percentile(&lat, 0.5)),
        ms(percentile(&lat, 0.9)),
        ms(percentile(&lat, 0.99)),
        ms(lat.last().copied().unwrap_or(0)),
        relay_cpu.map(|c| format!("{c:.3}")).unwrap_or("null".into()),
        relay_cpu.map(|c| format!("{:.4}", c / gbit.max(1e-9))).unwrap_or("null".into()),
        relay_rss.map(|r| r.to_string()).unwrap_or("null".into()),
        own_cpu_used,
        own_cpu_used / gbit.max(1e-9),
    );
    println!("{json}");
    eprintln!(
        "{} subscribers: {received}/{expected} objects, {egress_mbps:.1} Mb/s egress, latency p50 {:.2} ms p99 {:.2} ms max {:.2} ms{}",
        args.subscribers,
        ms(percentile(&lat, 0.5)),
        ms(percentile(&lat, 0.99)),
        ms(lat.last().copied().unwrap_or(0)),
        relay_cpu.map(|c| format!(", relay {:.3} CPU-s ({:.3} s/Gb)", c, c / gbit.max(1e-9))).unwrap_or_default()
    );
    drop(keep);
    Ok(())
}
