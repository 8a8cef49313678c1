//! Setup Options (draft-18/19 §9.3.1): the Key-Value-Pairs that fill a SETUP message.
//!
//! The option namespace is the same in every version. Unknown options are ignored (and kept in
//! [`SetupOptions::unknown`] for diagnostics); known options may not repeat, except AUTHORIZATION_TOKEN.

use bytes::{BufMut, Bytes};

use crate::kvp::{KeyValuePair, Properties, Value};
use crate::token::AuthToken;
use crate::{DecodeError, EncodeError, Version};

/// Setup Option type code points.
pub mod option_type {
    /// PATH (client, native QUIC only): path-abempty plus `?query`.
    pub const PATH: u64 = 0x01;
    /// AUTHORIZATION_TOKEN: a Token; may repeat.
    pub const AUTHORIZATION_TOKEN: u64 = 0x03;
    /// MAX_AUTH_TOKEN_CACHE_SIZE: bytes of alias cache the sender accepts (default 0).
    pub const MAX_AUTH_TOKEN_CACHE_SIZE: u64 = 0x04;
    /// AUTHORITY (client, native QUIC only): the URI authority.
    pub const AUTHORITY: u64 = 0x05;
    /// MAX_FILTER_RANGES (draft-19): ranges the sender accepts per subscription or fetch (default 0).
    pub const MAX_FILTER_RANGES: u64 = 0x06;
    /// MOQT_IMPLEMENTATION: the implementation's name and version.
    pub const MOQT_IMPLEMENTATION: u64 = 0x07;
    /// MAX_REQUEST_UPDATES (draft-19): unanswered REQUEST_UPDATEs per stream the sender accepts (0 = no limit).
    pub const MAX_REQUEST_UPDATES: u64 = 0x08;
}

use option_type as ot;

/// The options of one SETUP message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SetupOptions {
    /// PATH (0x01).
    pub path: Option<Bytes>,
    /// AUTHORIZATION_TOKEN (0x03), in order.
    pub auth_tokens: Vec<AuthToken>,
    /// MAX_AUTH_TOKEN_CACHE_SIZE (0x04).
    pub max_auth_token_cache_size: Option<u64>,
    /// AUTHORITY (0x05).
    pub authority: Option<Bytes>,
    /// MAX_FILTER_RANGES (0x06).
    pub max_filter_ranges: Option<u64>,
    /// MOQT_IMPLEMENTATION (0x07), decoded leniently as UTF-8.
    pub implementation: Option<String>,
    /// MAX_REQUEST_UPDATES (0x08).
    pub max_request_updates: Option<u64>,
    /// Options this codec does not know (ignored by the protocol; kept for logs). Types must not collide with
    /// the known ones.
    pub unknown: Properties,
}

impl SetupOptions {
    /// Reads options filling all of `body`.
    pub fn decode_all(body: &mut &[u8], v: Version) -> Result<SetupOptions, DecodeError> {
        let props = Properties::decode_all(body, v)?;
        let mut o = SetupOptions::default();
        fn once<T>(slot: &mut Option<T>, value: T, name: &'static str) -> Result<(), DecodeError> {
            if slot.is_some() {
                return Err(DecodeError::Duplicate(name));
            }
            *slot = Some(value);
            Ok(())
        }
        for pair in props.iter() {
            match (pair.key, &pair.value) {
                (ot::PATH, Value::Bytes(b)) => once(&mut o.path, b.clone(), "PATH")?,
                (ot::AUTHORIZATION_TOKEN, Value::Bytes(b)) => o.auth_tokens.push(AuthToken::decode_value(b, v)?),
                (ot::MAX_AUTH_TOKEN_CACHE_SIZE, Value::Int(x)) => {
                    once(&mut o.max_auth_token_cache_size, *x, "MAX_AUTH_TOKEN_CACHE_SIZE")?
                }
                (ot::AUTHORITY, Value::Bytes(b)) => once(&mut o.authority, b.clone(), "AUTHORITY")?,
                (ot::MAX_FILTER_RANGES, Value::Int(x)) => once(&mut o.max_filter_ranges, *x, "MAX_FILTER_RANGES")?,
                (ot::MOQT_IMPLEMENTATION, Value::Bytes(b)) => {
                    once(&mut o.implementation, String::from_utf8_lossy(b).into_owned(), "MOQT_IMPLEMENTATION")?
                }
                (ot::MAX_REQUEST_UPDATES, Value::Int(x)) => {
                    once(&mut o.max_request_updates, *x, "MAX_REQUEST_UPDATES")?
                }
                _ => o.unknown.push(pair.clone()),
            }
        }
        Ok(o)
    }

