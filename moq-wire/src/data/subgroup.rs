//! SUBGROUP_HEADER streams (draft-18/19 §10.4.2) and the objects in them.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::payload_len;
use crate::coding::{Decode, Encode, get_u8, get_vi, put_vi, vi_len};
use crate::ids::{GroupId, ObjectId, ObjectStatus, SubgroupId, TrackAlias};
use crate::kvp::Properties;
use crate::{DecodeError, EncodeError, Version};

const PROPERTIES: u8 = 0x01;
const SUBGROUP_ID_MASK: u8 = 0x06;
const END_OF_GROUP: u8 = 0x08;
const FORM: u8 = 0x10;
const DEFAULT_PRIORITY: u8 = 0x20;
const FIRST_OBJECT: u8 = 0x40;

/// How a subgroup stream states its Subgroup ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubgroupIdMode {
    /// Mode 0b00: the Subgroup ID is 0 and not sent.
    Zero,
    /// Mode 0b01: the Subgroup ID is the Object ID of the first object in the subgroup, not sent.
    FirstObjectId,
    /// Mode 0b10: the Subgroup ID is sent in the header.
    Explicit(SubgroupId),
}

/// A SUBGROUP_HEADER: the start of a stream carrying one subgroup's objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubgroupHeader {
    /// The track.
    pub track_alias: TrackAlias,
    /// The group.
    pub group_id: GroupId,
    /// The subgroup, or how to derive it.
    pub subgroup: SubgroupIdMode,
    /// The Publisher Priority; `None` sets DEFAULT_PRIORITY (the subscription's default applies).
    pub publisher_priority: Option<u8>,
    /// Every object carries an Object Properties block (PROPERTIES bit).
    pub has_properties: bool,
    /// This subgroup holds the largest object of the group: a FIN ends the group (END_OF_GROUP bit).
    pub end_of_group: bool,
    /// The first object on the stream is the first object of the subgroup (FIRST_OBJECT bit, draft-18+).
    pub first_object: bool,
}

impl SubgroupHeader {
    /// Whether `ty` is a SUBGROUP_HEADER type: `0b0XX1XXXX` with a Subgroup ID mode other than 0b11.
    pub const fn is_valid_type(ty: u64) -> bool {
        ty < 0x80 && (ty as u8) & FORM != 0 && (ty as u8) & SUBGROUP_ID_MASK != SUBGROUP_ID_MASK
    }

    /// The stream type byte these fields produce.
    pub fn stream_type(&self) -> u8 {
        let mut t = FORM;
        if self.has_properties {
            t |= PROPERTIES;
        }
        t |= match self.subgroup {
            SubgroupIdMode::Zero => 0b00 << 1,
            SubgroupIdMode::FirstObjectId => 0b01 << 1,
            SubgroupIdMode::Explicit(_) => 0b10 << 1,
        };
        if self.end_of_group {
            t |= END_OF_GROUP;
        }
        if self.publisher_priority.is_none() {
            t |= DEFAULT_PRIORITY;
        }
        if self.first_object {
            t |= FIRST_OBJECT;
        }
        t
    }

    /// The Subgroup ID, given the first object's id for [`SubgroupIdMode::FirstObjectId`].
    pub fn subgroup_id(&self, first_object: ObjectId) -> SubgroupId {
        match self.subgroup {
            SubgroupIdMode::Zero => SubgroupId(0),
            SubgroupIdMode::FirstObjectId => SubgroupId(first_object.0),
            SubgroupIdMode::Explicit(id) => id,
        }
    }

    pub(crate) fn decode_after_type<B: Buf>(ty: u8, buf: &mut B, v: Version) -> Result<Self, DecodeError> {
        //= draft-ietf-moq-transport-19#subgroup-header
        //# The following Type values are invalid. If an endpoint receives a stream header with any of these
        //# Type values, it MUST close the session with a `PROTOCOL_VIOLATION`
        if !SubgroupHeader::is_valid_type(ty as u64) {
            return Err(DecodeError::UnknownType { kind: "subgroup header", value: ty as u64 });
        }
        let track_alias = TrackAlias::decode(buf, v)?;
        let group_id = GroupId::decode(buf, v)?;
        let subgroup = match (ty & SUBGROUP_ID_MASK) >> 1 {
            0b00 => SubgroupIdMode::Zero,
            0b01 => SubgroupIdMode::FirstObjectId,
            _ => SubgroupIdMode::Explicit(SubgroupId::decode(buf, v)?),
        };
        let publisher_priority = if ty & DEFAULT_PRIORITY == 0 { Some(get_u8(buf)?) } else { None };
        Ok(SubgroupHeader {
            track_alias,
            group_id,
            subgroup,
            publisher_priority,
            has_properties: ty & PROPERTIES != 0,
            end_of_group: ty & END_OF_GROUP != 0,
            first_object: ty & FIRST_OBJECT != 0,
        })
    }
}

