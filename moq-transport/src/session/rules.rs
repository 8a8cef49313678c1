//! The session's decisions as plain functions: where a subscription starts, which ranges a FETCH covers, how
//! streams are prioritised, which delivery timeout applies, which request parameters are refused. No I/O, no
//! clock, no tokio: each is unit-tested below.

use std::time::Duration;

use moq_wire::codes::RequestErrorCode;
use moq_wire::params::{LocationFilter, Parameters};
use moq_wire::{GroupOrder, Location};

/// A request refused with REQUEST_ERROR.
pub(super) type Refusal = (RequestErrorCode, &'static str);

/// Where a served subscription starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Start {
    /// From the latest group, whole.
    LiveEdge,
    /// From this location among new objects (Largest Object / Next Group Start).
    At(Location),
    /// From this location, including cached groups (AbsoluteStart / AbsoluteRange).
    Cached(Location),
}

impl Start {
    /// The first location sent, if the filter names one.
    pub(super) fn location(&self) -> Option<Location> {
        match *self {
            Start::LiveEdge => None,
            Start::At(l) | Start::Cached(l) => Some(l),
        }
    }
}

/// What a SUBSCRIBE's filter means given the track's largest location: where to start and the last group (for
/// AbsoluteRange).
//= draft-ietf-moq-transport-19#location-filters
//# If the publisher cannot satisfy the requested Location Filter (see
//# {{location-filter}}) or if the entire End Group has already been published
//# it SHOULD send a REQUEST_ERROR with code `INVALID_RANGE`.
pub(super) fn subscription_window(
    filter: Option<LocationFilter>,
    largest: Option<Location>,
) -> Result<(Start, Option<u64>), Refusal> {
    let start = match filter {
        None => Start::LiveEdge,
        Some(LocationFilter::NextGroupStart) => {
            Start::At(largest.map(|l| Location::new(l.group.0.saturating_add(1), 0)).unwrap_or_default())
        }
        Some(LocationFilter::LargestObject) => {
            Start::At(largest.map(|l| Location::new(l.group.0, l.object.0.saturating_add(1))).unwrap_or_default())
        }
        Some(LocationFilter::AbsoluteStart { start }) | Some(LocationFilter::AbsoluteRange { start, .. }) => {
            Start::Cached(start)
        }
    };
    let end_group = filter.and_then(|f| f.end_group()).map(|g| g.0);
    if let (Some(end), Some(l)) = (end_group, largest)
        && end < l.group.0
    {
        return Err((RequestErrorCode::InvalidRange, "end group already published"));
    }
    Ok((start, end_group))
}

/// The range of a Joining FETCH: from `joining_start` groups before the Joining Location (relative) or from group
/// `joining_start` (absolute), to the Joining Location inclusive (the end is exclusive).
//= draft-ietf-moq-transport-19#joining-fetch-range-calculation
//# The publisher receiving a Joining Fetch sets the End Location to
//# {Joining Location.Group, Joining Location.Object + 1}
pub(super) fn joining_range(relative: bool, joining_start: u64, joining: Location) -> (Location, Location) {
    let start_group = if relative { joining.group.0.saturating_sub(joining_start) } else { joining_start };
    (Location::new(start_group, 0), Location::new(joining.group.0, joining.object.0.saturating_add(1)))
}

/// The End Location a FETCH answer reports, its range clipped to what exists (`largest`). An `end` with object 0
/// means "all of `end.group`". Refused when the track is empty or the range starts after its largest object.
pub(super) fn fetch_end(start: Location, end: Location, largest: Option<Location>) -> Result<Location, Refusal> {
    let Some(largest) = largest else {
        return Err((RequestErrorCode::InvalidRange, "track is empty"));
    };
    if start > largest {
        return Err((RequestErrorCode::InvalidRange, "start is after the largest object"));
    }
    let clipped = Location::new(largest.group.0, largest.object.0.saturating_add(1));
    Ok(if end.object.0 == 0 { if end.group >= largest.group { clipped } else { end } } else { end.min(clipped) })
}

