//! Key-Value-Pairs (draft-18/19 §1.4.3): the encoding of Setup Options, Track Properties and Object Properties.
//!
//! Types are delta-encoded in ascending order. An even type carries one varint; an odd type carries a length
//! (at most 65535) and that many bytes. A sequence of pairs is always bounded by a length known from the
//! context, so unknown types can be skipped.

use bytes::{Buf, BufMut, Bytes};

use crate::coding::{Decode, Encode, decode_bounded, get_bytes, get_len, get_vi, put_len_bytes, put_vi};
use crate::{DecodeError, EncodeError, Version};

/// The largest value of an odd-typed pair.
pub const MAX_KVP_VALUE_LEN: usize = u16::MAX as usize;

/// The value of a Key-Value-Pair. Its shape follows the parity of the type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value {
    /// The value of an even type: a varint.
    Int(u64),
    /// The value of an odd type: up to 65535 bytes.
    Bytes(Bytes),
}

/// One Key-Value-Pair with its absolute type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyValuePair {
    /// The absolute type.
    pub key: u64,
    /// The value; [`Value::Int`] if `key` is even, [`Value::Bytes`] if odd.
    pub value: Value,
}

impl KeyValuePair {
    /// A pair with an even type and a varint value.
    pub fn int(key: u64, value: u64) -> Result<KeyValuePair, EncodeError> {
        if !key.is_multiple_of(2) {
            return Err(EncodeError::InvalidValue { field: "even key-value type", value: key });
        }
        Ok(KeyValuePair { key, value: Value::Int(value) })
    }

    /// A pair with an odd type and a byte value.
    pub fn bytes(key: u64, value: impl Into<Bytes>) -> Result<KeyValuePair, EncodeError> {
        let value = value.into();
        if key % 2 != 1 {
            return Err(EncodeError::InvalidValue { field: "odd key-value type", value: key });
        }
        if value.len() > MAX_KVP_VALUE_LEN {
            return Err(EncodeError::TooLong { field: "key-value value", len: value.len(), max: MAX_KVP_VALUE_LEN });
        }
        Ok(KeyValuePair { key, value: Value::Bytes(value) })
    }
}

/// An ordered list of Key-Value-Pairs, as carried by Track Properties, Object Properties and Setup Options.
///
/// Pairs are kept in ascending type order (the wire order); a type may repeat.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Properties {
    pairs: Vec<KeyValuePair>,
}

