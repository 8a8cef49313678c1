//! Tracks the relay does not hold yet: one upstream subscription per track while anyone needs it, and FETCH of
//! history it never held.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use moq_transport::wire::namespace::FullTrackName;
use moq_transport::{Origin, Session, SubscribeOptions, TrackProducer, TrackRequest, Unresolved};

use crate::Metrics;
use crate::merge::Merged;
use crate::routes::{Router, Upstream, withdraw_if_unserved};

/// Finds a track for a subscriber: one copy per track, shared by everyone, fed by a subscription to every
/// publisher of it. The longest-prefix publisher that accepts is waited for; the others join in the background.
/// When none accepts, the subscriber gets the last publisher's answer (its refusal, or TIMEOUT when it never
/// let us open the request: its stream credit used up).
pub(crate) async fn resolve(
    router: &Arc<Router>,
    metrics: &Metrics,
    origin: &Origin,
    request: TrackRequest,
    linger: std::time::Duration,
) -> Result<TrackProducer, Unresolved> {
    let name = request.name.clone();
    let lock = router.resolving(&name);
    let _guard = lock.lock().await;
    // Someone may have subscribed upstream while we waited.
    if let Some(t) = origin.track(&name)
        && t.ended().is_none()
    {
        return Ok(t);
    }
    let mut routes = router.routes(&name.namespace).into_iter();
    let mut refused = Unresolved::not_found();
    //= draft-ietf-moq-transport-19#new-group-request
    //# A relay that receives a NEW_GROUP_REQUEST for a Track without an `Established`
    //# subscription MUST include the NEW_GROUP_REQUEST when subscribing upstream.
    // The first viewer's priority, too: the upstream subscription exists for it.
    let options = SubscribeOptions {
        priority: request.priority.unwrap_or(SubscribeOptions::default().priority),
        new_group_request: request.new_group_request,
        ..Default::default()
    };
    let (first_id, first) = loop {
        let Some((id, upstream)) = routes.next() else { return Err(refused) };
        match upstream.subscribe(name.clone(), options.clone()).await {
            Ok(s) => break (id, s),
            Err(e) => {
                tracing::debug!(track = %name, error = %e, "upstream subscribe failed");
                refused = upstream_refusal(&e);
            }
        }
    };
    metrics.upstream_subscriptions.fetch_add(1, Ordering::Relaxed);
    tracing::info!(track = %name, "subscribed upstream");
    let (window, max_bytes) = router.cache;
    let track = TrackProducer::with_limits(first.track().info().clone(), window, max_bytes);
    let merged = Merged::new(track.clone(), router.grace);
    merged.add_source(first.track().consume_from_start());
    let ended = track.consume();
    // The NEW_GROUP_REQUEST forwarder watches for the end too: its consumer is the relay's, not a viewer's.
    let forwarder_ended = track.dynamic_groups().then(|| track.consume());
    // What the relay itself holds; every served subscription or FETCH adds one more.
    let own_consumers = track.consumer_count();
    router.upstreams(|u| u.insert(name.clone(), Upstream { merged, sources: vec![(first_id, first)] }));
    for (id, session) in routes {
        add_publisher(router.clone(), name.clone(), id, session);
    }
    if let Some(ended) = forwarder_ended {
        let requests = track.new_group_requests();
        // What the upstream SUBSCRIBE asked for is outstanding already.
        let asked = request.new_group_request.map(|v| (v, track.largest().map(|l| l.group.0)));
        let forwarder = forward_new_group_requests(router.clone(), name.clone(), track.clone(), requests, ended, asked);
        tokio::spawn(forwarder);
    }
    let (router, origin, watched) = (router.clone(), origin.clone(), track.clone());
    tokio::spawn(async move {
        watch_upstream(&router, &origin, &name, watched, ended, own_consumers, linger).await;
    });
    Ok(track)
}

/// Takes a track a session pushed with PUBLISH into the relay's copy of it: the copy subscribers already read
/// (from an upstream subscription or an earlier PUBLISH) when there is one, otherwise a new copy in the origin.
/// So a publisher that PUBLISHes again on a new session (draft-19 §Graceful Publisher Relay Switchover) feeds
/// the same copy, deduplicated, and its viewers carry on when the old session goes.
pub(crate) fn take_published(router: &Arc<Router>, origin: &Origin, pushed: TrackProducer) {
    let name = pushed.info().name.clone();
    let copy = router.upstreams(|upstream| {
        if upstream.get(&name).is_some_and(|u| u.merged.add_source(pushed.consume_from_start())) {
            return None;
        }
        let (window, max_bytes) = router.cache;
        let copy = TrackProducer::with_limits(pushed.info().clone(), window, max_bytes);
        let merged = Merged::new(copy.clone(), router.grace);
        merged.add_source(pushed.consume_from_start());
        upstream.insert(name.clone(), Upstream { merged, sources: Vec::new() });
        Some(copy)
    });
    let Some(copy) = copy else { return };
    let mut ended = copy.consume();
    origin.publish_track(copy);
    let (router, origin) = (router.clone(), origin.clone());
    // Forgotten when its last publisher ended it (or was lost for longer than the grace).
    tokio::spawn(async move {
        ended.closed().await;
        forget_ended(&router, &origin, &name);
        withdraw_if_unserved(&router, &origin, &name.namespace);
    });
}

