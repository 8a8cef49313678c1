//! FETCH_HEADER streams (draft-18/19 §10.4.4): the objects of a FETCH, with their serialization flags.

use bytes::{Buf, BufMut, BytesMut};

use super::{FETCH_STREAM_TYPE, payload_len};
use crate::coding::{Decode, Encode, get_u8, get_vi, put_vi};
use crate::ids::{GroupId, GroupOrder, Location, ObjectId, RequestId, SubgroupId};
use crate::kvp::Properties;
use crate::{DecodeError, EncodeError, Version};

const SUBGROUP_MODE: u64 = 0x03;
const OBJECT_ID: u64 = 0x04;
const GROUP_ID: u64 = 0x08;
const PRIORITY: u64 = 0x10;
const PROPERTIES: u64 = 0x20;
const DATAGRAM: u64 = 0x40;

/// Serialization Flags of an "End of Non-Existent Range" entry.
pub const END_OF_NON_EXISTENT_RANGE: u64 = 0x8C;
/// Serialization Flags of an "End of Unknown Range" entry.
pub const END_OF_UNKNOWN_RANGE: u64 = 0x10C;

/// The FETCH_HEADER: which FETCH this stream answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FetchHeader {
    /// The Request ID of the FETCH.
    pub request_id: RequestId,
}

impl FetchHeader {
    pub(crate) fn decode_after_type<B: Buf>(buf: &mut B, v: Version) -> Result<Self, DecodeError> {
        Ok(FetchHeader { request_id: RequestId::decode(buf, v)? })
    }
}

impl Decode for FetchHeader {
    fn decode<B: Buf>(buf: &mut B, v: Version) -> Result<Self, DecodeError> {
        let ty = get_vi(buf, v)?;
        if ty != FETCH_STREAM_TYPE {
            return Err(DecodeError::UnknownType { kind: "fetch header", value: ty });
        }
        FetchHeader::decode_after_type(buf, v)
    }
}

impl Encode for FetchHeader {
    fn encode<B: BufMut>(&self, buf: &mut B, v: Version) -> Result<(), EncodeError> {
        put_vi(buf, v, FETCH_STREAM_TYPE)?;
        self.request_id.encode(buf, v)
    }
}

/// One object of a FETCH response (without its payload; `payload_len` bytes follow).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FetchObject {
    /// The group.
    pub group_id: GroupId,
    /// The subgroup, or `None` for an object with the Datagram forwarding preference.
    pub subgroup_id: Option<SubgroupId>,
    /// The object.
    pub object_id: ObjectId,
    /// The Publisher Priority.
    pub publisher_priority: u8,
    /// Object Properties.
    pub properties: Properties,
    /// The payload length (FETCH has no Object Status: a zero length is an empty Normal object).
    pub payload_len: usize,
}

impl FetchObject {
    /// The object's location.
    pub fn location(&self) -> Location {
        Location { group: self.group_id, object: self.object_id }
    }
}

/// An End of Range entry: every location after the previous entry up to and including `end` does not exist
/// (`unknown == false`) or has an unknown status (`unknown == true`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EndOfRange {
    /// Unknown (0x10C) rather than non-existent (0x8C).
    pub unknown: bool,
    /// The last location of the range, inclusive.
    pub end: Location,
}

/// One entry of a fetch stream.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FetchEntry {
    /// An object; its payload follows.
    Object(FetchObject),
    /// A range with no objects.
    EndOfRange(EndOfRange),
}

#[derive(Debug, Clone, Copy, Default)]
struct Prior {
    /// Group and object of the previous entry (object or end of range).
    location: Option<(u64, u64)>,
    /// Subgroup of the last real object (`None` if it had none or there was none).
    subgroup: Option<u64>,
    /// Priority of the last real object.
    priority: Option<u8>,
}

/// Decodes the entries of a fetch stream after its header.
///
/// The group order of the FETCH decides the sign of group deltas, so the reader must be told it.
#[derive(Debug, Clone)]
pub struct FetchReader {
    order: GroupOrder,
    version: Version,
    prior: Prior,
    end_of_range_payload_len: bool,
}

impl FetchReader {
    /// A reader for a FETCH with this group order (Ascending when the FETCH did not say).
    pub fn new(order: GroupOrder, version: Version) -> FetchReader {
        FetchReader { order, version, prior: Prior::default(), end_of_range_payload_len: false }
    }