impl Properties {
    /// No properties.
    pub const fn new() -> Properties {
        Properties { pairs: Vec::new() }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The number of pairs.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// The pairs in wire order.
    pub fn iter(&self) -> impl Iterator<Item = &KeyValuePair> {
        self.pairs.iter()
    }

    /// Adds a pair after any others of the same or lower type.
    pub fn push(&mut self, pair: KeyValuePair) {
        let at = self.pairs.partition_point(|p| p.key <= pair.key);
        self.pairs.insert(at, pair);
    }

    /// Adds an even-typed pair.
    pub fn with_int(mut self, key: u64, value: u64) -> Result<Properties, EncodeError> {
        self.push(KeyValuePair::int(key, value)?);
        Ok(self)
    }

    /// Adds an odd-typed pair.
    pub fn with_bytes(mut self, key: u64, value: impl Into<Bytes>) -> Result<Properties, EncodeError> {
        self.push(KeyValuePair::bytes(key, value)?);
        Ok(self)
    }

    /// The first varint value of type `key`.
    pub fn get_int(&self, key: u64) -> Option<u64> {
        self.pairs.iter().find(|p| p.key == key).and_then(|p| match p.value {
            Value::Int(v) => Some(v),
            Value::Bytes(_) => None,
        })
    }

    /// The first byte value of type `key`.
    pub fn get_bytes(&self, key: u64) -> Option<&Bytes> {
        self.pairs.iter().find(|p| p.key == key).and_then(|p| match &p.value {
            Value::Bytes(b) => Some(b),
            Value::Int(_) => None,
        })
    }

    /// The first Mandatory Track Property (types 0x4000-0x7FFF) among these: none is one we understand, so a
    /// track carrying one must be refused, and an object carrying one is malformed (draft-19 §Mandatory Track
    /// Properties).
    pub fn mandatory(&self) -> Option<u64> {
        self.pairs.iter().map(|p| p.key).find(|k| property::MANDATORY.contains(k))
    }

    /// Removes every pair of type `key`.
    pub fn remove(&mut self, key: u64) {
        self.pairs.retain(|p| p.key != key);
    }

    /// Reads pairs until `buf` is exhausted. Used where the enclosing length bounds the sequence.
    pub fn decode_all(buf: &mut &[u8], v: Version) -> Result<Properties, DecodeError> {
        let mut pairs = Vec::new();
        let mut key: u64 = 0;
        while !buf.is_empty() {
            let delta = get_vi(buf, v)?;
            //= draft-ietf-moq-transport-19#moq-key-value-pair
            //# The previous Type value plus the Delta Type MUST NOT be greater than 2^64 - 1.
            key = key.checked_add(delta).ok_or(DecodeError::Overflow("key-value type"))?;
            let value = if key.is_multiple_of(2) {
                Value::Int(get_vi(buf, v)?)
            } else {
                let len = get_len(buf, v, "key-value value", MAX_KVP_VALUE_LEN)?;
                Value::Bytes(get_bytes(buf, len)?)
            };
            pairs.push(KeyValuePair { key, value });
        }
        Ok(Properties { pairs })
    }

    /// Reads a `Length (vi64)` followed by that many bytes of pairs: the Object Properties block.
    pub fn decode_block<B: Buf>(buf: &mut B, v: Version) -> Result<Properties, DecodeError> {
        let len = get_vi(buf, v)?;
        let len = usize::try_from(len).map_err(|_| DecodeError::Overflow("properties length"))?;
        decode_bounded(buf, len, "object properties", |body| Properties::decode_all(body, v))
    }

    /// Writes the pairs with no length prefix.
    pub fn encode_all<B: BufMut>(&self, buf: &mut B, v: Version) -> Result<(), EncodeError> {
        let mut prev = 0u64;
        for pair in &self.pairs {
            // Pairs are kept sorted by `push`, but `decode_all` output is sorted by construction too.
            let delta = pair
                .key
                .checked_sub(prev)
                .ok_or(EncodeError::InvalidValue { field: "key-value order", value: pair.key })?;
            put_vi(buf, v, delta)?;
            match (&pair.value, pair.key % 2) {
                (Value::Int(x), 0) => put_vi(buf, v, *x)?,
                (Value::Bytes(b), 1) => put_len_bytes(buf, v, "key-value value", MAX_KVP_VALUE_LEN, b)?,
                _ => {
                    return Err(EncodeError::InvalidValue { field: "key-value parity", value: pair.key });
                }
            }
            prev = pair.key;
        }
        Ok(())
    }

    /// The number of bytes [`Properties::encode_all`] writes.
    pub fn encoded_len(&self, v: Version) -> usize {
        let mut prev = 0u64;
        let mut n = 0;
        for pair in &self.pairs {
            n += crate::coding::vi_len(v, pair.key.wrapping_sub(prev));
            n += match &pair.value {
                Value::Int(x) => crate::coding::vi_len(v, *x),
                Value::Bytes(b) => crate::coding::vi_len(v, b.len() as u64) + b.len(),
            };
            prev = pair.key;
        }
        n
    }

    /// Writes the Object Properties block: a length, then the pairs.
    pub fn encode_block<B: BufMut>(&self, buf: &mut B, v: Version) -> Result<(), EncodeError> {
        put_vi(buf, v, self.encoded_len(v) as u64)?;
        self.encode_all(buf, v)
    }
}

impl std::fmt::Debug for Properties {
    /// `{0x10: 7, 0xb: [..]}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut m = f.debug_map();
        for p in &self.pairs {
            match &p.value {
                Value::Int(v) => m.entry(&format_args!("{:#x}", p.key), v),
                Value::Bytes(b) => m.entry(&format_args!("{:#x}", p.key), b),
            };
        }
        m.finish()
    }
}

impl FromIterator<KeyValuePair> for Properties {
    fn from_iter<I: IntoIterator<Item = KeyValuePair>>(iter: I) -> Self {
        let mut p = Properties::new();
        for pair in iter {
            p.push(pair);
        }
        p
    }
}

/// Well-known property types (draft-19 §11.1 "Properties" and the LOC draft).
pub mod property {
    /// OBJECT_DELIVERY_TIMEOUT (Track; in -19 also Object), ms.
    pub const OBJECT_DELIVERY_TIMEOUT: u64 = 0x02;
    /// MAX_CACHE_DURATION (Track), ms.
    pub const MAX_CACHE_DURATION: u64 = 0x04;
    /// SUBGROUP_DELIVERY_TIMEOUT (Track; in -19 also Object), ms.
    pub const SUBGROUP_DELIVERY_TIMEOUT: u64 = 0x06;
    /// IMMUTABLE_PROPERTIES (Track, Object): nested pairs relays must forward byte for byte.
    pub const IMMUTABLE_PROPERTIES: u64 = 0x0B;
    /// DEFAULT_PUBLISHER_PRIORITY (Track), 0..=255, default 128.
    pub const DEFAULT_PUBLISHER_PRIORITY: u64 = 0x0E;
    /// DEFAULT_PUBLISHER_GROUP_ORDER (Track), 1 ascending or 2 descending.
    pub const DEFAULT_PUBLISHER_GROUP_ORDER: u64 = 0x22;
    /// DYNAMIC_GROUPS (Track), 0 or 1.
    pub const DYNAMIC_GROUPS: u64 = 0x30;
    /// PRIOR_GROUP_ID_GAP (Object).
    pub const PRIOR_GROUP_ID_GAP: u64 = 0x3C;
    /// PRIOR_OBJECT_ID_GAP (Object).
    pub const PRIOR_OBJECT_ID_GAP: u64 = 0x3E;
    /// The Mandatory Track Properties: Track scope only, and an endpoint that does not understand one must not
    /// process or forward the track.
    pub const MANDATORY: std::ops::RangeInclusive<u64> = 0x4000..=0x7FFF;
}

