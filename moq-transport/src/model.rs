//! The media model: a track is a sequence of groups, a group a set of subgroups, a subgroup a sequence of
//! objects.
//!
//! Each level has a producer and any number of consumers. Producers never wait for consumers: every consumer
//! reads at its own pace from shared, immutable state (`tokio::sync::watch`), so one slow consumer cannot slow
//! the producer or the others. Memory is bounded by a window of recent groups per track: when a consumer falls
//! more than the window behind, its next [`TrackConsumer::next_group`] skips to the oldest group still held and
//! [`TrackConsumer::skipped`] counts what it missed.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use moq_wire::kvp::Properties;
use moq_wire::namespace::FullTrackName;
use moq_wire::{GroupId, Location, ObjectId, ObjectStatus, SubgroupId};
use tokio::sync::watch;

/// The default number of groups a track keeps for late joiners, FETCH and slow consumers.
pub const DEFAULT_GROUP_WINDOW: usize = 8;

/// One object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// The object id within its group.
    pub id: ObjectId,
    /// Object Properties (LOC timestamp, etc.).
    pub properties: Properties,
    /// The payload (empty for status objects).
    pub payload: Bytes,
    /// Normal, End of Group or End of Track.
    pub status: ObjectStatus,
}

impl Object {
    /// A normal object.
    pub fn new(id: u64, payload: impl Into<Bytes>) -> Object {
        Object {
            id: ObjectId(id),
            properties: Properties::new(),
            payload: payload.into(),
            status: ObjectStatus::Normal,
        }
    }
}

/// How a subgroup, group or track ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// Every object was delivered (FIN).
    Finished,
    /// Aborted with a stream reset code; later objects of this subgroup will not arrive.
    Reset(u64),
}

/// What a subgroup is: its id, publisher priority, how its objects travel, and what the original publisher said
/// of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubgroupInfo {
    /// The subgroup id (for datagram objects, the object id).
    pub id: SubgroupId,
    /// The publisher priority.
    pub priority: u8,
    /// The objects' forwarding preference: a stream, or one datagram each.
    pub delivery: Delivery,
    /// The subgroup starts with the first object ever published in it (FIRST_OBJECT). Local producers always do;
    /// a relay that joined a subgroup late does not.
    pub first_object: bool,
    /// The subgroup holds the largest object of its group (END_OF_GROUP).
    pub end_of_group: bool,
}

impl SubgroupInfo {
    /// A subgroup delivered on a stream, starting at its first object.
    pub fn new(id: u64, priority: u8) -> SubgroupInfo {
        SubgroupInfo {
            id: SubgroupId(id),
            priority,
            delivery: Delivery::Streams,
            first_object: true,
            end_of_group: false,
        }
    }
}

#[derive(Debug, Default)]
struct SubgroupState {
    objects: Vec<Object>,
    /// When each object was written (for delivery timeouts), parallel to `objects`.
    arrivals: Vec<tokio::time::Instant>,
    closed: Option<Closed>,
}

/// Writes the objects of one subgroup.
#[derive(Debug)]
pub struct SubgroupProducer {
    info: SubgroupInfo,
    state: watch::Sender<SubgroupState>,
    largest: Arc<Mutex<Option<Location>>>,
    group: GroupId,
    /// Payload bytes of this group, and of every group the track still holds.
    bytes: [Arc<AtomicU64>; 2],
}

impl SubgroupProducer {
    /// The subgroup id.
    pub fn id(&self) -> SubgroupId {
        self.info.id
    }

    /// What the subgroup is.
    pub fn info(&self) -> &SubgroupInfo {
        &self.info
    }

    /// Appends an object. Object ids must increase.
    pub fn write(&self, object: Object) -> Result<(), crate::Error> {
        let mut ok = true;
        self.state.send_if_modified(|s| {
            if s.closed.is_some() || s.objects.last().is_some_and(|last| last.id >= object.id) {
                ok = false;
                return false;
            }
            s.objects.push(object.clone());
            s.arrivals.push(tokio::time::Instant::now());
            true
        });
        if !ok {
            return Err(crate::Error::InvalidObject(object.id));
        }
        for b in &self.bytes {
            b.fetch_add(object.payload.len() as u64, Ordering::Relaxed);
        }
        let loc = Location { group: self.group, object: object.id };
        let mut largest = self.largest.lock().unwrap_or_else(|e| e.into_inner());
        if largest.is_none_or(|l| l < loc) {
            *largest = Some(loc);
        }
        Ok(())
    }