    /// Writes the options as Key-Value-Pairs, with no length or count.
    pub fn encode_all<B: BufMut>(&self, buf: &mut B, v: Version) -> Result<(), EncodeError> {
        let mut props = Properties::new();
        if let Some(p) = &self.path {
            props.push(KeyValuePair::bytes(ot::PATH, p.clone())?);
        }
        for t in &self.auth_tokens {
            let mut value = Vec::new();
            t.encode_value(&mut value, v)?;
            props.push(KeyValuePair::bytes(ot::AUTHORIZATION_TOKEN, value)?);
        }
        if let Some(x) = self.max_auth_token_cache_size {
            props.push(KeyValuePair::int(ot::MAX_AUTH_TOKEN_CACHE_SIZE, x)?);
        }
        if let Some(a) = &self.authority {
            props.push(KeyValuePair::bytes(ot::AUTHORITY, a.clone())?);
        }
        if let Some(x) = self.max_filter_ranges {
            props.push(KeyValuePair::int(ot::MAX_FILTER_RANGES, x)?);
        }
        if let Some(s) = &self.implementation {
            props.push(KeyValuePair::bytes(ot::MOQT_IMPLEMENTATION, Bytes::copy_from_slice(s.as_bytes()))?);
        }
        if let Some(x) = self.max_request_updates {
            props.push(KeyValuePair::int(ot::MAX_REQUEST_UPDATES, x)?);
        }
        for pair in self.unknown.iter() {
            if matches!(pair.key, 0x01 | 0x03..=0x08) {
                return Err(EncodeError::InvalidValue { field: "unknown setup option", value: pair.key });
            }
            props.push(pair.clone());
        }
        props.encode_all(buf, v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: Version = Version::Draft19;

    #[test]
    fn path_and_implementation() {
        let o = SetupOptions {
            path: Some(Bytes::from_static(b"/moq")),
            implementation: Some("x".into()),
            ..Default::default()
        };
        let mut out = Vec::new();
        o.encode_all(&mut out, V).unwrap();
        assert_eq!(out, [0x01, 0x04, b'/', b'm', b'o', b'q', 0x06, 0x01, b'x']);
        assert_eq!(SetupOptions::decode_all(&mut &out[..], V), Ok(o));
    }

    #[test]
    fn unknown_ignored_known_unique() {
        // GREASE option 0x9d (odd) twice, then MAX_REQUEST_UPDATES... must come in ascending order, so: 0x08 first.
        let bytes = [0x08, 0x05, 0x80, 0x95, 0x00, 0x00, 0x00];
        let o = SetupOptions::decode_all(&mut &bytes[..], V).unwrap();
        assert_eq!(o.max_request_updates, Some(5));
        assert_eq!(o.unknown.len(), 2);
        // PATH twice.
        let dup = [0x01, 0x01, b'a', 0x00, 0x01, b'b'];
        assert_eq!(SetupOptions::decode_all(&mut &dup[..], V), Err(DecodeError::Duplicate("PATH")));
        // Two tokens are fine.
        let two = [0x03, 0x02, 0x03, 0x00, 0x00, 0x02, 0x03, 0x00];
        assert_eq!(SetupOptions::decode_all(&mut &two[..], V).unwrap().auth_tokens.len(), 2);
    }
}
