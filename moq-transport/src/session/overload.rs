//! Overload control for a relay whose CPU cannot keep up with its subscribers.
//!
//! A relay short of CPU falls behind on everything at once: it reads its publishers late, so the backlog builds
//! upstream of it (in the publishers' send buffers), where no per-object latency budget sees it, and every
//! subscriber drifts behind together. [`Overload`] watches the runtime instead: a probe measures how late a
//! timer fires. While the smoothed lag stays above a threshold the relay is short of CPU, and the share of new
//! groups it skips for live subscriptions grows (by 5 % per probe); once the lag is back under the threshold
//! the share shrinks again (by 1 % per probe). A skipped group is never opened, which saves all the work it
//! would have cost. Subscriptions skip groups in proportion to their SUBSCRIBER_PRIORITY: the share is the
//! level at the default 128, halved for every 32 steps more important and doubled for every 32 less, so the
//! least important subscribers lose groups first and a priority-0 subscriber at most 1/16 of them.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// How often the probe measures the runtime's lag.
const PROBE: Duration = Duration::from_millis(20);
/// The level, in thousandths: full is every group skipped at the default priority.
const FULL: u32 = 1000;
const STEP_UP: u32 = 50;
const STEP_DOWN: u32 = 10;

/// Relay-wide overload state, shared by every session given the same `Arc` (see
/// [`SessionConfig::overload`](crate::SessionConfig::overload)); [`Overload::run`] drives it.
#[derive(Debug)]
pub struct Overload {
    threshold: Duration,
    /// The share of new groups skipped at the default priority, in thousandths.
    level: AtomicU32,
    /// The probe's smoothed lag, µs.
    lag_us: AtomicU64,
}

impl Overload {
    /// Overload control that counts the runtime as short of CPU while its timers fire `threshold` late.
    pub fn new(threshold: Duration) -> Overload {
        Overload { threshold, level: AtomicU32::new(0), lag_us: AtomicU64::new(0) }
    }

    /// Probes the runtime and adjusts the level, forever (spawn it; abort it to stop).
    pub async fn run(&self) {
        let mut smoothed = 0.0f64;
        loop {
            let start = tokio::time::Instant::now();
            tokio::time::sleep(PROBE).await;
            let lag = start.elapsed().saturating_sub(PROBE).as_secs_f64() * 1e6;
            smoothed = 0.8 * smoothed + 0.2 * lag;
            self.lag_us.store(smoothed as u64, Ordering::Relaxed);
            let overloaded = smoothed > self.threshold.as_secs_f64() * 1e6;
            let _ = self.level.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |l| {
                Some(if overloaded { (l + STEP_UP).min(FULL) } else { l.saturating_sub(STEP_DOWN) })
            });
        }
    }

    /// The share of new groups skipped at the default priority, 0 to 1.
    pub fn level(&self) -> f64 {
        f64::from(self.level.load(Ordering::Relaxed)) / f64::from(FULL)
    }

    /// The probe's smoothed timer lag.
    pub fn lag(&self) -> Duration {
        Duration::from_micros(self.lag_us.load(Ordering::Relaxed))
    }

    /// Whether the subscription `key` at `priority` skips its group `group` at the current level.
    pub(crate) fn skips(&self, key: u64, priority: u8, group: u64) -> bool {
        let level = self.level();
        level > 0.0 && unit(key, group) < skip_share(level, priority)
    }
}

/// The share of groups a subscription at `priority` skips at `level`.
fn skip_share(level: f64, priority: u8) -> f64 {
    level / importance(priority)
}

/// How much load shedding spares a subscription at SUBSCRIBER_PRIORITY `priority`: 1 at the default 128, doubling
/// for every 32 steps more important and halving for every 32 less (16 at 0, about 1/16 at 255). The shedding
/// budget is multiplied by it and overload control's share of skipped groups divided by it.
pub(super) fn importance(priority: u8) -> f64 {
    2f64.powf((128.0 - f64::from(priority)) / 32.0)
}

/// A number in [0, 1) spread evenly over (key, group) pairs (splitmix64).
fn unit(key: u64, group: u64) -> f64 {
    let mut z = key.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ group.wrapping_add(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skipped(o: &Overload, key: u64, priority: u8) -> usize {
        (0..10_000).filter(|&g| o.skips(key, priority, g)).count()
    }

    #[test]
    fn nothing_is_skipped_below_the_threshold() {
        let o = Overload::new(Duration::from_millis(10));
        assert_eq!(skipped(&o, 1, 255), 0);
    }

    #[test]
    fn the_least_important_subscriptions_skip_the_most() {
        let o = Overload::new(Duration::from_millis(10));
        o.level.store(500, Ordering::Relaxed);
        let share = |p| skipped(&o, 7, p) as f64 / 10_000.0;
        assert!((share(128) - 0.5).abs() < 0.03, "{}", share(128));
        assert!((share(0) - 0.5 / 16.0).abs() < 0.01, "{}", share(0));
        assert!(share(160) > 0.99, "{}", share(160));
        // Subscriptions skip different groups.
        let a: Vec<bool> = (0..64).map(|g| o.skips(1, 128, g)).collect();
        let b: Vec<bool> = (0..64).map(|g| o.skips(2, 128, g)).collect();
        assert_ne!(a, b);
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_runtime_raises_the_level_and_a_prompt_one_lowers_it() {
        let o = std::sync::Arc::new(Overload::new(Duration::from_millis(5)));
        let probe = tokio::spawn({
            let o = o.clone();
            async move { o.run().await }
        });
        // A runtime that is never late: the level stays at 0.
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(o.level(), 0.0);
        // The clock jumps 50 ms while the probe sleeps, as if the runtime had been busy: its timers fire late.
        for _ in 0..20 {
            tokio::time::sleep(PROBE / 2).await;
            tokio::time::advance(Duration::from_millis(50)).await;
        }
        assert!(o.level() > 0.3, "level {} at lag {:?}", o.level(), o.lag());
        let high = o.level();
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(o.level() < high, "the level came down");
        probe.abort();
    }
}
