//! Codec errors.
//!
//! Decoding distinguishes three situations that callers must treat differently:
//!
//! * [`DecodeError::Short`]: the input ends before the value does. This is not an error on a stream: read
//!   more bytes and try again. The caller's buffer has not been consumed.
//! * Every other [`DecodeError`]: the bytes can never form a valid value. On a control or request stream this
//!   closes the session with [`DecodeError::code`] (almost always `PROTOCOL_VIOLATION`).
//! * [`EncodeError`]: the value we were asked to write breaks a limit of the draft (a namespace with too many
//!   fields, a reason phrase that is too long, ...). This is a bug in the caller, not in the peer.

/// Session termination codes from the draft that decoding failures map to.
///
/// Kept here so the single mapping lives next to the errors; `moq-transport` re-uses these values.
pub mod close_code {
    /// `PROTOCOL_VIOLATION` (0x3).
    pub const PROTOCOL_VIOLATION: u64 = 0x3;
    /// `KEY_VALUE_FORMATTING_ERROR` (0x6).
    pub const KEY_VALUE_FORMATTING_ERROR: u64 = 0x6;
    /// `MALFORMED_AUTH_TOKEN` (0x16).
    pub const MALFORMED_AUTH_TOKEN: u64 = 0x16;
}

/// Why a sequence of bytes could not be decoded.
///
/// The type is `Copy` and never allocates, so that it is cheap on the hot path and can be compared in tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ends early; at least `needed` more bytes are required before decoding can make progress.
    ///
    /// `needed` is a lower bound: after reading that many bytes, decoding may report `Short` again.
    #[error("need at least {needed} more bytes")]
    Short {
        /// Lower bound on the number of additional bytes required.
        needed: usize,
    },
    /// A message, stream or datagram type that this version does not define.
    #[error("unknown {kind} type {value:#x}")]
    UnknownType {
        /// What was being typed (`"control message"`, `"stream"`, `"datagram"`, ...).
        kind: &'static str,
        /// The type value received.
        value: u64,
    },
    /// A message parameter type that this version does not define. Parameters cannot be skipped.
    #[error("unknown parameter {0:#x}")]
    UnknownParameter(u64),
    /// A known parameter that the draft does not allow in this message.
    #[error("parameter {param:#x} is not allowed in {message}")]
    ParameterNotAllowed {
        /// The parameter type.
        param: u64,
        /// The message it appeared in.
        message: &'static str,
    },
    /// A field that may appear at most once appeared again.
    #[error("duplicate {0}")]
    Duplicate(&'static str),
    /// A field holds a value outside the range the draft allows.
    #[error("invalid {field}: {value:#x}")]
    InvalidValue {
        /// The field name.
        field: &'static str,
        /// The offending value (truncated to 64 bits where needed).
        value: u64,
    },
    /// A length field exceeds the draft's limit.
    #[error("{field} is {len} bytes, more than the limit of {max}")]
    TooLong {
        /// What was too long.
        field: &'static str,
        /// The length received (saturated at `usize::MAX`).
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A length-delimited body (control message, property block, parameter value) ends in the middle of a field.
    #[error("{0} is shorter than its contents")]
    Truncated(&'static str),
    /// A length-delimited body has bytes left after its last field.
    #[error("{bytes} trailing bytes after {what}")]
    TrailingBytes {
        /// What was decoded.
        what: &'static str,
        /// How many bytes were left.
        bytes: usize,
    },
    /// An identifier computed from deltas does not fit in 64 bits, or went below zero.
    #[error("{0} overflows")]
    Overflow(&'static str),
    /// A key-value pair or property is malformed (`KEY_VALUE_FORMATTING_ERROR`).
    #[error("malformed key-value pair {0:#x}")]
    KeyValueFormat(u64),
    /// A string field is not valid UTF-8.
    #[error("{0} is not UTF-8")]
    InvalidUtf8(&'static str),
    /// Any other violation of the draft's rules, described by a static string.
    #[error("malformed: {0}")]
    Malformed(&'static str),
}

impl DecodeError {
    /// Whether this only means "read more bytes and retry".
    pub fn is_short(&self) -> bool {
        matches!(self, DecodeError::Short { .. })
    }

    /// The session termination code the draft assigns to this failure, for use in `CONNECTION_CLOSE` or
    /// `CLOSE_WEBTRANSPORT_SESSION`. [`DecodeError::Short`] maps to `PROTOCOL_VIOLATION` too: a stream that
    /// ends (FIN) in the middle of a message is itself a violation.
    pub fn code(&self) -> u64 {
        match self {
            DecodeError::KeyValueFormat(_) => close_code::KEY_VALUE_FORMATTING_ERROR,
            _ => close_code::PROTOCOL_VIOLATION,
        }
    }

    /// Turns "the input is short" into "a length-delimited container is short": inside a container whose length
    /// is known, running out of bytes is malformed input, not a reason to wait.
    pub(crate) fn within(self, what: &'static str) -> DecodeError {
        match self {
            DecodeError::Short { .. } => DecodeError::Truncated(what),
            other => other,
        }
    }
}

/// Why a value could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A field is longer than the draft allows.
    #[error("{field} is {len} bytes, more than the limit of {max}")]
    TooLong {
        /// What was too long.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A value cannot be represented in this encoding or version.
    #[error("invalid {field}: {value:#x}")]
    InvalidValue {
        /// The field name.
        field: &'static str,
        /// The value.
        value: u64,
    },
    /// A field that this version of the draft does not have was set.
    #[error("{field} is not defined in {version}")]
    Unsupported {
        /// The field or message.
        field: &'static str,
        /// The version that lacks it.
        version: crate::Version,
    },
}