    /// Expect a zero Object Payload Length after the Group and Object IDs of End of Range entries.
    ///
    /// The draft lists only the two IDs; some draft-18 peers also write a payload length. Default: off.
    pub fn with_end_of_range_payload_len(mut self, present: bool) -> FetchReader {
        self.end_of_range_payload_len = present;
        self
    }

    /// Decodes the next entry from the front of `data` without consuming it, returning the entry and its header
    /// length. State advances only on success.
    pub fn decode_entry(&mut self, data: &[u8]) -> Result<(FetchEntry, usize), DecodeError> {
        let v = self.version;
        let mut cursor = data;
        let buf = &mut cursor;
        let flags = get_vi(buf, v)?;
        let prior = self.prior;

        if flags == END_OF_NON_EXISTENT_RANGE || flags == END_OF_UNKNOWN_RANGE {
            // The draft names "the Group ID and Object ID fields"; they are read as absolute values (a delta form
            // could not express a range ending in the prior object's group).
            let group = get_vi(buf, v)?;
            let object = get_vi(buf, v)?;
            if self.end_of_range_payload_len && get_vi(buf, v)? != 0 {
                return Err(DecodeError::Malformed("payload on an end of range"));
            }
            self.prior.location = Some((group, object));
            let end = Location::new(group, object);
            return Ok((
                FetchEntry::EndOfRange(EndOfRange { unknown: flags == END_OF_UNKNOWN_RANGE, end }),
                data.len() - cursor.len(),
            ));
        }
        //= draft-ietf-moq-transport-19#fetch-header
        //# Any other value is a `PROTOCOL_VIOLATION`.
        if flags >= 128 {
            return Err(DecodeError::InvalidValue { field: "serialization flags", value: flags });
        }

        let group_changed = flags & GROUP_ID != 0;
        let group = match (group_changed, prior.location) {
            (true, None) => get_vi(buf, v)?,
            (true, Some((g, _))) => {
                let step = get_vi(buf, v)?.checked_add(1).ok_or(DecodeError::Overflow("group id"))?;
                match self.order {
                    GroupOrder::Ascending => g.checked_add(step),
                    GroupOrder::Descending => g.checked_sub(step),
                }
                .ok_or(DecodeError::Overflow("group id"))?
            }
            (false, Some((g, _))) => g,
            //# If the first Object in the FETCH response uses a flag that references fields in the prior
            //# Object, the Subscriber MUST close the session with a `PROTOCOL_VIOLATION`.
            (false, None) => {
                return Err(DecodeError::Malformed("first fetch object without a group id"));
            }
        };
        let subgroup = if flags & DATAGRAM != 0 {
            None
        } else {
            Some(match flags & SUBGROUP_MODE {
                0 => 0,
                1 => prior.subgroup.ok_or(DecodeError::Malformed("no prior subgroup"))?,
                2 => prior
                    .subgroup
                    .ok_or(DecodeError::Malformed("no prior subgroup"))?
                    .checked_add(1)
                    .ok_or(DecodeError::Overflow("subgroup id"))?,
                _ => get_vi(buf, v)?,
            })
        };
        let object = if flags & OBJECT_ID != 0 {
            let delta = get_vi(buf, v)?;
            match prior.location {
                Some((_, o)) if !group_changed => o.checked_add(delta).ok_or(DecodeError::Overflow("object id"))?,
                _ => delta,
            }
        } else {
            match prior.location {
                Some((_, o)) => o.checked_add(1).ok_or(DecodeError::Overflow("object id"))?,
                None => {
                    return Err(DecodeError::Malformed("first fetch object without an object id"));
                }
            }
        };
        let priority = if flags & PRIORITY != 0 {
            get_u8(buf)?
        } else {
            prior.priority.ok_or(DecodeError::Malformed("no prior priority"))?
        };
        let properties = if flags & PROPERTIES != 0 { Properties::decode_block(buf, v)? } else { Properties::new() };
        let payload_len = payload_len(get_vi(buf, v)?)?;

        self.prior = Prior { location: Some((group, object)), subgroup, priority: Some(priority) };
        let object = FetchObject {
            group_id: GroupId(group),
            subgroup_id: subgroup.map(SubgroupId),
            object_id: ObjectId(object),
            publisher_priority: priority,
            properties,
            payload_len,
        };
        Ok((FetchEntry::Object(object), data.len() - cursor.len()))
    }

