//! A FETCH answered from a track's cache: which objects the cache holds, where it has holes (objects whose status
//! it does not know), and the entries in the requested order.
//!
//! Holes are the part of a group before the first object held of a subgroup that was joined in its middle (no
//! FIRST_OBJECT), the range before the oldest group held, and objects up to the track's largest location that have
//! not arrived. A relay asks its upstream for the first kind ([`fill_holes`]); what upstream cannot confirm is sent
//! as an unknown range, never as a gap (a gap says the objects do not exist).
//!
//! Group IDs missing between held groups are served as gaps: publishers often number groups by time, so most such
//! gaps are groups that never existed, and asking upstream for each would cost a round trip per group (a publisher
//! that refuses FETCH would leave every one unknown). The draft says a receiver cannot tell without
//! PRIOR_GROUP_ID_GAP; this is a known departure (docs/transport.md).

use std::collections::HashMap;
use std::time::Duration;

use moq_wire::{GroupOrder, Location, ObjectStatus};

use super::rules::in_fetch_range;
use crate::model::{Delivery, FetchItem, FetchedObject, GroupConsumer, Object, SubgroupInfo, TrackConsumer};
use crate::origin::Fetcher;

/// The largest Object ID an End of Range entry names for "the rest of that group".
pub(super) const LAST_OBJECT: u64 = (1 << 62) - 1;

/// One step of a FETCH from the cache, in ascending order.
pub(super) enum Planned {
    /// An object the cache holds.
    Object { location: Location, info: SubgroupInfo, object: Object, at: tokio::time::Instant },
    /// Objects whose status the cache does not know, `from` to `to` inclusive.
    Hole(Hole),
}

/// A run of locations whose objects the cache may lack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Hole {
    pub(super) from: Location,
    pub(super) to: Location,
    /// Whole groups are missing (rather than part of a held group).
    pub(super) groups: bool,
    /// Whether upstream is asked for it: not for the range before the oldest group held (asked as a whole
    /// already) nor for objects not arrived yet (waited for already).
    pub(super) ask: bool,
}

impl Hole {
    /// The End of Range entry for the hole: it covers the locations from the entry before it to its own, in the
    /// order the entries are sent (groups in the requested order, objects ascending within a group).
    fn end_of_range(&self, order: GroupOrder) -> FetchItem {
        let end = match order {
            GroupOrder::Descending if self.from.group != self.to.group => Location::new(self.from.group.0, LAST_OBJECT),
            GroupOrder::Descending => Location::new(self.from.group.0, self.to.object.0),
            _ => self.to,
        };
        FetchItem::EndOfRange { end, unknown: true }
    }
}

/// The last location of a range whose End Location (exclusive; object 0 = the whole group) is `end`.
pub(super) fn last_in_range(end: Location) -> Location {
    match end.object.0 {
        0 => Location::new(end.group.0, LAST_OBJECT),
        o => Location::new(end.group.0, o - 1),
    }
}

/// The End Location (exclusive; object 0 = the whole group) of a range whose last location is `last`.
fn end_after(last: Location) -> Location {
    match last.object.0 {
        LAST_OBJECT => Location::new(last.group.0, 0),
        o => Location::new(last.group.0, o + 1),
    }
}

