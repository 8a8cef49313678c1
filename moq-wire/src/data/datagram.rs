//! OBJECT_DATAGRAM (draft-18/19 §10.3.1) and padding datagrams.

use bytes::{BufMut, Bytes};

use crate::coding::{Decode, Encode, get_u8, get_vi, put_vi};
use crate::ids::{GroupId, ObjectId, ObjectStatus, TrackAlias};
use crate::kvp::Properties;
use crate::{DecodeError, EncodeError, Version};

const PROPERTIES: u64 = 0x01;
const END_OF_GROUP: u64 = 0x02;
const ZERO_OBJECT_ID: u64 = 0x04;
const DEFAULT_PRIORITY: u64 = 0x08;
const STATUS: u64 = 0x20;

/// The type of a padding datagram.
pub const PADDING_DATAGRAM_TYPE: u64 = 0x132B_3E29;

/// What follows the header of an OBJECT_DATAGRAM.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DatagramContent {
    /// A payload (the rest of the datagram).
    Payload(Bytes),
    /// An Object Status instead of a payload.
    Status(ObjectStatus),
}

/// One object in one datagram.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectDatagram {
    /// The track.
    pub track_alias: TrackAlias,
    /// The group.
    pub group_id: GroupId,
    /// The object (sent with the ZERO_OBJECT_ID form when 0).
    pub object_id: ObjectId,
    /// The Publisher Priority; `None` sets DEFAULT_PRIORITY.
    pub publisher_priority: Option<u8>,
    /// Object Properties; sent only when not empty (an empty block is not allowed in a datagram).
    pub properties: Properties,
    /// No object with a larger id exists in this group (END_OF_GROUP; not allowed with a status).
    pub end_of_group: bool,
    /// Payload or status.
    pub content: DatagramContent,
}

impl ObjectDatagram {
    /// Whether `ty` is an OBJECT_DATAGRAM type: `0b00X0XXXX`, and not STATUS together with END_OF_GROUP.
    pub const fn is_valid_type(ty: u64) -> bool {
        ty & !0x2f == 0 && !(ty & STATUS != 0 && ty & END_OF_GROUP != 0)
    }

    /// The datagram type these fields produce.
    pub fn datagram_type(&self) -> u64 {
        let mut t = 0;
        if !self.properties.is_empty() {
            t |= PROPERTIES;
        }
        if self.end_of_group {
            t |= END_OF_GROUP;
        }
        if self.object_id.0 == 0 {
            t |= ZERO_OBJECT_ID;
        }
        if self.publisher_priority.is_none() {
            t |= DEFAULT_PRIORITY;
        }
        if matches!(self.content, DatagramContent::Status(_)) {
            t |= STATUS;
        }
        t
    }

    fn decode_after_type(ty: u64, data: &Bytes, cursor: &mut &[u8], v: Version) -> Result<Self, DecodeError> {
        //= draft-ietf-moq-transport-19#object-datagram
        //# The following Type values are invalid. If an endpoint receives a datagram with any of these Type
        //# values, it MUST close the session with a `PROTOCOL_VIOLATION`
        if !ObjectDatagram::is_valid_type(ty) {
            return Err(DecodeError::UnknownType { kind: "datagram", value: ty });
        }
        let track_alias = TrackAlias::decode(cursor, v)?;
        let group_id = GroupId::decode(cursor, v)?;
        let object_id = if ty & ZERO_OBJECT_ID != 0 { ObjectId(0) } else { ObjectId::decode(cursor, v)? };
        let publisher_priority = if ty & DEFAULT_PRIORITY == 0 { Some(get_u8(cursor)?) } else { None };
        let properties = if ty & PROPERTIES != 0 {
            let p = Properties::decode_block(cursor, v)?;
            if p.is_empty() {
                return Err(DecodeError::Malformed("empty properties in a datagram with the PROPERTIES bit"));
            }
            p
        } else {
            Properties::new()
        };
        let content = if ty & STATUS != 0 {
            let status = ObjectStatus::try_from(get_vi(cursor, v)?)?;
            if status != ObjectStatus::Normal && !properties.is_empty() {
                return Err(DecodeError::Malformed("properties on an object that is not Normal"));
            }
            if !cursor.is_empty() {
                return Err(DecodeError::TrailingBytes { what: "status datagram", bytes: cursor.len() });
            }
            DatagramContent::Status(status)
        } else {
            // Zero-copy: the payload shares the datagram's buffer.
            DatagramContent::Payload(data.slice(data.len() - cursor.len()..))
        };
        Ok(ObjectDatagram {
            track_alias,
            group_id,
            object_id,
            publisher_priority,
            properties,
            end_of_group: ty & END_OF_GROUP != 0,
            content,
        })
    }

