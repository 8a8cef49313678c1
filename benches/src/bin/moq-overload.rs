//! `moq-overload`: a moq-relay held to a CPU limit (a cgroup CFS quota) serving more subscribers than it can, to see
//! what load shedding keeps: per subscriber class (SUBSCRIBER_PRIORITY 0 "protected", 128 "normal") the objects
//! delivered, the groups lost and the latency; the groups the relay shed (its /metrics); and how soon a viewer
//! who joins mid-overload gets its first object. One JSON line per subscriber count, each on a fresh relay.
//!
//! ```text
//! cargo build --release -p moq-relay -p moq-bench
//! target/release/moq-overload --relay-bin target/release/moq-relay --cpu 0.25 --subscribers 8,12,16 --protected 1
//! ```
//!
//! Needs a writable cgroup `cpu` controller (v1 `/sys/fs/cgroup/cpu` or v2 `cpu.max`), i.e. root here.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::{BufMut, Bytes, BytesMut};
use clap::Parser;
use hdrhistogram::Histogram;
use moq_bench::load::proc_stats;
use moq_bench::process::RelayProcess;
use moq_transport::cli::ClientArgs;
use moq_transport::wire::namespace::{FullTrackName, TrackNamespace};
use moq_transport::*;

/// How long after the window objects sent in it may still arrive and count.
const DRAIN: Duration = Duration::from_secs(3);

#[derive(Parser)]
struct Args {
    /// The moq-relay binary; each run starts a fresh one on loopback.
    #[arg(long, default_value = "target/release/moq-relay")]
    relay_bin: PathBuf,
    /// The relay's CPU limit, in cores.
    #[arg(long, default_value_t = 0.25)]
    cpu: f64,
    /// Subscriber counts, one run each (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "10")]
    subscribers: Vec<usize>,
    /// How many of them subscribe with SUBSCRIBER_PRIORITY 0 (the others use 128).
    #[arg(long, default_value_t = 1)]
    protected: usize,
    /// Frames per second.
    #[arg(long, default_value_t = 30)]
    fps: u32,
    /// Bytes per frame.
    #[arg(long, default_value_t = 40_000)]
    frame_size: usize,
    /// Frames per group.
    #[arg(long, default_value_t = 30)]
    group_size: u64,
    /// Time before measuring.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Time measured.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// More relay arguments, e.g. `--relay-arg=--max-latency=0s` to turn shedding off.
    #[arg(long, allow_hyphen_values = true)]
    relay_arg: Vec<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.frame_size >= 8, "--frame-size must be at least 8");
    for &n in &args.subscribers {
        let report = run(&args, n).await?;
        println!("{report}");
    }
    Ok(())
}

/// A subscriber class's measurements over the window.
#[derive(Default)]
struct Class {
    subscribers: usize,
    received: AtomicU64,
    latency_us: Mutex<Option<Histogram<u64>>>,
}

impl Class {
    fn new(subscribers: usize) -> Arc<Class> {
        let h = Histogram::new_with_bounds(1, 600_000_000, 3).ok();
        Arc::new(Class { subscribers, received: AtomicU64::new(0), latency_us: Mutex::new(h) })
    }

    fn record(&self, latency: Duration) {
        self.received.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut h) = self.latency_us.lock()
            && let Some(h) = h.as_mut()
        {
            let _ = h.record((latency.as_micros() as u64).max(1));
        }
    }

    fn report(&self, sent: u64) -> serde_json::Value {
        let received = self.received.load(Ordering::Relaxed);
        let expected = sent * self.subscribers as u64;
        let h = self.latency_us.lock().ok().and_then(|h| h.clone());
        let ms = |q: f64| h.as_ref().map(|h| h.value_at_quantile(q) as f64 / 1000.0);
        serde_json::json!({
            "subscribers": self.subscribers,
            "objects_expected": expected,
            "objects_received": received,
            "delivered": if expected > 0 { received as f64 / expected as f64 } else { 0.0 },
            "latency_ms": { "p50": ms(0.5), "p99": ms(0.99), "max": h.as_ref().map(|h| h.max() as f64 / 1000.0) },
        })
    }
}

/// A frame whose first 8 bytes are the time it was made, in µs since `base`.
fn frame(base: Instant, size: usize) -> Bytes {
    let mut payload = BytesMut::with_capacity(size);
    payload.put_u64(base.elapsed().as_micros() as u64);
    payload.resize(size, 0x42);
    payload.freeze()
}