/// What the cache holds of the range from `start` to `end` (as FETCH_OK's End Location) and where it has holes,
/// in ascending order. `tail`, when the objects up to it have not all arrived, ends an unknown run after the
/// last object held.
pub(super) fn plan(groups: &[GroupConsumer], start: Location, end: Location, tail: Option<Location>) -> Vec<Planned> {
    let last = last_in_range(end);
    let mut planned = Vec::new();
    let hole = |from: Location, to: Location, groups: bool, planned: &mut Vec<Planned>| {
        let (from, to) = (from.max(start), to.min(last));
        if from <= to {
            planned.push(Planned::Hole(Hole { from, to, groups, ask: true }));
        }
    };
    // Before the oldest group held, nothing is known here. The entry runs up to the group before the oldest held
    // even past the range's end: a player learns from it where the cache begins.
    let oldest = groups.first().map(|g| g.id().0);
    if oldest.is_none_or(|oldest| start.group.0 < oldest) {
        let to =
            oldest.map_or(Location::new(end.group.0, LAST_OBJECT), |oldest| Location::new(oldest - 1, LAST_OBJECT));
        planned.push(Planned::Hole(Hole { from: start, to, groups: true, ask: false }));
    }
    let mut held_last: Option<Location> = None;
    for g in groups {
        let gid = g.id().0;
        let mut objects: Vec<(SubgroupInfo, Object, tokio::time::Instant)> = Vec::new();
        // The group is known only from the first object held of a subgroup joined in its middle.
        let mut known_from: Option<u64> = None;
        for sg in g.subgroups() {
            let held = sg.available_timed();
            if !sg.info().first_object
                && let Some((first, _)) = held.first()
            {
                known_from = Some(known_from.map_or(first.id.0, |k| k.max(first.id.0)));
            }
            objects.extend(held.into_iter().map(|(o, at)| (*sg.info(), o, at)));
        }
        objects.sort_by_key(|(_, o, _)| o.id);
        let mut expected = 0;
        for (info, object, at) in objects {
            let id = object.id.0;
            if let Some(known) = known_from
                && expected < known
                && id > expected
            {
                hole(Location::new(gid, expected), Location::new(gid, id.min(known) - 1), false, &mut planned);
            }
            expected = id + 1;
            let location = Location::new(gid, id);
            held_last = held_last.max(Some(location));
            if object.status == ObjectStatus::Normal && in_fetch_range(location, start, end) {
                planned.push(Planned::Object { location, info, object, at });
            }
        }
    }
    // Objects not arrived yet: the rest of the last group held, then whole groups up to `tail`.
    if let Some(tail) = tail.map(|t| t.min(last)) {
        let after = held_last.map_or(start, |l| Location::new(l.group.0, l.object.0 + 1)).max(start);
        let mut unknown = |from: Location, to: Location, groups: bool| {
            if from <= to {
                planned.push(Planned::Hole(Hole { from, to, groups, ask: false }));
            }
        };
        if after.group == tail.group {
            unknown(after, tail, false);
        } else {
            unknown(after, Location::new(after.group.0, LAST_OBJECT), false);
            unknown(Location::new(after.group.0 + 1, 0), tail, true);
        }
    }
    planned
}

/// Asks upstream (the origin's fetcher, on a relay) for every hole inside the cache window, in the FETCH's `order`,
/// until `deadline`: the entries it answered with, by the hole's start; a hole it did not answer in full is left
/// out.
//= draft-ietf-moq-transport-19#fetch-handling
//# If it encounters an object
//# in the requested range that is not cached and has unknown status, the relay MUST
//# pause subsequent delivery until it has confirmed the object's status upstream.
pub(super) async fn fill_holes(
    fetcher: Option<Fetcher>,
    name: &moq_wire::namespace::FullTrackName,
    planned: &[Planned],
    order: GroupOrder,
    deadline: tokio::time::Instant,
) -> HashMap<Location, Vec<FetchItem>> {
    let mut filled = HashMap::new();
    let Some(fetcher) = fetcher else { return filled };
    for p in planned {
        let Planned::Hole(hole) = p else { continue };
        if !hole.ask {
            continue;
        }
        let ask = fetcher(name.clone(), hole.from, end_after(hole.to), order);
        let answered = tokio::time::timeout_at(deadline, async {
            let mut source = ask.await?;
            let mut items = Vec::new();
            while let Some(item) = source.items.recv().await {
                items.push(item.ok()?);
            }
            Some(items)
        });
        if let Ok(Some(items)) = answered.await {
            filled.insert(hole.from, items);
        }
    }
    filled
}