/// What a subscriber hears when the publisher's SUBSCRIBE failed: the publisher's own code, TIMEOUT when the
/// request could not even be opened in time, INTERNAL_ERROR for a session that failed.
fn upstream_refusal(e: &moq_transport::Error) -> Unresolved {
    use moq_transport::wire::codes::RequestErrorCode;
    match e {
        moq_transport::Error::Request(moq_transport::RequestFailure::Rejected { code, reason }) => {
            Unresolved { code: *code, reason: reason.clone() }
        }
        moq_transport::Error::Request(moq_transport::RequestFailure::Timeout) => Unresolved {
            code: RequestErrorCode::Timeout,
            reason: "the publisher did not take the request in time".into(),
        },
        _ => Unresolved { code: RequestErrorCode::InternalError, reason: "the publisher's session failed".into() },
    }
}

/// Subscribes to one more publisher of a track the relay holds, and feeds its objects into the relay's copy.
pub(crate) fn add_publisher(router: Arc<Router>, name: FullTrackName, id: u64, session: Session) {
    tokio::spawn(async move {
        let sub = match session.subscribe(name.clone(), SubscribeOptions::default()).await {
            Ok(s) => s,
            Err(e) => return tracing::debug!(track = %name, error = %e, "subscribe to another publisher failed"),
        };
        router.upstreams(|upstream| {
            let Some(u) = upstream.get_mut(&name) else { return };
            if u.feeds_from(id) || !u.merged.add_source(sub.track().consume_from_start()) {
                return;
            }
            tracing::info!(track = %name, publishers = u.sources.len() + 1, "subscribed to another publisher");
            u.sources.push((id, sub));
        });
    });
}

/// Passes subscribers' NEW_GROUP_REQUESTs for the relay's copy on to every publisher of the track, as the draft's
/// relay rules say: only for a value of 0 or above the largest group, and not while a request of at least that
/// value is outstanding (until the largest group grows).
async fn forward_new_group_requests(
    router: Arc<Router>,
    name: FullTrackName,
    track: TrackProducer,
    mut requests: tokio::sync::watch::Receiver<moq_transport::NewGroupRequest>,
    mut ended: moq_transport::TrackConsumer,
    mut outstanding: Option<(u64, Option<u64>)>, // (value, largest group when sent)
) {
    loop {
        tokio::select! {
            changed = requests.changed() => if changed.is_err() { return },
            _ = ended.closed() => return,
        }
        let value = requests.borrow_and_update().value;
        let largest = track.largest().map(|l| l.group.0);
        if let Some((_, at)) = outstanding
            && largest > at
        {
            outstanding = None;
        }
        let Some(forward) = new_group_to_forward(value, largest, outstanding.map(|o| o.0)) else { continue };
        outstanding = Some((forward, largest));
        let forwarded = router.upstreams(|upstream| {
            let u = upstream.get(&name)?;
            for (_, sub) in &u.sources {
                sub.request_new_group(forward);
            }
            Some(u.sources.len())
        });
        let Some(publishers) = forwarded else { return };
        tracing::debug!(track = %name, value = forward, publishers, "NEW_GROUP_REQUEST forwarded");
    }
}

/// The value a relay forwards for a subscriber's NEW_GROUP_REQUEST of `value`, given the largest group it holds
/// and the value of a request it already sent that is still outstanding; `None` when it forwards nothing.
//= draft-ietf-moq-transport-19#new-group-request
//# If a relay receives a NEW_GROUP_REQUEST with a non-zero value less than or equal
//# to the Largest Group, it does not send a NEW_GROUP_REQUEST upstream.
fn new_group_to_forward(value: u64, largest: Option<u64>, outstanding: Option<u64>) -> Option<u64> {
    if value != 0 && largest.is_some_and(|l| value <= l) {
        return None;
    }
    // What the request stands for: a group after the largest one.
    let wanted = if value == 0 { largest.map_or(0, |l| l + 1) } else { value };
    match outstanding {
        Some(o) if o >= wanted => None,
        _ => Some(wanted),
    }
}

