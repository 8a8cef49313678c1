//! Track namespaces, track names and their limits (draft-18/19 §2.4.1 "Track Naming").

use std::fmt;
use std::str::FromStr;

use bytes::{Buf, BufMut, Bytes};

use crate::coding::{Decode, Encode, get_bytes, get_len, get_vi, put_len_bytes, put_vi};
use crate::{DecodeError, EncodeError, Version};

/// The most fields a Track Namespace may have.
pub const MAX_NAMESPACE_FIELDS: usize = 32;
/// The most bytes a Track Namespace, and a Full Track Name, may have (summing field and name lengths).
pub const MAX_FULL_TRACK_NAME_LEN: usize = 4096;

/// An ordered tuple of 0 to 32 non-empty byte strings.
///
/// Comparison is byte-exact, field by field. `(foo, bar)` starts with `(foo)` but not with `(fo)`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TrackNamespace {
    fields: Vec<Bytes>,
}

impl TrackNamespace {
    /// The empty namespace (zero fields), which as a prefix matches everything.
    pub const fn empty() -> TrackNamespace {
        TrackNamespace { fields: Vec::new() }
    }

    /// Builds a namespace, checking the draft's limits.
    pub fn new<I, F>(fields: I) -> Result<TrackNamespace, EncodeError>
    where
        I: IntoIterator<Item = F>,
        F: Into<Bytes>,
    {
        let ns = TrackNamespace { fields: fields.into_iter().map(Into::into).collect() };
        ns.validate()?;
        Ok(ns)
    }

    /// Builds a namespace from `/`-separated UTF-8 text, e.g. `"live/demo"`. Empty segments are dropped.
    pub fn from_path(path: &str) -> Result<TrackNamespace, EncodeError> {
        TrackNamespace::new(path.split('/').filter(|s| !s.is_empty()).map(|s| Bytes::copy_from_slice(s.as_bytes())))
    }

    fn validate(&self) -> Result<(), EncodeError> {
        if self.fields.len() > MAX_NAMESPACE_FIELDS {
            return Err(EncodeError::TooLong {
                field: "track namespace fields",
                len: self.fields.len(),
                max: MAX_NAMESPACE_FIELDS,
            });
        }
        if self.fields.iter().any(|f| f.is_empty()) {
            return Err(EncodeError::InvalidValue { field: "empty track namespace field", value: 0 });
        }
        if self.byte_len() > MAX_FULL_TRACK_NAME_LEN {
            return Err(EncodeError::TooLong {
                field: "track namespace",
                len: self.byte_len(),
                max: MAX_FULL_TRACK_NAME_LEN,
            });
        }
        Ok(())
    }

    /// The fields.
    pub fn fields(&self) -> &[Bytes] {
        &self.fields
    }

    /// The number of fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The sum of the field lengths, which the draft limits.
    pub fn byte_len(&self) -> usize {
        self.fields.iter().map(Bytes::len).sum()
    }

    /// Whether `prefix` is a field-wise prefix of this namespace (every namespace starts with the empty one).
    pub fn starts_with(&self, prefix: &TrackNamespace) -> bool {
        self.fields.starts_with(&prefix.fields)
    }

    /// This namespace without the first `prefix.len()` fields, if `prefix` is a prefix of it: the "suffix" that
    /// NAMESPACE and NAMESPACE_DONE carry.
    pub fn strip_prefix(&self, prefix: &TrackNamespace) -> Option<TrackNamespace> {
        self.starts_with(prefix).then(|| TrackNamespace { fields: self.fields[prefix.len()..].to_vec() })
    }

    /// `self` followed by the fields of `suffix`, checking the limits.
    pub fn join(&self, suffix: &TrackNamespace) -> Result<TrackNamespace, EncodeError> {
        let ns = TrackNamespace { fields: self.fields.iter().chain(suffix.fields.iter()).cloned().collect() };
        ns.validate()?;
        Ok(ns)
    }
}

impl Decode for TrackNamespace {
    fn decode<B: Buf>(buf: &mut B, v: Version) -> Result<Self, DecodeError> {
        let count = get_vi(buf, v)?;
        if count > MAX_NAMESPACE_FIELDS as u64 {
            return Err(DecodeError::TooLong {
                field: "track namespace fields",
                len: usize::try_from(count).unwrap_or(usize::MAX),
                max: MAX_NAMESPACE_FIELDS,
            });
        }
        let mut fields = Vec::with_capacity(count as usize);
        let mut total = 0usize;
        for _ in 0..count {
            let len = get_len(buf, v, "track namespace", MAX_FULL_TRACK_NAME_LEN)?;
            //= draft-ietf-moq-transport-19#track-name
            //# If an endpoint receives a Track Namespace Field with a Track Namespace Field Length of 0, it
            //# MUST close the session with a `PROTOCOL_VIOLATION`.
            if len == 0 {
                return Err(DecodeError::InvalidValue { field: "track namespace field length", value: 0 });
            }
            total += len;
            if total > MAX_FULL_TRACK_NAME_LEN {
                return Err(DecodeError::TooLong {
                    field: "track namespace",
                    len: total,
                    max: MAX_FULL_TRACK_NAME_LEN,
                });
            }
            fields.push(get_bytes(buf, len)?);
        }
        Ok(TrackNamespace { fields })
    }
}

