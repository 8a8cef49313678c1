//! What the load tools (`moq-load`, `quic-fanout`) share: the traffic shape, frame timestamps, /proc
//! sampling and the report.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use moq_transport::quic::QuicCounters;

/// The traffic and the measurement window.
#[derive(Debug, Clone, clap::Args)]
pub struct Shape {
    /// Subscriber connections.
    #[arg(long, default_value_t = 10)]
    pub subscribers: usize,
    /// Frames per second.
    #[arg(long, default_value_t = 30)]
    pub fps: u32,
    /// Bytes per frame (at least 8).
    #[arg(long, default_value_t = 40_000)]
    pub frame_size: usize,
    /// Frames per group.
    #[arg(long, default_value_t = 30)]
    pub group_size: u64,
    /// Seconds before measuring.
    #[arg(long, default_value = "2", value_parser = secs)]
    pub warmup: Duration,
    /// Seconds measured.
    #[arg(long, default_value = "10", value_parser = secs)]
    pub duration: Duration,
    /// The server's (relay's or forwarder's) process id, for its CPU time and peak RSS.
    #[arg(long, alias = "forwarder-pid")]
    pub relay_pid: Option<u32>,
}

fn secs(s: &str) -> Result<Duration, String> {
    let s = s.trim_end_matches('s');
    s.parse::<f64>().map(Duration::from_secs_f64).map_err(|e| e.to_string())
}

/// (utime + stime) seconds and peak RSS bytes of a process.
pub fn proc_stats(pid: u32) -> Option<(f64, u64)> {
    let (user, system) = proc_cpu(pid)?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let hwm = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?.split_whitespace().next()?.parse::<u64>().ok()?;
    Some((user + system, hwm * 1024))
}

/// (utime, stime) seconds of a process: CPU in user space and in the kernel (system calls, and on loopback the
/// receiving side of every packet sent).
pub fn proc_cpu(pid: u32) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
    let tick = |i: usize| fields.get(i)?.parse::<f64>().ok().map(|t| t / 100.0);
    Some((tick(11)?, tick(12)?))
}

fn own_cpu() -> f64 {
    proc_stats(std::process::id()).map(|(c, _)| c).unwrap_or(0.0)
}

/// What subscribers record: frames and bytes received while measuring, and each frame's latency.
pub struct Meter {
    base: Instant,
    measuring: AtomicBool,
    received: AtomicU64,
    bytes: AtomicU64,
    /// Groups subscribers reported skipping.
    pub skipped: AtomicU64,
    latencies: tokio::sync::mpsc::UnboundedSender<u64>,
}

impl Meter {
    /// A meter, and where its latencies (nanoseconds) go.
    pub fn new() -> (Arc<Meter>, tokio::sync::mpsc::UnboundedReceiver<u64>) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let meter = Meter {
            base: Instant::now(),
            measuring: AtomicBool::new(false),
            received: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            latencies: tx,
        };
        (Arc::new(meter), rx)
    }

    /// A frame of `size` bytes whose first 8 bytes are the time it was made (ns since the meter started).
    pub fn frame(&self, size: usize) -> Bytes {
        let mut payload = BytesMut::with_capacity(size);
        payload.put_u64(self.base.elapsed().as_nanos() as u64);
        payload.resize(size.max(8), 0x42);
        payload.freeze()
    }

    /// Records a received frame (ignored outside the measurement window).
    pub fn received(&self, frame: &[u8]) {
        if !self.measuring.load(Ordering::Relaxed) || frame.len() < 8 {
            return;
        }
        let sent = u64::from_be_bytes(frame[..8].try_into().unwrap_or_default());
        let now = self.base.elapsed().as_nanos() as u64;
        self.received.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(frame.len() as u64, Ordering::Relaxed);
        let _ = self.latencies.send(now.saturating_sub(sent));
    }
}

/// Paces frames: `tick` waits for the next frame time and says whether it counts, `None` at the end.
pub struct Clock {
    shape: Shape,
    meter: Arc<Meter>,
    ticker: tokio::time::Interval,
    warm_until: Instant,
    end: Instant,
    started: Option<Instant>,
    server_before: Option<(f64, u64)>,
    server_split_before: Option<(f64, f64)>,
    own_before: f64,
    /// Frames made so far.
    pub frame: u64,
    sent: u64,
}