    /// Ends the subgroup normally.
    pub fn finish(&self) {
        self.close(Closed::Finished);
    }

    /// Ends the subgroup early with a reset code.
    pub fn abort(&self, code: u64) {
        self.close(Closed::Reset(code));
    }

    fn close(&self, how: Closed) {
        self.state.send_if_modified(|s| {
            if s.closed.is_some() {
                return false;
            }
            s.closed = Some(how);
            true
        });
    }

    /// A consumer from the first object.
    pub fn consume(&self) -> SubgroupConsumer {
        SubgroupConsumer { info: self.info, state: self.state.subscribe(), index: 0 }
    }
}

impl Drop for SubgroupProducer {
    fn drop(&mut self) {
        // Dropping without finishing means the rest will not come.
        self.close(Closed::Reset(0));
    }
}

/// Reads the objects of one subgroup.
#[derive(Debug, Clone)]
pub struct SubgroupConsumer {
    info: SubgroupInfo,
    state: watch::Receiver<SubgroupState>,
    index: usize,
}

impl SubgroupConsumer {
    /// The subgroup id.
    pub fn id(&self) -> SubgroupId {
        self.info.id
    }

    /// The publisher priority of the subgroup.
    pub fn priority(&self) -> u8 {
        self.info.priority
    }

    /// What the subgroup is.
    pub fn info(&self) -> &SubgroupInfo {
        &self.info
    }

    /// The next object, or how the subgroup ended.
    pub async fn next(&mut self) -> Result<Object, Closed> {
        self.next_timed().await.map(|(o, _)| o)
    }

    /// The next object with the time it was written, or how the subgroup ended.
    pub async fn next_timed(&mut self) -> Result<(Object, tokio::time::Instant), Closed> {
        loop {
            {
                let s = self.state.borrow_and_update();
                if let Some(o) = s.objects.get(self.index) {
                    let at = s.arrivals[self.index];
                    self.index += 1;
                    return Ok((o.clone(), at));
                }
                if let Some(c) = s.closed {
                    return Err(c);
                }
            }
            if self.state.changed().await.is_err() {
                // The producer is gone without closing (it always closes on drop; defensive).
                let s = self.state.borrow();
                if let Some(o) = s.objects.get(self.index) {
                    let at = s.arrivals[self.index];
                    self.index += 1;
                    return Ok((o.clone(), at));
                }
                return Err(s.closed.unwrap_or(Closed::Reset(0)));
            }
        }
    }

    /// The objects available now from the current position, without waiting.
    pub fn available(&self) -> Vec<Object> {
        self.state.borrow().objects[self.index..].to_vec()
    }

    /// Whether the subgroup has ended.
    pub fn closed(&self) -> Option<Closed> {
        self.state.borrow().closed
    }
}

#[derive(Debug, Default)]
struct GroupState {
    subgroups: Vec<SubgroupConsumer>,
    closed: bool,
}

/// Creates the subgroups of one group.
#[derive(Debug)]
pub struct GroupProducer {
    id: GroupId,
    /// The track's forwarding preference, for subgroups created with [`GroupProducer::create_subgroup`].
    delivery: Delivery,
    /// Position in the track (arrival order), set when the group is added to its track.
    seq: u64,
    edge: watch::Receiver<TrackEdge>,
    state: watch::Sender<GroupState>,
    largest: Arc<Mutex<Option<Location>>>,
    bytes: Arc<AtomicU64>,
    track_bytes: Arc<AtomicU64>,
}

impl GroupProducer {
    /// The group id.
    pub fn id(&self) -> GroupId {
        self.id
    }

    /// Starts a subgroup with this id and publisher priority, delivered as the track says.
    pub fn create_subgroup(&self, id: u64, priority: u8) -> SubgroupProducer {
        self.create_subgroup_with(SubgroupInfo { delivery: self.delivery, ..SubgroupInfo::new(id, priority) })
    }

    /// Starts a subgroup described by `info`.
    pub fn create_subgroup_with(&self, info: SubgroupInfo) -> SubgroupProducer {
        let producer = SubgroupProducer {
            info,
            state: watch::Sender::new(SubgroupState::default()),
            largest: self.largest.clone(),
            group: self.id,
            bytes: [self.bytes.clone(), self.track_bytes.clone()],
        };
        let consumer = producer.consume();
        self.state.send_modify(|s| s.subgroups.push(consumer));
        producer
    }