impl Decode for SubgroupHeader {
    fn decode<B: Buf>(buf: &mut B, v: Version) -> Result<Self, DecodeError> {
        let ty = get_vi(buf, v)?;
        if !SubgroupHeader::is_valid_type(ty) {
            return Err(DecodeError::UnknownType { kind: "subgroup header", value: ty });
        }
        SubgroupHeader::decode_after_type(ty as u8, buf, v)
    }
}

impl Encode for SubgroupHeader {
    fn encode<B: BufMut>(&self, buf: &mut B, v: Version) -> Result<(), EncodeError> {
        put_vi(buf, v, self.stream_type() as u64)?;
        self.track_alias.encode(buf, v)?;
        self.group_id.encode(buf, v)?;
        if let SubgroupIdMode::Explicit(id) = self.subgroup {
            id.encode(buf, v)?;
        }
        if let Some(p) = self.publisher_priority {
            buf.put_u8(p);
        }
        Ok(())
    }
}

/// The header of one object on a subgroup stream; `payload_len` payload bytes follow it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectHeader {
    /// The object id (absolute; the wire carries a delta).
    pub object_id: ObjectId,
    /// The Object Properties (empty if none, or if the stream has no PROPERTIES bit).
    pub properties: Properties,
    /// The payload length.
    pub payload_len: usize,
    /// The status: always Normal when `payload_len > 0`.
    pub status: ObjectStatus,
}

/// An object with its payload.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Object {
    /// The header.
    pub header: ObjectHeader,
    /// The payload, shared with the receive buffer.
    pub payload: Bytes,
}

/// Decodes the objects of one subgroup stream, after its header.
#[derive(Debug, Clone)]
pub struct SubgroupReader {
    header: SubgroupHeader,
    version: Version,
    prev: Option<ObjectId>,
    ended: bool,
}

impl SubgroupReader {
    /// A reader for a stream with this header.
    pub fn new(header: SubgroupHeader, version: Version) -> SubgroupReader {
        SubgroupReader { header, version, prev: None, ended: false }
    }

    /// The stream header.
    pub fn header(&self) -> &SubgroupHeader {
        &self.header
    }

    /// The Subgroup ID, known once the first object has been read in [`SubgroupIdMode::FirstObjectId`] mode.
    pub fn subgroup_id(&self) -> Option<SubgroupId> {
        match self.header.subgroup {
            SubgroupIdMode::FirstObjectId => None,
            _ => Some(self.header.subgroup_id(ObjectId(0))),
        }
    }

    /// Decodes the next object header from the front of `data` without consuming it, returning the header and its
    /// length. The reader's state only advances on success. The caller then consumes `len + payload_len` bytes.
    pub fn decode_header(&mut self, data: &[u8]) -> Result<(ObjectHeader, usize), DecodeError> {
        let v = self.version;
        let mut cursor = data;
        let buf = &mut cursor;
        let delta = get_vi(buf, v)?;
        //= draft-ietf-moq-transport-19#subgroup-header
        //# If the resulting Object ID would be greater than 2^64 - 1, the endpoint MUST close the session with a
        //# `PROTOCOL_VIOLATION`.
        let object_id = match self.prev {
            None => delta,
            Some(prev) => {
                prev.0.checked_add(delta).and_then(|x| x.checked_add(1)).ok_or(DecodeError::Overflow("object id"))?
            }
        };
        let properties = if self.header.has_properties { Properties::decode_block(buf, v)? } else { Properties::new() };
        let payload_len = payload_len(get_vi(buf, v)?)?;
        let status = if payload_len == 0 {
            //# Any other value SHOULD be treated as a protocol error and the session SHOULD be closed with a
            //# `PROTOCOL_VIOLATION`.
            ObjectStatus::try_from(get_vi(buf, v)?)?
        } else {
            ObjectStatus::Normal
        };
        if status != ObjectStatus::Normal && !properties.is_empty() {
            return Err(DecodeError::Malformed("properties on an object that is not Normal"));
        }
        if self.ended {
            return Err(DecodeError::Malformed("object after the end of the group or track"));
        }
        self.prev = Some(ObjectId(object_id));
        if status != ObjectStatus::Normal {
            self.ended = true;
        }
        if let SubgroupIdMode::FirstObjectId = self.header.subgroup {
            // Resolve the mode now that the first id is known, so later calls can report it.
            self.header.subgroup = SubgroupIdMode::Explicit(SubgroupId(object_id));
        }
        Ok((
            ObjectHeader { object_id: ObjectId(object_id), properties, payload_len, status },
            data.len() - cursor.len(),
        ))
    }