impl Encode for TrackNamespace {
    fn encode<B: BufMut>(&self, buf: &mut B, v: Version) -> Result<(), EncodeError> {
        self.validate()?;
        put_vi(buf, v, self.fields.len() as u64)?;
        for f in &self.fields {
            put_vi(buf, v, f.len() as u64)?;
            buf.put_slice(f);
        }
        Ok(())
    }
}

/// A track name: any byte string, possibly empty.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TrackName(pub Bytes);

impl TrackName {
    /// A name from UTF-8 text or bytes.
    pub fn new(name: impl Into<Bytes>) -> TrackName {
        TrackName(name.into())
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the name is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<&str> for TrackName {
    fn from(s: &str) -> Self {
        TrackName(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl Decode for TrackName {
    fn decode<B: Buf>(buf: &mut B, v: Version) -> Result<Self, DecodeError> {
        let len = get_len(buf, v, "track name", MAX_FULL_TRACK_NAME_LEN)?;
        Ok(TrackName(get_bytes(buf, len)?))
    }
}

impl Encode for TrackName {
    fn encode<B: BufMut>(&self, buf: &mut B, v: Version) -> Result<(), EncodeError> {
        put_len_bytes(buf, v, "track name", MAX_FULL_TRACK_NAME_LEN, &self.0)
    }
}

/// A Track Namespace and a Track Name: what identifies a track within a session's scope.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct FullTrackName {
    /// The namespace.
    pub namespace: TrackNamespace,
    /// The name within it.
    pub name: TrackName,
}

impl FullTrackName {
    /// A full track name.
    pub fn new(namespace: TrackNamespace, name: impl Into<TrackName>) -> FullTrackName {
        FullTrackName { namespace, name: name.into() }
    }
}

impl Decode for FullTrackName {
    fn decode<B: Buf>(buf: &mut B, v: Version) -> Result<Self, DecodeError> {
        let namespace = TrackNamespace::decode(buf, v)?;
        let name = TrackName::decode(buf, v)?;
        let len = namespace.byte_len() + name.len();
        //= draft-ietf-moq-transport-19#track-name
        //# If an endpoint receives a Track Namespace or a Full Track Name exceeding 4,096 bytes, it MUST close
        //# the session with a `PROTOCOL_VIOLATION`.
        if len > MAX_FULL_TRACK_NAME_LEN {
            return Err(DecodeError::TooLong { field: "full track name", len, max: MAX_FULL_TRACK_NAME_LEN });
        }
        Ok(FullTrackName { namespace, name })
    }
}

impl Encode for FullTrackName {
    fn encode<B: BufMut>(&self, buf: &mut B, v: Version) -> Result<(), EncodeError> {
        let len = self.namespace.byte_len() + self.name.len();
        if len > MAX_FULL_TRACK_NAME_LEN {
            return Err(EncodeError::TooLong { field: "full track name", len, max: MAX_FULL_TRACK_NAME_LEN });
        }
        self.namespace.encode(buf, v)?;
        self.name.encode(buf, v)
    }
}

// The draft's recommended text form (§2.4.2 "Representing Namespace and Track Names"): fields joined by `-`,
// `--` before the track name, bytes outside `a-zA-Z0-9_` written as `.` and two lowercase hex digits.

fn write_escaped(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b == b'_' {
            write!(f, "{}", b as char)?;
        } else {
            write!(f, ".{b:02x}")?;
        }
    }
    Ok(())
}

fn unescape(s: &str) -> Result<Bytes, ParseNameError> {
    let mut out = Vec::with_capacity(s.len());
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'.' {
            let hex = s.get(i + 1..i + 3).ok_or(ParseNameError)?;
            if hex.bytes().any(|c| c.is_ascii_uppercase()) {
                return Err(ParseNameError);
            }
            let value = u8::from_str_radix(hex, 16).map_err(|_| ParseNameError)?;
            // Canonical form only: a byte that may be written literally must not be escaped.
            if value.is_ascii_alphanumeric() || value == b'_' {
                return Err(ParseNameError);
            }
            out.push(value);
            i += 3;
        } else if b.is_ascii_alphanumeric() || b == b'_' {
            out.push(b);
            i += 1;
        } else {
            return Err(ParseNameError);
        }
    }
    Ok(Bytes::from(out))
}

/// The text is not in the draft's canonical namespace/name form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a canonical track namespace or name")]
pub struct ParseNameError;

impl fmt::Display for TrackNamespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, field) in self.fields.iter().enumerate() {
            if i > 0 {
                f.write_str("-")?;
            }
            write_escaped(f, field)?;
        }
        Ok(())
    }
}

