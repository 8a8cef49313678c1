//! Draft versions and their ALPN tokens.

use std::fmt;

/// How a draft encodes variable-length integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IntEncoding {
    /// RFC 9000 §16 QUIC variable-length integer: a two-bit length prefix, 1, 2, 4 or 8 bytes, 62-bit values.
    /// Used by drafts up to and including -16.
    Quic,
    /// The draft-17+ "leading ones" encoding: the number of leading 1 bits of the first byte is the length
    /// minus one, 1 to 9 bytes, full 64-bit values, non-minimal forms allowed.
    LeadingOnes,
}

/// A version of `draft-ietf-moq-transport` that this codec speaks.
///
/// Since draft-15 the version is not carried inside MoQT at all: it is the ALPN token of the QUIC connection
/// (`moqt-19`) or the WebTransport protocol (`WT-Protocol: "moqt-19"`). Every encode and decode function takes the
/// version, so that older and newer drafts can be added as new variants without changing callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Version {
    /// draft-ietf-moq-transport-18 (`moqt-18`), the current interop target.
    Draft18,
    /// draft-ietf-moq-transport-19 (`moqt-19`).
    Draft19,
}

impl Version {
    /// Every supported version, most preferred (newest) first: the order to offer them in ALPN.
    pub const ALL: [Version; 2] = [Version::Draft19, Version::Draft18];

    /// The ALPN token (also the WebTransport protocol token) for this version.
    pub const fn alpn(self) -> &'static str {
        match self {
            Version::Draft18 => "moqt-18",
            Version::Draft19 => "moqt-19",
        }
    }

    /// The version an ALPN or WebTransport protocol token names, if we support it.
    pub fn from_alpn(alpn: &[u8]) -> Option<Version> {
        Version::ALL.into_iter().find(|v| v.alpn().as_bytes() == alpn)
    }

    /// The draft number (18, 19, ...).
    pub const fn draft(self) -> u32 {
        match self {
            Version::Draft18 => 18,
            Version::Draft19 => 19,
        }
    }

    /// The version a draft number names, if we support it.
    pub fn from_draft(draft: u32) -> Option<Version> {
        Version::ALL.into_iter().find(|v| v.draft() == draft)
    }

    /// The conventional 32-bit identifier `0xff000000 + draft`, used in logs and by implementations; it is not
    /// sent on the wire by these drafts.
    pub const fn code(self) -> u32 {
        0xff00_0000 + self.draft()
    }

    /// How this version encodes variable-length integers.
    pub const fn int_encoding(self) -> IntEncoding {
        match self {
            Version::Draft18 | Version::Draft19 => IntEncoding::LeadingOnes,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "draft-{}", self.draft())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpn_round_trip() {
        for v in Version::ALL {
            assert_eq!(Version::from_alpn(v.alpn().as_bytes()), Some(v));
            assert_eq!(Version::from_draft(v.draft()), Some(v));
        }
        assert_eq!(Version::from_alpn(b"moqt-17"), None);
        assert_eq!(Version::from_alpn(b"moq-00"), None);
        assert_eq!(Version::Draft19.alpn(), "moqt-19");
        assert_eq!(Version::Draft18.alpn(), "moqt-18");
        assert_eq!(Version::Draft19.code(), 0xff00_0013);
        assert_eq!(Version::Draft18.to_string(), "draft-18");
    }

    #[test]
    fn newest_first() {
        assert!(Version::ALL.windows(2).all(|w| w[0] > w[1]));
    }
}
