//! One direction of the emulated path, sans-IO: [`Link::offer`] takes a packet's arrival time and size and says
//! whether it is lost and when it comes out. Random decisions come from a ChaCha8 stream seeded per link, drawn
//! in a fixed order per packet, so the same seed loses the same packets of the same sequence.
//!
//! A packet goes through, in order: random loss (on the way in, so a lost packet takes no bottleneck time), the
//! drop-tail buffer and the rate limit (serialisation one packet at a time), then the propagation delay with its
//! jitter. Jitter never reorders: a packet never leaves before the one in front of it.

use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use serde::Serialize;

use super::spec::{LinkSpec, Loss};

/// What happens to a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// It arrives at this time (from the emulator's start).
    Deliver(Duration),
    /// Random loss.
    Lost,
    /// The bottleneck's buffer was full.
    QueueFull,
}

/// Packets and bytes through one direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Packets offered.
    pub packets_in: u64,
    /// Bytes offered.
    pub bytes_in: u64,
    /// Packets delivered (or scheduled for delivery).
    pub packets_out: u64,
    /// Bytes delivered.
    pub bytes_out: u64,
    /// Packets lost at random.
    pub dropped_loss: u64,
    /// Packets dropped at the full buffer.
    pub dropped_queue: u64,
}

/// One direction of the path.
#[derive(Debug)]
pub struct Link {
    spec: LinkSpec,
    rng: ChaCha8Rng,
    /// Gilbert-Elliott: in the lossy state.
    bad: bool,
    /// When the bottleneck finishes sending what it holds.
    busy_until: Duration,
    /// When the previous packet comes out (jitter keeps order).
    last_out: Duration,
    counters: Counters,
}

impl Link {
    /// A link with these impairments and random stream.
    pub fn new(spec: LinkSpec, seed: u64) -> Link {
        Link {
            spec,
            rng: ChaCha8Rng::seed_from_u64(seed),
            bad: false,
            busy_until: Duration::ZERO,
            last_out: Duration::ZERO,
            counters: Counters::default(),
        }
    }

    /// Its impairments.
    pub fn spec(&self) -> &LinkSpec {
        &self.spec
    }