    /// No more subgroups will be created.
    pub fn finish(&self) {
        self.state.send_if_modified(|s| !std::mem::replace(&mut s.closed, true));
    }

    /// A consumer from the first subgroup.
    pub fn consume(&self) -> GroupConsumer {
        GroupConsumer {
            id: self.id,
            seq: self.seq,
            edge: self.edge.clone(),
            state: self.state.subscribe(),
            index: 0,
            bytes: self.bytes.clone(),
        }
    }
}

impl Drop for GroupProducer {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Reads the subgroups of one group as they are created.
#[derive(Debug, Clone)]
pub struct GroupConsumer {
    id: GroupId,
    seq: u64,
    edge: watch::Receiver<TrackEdge>,
    state: watch::Receiver<GroupState>,
    index: usize,
    bytes: Arc<AtomicU64>,
}

impl GroupConsumer {
    /// The group id.
    pub fn id(&self) -> GroupId {
        self.id
    }

    /// The next subgroup, for a live reader: `None` when the group is finished, or once a newer group has started
    /// on the track and every subgroup created so far was returned (the reader should move on to the live edge),
    /// or when the group left the track's window.
    pub async fn next_subgroup(&mut self) -> Option<SubgroupConsumer> {
        self.next(true).await
    }

    /// The next subgroup, for forwarding: like [`GroupConsumer::next_subgroup`], but keeps waiting after a newer
    /// group started, so that a subgroup stream arriving late is still delivered. `None` when the group is
    /// finished, leaves the track's window, or the track ends.
    pub async fn next_subgroup_to_end(&mut self) -> Option<SubgroupConsumer> {
        self.next(false).await
    }

    async fn next(&mut self, live: bool) -> Option<SubgroupConsumer> {
        loop {
            {
                let s = self.state.borrow_and_update();
                if let Some(sg) = s.subgroups.get(self.index) {
                    self.index += 1;
                    return Some(sg.clone());
                }
                if s.closed {
                    return None;
                }
            }
            {
                let edge = self.edge.borrow_and_update();
                let superseded = edge.newest.is_some_and(|n| n > self.id.0);
                if edge.ended || edge.oldest_seq > self.seq || (live && superseded) {
                    return None;
                }
            }
            tokio::select! {
                changed = self.state.changed() => if changed.is_err() {
                    let s = self.state.borrow();
                    let sg = s.subgroups.get(self.index).cloned();
                    self.index += sg.is_some() as usize;
                    return sg;
                },
                changed = self.edge.changed() => if changed.is_err() {
                    // The track is gone: no more subgroups can be created for this group.
                    let s = self.state.borrow();
                    let sg = s.subgroups.get(self.index).cloned();
                    self.index += sg.is_some() as usize;
                    return sg;
                },
            }
        }
    }

    /// Every subgroup created so far.
    pub fn subgroups(&self) -> Vec<SubgroupConsumer> {
        self.state.borrow().subgroups.clone()
    }

    /// Whether the group will have no more subgroups.
    pub fn is_finished(&self) -> bool {
        self.state.borrow().closed
    }

