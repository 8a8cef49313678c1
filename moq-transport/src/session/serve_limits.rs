//! What bounds a served subscription's objects: delivery timeouts, and the latency budget of load shedding.

use std::time::Duration;

use moq_wire::kvp::{Properties, property};
use moq_wire::{GroupId, ObjectId, TrackAlias};
use web_transport_trait::Session as WtSession;

use super::Inner;
use super::rules::effective_timeout;
use super::subscription::SubState;
use crate::model::{GroupConsumer, TrackInfo};

/// The effective delivery timeouts of a subscription: the smaller non-zero value of the subscriber's parameter
/// and the track's property (draft-19 §10.5.1).
#[derive(Debug, Clone, Copy)]
pub(super) struct Timeouts {
    pub(super) object: Option<Duration>,
    pub(super) subgroup: Option<Duration>,
    /// The subscriber's values (ms, 0: none), for a subgroup whose first object overrides the track's.
    subscriber: (u64, u64),
    /// The track's MAX_CACHE_DURATION.
    cache: Option<Duration>,
}

impl Timeouts {
    pub(super) fn new(info: &TrackInfo, state: &SubState) -> Timeouts {
        let settings = state.settings();
        let subscriber = (settings.object_timeout, settings.subgroup_timeout);
        Timeouts {
            object: effective_timeout(subscriber.0, info.properties.get_int(property::OBJECT_DELIVERY_TIMEOUT)),
            subgroup: effective_timeout(subscriber.1, info.properties.get_int(property::SUBGROUP_DELIVERY_TIMEOUT)),
            subscriber,
            cache: info.properties.get_int(property::MAX_CACHE_DURATION).map(Duration::from_millis),
        }
    }

    /// The age past which an object is not sent: its OBJECT_DELIVERY_TIMEOUT, or sooner its track's
    /// MAX_CACHE_DURATION.
    //= draft-ietf-moq-transport-19#max-cache-duration
    //# If present, the
    //# relay MUST NOT start forwarding any individual Object received through this
    //# subscription or fetch after the specified number of milliseconds has elapsed
    //# since the beginning of the Object was received.
    pub(super) fn object_limit(&self) -> Option<Duration> {
        [self.object, self.cache].into_iter().flatten().min()
    }

    /// The timeouts of a subgroup whose first object carries `properties`.
    //= draft-ietf-moq-transport-19#delivery-timeouts
    //# For
    //# each type of timeout, the
    //# publisher's value is the Object Property when present on the first object of the
    //# subgroup, and the Track Property otherwise.
    pub(super) fn for_first_object(self, properties: &Properties) -> Timeouts {
        let mut t = self;
        if let Some(ms) = properties.get_int(property::OBJECT_DELIVERY_TIMEOUT) {
            t.object = effective_timeout(t.subscriber.0, Some(ms));
        }
        if let Some(ms) = properties.get_int(property::SUBGROUP_DELIVERY_TIMEOUT) {
            t.subgroup = effective_timeout(t.subscriber.1, Some(ms));
        }
        t
    }

    /// The limit on a datagram's age: the smaller non-zero of the two.
    //= draft-ietf-moq-transport-19#delivery-timeouts
    //# For objects with Object Forwarding Preference set to Datagram, the
    //# SUBGROUP_DELIVERY_TIMEOUT acts the same way as OBJECT_DELIVERY_TIMEOUT; if both
    //# are non-zero, the smaller of the two is used.
    pub(super) fn datagram(&self) -> Option<Duration> {
        [self.object_limit(), self.subgroup].into_iter().flatten().min()
    }
}

/// What one subgroup task sends.
#[derive(Debug, Clone, Copy)]
pub(super) struct Job {
    pub(super) group: GroupId,
    pub(super) alias: TrackAlias,
    /// Skip objects before this one (filters that start mid-group).
    pub(super) first_object: Option<ObjectId>,
    pub(super) timeouts: Timeouts,
}

/// What a subgroup stream needs to know to shed load: its subscription, its budget at the default priority (`None`:
/// no shedding) and its group, to see whether a newer one exists.
pub(super) struct Shed {
    pub(super) state: SubState,
    pub(super) base_budget: Option<Duration>,
    pub(super) group: GroupConsumer,
}

impl Shed {
    pub(super) fn new<S: WtSession>(inner: &Inner<S>, state: &SubState, group: &GroupConsumer) -> Shed {
        let base_budget = inner.config.max_latency.filter(|_| state.live);
        Shed { state: state.clone(), base_budget, group: group.clone() }
    }

    /// The budget at SUBSCRIBER_PRIORITY `priority`.
    pub(super) fn budget(&self, priority: u8) -> Option<Duration> {
        self.base_budget.map(|b| shed_budget(b, priority))
    }

    /// Whether an object that waited `waited` is too late to send: longer than the budget (counting objects
    /// cached before the subscription began from its start), and a newer group exists (which the subscriber will
    /// get instead). The clock is read again only for an object already past the budget.
    pub(super) fn too_late(&self, budget: Option<Duration>, waited: Duration) -> bool {
        budget.is_some_and(|b| waited > b && self.state.since.elapsed() > b) && self.group.is_superseded()
    }
}

/// The latency budget of a subscription at SUBSCRIBER_PRIORITY `priority`: `base` scaled by its
/// [`importance`](super::overload::importance), so that the least important subscribers lose groups first.
pub(super) fn shed_budget(base: Duration, priority: u8) -> Duration {
    base.mul_f64(super::overload::importance(priority))
}

#[cfg(test)]
mod tests {
    use super::*;
    use moq_wire::GroupOrder;
    use moq_wire::namespace::{FullTrackName, TrackNamespace};
    use moq_wire::params::Parameters;

    /// For datagrams SUBGROUP_DELIVERY_TIMEOUT bounds an object's age too, the smaller of the two winning; a
    /// first object's properties override the track's values, and the subscriber's smaller value still wins.
    #[test]
    fn datagram_and_first_object_delivery_timeouts() {
        let ms = Duration::from_millis;
        let mut info = TrackInfo::new(FullTrackName::new(TrackNamespace::from_path("t").unwrap(), "x"));
        info.properties = Properties::new().with_int(property::SUBGROUP_DELIVERY_TIMEOUT, 20).unwrap();
        let state = SubState::new(&Parameters::default(), GroupOrder::Ascending);
        let track_only = Timeouts::new(&info, &state);
        assert_eq!((track_only.object, track_only.subgroup, track_only.datagram()), (None, Some(ms(20)), Some(ms(20))));
        let first = Properties::new().with_int(property::OBJECT_DELIVERY_TIMEOUT, 5).unwrap();
        let overridden = track_only.for_first_object(&first);
        assert_eq!((overridden.object, overridden.datagram()), (Some(ms(5)), Some(ms(5))));
        let params = Parameters { object_delivery_timeout: Some(3), ..Default::default() };
        let subscriber = Timeouts::new(&info, &SubState::new(&params, GroupOrder::Ascending));
        assert_eq!(subscriber.for_first_object(&first).object, Some(ms(3)), "the smaller non-zero value");
    }

    #[test]
    fn the_shedding_budget_doubles_per_32_priority_steps() {
        let base = Duration::from_millis(1000);
        assert_eq!(shed_budget(base, 128), base);
        assert_eq!(shed_budget(base, 96), base * 2);
        assert_eq!(shed_budget(base, 0), base * 16);
        assert_eq!(shed_budget(base, 160), base / 2);
        assert!(shed_budget(base, 255) < Duration::from_millis(70));
    }
}
