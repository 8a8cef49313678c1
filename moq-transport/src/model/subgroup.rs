//! One subgroup: objects in id order, written once, read by any number of consumers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use moq_wire::{GroupId, Location, ObjectId, SubgroupId};
use tokio::sync::watch;

use super::{Closed, Delivery, Largest, Object};

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
pub(super) struct SubgroupState {
    pub(super) objects: Vec<Object>,
    /// When each object was written (for delivery timeouts), parallel to `objects`.
    pub(super) arrivals: Vec<tokio::time::Instant>,
    pub(super) closed: Option<Closed>,
    /// When it was closed (the FIN, or the upstream FIN it was copied from, for SUBGROUP_DELIVERY_TIMEOUT).
    pub(super) closed_at: Option<tokio::time::Instant>,
}

/// Writes the objects of one subgroup.
#[derive(Debug)]
pub struct SubgroupProducer {
    pub(super) info: SubgroupInfo,
    pub(super) state: watch::Sender<SubgroupState>,
    pub(super) largest: Largest,
    pub(super) group: GroupId,
    /// Payload bytes of this group, and of every group the track still holds.
    pub(super) bytes: [Arc<AtomicU64>; 2],
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
        let (id, len) = (object.id, object.payload.len() as u64);
        let accepted = self.state.send_if_modified(|s| {
            if s.closed.is_some() || s.objects.last().is_some_and(|last| last.id >= id) {
                return false;
            }
            s.objects.push(object);
            s.arrivals.push(tokio::time::Instant::now());
            true
        });
        if !accepted {
            return Err(crate::Error::InvalidObject(id));
        }
        for b in &self.bytes {
            b.fetch_add(len, Ordering::Relaxed);
        }
        let loc = Location { group: self.group, object: id };
        // Every write notifies (a FETCH may wait for an object below the largest).
        self.largest.send_modify(|largest| {
            if largest.is_none_or(|l| l < loc) {
                *largest = Some(loc);
            }
        });
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
            s.closed_at = Some(tokio::time::Instant::now());
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
    pub(super) info: SubgroupInfo,
    pub(super) state: watch::Receiver<SubgroupState>,
    pub(super) index: usize,
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

    /// The id of the subgroup's first object held, if any arrived yet.
    pub fn first_id(&self) -> Option<ObjectId> {
        self.state.borrow().objects.first().map(|o| o.id)
    }

    /// The id of the last object written so far, without copying any.
    pub fn last_id(&self) -> Option<ObjectId> {
        self.state.borrow().objects.last().map(|o| o.id)
    }

    /// When the subgroup was finished or reset, if it has been.
    pub fn closed_at(&self) -> Option<tokio::time::Instant> {
        self.state.borrow().closed_at
    }

    /// As [`SubgroupConsumer::available`], with the time each object was written.
    pub fn available_timed(&self) -> Vec<(Object, tokio::time::Instant)> {
        let s = self.state.borrow();
        let from = self.index.min(s.objects.len());
        s.objects[from..].iter().cloned().zip(s.arrivals[from..].iter().copied()).collect()
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
