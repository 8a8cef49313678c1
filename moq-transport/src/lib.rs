//! Media over QUIC Transport sessions (draft-ietf-moq-transport-19 and -18) over raw QUIC and WebTransport.
//!
//! # The model
//!
//! A track ([`TrackProducer`] / [`TrackConsumer`]) is a sequence of groups, a group a set of subgroups, a
//! subgroup a sequence of [`Object`]s. One producer, any number of consumers, each at its own pace; memory is
//! bounded by a window of recent groups, and a consumer that falls behind skips ahead and can tell
//! ([`TrackConsumer::skipped`]).
//!
//! # Sessions
//!
//! A [`Session`] runs over anything that implements the `web-transport-trait` interfaces: raw QUIC or
//! WebTransport through [`quic::Server`] / [`quic::Client`] (one UDP port serves both; the draft version comes
//! from ALPN or the WebTransport protocol), or the in-memory [`memory`] transport used in tests.
//!
//! * Publishing: put tracks in an [`Origin`]; the session answers SUBSCRIBE, FETCH, TRACK_STATUS and
//!   SUBSCRIBE_NAMESPACE from it. [`Session::publish_namespace`] announces, [`Session::publish`] pushes.
//! * Subscribing: [`Session::subscribe`], [`Session::fetch`], [`Session::track_status`],
//!   [`Session::subscribe_namespace`]. What the peer does on its own initiative arrives as [`Event`]s.
//!
//! # Example
//!
//! Publish a track from a server and subscribe to it from a client, over raw QUIC on loopback:
//!
//! ```
//! use moq_transport::{quic, tls, *};
//! use moq_transport::wire::namespace::{FullTrackName, TrackNamespace};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Error> {
//! let name = FullTrackName::new(TrackNamespace::from_path("demo").unwrap(), "clock");
//!
//! // Publisher: a track in an origin, served on a QUIC/WebTransport endpoint.
//! let track = TrackProducer::new(TrackInfo::new(name.clone()));
//! let origin = Origin::new();
//! origin.publish_track(track.clone());
//! let cert = tls::Certificate::self_signed(&["localhost"])?;
//! let trust = tls::Trust::Fingerprints(vec![cert.sha256()]);
//! let server = quic::Server::bind("127.0.0.1:0".parse().unwrap(), cert, SessionConfig { origin, ..Default::default() })?;
//! let port = server.local_addr()?.port();
//! tokio::spawn(async move {
//!     while let Some(incoming) = server.accept().await {
//!         tokio::spawn(async move {
//!             // A session lives as long as a handle to it: keep it until the peer leaves.
//!             if let Ok((session, _info)) = incoming.establish().await {
//!                 session.closed().await;
//!             }
//!         });
//!     }
//! });
//!
//! // Subscriber: connect (moqt:// is raw QUIC, https:// is WebTransport) and subscribe.
//! let client = quic::Client::new(trust, SessionConfig::default())?;
//! let session = client.connect(&format!("moqt://localhost:{port}/").parse().unwrap()).await?;
//! let subscription = session.subscribe(name, SubscribeOptions::default()).await?;
//!
//! // Publish a group with one object; the subscriber receives it.
//! track.write_group(0, [Object::new(0, "12:00:00")])?;
//! let mut consumer = subscription.consumer();
//! let mut group = consumer.next_group().await.expect("a group");
//! let mut subgroup = group.next_subgroup().await.expect("a subgroup");
//! let object = subgroup.next().await.expect("an object");
//! assert_eq!(&object.payload[..], b"12:00:00");
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

mod error;
mod io;
pub mod model;
pub mod origin;
mod qlog;
pub mod session;

pub use error::{Error, RequestFailure, SessionError, StreamError, app_code};
pub use model::*;
pub use origin::{NamespaceEvent, Origin, TrackRequest, Unresolved};
pub use session::*;

pub use moq_wire as wire;
#[cfg(feature = "cli")]
pub mod cli;
#[doc(hidden)]
pub mod fuzzing;
pub mod memory;
pub mod quic;
pub mod tls;
pub mod transport;
pub mod websocket;
