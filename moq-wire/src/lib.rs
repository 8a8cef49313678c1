//! A sans-IO codec for the IETF Media over QUIC Transport protocol (`draft-ietf-moq-transport`), drafts 18
//! and 19.
//!
//! This crate turns bytes into typed MoQT values and back. It does no I/O, spawns nothing and depends only on
//! `bytes` and `thiserror`, so the same code serves a relay, a client, a fuzzer and a packet inspector.
//!
//! # Layout
//!
//! * [`coding`]: the [`Decode`] / [`Encode`] traits and both variable-length integer encodings.
//! * Primitives: [`ids`] (newtype ids, [`Location`]), [`namespace`] (Track Namespace / Name with their limits),
//!   [`kvp`] (Key-Value-Pairs, Properties, Reason Phrase), [`params`] (typed message parameters),
//!   [`token`] (authorization tokens), [`setup`] (Setup Options).
//! * [`control`]: every control message of drafts 18 and 19, framed as `Type (vi64) Length (16) Body`.
//! * [`data`]: the data plane: stream type dispatch, SUBGROUP_HEADER and its objects, FETCH_HEADER and fetch
//!   objects, OBJECT_DATAGRAM, padding.
//!
//! # Versions
//!
//! Every encode and decode call takes a [`Version`]. Draft-18 and draft-19 share the integer encoding and most
//! layouts; where they differ (GOAWAY, range filters, setup options, error codes) the version decides.
//!
//! # Errors
//!
//! A decoder reports [`DecodeError::Short`] when the input ends early: read more and call again. The
//! `decode_prefix` / `decode_from` entry points never consume the caller's buffer on any error. Every other
//! [`DecodeError`] is final and maps to a session close code with [`DecodeError::code`].
//!
//! # Example
//!
//! ```
//! use moq_wire::{Decode, Version, control::{ControlMessage, Subscribe}, ids::RequestId, namespace::*, params::Parameters};
//!
//! let v = Version::Draft19;
//! let msg = ControlMessage::Subscribe(Subscribe {
//!     request_id: RequestId(0),
//!     track: FullTrackName::new(TrackNamespace::new(["live", "demo"]).unwrap(), "video"),
//!     params: Parameters { forward: Some(true), ..Default::default() },
//! });
//! let bytes = msg.encode_to_vec(v).unwrap();
//! let (decoded, used) = ControlMessage::decode_prefix(&bytes, v).unwrap();
//! assert_eq!((decoded, used), (msg, bytes.len()));
//! // A truncated message asks for more bytes instead of failing.
//! assert!(ControlMessage::decode_prefix(&bytes[..bytes.len() - 1], v).unwrap_err().is_short());
//! ```
#![warn(missing_docs, unreachable_pub)]
#![forbid(unsafe_code)]

pub mod codes;
pub mod coding;
pub mod control;
pub mod data;
mod error;
pub mod ids;
pub mod kvp;
pub mod namespace;
pub mod params;
pub mod setup;
pub mod token;
mod version;

pub use coding::{Decode, Encode};
pub use error::{DecodeError, EncodeError, close_code};
pub use ids::{GroupId, GroupOrder, Location, ObjectId, ObjectStatus, RequestId, SubgroupId, TrackAlias};
pub use version::{IntEncoding, Version};