/// A Reason Phrase: at most 1024 bytes of UTF-8 diagnostic text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ReasonPhrase(pub String);

/// The longest Reason Phrase.
pub const MAX_REASON_PHRASE_LEN: usize = 1024;

impl ReasonPhrase {
    /// A reason phrase.
    pub fn new(s: impl Into<String>) -> ReasonPhrase {
        ReasonPhrase(s.into())
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for ReasonPhrase {
    fn from(s: &str) -> Self {
        ReasonPhrase(s.to_owned())
    }
}

impl Decode for ReasonPhrase {
    fn decode<B: Buf>(buf: &mut B, v: Version) -> Result<Self, DecodeError> {
        //= draft-ietf-moq-transport-19#reason-phrase
        //# The reason phrase length has a maximum value of 1024 bytes. If an endpoint receives a length
        //# exceeding the maximum, it MUST close the session with a `PROTOCOL_VIOLATION`
        let len = get_len(buf, v, "reason phrase", MAX_REASON_PHRASE_LEN)?;
        let bytes = get_bytes(buf, len)?;
        // The text is diagnostic only: keep what we can read rather than failing the session over it.
        Ok(ReasonPhrase(String::from_utf8_lossy(&bytes).into_owned()))
    }
}

impl Encode for ReasonPhrase {
    fn encode<B: BufMut>(&self, buf: &mut B, v: Version) -> Result<(), EncodeError> {
        put_len_bytes(buf, v, "reason phrase", MAX_REASON_PHRASE_LEN, self.0.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: Version = Version::Draft19;

    #[test]
    fn delta_types_and_parity() {
        let props = Properties::new()
            .with_bytes(0x0B, &b"abc"[..])
            .unwrap()
            .with_int(0x02, 300)
            .unwrap()
            .with_int(0x02, 5)
            .unwrap();
        let mut out = Vec::new();
        props.encode_all(&mut out, V).unwrap();
        // type 2 (delta 2) = 300; type 2 again (delta 0) = 5; type 0xB (delta 9), len 3, "abc".
        assert_eq!(out, [0x02, 0x81, 0x2c, 0x00, 0x05, 0x09, 0x03, b'a', b'b', b'c']);
        assert_eq!(props.encoded_len(V), out.len());
        let mut cursor = &out[..];
        assert_eq!(Properties::decode_all(&mut cursor, V).unwrap(), props);
        assert_eq!(props.get_int(2), Some(300));
        assert_eq!(props.get_bytes(0x0B).map(|b| &b[..]), Some(&b"abc"[..]));
        assert!(KeyValuePair::int(3, 1).is_err());
        assert!(KeyValuePair::bytes(2, &b""[..]).is_err());
    }

    #[test]
    fn mandatory_track_properties_are_found() {
        assert_eq!(Properties::new().with_int(0x3FFE, 1).unwrap().with_int(0x8000, 1).unwrap().mandatory(), None);
        let props = Properties::new().with_int(0x0E, 9).unwrap().with_bytes(0x4001, &b"x"[..]).unwrap();
        assert_eq!(props.mandatory(), Some(0x4001));
        assert_eq!(Properties::new().with_int(0x7FFE, 0).unwrap().mandatory(), Some(0x7FFE));
    }

    #[test]
    fn block_and_limits() {
        let props = Properties::new().with_int(0x10, 7).unwrap();
        let mut out = Vec::new();
        props.encode_block(&mut out, V).unwrap();
        assert_eq!(out, [0x02, 0x10, 0x07]);
        assert_eq!(Properties::decode_block(&mut &out[..], V), Ok(props));
        // A block whose pairs run past its length is malformed, not short.
        assert_eq!(
            Properties::decode_block(&mut &[0x01, 0x10, 0x07][..], V),
            Err(DecodeError::Truncated("object properties"))
        );
        // Odd values longer than 65535 bytes are refused.
        let mut long = vec![0x01];
        crate::coding::varint::leading_ones::put(&mut long, 65_536);
        assert!(matches!(Properties::decode_all(&mut &long[..], V), Err(DecodeError::TooLong { .. })));
        // Type overflow.
        let mut over = vec![0x02, 0x00];
        crate::coding::varint::leading_ones::put(&mut over, u64::MAX);
        over.push(0);
        assert_eq!(Properties::decode_all(&mut &over[..], V), Err(DecodeError::Overflow("key-value type")));
    }

    #[test]
    fn reason_phrase_limit() {
        let ok = ReasonPhrase(("x").repeat(1024));
        let enc = ok.encode_to_vec(V).unwrap();
        assert_eq!(ReasonPhrase::decode_prefix(&enc, V).unwrap().0, ok);
        assert!(ReasonPhrase(("x").repeat(1025)).encode_to_vec(V).is_err());
        let mut bad = Vec::new();
        crate::coding::varint::leading_ones::put(&mut bad, 1025);
        bad.extend(std::iter::repeat_n(b'x', 1025));
        assert!(matches!(ReasonPhrase::decode_prefix(&bad, V), Err(DecodeError::TooLong { .. })));
    }
}