/// Whether `l` lies in a FETCH range from `start` to `end_location` (as [`fetch_end`] reports it).
pub(super) fn in_fetch_range(l: Location, start: Location, end_location: Location) -> bool {
    l >= start && if end_location.object.0 == 0 { l.group <= end_location.group } else { l < end_location }
}

/// The send order of a subgroup stream: subscriber priority, then publisher priority (lower is more important),
/// then group order. quinn sends higher values first.
//= draft-ietf-moq-transport-19#priorities
//# If two objects have different subscriber priorities associated with them,
//# the one with **the highest subscriber priority** is scheduled to be sent first.
///
/// Groups are ranked by their position after the subscription's `base` group ([`position_base`]): each
/// (subscriber, publisher) pair owns a slot of 2^14 values, and live groups take all but the slot's lowest.
pub(super) fn send_order(subscriber: u8, publisher: u8, group: u64, base: u64, order: GroupOrder) -> i32 {
    let g = group.saturating_sub(base).min(GROUP_POSITIONS - 1) as i32;
    let g = match order {
        GroupOrder::Ascending => (GROUP_POSITIONS - 1) as i32 - g,
        GroupOrder::Descending => g,
    };
    slot(subscriber, publisher) + 1 + g
}

/// How many group positions one priority slot tells apart.
pub(super) const GROUP_POSITIONS: u64 = 0x3fff;

/// The base a subscription ranks its groups from ([`send_order`]) once group `group` starts, `oldest` being the
/// oldest group it still sends: unchanged while `group` has a position after it, otherwise moved to the oldest
/// group in flight (and the open streams re-ranked), so the order never wraps around.
pub(super) fn position_base(base: u64, oldest: u64, group: u64) -> u64 {
    if group >= base && group - base < GROUP_POSITIONS {
        return base;
    }
    oldest.min(group)
}

/// The send order of a FETCH stream: the lowest of its priorities' slot, below every live subgroup stream of the
/// same priorities (history never delays the live edge) and above any of a lower priority.
pub(super) fn fetch_send_order(subscriber: u8, publisher: u8) -> i32 {
    slot(subscriber, publisher)
}

fn slot(subscriber: u8, publisher: u8) -> i32 {
    -((((subscriber as i32) << 8) | publisher as i32) << 14)
}

/// A delivery timeout in effect: the smaller non-zero of the subscriber's parameter and the track's property,
/// in milliseconds (draft-19 §10.5.1). Zero or absent means none.
pub(super) fn effective_timeout(subscriber_ms: u64, track_ms: Option<u64>) -> Option<Duration> {
    [subscriber_ms, track_ms.unwrap_or(0)].into_iter().filter(|v| *v > 0).min().map(Duration::from_millis)
}

/// Refuses range filters beyond what we allow: we send no MAX_FILTER_RANGES (so it is 0 for the peer), and then
/// the peer MUST NOT send any.
//= draft-ietf-moq-transport-19#max-filter-ranges
//# If this limit is exceeded, an endpoint MUST reject this with REQUEST_ERROR with error code INVALID_FILTER.
pub(super) fn check_range_filters(params: &Parameters, max_ranges: u64) -> Result<(), Refusal> {
    let ranges: usize = params.range_filters.iter().map(|f| f.ranges.len().max(1)).sum();
    if ranges as u64 > max_ranges {
        return Err((RequestErrorCode::InvalidFilter, "range filters exceed MAX_FILTER_RANGES"));
    }
    Ok(())
}

