//! One group: the subgroups it has so far, and whether more may come.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use moq_wire::GroupId;
use tokio::sync::watch;

use super::subgroup::{SubgroupConsumer, SubgroupInfo, SubgroupProducer, SubgroupState};
use super::track::TrackEdge;
use super::{Delivery, Largest};

#[derive(Debug, Default)]
pub(super) struct GroupState {
    pub(super) subgroups: Vec<SubgroupConsumer>,
    pub(super) closed: bool,
}

/// Creates the subgroups of one group.
#[derive(Debug)]
pub struct GroupProducer {
    pub(super) id: GroupId,
    /// The track's forwarding preference, for subgroups created with [`GroupProducer::create_subgroup`].
    pub(super) delivery: Delivery,
    /// Position in the track (arrival order), set when the group is added to its track.
    pub(super) seq: u64,
    pub(super) edge: watch::Receiver<TrackEdge>,
    pub(super) state: watch::Sender<GroupState>,
    pub(super) largest: Largest,
    pub(super) bytes: Arc<AtomicU64>,
    pub(super) track_bytes: Arc<AtomicU64>,
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
    pub(super) id: GroupId,
    pub(super) seq: u64,
    pub(super) edge: watch::Receiver<TrackEdge>,
    pub(super) state: watch::Receiver<GroupState>,
    pub(super) index: usize,
    pub(super) bytes: Arc<AtomicU64>,
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

    /// Whether a newer group has started on the track.
    pub fn is_superseded(&self) -> bool {
        self.edge.borrow().newest.is_some_and(|n| n > self.id.0)
    }

    /// Resolves once a newer group has started on the track (or the track is gone).
    pub async fn superseded(&self) {
        let mut edge = self.edge.clone();
        let _ = edge.wait_for(|e| e.ended || e.newest.is_some_and(|n| n > self.id.0)).await;
    }
}
