//! What the application holds for requests in progress: subscriptions, announcements, fetches.

use std::time::Duration;

use moq_wire::control::RequestOk;
use moq_wire::data::{FetchEntry, FetchReader};
use moq_wire::kvp::Properties;
use moq_wire::namespace::{FullTrackName, TrackNamespace};
use moq_wire::params::{LocationFilter, Parameters};
use moq_wire::token::AuthToken;
use moq_wire::{GroupOrder, Location, RequestId, TrackAlias, Version};
use tokio::sync::{mpsc, oneshot};
use web_transport_trait::Session as WtSession;

use crate::error::{Error, RequestFailure};
use crate::io::{Reader, Writer};
use crate::model::{FetchItem, FetchedObject, TrackConsumer, TrackProducer};
use crate::origin::NamespaceEvent;

/// Something the peer did that the application may want to act on.
#[derive(Debug)]
pub enum Event {
    /// The peer published a namespace (PUBLISH_NAMESPACE); we accepted it.
    Announced(TrackNamespace),
    /// The peer withdrew a namespace.
    Unannounced(TrackNamespace),
    /// The peer pushed a track (PUBLISH); we accepted it. Its objects arrive in this track: read them with
    /// `consume()` / `consume_from_start()`, or put it in an [`Origin`](crate::Origin) to serve it on.
    Published(TrackProducer),
    /// The peer will not PUBLISH this track for our SUBSCRIBE_TRACKS (PUBLISH_SKIPPED): SUBSCRIBE to it instead.
    Skipped(FullTrackName),
    /// The peer sent GOAWAY on the control stream.
    GoAway {
        /// Where to reconnect (empty: the same URI).
        uri: String,
        /// How long the peer waits before closing.
        timeout: Duration,
    },
}

impl Event {
    /// For a GOAWAY, the URL of the client's next session (see [`goaway_url`]); `None` for other events.
    pub fn goaway_target(&self, current: &url::Url) -> Option<url::Url> {
        match self {
            Event::GoAway { uri, .. } => Some(goaway_url(current, uri)),
            _ => None,
        }
    }
}

/// Where a client goes after a GOAWAY naming `uri` on a session to `current`: `uri` itself, or `current` when it
/// is empty (or does not parse).
pub fn goaway_url(current: &url::Url, uri: &str) -> url::Url {
    //= draft-ietf-moq-transport-19#message-goaway
    //# The client MUST use this URI for the new session if provided. If the URI is zero bytes long,
    //# the current URI is reused instead.
    if uri.is_empty() {
        return current.clone();
    }
    url::Url::parse(uri).unwrap_or_else(|e| {
        tracing::warn!(%uri, error = %e, "GOAWAY named an unusable URI; reusing the current one");
        current.clone()
    })
}

/// Options of an outgoing SUBSCRIBE.
#[derive(Debug, Clone)]
pub struct SubscribeOptions {
    /// OBJECT_DELIVERY_TIMEOUT: objects older than this are not sent (their stream is reset).
    pub delivery_timeout: Option<Duration>,
    /// SUBSCRIBER_PRIORITY (lower is more important).
    pub priority: u8,
    /// GROUP_ORDER, or the publisher's default.
    pub group_order: Option<GroupOrder>,
    /// LOCATION_FILTER, or none (from the current group on).
    pub filter: Option<LocationFilter>,
    /// FORWARD.
    pub forward: bool,
    /// AUTHORIZATION_TOKEN parameters.
    pub auth_tokens: Vec<AuthToken>,
    /// RENDEZVOUS_TIMEOUT: how long a relay may hold the SUBSCRIBE for a publisher to appear (none: answer at
    /// once).
    pub rendezvous: Option<Duration>,
    /// NEW_GROUP_REQUEST: ask the publisher to start a new group (0: we know no group yet), honoured by tracks
    /// with dynamic groups.
    pub new_group_request: Option<u64>,
}