    /// Resolves once a newer group has started on the track (or the track is gone).
    pub async fn superseded(&self) {
        let mut edge = self.edge.clone();
        let _ = edge.wait_for(|e| e.ended || e.newest.is_some_and(|n| n > self.id.0)).await;
    }
}

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
struct TrackEdge {
    newest: Option<u64>,
    oldest_seq: u64,
    ended: bool,
}

#[derive(Debug)]
struct TrackState {
    /// Recent groups, oldest first, with their sequence number (position in the track).
    groups: VecDeque<(u64, GroupConsumer)>,
    next_seq: u64,
    ended: Option<TrackEnd>,
}

/// How a track's objects travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Delivery {
    /// A QUIC stream per subgroup (reliable, ordered within the subgroup).
    #[default]
    Streams,
    /// One QUIC datagram per object (unreliable; objects too large for a datagram are dropped).
    Datagrams,
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
    info: Arc<TrackInfo>,
    state: Arc<watch::Sender<TrackState>>,
    edge: Arc<watch::Sender<TrackEdge>>,
    window: usize,
    max_bytes: u64,
    bytes: Arc<AtomicU64>,
    largest: Arc<Mutex<Option<Location>>>,
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
            largest: Arc::new(Mutex::new(None)),
        }
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

    /// The largest location written so far.
    pub fn largest(&self) -> Option<Location> {
        *self.largest.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Raises the largest location to at least `location`: what an upstream says exists (LARGEST_OBJECT in
    /// SUBSCRIBE_OK or PUBLISH) before any of it arrived here.
    pub fn note_largest(&self, location: Location) {
        let mut largest = self.largest.lock().unwrap_or_else(|e| e.into_inner());
        if largest.is_none_or(|l| l < location) {
            *largest = Some(location);
        }
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
    info: Arc<TrackInfo>,
    state: watch::Receiver<TrackState>,
    next_seq: u64,
    skipped: u64,
    largest: Arc<Mutex<Option<Location>>>,
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
        *self.largest.lock().unwrap_or_else(|e| e.into_inner())
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

/// One object of a FETCH response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedObject {
    /// Its location.
    pub location: Location,
    /// Its subgroup (`None` for datagram objects).
    pub subgroup: Option<SubgroupId>,
    /// Publisher priority.
    pub priority: u8,
    /// Object Properties.
    pub properties: Properties,
    /// The payload.
    pub payload: Bytes,
}

/// One entry of a FETCH response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchItem {
    /// An object.
    Object(FetchedObject),
    /// Every location after the previous entry up to `end` (inclusive) does not exist, or (`unknown`) has a
    /// status the sender does not know.
    EndOfRange {
        /// The last location of the range.
        end: Location,
        /// Unknown rather than non-existent.
        unknown: bool,
    },
}

/// A FETCH answered from elsewhere (a relay's upstream), streamed through as it arrives.
#[derive(Debug)]
pub struct FetchSource {
    /// From the source's FETCH_OK.
    pub end_of_track: bool,
    /// From the source's FETCH_OK: the end of the range (exclusive).
    pub end_location: Location,
    /// From the source's FETCH_OK.
    pub track_properties: Properties,
    /// The entries in order. An `Err` means the source failed midway: the response is reset.
    pub items: tokio::sync::mpsc::Receiver<Result<FetchItem, crate::Error>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use moq_wire::namespace::TrackNamespace;

    fn track(window: usize) -> TrackProducer {
        TrackProducer::with_window(TrackInfo::new(FullTrackName::new(TrackNamespace::new(["t"]).unwrap(), "x")), window)
    }

    #[tokio::test]
    async fn consumers_read_at_their_own_pace() {
        let t = track(4);
        let mut fast = t.consume();
        let mut slow = t.consume();
        for g in 0..3u64 {
            t.write_group(g, (0..3).map(|o| Object::new(o, vec![g as u8; 4]))).unwrap();
            let mut group = fast.next_group().await.unwrap();
            assert_eq!(group.id(), GroupId(g));
            let mut sub = group.next_subgroup().await.unwrap();
            for o in 0..3 {
                assert_eq!(sub.next().await.unwrap().id, ObjectId(o));
            }
            assert_eq!(sub.next().await, Err(Closed::Finished));
            assert!(group.next_subgroup().await.is_none());
        }
        // The slow consumer still gets every group, in order.
        for g in 0..3u64 {
            assert_eq!(slow.next_group().await.unwrap().id(), GroupId(g));
        }
        assert_eq!(slow.skipped(), 0);
        assert_eq!(t.largest(), Some(Location::new(2, 2)));
    }

    #[tokio::test]
    async fn a_consumer_that_falls_behind_skips() {
        let t = track(2);
        let mut c = t.consume();
        for g in 0..5u64 {
            t.write_group(g, [Object::new(0, "x")]).unwrap();
        }
        // Only groups 3 and 4 are held: the consumer skips 0..=2 and says so.
        assert_eq!(c.next_group().await.unwrap().id(), GroupId(3));
        assert_eq!(c.skipped(), 3);
        assert_eq!(c.next_group().await.unwrap().id(), GroupId(4));
        t.end(TrackEnd::Ended);
        assert_eq!(c.next_group().await.unwrap_err(), TrackEnd::Ended);
    }

    #[tokio::test]
    async fn byte_limit_drops_old_groups() {
        let t = TrackProducer::with_limits(
            TrackInfo::new(FullTrackName::new(TrackNamespace::new(["t"]).unwrap(), "x")),
            100,
            2_500,
        );
        for g in 0..10u64 {
            t.write_group(g, [Object::new(0, vec![0u8; 1000])]).unwrap();
        }
        // Groups are dropped when a new one starts and the held bytes exceed the limit.
        assert!(t.cached_bytes() <= 3_000, "{}", t.cached_bytes());
        let held: Vec<u64> = t.consume().cached_groups().iter().map(|g| g.id().0).collect();
        assert_eq!(held.last(), Some(&9));
        assert!(held.len() <= 3, "{held:?}");
    }

    #[tokio::test]
    async fn late_joiner_starts_at_latest_group() {
        let t = track(8);
        for g in 0..3u64 {
            t.write_group(g, [Object::new(0, "x")]).unwrap();
        }
        let mut late = t.consume();
        assert_eq!(late.next_group().await.unwrap().id(), GroupId(2));
        assert!(t.create_group(2).is_err(), "a group id is used once");
    }

    #[tokio::test]
    async fn groups_are_accepted_in_any_order_within_the_window() {
        let t = track(3);
        let mut c = t.consume();
        t.write_group(1, [Object::new(0, "b")]).unwrap();
        t.write_group(0, [Object::new(0, "a")]).unwrap(); // raced behind group 1
        // Every group reaches the consumer, in arrival order.
        assert_eq!(c.next_group().await.unwrap().id(), GroupId(1));
        assert_eq!(c.next_group().await.unwrap().id(), GroupId(0));
        assert_eq!(t.largest(), Some(Location::new(1, 0)));
        t.write_group(5, [Object::new(0, "c")]).unwrap();
        // FETCH sees the cache by group id.
        let ids: Vec<u64> = t.consume().cached_groups().iter().map(|g| g.id().0).collect();
        assert_eq!(ids, [0, 1, 5]);
        // The window is full: a group older than all held is too late, a gap inside it is not.
        assert!(t.create_group(0).is_err());
        t.write_group(3, [Object::new(0, "d")]).unwrap();
        assert!(t.create_group(3).is_err(), "a group id is used once");
    }

    #[tokio::test]
    async fn live_readers_move_on_while_forwarders_wait_for_late_subgroups() {
        let t = track(4);
        let g0 = t.create_group(0).unwrap();
        let _s0 = g0.create_subgroup(0, 1);
        let mut live = g0.consume();
        let mut forward = g0.consume();
        let _g1 = t.create_group(1).unwrap();
        assert_eq!(live.next_subgroup().await.unwrap().id(), SubgroupId(0));
        assert_eq!(forward.next_subgroup_to_end().await.unwrap().id(), SubgroupId(0));
        // Group 1 has started: a live reader moves on at once ...
        assert!(live.next_subgroup().await.is_none());
        // ... while a forwarder still gets subgroup 7 of group 0, which arrives late.
        let late = tokio::spawn(async move { forward.next_subgroup_to_end().await.map(|s| s.id()) });
        tokio::task::yield_now().await;
        let _s7 = g0.create_subgroup(7, 1);
        assert_eq!(late.await.unwrap(), Some(SubgroupId(7)));
        // Leaving the window ends the wait.
        let mut forward = g0.consume();
        for g in 2..6u64 {
            t.write_group(g, [Object::new(0, "x")]).unwrap();
        }
        while forward.next_subgroup_to_end().await.is_some() {}
    }

    #[tokio::test]
    async fn a_new_group_with_its_first_subgroup_is_never_seen_empty() {
        let t = track(4);
        t.write_group(1, [Object::new(0, "b")]).unwrap();
        let mut c = t.consume_from_start();
        let mut g = t.new_group(0);
        let _s = g.create_subgroup(0, 1);
        t.insert_group(&mut g).unwrap();
        let _ = c.next_group().await.unwrap();
        // Group 0 is older than group 1, yet a live reader finds its subgroup.
        let mut g0 = c.next_group().await.unwrap();
        assert_eq!(g0.id(), GroupId(0));
        assert!(g0.next_subgroup().await.is_some());
    }

    #[tokio::test]
    async fn objects_must_increase_and_drop_resets() {
        let t = track(2);
        let g = t.create_group(0).unwrap();
        let s = g.create_subgroup(0, 1);
        let mut c = s.consume();
        s.write(Object::new(1, "a")).unwrap();
        assert!(s.write(Object::new(1, "b")).is_err());
        drop(s);
        assert_eq!(c.next().await.unwrap().id, ObjectId(1));
        assert_eq!(c.next().await, Err(Closed::Reset(0)));
    }
}