    /// Reads a whole entry, with the payload of an object (split off without copying), consuming `buf` only on
    /// success.
    pub fn read_entry(&mut self, buf: &mut BytesMut) -> Result<(FetchEntry, bytes::Bytes), DecodeError> {
        let saved = self.prior;
        let (entry, used) = self.decode_entry(&buf[..])?;
        let len = match &entry {
            FetchEntry::Object(o) => o.payload_len,
            FetchEntry::EndOfRange(_) => 0,
        };
        if buf.len() - used < len {
            self.prior = saved;
            return Err(DecodeError::Short { needed: len - (buf.len() - used) });
        }
        buf.advance(used);
        Ok((entry, buf.split_to(len).freeze()))
    }
}

/// Encodes the entries of a fetch stream, choosing the most compact serialization flags.
#[derive(Debug, Clone)]
pub struct FetchWriter {
    order: GroupOrder,
    version: Version,
    prior: Prior,
}

impl FetchWriter {
    /// A writer for a FETCH with this group order.
    pub fn new(order: GroupOrder, version: Version) -> FetchWriter {
        FetchWriter { order, version, prior: Prior::default() }
    }

    /// Writes an object header; the caller writes `payload_len` payload bytes after it.
    pub fn write_object<B: BufMut>(&mut self, buf: &mut B, o: &FetchObject) -> Result<(), EncodeError> {
        let v = self.version;
        let (g, ob) = (o.group_id.0, o.object_id.0);
        let mut flags = 0u64;
        let mut group_delta = None;
        let mut object_delta = None;
        match self.prior.location {
            None => {
                flags |= GROUP_ID | OBJECT_ID;
                group_delta = Some(g);
                object_delta = Some(ob);
            }
            Some((pg, po)) => {
                if g != pg {
                    let step = match self.order {
                        GroupOrder::Ascending if g > pg => g - pg,
                        GroupOrder::Descending if g < pg => pg - g,
                        _ => {
                            return Err(EncodeError::InvalidValue { field: "group against the fetch order", value: g });
                        }
                    };
                    flags |= GROUP_ID;
                    group_delta = Some(step - 1);
                    if ob != po.wrapping_add(1) {
                        flags |= OBJECT_ID;
                        object_delta = Some(ob);
                    }
                } else if ob != po.wrapping_add(1) {
                    if ob < po {
                        return Err(EncodeError::InvalidValue { field: "decreasing object id", value: ob });
                    }
                    flags |= OBJECT_ID;
                    object_delta = Some(ob - po);
                }
            }
        }
        let mut explicit_subgroup = None;
        match o.subgroup_id {
            None => flags |= DATAGRAM,
            Some(SubgroupId(0)) => {}
            Some(SubgroupId(s)) => match self.prior.subgroup {
                Some(p) if p == s && self.prior.location.is_some() => flags |= 1,
                Some(p) if p.checked_add(1) == Some(s) && self.prior.location.is_some() => flags |= 2,
                _ => {
                    flags |= 3;
                    explicit_subgroup = Some(s);
                }
            },
        }
        if self.prior.priority != Some(o.publisher_priority) {
            flags |= PRIORITY;
        }
        if !o.properties.is_empty() {
            flags |= PROPERTIES;
        }
        put_vi(buf, v, flags)?;
        if let Some(d) = group_delta {
            put_vi(buf, v, d)?;
        }
        if let Some(s) = explicit_subgroup {
            put_vi(buf, v, s)?;
        }
        if let Some(d) = object_delta {
            put_vi(buf, v, d)?;
        }
        if flags & PRIORITY != 0 {
            buf.put_u8(o.publisher_priority);
        }
        if flags & PROPERTIES != 0 {
            o.properties.encode_block(buf, v)?;
        }
        put_vi(buf, v, o.payload_len as u64)?;
        self.prior = Prior {
            location: Some((g, ob)),
            subgroup: o.subgroup_id.map(|s| s.0),
            priority: Some(o.publisher_priority),
        };
        Ok(())
    }