impl fmt::Debug for TrackNamespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TrackNamespace({self})")
    }
}

impl FromStr for TrackNamespace {
    type Err = ParseNameError;
    fn from_str(s: &str) -> Result<Self, ParseNameError> {
        if s.is_empty() {
            return Ok(TrackNamespace::empty());
        }
        let fields = s.split('-').map(unescape).collect::<Result<Vec<_>, _>>()?;
        TrackNamespace::new(fields).map_err(|_| ParseNameError)
    }
}

impl fmt::Display for TrackName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_escaped(f, &self.0)
    }
}

impl fmt::Debug for TrackName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TrackName({self})")
    }
}

impl fmt::Display for FullTrackName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}--{}", self.namespace, self.name)
    }
}

impl fmt::Debug for FullTrackName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FullTrackName({self})")
    }
}

impl FromStr for FullTrackName {
    type Err = ParseNameError;
    fn from_str(s: &str) -> Result<Self, ParseNameError> {
        let (ns, name) = s.rsplit_once("--").ok_or(ParseNameError)?;
        Ok(FullTrackName { namespace: ns.parse()?, name: TrackName(unescape(name)?) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: Version = Version::Draft19;

    #[test]
    fn draft_text_form_example() {
        // §2.4.2: (example.net, team2, project_x) / report
        let ftn = FullTrackName::new(TrackNamespace::new(["example.net", "team2", "project_x"]).unwrap(), "report");
        assert_eq!(ftn.to_string(), "example.2enet-team2-project_x--report");
        assert_eq!("example.2enet-team2-project_x--report".parse::<FullTrackName>(), Ok(ftn));
        // Non-canonical forms are refused.
        assert!("ex.61mple--x".parse::<FullTrackName>().is_err());
        assert!("example.2Enet--x".parse::<FullTrackName>().is_err());
        assert!("a b--x".parse::<FullTrackName>().is_err());
    }

    #[test]
    fn namespace_wire_and_limits() {
        let ns = TrackNamespace::new(["live", "demo"]).unwrap();
        let bytes = ns.encode_to_vec(V).unwrap();
        assert_eq!(bytes, b"\x02\x04live\x04demo");
        assert_eq!(TrackNamespace::decode_prefix(&bytes, V), Ok((ns.clone(), bytes.len())));

        // 33 fields are refused both ways.
        assert!(TrackNamespace::new(vec!["a"; 33]).is_err());
        let mut many = vec![33u8];
        for _ in 0..33 {
            many.extend_from_slice(&[1, b'a']);
        }
        assert!(matches!(TrackNamespace::decode_prefix(&many, V), Err(DecodeError::TooLong { .. })));
        // 32 are fine.
        assert_eq!(TrackNamespace::new(vec!["a"; 32]).unwrap().len(), 32);

        // A zero-length field is a protocol violation.
        assert_eq!(
            TrackNamespace::decode_prefix(&[1, 0], V),
            Err(DecodeError::InvalidValue { field: "track namespace field length", value: 0 })
        );
        assert!(TrackNamespace::new([""]).is_err());

        // 4096 bytes of namespace are allowed, 4097 are not.
        let big = Bytes::from(vec![b'x'; 4096]);
        let ns = TrackNamespace::new([big.clone()]).unwrap();
        let enc = ns.encode_to_vec(V).unwrap();
        assert_eq!(TrackNamespace::decode_prefix(&enc, V).unwrap().0, ns);
        assert!(TrackNamespace::new([big.clone(), Bytes::from_static(b"y")]).is_err());
        // And the full track name counts the name too.
        let ftn = FullTrackName::new(ns, "z");
        assert!(ftn.encode_to_vec(V).is_err());
        let mut raw = enc.clone();
        raw.extend_from_slice(&[1, b'z']);
        assert!(matches!(FullTrackName::decode_prefix(&raw, V), Err(DecodeError::TooLong { .. })));
    }

    #[test]
    fn prefixes() {
        let ns = TrackNamespace::new(["foo", "bar"]).unwrap();
        assert!(ns.starts_with(&TrackNamespace::new(["foo"]).unwrap()));
        assert!(ns.starts_with(&TrackNamespace::empty()));
        assert!(!ns.starts_with(&TrackNamespace::new(["fo"]).unwrap()));
        assert!(!TrackNamespace::new(["foobar"]).unwrap().starts_with(&TrackNamespace::new(["foo"]).unwrap()));
        let suffix = ns.strip_prefix(&TrackNamespace::new(["foo"]).unwrap()).unwrap();
        assert_eq!(suffix, TrackNamespace::new(["bar"]).unwrap());
        assert_eq!(TrackNamespace::new(["foo"]).unwrap().join(&suffix).unwrap(), ns);
        assert_eq!(TrackNamespace::from_path("/live//demo/").unwrap(), TrackNamespace::new(["live", "demo"]).unwrap());
    }
}