async fn run(args: &Args, subscribers: usize) -> anyhow::Result<serde_json::Value> {
    let relay = RelayProcess::start(&args.relay_bin, &args.relay_arg, Some(args.cpu)).await?;
    let url = relay.url()?;
    let client_args = ClientArgs { fingerprint: Some(relay.fingerprint.clone()), ..Default::default() };
    let name = FullTrackName::new(TrackNamespace::from_path("overload")?, "video");

    let track = TrackProducer::new(TrackInfo::new(name.clone()));
    let origin = Origin::new();
    origin.publish_track(track.clone());
    let publisher = client_args.client(SessionConfig { origin, ..Default::default() })?.connect(&url).await?;
    let _announcement = publisher.publish_namespace(name.namespace.clone()).await.context("PUBLISH_NAMESPACE")?;

    let base = Instant::now();
    // The window, as send times in µs since `base`: objects sent in it count, wherever they arrive (until the end
    // of the drain that follows it).
    let window = Arc::new((AtomicU64::new(u64::MAX), AtomicU64::new(u64::MAX)));
    let draining = Arc::new(AtomicBool::new(true));
    let protected = Class::new(args.protected.min(subscribers));
    let normal = Class::new(subscribers - protected.subscribers);
    let mut keep = Vec::new();
    for i in 0..subscribers {
        let (class, priority) = if i < protected.subscribers { (&protected, 0) } else { (&normal, 128) };
        let session = client_args.client(SessionConfig::default())?.connect(&url).await.context("subscriber")?;
        let options = SubscribeOptions { priority, ..Default::default() };
        let sub = session.subscribe(name.clone(), options).await.context("SUBSCRIBE")?;
        let mut consumer = sub.consumer();
        let (class, window, draining) = (class.clone(), window.clone(), draining.clone());
        tokio::spawn(async move {
            while let Ok(mut group) = consumer.next_group().await {
                while let Some(mut subgroup) = group.next_subgroup().await {
                    while let Ok(o) = subgroup.next().await {
                        if o.payload.len() < 8 || !draining.load(Ordering::Relaxed) {
                            continue;
                        }
                        let sent = u64::from_be_bytes(o.payload[..8].try_into().unwrap_or_default());
                        if (window.0.load(Ordering::Relaxed)..window.1.load(Ordering::Relaxed)).contains(&sent) {
                            let now = base.elapsed().as_micros() as u64;
                            class.record(Duration::from_micros(now.saturating_sub(sent)));
                        }
                    }
                }
            }
        });
        keep.push((session, sub));
    }

    // Publish at the frame rate; halfway through the window a viewer joins.
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(args.fps.max(1))));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let start = Instant::now() + args.warmup;
    let end = start + args.duration;
    let mut joiner = None;
    let (mut before, mut shed_before, mut sent, mut started) = (None, None, 0u64, false);
    let mut group: Option<(GroupProducer, SubgroupProducer)> = None;
    for n in 0u64.. {
        ticker.tick().await;
        let now = Instant::now();
        if now >= end {
            break;
        }
        let measuring = now >= start;
        if measuring && !started {
            started = true;
            window.0.store(base.elapsed().as_micros() as u64, Ordering::Relaxed);
            before = proc_stats(relay.pid());
            shed_before = relay.metric("moq_relay_groups_shed_total").await;
        }
        if joiner.is_none() && now >= start + args.duration / 2 {
            joiner = Some(tokio::spawn(late_joiner(client_args.clone(), url.clone(), name.clone())));
        }
        if n.is_multiple_of(args.group_size.max(1)) {
            if let Some((g, s)) = group.take() {
                s.finish();
                g.finish();
            }
            let g = track.create_group(n / args.group_size.max(1))?;
            let s = g.create_subgroup(0, 0);
            group = Some((g, s));
        }
        if let Some((_, s)) = &group {
            s.write(Object::new(n % args.group_size.max(1), frame(base, args.frame_size)))?;
        }
        if measuring {
            sent += 1;
        }
    }
    window.1.store(base.elapsed().as_micros() as u64, Ordering::Relaxed);
    let after = proc_stats(relay.pid());
    // Objects of the window that arrive later than the drain are counted as lost.
    tokio::time::sleep(DRAIN).await;
    draining.store(false, Ordering::Relaxed);
    let shed = match (shed_before, relay.metric("moq_relay_groups_shed_total").await) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    let joined = match joiner {
        Some(j) => j.await.ok().flatten(),
        None => None,
    };
    let cpu = match (before, after) {
        (Some((c0, _)), Some((c1, _))) => Some(c1 - c0),
        _ => None,
    };
    drop(keep);
    Ok(serde_json::json!({
        "subscribers": subscribers,
        "cpu_limit_cores": args.cpu,
        "fps": args.fps,
        "frame_size": args.frame_size,
        "offered_mbps": (subscribers * args.frame_size * 8) as f64 * f64::from(args.fps) / 1e6,
        "seconds": args.duration.as_secs_f64(),
        "objects_sent": sent,
        "relay_cpu_cores": cpu.map(|c| c / args.duration.as_secs_f64()),
        "groups_shed": shed,
        "protected": protected.report(sent),
        "normal": normal.report(sent),
        "late_joiner": joined,
        "relay_args": args.relay_arg,
    }))
}

/// A viewer joining mid-overload: how long until its first object, and which object of its group that was.
async fn late_joiner(client_args: ClientArgs, url: url::Url, name: FullTrackName) -> Option<serde_json::Value> {
    let asked = Instant::now();
    let session = client_args.client(SessionConfig::default()).ok()?.connect(&url).await.ok()?;
    let sub = session.subscribe(name, SubscribeOptions::default()).await.ok()?;
    let mut consumer = sub.consumer();
    let first = tokio::time::timeout(Duration::from_secs(10), async {
        let mut group = consumer.next_group().await.ok()?;
        let mut subgroup = group.next_subgroup().await?;
        let o = subgroup.next().await.ok()?;
        Some((group.id().0, o.id.0))
    })
    .await
    .ok()
    .flatten();
    Some(serde_json::json!({
        "first_object_ms": first.map(|_| asked.elapsed().as_secs_f64() * 1000.0),
        "first_group": first.map(|f| f.0),
        "first_object_id": first.map(|f| f.1),
    }))
}