    /// Writes an End of Range entry.
    pub fn write_end_of_range<B: BufMut>(&mut self, buf: &mut B, r: &EndOfRange) -> Result<(), EncodeError> {
        let v = self.version;
        put_vi(buf, v, if r.unknown { END_OF_UNKNOWN_RANGE } else { END_OF_NON_EXISTENT_RANGE })?;
        r.end.encode(buf, v)?;
        self.prior.location = Some((r.end.group.0, r.end.object.0));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: Version = Version::Draft19;

    fn obj(g: u64, s: Option<u64>, o: u64, p: u8, len: usize) -> FetchObject {
        FetchObject {
            group_id: GroupId(g),
            subgroup_id: s.map(SubgroupId),
            object_id: ObjectId(o),
            publisher_priority: p,
            properties: Properties::new(),
            payload_len: len,
        }
    }

    #[test]
    fn derived_vector_ascending() {
        // FETCH_HEADER request 0; object 5/0 subgroup 0 priority 128 "hi"; 5/1 "yo"; 6/0 "z".
        let bytes = [
            0x05, 0x00, 0x1c, 0x05, 0x00, 0x80, 0x02, b'h', b'i', 0x00, 0x02, b'y', b'o', 0x0c, 0x00, 0x00, 0x01, b'z',
        ];
        let mut buf = BytesMut::from(&bytes[..]);
        assert_eq!(FetchHeader::decode_from(&mut buf, V), Ok(FetchHeader { request_id: RequestId(0) }));
        let mut r = FetchReader::new(GroupOrder::Ascending, V);
        let mut got = Vec::new();
        while !buf.is_empty() {
            let (e, payload) = r.read_entry(&mut buf).unwrap();
            got.push((e, payload));
        }
        let expect = [obj(5, Some(0), 0, 128, 2), obj(5, Some(0), 1, 128, 2), obj(6, Some(0), 0, 128, 1)];
        for ((e, _), o) in got.iter().zip(&expect) {
            assert_eq!(e, &FetchEntry::Object(o.clone()));
        }
        assert_eq!(&got[2].1[..], b"z");

        let mut w = FetchWriter::new(GroupOrder::Ascending, V);
        let mut out = Vec::new();
        FetchHeader { request_id: RequestId(0) }.encode(&mut out, V).unwrap();
        for (o, p) in expect.iter().zip([&b"hi"[..], b"yo", b"z"]) {
            w.write_object(&mut out, o).unwrap();
            out.extend_from_slice(p);
        }
        assert_eq!(out, bytes);
    }

    #[test]
    fn descending_and_ranges() {
        let mut w = FetchWriter::new(GroupOrder::Descending, V);
        let mut out = Vec::new();
        let entries = [
            FetchEntry::Object(obj(9, Some(2), 4, 7, 0)),
            FetchEntry::Object(obj(9, Some(3), 5, 7, 0)),
            FetchEntry::EndOfRange(EndOfRange { unknown: true, end: Location::new(8, 3) }),
            FetchEntry::Object(obj(8, None, 4, 9, 0)),
            FetchEntry::Object(obj(6, Some(3), 0, 9, 0)),
        ];
        for e in &entries {
            match e {
                FetchEntry::Object(o) => w.write_object(&mut out, o).unwrap(),
                FetchEntry::EndOfRange(r) => w.write_end_of_range(&mut out, r).unwrap(),
            }
        }
        assert!(
            w.write_object(&mut Vec::new(), &obj(7, Some(0), 0, 0, 0)).is_err(),
            "ascending step in a descending fetch"
        );
        let mut r = FetchReader::new(GroupOrder::Descending, V);
        let mut data = &out[..];
        for e in &entries {
            let (got, used) = r.decode_entry(data).unwrap();
            assert_eq!(&got, e);
            data = &data[used..];
        }
        assert!(data.is_empty());
    }

    #[test]
    fn first_object_rules() {
        let mut r = FetchReader::new(GroupOrder::Ascending, V);
        // Missing group id on the first object.
        assert!(r.decode_entry(&[0x14, 0x00, 0x80, 0x00]).is_err());
        // Missing priority on the first object.
        assert!(r.decode_entry(&[0x0c, 0x00, 0x00, 0x00]).is_err());
        // Prior subgroup on the first object.
        assert!(r.decode_entry(&[0x1d, 0x00, 0x00, 0x80, 0x00]).is_err());
        // Flags >= 128 other than the two markers.
        assert!(matches!(r.decode_entry(&[0x80, 0x80]), Err(DecodeError::InvalidValue { .. })));
        // Group below zero in descending order.
        let mut d = FetchReader::new(GroupOrder::Descending, V);
        d.decode_entry(&[0x1c, 0x00, 0x00, 0x80, 0x00]).unwrap();
        assert_eq!(d.decode_entry(&[0x08, 0x00, 0x00]), Err(DecodeError::Overflow("group id")));
    }
}