    /// Reads a whole object (header and payload) from the front of `buf`, consuming it only on success. The
    /// payload is split off without copying.
    pub fn read_object(&mut self, buf: &mut BytesMut) -> Result<Object, DecodeError> {
        let saved = (self.prev, self.ended, self.header);
        let (header, used) = self.decode_header(&buf[..])?;
        let have = buf.len() - used;
        if have < header.payload_len {
            (self.prev, self.ended, self.header) = saved;
            return Err(DecodeError::Short { needed: header.payload_len - have });
        }
        buf.advance(used);
        let payload = buf.split_to(header.payload_len).freeze();
        Ok(Object { header, payload })
    }
}

/// Encodes the objects of one subgroup stream, computing the id deltas.
#[derive(Debug, Clone)]
pub struct SubgroupWriter {
    header: SubgroupHeader,
    version: Version,
    prev: Option<ObjectId>,
}

impl SubgroupWriter {
    /// A writer for a stream with this header.
    pub fn new(header: SubgroupHeader, version: Version) -> SubgroupWriter {
        SubgroupWriter { header, version, prev: None }
    }

    /// Writes the stream header.
    pub fn write_header<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        self.header.encode(buf, self.version)
    }

    /// The number of bytes [`SubgroupWriter::write_object_header`] would write, without writing them.
    pub fn object_header_len(&self, header: &ObjectHeader) -> usize {
        let v = self.version;
        let delta = match self.prev {
            None => header.object_id.0,
            Some(p) => header.object_id.0.wrapping_sub(p.0).wrapping_sub(1),
        };
        let mut n = vi_len(v, delta) + vi_len(v, header.payload_len as u64);
        if self.header.has_properties {
            let p = header.properties.encoded_len(v);
            n += vi_len(v, p as u64) + p;
        }
        if header.payload_len == 0 {
            n += vi_len(v, header.status.to_u64());
        }
        n
    }

    /// Writes an object header; the caller writes `payload_len` payload bytes after it. Object ids must increase.
    pub fn write_object_header<B: BufMut>(&mut self, buf: &mut B, header: &ObjectHeader) -> Result<(), EncodeError> {
        let v = self.version;
        let delta = match self.prev {
            None => header.object_id.0,
            Some(p) if header.object_id > p => header.object_id.0 - p.0 - 1,
            Some(_) => {
                return Err(EncodeError::InvalidValue { field: "non-increasing object id", value: header.object_id.0 });
            }
        };
        if header.payload_len > 0 && header.status != ObjectStatus::Normal {
            return Err(EncodeError::InvalidValue { field: "payload with a status", value: header.status.to_u64() });
        }
        if !header.properties.is_empty() && (!self.header.has_properties || header.status != ObjectStatus::Normal) {
            return Err(EncodeError::InvalidValue { field: "properties not allowed", value: header.object_id.0 });
        }
        put_vi(buf, v, delta)?;
        if self.header.has_properties {
            header.properties.encode_block(buf, v)?;
        }
        put_vi(buf, v, header.payload_len as u64)?;
        if header.payload_len == 0 {
            put_vi(buf, v, header.status.to_u64())?;
        }
        self.prev = Some(header.object_id);
        Ok(())
    }

    /// Writes a normal object with its payload.
    pub fn write_object<B: BufMut>(
        &mut self,
        buf: &mut B,
        object_id: ObjectId,
        properties: Properties,
        payload: &[u8],
    ) -> Result<(), EncodeError> {
        let header = ObjectHeader { object_id, properties, payload_len: payload.len(), status: ObjectStatus::Normal };
        self.write_object_header(buf, &header)?;
        buf.put_slice(payload);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: Version = Version::Draft19;

    #[test]
    fn every_type_is_classified() {
        let valid: Vec<u64> = (0..=0xffu64).filter(|&t| SubgroupHeader::is_valid_type(t)).collect();
        assert_eq!(valid.len(), 48);
        for t in [0x16u64, 0x17, 0x1e, 0x1f, 0x36, 0x7f, 0x0f, 0x80, 0x90] {
            assert!(!SubgroupHeader::is_valid_type(t), "{t:#x}");
        }
        for t in valid {
            let mut bytes = vec![t as u8, 0x01, 0x02];
            if (t as u8) & SUBGROUP_ID_MASK == 0b100 {
                bytes.push(0x03);
            }
            if (t as u8) & DEFAULT_PRIORITY == 0 {
                bytes.push(0x80);
            }
            let (h, used) = SubgroupHeader::decode_prefix(&bytes, V).unwrap();
            assert_eq!(used, bytes.len());
            assert_eq!(h.stream_type() as u64, t);
            assert_eq!(h.encode_to_vec(V).unwrap(), bytes);
        }
    }

    #[test]
    fn object_ids_are_deltas() {
        let header = SubgroupHeader {
            track_alias: TrackAlias(1),
            group_id: GroupId(0),
            subgroup: SubgroupIdMode::FirstObjectId,
            publisher_priority: Some(5),
            has_properties: false,
            end_of_group: false,
            first_object: true,
        };
        let mut w = SubgroupWriter::new(header, V);
        let mut out = BytesMut::new();
        w.write_header(&mut out).unwrap();
        w.write_object(&mut out, ObjectId(7), Properties::new(), b"a").unwrap();
        w.write_object(&mut out, ObjectId(8), Properties::new(), b"b").unwrap();
        w.write_object(&mut out, ObjectId(11), Properties::new(), b"c").unwrap();
        assert!(w.write_object(&mut out, ObjectId(11), Properties::new(), b"d").is_err());
        // 0x52 = FORM | FIRST_OBJECT | mode 01; then deltas 7, 0, 2.
        assert_eq!(&out[..], [0x52, 0x01, 0x00, 0x05, 0x07, 0x01, b'a', 0x00, 0x01, b'b', 0x02, 0x01, b'c']);
        let h = SubgroupHeader::decode_from(&mut out, V).unwrap();
        let mut r = SubgroupReader::new(h, V);
        assert_eq!(r.subgroup_id(), None);
        let ids: Vec<u64> = (0..3).map(|_| r.read_object(&mut out).unwrap().header.object_id.0).collect();
        assert_eq!(ids, [7, 8, 11]);
        assert_eq!(r.subgroup_id(), Some(SubgroupId(7)));
        assert!(out.is_empty());
    }

    #[test]
    fn status_rules() {
        let header = SubgroupHeader {
            track_alias: TrackAlias(1),
            group_id: GroupId(0),
            subgroup: SubgroupIdMode::Zero,
            publisher_priority: None,
            has_properties: true,
            end_of_group: false,
            first_object: false,
        };
        // Status 1 (removed in -16) is refused.
        let mut r = SubgroupReader::new(header, V);
        assert!(matches!(r.decode_header(&[0x00, 0x00, 0x00, 0x01]), Err(DecodeError::InvalidValue { .. })));
        // Properties on an End of Group object are refused.
        let mut r = SubgroupReader::new(header, V);
        assert!(matches!(r.decode_header(&[0x00, 0x02, 0x10, 0x01, 0x00, 0x03]), Err(DecodeError::Malformed(_))));
        // End of Group, then nothing more may follow.
        let mut r = SubgroupReader::new(header, V);
        let (h, used) = r.decode_header(&[0x00, 0x00, 0x00, 0x03]).unwrap();
        assert_eq!((h.status, used), (ObjectStatus::EndOfGroup, 4));
        assert!(r.decode_header(&[0x00, 0x00, 0x01, b'x']).is_err());
    }

    #[test]
    fn short_payload_keeps_state() {
        let header = SubgroupHeader {
            track_alias: TrackAlias(1),
            group_id: GroupId(0),
            subgroup: SubgroupIdMode::Zero,
            publisher_priority: Some(0),
            has_properties: false,
            end_of_group: false,
            first_object: false,
        };
        let mut r = SubgroupReader::new(header, V);
        let mut buf = BytesMut::from(&[0x00, 0x04, b'a', b'b'][..]);
        assert_eq!(r.read_object(&mut buf), Err(DecodeError::Short { needed: 2 }));
        assert_eq!(buf.len(), 4);
        buf.extend_from_slice(b"cd");
        let o = r.read_object(&mut buf).unwrap();
        assert_eq!((o.header.object_id, &o.payload[..]), (ObjectId(0), &b"abcd"[..]));
    }
}
