//! Admission of new connections per source address: sessions open at once and handshakes per second for each
//! IP address, and a QUIC Retry (address validation) for every unvalidated client while handshakes arrive
//! faster than a relay-wide rate, so that a flood from spoofed addresses costs us no handshake.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use moq_transport::SharedBudget;
use tokio::time::Instant;

use crate::Metrics;

/// Limits on new connections ([`crate::Config`] flags `--max-sessions-per-address`, `--handshakes-per-second`,
/// `--retry-above`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdmissionLimits {
    /// Sessions one IP address may have open (or being established) at once.
    pub sessions_per_address: usize,
    /// Handshakes per second one IP address may start, in the long run (twice as many at once).
    pub handshakes_per_second: f64,
    /// SUBSCRIBEs and PUBLISHes open at once over all the sessions of one IP address.
    pub subscriptions_per_address: usize,
    /// Handshakes per second over all addresses beyond which unvalidated clients are sent a QUIC Retry first.
    pub retry_above: f64,
    /// Whether loopback addresses are limited too (off: local tools, benchmarks and tests are not).
    pub limit_loopback: bool,
}

/// Addresses held to no limit at all, per-address or per-session: the other relays of a cluster, whose one
/// session carries every track their viewers watch (`--trusted-address`).
#[derive(Debug, Clone, Default)]
pub struct Trusted(pub Vec<IpAddr>);

impl Default for AdmissionLimits {
    fn default() -> Self {
        AdmissionLimits {
            sessions_per_address: 64,
            handshakes_per_second: 20.0,
            subscriptions_per_address: 256,
            retry_above: 200.0,
            limit_loopback: false,
        }
    }
}

/// What to do with a new connection.
#[derive(Debug)]
pub enum Verdict {
    /// Go on; the ticket counts the session against its address until dropped.
    Admit(Ticket),
    /// Send a QUIC Retry (the client proves its address and comes back).
    Retry,
    /// Refuse it (CONNECTION_REFUSED).
    Refuse(&'static str),
}

/// A token bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    counted: Instant,
}

impl Bucket {
    fn full(burst: f64, now: Instant) -> Bucket {
        Bucket { tokens: burst, counted: now }
    }

    /// Refills at `rate` up to `burst`, then takes one token if there is one.
    fn take(&mut self, rate: f64, burst: f64, now: Instant) -> bool {
        self.tokens = (self.tokens + now.duration_since(self.counted).as_secs_f64() * rate).min(burst);
        self.counted = now;
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }
}

#[derive(Debug)]
struct Address {
    sessions: usize,
    handshakes: Bucket,
    subscriptions: Arc<SharedBudget>,
}

#[derive(Debug)]
struct State {
    addresses: HashMap<IpAddr, Address>,
    /// Handshakes over all addresses: when empty, unvalidated clients get a Retry.
    all: Bucket,
}

/// Admission control for one relay.
#[derive(Debug, Clone)]
pub struct Admission {
    limits: AdmissionLimits,
    trusted: Trusted,
    state: Arc<Mutex<State>>,
    metrics: Arc<Metrics>,
}

/// Addresses kept before idle ones (no session, a full bucket) are forgotten.
const PRUNE_ABOVE: usize = 4096;

impl Admission {
    pub fn new(limits: AdmissionLimits, trusted: Trusted, metrics: Arc<Metrics>) -> Admission {
        let state = State { addresses: HashMap::new(), all: Bucket::full(limits.retry_above, Instant::now()) };
        Admission { limits, trusted, state: Arc::new(Mutex::new(state)), metrics }
    }

    fn burst(&self) -> f64 {
        (self.limits.handshakes_per_second * 2.0).max(1.0)
    }

    /// Decides on a connection from `ip`; `validated`: it echoed a Retry token.
    pub fn admit(&self, ip: IpAddr, validated: bool) -> Verdict {
        let trusted = self.trusted.0.contains(&ip);
        if trusted || ip.is_loopback() && !self.limits.limit_loopback {
            return Verdict::Admit(Ticket { ip, state: None, subscriptions: None, trusted });
        }
        let now = Instant::now();
        let burst = self.burst();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let rate = self.limits.retry_above;
        if !validated && !state.all.take(rate, rate, now) {
            self.metrics.retries.fetch_add(1, Ordering::Relaxed);
            return Verdict::Retry;
        }
        if state.addresses.len() > PRUNE_ABOVE {
            let rate = self.limits.handshakes_per_second;
            state.addresses.retain(|_, a| {
                let mut bucket = a.handshakes;
                a.sessions > 0 || bucket.take(rate, burst, now) && bucket.tokens + 1.0 < burst
            });
        }
        let subscriptions = self.limits.subscriptions_per_address;
        let address = state.addresses.entry(ip).or_insert_with(|| Address {
            sessions: 0,
            handshakes: Bucket::full(burst, now),
            subscriptions: SharedBudget::new(subscriptions),
        });
        if address.sessions >= self.limits.sessions_per_address {
            self.metrics.refused_sessions_per_address.fetch_add(1, Ordering::Relaxed);
            return Verdict::Refuse("too many sessions from this address");
        }
        if !address.handshakes.take(self.limits.handshakes_per_second, burst, now) {
            self.metrics.refused_handshakes.fetch_add(1, Ordering::Relaxed);
            return Verdict::Refuse("too many handshakes from this address");
        }
        address.sessions += 1;
        let subscriptions = Some(address.subscriptions.clone());
        Verdict::Admit(Ticket { ip, state: Some(self.state.clone()), subscriptions, trusted: false })
    }
}