    /// What went through so far.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// A uniform draw in [0, 1).
    fn uniform(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The bottleneck rate at `now`, if any.
    fn rate_at(&self, now: Duration) -> Option<u64> {
        match self.spec.dip {
            Some(d) if now >= d.start && now < d.start + d.length => Some(d.rate_bps),
            _ => self.spec.rate_bps,
        }
    }

    fn lost(&mut self) -> bool {
        // Two draws per packet whatever the model, so loss and jitter draws stay aligned across models.
        let (a, b) = (self.uniform(), self.uniform());
        match self.spec.loss {
            Loss::None => false,
            Loss::Bernoulli { p } => a < p,
            Loss::GilbertElliott { p, r } => {
                let lost = self.bad;
                self.bad = if self.bad { b >= r } else { b < p };
                lost
            }
        }
    }

    /// A packet of `len` bytes arrives at `now` (from the emulator's start).
    pub fn offer(&mut self, now: Duration, len: usize) -> Verdict {
        self.counters.packets_in += 1;
        self.counters.bytes_in += len as u64;
        let lost = self.lost();
        let jitter_draw = self.uniform();
        if lost {
            self.counters.dropped_loss += 1;
            return Verdict::Lost;
        }
        let mut sent = now;
        if let Some(rate) = self.rate_at(now) {
            let start = self.busy_until.max(now);
            if let Some(buffer) = self.spec.buffer_bytes {
                let queued_bits = (start - now).as_secs_f64() * rate as f64;
                if queued_bits / 8.0 + len as f64 > buffer as f64 {
                    self.counters.dropped_queue += 1;
                    return Verdict::QueueFull;
                }
            }
            sent = start + Duration::from_secs_f64(len as f64 * 8.0 / rate as f64);
            self.busy_until = sent;
        }
        let jitter = self.spec.jitter.as_secs_f64() * (2.0 * jitter_draw - 1.0);
        let flight = (self.spec.delay.as_secs_f64() + jitter).max(0.0);
        let out = (sent + Duration::from_secs_f64(flight)).max(self.last_out);
        self.last_out = out;
        self.counters.packets_out += 1;
        self.counters.bytes_out += len as u64;
        Verdict::Deliver(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(s: &str) -> LinkSpec {
        s.parse().unwrap()
    }

    /// Indices of the packets lost among `n` packets of 1200 bytes, one per millisecond.
    fn losses(spec: &LinkSpec, seed: u64, n: usize) -> Vec<usize> {
        let mut link = Link::new(spec.clone(), seed);
        (0..n).filter(|&i| link.offer(Duration::from_millis(i as u64), 1200) == Verdict::Lost).collect()
    }

    #[test]
    fn the_same_seed_drops_the_same_packets() {
        for s in ["loss=1%", "ge=0.5%/25%", "loss=2%,delay=10ms,jitter=5ms,rate=50mbit,buffer=100000"] {
            let s = spec(s);
            let a = losses(&s, 7, 20_000);
            assert!(!a.is_empty());
            assert_eq!(a, losses(&s, 7, 20_000), "{s:?}");
            assert_ne!(a, losses(&s, 8, 20_000), "{s:?}");
        }
    }

    #[test]
    fn bernoulli_loses_its_share() {
        let lost = losses(&spec("loss=1%"), 1, 200_000).len() as f64 / 200_000.0;
        assert!((lost - 0.01).abs() < 0.001, "{lost}");
    }

    #[test]
    fn gilbert_elliott_has_its_mean_loss_and_burst_length() {
        // p/(p+r) = 0.0051/0.2551 = 2 %, mean burst 1/r = 4 packets.
        let lost = losses(&spec("ge=0.51%/25%"), 3, 400_000);
        let share = lost.len() as f64 / 400_000.0;
        assert!((share - 0.02).abs() < 0.002, "{share}");
        let bursts = 1 + lost.windows(2).filter(|w| w[1] != w[0] + 1).count();
        let mean_burst = lost.len() as f64 / bursts as f64;
        assert!((mean_burst - 4.0).abs() < 0.3, "{mean_burst}");
    }

    #[test]
    fn the_rate_limit_spaces_packets_and_the_buffer_drops_the_tail() {
        // 1 Mbit/s: 1250 bytes take 10 ms. A buffer of 3 packets.
        let mut link = Link::new(spec("rate=1mbit,buffer=3750,delay=20ms"), 0);
        let verdicts: Vec<_> = (0..5).map(|_| link.offer(Duration::ZERO, 1250)).collect();
        let ms = Duration::from_millis;
        assert_eq!(
            verdicts,
            [
                Verdict::Deliver(ms(30)),
                Verdict::Deliver(ms(40)),
                Verdict::Deliver(ms(50)),
                Verdict::QueueFull,
                Verdict::QueueFull
            ]
        );
        // Once the queue drains, packets pass again.
        assert_eq!(link.offer(ms(30), 1250), Verdict::Deliver(ms(60)));
        let c = link.counters();
        assert_eq!((c.packets_in, c.packets_out, c.dropped_queue, c.bytes_out), (6, 4, 2, 5000));
    }

    #[test]
    fn a_dip_lowers_the_rate_for_its_length() {
        let mut link = Link::new(spec("rate=8mbit,dip=1s+1s@1mbit"), 0);
        let at = |link: &mut Link, t: Duration| match link.offer(t, 1000) {
            Verdict::Deliver(out) => out - t,
            v => panic!("{v:?}"),
        };
        assert_eq!(at(&mut link, Duration::from_millis(500)), Duration::from_millis(1));
        assert_eq!(at(&mut link, Duration::from_millis(1500)), Duration::from_millis(8));
        assert_eq!(at(&mut link, Duration::from_millis(2500)), Duration::from_millis(1));
    }

    #[test]
    fn jitter_varies_delay_without_reordering() {
        // Packets 50 ms apart never catch up with each other: the delay spans 20 ms +- 10 ms.
        let mut link = Link::new(spec("delay=20ms,jitter=10ms"), 5);
        let mut delays = Vec::new();
        for i in 0..10_000u64 {
            let now = Duration::from_millis(i * 50);
            let Verdict::Deliver(out) = link.offer(now, 100) else { panic!() };
            delays.push((out - now).as_secs_f64() * 1000.0);
        }
        let (min, max) = delays.iter().fold((f64::MAX, 0f64), |(lo, hi), &d| (lo.min(d), hi.max(d)));
        assert!((10.0..10.1).contains(&min), "{min}");
        assert!((29.9..=30.0 + 1e-6).contains(&max), "{max}");
        // Packets 0.1 ms apart would overtake each other; they leave in order instead.
        let mut last = Duration::ZERO;
        for i in 0..10_000u64 {
            let Verdict::Deliver(out) = link.offer(Duration::from_secs(600) + Duration::from_micros(i * 100), 100)
            else {
                panic!()
            };
            assert!(out >= last, "packet {i} overtook the one before it");
            last = out;
        }
    }
}
