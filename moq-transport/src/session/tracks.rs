//! Serving the peer's SUBSCRIBE_TRACKS: every track under the prefix is PUBLISHed to it, those published later
//! too, until the peer cancels; a track we will not PUBLISH is named in PUBLISH_SKIPPED.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use moq_wire::control::{ControlMessage, PublishSkipped, RequestOk};
use moq_wire::namespace::{FullTrackName, TrackNamespace};
use moq_wire::params::Parameters;
use web_transport_trait::Session as WtSession;

use super::authority::Grant;
use super::handles::Published;
use super::request::{PrefixClaim, unexpected};
use super::{Inner, Session};
use crate::error::{Error, SessionError};
use crate::io::{Reader, Writer};
use crate::model::TrackProducer;
use crate::origin::Origin;

/// How long a PUBLISH for SUBSCRIBE_TRACKS waits for the peer to allow a request stream before the track is
/// named in PUBLISH_SKIPPED instead (draft-19: "no available bidirectional streams").
const PUBLISH_OPEN_WAIT: Duration = Duration::from_millis(100);

/// What every PUBLISH of one SUBSCRIBE_TRACKS shares.
struct Offer<'a, S: WtSession> {
    session: Session<S>,
    grant: &'a Grant,
    /// The SUBSCRIBE_TRACKS's parameters: the default parameters of each subscription it makes.
    defaults: &'a Parameters,
}

pub(super) async fn serve_tracks<S: WtSession>(
    inner: &Arc<Inner<S>>,
    writer: &mut Writer<S::SendStream>,
    reader: &mut Reader<S::RecvStream>,
    mut claim: PrefixClaim<'_, S>,
    grant: &Grant,
    defaults: &Parameters,
) -> Result<(), Error> {
    let v = inner.version;
    let origin = inner.config.origin.clone();
    // Watch before the snapshot, so that nothing published in between is missed.
    let mut later = origin.watch_tracks();
    writer.message(&RequestOk::default().into(), v).await?;
    // An internal handle: it must not close the session when dropped.
    let offers = Offer { session: Session { inner: inner.clone(), _handle: None }, grant, defaults };
    let mut published: HashMap<FullTrackName, (TrackProducer, Published)> = HashMap::new();
    offer_all(&offers, writer, &origin, claim.prefix(), &mut published).await?;
    let mut fin = false;
    loop {
        let prefix_now = claim.prefix().clone();
        let prefix = &prefix_now;
        tokio::select! {
            name = later.recv() => match name {
                Ok(name) if name.namespace.starts_with(prefix) => {
                    if let Some(track) = origin.track(&name) {
                        offer(&offers, writer, prefix, track, &mut published).await?;
                    }
                }
                Ok(_) => {}
                // Missed some: offer whatever is there that was not offered yet.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    offer_all(&offers, writer, &origin, prefix, &mut published).await?;
                }
                Err(_) => return Ok(()),
            },
            msg = reader.request_message(v), if !fin => match msg {
                Ok(Some(ControlMessage::RequestUpdate(u))) => {
                    //= draft-ietf-moq-transport-19#updating-namespace-subscriptions
                    //# Updating the prefix of a SUBSCRIBE_TRACKS has
                    //# no effect on existing subscriptions.
                    if let Some(new) = claim.answer_update(grant, writer, &u).await? {
                        offer_all(&offers, writer, &origin, &new, &mut published).await?;
                    }
                }
                Ok(Some(m)) => return Err(Error::Session(SessionError::ProtocolViolation(unexpected(&m)))),
                // A FIN is not a cancel: keep publishing until STOP_SENDING or a reset.
                Ok(None) => fin = true,
                Err(e) if e.is_session_error() => return Err(e),
                Err(_) => return Ok(()),
            },
            _ = writer.closed() => return Ok(()),
        }
    }
}

/// Offers every track under `prefix` (see [`offer`]).
async fn offer_all<S: WtSession>(
    offers: &Offer<'_, S>,
    writer: &mut Writer<S::SendStream>,
    origin: &Origin,
    prefix: &TrackNamespace,
    published: &mut HashMap<FullTrackName, (TrackProducer, Published)>,
) -> Result<(), Error> {
    for track in origin.tracks(prefix) {
        offer(offers, writer, prefix, track, published).await?;
    }
    Ok(())
}

/// PUBLISHes `track` unless it was already (the same track), the subscriber published it, or may not read it;
/// says PUBLISH_SKIPPED if the PUBLISH fails or cannot be opened at once.
async fn offer<S: WtSession>(
    offers: &Offer<'_, S>,
    writer: &mut Writer<S::SendStream>,
    prefix: &TrackNamespace,
    track: TrackProducer,
    published: &mut HashMap<FullTrackName, (TrackProducer, Published)>,
) -> Result<(), Error> {
    let session = &offers.session;
    let name = track.info().name.clone();
    if published.get(&name).is_some_and(|(t, _)| t.is_same(&track)) || track.ended().is_some() {
        return Ok(());
    }
    //= draft-ietf-moq-transport-19#subscribing-to-namespaces
    //# SUBSCRIBE_TRACKS requests track subscriptions: the publisher sends PUBLISH
    //# messages for tracks within matching namespaces, excluding tracks published
    //# by the subscriber.
    if session.inner.published_by_peer(&name) {
        return Ok(());
    }
    //= draft-ietf-moq-transport-19#subscriptions
    //# Relays MUST NOT send any PUBLISH messages
    //# without knowing the client is interested in and authorized to receive the
    //# content.
    // Not even its name in a PUBLISH_SKIPPED.
    if !session.inner.authorize(offers.grant.action, &name.namespace, &offers.grant.tokens) {
        return Ok(());
    }
    match session.publish_with(track.clone(), offers.defaults, PUBLISH_OPEN_WAIT).await {
        // A replaced track's old publication ends as its handle drops.
        Ok(p) => {
            published.insert(name, (track, p));
        }
        Err(e) => {
            tracing::debug!(error = %e, track = %name, "PUBLISH for SUBSCRIBE_TRACKS failed");
            if let Some(suffix) = name.namespace.strip_prefix(prefix) {
                let skipped = PublishSkipped { suffix, name: name.name.clone() };
                writer.message(&skipped.into(), session.inner.version).await?;
            }
        }
    }
    Ok(())
}

impl<S: WtSession> Inner<S> {
    /// Whether the peer itself publishes `name` to us: under a namespace it announced, or PUBLISHed.
    fn published_by_peer(&self, name: &FullTrackName) -> bool {
        self.state().published_by_peer(name)
    }
}
