//! `moq-soak`: a relay under churn for a long time, to see whether anything leaks. One steady broadcast plays
//! throughout; around it viewers come and go (each watches 1-4 s, then closes and waits for the close to go out, or just drops its session),
//! publishers announce a namespace, publish a few groups to a viewer and leave, and some clients FETCH, ask
//! TRACK_STATUS or SUBSCRIBE_NAMESPACE. Every `--sample` it prints a JSON line with the relay's RSS, open file
//! descriptors, threads and /metrics gauges; at the end a summary line.
//!
//! ```text
//! cargo build --release -p moq-relay -p moq-bench
//! target/release/moq-soak --relay-bin target/release/moq-relay --duration 1h --sample 30s
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use clap::Parser;
use moq_bench::process::RelayProcess;
use moq_transport::cli::ClientArgs;
use moq_transport::wire::codes::SessionCode;
use moq_transport::wire::namespace::{FullTrackName, TrackNamespace};
use moq_transport::wire::{GroupOrder, Location};
use moq_transport::*;

#[derive(Parser)]
struct Args {
    /// The moq-relay binary (started fresh on loopback).
    #[arg(long, default_value = "target/release/moq-relay")]
    relay_bin: PathBuf,
    /// How long to run.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// How often to sample the relay.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    sample: Duration,
    /// A new viewer every this long.
    #[arg(long, default_value = "100ms", value_parser = humantime::parse_duration)]
    viewer_every: Duration,
    /// A new short-lived publisher every this long.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    publisher_every: Duration,
    /// More relay arguments.
    #[arg(long, allow_hyphen_values = true)]
    relay_arg: Vec<String>,
}

/// What the churn did.
#[derive(Default)]
struct Counts {
    viewers: AtomicU64,
    publishers: AtomicU64,
    requests: AtomicU64,
    objects: AtomicU64,
    errors: AtomicU64,
}

impl Counts {
    fn json(&self) -> serde_json::Value {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        serde_json::json!({
            "viewers": get(&self.viewers),
            "publishers": get(&self.publishers),
            "requests": get(&self.requests),
            "objects": get(&self.objects),
            "errors": get(&self.errors),
        })
    }
}

/// What a churning client needs.
#[derive(Clone)]
struct Ctx {
    client: Arc<quic::Client>,
    url: url::Url,
    counts: Arc<Counts>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let relay = RelayProcess::start(&args.relay_bin, &args.relay_arg, None).await?;
    let client_args = ClientArgs { fingerprint: Some(relay.fingerprint.clone()), ..Default::default() };
    let ctx = Ctx {
        client: Arc::new(client_args.client(SessionConfig::default())?),
        url: relay.url()?,
        counts: Arc::default(),
    };

    // The steady broadcast: 30 objects of 1 KB a second, a group a second.
    let steady = FullTrackName::new(TrackNamespace::from_path("soak/steady")?, "video");
    let track = TrackProducer::new(TrackInfo::new(steady.clone()));
    let origin = Origin::new();
    origin.publish_track(track.clone());
    let publisher = client_args.client(SessionConfig { origin, ..Default::default() })?.connect(&ctx.url).await?;
    let _announcement = publisher.publish_namespace(steady.namespace.clone()).await.context("PUBLISH_NAMESPACE")?;
    let writer = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(33));
        for n in 0u64.. {
            tick.tick().await;
            if n % 30 == 0 {
                let objects = (0..30).map(|i| Object::new(i, Bytes::from(vec![0x42; 1000])));
                // A whole group at once keeps this loop simple; viewers still see it arrive a group at a time.
                if track.write_group(n / 30, objects).is_err() {
                    return;
                }
            }
        }
    });

    let started = Instant::now();
    let mut viewers = tokio::time::interval(args.viewer_every);
    let mut publishers = tokio::time::interval(args.publisher_every);
    let mut samples = tokio::time::interval(args.sample);
    let mut series = Vec::new();
    let mut n = 0u64;
    while started.elapsed() < args.duration {
        tokio::select! {
            _ = viewers.tick() => {
                n += 1;
                tokio::spawn(viewer(ctx.clone(), steady.clone(), n));
            }
            _ = publishers.tick() => {
                n += 1;
                tokio::spawn(short_publisher(ctx.clone(), client_args.clone(), n));
            }
            _ = samples.tick() => {
                let s = sample(&relay, started, &ctx.counts).await;
                println!("{s}");
                series.push(s);
            }
        }
    }
    writer.abort();
    // Let the last clients leave, then sample the relay at rest.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let last = sample(&relay, started, &ctx.counts).await;
    println!("{last}");
    series.push(last);
    println!("{}", summary(&series));
    Ok(())
}

