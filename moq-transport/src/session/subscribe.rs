//! Answering the peer's SUBSCRIBE: find the track (waiting for a publisher when asked to), apply the filter,
//! SUBSCRIBE_OK, then serve it (`serve`).

use std::sync::Arc;
use std::time::Duration;

use moq_wire::RequestId;
use moq_wire::codes::RequestErrorCode;
use moq_wire::control::{Subscribe, SubscribeOk};
use moq_wire::params::Parameters;
use tokio::sync::watch;
use web_transport_trait::Session as WtSession;

use super::Inner;
use super::publisher::track_properties;
use super::request::reject;
use super::rules::{Start, subscription_window, track_group_order};
use super::serve::serve_subscription;
use super::subscription::{Served, SubState};
use crate::error::Error;
use crate::io::{Reader, Writer};
use crate::model::TrackProducer;
use crate::origin::TrackRequest;
use crate::origin::{Origin, Unresolved};

/// The longest a SUBSCRIBE is held for a publisher to appear, whatever RENDEZVOUS_TIMEOUT asks.
pub(super) const MAX_RENDEZVOUS: Duration = Duration::from_secs(60);
/// How soon a held SUBSCRIBE looks again, besides whenever a namespace or track appears: for a publisher that
/// announced its namespace before the track existed. Doubled after each look, up to [`RENDEZVOUS_RETRY_MAX`]
/// (each look may be a SUBSCRIBE upstream).
const RENDEZVOUS_RETRY: Duration = Duration::from_millis(250);
const RENDEZVOUS_RETRY_MAX: Duration = Duration::from_secs(2);

/// The track a SUBSCRIBE names: at once, or within `wait` once a publisher appears. A refusal other than "no such
/// track" (an upstream that timed out or refused) is final.
//= draft-ietf-moq-transport-19#rendezvous-timeout
//# If the RENDEZVOUS_TIMEOUT is present, the relay SHOULD hold the subscription
//# and wait for a publisher to appear, up to the specified duration.
async fn rendezvous(origin: &Origin, request: &TrackRequest, wait: Duration) -> Result<TrackProducer, Unresolved> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut events = origin.watch();
    let mut tracks = origin.watch_tracks();
    let mut retry = RENDEZVOUS_RETRY;
    loop {
        match origin.find_for(request.clone()).await {
            Ok(track) => return Ok(track),
            Err(e) if e.code != RequestErrorCode::DoesNotExist => return Err(e),
            Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
            Err(_) => {}
        }
        tokio::select! {
            _ = events.recv() => {}
            _ = tracks.recv() => {}
            _ = tokio::time::sleep(retry) => retry = (retry * 2).min(RENDEZVOUS_RETRY_MAX),
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

/// A SUBSCRIBE not yet answered, for joining FETCHes pipelined behind it: while it lives, [`joining_wait`] waits.
struct Pending<'a, S: WtSession> {
    inner: &'a Inner<S>,
    id: u64,
    _tx: watch::Sender<()>,
}

impl<'a, S: WtSession> Pending<'a, S> {
    fn register(inner: &'a Inner<S>, id: RequestId) -> Pending<'a, S> {
        let (tx, rx) = watch::channel(());
        inner.state().pending_subscribes.insert(id.0, rx);
        Pending { inner, id: id.0, _tx: tx }
    }
}

impl<S: WtSession> Drop for Pending<'_, S> {
    fn drop(&mut self) {
        self.inner.state().pending_subscribes.remove(&self.id);
    }
}

/// Waits (up to the longest rendezvous) until the SUBSCRIBE `id` is answered, if it is still being decided.
//= draft-ietf-moq-transport-19#joining-fetches
//# Because Joining Fetch references an existing
//# subscription, if that subscription has not yet been established, the Publisher
//# receiving the Joining Fetch buffers the pending Joining Fetch until either
//# the Subscription is established or the request times out.
pub(super) async fn joining_wait<S: WtSession>(inner: &Inner<S>, id: u64) {
    let pending = inner.state().pending_subscribes.get(&id).cloned();
    if let Some(mut rx) = pending {
        // The sender goes when the SUBSCRIBE is answered (or refused): `changed` then ends with an error.
        let _ = tokio::time::timeout(MAX_RENDEZVOUS, rx.changed()).await;
    }
}

/// Answers the peer's SUBSCRIBE from the origin and serves it until it ends or is cancelled.
pub(super) async fn serve_subscribe<S: WtSession>(
    inner: &Arc<Inner<S>>,
    writer: &mut Writer<S::SendStream>,
    reader: &mut Reader<S::RecvStream>,
    m: Subscribe,
) -> Result<(), Error> {
    let v = inner.version;
    let request_id = m.request_id;
    let origin = &inner.config.origin;
    let pending = Pending::register(inner, request_id);
    let wait = Duration::from_millis(m.params.rendezvous_timeout.unwrap_or(0)).min(MAX_RENDEZVOUS);
    let request = TrackRequest {
        name: m.track.clone(),
        priority: m.params.subscriber_priority,
        new_group_request: m.params.new_group_request,
    };
    let track = match rendezvous(origin, &request, wait).await {
        Ok(track) => track,
        //= draft-ietf-moq-transport-19#rendezvous-timeout
        //# If the timeout expires without a publisher, the relay SHOULD respond
        //# with REQUEST_ERROR with error code TIMEOUT.
        Err(e) if e.code == RequestErrorCode::DoesNotExist && !wait.is_zero() => {
            return reject(writer, v, RequestErrorCode::Timeout, "no publisher appeared in time").await;
        }
        Err(e) => return reject(writer, v, e.code, &e.reason).await,
    };
    let alias = inner.state().next_alias();
    let largest = track.largest();
    let (start, end_group) = match subscription_window(m.params.location_filter, largest) {
        Ok(w) => w,
        Err((code, reason)) => return reject(writer, v, code, reason).await,
    };
    // The consumer is taken now, with LARGEST_OBJECT, so that what we send starts where SUBSCRIBE_OK
    // says (objects written while SUBSCRIBE_OK is on its way are not skipped).
    let consumer = match start {
        Start::Cached(_) => track.consume_from_start(),
        _ => track.consume(),
    };
    let ok = SubscribeOk {
        track_alias: alias,
        params: Parameters { largest_object: largest, ..Default::default() },
        track_properties: track_properties(track.info()),
    };
    // Registered before SUBSCRIBE_OK goes out, so a joining FETCH right behind it finds the subscription.
    let state = SubState::new(&m.params, track_group_order(&track.info().properties));
    if state.settings().forward {
        state.set_joining(largest);
    }
    inner.state().served.insert(request_id.0, Served { track: track.clone(), state: state.clone() });
    drop(pending);
    //= draft-ietf-moq-transport-19#new-group-request
    //# A subscriber MAY
    //# include this parameter in SUBSCRIBE without foreknowledge of support.
    if let Some(value) = m.params.new_group_request {
        track.request_new_group(value);
    }
    let result = writer.message(&ok.into(), v).await;
    if result.is_ok() {
        serve_subscription(inner, writer, reader, track, consumer, alias, start, end_group, &state).await;
    }
    inner.state().served.remove(&request_id.0);
    result
}
