//! Newtype identifiers and small value types shared by control messages and data streams.

use std::fmt;

use bytes::{Buf, BufMut};

use crate::coding::{Decode, Encode, get_vi, put_vi};
use crate::{DecodeError, EncodeError, Version};

macro_rules! id_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub u64);

        impl $name {
            /// The raw value.
            pub const fn get(self) -> u64 {
                self.0
            }
        }

        impl From<u64> for $name {
            fn from(v: u64) -> Self {
                $name(v)
            }
        }

        impl From<$name> for u64 {
            fn from(v: $name) -> u64 {
                v.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl Decode for $name {
            #[inline]
            fn decode<B: Buf>(buf: &mut B, v: Version) -> Result<Self, DecodeError> {
                get_vi(buf, v).map($name)
            }
        }

        impl Encode for $name {
            #[inline]
            fn encode<B: BufMut>(&self, buf: &mut B, v: Version) -> Result<(), EncodeError> {
                put_vi(buf, v, self.0)
            }
        }
    };
}

id_newtype!(
    /// Identifies a request within a session. Clients use even ids from 0, servers odd ids from 1, each request
    /// taking the next id of its parity.
    RequestId
);
id_newtype!(
    /// The publisher-chosen number that stands for a track in data streams and datagrams.
    TrackAlias
);
id_newtype!(
    /// A group within a track.
    GroupId
);
id_newtype!(
    /// A subgroup within a group.
    SubgroupId
);
id_newtype!(
    /// An object within a group.
    ObjectId
);

impl RequestId {
    /// The next id of the same parity.
    pub const fn next(self) -> RequestId {
        RequestId(self.0 + 2)
    }

    /// Whether a client (even) sent this id.
    pub const fn is_client(self) -> bool {
        self.0.is_multiple_of(2)
    }
}

/// A position in a track: a group and an object within it. Ordered by group, then object.
///
/// On the wire a Location is two bare varints, with no length prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Location {
    /// The group.
    pub group: GroupId,
    /// The object within the group.
    pub object: ObjectId,
}

impl Location {
    /// A location from raw numbers.
    pub const fn new(group: u64, object: u64) -> Location {
        Location { group: GroupId(group), object: ObjectId(object) }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.group, self.object)
    }
}

impl Decode for Location {
    fn decode<B: Buf>(buf: &mut B, v: Version) -> Result<Self, DecodeError> {
        let group = GroupId::decode(buf, v)?;
        let object = ObjectId::decode(buf, v)?;
        Ok(Location { group, object })
    }
}

impl Encode for Location {
    fn encode<B: BufMut>(&self, buf: &mut B, v: Version) -> Result<(), EncodeError> {
        self.group.encode(buf, v)?;
        self.object.encode(buf, v)
    }
}

/// The order in which groups are delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum GroupOrder {
    /// Lowest group first (0x1). The default for FETCH and for publishers that state none.
    #[default]
    Ascending,
    /// Highest group first (0x2).
    Descending,
}

impl GroupOrder {
    /// The wire value.
    pub const fn to_u8(self) -> u8 {
        match self {
            GroupOrder::Ascending => 1,
            GroupOrder::Descending => 2,
        }
    }
}

impl TryFrom<u64> for GroupOrder {
    type Error = DecodeError;
    fn try_from(value: u64) -> Result<Self, DecodeError> {
        match value {
            1 => Ok(GroupOrder::Ascending),
            2 => Ok(GroupOrder::Descending),
            _ => Err(DecodeError::InvalidValue { field: "group order", value }),
        }
    }
}

/// The status of an object delivered in a subscription (never in FETCH).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ObjectStatus {
    /// A normal object (0x0): implicit when the payload is not empty.
    #[default]
    Normal,
    /// No object with this or a larger id exists in the group (0x3).
    EndOfGroup,
    /// No object at this or a later location exists in the track (0x4).
    EndOfTrack,
}

impl ObjectStatus {
    /// The wire value.
    pub const fn to_u64(self) -> u64 {
        match self {
            ObjectStatus::Normal => 0x0,
            ObjectStatus::EndOfGroup => 0x3,
            ObjectStatus::EndOfTrack => 0x4,
        }
    }
}

impl TryFrom<u64> for ObjectStatus {
    type Error = DecodeError;
    fn try_from(value: u64) -> Result<Self, DecodeError> {
        match value {
            0x0 => Ok(ObjectStatus::Normal),
            0x3 => Ok(ObjectStatus::EndOfGroup),
            0x4 => Ok(ObjectStatus::EndOfTrack),
            _ => Err(DecodeError::InvalidValue { field: "object status", value }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_order_and_bytes() {
        assert!(Location::new(1, 9) < Location::new(2, 0));
        assert!(Location::new(2, 0) < Location::new(2, 1));
        let v = Version::Draft19;
        let bytes = Location::new(5, 200).encode_to_vec(v).unwrap();
        // Two bare varints: 05, then 200 = 0x80c8 in the two-byte form.
        assert_eq!(bytes, [0x05, 0x80, 0xc8]);
        assert_eq!(Location::decode_prefix(&bytes, v), Ok((Location::new(5, 200), 3)));
    }

    #[test]
    fn request_id_parity() {
        assert!(RequestId(0).is_client());
        assert!(!RequestId(1).is_client());
        assert_eq!(RequestId(3).next(), RequestId(5));
    }

    #[test]
    fn enums_reject_unknown() {
        assert!(GroupOrder::try_from(0).is_err());
        assert!(GroupOrder::try_from(3).is_err());
        assert!(ObjectStatus::try_from(1).is_err());
        for s in [ObjectStatus::Normal, ObjectStatus::EndOfGroup, ObjectStatus::EndOfTrack] {
            assert_eq!(ObjectStatus::try_from(s.to_u64()), Ok(s));
        }
    }
}