/// Keeps an upstream subscription while anyone uses its track, cancels it once nobody has for `linger`, and
/// forgets the track when it ends either way.
pub(crate) async fn watch_upstream(
    router: &Arc<Router>,
    origin: &Origin,
    name: &FullTrackName,
    track: TrackProducer,
    mut ended: moq_transport::TrackConsumer,
    own_consumers: usize,
    linger: std::time::Duration,
) {
    let poll = (linger / 4).clamp(std::time::Duration::from_millis(10), std::time::Duration::from_millis(500));
    let mut idle_since: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            _ = ended.closed() => break,
            _ = tokio::time::sleep(poll) => {}
        }
        if track.consumer_count() > own_consumers {
            idle_since = None;
            continue;
        }
        let since = *idle_since.get_or_insert_with(tokio::time::Instant::now);
        if since.elapsed() < linger {
            continue;
        }
        // Nobody came back: take the track out of the origin first, so that no new subscriber finds it, then
        // cancel upstream (dropping the subscription sends the cancel).
        if origin.track(name).is_some_and(|t| t.is_same(&track)) {
            origin.remove_track(name);
        }
        let sub = router.upstreams(|upstream| match upstream.get(name) {
            Some(u) if u.merged.track().is_same(&track) => upstream.remove(name),
            _ => None,
        });
        tracing::info!(track = %name, "no subscribers left; upstream subscription cancelled");
        drop(sub);
        break;
    }
    forget_ended(router, origin, name);
}

/// Drops what the relay holds for a track whose upstream subscription ended (its cache, its routing entries),
/// unless a newer live subscription has replaced it meanwhile.
pub(crate) fn forget_ended(router: &Router, origin: &Origin, name: &FullTrackName) {
    router.upstreams(|upstream| {
        if upstream.get(name).is_some_and(|u| u.merged.track().ended().is_some()) {
            upstream.remove(name);
        }
    });
    router.forget_resolving(name);
    if origin.track(name).is_some_and(|t| t.ended().is_some()) {
        origin.remove_track(name);
    }
    tracing::debug!(track = %name, "upstream track ended; forgotten");
}

/// Forwards a FETCH for history the relay does not hold to the track's publisher and streams its answer
/// through: entries are passed on as they arrive (a few in flight), never collected whole.
pub(crate) async fn fetch_upstream(
    router: &Router,
    name: FullTrackName,
    start: moq_transport::wire::Location,
    end: moq_transport::wire::Location,
    order: moq_transport::wire::GroupOrder,
) -> Option<moq_transport::FetchSource> {
    let upstream = router.route(&name.namespace)?;
    let range = moq_transport::FetchRange::Standalone { track: name.clone(), start, end };
    let mut response = upstream.fetch(range, order).await.ok()?;
    let (tx, items) = tokio::sync::mpsc::channel(16);
    let source = moq_transport::FetchSource {
        end_of_track: response.end_of_track,
        end_location: response.end_location,
        track_properties: response.track_properties.clone(),
        items,
    };
    tokio::spawn(async move {
        let mut forwarded = 0u64;
        loop {
            let item = response.next_item().await;
            let done = !matches!(item, Ok(Some(_)));
            let item = match item {
                Ok(Some(i)) => Ok(i),
                Ok(None) => break,
                Err(e) => Err(e),
            };
            if tx.send(item).await.is_err() || done {
                break;
            }
            forwarded += 1;
        }
        tracing::debug!(track = %name, entries = forwarded, "FETCH forwarded upstream");
    });
    Some(source)
}

#[cfg(test)]
mod tests {
    use super::new_group_to_forward;

    #[test]
    fn new_group_requests_are_forwarded_as_the_draft_says() {
        assert_eq!(new_group_to_forward(0, None, None), Some(0), "nothing held: ask for any new group");
        assert_eq!(new_group_to_forward(0, Some(4), None), Some(5));
        assert_eq!(new_group_to_forward(5, Some(4), None), Some(5));
        assert_eq!(new_group_to_forward(4, Some(4), None), None, "the subscriber has not seen group 4 yet");
        assert_eq!(new_group_to_forward(2, Some(4), None), None);
        assert_eq!(new_group_to_forward(5, Some(4), Some(5)), None, "already asked for 5");
        assert_eq!(new_group_to_forward(0, Some(4), Some(5)), None);
        assert_eq!(new_group_to_forward(7, Some(4), Some(5)), Some(7));
    }
}