/// Whether a subscriber's REQUEST_UPDATE of a subscription can be applied: FORWARD, SUBSCRIBER_PRIORITY and the
/// delivery timeouts are, and NEW_GROUP_REQUEST when the track has DYNAMIC_GROUPS; a new location filter, range
/// filters, a group order (which cannot change) and NEW_GROUP_REQUEST without DYNAMIC_GROUPS are refused.
//= draft-ietf-moq-transport-19#message-request-update
//# When a REQUEST_UPDATE is unsuccessful, the publisher MUST also terminate
//# the subscription by sending a
//# PUBLISH_DONE with error code `UPDATE_FAILED`.
pub(super) fn subscription_update(params: &Parameters, max_ranges: u64, dynamic_groups: bool) -> Result<(), Refusal> {
    check_range_filters(params, max_ranges)?;
    if params.location_filter.is_some() {
        return Err((RequestErrorCode::NotSupported, "changing a subscription's filter is not supported"));
    }
    if params.group_order.is_some() {
        return Err((RequestErrorCode::InvalidRange, "the group order of a subscription cannot change"));
    }
    //= draft-ietf-moq-transport-19#new-group-request
    //# A subscriber MUST NOT send
    //# this parameter in PUBLISH_OK or REQUEST_UPDATE if the Track did not
    //# include the DYNAMIC_GROUPS Property with value 1.
    if params.new_group_request.is_some() && !dynamic_groups {
        return Err((RequestErrorCode::NotSupported, "the track has no dynamic groups"));
    }
    Ok(())
}

/// The group order a subscription gets when its SUBSCRIBE names none: the track's DEFAULT_PUBLISHER_GROUP_ORDER
/// (Ascending when absent).
//= draft-ietf-moq-transport-19#group-order
//# If omitted from SUBSCRIBE or SUBSCRIBE_TRACKS, the publisher's preference from
//# the Track is used.
pub(super) fn track_group_order(properties: &moq_wire::kvp::Properties) -> GroupOrder {
    match properties.get_int(moq_wire::kvp::property::DEFAULT_PUBLISHER_GROUP_ORDER) {
        Some(2) => GroupOrder::Descending,
        _ => GroupOrder::Ascending,
    }
}

/// The PUBLISH_DONE status for a served track that ended with `end`: the upstream's own status where it can only
/// have come from a PUBLISH_DONE and means the same downstream (GOING_AWAY, EXPIRED, EXCESSIVE_LOAD,
/// MALFORMED_TRACK); INTERNAL_ERROR for the rest (a lost session, a cancel, codes that would not mean the same
/// to this subscriber, such as TOO_FAR_BEHIND or UPDATE_FAILED, or UNAUTHORIZED, whose value our own cancel shares).
pub(super) fn publish_done_status(end: crate::TrackEnd) -> moq_wire::codes::PublishDoneCode {
    use moq_wire::codes::PublishDoneCode as Code;
    match end {
        crate::TrackEnd::Ended => Code::TrackEnded,
        crate::TrackEnd::Error(code) => [Code::GoingAway, Code::Expired, Code::ExcessiveLoad, Code::MalformedTrack]
            .into_iter()
            .find(|c| c.to_u64() == code)
            .unwrap_or(Code::InternalError),
    }
}