/// One viewer of the steady broadcast: watches 1-4 s, then closes and waits (odd) or drops the session (even), and
/// every tenth also FETCHes the current group and asks TRACK_STATUS.
async fn viewer(ctx: Ctx, steady: FullTrackName, n: u64) {
    ctx.counts.viewers.fetch_add(1, Ordering::Relaxed);
    let result = async {
        let session = ctx.client.connect(&ctx.url).await?;
        if n.is_multiple_of(10) {
            ctx.counts.requests.fetch_add(2, Ordering::Relaxed);
            let _ = session.track_status(steady.clone()).await?;
            let range = FetchRange::Standalone {
                track: steady.clone(),
                start: Location::new(0, 0),
                end: Location::new(u64::MAX / 2, 0),
            };
            // The range reaches past the live edge; the relay answers with what its cache holds or refuses.
            let _ = session.fetch(range, GroupOrder::Ascending).await;
        }
        let sub = session.subscribe(steady, SubscribeOptions::default()).await?;
        let mut consumer = sub.consumer();
        let watch = Duration::from_millis(1000 + (n * 7919) % 3000);
        let _ = tokio::time::timeout(watch, async {
            while let Ok(mut g) = consumer.next_group().await {
                while let Some(mut s) = g.next_subgroup().await {
                    while s.next().await.is_ok() {
                        ctx.counts.objects.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
        .await;
        if n % 2 == 1 {
            session.close_and_wait(SessionCode::NoError, "done").await;
        }
        anyhow::Ok(())
    }
    .await;
    if result.is_err() {
        ctx.counts.errors.fetch_add(1, Ordering::Relaxed);
    }
}

/// A publisher that announces `soak/p<n>`, publishes three groups to a viewer of its own (which also
/// SUBSCRIBE_NAMESPACEs `soak`), and leaves.
async fn short_publisher(ctx: Ctx, client_args: ClientArgs, n: u64) {
    ctx.counts.publishers.fetch_add(1, Ordering::Relaxed);
    let result = async {
        let name = FullTrackName::new(TrackNamespace::from_path(&format!("soak/p{n}"))?, "t");
        let track = TrackProducer::new(TrackInfo::new(name.clone()));
        let origin = Origin::new();
        origin.publish_track(track.clone());
        let publisher = client_args.client(SessionConfig { origin, ..Default::default() })?.connect(&ctx.url).await?;
        let announcement = publisher.publish_namespace(name.namespace.clone()).await?;
        let viewer = ctx.client.connect(&ctx.url).await?;
        ctx.counts.requests.fetch_add(1, Ordering::Relaxed);
        let _namespaces = viewer.subscribe_namespace(TrackNamespace::from_path("soak")?).await?;
        let sub = viewer.subscribe(name, SubscribeOptions::default()).await?;
        let mut consumer = sub.consumer();
        for g in 0..3u64 {
            track.write_group(g, (0..5).map(|i| Object::new(i, Bytes::from_static(b"soak"))))?;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while let Ok(mut g) = consumer.next_group().await {
                while let Some(mut s) = g.next_subgroup().await {
                    while s.next().await.is_ok() {
                        ctx.counts.objects.fetch_add(1, Ordering::Relaxed);
                    }
                }
                if g.id().0 == 2 {
                    break;
                }
            }
        })
        .await;
        drop(announcement);
        viewer.close_and_wait(SessionCode::NoError, "done").await;
        publisher.close_and_wait(SessionCode::NoError, "done").await;
        anyhow::Ok(())
    }
    .await;
    if result.is_err() {
        ctx.counts.errors.fetch_add(1, Ordering::Relaxed);
    }
}

/// The relay's RSS, descriptors, threads and gauges now.
async fn sample(relay: &RelayProcess, started: Instant, counts: &Counts) -> serde_json::Value {
    let pid = relay.pid();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |k: &str| -> Option<u64> {
        status.lines().find_map(|l| l.strip_prefix(k))?.split_whitespace().next()?.parse().ok()
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).ok();
    serde_json::json!({
        "t_s": started.elapsed().as_secs(),
        "rss_kb": field("VmRSS:"),
        "fds": fds,
        "threads": field("Threads:"),
        "sessions_active": relay.metric("moq_relay_sessions_active").await,
        "tracks": relay.metric("moq_relay_tracks").await,
        "cache_bytes": relay.metric("moq_relay_cache_bytes").await,
        "churn": counts.json(),
    })
}

/// First, peak and last RSS and descriptors, and the slope of RSS over the second half of the run.
fn summary(series: &[serde_json::Value]) -> serde_json::Value {
    let num = |s: &serde_json::Value, k: &str| s[k].as_f64().unwrap_or(0.0);
    let (first, last) = (series.first(), series.last());
    let peak = |k: &str| series.iter().map(|s| num(s, k)).fold(0.0, f64::max);
    let half = &series[series.len() / 2..];
    let slope = match (half.first(), half.last()) {
        (Some(a), Some(b)) if num(b, "t_s") > num(a, "t_s") => {
            Some((num(b, "rss_kb") - num(a, "rss_kb")) / ((num(b, "t_s") - num(a, "t_s")) / 3600.0))
        }
        _ => None,
    };
    serde_json::json!({
        "summary": true,
        "seconds": last.map(|s| num(s, "t_s")),
        "rss_kb": { "first": first.map(|s| num(s, "rss_kb")), "peak": peak("rss_kb"), "last": last.map(|s| num(s, "rss_kb")) },
        "rss_kb_per_hour_second_half": slope,
        "fds": { "first": first.map(|s| num(s, "fds")), "peak": peak("fds"), "last": last.map(|s| num(s, "fds")) },
        "churn": last.map(|s| s["churn"].clone()),
    })
}