/// One admitted session of an address, counted until dropped.
#[derive(Debug)]
pub struct Ticket {
    ip: IpAddr,
    /// `None` when the address is not counted.
    state: Option<Arc<Mutex<State>>>,
    subscriptions: Option<Arc<SharedBudget>>,
    trusted: bool,
}

impl Ticket {
    /// Whether the session is held to no limit at all (`--trusted-address`).
    pub fn trusted(&self) -> bool {
        self.trusted
    }

    /// The subscription budget of the address, shared by its sessions (`None`: not limited).
    pub fn subscriptions(&self) -> Option<Arc<SharedBudget>> {
        self.subscriptions.clone()
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let Some(state) = &self.state else { return };
        let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(a) = state.addresses.get_mut(&self.ip) {
            a.sessions = a.sessions.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(limits: AdmissionLimits) -> (Admission, Arc<Metrics>) {
        let metrics = Arc::new(Metrics::default());
        (Admission::new(limits, Trusted(vec![T]), metrics.clone()), metrics)
    }

    fn open() -> AdmissionLimits {
        AdmissionLimits {
            sessions_per_address: 1000,
            handshakes_per_second: 1000.0,
            subscriptions_per_address: 1000,
            retry_above: 1e9,
            limit_loopback: false,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn loopback_is_not_limited_unless_asked() {
        let (adm, _) = admission(AdmissionLimits { sessions_per_address: 1, ..open() });
        let lo = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
        let _held: Vec<_> = (0..3).map(|_| adm.admit(lo, false)).collect();
        assert!(matches!(adm.admit(lo, false), Verdict::Admit(_)));
        let (adm, _) = admission(AdmissionLimits { sessions_per_address: 1, limit_loopback: true, ..open() });
        let _held = adm.admit(lo, false);
        assert!(matches!(adm.admit(lo, false), Verdict::Refuse(_)));
    }

    const T: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 9));

    #[tokio::test(start_paused = true)]
    async fn trusted_addresses_are_not_limited() {
        let (adm, _) = admission(AdmissionLimits { sessions_per_address: 1, handshakes_per_second: 0.001, ..open() });
        let held: Vec<_> = (0..5).map(|_| adm.admit(T, false)).collect();
        assert!(held.iter().all(|v| matches!(v, Verdict::Admit(t) if t.trusted())));
        let _a = adm.admit(A, false);
        assert!(matches!(adm.admit(A, false), Verdict::Refuse(_)));
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[tokio::test(start_paused = true)]
    async fn sessions_per_address_are_counted_until_they_end() {
        let limits = AdmissionLimits { sessions_per_address: 2, handshakes_per_second: 100.0, ..open() };
        let (adm, metrics) = admission(limits);
        let first = adm.admit(A, false);
        let _second = adm.admit(A, false);
        assert!(matches!(adm.admit(A, false), Verdict::Refuse(_)));
        assert!(matches!(adm.admit(B, false), Verdict::Admit(_)), "another address is not affected");
        drop(first);
        assert!(matches!(adm.admit(A, false), Verdict::Admit(_)), "a slot comes back when a session ends");
        assert_eq!(metrics.refused_sessions_per_address.load(Ordering::Relaxed), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn handshakes_per_address_are_rate_limited() {
        let limits = AdmissionLimits { handshakes_per_second: 2.0, ..open() };
        let (adm, metrics) = admission(limits);
        let mut held = Vec::new();
        for _ in 0..4 {
            let Verdict::Admit(t) = adm.admit(A, false) else { panic!("the burst (2 x rate) is allowed") };
            held.push(t);
        }
        assert!(matches!(adm.admit(A, false), Verdict::Refuse(_)));
        tokio::time::advance(std::time::Duration::from_millis(600)).await;
        assert!(matches!(adm.admit(A, false), Verdict::Admit(_)), "one more after half a second");
        assert_eq!(metrics.refused_handshakes.load(Ordering::Relaxed), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_flood_of_handshakes_gets_retries_but_validated_clients_pass() {
        let limits = AdmissionLimits { retry_above: 3.0, ..open() };
        let (adm, metrics) = admission(limits);
        let _held: Vec<_> = (0..3).map(|_| adm.admit(A, false)).collect();
        assert!(matches!(adm.admit(B, false), Verdict::Retry));
        assert!(matches!(adm.admit(B, true), Verdict::Admit(_)), "a client that proved its address goes on");
        assert_eq!(metrics.retries.load(Ordering::Relaxed), 1);
    }
}
