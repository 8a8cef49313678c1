//! What one peer may make a session hold: open requests by kind, and REQUEST_UPDATEs per second. A request
//! beyond a limit is refused with EXCESSIVE_LOAD (draft-19 §Subscription Amplification) and counted in
//! [`Stats`]; the session and the peer's other requests go on.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use moq_wire::codes::RequestErrorCode;
use moq_wire::control::{ControlMessage, RequestUpdate};
use moq_wire::token::AuthToken;
use web_transport_trait::Session as WtSession;

use super::Inner;
use super::rules::Refusal;
use crate::error::Error;

/// A budget of subscriptions shared by several sessions (a relay gives one to all the sessions of an address).
#[derive(Debug)]
pub struct SharedBudget {
    max: usize,
    held: std::sync::atomic::AtomicUsize,
}

impl SharedBudget {
    /// A budget of `max` subscriptions.
    pub fn new(max: usize) -> Arc<SharedBudget> {
        Arc::new(SharedBudget { max, held: Default::default() })
    }

    /// Subscriptions held now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    fn take(&self) -> bool {
        self.held.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < self.max).then_some(n + 1)).is_ok()
    }

    fn give_back(&self) {
        self.held.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Per-session limits on the peer's requests ([`SessionConfig::limits`](crate::SessionConfig::limits)).
#[derive(Debug, Clone, PartialEq)]
pub struct RequestLimits {
    /// Requests of any kind open at once.
    pub max_requests: usize,
    /// SUBSCRIBEs and PUBLISHes open at once (tracks the peer makes us hold or serve).
    pub max_subscriptions: usize,
    /// PUBLISH_NAMESPACEs open at once.
    pub max_namespaces: usize,
    /// SUBSCRIBE_NAMESPACE and SUBSCRIBE_TRACKS prefixes open at once.
    pub max_prefixes: usize,
    /// REQUEST_UPDATEs per second over all the session's requests, in the long run.
    pub updates_per_second: f64,
    /// REQUEST_UPDATEs allowed at once before the rate applies.
    pub update_burst: u32,
    /// SUBSCRIBEs and PUBLISHes open at once over every session sharing this budget (e.g. one address's).
    pub shared_subscriptions: Option<Arc<SharedBudget>>,
}

impl PartialEq for SharedBudget {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl RequestLimits {
    /// No limits (a relay's link to another relay, a client).
    pub const UNLIMITED: RequestLimits = RequestLimits {
        max_requests: usize::MAX,
        max_subscriptions: usize::MAX,
        max_namespaces: usize::MAX,
        max_prefixes: usize::MAX,
        updates_per_second: f64::INFINITY,
        update_burst: u32::MAX,
        shared_subscriptions: None,
    };

    /// Defaults a public relay can run with: a viewer holds a handful of tracks, a publisher a few namespaces.
    pub const PUBLIC: RequestLimits = RequestLimits {
        max_requests: 100,
        max_subscriptions: 64,
        max_namespaces: 16,
        max_prefixes: 8,
        updates_per_second: 10.0,
        update_burst: 20,
        shared_subscriptions: None,
    };
}

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits::UNLIMITED
    }
}

/// The kinds of request a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Subscription,
    Namespace,
    Prefix,
    Other,
}

impl Kind {
    pub(super) fn of(msg: &ControlMessage) -> Kind {
        match msg {
            ControlMessage::Subscribe(_) | ControlMessage::Publish(_) => Kind::Subscription,
            ControlMessage::PublishNamespace(_) => Kind::Namespace,
            ControlMessage::SubscribeNamespace(_) | ControlMessage::SubscribeTracks(_) => Kind::Prefix,
            _ => Kind::Other,
        }
    }
}

/// What the peer holds now, and its update budget.
#[derive(Debug)]
pub(super) struct Held {
    requests: usize,
    subscriptions: usize,
    namespaces: usize,
    prefixes: usize,
    /// Update tokens left, and when they were counted.
    budget: f64,
    counted: tokio::time::Instant,
}

impl Held {
    pub(super) fn new(limits: &RequestLimits) -> Held {
        Held {
            requests: 0,
            subscriptions: 0,
            namespaces: 0,
            prefixes: 0,
            budget: f64::from(limits.update_burst),
            counted: tokio::time::Instant::now(),
        }
    }

    fn count(&mut self, kind: Kind) -> Option<&mut usize> {
        match kind {
            Kind::Subscription => Some(&mut self.subscriptions),
            Kind::Namespace => Some(&mut self.namespaces),
            Kind::Prefix => Some(&mut self.prefixes),
            Kind::Other => None,
        }
    }
}

/// One open request, counted until dropped.
pub(super) struct Slot<'a, S: WtSession> {
    inner: &'a Inner<S>,
    kind: Kind,
    shared: Option<&'a SharedBudget>,
}

impl<S: WtSession> Drop for Slot<'_, S> {
    fn drop(&mut self) {
        if let Some(shared) = self.shared {
            shared.give_back();
        }
        let mut state = self.inner.state();
        let held = &mut state.held;
        held.requests -= 1;
        if let Some(n) = held.count(self.kind) {
            *n -= 1;
        }
    }
}

impl<S: WtSession> Inner<S> {
    /// Counts a new request of the peer, or `None` (counted in the stats) if it is beyond a limit.
    pub(super) fn open_request(&self, kind: Kind) -> Option<Slot<'_, S>> {
        let limits = &self.config.limits;
        let stats = &self.config.stats;
        let mut state = self.state();
        let held = &mut state.held;
        let (max, refused) = match kind {
            Kind::Subscription => (limits.max_subscriptions, &stats.refused_subscriptions),
            Kind::Namespace => (limits.max_namespaces, &stats.refused_namespaces),
            Kind::Prefix => (limits.max_prefixes, &stats.refused_prefixes),
            Kind::Other => (usize::MAX, &stats.refused_requests),
        };
        if held.requests >= limits.max_requests {
            stats.refused_requests.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let shared = limits.shared_subscriptions.as_deref().filter(|_| kind == Kind::Subscription);
        if let Some(n) = held.count(kind) {
            if *n >= max || shared.is_some_and(|s| !s.take()) {
                refused.fetch_add(1, Ordering::Relaxed);
                return None;
            }
            *n += 1;
        }
        held.requests += 1;
        Some(Slot { inner: self, kind, shared })
    }

    /// Checks a REQUEST_UPDATE from the peer: its Request ID (a session error), then the session's update rate
    /// and its tokens (a refusal of the update). Every update the peer sends passes here.
    pub(super) fn check_update(&self, update: &RequestUpdate) -> Result<Result<Vec<AuthToken>, Refusal>, Error> {
        self.check_peer_request(update.request_id)?;
        if !self.take_update_budget() {
            self.config.stats.refused_updates.fetch_add(1, Ordering::Relaxed);
            return Ok(Err((RequestErrorCode::ExcessiveLoad, "too many updates")));
        }
        Ok(self.resolve_tokens(&update.params.auth_tokens))
    }

    fn take_update_budget(&self) -> bool {
        let limits = &self.config.limits;
        if limits.updates_per_second.is_infinite() {
            return true;
        }
        let mut state = self.state();
        let held = &mut state.held;
        let now = tokio::time::Instant::now();
        let refill = now.duration_since(held.counted).as_secs_f64() * limits.updates_per_second;
        held.budget = (held.budget + refill).min(f64::from(limits.update_burst));
        held.counted = now;
        if held.budget < 1.0 {
            return false;
        }
        held.budget -= 1.0;
        true
    }
}