impl Default for SubscribeOptions {
    fn default() -> Self {
        SubscribeOptions {
            delivery_timeout: None,
            priority: 128,
            group_order: None,
            filter: None,
            forward: true,
            auth_tokens: Vec::new(),
            rendezvous: None,
            new_group_request: None,
        }
    }
}

/// An established subscription. Dropping it cancels the subscription (stream reset + STOP_SENDING).
#[derive(Debug)]
pub struct Subscription {
    /// Our Request ID.
    pub request_id: RequestId,
    /// The publisher's alias for the track.
    pub track_alias: TrackAlias,
    /// LARGEST_OBJECT from SUBSCRIBE_OK.
    pub largest: Option<Location>,
    /// Track Properties from SUBSCRIBE_OK.
    pub track_properties: Properties,
    pub(super) consumer: TrackConsumer,
    pub(super) producer: TrackProducer,
    pub(super) updates: mpsc::UnboundedSender<(Parameters, oneshot::Sender<Result<RequestOk, Error>>)>,
}

impl Subscription {
    /// The received track. Clone it for more readers.
    pub fn consumer(&self) -> TrackConsumer {
        self.consumer.clone()
    }

    /// The received track as a producer handle, to put it in an [`Origin`](crate::Origin) and serve it on (a relay). It ends
    /// when the subscription ends.
    pub fn track(&self) -> TrackProducer {
        self.producer.clone()
    }

    /// Sends REQUEST_UPDATE (e.g. `forward: Some(false)` to pause) and waits for the answer.
    pub async fn update(&self, params: Parameters) -> Result<RequestOk, Error> {
        let (tx, rx) = oneshot::channel();
        self.updates.send((params, tx)).map_err(|_| Error::Request(RequestFailure::Cancelled))?;
        rx.await.map_err(|_| Error::Request(RequestFailure::Cancelled))?
    }

    /// Asks the publisher for a new group (REQUEST_UPDATE with NEW_GROUP_REQUEST = `value`, the largest group we
    /// know plus one, or 0), without waiting for the answer. Only for tracks with DYNAMIC_GROUPS.
    pub fn request_new_group(&self, value: u64) {
        let (tx, _) = oneshot::channel();
        let params = Parameters { new_group_request: Some(value), ..Default::default() };
        let _ = self.updates.send((params, tx));
    }
}

/// A namespace we published with PUBLISH_NAMESPACE. Dropping it withdraws the namespace.
#[derive(Debug)]
pub struct Announcement {
    /// The namespace.
    pub namespace: TrackNamespace,
    pub(super) _cancel: oneshot::Sender<()>,
}

/// A SUBSCRIBE_NAMESPACE in progress: yields namespaces as the peer publishes and withdraws them.
#[derive(Debug)]
pub struct NamespaceSubscription {
    /// The prefix asked for.
    pub prefix: TrackNamespace,
    pub(super) events: mpsc::UnboundedReceiver<NamespaceEvent>,
}

impl NamespaceSubscription {
    /// The next change (full namespaces, prefix included); `None` when the subscription ended.
    pub async fn next(&mut self) -> Option<NamespaceEvent> {
        self.events.recv().await
    }
}

/// A SUBSCRIBE_TRACKS in progress: the peer PUBLISHes matching tracks, which arrive as [`Event::Published`].
/// Dropping it cancels the request.
#[derive(Debug)]
pub struct TracksSubscription {
    /// The prefix asked for.
    pub prefix: TrackNamespace,
    pub(super) _cancel: oneshot::Sender<()>,
}

/// A track we push with PUBLISH; dropping it ends the publication.
#[derive(Debug)]
pub struct Published {
    /// Our Request ID.
    pub request_id: RequestId,
    /// The alias we chose.
    pub track_alias: TrackAlias,
    pub(super) _cancel: oneshot::Sender<()>,
}

