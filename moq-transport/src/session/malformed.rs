//! Malformed track detection for tracks we receive (draft-19 §Malformed Tracks): what the objects so far said of
//! each subgroup's and group's final object, of the track's end, of priorities and forwarding preferences, checked
//! against every new object. Plain data, no I/O, no clock; memory bounded to the newest groups.

use std::collections::BTreeMap;

use moq_wire::ObjectStatus;
use moq_wire::kvp::Properties;

/// Why a track is malformed (the draft's numbered conditions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Malformed {
    /// 1: an object's Publisher Priority differs from its subgroup's earlier objects.
    PriorityChanged,
    /// 2: an object after its subgroup's final object (the last before a FIN).
    PastSubgroupEnd,
    /// 3: a subgroup ended (FIN) twice with different final objects.
    SubgroupEndsDiffer,
    /// 4: an object after its group's final object (END_OF_GROUP).
    PastGroupEnd,
    /// 5: an object after the track's final object (END_OF_TRACK).
    PastTrackEnd,
    /// §Mandatory Track Properties: an Object Property of Track scope only.
    MandatoryProperty,
}

impl Malformed {
    /// The reason given with MALFORMED_TRACK.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Malformed::PriorityChanged => "publisher priority changed inside a subgroup",
            Malformed::PastSubgroupEnd => "object after the end of its subgroup",
            Malformed::SubgroupEndsDiffer => "a subgroup ended twice at different objects",
            Malformed::PastGroupEnd => "object after the end of its group",
            Malformed::PastTrackEnd => "object after the end of the track",
            Malformed::MandatoryProperty => "mandatory track property as an object property",
        }
    }
}

/// What an arriving object is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Arrival<'a> {
    pub(crate) group: u64,
    pub(crate) subgroup: u64,
    pub(crate) object: u64,
    pub(crate) priority: u8,
    /// A datagram has no subgroup: only the group's and the track's ends are checked. (Condition 7, a changed
    /// forwarding preference, is not checked: we forward the preference per object.)
    pub(crate) datagram: bool,
    pub(crate) status: ObjectStatus,
    pub(crate) properties: &'a Properties,
}

/// Subgroups remembered per group: beyond this, new ones are not checked.
const MAX_SUBGROUPS: usize = 4096;

#[derive(Debug, Default)]
struct GroupShape {
    /// The final object, once END_OF_GROUP said so.
    last: Option<u64>,
    /// The largest object id seen.
    largest: u64,
    subgroups: BTreeMap<u64, SubgroupShape>,
}

#[derive(Debug)]
struct SubgroupShape {
    priority: u8,
    /// The final object, once a FIN said so.
    last: Option<u64>,
}

/// The shape of one received track so far.
#[derive(Debug)]
pub(crate) struct TrackShape {
    /// The track's final object (group, object), once END_OF_TRACK said so.
    end: Option<(u64, u64)>,
    /// The largest (group, object) seen.
    largest: Option<(u64, u64)>,
    groups: BTreeMap<u64, GroupShape>,
    max_groups: usize,
}

impl TrackShape {
    /// A track whose newest `max_groups` groups are remembered.
    pub(crate) fn new(max_groups: usize) -> TrackShape {
        TrackShape { end: None, largest: None, groups: BTreeMap::new(), max_groups: max_groups.max(1) }
    }

    /// Checks an arriving object and records what it says. An object that makes the track malformed is not
    /// recorded (it must not be cached either).
    pub(crate) fn object(&mut self, a: Arrival<'_>) -> Result<(), Malformed> {
        if a.properties.mandatory().is_some() {
            return Err(Malformed::MandatoryProperty);
        }
        let at = (a.group, a.object);
        if self.end.is_some_and(|end| at > end) {
            return Err(Malformed::PastTrackEnd);
        }
        if a.status == ObjectStatus::EndOfTrack && self.largest.is_some_and(|l| l > at) {
            return Err(Malformed::PastTrackEnd);
        }
        if let Some(g) = self.groups.get(&a.group) {
            if g.last.is_some_and(|last| a.object > last) {
                return Err(Malformed::PastGroupEnd);
            }
            if a.status == ObjectStatus::EndOfGroup && g.largest > a.object {
                return Err(Malformed::PastGroupEnd);
            }
            if let Some(s) = g.subgroups.get(&a.subgroup).filter(|_| !a.datagram) {
                if s.priority != a.priority {
                    return Err(Malformed::PriorityChanged);
                }
                if s.last.is_some_and(|last| a.object > last) {
                    return Err(Malformed::PastSubgroupEnd);
                }
            }
        }
        self.record(a);
        Ok(())
    }

