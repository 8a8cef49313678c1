//! A subscription we serve: what is fixed when it starts and what REQUEST_UPDATE may change.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use moq_wire::params::{LocationFilter, Parameters};
use moq_wire::{GroupOrder, Location};
use tokio::sync::watch;

use crate::model::TrackProducer;

/// A subscription the peer made that we serve, kept for joining FETCH.
pub(super) struct Served {
    pub(super) track: TrackProducer,
    pub(super) state: SubState,
}

// ---- serving a subscription (the peer's SUBSCRIBE, or our PUBLISH) ----

/// What a subscriber may change while a subscription is served (REQUEST_UPDATE), and its teardown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SubSettings {
    /// The Forward State.
    pub(super) forward: bool,
    /// SUBSCRIBER_PRIORITY; open streams follow its changes.
    pub(super) priority: u8,
    /// OBJECT_DELIVERY_TIMEOUT and SUBGROUP_DELIVERY_TIMEOUT from the subscriber, ms (0: none).
    pub(super) object_timeout: u64,
    pub(super) subgroup_timeout: u64,
    /// The Joining Location: the largest location when Forward last went to 1.
    pub(super) joining: Option<Location>,
    /// The group its streams' send order ranks groups from ([`position_base`]).
    pub(super) base: u64,
    /// The subscription is being torn down: its data streams end.
    pub(super) cancelled: bool,
}

impl SubSettings {
    fn new(params: &Parameters) -> SubSettings {
        SubSettings {
            forward: params.forward.unwrap_or(true),
            priority: params.subscriber_priority.unwrap_or(128),
            object_timeout: params.object_delivery_timeout.unwrap_or(0),
            subgroup_timeout: params.subgroup_delivery_timeout.unwrap_or(0),
            joining: None,
            base: 0,
            cancelled: false,
        }
    }

    /// Applies an accepted REQUEST_UPDATE; `largest` is the track's Largest Location now.
    pub(super) fn update(&mut self, params: &Parameters, largest: Option<Location>) {
        if let Some(f) = params.forward {
            //= draft-ietf-moq-transport-19#joining-fetches
            //# MUST save the Largest Location communicated in SUBSCRIBE_OK, PUBLISH or REQUEST_UPDATE_OK that
            //# changes the Forward State from 0 to 1
            if f && !self.forward {
                self.joining = largest;
            }
            self.forward = f;
        }
        //= draft-ietf-moq-transport-19#priorities
        //# When subscriber priority is changed, a best effort SHOULD be made to apply the change to all
        //# objects that have not been scheduled
        if let Some(p) = params.subscriber_priority {
            self.priority = p;
        }
        if let Some(t) = params.object_delivery_timeout {
            self.object_timeout = t;
        }
        if let Some(t) = params.subgroup_delivery_timeout {
            self.subgroup_timeout = t;
        }
    }
}

/// A served subscription: what is fixed when it starts, its [`SubSettings`] (one watch, changed in one place,
/// that its tasks wake on) and its stream count.
#[derive(Clone)]
pub(super) struct SubState {
    pub(super) order: GroupOrder,
    /// Whether load shedding applies: the subscription follows the live edge (no absolute start in the past).
    pub(super) live: bool,
    /// When the subscription began.
    pub(super) since: tokio::time::Instant,
    /// Picks which groups overload control skips for this subscription (different ones for each).
    pub(super) key: u64,
    settings: Arc<watch::Sender<SubSettings>>,
    /// Subgroup streams opened (PUBLISH_DONE's Stream Count).
    streams: Arc<AtomicU64>,
}

/// Hands out [`SubState::key`]s.
static NEXT_KEY: AtomicU64 = AtomicU64::new(0);

impl SubState {
    /// The state of a subscription with `params` to a track whose own group order is `track_order`.
    pub(super) fn new(params: &Parameters, track_order: GroupOrder) -> SubState {
        SubState {
            order: params.group_order.unwrap_or(track_order),
            live: !matches!(
                params.location_filter,
                Some(LocationFilter::AbsoluteStart { .. }) | Some(LocationFilter::AbsoluteRange { .. })
            ),
            since: tokio::time::Instant::now(),
            key: NEXT_KEY.fetch_add(1, Ordering::Relaxed),
            settings: Arc::new(watch::Sender::new(SubSettings::new(params))),
            streams: Arc::default(),
        }
    }

    /// The settings now.
    pub(super) fn settings(&self) -> SubSettings {
        *self.settings.borrow()
    }

    /// A receiver that wakes on every change of the settings.
    pub(super) fn watch(&self) -> watch::Receiver<SubSettings> {
        self.settings.subscribe()
    }

    /// Records the Joining Location (SUBSCRIBE_OK or PUBLISH with Forward 1).
    pub(super) fn set_joining(&self, largest: Option<Location>) {
        self.settings.send_modify(|s| s.joining = largest);
    }

    /// Moves the group its streams' send order ranks from.
    pub(super) fn set_base(&self, base: u64) {
        self.settings.send_modify(|s| s.base = base);
    }

    /// Applies an accepted REQUEST_UPDATE.
    pub(super) fn update(&self, params: &Parameters, largest: Option<Location>) {
        self.settings.send_if_modified(|s| {
            let before = *s;
            s.update(params, largest);
            *s != before
        });
    }

    /// Ends the subscription's data streams.
    pub(super) fn cancel(&self) {
        self.settings.send_if_modified(|s| !std::mem::replace(&mut s.cancelled, true));
    }

    pub(super) fn count_stream(&self) {
        self.streams.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn streams(&self) -> u64 {
        self.streams.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// REQUEST_UPDATE changes only what it names; Forward going from 0 to 1 saves the Joining Location, and
    /// staying at 1 does not move it.
    #[test]
    fn an_update_changes_what_it_names_and_records_the_joining_location() {
        let mut s = SubSettings::new(&Parameters { forward: Some(false), ..Default::default() });
        assert_eq!((s.forward, s.priority, s.joining), (false, 128, None));
        let at = |g, o| Some(Location::new(g, o));
        s.update(&Parameters { subscriber_priority: Some(7), ..Default::default() }, at(1, 0));
        assert_eq!((s.forward, s.priority, s.joining), (false, 7, None));
        s.update(&Parameters { forward: Some(true), ..Default::default() }, at(2, 3));
        assert_eq!((s.forward, s.joining), (true, at(2, 3)));
        s.update(
            &Parameters { forward: Some(true), object_delivery_timeout: Some(40), ..Default::default() },
            at(5, 0),
        );
        assert_eq!((s.joining, s.object_timeout, s.subgroup_timeout), (at(2, 3), 40, 0));
        assert!(!s.cancelled);
    }
}