    /// Writes the datagram.
    pub fn encode<B: BufMut>(&self, buf: &mut B, v: Version) -> Result<(), EncodeError> {
        let ty = self.datagram_type();
        if !ObjectDatagram::is_valid_type(ty) {
            return Err(EncodeError::InvalidValue { field: "END_OF_GROUP with a status", value: ty });
        }
        if let DatagramContent::Status(s) = self.content
            && s != ObjectStatus::Normal
            && !self.properties.is_empty()
        {
            return Err(EncodeError::InvalidValue { field: "properties with a status", value: s.to_u64() });
        }
        put_vi(buf, v, ty)?;
        self.track_alias.encode(buf, v)?;
        self.group_id.encode(buf, v)?;
        if self.object_id.0 != 0 {
            self.object_id.encode(buf, v)?;
        }
        if let Some(p) = self.publisher_priority {
            buf.put_u8(p);
        }
        if !self.properties.is_empty() {
            self.properties.encode_block(buf, v)?;
        }
        match &self.content {
            DatagramContent::Status(s) => put_vi(buf, v, s.to_u64()),
            DatagramContent::Payload(p) => {
                buf.put_slice(p);
                Ok(())
            }
        }
    }

    /// Encodes into a new vector.
    pub fn encode_to_vec(&self, v: Version) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        self.encode(&mut out, v)?;
        Ok(out)
    }
}

/// Any datagram of a MoQT session.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Datagram {
    /// OBJECT_DATAGRAM.
    Object(ObjectDatagram),
    /// A padding datagram, to be discarded.
    Padding,
}

impl Datagram {
    /// Decodes one whole datagram. The payload is a slice of `data`, not a copy.
    ///
    /// A datagram that ends inside its header reports [`DecodeError::Short`], though on the wire a datagram is
    /// never continued: the session treats that as malformed.
    pub fn decode(data: &Bytes, v: Version) -> Result<Datagram, DecodeError> {
        let mut cursor = &data[..];
        let ty = get_vi(&mut cursor, v)?;
        if ty == PADDING_DATAGRAM_TYPE {
            return Ok(Datagram::Padding);
        }
        ObjectDatagram::decode_after_type(ty, data, &mut cursor, v).map(Datagram::Object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: Version = Version::Draft19;

    #[test]
    fn valid_types() {
        let valid: Vec<u64> = (0..0x40).filter(|&t| ObjectDatagram::is_valid_type(t)).collect();
        assert_eq!(valid.len(), 24);
        for t in [0x10u64, 0x22, 0x23, 0x2e, 0x2f, 0x30, 0x40] {
            assert!(!ObjectDatagram::is_valid_type(t), "{t:#x}");
        }
    }

    #[test]
    fn empty_properties_refused() {
        let bytes = Bytes::from_static(&[0x01, 0x02, 0x05, 0x03, 0x80, 0x00, b'x']);
        assert!(matches!(Datagram::decode(&bytes, V), Err(DecodeError::Malformed(_))));
    }

    #[test]
    fn padding() {
        let bytes = Bytes::from_static(&[0xf0, 0x13, 0x2b, 0x3e, 0x29, 0, 0, 0]);
        assert_eq!(Datagram::decode(&bytes, V), Ok(Datagram::Padding));
    }

    #[test]
    fn payload_is_not_copied() {
        let bytes = Bytes::from_static(&[0x00, 0x02, 0x05, 0x03, 0x80, b'x', b'y', b'z']);
        let Ok(Datagram::Object(d)) = Datagram::decode(&bytes, V) else { panic!("decode") };
        let DatagramContent::Payload(p) = &d.content else { panic!("payload") };
        assert_eq!(p.as_ptr(), bytes[5..].as_ptr());
    }
}
