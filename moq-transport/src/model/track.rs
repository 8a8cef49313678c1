//! One track: a window of recent groups in arrival order, how it ended, and what group readers see of it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use moq_wire::kvp::Properties;
use moq_wire::namespace::FullTrackName;
use moq_wire::{GroupId, Location};
use tokio::sync::watch;

use super::group::{GroupConsumer, GroupProducer, GroupState};
use super::{DEFAULT_GROUP_WINDOW, Delivery, Largest, Object};

/// How a track ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackEnd {
    /// The publisher ended the track (PUBLISH_DONE TRACK_ENDED, or the origin stopped publishing).
    Ended,
    /// The subscription or session ended with this PUBLISH_DONE status / error code.
    Error(u64),
}

/// What group readers need to know of their track: its newest group id, the oldest position still held, and
/// whether it ended.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct TrackEdge {
    pub(super) newest: Option<u64>,
    pub(super) oldest_seq: u64,
    pub(super) ended: bool,
}

#[derive(Debug)]
pub(super) struct TrackState {
    /// Recent groups, oldest first, with their sequence number (position in the track).
    pub(super) groups: VecDeque<(u64, GroupConsumer)>,
    pub(super) next_seq: u64,
    pub(super) ended: Option<TrackEnd>,
}

/// Static facts about a track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackInfo {
    /// The full track name.
    pub name: FullTrackName,
    /// The default publisher priority (Track Property DEFAULT_PUBLISHER_PRIORITY); 128 if unset.
    pub priority: u8,
    /// Track Properties to announce in SUBSCRIBE_OK / PUBLISH (e.g. OBJECT_DELIVERY_TIMEOUT 0x02,
    /// SUBGROUP_DELIVERY_TIMEOUT 0x06).
    pub properties: Properties,
    /// Streams or datagrams.
    pub delivery: Delivery,
}

impl TrackInfo {
    /// A track with default priority, no properties, delivered on streams.
    pub fn new(name: FullTrackName) -> TrackInfo {
        TrackInfo { name, priority: 128, properties: Properties::new(), delivery: Delivery::Streams }
    }
}

/// Creates the groups of one track.
#[derive(Debug, Clone)]
pub struct TrackProducer {
    pub(super) info: Arc<TrackInfo>,
    pub(super) state: Arc<watch::Sender<TrackState>>,
    pub(super) edge: Arc<watch::Sender<TrackEdge>>,
    pub(super) window: usize,
    pub(super) max_bytes: u64,
    pub(super) bytes: Arc<AtomicU64>,
    pub(super) largest: Largest,
    pub(super) new_group_requests: Arc<watch::Sender<NewGroupRequest>>,
}

/// Subscribers' requests for a new group (NEW_GROUP_REQUEST), as the publisher of a track sees them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NewGroupRequest {
    /// Requests so far; a change means a new one.
    pub count: u64,
    /// The last request's value: the largest group the subscriber knew of plus one, or 0 if it knew none.
    pub value: u64,
}

impl TrackProducer {
    /// A new track keeping [`DEFAULT_GROUP_WINDOW`] groups.
    pub fn new(info: TrackInfo) -> TrackProducer {
        TrackProducer::with_window(info, DEFAULT_GROUP_WINDOW)
    }

    /// A new track keeping at most `window` recent groups (at least 1).
    pub fn with_window(info: TrackInfo, window: usize) -> TrackProducer {
        TrackProducer::with_limits(info, window, u64::MAX)
    }

    /// A new track keeping at most `window` recent groups and, beyond the newest group, at most `max_bytes` of
    /// payload: older groups are dropped when a new group starts and either limit is exceeded.
    pub fn with_limits(info: TrackInfo, window: usize, max_bytes: u64) -> TrackProducer {
        let state = TrackState { groups: VecDeque::new(), next_seq: 0, ended: None };
        TrackProducer {
            info: Arc::new(info),
            state: Arc::new(watch::Sender::new(state)),
            edge: Arc::new(watch::Sender::new(TrackEdge::default())),
            window: window.max(1),
            max_bytes,
            bytes: Arc::default(),
            largest: Arc::new(watch::Sender::new(None)),
            new_group_requests: Arc::new(watch::Sender::new(NewGroupRequest::default())),
        }
    }

    /// Whether subscribers may ask for new groups: the DYNAMIC_GROUPS Track Property is 1.
    pub fn dynamic_groups(&self) -> bool {
        self.info.properties.get_int(moq_wire::kvp::property::DYNAMIC_GROUPS) == Some(1)
    }