/// The answer to TRACK_STATUS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackStatusInfo {
    /// The largest location the peer has seen, if any.
    pub largest: Option<Location>,
    /// The track's properties.
    pub track_properties: Properties,
}

/// What a FETCH asks for.
#[derive(Debug, Clone)]
pub enum FetchRange {
    /// Objects of `track` from `start` (inclusive) to `end` (exclusive; `end.object == 0` means all of
    /// `end.group`).
    Standalone {
        /// The track.
        track: FullTrackName,
        /// First location.
        start: Location,
        /// End, exclusive.
        end: Location,
    },
    /// The `groups_back` groups before the joining location of one of our subscriptions (Relative Joining).
    Joining {
        /// The subscription's Request ID.
        subscription: RequestId,
        /// How many groups before the current one.
        groups_back: u64,
    },
}

/// Both halves of a request stream.
pub(super) type RequestStream<S> = (Writer<<S as WtSession>::SendStream>, Reader<<S as WtSession>::RecvStream>);

/// The objects of a FETCH, as they arrive.
pub struct FetchResponse<S: WtSession> {
    /// From FETCH_OK: whether the range reaches the end of the track.
    pub end_of_track: bool,
    /// From FETCH_OK: the end of the range (exclusive).
    pub end_location: Location,
    /// From FETCH_OK: the Track Properties.
    pub track_properties: Properties,
    pub(super) reader: Option<(Reader<S::RecvStream>, FetchReader)>,
    pub(super) pending: Option<oneshot::Receiver<Reader<S::RecvStream>>>,
    /// The request stream stays open until the response is complete: dropping its receive side would send
    /// STOP_SENDING, which cancels the FETCH.
    pub(super) request: Option<RequestStream<S>>,
    pub(super) order: GroupOrder,
    pub(super) version: Version,
}

impl<S: WtSession> std::fmt::Debug for FetchResponse<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FetchResponse")
            .field("end_of_track", &self.end_of_track)
            .field("end_location", &self.end_location)
            .finish()
    }
}

impl<S: WtSession> FetchResponse<S> {
    /// The next object, or `None` when the response is complete (End of Range entries are skipped; see
    /// [`FetchResponse::next_item`]).
    pub async fn next(&mut self) -> Result<Option<FetchedObject>, Error> {
        loop {
            match self.next_item().await? {
                Some(FetchItem::Object(o)) => return Ok(Some(o)),
                Some(FetchItem::EndOfRange { .. }) => continue,
                None => return Ok(None),
            }
        }
    }

    /// The next entry: an object, or a range the publisher says does not exist or is unknown; `None` when the
    /// response is complete.
    pub async fn next_item(&mut self) -> Result<Option<FetchItem>, Error> {
        if self.reader.is_none() {
            let Some(rx) = self.pending.take() else {
                return Ok(None);
            };
            let reader = tokio::time::timeout(Duration::from_secs(10), rx)
                .await
                .map_err(|_| Error::Request(RequestFailure::Timeout))?
                .map_err(|_| Error::Request(RequestFailure::Cancelled))?;
            self.reader = Some((reader, FetchReader::new(self.order, self.version)));
        }
        let Some((reader, state)) = self.reader.as_mut() else {
            return Ok(None);
        };
        let Some(entry) = reader.decode_with(|b| state.decode_entry(b)).await? else {
            // Complete: release the request stream.
            self.request = None;
            return Ok(None);
        };
        Ok(Some(match entry {
            FetchEntry::EndOfRange(r) => FetchItem::EndOfRange { end: r.end, unknown: r.unknown },
            FetchEntry::Object(o) => {
                let payload = reader.payload(o.payload_len).await?;
                FetchItem::Object(FetchedObject {
                    location: o.location(),
                    subgroup: o.subgroup_id,
                    priority: o.publisher_priority,
                    properties: o.properties,
                    payload,
                })
            }
        }))
    }
}