    fn record(&mut self, a: Arrival<'_>) {
        let at = (a.group, a.object);
        self.largest = Some(self.largest.map_or(at, |l| l.max(at)));
        if a.status == ObjectStatus::EndOfTrack {
            self.end = Some(at);
        }
        let g = self.groups.entry(a.group).or_default();
        g.largest = g.largest.max(a.object);
        if a.status == ObjectStatus::EndOfGroup {
            g.last = Some(a.object);
        }
        if !a.datagram && (g.subgroups.len() < MAX_SUBGROUPS || g.subgroups.contains_key(&a.subgroup)) {
            g.subgroups.entry(a.subgroup).or_insert(SubgroupShape { priority: a.priority, last: None });
        }
        while self.groups.len() > self.max_groups {
            self.groups.pop_first();
        }
    }

    /// A subgroup stream ended with a FIN after `last` (`None`: it carried no object); with the END_OF_GROUP bit
    /// its last object is the group's final one.
    pub(crate) fn subgroup_fin(
        &mut self,
        group: u64,
        subgroup: u64,
        last: Option<u64>,
        end_of_group: bool,
    ) -> Result<(), Malformed> {
        let Some(last) = last else { return Ok(()) };
        let Some(g) = self.groups.get_mut(&group) else { return Ok(()) };
        if let Some(s) = g.subgroups.get_mut(&subgroup) {
            if s.last.is_some_and(|l| l != last) {
                return Err(Malformed::SubgroupEndsDiffer);
            }
            s.last = Some(last);
        }
        if end_of_group {
            if g.last.is_some_and(|l| l != last) || g.largest > last {
                return Err(Malformed::PastGroupEnd);
            }
            g.last = Some(last);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(group: u64, subgroup: u64, object: u64) -> Arrival<'static> {
        static NONE: Properties = Properties::new();
        Arrival {
            group,
            subgroup,
            object,
            priority: 10,
            datagram: false,
            status: ObjectStatus::Normal,
            properties: &NONE,
        }
    }

    #[test]
    fn a_well_formed_track_passes() {
        let mut t = TrackShape::new(8);
        for g in 0..20 {
            for o in 0..3 {
                assert_eq!(t.object(obj(g, 0, o)), Ok(()));
            }
            assert_eq!(t.subgroup_fin(g, 0, Some(2), true), Ok(()));
        }
        // Objects of an older group still arriving on another subgroup are fine.
        assert_eq!(t.object(obj(19, 1, 1)), Ok(()));
        assert!(t.groups.len() <= 8, "memory stays bounded");
    }

    #[test]
    fn the_drafts_conditions_are_caught() {
        let mut t = TrackShape::new(8);
        t.object(obj(0, 0, 0)).unwrap();
        assert_eq!(t.object(Arrival { priority: 11, ..obj(0, 0, 1) }), Err(Malformed::PriorityChanged));
        // A datagram is no part of a subgroup: its priority is its own.
        assert_eq!(t.object(Arrival { datagram: true, priority: 3, ..obj(0, 0, 1) }), Ok(()));
        t.object(obj(0, 0, 1)).unwrap();
        t.subgroup_fin(0, 0, Some(1), false).unwrap();
        assert_eq!(t.object(obj(0, 0, 2)), Err(Malformed::PastSubgroupEnd));
        assert_eq!(t.subgroup_fin(0, 0, Some(3), false), Err(Malformed::SubgroupEndsDiffer));

        t.object(Arrival { status: ObjectStatus::EndOfGroup, ..obj(1, 0, 4) }).unwrap();
        assert_eq!(t.object(obj(1, 1, 5)), Err(Malformed::PastGroupEnd));
        t.object(obj(1, 1, 3)).unwrap();

        t.object(obj(2, 0, 7)).unwrap();
        assert_eq!(
            t.object(Arrival { status: ObjectStatus::EndOfGroup, ..obj(2, 1, 5) }),
            Err(Malformed::PastGroupEnd)
        );
        assert_eq!(t.subgroup_fin(2, 0, Some(6), true), Err(Malformed::PastGroupEnd));

        t.object(Arrival { status: ObjectStatus::EndOfTrack, ..obj(3, 0, 2) }).unwrap();
        assert_eq!(t.object(obj(3, 1, 3)), Err(Malformed::PastTrackEnd));
        assert_eq!(t.object(obj(4, 0, 0)), Err(Malformed::PastTrackEnd));
        t.object(obj(3, 1, 1)).unwrap();

        let mut u = TrackShape::new(8);
        u.object(obj(5, 0, 0)).unwrap();
        assert_eq!(
            u.object(Arrival { status: ObjectStatus::EndOfTrack, ..obj(4, 0, 9) }),
            Err(Malformed::PastTrackEnd)
        );
    }

    #[test]
    fn an_object_with_a_mandatory_track_property_is_malformed() {
        let props = Properties::new().with_int(0x4002, 1).unwrap();
        let mut t = TrackShape::new(8);
        assert_eq!(t.object(Arrival { properties: &props, ..obj(0, 0, 0) }), Err(Malformed::MandatoryProperty));
    }
}