    /// Records a subscriber's NEW_GROUP_REQUEST (ignored unless the track has dynamic groups): the track's
    /// publisher sees it in [`TrackProducer::new_group_requests`] and should start a new group soon.
    pub fn request_new_group(&self, value: u64) {
        if !self.dynamic_groups() {
            return;
        }
        self.new_group_requests.send_modify(|r| {
            r.count += 1;
            r.value = value;
        });
    }

    /// Follows subscribers' requests for a new group.
    pub fn new_group_requests(&self) -> watch::Receiver<NewGroupRequest> {
        self.new_group_requests.subscribe()
    }

    /// Payload bytes of the groups the track holds.
    pub fn cached_bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// The track's description.
    pub fn info(&self) -> &TrackInfo {
        &self.info
    }

    /// Starts a new group and adds it to the track. Groups may arrive in any order (QUIC streams race): any id
    /// not held yet is accepted, except one older than every group held when the window is full.
    pub fn create_group(&self, id: u64) -> Result<GroupProducer, crate::Error> {
        let mut group = self.new_group(id);
        self.insert_group(&mut group)?;
        Ok(group)
    }

    /// A group not yet visible to consumers: give it its first subgroup, then [`TrackProducer::insert_group`], so
    /// that no reader sees it empty.
    pub fn new_group(&self, id: u64) -> GroupProducer {
        GroupProducer {
            id: GroupId(id),
            delivery: self.info.delivery,
            seq: 0,
            edge: self.edge.subscribe(),
            state: watch::Sender::new(GroupState::default()),
            largest: self.largest.clone(),
            bytes: Arc::default(),
            track_bytes: self.bytes.clone(),
        }
    }

    /// Adds a group made with [`TrackProducer::new_group`] to the track.
    pub fn insert_group(&self, group: &mut GroupProducer) -> Result<(), crate::Error> {
        let id = group.id.0;
        let mut ok = true;
        let mut oldest_seq = 0;
        self.state.send_if_modified(|s| {
            let held = |g: &GroupConsumer| g.id.0 == id;
            let full = s.groups.len() >= self.window;
            let older_than_all = s.groups.iter().all(|(_, g)| g.id.0 > id);
            if s.ended.is_some()
                || s.groups.iter().any(|(_, g)| held(g))
                || (full && older_than_all && !s.groups.is_empty())
            {
                ok = false;
                return false;
            }
            group.seq = s.next_seq;
            s.next_seq += 1;
            s.groups.push_back((group.seq, group.consume()));
            while s.groups.len() > self.window
                || (s.groups.len() > 1 && self.bytes.load(Ordering::Relaxed) > self.max_bytes)
            {
                if let Some((_, old)) = s.groups.pop_front() {
                    self.bytes.fetch_sub(old.bytes.load(Ordering::Relaxed), Ordering::Relaxed);
                }
            }
            oldest_seq = s.groups.front().map(|(seq, _)| *seq).unwrap_or(s.next_seq);
            true
        });
        if !ok {
            return Err(crate::Error::InvalidGroup(GroupId(id)));
        }
        self.edge.send_modify(|e| {
            e.newest = Some(e.newest.map_or(id, |n| n.max(id)));
            e.oldest_seq = oldest_seq;
        });
        Ok(())
    }

    /// Appends a group with one subgroup (id 0) holding `objects`, and finishes it.
    pub fn write_group(&self, id: u64, objects: impl IntoIterator<Item = Object>) -> Result<(), crate::Error> {
        let group = self.create_group(id)?;
        let sub = group.create_subgroup(0, self.info.priority);
        for o in objects {
            sub.write(o)?;
        }
        sub.finish();
        group.finish();
        Ok(())
    }

    /// Ends the track.
    pub fn end(&self, how: TrackEnd) {
        self.state.send_if_modified(|s| {
            if s.ended.is_some() {
                return false;
            }
            s.ended = Some(how);
            true
        });
        self.edge.send_if_modified(|e| !std::mem::replace(&mut e.ended, true));
    }

    /// How the track ended, if it has (without making a consumer).
    pub fn ended(&self) -> Option<TrackEnd> {
        self.state.borrow().ended
    }

    /// The largest location written so far.
    pub fn largest(&self) -> Option<Location> {
        *self.largest.borrow()
    }