/// The entries of a FETCH from the cache in the requested order: held objects, upstream's answers for holes
/// (`filled`), and unknown End of Range entries for what is left. An object older than `max_cache` is sent as an
/// unknown End of Range ending at it, not as itself.
//= draft-ietf-moq-transport-19#message-fetch
//# it can choose to reset the
//# FETCH data stream with UNKNOWN_OBJECT_STATUS ({{stream-reset-codes}}), or indicate
//# the range of unknown Objects and continue serving other known Objects.
//= draft-ietf-moq-transport-19#max-cache-duration
//# Once
//# Objects have expired from cache, their state becomes unknown
pub(super) fn cached_items(
    planned: Vec<Planned>,
    mut filled: HashMap<Location, Vec<FetchItem>>,
    order: GroupOrder,
    max_cache: Option<Duration>,
) -> Vec<FetchItem> {
    // Runs of entries in ascending order: one per held group (its objects and the holes inside it), one per run
    // of missing groups. Descending order sends the runs in reverse, each as it is.
    let mut runs: Vec<(Option<u64>, Vec<FetchItem>)> = Vec::new();
    let mut push = |group: Option<u64>, item: Vec<FetchItem>| match runs.last_mut() {
        Some((g, items)) if group.is_some() && *g == group => items.extend(item),
        _ => runs.push((group, item)),
    };
    for p in planned {
        match p {
            Planned::Object { location, info, object, at } => {
                let item = if max_cache.is_some_and(|max| at.elapsed() > max) {
                    FetchItem::EndOfRange { end: location, unknown: true }
                } else {
                    FetchItem::Object(FetchedObject {
                        location,
                        // Datagram objects have no subgroup (serialization flag 0x40).
                        subgroup: (info.delivery == Delivery::Streams).then_some(info.id),
                        priority: info.priority,
                        properties: object.properties,
                        payload: object.payload,
                    })
                };
                push(Some(location.group.0), vec![item]);
            }
            Planned::Hole(hole) => {
                let group = (!hole.groups).then_some(hole.from.group.0);
                let items = filled.remove(&hole.from).unwrap_or_else(|| vec![hole.end_of_range(order)]);
                push(group, items);
            }
        }
    }
    if order == GroupOrder::Descending {
        runs.reverse();
    }
    let mut items: Vec<FetchItem> = Vec::new();
    for item in runs.into_iter().flat_map(|(_, items)| items) {
        // Unknown runs back to back are one: the later entry covers from where the earlier one started.
        let unknown = |i: &FetchItem| matches!(i, FetchItem::EndOfRange { unknown: true, .. });
        if unknown(&item) && items.last().is_some_and(unknown) {
            items.pop();
        }
        items.push(item);
    }
    items
}

/// The largest location the cache holds an object for.
pub(super) fn held_largest(consumer: &TrackConsumer) -> Option<Location> {
    let mut largest = None;
    for g in consumer.cached_groups() {
        for sg in g.subgroups() {
            if let Some(id) = sg.last_id() {
                largest = largest.max(Some(Location { group: g.id(), object: id }));
            }
        }
    }
    largest
}

/// Waits until `deadline` for the cache to hold an object at `target` or beyond; if it does not by then, the
/// location the unknown tail of the range ends at (`target`).
pub(super) async fn fill(
    consumer: &TrackConsumer,
    target: Location,
    deadline: tokio::time::Instant,
) -> Option<Location> {
    let mut written = consumer.written();
    loop {
        written.borrow_and_update();
        if held_largest(consumer).is_some_and(|held| held >= target) {
            return None;
        }
        // Look again when an object is written, until the budget is spent.
        if !matches!(tokio::time::timeout_at(deadline, written.changed()).await, Ok(Ok(()))) {
            return held_largest(consumer).is_none_or(|held| held < target).then_some(target);
        }
    }
}
