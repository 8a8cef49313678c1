//! Error and status codes from the draft's registries, as enums with a catch-all for unknown values.
//!
//! The draft says an unknown code is treated as `INTERNAL_ERROR` and never closes a session by itself, so decoding
//! keeps unknown values ([`RequestErrorCode::Unknown`] etc.) instead of failing.

use std::fmt;

macro_rules! code_enum {
    (
        $(#[$doc:meta])*
        $name:ident { $( $(#[$vdoc:meta])* $variant:ident = $value:literal => $text:literal ),* $(,)? }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vdoc])* $variant, )*
            /// A code this version does not define (including GREASE values); handle it as `INTERNAL_ERROR`.
            Unknown(u64),
        }

        impl $name {
            /// The wire value.
            pub const fn to_u64(self) -> u64 {
                match self {
                    $( $name::$variant => $value, )*
                    $name::Unknown(v) => v,
                }
            }

            /// The draft's name for the code.
            pub const fn name(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )*
                    $name::Unknown(_) => "UNKNOWN",
                }
            }

            /// Every defined code, for tests and tools.
            pub const ALL: &'static [$name] = &[ $( $name::$variant ),* ];
        }

        impl From<u64> for $name {
            fn from(value: u64) -> Self {
                match value {
                    $( $value => $name::$variant, )*
                    other => $name::Unknown(other),
                }
            }
        }

        impl From<$name> for u64 {
            fn from(code: $name) -> u64 {
                code.to_u64()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{} ({:#x})", self.name(), self.to_u64())
            }
        }
    };
}

code_enum!(
    /// Session termination codes (CONNECTION_CLOSE / CLOSE_WEBTRANSPORT_SESSION), draft-18/19 §3.4.
    SessionCode {
        /// The session closed normally.
        NoError = 0x0 => "NO_ERROR",
        /// An implementation error.
        InternalError = 0x1 => "INTERNAL_ERROR",
        /// The client is not authorized to establish a session.
        Unauthorized = 0x2 => "UNAUTHORIZED",
        /// The peer broke the protocol.
        ProtocolViolation = 0x3 => "PROTOCOL_VIOLATION",
        /// A Request ID of the wrong parity, or reused.
        InvalidRequestId = 0x4 => "INVALID_REQUEST_ID",
        /// A Track Alias already in use for another track.
        DuplicateTrackAlias = 0x5 => "DUPLICATE_TRACK_ALIAS",
        /// A known key-value pair or token with the wrong format.
        KeyValueFormattingError = 0x6 => "KEY_VALUE_FORMATTING_ERROR",
        /// PATH misused or not served.
        InvalidPath = 0x8 => "INVALID_PATH",
        /// PATH does not follow the URI rules.
        MalformedPath = 0x9 => "MALFORMED_PATH",
        /// The GOAWAY timeout expired.
        GoawayTimeout = 0x10 => "GOAWAY_TIMEOUT",
        /// A control message was not answered in time.
        ControlMessageTimeout = 0x11 => "CONTROL_MESSAGE_TIMEOUT",
        /// A data stream stalled.
        DataStreamTimeout = 0x12 => "DATA_STREAM_TIMEOUT",
        /// The peer registered more tokens than we allow.
        AuthTokenCacheOverflow = 0x13 => "AUTH_TOKEN_CACHE_OVERFLOW",
        /// The peer registered an alias twice.
        DuplicateAuthTokenAlias = 0x14 => "DUPLICATE_AUTH_TOKEN_ALIAS",
        /// No common version.
        VersionNegotiationFailed = 0x15 => "VERSION_NEGOTIATION_FAILED",
        /// A token that cannot be used.
        MalformedAuthToken = 0x16 => "MALFORMED_AUTH_TOKEN",
        /// A reference to an alias that is not registered.
        UnknownAuthTokenAlias = 0x17 => "UNKNOWN_AUTH_TOKEN_ALIAS",
        /// A token that has expired.
        ExpiredAuthToken = 0x18 => "EXPIRED_AUTH_TOKEN",
        /// AUTHORITY misused or not served.
        InvalidAuthority = 0x19 => "INVALID_AUTHORITY",
        /// AUTHORITY does not follow the URI rules.
        MalformedAuthority = 0x1A => "MALFORMED_AUTHORITY",
        /// More unanswered REQUEST_UPDATEs than MAX_REQUEST_UPDATES (draft-19).
        TooManyRequestUpdates = 0x1B => "TOO_MANY_REQUEST_UPDATES",
    }
);

code_enum!(
    /// REQUEST_ERROR codes, draft-18/19 §9.8.
    RequestErrorCode {
        /// An implementation error.
        InternalError = 0x0 => "INTERNAL_ERROR",
        /// Not authorized.
        Unauthorized = 0x1 => "UNAUTHORIZED",
        /// Timed out (e.g. upstream or rendezvous).
        Timeout = 0x2 => "TIMEOUT",
        /// The request type is not supported.
        NotSupported = 0x3 => "NOT_SUPPORTED",
        /// The token cannot be used.
        MalformedAuthToken = 0x4 => "MALFORMED_AUTH_TOKEN",
        /// The token expired.
        ExpiredAuthToken = 0x5 => "EXPIRED_AUTH_TOKEN",
        /// The responder is going away.
        GoingAway = 0x6 => "GOING_AWAY",
        /// The responder is overloaded; see Retry Interval.
        ExcessiveLoad = 0x9 => "EXCESSIVE_LOAD",
        /// No such track or namespace.
        DoesNotExist = 0x10 => "DOES_NOT_EXIST",
        /// The requested range cannot be served.
        InvalidRange = 0x11 => "INVALID_RANGE",
        /// The track is malformed.
        MalformedTrack = 0x12 => "MALFORMED_TRACK",
        /// A second subscription to the same track (draft-18 only; draft-19 allows them).
        DuplicateSubscription = 0x19 => "DUPLICATE_SUBSCRIPTION",
        /// The subscriber does not want this PUBLISH or PUBLISH_NAMESPACE.
        Uninterested = 0x20 => "UNINTERESTED",
        /// The prefix overlaps another namespace subscription.
        PrefixOverlap = 0x30 => "PREFIX_OVERLAP",
        /// Too many matching namespaces.
        NamespaceTooLarge = 0x31 => "NAMESPACE_TOO_LARGE",
        /// A joining FETCH names no suitable subscription.
        InvalidJoiningRequestId = 0x32 => "INVALID_JOINING_REQUEST_ID",
        /// An unknown mandatory track property.
        UnsupportedExtension = 0x33 => "UNSUPPORTED_EXTENSION",
        /// Ask elsewhere: a Redirect follows.
        Redirect = 0x34 => "REDIRECT",
        /// Filters that cannot be combined (draft-19).
        ConflictingFilters = 0x35 => "CONFLICTING_FILTERS",
        /// A bad or over-limit range filter (draft-19).
        InvalidFilter = 0x36 => "INVALID_FILTER",
    }
);

impl RequestErrorCode {
    /// Reads a code as `v` defines it: codes of the other draft become [`RequestErrorCode::Unknown`].
    pub fn from_wire(value: u64, v: crate::Version) -> RequestErrorCode {
        let code = RequestErrorCode::from(value);
        let defined = match code {
            RequestErrorCode::DuplicateSubscription => v == crate::Version::Draft18,
            RequestErrorCode::ConflictingFilters | RequestErrorCode::InvalidFilter => v >= crate::Version::Draft19,
            _ => true,
        };
        if defined { code } else { RequestErrorCode::Unknown(value) }
    }
}

code_enum!(
    /// PUBLISH_DONE status codes, draft-18/19 §9.13.
    PublishDoneCode {
        /// An implementation error.
        InternalError = 0x0 => "INTERNAL_ERROR",
        /// Authorization ended.
        Unauthorized = 0x1 => "UNAUTHORIZED",
        /// The track has ended.
        TrackEnded = 0x2 => "TRACK_ENDED",
        /// The subscription reached the end of its filter.
        SubscriptionEnded = 0x3 => "SUBSCRIPTION_ENDED",
        /// The publisher is going away.
        GoingAway = 0x4 => "GOING_AWAY",
        /// The subscriber fell too far behind.
        TooFarBehind = 0x5 => "TOO_FAR_BEHIND",
        /// The subscription expired.
        Expired = 0x6 => "EXPIRED",
        /// A REQUEST_UPDATE failed.
        UpdateFailed = 0x8 => "UPDATE_FAILED",
        /// The publisher is overloaded.
        ExcessiveLoad = 0x9 => "EXCESSIVE_LOAD",
        /// The track is malformed.
        MalformedTrack = 0x12 => "MALFORMED_TRACK",
    }
);

code_enum!(
    /// RESET_STREAM / STOP_SENDING codes for request and data streams, draft-18/19 §3.3.3.
    StreamCode {
        /// An implementation error.
        InternalError = 0x0 => "INTERNAL_ERROR",
        /// The request or stream was cancelled.
        Cancelled = 0x1 => "CANCELLED",
        /// The delivery timeout expired.
        DeliveryTimeout = 0x2 => "DELIVERY_TIMEOUT",
        /// The session is closing.
        SessionClosed = 0x3 => "SESSION_CLOSED",
        /// The sender is going away.
        GoingAway = 0x4 => "GOING_AWAY",
        /// The receiver fell too far behind.
        TooFarBehind = 0x5 => "TOO_FAR_BEHIND",
        /// A FETCH cannot determine the status of the next object.
        UnknownObjectStatus = 0x6 => "UNKNOWN_OBJECT_STATUS",
        /// The authorization token expired.
        ExpiredAuthToken = 0x7 => "EXPIRED_AUTH_TOKEN",
        /// The sender is overloaded.
        ExcessiveLoad = 0x9 => "EXCESSIVE_LOAD",
        /// The track is malformed.
        MalformedTrack = 0x12 => "MALFORMED_TRACK",
    }
);

/// Whether `code` is a GREASE value (`0x7f * N + 0x9D`).
pub const fn is_grease(code: u64) -> bool {
    code >= 0x9d && (code - 0x9d).is_multiple_of(0x7f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Version;

    #[test]
    fn round_trip_and_unknown() {
        for &c in RequestErrorCode::ALL {
            assert_eq!(RequestErrorCode::from(c.to_u64()), c);
        }
        for &c in SessionCode::ALL {
            assert_eq!(SessionCode::from(c.to_u64()), c);
        }
        assert_eq!(RequestErrorCode::from(0x9d), RequestErrorCode::Unknown(0x9d));
        assert!(is_grease(0x9d) && is_grease(0x11c) && !is_grease(0x9e));
        assert_eq!(RequestErrorCode::DoesNotExist.to_string(), "DOES_NOT_EXIST (0x10)");
    }

    #[test]
    fn version_differences() {
        assert_eq!(RequestErrorCode::from_wire(0x19, Version::Draft18), RequestErrorCode::DuplicateSubscription);
        assert_eq!(RequestErrorCode::from_wire(0x19, Version::Draft19), RequestErrorCode::Unknown(0x19));
        assert_eq!(RequestErrorCode::from_wire(0x36, Version::Draft18), RequestErrorCode::Unknown(0x36));
        assert_eq!(RequestErrorCode::from_wire(0x36, Version::Draft19), RequestErrorCode::InvalidFilter);
    }
}