impl Clock {
    /// Starts the clock: warm-up, then the measured duration.
    pub fn new(shape: &Shape, meter: Arc<Meter>) -> Clock {
        let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(shape.fps.max(1))));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let warm_until = Instant::now() + shape.warmup;
        Clock {
            shape: shape.clone(),
            meter,
            ticker,
            warm_until,
            end: warm_until + shape.duration,
            started: None,
            server_before: None,
            server_split_before: None,
            own_before: 0.0,
            frame: 0,
            sent: 0,
        }
    }

    /// Waits for the next frame; `Some(frame number)` while the run lasts.
    pub async fn tick(&mut self) -> Option<u64> {
        self.ticker.tick().await;
        let now = Instant::now();
        if now >= self.end {
            return None;
        }
        if self.started.is_none() && now >= self.warm_until {
            self.started = Some(now);
            self.meter.measuring.store(true, Ordering::Relaxed);
            self.server_before = self.shape.relay_pid.and_then(proc_stats);
            self.server_split_before = self.shape.relay_pid.and_then(proc_cpu);
            self.own_before = own_cpu();
        }
        if self.started.is_some() {
            self.sent += 1;
        }
        let frame = self.frame;
        self.frame += 1;
        Some(frame)
    }

    /// Waits for the last frames to land, then prints the report: a JSON line on stdout, a summary on stderr.
    /// `subscribers`: the summed QUIC counters of the subscriber connections, read at the end.
    pub async fn report(
        self,
        mut latencies: tokio::sync::mpsc::UnboundedReceiver<u64>,
        subscribers: impl FnOnce() -> QuicCounters,
    ) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        self.meter.measuring.store(false, Ordering::Relaxed);
        let elapsed = self.started.map(|s| s.elapsed()).unwrap_or_default().as_secs_f64();
        let server_after = self.shape.relay_pid.and_then(proc_stats);
        let server_split = match (self.server_split_before, self.shape.relay_pid.and_then(proc_cpu)) {
            (Some((u0, s0)), Some((u1, s1))) => Some((u1 - u0, s1 - s0)),
            _ => None,
        };
        let own_cpu_used = own_cpu() - self.own_before;
        let quic = subscribers();
        let mut lat = Vec::new();
        while let Ok(l) = latencies.try_recv() {
            lat.push(l);
        }
        lat.sort_unstable();
        let pct = |p: f64| lat.get(((lat.len().max(1) - 1) as f64 * p).round() as usize).copied().unwrap_or(0);
        let ms = |ns: u64| ns as f64 / 1e6;
        let shape = &self.shape;
        let received = self.meter.received.load(Ordering::Relaxed);
        let expected = self.sent * shape.subscribers as u64;
        let bytes = self.meter.bytes.load(Ordering::Relaxed);
        let egress_mbps = bytes as f64 * 8.0 / elapsed.max(1e-9) / 1e6;
        let (server_cpu, server_rss) = match (self.server_before, server_after) {
            (Some((c0, _)), Some((c1, rss))) => (Some(c1 - c0), Some(rss)),
            _ => (None, None),
        };
        let gbit = bytes as f64 * 8.0 / 1e9;
        let report = serde_json::json!({
            "subscribers": shape.subscribers,
            "fps": shape.fps,
            "frame_size": shape.frame_size,
            "seconds": elapsed,
            "objects_sent": self.sent,
            "objects_expected": expected,
            "objects_received": received,
            "loss": if expected > 0 { 1.0 - received as f64 / expected as f64 } else { 0.0 },
            "skipped_groups": self.meter.skipped.load(Ordering::Relaxed),
            "egress_mbps": egress_mbps,
            "latency_ms": {"p50": ms(pct(0.5)), "p90": ms(pct(0.9)), "p99": ms(pct(0.99)),
                           "max": ms(lat.last().copied().unwrap_or(0))},
            "relay_cpu_s": server_cpu,
            "relay_cpu_s_per_gbit": server_cpu.map(|c| c / gbit.max(1e-9)),
            "relay_user_cpu_s": server_split.map(|s| s.0),
            "relay_system_cpu_s": server_split.map(|s| s.1),
            "relay_peak_rss_bytes": server_rss,
            "load_cpu_s": own_cpu_used,
            "load_cpu_s_per_gbit": own_cpu_used / gbit.max(1e-9),
            // Whole run (warm-up included), seen from the subscribers: what the server sent them and the ACKs
            // it had to process.
            "subscriber_datagrams_received": quic.datagrams_received,
            "subscriber_acks_sent": quic.acks_sent,
            "datagrams_per_ack": quic.datagrams_received as f64 / quic.acks_sent.max(1) as f64,
        });
        println!("{report}");
        eprintln!(
            "{} subscribers: {received}/{expected} objects, {egress_mbps:.1} Mb/s egress, latency p50 {:.2} ms p99 {:.2} ms max {:.2} ms{}",
            shape.subscribers,
            ms(pct(0.5)),
            ms(pct(0.99)),
            ms(lat.last().copied().unwrap_or(0)),
            server_cpu.map(|c| format!(", server {:.3} CPU-s ({:.3} s/Gb)", c, c / gbit.max(1e-9))).unwrap_or_default()
        );
    }
}
