//! Serving the peer's SUBSCRIBE_TRACKS: every track under the prefix is PUBLISHed to it, those published later
//! too, until the peer cancels; a track we will not PUBLISH is named in PUBLISH_SKIPPED.

use super::*;

pub(super) async fn serve_tracks<S: WtSession>(
    inner: &Arc<Inner<S>>,
    writer: &mut Writer<S::SendStream>,
    reader: &mut Reader<S::RecvStream>,
    mut claim: PrefixClaim<'_>,
    grant: &Grant,
) -> Result<(), Error> {
    let v = inner.version;
    let origin = inner.config.origin.clone();
    // Watch before the snapshot, so that nothing published in between is missed.
    let mut later = origin.watch_tracks();
    writer.message(&RequestOk::default().into(), v).await?;
    // An internal handle: it must not close the session when dropped.
    let session = Session { inner: inner.clone(), _handle: None };
    let mut published: HashMap<FullTrackName, (TrackProducer, Published)> = HashMap::new();
    offer_all(&session, grant, writer, &origin, claim.prefix(), &mut published).await?;
    let mut fin = false;
    loop {
        let prefix_now = claim.prefix().clone();
        let prefix = &prefix_now;
        tokio::select! {
            name = later.recv() => match name {
                Ok(name) if name.namespace.starts_with(prefix) => {
                    if let Some(track) = origin.track(&name) {
                        offer(&session, grant, writer, prefix, track, &mut published).await?;
                    }
                }
                Ok(_) => {}
                // Missed some: offer whatever is there that was not offered yet.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    offer_all(&session, grant, writer, &origin, prefix, &mut published).await?;
                }
                Err(_) => return Ok(()),
            },
            msg = reader.request_message(v), if !fin => match msg {
                Ok(Some(ControlMessage::RequestUpdate(u))) => {
                    //= draft-ietf-moq-transport-19#updating-namespace-subscriptions
                    //# Updating the prefix of a SUBSCRIBE_TRACKS has
                    //# no effect on existing subscriptions.
                    if let Some(new) = claim.answer_update(inner, grant, writer, &u).await? {
                        offer_all(&session, grant, writer, &origin, &new, &mut published).await?;
                    }
                }
                Ok(Some(m)) => return Err(Error::ProtocolViolation(unexpected(&m))),
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
    session: &Session<S>,
    grant: &Grant,
    writer: &mut Writer<S::SendStream>,
    origin: &Origin,
    prefix: &TrackNamespace,
    published: &mut HashMap<FullTrackName, (TrackProducer, Published)>,
) -> Result<(), Error> {
    for track in origin.tracks(prefix) {
        offer(session, grant, writer, prefix, track, published).await?;
    }
    Ok(())
}

/// PUBLISHes `track` unless it was already (the same track) or the subscriber may not read it, or says
/// PUBLISH_SKIPPED if that fails.
async fn offer<S: WtSession>(
    session: &Session<S>,
    grant: &Grant,
    writer: &mut Writer<S::SendStream>,
    prefix: &TrackNamespace,
    track: TrackProducer,
    published: &mut HashMap<FullTrackName, (TrackProducer, Published)>,
) -> Result<(), Error> {
    let name = track.info().name.clone();
    if published.get(&name).is_some_and(|(t, _)| t.is_same(&track)) || track.ended().is_some() {
        return Ok(());
    }
    //= draft-ietf-moq-transport-19#subscriptions
    //# Relays MUST NOT send any PUBLISH messages
    //# without knowing the client is interested in and authorized to receive the
    //# content.
    // Not even its name in a PUBLISH_SKIPPED.
    if !session.inner.authorize(grant.action, &name.namespace, &grant.tokens) {
        return Ok(());
    }
    match session.publish(track.clone()).await {
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
