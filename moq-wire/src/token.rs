//! The Token structure carried by AUTHORIZATION_TOKEN (draft-18/19 §9.2.1.1 parameter, §9.3.1.3 setup option).

use bytes::{Buf, BufMut, Bytes};

use crate::coding::{get_vi, put_vi};
use crate::{DecodeError, EncodeError, Version};

/// An authorization token, with its optional session-scoped alias.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AuthToken {
    /// DELETE (0x0): retire a previously registered alias.
    Delete {
        /// The alias to retire.
        alias: u64,
    },
    /// REGISTER (0x1): use this token and remember it under `alias` for the rest of the session.
    Register {
        /// The alias to register.
        alias: u64,
        /// The token type (IANA "MOQT Auth Token Type"; 0 = negotiated out of band).
        token_type: u64,
        /// The token.
        value: Bytes,
    },
    /// USE_ALIAS (0x2): use the token registered under `alias`.
    UseAlias {
        /// The registered alias.
        alias: u64,
    },
    /// USE_VALUE (0x3): use this token once.
    UseValue {
        /// The token type.
        token_type: u64,
        /// The token.
        value: Bytes,
    },
}

impl AuthToken {
    /// A plain token of out-of-band type 0, such as a JWT.
    pub fn value(value: impl Into<Bytes>) -> AuthToken {
        AuthToken::UseValue { token_type: 0, value: value.into() }
    }

    /// The Alias Type code point.
    pub const fn alias_type(&self) -> u64 {
        match self {
            AuthToken::Delete { .. } => 0x0,
            AuthToken::Register { .. } => 0x1,
            AuthToken::UseAlias { .. } => 0x2,
            AuthToken::UseValue { .. } => 0x3,
        }
    }

    /// Decodes a token that occupies all of `data` (the value of the enclosing parameter or option).
    ///
    /// Failures are [`DecodeError::KeyValueFormat`]: the draft closes the session with
    /// `KEY_VALUE_FORMATTING_ERROR` when a Token cannot be decoded.
    pub fn decode_value(mut data: &[u8], v: Version) -> Result<AuthToken, DecodeError> {
        const BAD: DecodeError = DecodeError::KeyValueFormat(0x03);
        let buf = &mut data;
        let alias_type = get_vi(buf, v).map_err(|_| BAD)?;
        let token = match alias_type {
            0x0 => AuthToken::Delete { alias: get_vi(buf, v).map_err(|_| BAD)? },
            0x1 => {
                let alias = get_vi(buf, v).map_err(|_| BAD)?;
                let token_type = get_vi(buf, v).map_err(|_| BAD)?;
                AuthToken::Register { alias, token_type, value: Bytes::copy_from_slice(buf) }
            }
            0x2 => AuthToken::UseAlias { alias: get_vi(buf, v).map_err(|_| BAD)? },
            0x3 => {
                let token_type = get_vi(buf, v).map_err(|_| BAD)?;
                AuthToken::UseValue { token_type, value: Bytes::copy_from_slice(buf) }
            }
            _ => return Err(BAD),
        };
        if matches!(token, AuthToken::Delete { .. } | AuthToken::UseAlias { .. }) && !buf.is_empty() {
            return Err(BAD);
        }
        Ok(token)
    }

    /// Writes the token without a length prefix.
    pub fn encode_value<B: BufMut>(&self, buf: &mut B, v: Version) -> Result<(), EncodeError> {
        put_vi(buf, v, self.alias_type())?;
        match self {
            AuthToken::Delete { alias } | AuthToken::UseAlias { alias } => put_vi(buf, v, *alias),
            AuthToken::Register { alias, token_type, value } => {
                put_vi(buf, v, *alias)?;
                put_vi(buf, v, *token_type)?;
                buf.put_slice(value);
                Ok(())
            }
            AuthToken::UseValue { token_type, value } => {
                put_vi(buf, v, *token_type)?;
                buf.put_slice(value);
                Ok(())
            }
        }
    }

    /// The bytes a registered alias occupies in the receiver's token cache: 16 plus the value length.
    pub fn cache_size(&self) -> usize {
        match self {
            AuthToken::Register { value, .. } => 16 + value.len(),
            _ => 0,
        }
    }

    /// Reads a token from a `Buf` holding exactly the token.
    pub(crate) fn decode_buf<B: Buf>(buf: &mut B, v: Version) -> Result<AuthToken, DecodeError> {
        let bytes = buf.copy_to_bytes(buf.remaining());
        AuthToken::decode_value(&bytes, v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: Version = Version::Draft19;

    #[test]
    fn every_alias_type_round_trips() {
        let cases = [
            (AuthToken::Delete { alias: 7 }, vec![0x00, 0x07]),
            (
                AuthToken::Register { alias: 1, token_type: 0, value: Bytes::from_static(b"jwt") },
                vec![0x01, 0x01, 0x00, b'j', b'w', b't'],
            ),
            (AuthToken::UseAlias { alias: 1 }, vec![0x02, 0x01]),
            (AuthToken::UseValue { token_type: 2, value: Bytes::new() }, vec![0x03, 0x02]),
        ];
        for (token, bytes) in cases {
            let mut out = Vec::new();
            token.encode_value(&mut out, V).unwrap();
            assert_eq!(out, bytes, "{token:?}");
            assert_eq!(AuthToken::decode_value(&bytes, V), Ok(token));
        }
    }

    #[test]
    fn undecodable_is_key_value_formatting_error() {
        for bad in [&[][..], &[0x04, 0x00], &[0x00], &[0x00, 0x01, 0x02], &[0x01, 0x01], &[0x03]] {
            let err = AuthToken::decode_value(bad, V).unwrap_err();
            assert_eq!(err.code(), crate::close_code::KEY_VALUE_FORMATTING_ERROR, "{bad:02x?}");
        }
    }
}