    /// Raises the largest location to at least `location`: what an upstream says exists (LARGEST_OBJECT in
    /// SUBSCRIBE_OK or PUBLISH) before any of it arrived here.
    pub fn note_largest(&self, location: Location) {
        self.largest.send_if_modified(|largest| {
            let raise = largest.is_none_or(|l| l < location);
            if raise {
                *largest = Some(location);
            }
            raise
        });
    }

    /// How many track consumers exist now (each served subscription holds one).
    pub fn consumer_count(&self) -> usize {
        self.state.receiver_count()
    }

    /// A consumer starting at the latest group (the live edge).
    pub fn consume(&self) -> TrackConsumer {
        let rx = self.state.subscribe();
        let start = {
            let s = rx.borrow();
            s.groups.back().map(|(seq, _)| *seq).unwrap_or(s.next_seq)
        };
        TrackConsumer { info: self.info.clone(), state: rx, next_seq: start, skipped: 0, largest: self.largest.clone() }
    }

    /// A consumer starting at the oldest group still held.
    pub fn consume_from_start(&self) -> TrackConsumer {
        let rx = self.state.subscribe();
        let start = rx.borrow().groups.front().map(|(seq, _)| *seq).unwrap_or(0);
        TrackConsumer { info: self.info.clone(), state: rx, next_seq: start, skipped: 0, largest: self.largest.clone() }
    }

    /// Whether `other` is a handle to this same track.
    pub fn is_same(&self, other: &TrackProducer) -> bool {
        Arc::ptr_eq(&self.state, &other.state)
    }

    /// Whether any consumer is still attached.
    pub fn has_consumers(&self) -> bool {
        self.state.receiver_count() > 0
    }
}

/// Reads the groups of one track.
#[derive(Debug, Clone)]
pub struct TrackConsumer {
    pub(super) info: Arc<TrackInfo>,
    pub(super) state: watch::Receiver<TrackState>,
    pub(super) next_seq: u64,
    pub(super) skipped: u64,
    pub(super) largest: Largest,
}

impl TrackConsumer {
    /// The track's description.
    pub fn info(&self) -> &TrackInfo {
        &self.info
    }

    /// The next group in order, skipping groups that fell out of the window; `Err` when the track ended.
    pub async fn next_group(&mut self) -> Result<GroupConsumer, TrackEnd> {
        loop {
            {
                let s = self.state.borrow_and_update();
                if let Some((first, _)) = s.groups.front()
                    && *first > self.next_seq
                {
                    self.skipped += first - self.next_seq;
                    self.next_seq = *first;
                }
                if let Some((seq, g)) = s.groups.iter().find(|(seq, _)| *seq == self.next_seq) {
                    self.next_seq = seq + 1;
                    return Ok(g.clone());
                }
                if let Some(end) = s.ended {
                    return Err(end);
                }
            }
            if self.state.changed().await.is_err() {
                return Err(self.state.borrow().ended.unwrap_or(TrackEnd::Ended));
            }
        }
    }

    /// Skips to the newest group: the next [`TrackConsumer::next_group`] returns it (or a later one).
    pub fn skip_to_latest(&mut self) {
        let s = self.state.borrow();
        if let Some((seq, _)) = s.groups.back()
            && *seq > self.next_seq
        {
            self.skipped += seq - self.next_seq;
            self.next_seq = *seq;
        }
    }

    /// How many groups this consumer skipped because it fell behind.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// The largest location published on the track so far.
    pub fn largest(&self) -> Option<Location> {
        *self.largest.borrow()
    }

    /// Wakes on every object written to the track (and every raise of [`TrackConsumer::largest`]).
    pub(crate) fn written(&self) -> watch::Receiver<Option<Location>> {
        self.largest.subscribe()
    }

    /// The groups still held, by ascending group id (for FETCH and joining).
    pub fn cached_groups(&self) -> Vec<GroupConsumer> {
        let mut groups: Vec<GroupConsumer> = self.state.borrow().groups.iter().map(|(_, g)| g.clone()).collect();
        groups.sort_by_key(|g| g.id);
        groups
    }

    /// Whether the track has ended, and how.
    pub fn ended(&self) -> Option<TrackEnd> {
        self.state.borrow().ended
    }

    /// Waits until the track ends.
    pub async fn closed(&mut self) -> TrackEnd {
        loop {
            if let Some(e) = self.state.borrow_and_update().ended {
                return e;
            }
            if self.state.changed().await.is_err() {
                return TrackEnd::Ended;
            }
        }
    }
}
