//! The media model: a track is a sequence of groups, a group a set of subgroups, a subgroup a sequence of
//! objects.
//!
//! Each level has a producer and any number of consumers. Producers never wait for consumers: every consumer
//! reads at its own pace from shared, immutable state (`tokio::sync::watch`), so one slow consumer cannot slow
//! the producer or the others. Memory is bounded by a window of recent groups per track: when a consumer falls
//! more than the window behind, its next [`TrackConsumer::next_group`] skips to the oldest group still held and
//! [`TrackConsumer::skipped`] counts what it missed.
//!
//! Files: `subgroup` (objects of one subgroup), `group` (subgroups of one group), `track` (groups of one track, the
//! cache window), `fetch` (what a FETCH answer carries).

use bytes::Bytes;
use moq_wire::kvp::Properties;
use moq_wire::{ObjectId, ObjectStatus};

mod fetch;
mod group;
mod subgroup;
#[cfg(test)]
mod tests;
mod track;

pub use fetch::*;
pub use group::*;
pub use subgroup::*;
pub use track::*;

/// The default number of groups a track keeps for late joiners, FETCH and slow consumers.
pub const DEFAULT_GROUP_WINDOW: usize = 8;

/// A track's largest location, shared by its producers; its watch also wakes on every object written.
type Largest = std::sync::Arc<tokio::sync::watch::Sender<Option<moq_wire::Location>>>;

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

/// How a track's objects travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Delivery {
    /// A QUIC stream per subgroup (reliable, ordered within the subgroup).
    #[default]
    Streams,
    /// One QUIC datagram per object (unreliable; objects too large for a datagram are dropped).
    Datagrams,
}