/// Whether a FETCH_OK's End Location lies before the FETCH's Start Location, which the receiver must treat as a
/// PROTOCOL_VIOLATION. An End Location with object 0 covers its whole group.
//= draft-ietf-moq-transport-19#message-fetch-ok
//# If End Location is smaller than the Start Location in the corresponding FETCH
//# the receiver MUST close the session with a `PROTOCOL_VIOLATION`.
pub(super) fn fetch_end_before_start(start: Location, end: Location) -> bool {
    if end.object.0 == 0 { end.group < start.group } else { (end.group, end.object) < (start.group, start.object) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use moq_wire::params::{RangeDelta, RangeFilter, RangeFilterKind};

    #[test]
    fn filters_start_where_the_draft_says() {
        let largest = Some(Location::new(5, 3));
        assert_eq!(subscription_window(None, largest), Ok((Start::LiveEdge, None)));
        assert_eq!(
            subscription_window(Some(LocationFilter::NextGroupStart), largest),
            Ok((Start::At(Location::new(6, 0)), None))
        );
        assert_eq!(
            subscription_window(Some(LocationFilter::LargestObject), largest),
            Ok((Start::At(Location::new(5, 4)), None))
        );
        // Nothing published yet: both resolve to the very start.
        assert_eq!(
            subscription_window(Some(LocationFilter::LargestObject), None),
            Ok((Start::At(Location::new(0, 0)), None))
        );
        let range = LocationFilter::AbsoluteRange { start: Location::new(4, 1), end_group_delta: 3 };
        assert_eq!(subscription_window(Some(range), largest), Ok((Start::Cached(Location::new(4, 1)), Some(7))));
        let past = LocationFilter::AbsoluteRange { start: Location::new(1, 0), end_group_delta: 2 };
        assert_eq!(subscription_window(Some(past), largest).unwrap_err().0, RequestErrorCode::InvalidRange);
    }

    #[test]
    fn joining_fetch_ranges() {
        let joining = Location::new(10, 4);
        assert_eq!(joining_range(true, 2, joining), (Location::new(8, 0), Location::new(10, 5)));
        assert_eq!(joining_range(true, 99, joining), (Location::new(0, 0), Location::new(10, 5)));
        assert_eq!(joining_range(false, 7, joining), (Location::new(7, 0), Location::new(10, 5)));
    }

    #[test]
    fn fetch_ranges_are_clipped_to_what_exists() {
        let largest = Some(Location::new(5, 2));
        // Whole groups past the largest: up to the object after it.
        assert_eq!(fetch_end(Location::new(1, 0), Location::new(9, 0), largest), Ok(Location::new(5, 3)));
        assert_eq!(fetch_end(Location::new(1, 0), Location::new(3, 0), largest), Ok(Location::new(3, 0)));
        assert_eq!(fetch_end(Location::new(1, 0), Location::new(5, 1), largest), Ok(Location::new(5, 1)));
        assert_eq!(
            fetch_end(Location::new(6, 0), Location::new(9, 0), largest).unwrap_err().0,
            RequestErrorCode::InvalidRange
        );
        assert_eq!(
            fetch_end(Location::new(0, 0), Location::new(1, 0), None).unwrap_err().0,
            RequestErrorCode::InvalidRange
        );
        // Object 0 in the end means the whole end group is included.
        assert!(in_fetch_range(Location::new(3, 7), Location::new(1, 0), Location::new(3, 0)));
        assert!(!in_fetch_range(Location::new(5, 1), Location::new(1, 0), Location::new(5, 1)));
        assert!(!in_fetch_range(Location::new(0, 9), Location::new(1, 0), Location::new(5, 1)));
    }

    #[test]
    fn priorities_order_streams() {
        // Lower subscriber priority first, whatever the publisher priority.
        let up = GroupOrder::Ascending;
        assert!(send_order(1, 255, 0, 0, up) > send_order(2, 0, 0, 0, up));
        // Then publisher priority.
        assert!(send_order(1, 1, 0, 0, up) > send_order(1, 2, 0, 0, up));
        // Then group order.
        assert!(send_order(1, 1, 3, 0, up) > send_order(1, 1, 4, 0, up));
        assert!(send_order(1, 1, 4, 0, GroupOrder::Descending) > send_order(1, 1, 3, 0, GroupOrder::Descending));
        // A FETCH goes after every live stream of the same priorities, before any of a lower priority.
        let fetch = fetch_send_order(1, 1);
        assert!(fetch < send_order(1, 1, 0x3fff, 0, up));
        assert!(fetch < send_order(1, 1, 0, 0, GroupOrder::Descending));
        assert!(fetch > send_order(1, 2, 0, 0, up));
    }

    /// Group order holds across any number of groups: when a group has no position after the base, the base
    /// moves to the oldest group in flight. (With positions taken modulo 2^14 - 1, group 16,383 outranked 16,382
    /// in ascending order.)
    #[test]
    fn group_order_does_not_wrap() {
        let up = GroupOrder::Ascending;
        let mut base = 0;
        for group in 1..100_000u64 {
            let oldest = group.saturating_sub(3);
            base = position_base(base, oldest, group);
            assert!(send_order(1, 1, oldest, base, up) > send_order(1, 1, group, base, up), "group {group}");
            let down = GroupOrder::Descending;
            assert!(send_order(1, 1, oldest, base, down) < send_order(1, 1, group, base, down), "group {group}");
        }
        // A late group from before the base ranks first in ascending order.
        assert_eq!(send_order(1, 1, 5, 10, up), send_order(1, 1, 10, 10, up));
    }

    #[test]
    fn the_smaller_timeout_applies() {
        assert_eq!(effective_timeout(0, None), None);
        assert_eq!(effective_timeout(0, Some(0)), None);
        assert_eq!(effective_timeout(300, None), Some(Duration::from_millis(300)));
        assert_eq!(effective_timeout(300, Some(100)), Some(Duration::from_millis(100)));
        assert_eq!(effective_timeout(0, Some(100)), Some(Duration::from_millis(100)));
    }

    #[test]
    fn subscription_updates_apply_or_are_refused() {
        let ok = Parameters { forward: Some(false), subscriber_priority: Some(3), ..Default::default() };
        assert!(subscription_update(&ok, 0, false).is_ok());
        let filter = Parameters { location_filter: Some(LocationFilter::NextGroupStart), ..Default::default() };
        assert_eq!(subscription_update(&filter, 0, false).unwrap_err().0, RequestErrorCode::NotSupported);
        let order = Parameters { group_order: Some(GroupOrder::Descending), ..Default::default() };
        assert!(subscription_update(&order, 0, true).is_err());
        let new_group = Parameters { new_group_request: Some(0), ..Default::default() };
        assert!(subscription_update(&new_group, 0, false).is_err(), "no DYNAMIC_GROUPS on the track");
        assert!(subscription_update(&new_group, 0, true).is_ok());
    }

    #[test]
    fn range_filters_need_max_filter_ranges() {
        let mut params = Parameters::default();
        assert!(check_range_filters(&params, 0).is_ok());
        params.range_filters.push(RangeFilter {
            kind: RangeFilterKind::Subgroup,
            set_id: Some(0),
            ranges: vec![RangeDelta { start: 0, end: Some(2) }, RangeDelta { start: 3, end: None }],
        });
        assert_eq!(check_range_filters(&params, 0).unwrap_err().0, RequestErrorCode::InvalidFilter);
        assert_eq!(check_range_filters(&params, 1).unwrap_err().0, RequestErrorCode::InvalidFilter);
        assert!(check_range_filters(&params, 2).is_ok());
    }

    #[test]
    fn a_fetch_ok_ending_before_its_start_is_caught() {
        let at = |g, o| Location::new(g, o);
        assert!(!fetch_end_before_start(at(3, 2), at(3, 0)), "object 0: the whole of group 3");
        assert!(!fetch_end_before_start(at(3, 2), at(3, 3)));
        assert!(!fetch_end_before_start(at(3, 2), at(5, 1)));
        assert!(fetch_end_before_start(at(3, 2), at(2, 0)));
        assert!(fetch_end_before_start(at(3, 2), at(3, 1)));
        assert!(fetch_end_before_start(at(3, 2), at(2, 9)));
    }

    #[test]
    fn a_track_may_prefer_descending_groups() {
        use moq_wire::kvp::{Properties, property};
        assert_eq!(track_group_order(&Properties::new()), GroupOrder::Ascending);
        let descending = Properties::new().with_int(property::DEFAULT_PUBLISHER_GROUP_ORDER, 2).unwrap();
        assert_eq!(track_group_order(&descending), GroupOrder::Descending);
    }

    #[test]
    fn upstream_statuses_that_mean_the_same_downstream_are_passed_on() {
        use crate::TrackEnd;
        use moq_wire::codes::PublishDoneCode as Code;
        assert_eq!(publish_done_status(TrackEnd::Ended), Code::TrackEnded);
        assert_eq!(publish_done_status(TrackEnd::Error(Code::ExcessiveLoad.to_u64())), Code::ExcessiveLoad);
        assert_eq!(publish_done_status(TrackEnd::Error(Code::GoingAway.to_u64())), Code::GoingAway);
        assert_eq!(publish_done_status(TrackEnd::Error(Code::MalformedTrack.to_u64())), Code::MalformedTrack);
        assert_eq!(publish_done_status(TrackEnd::Error(Code::TooFarBehind.to_u64())), Code::InternalError);
        assert_eq!(publish_done_status(TrackEnd::Error(1)), Code::InternalError, "our cancel, or UNAUTHORIZED");
    }
}
