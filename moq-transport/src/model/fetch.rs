//! What a FETCH answer carries, from a cache or from upstream.

use bytes::Bytes;
use moq_wire::kvp::Properties;
use moq_wire::{Location, SubgroupId};

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
