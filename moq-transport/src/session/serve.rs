//! Serving a subscription (the peer's SUBSCRIBE, or our PUBLISH): groups, subgroup streams and datagrams.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Bytes, BytesMut};
use moq_wire::codes::{PublishDoneCode, StreamCode};
use moq_wire::control::{ControlMessage, PublishDone, RequestError, RequestOk};
use moq_wire::data::{DatagramContent, ObjectDatagram, ObjectHeader, SubgroupHeader, SubgroupIdMode, SubgroupWriter};
use moq_wire::kvp::ReasonPhrase;
use moq_wire::params::Parameters;
use moq_wire::{ObjectId, ObjectStatus, TrackAlias};
use tokio::sync::watch;
use tokio::task::JoinSet;
use web_transport_trait::Session as WtSession;

use super::Inner;
use super::request::MAX_FILTER_RANGES;
use super::rules::{Start, position_base, publish_done_status, send_order, subscription_update};
use super::serve_limits::{Job, Shed, Timeouts};
use super::subscription::SubState;
use crate::error::Error;
use crate::io::{Reader, Writer};
use crate::model::{Closed, Delivery, GroupConsumer, SubgroupConsumer, TrackConsumer, TrackProducer};

/// Groups of one subscription being written at once; older ones are reset (CANCELLED) beyond this.
pub(super) const MAX_GROUPS_IN_FLIGHT: usize = 4;

/// Serves one subscription on its request stream until the track or the filter ends (PUBLISH_DONE, FIN) or the
/// subscriber cancels (reset / STOP_SENDING; our side is then reset too, and so are the data streams).
#[allow(clippy::too_many_arguments)]
pub(super) async fn serve_subscription<S: WtSession>(
    inner: &Arc<Inner<S>>,
    writer: &mut Writer<S::SendStream>,
    reader: &mut Reader<S::RecvStream>,
    track: TrackProducer,
    consumer: TrackConsumer,
    alias: TrackAlias,
    start: Start,
    end_group: Option<u64>,
    state: &SubState,
) {
    let serve = serve_track(inner.clone(), consumer, alias, start, end_group, state.clone());
    tokio::pin!(serve);
    let outcome = tokio::select! {
        out = &mut serve => Some(out),
        failed = read_updates(inner, reader, writer, &track, state) => match failed {
            // A refused update ends the subscription: its streams close before PUBLISH_DONE goes out.
            Some(code) => {
                state.cancel();
                let _ = (&mut serve).await;
                Some(code)
            }
            None => None,
        },
    };
    match outcome {
        Some(status) => {
            let done = PublishDone { status, stream_count: state.streams(), reason: ReasonPhrase::default() };
            if writer.message(&done.into(), inner.version).await.is_ok() {
                writer.finish();
            }
        }
        None => {
            // Cancelled: dropping `serve` aborts the data stream tasks, whose writers reset their streams.
            state.cancel();
            writer.reset(StreamCode::Cancelled);
            reader.stop(StreamCode::Cancelled);
        }
    }
}

/// Reads REQUEST_UPDATEs from the subscriber and answers them. Returns `None` when the subscriber cancels (a reset
/// of its side, or STOP_SENDING on ours), or UPDATE_FAILED after refusing an update. A FIN only means "no more
/// updates" (draft-19 §3.3.2.1) and serving goes on.
pub(super) async fn read_updates<S: WtSession>(
    inner: &Arc<Inner<S>>,
    reader: &mut Reader<S::RecvStream>,
    writer: &mut Writer<S::SendStream>,
    track: &TrackProducer,
    state: &SubState,
) -> Option<PublishDoneCode> {
    let v = inner.version;
    loop {
        let msg = tokio::select! {
            m = reader.request_message(v) => m,
            _ = writer.closed() => return None, // STOP_SENDING
        };
        match msg {
            Ok(Some(ControlMessage::RequestUpdate(u))) => {
                let checked = match inner.check_update(&u) {
                    Ok(checked) => checked,
                    Err(e) => {
                        inner.close(e);
                        return None;
                    }
                };
                let checked =
                    checked.and_then(|_| subscription_update(&u.params, MAX_FILTER_RANGES, track.dynamic_groups()));
                if let Err((code, reason)) = checked {
                    return match writer.message(&RequestError::new(code, reason).into(), v).await {
                        Ok(()) => Some(PublishDoneCode::UpdateFailed),
                        Err(_) => None,
                    };
                }
                if let Some(value) = u.params.new_group_request {
                    track.request_new_group(value);
                }
                state.update(&u.params, track.largest());
                let ok = RequestOk {
                    params: Parameters { largest_object: track.largest(), ..Default::default() },
                    ..Default::default()
                };
                if writer.message(&ok.into(), v).await.is_err() {
                    return None;
                }
            }
            Ok(Some(_)) => {
                inner.close(Error::protocol("unexpected message on a subscription"));
                return None;
            }
            Ok(None) => {
                // FIN: no more updates. Keep serving until STOP_SENDING.
                let _ = writer.closed().await;
                return None;
            }
            Err(e) => {
                if e.is_session_error() {
                    inner.close(e);
                }
                return None;
            }
        }
    }
}

/// Serves one track to one subscriber: a task per group, a stream per subgroup. Returns the PUBLISH_DONE
/// status when the track (or the filter's range) ends.
pub(super) async fn serve_track<S: WtSession>(
    inner: Arc<Inner<S>>,
    mut consumer: TrackConsumer,
    alias: TrackAlias,
    start: Start,
    end_group: Option<u64>,
    state: SubState,
) -> PublishDoneCode {
    let from = start.location();
    let mut tasks = JoinSet::new();
    let mut in_flight: std::collections::VecDeque<InFlight> = Default::default();
    let mut settings = state.watch();
    let mut served_any = false;
    let status = loop {
        // Whichever branch below wins, a cancel or Forward 0 is acted on here.
        let now = *settings.borrow_and_update();
        if now.cancelled {
            break PublishDoneCode::InternalError;
        }
        if !now.forward {
            // Forward is 0: no more objects, so the streams in flight are abandoned.
            for group in in_flight.drain(..) {
                group.stop.send_replace(true);
            }
        }
        let group = tokio::select! {
            g = consumer.next_group() => g,
            Ok(()) = settings.changed() => continue,
        };
        let group = match group {
            Ok(g) => g,
            //= draft-ietf-moq-transport-19#malformed-tracks
            //# If a relay detects a Malformed Track, it MUST immediately terminate downstream
            //# subscriptions with PUBLISH_DONE and reset any fetch streams with
            //# Status Code `MALFORMED_TRACK`.
            Err(end) => break publish_done_status(end),
        };
        let gid = group.id().0;
        if from.is_some_and(|f| gid < f.group.0) {
            continue;
        }
        if end_group.is_some_and(|e| gid > e) {
            break PublishDoneCode::SubscriptionEnded;
        }
        //= draft-ietf-moq-transport-19#subscriptions
        //# The publisher does not send Objects if the Forward State is 0
        let now = state.settings();
        if !now.forward {
            continue;
        }
        // A relay short of CPU skips whole groups, least important subscriptions first; never a subscription's
        // first group, so that a new viewer starts at once.
        if state.live
            && served_any
            && let Some(overload) = &inner.config.overload
            && overload.skips(state.key, now.priority, gid)
        {
            inner.config.stats.groups_shed.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        served_any = true;
        // Forget groups whose tasks are done.
        while tasks.try_join_next().is_some() {}
        in_flight.retain(|g| !g.stop.is_closed());
        // Bound the groups with streams still being written: a subscriber this far behind loses the oldest.
        // A group whose subgroups are all sent does not count, however long it waits for late subgroups.
        while in_flight.iter().filter(|g| g.sending()).count() >= MAX_GROUPS_IN_FLIGHT {
            let Some(oldest) = in_flight.iter().position(|g| g.sending()) else { break };
            if let Some(group) = in_flight.remove(oldest) {
                group.stop.send_replace(true);
                inner.config.stats.groups_skipped.fetch_add(1, Ordering::Relaxed);
            }
        }
        // Ranked from a base that keeps every group in flight, and this one, in order.
        let oldest = in_flight.iter().map(|g| g.group).min().unwrap_or(gid);
        let base = position_base(now.base, oldest, gid);
        if base != now.base {
            state.set_base(base);
        }
        let (stop, stopped) = watch::channel(false);
        let active = Arc::new(AtomicU64::new(0));
        in_flight.push_back(InFlight { group: gid, stop, active: active.clone() });
        let first_object = from.filter(|f| f.group.0 == gid).map(|f| f.object);
        tasks.spawn(serve_group(
            inner.clone(),
            Timeouts::new(consumer.info(), &state),
            group,
            alias,
            first_object,
            state.clone(),
            stopped,
            active,
        ));
        if end_group == Some(gid) {
            // The last group of an AbsoluteRange: finish it, then end.
            while tasks.join_next().await.is_some() {}
            break PublishDoneCode::SubscriptionEnded;
        }
    };
    if status == PublishDoneCode::InternalError && state.settings().cancelled {
        for group in in_flight {
            group.stop.send_replace(true);
        }
    }
    // PUBLISH_DONE only after every stream of the subscription is closed.
    while tasks.join_next().await.is_some() {}
    status
}

/// A group being served to one subscriber.
struct InFlight {
    group: u64,
    /// Set to abandon the group (its open streams are reset with CANCELLED).
    stop: watch::Sender<bool>,
    /// Subgroup streams of the group not yet completely written.
    active: Arc<AtomicU64>,
}

impl InFlight {
    fn sending(&self) -> bool {
        self.active.load(Ordering::Relaxed) > 0
    }
}

/// Counts a subgroup stream as active while it lives.
pub(super) struct ActiveStream(Arc<AtomicU64>);

impl ActiveStream {
    fn new(counter: &Arc<AtomicU64>) -> ActiveStream {
        counter.fetch_add(1, Ordering::Relaxed);
        ActiveStream(counter.clone())
    }
}

impl Drop for ActiveStream {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn serve_group<S: WtSession>(
    inner: Arc<Inner<S>>,
    timeouts: Timeouts,
    mut group: GroupConsumer,
    alias: TrackAlias,
    first_object: Option<ObjectId>,
    state: SubState,
    stopped: watch::Receiver<bool>,
    active: Arc<AtomicU64>,
) {
    let mut subgroups = JoinSet::new();
    let mut stop = stopped.clone();
    // The task lives until the group is finished, leaves the track's window, or the track ends: a subgroup that
    // arrives after newer groups started (its stream held up by loss) is still owed to the subscriber.
    loop {
        let sub = tokio::select! {
            s = group.next_subgroup_to_end() => s,
            // Finished subgroup tasks are reaped at once: a group may wait long for a late one.
            Some(_) = subgroups.join_next(), if !subgroups.is_empty() => continue,
            _ = stop.wait_for(|s| *s) => break,
        };
        let Some(sub) = sub else { break };
        //= draft-ietf-moq-transport-19#object-header
        //# In a subscription, an Object MUST be sent according to its Object Forwarding Preference
        match sub.info().delivery {
            Delivery::Streams => subgroups.spawn(serve_subgroup(
                inner.clone(),
                Job { group: group.id(), alias, first_object, timeouts },
                sub,
                Shed::new(&inner, &state, &group),
                stopped.clone(),
                ActiveStream::new(&active),
            )),
            Delivery::Datagrams => subgroups.spawn(serve_datagrams(
                inner.clone(),
                Job { group: group.id(), alias, first_object, timeouts },
                sub,
                stopped.clone(),
            )),
        };
    }
    while subgroups.join_next().await.is_some() {}
}

/// Sends each object of a subgroup as one OBJECT_DATAGRAM.
pub(super) async fn serve_datagrams<S: WtSession>(
    inner: Arc<Inner<S>>,
    job: Job,
    mut sub: SubgroupConsumer,
    mut stopped: watch::Receiver<bool>,
) {
    let Job { group, alias, first_object, timeouts } = job;
    let v = inner.version;
    let max = inner.transport.max_datagram_size();
    loop {
        let next = tokio::select! {
            n = sub.next_timed() => n,
            _ = stopped.wait_for(|s| *s) => return,
        };
        let Ok((o, at)) = next else { return };
        if first_object.is_some_and(|f| o.id < f) {
            continue;
        }
        // A late datagram is dropped rather than sent. Each datagram is its own subgroup's first object.
        if timeouts.for_first_object(&o.properties).datagram().is_some_and(|t| at.elapsed() > t) {
            continue;
        }
        // A Normal object is a payload, even an empty one: only a status datagram has the STATUS bit, and that
        // bit may not go with END_OF_GROUP (a zero-length last object of its group would have been dropped).
        let content = match o.status {
            ObjectStatus::Normal => DatagramContent::Payload(o.payload),
            status => DatagramContent::Status(status),
        };
        //= draft-ietf-moq-transport-19#object-datagram
        //# Type values with both the STATUS bit (0x20) and END_OF_GROUP bit (0x02) set: 0x22,
        //# 0x23, 0x26, 0x27, 0x2A, 0x2B, 0x2E, 0x2F. An object status message cannot signal
        //# end of group.
        let end_of_group = sub.info().end_of_group && matches!(content, DatagramContent::Payload(_));
        let d = ObjectDatagram {
            track_alias: alias,
            group_id: group,
            object_id: o.id,
            publisher_priority: Some(sub.priority()),
            properties: o.properties,
            end_of_group,
            content,
        };
        let Ok(bytes) = d.encode_to_vec(v) else { continue };
        if let Some(log) = &inner.qlog {
            let len = match &d.content {
                DatagramContent::Payload(p) => p.len(),
                DatagramContent::Status(_) => 0,
            };
            log.datagram(true, &d, len);
        }
        //= draft-ietf-moq-transport-19#object-datagram
        //# When the total size is larger than the maximum datagram size for the session, the Object will be
        //# dropped without any explicit notification.
        if bytes.len() <= max {
            let _ = inner.transport.send_datagram(Bytes::from(bytes));
        }
    }
}

pub(super) async fn serve_subgroup<S: WtSession>(
    inner: Arc<Inner<S>>,
    job: Job,
    mut sub: SubgroupConsumer,
    shed: Shed,
    mut stopped: watch::Receiver<bool>,
    _active: ActiveStream,
) {
    let state = &shed.state;
    let Job { group, alias, first_object, mut timeouts } = job;
    // The first object read may override the track's delivery timeouts for this subgroup.
    let mut first_seen = false;
    let v = inner.version;
    let Ok(stream) = inner.transport.open_uni().await else {
        return;
    };
    state.count_stream();
    let mut writer = Writer::new(stream);
    let mut settings = state.watch();
    let (mut subscriber_priority, mut base) = {
        let now = settings.borrow_and_update();
        (now.priority, now.base)
    };
    let mut budget = shed.budget(subscriber_priority);
    writer.set_priority(send_order(subscriber_priority, sub.priority(), group.0, base, state.order));
    let header = SubgroupHeader {
        track_alias: alias,
        group_id: group,
        subgroup: if sub.id().0 == 0 { SubgroupIdMode::Zero } else { SubgroupIdMode::Explicit(sub.id()) },
        publisher_priority: Some(sub.priority()),
        has_properties: true,
        end_of_group: sub.info().end_of_group,
        //= draft-ietf-moq-transport-19#model-subgroup
        //# A relay forwarding a subgroup that begins with the first object ever published in that subgroup MUST
        //# set the FIRST_OBJECT bit.
        // Under a filter starting mid-group, a subgroup still begins with its first object if that object is at
        // or after the filter's start (a subgroup whose first object has not arrived yet is not claimed).
        first_object: sub.info().first_object
            && first_object.is_none_or(|f| f.0 == 0 || sub.first_id().is_some_and(|first| first >= f)),
    };
    if let Some(log) = inner.stream_log(true, Some("subgroup_header")) {
        log.subgroup_header(true, &header);
    }
    let mut w = SubgroupWriter::new(header, v);
    let mut buf = BytesMut::with_capacity(64);
    // The header goes out at once: the subscriber learns the subgroup exists even if it is reset later.
    if w.write_header(&mut buf).is_err() || writer.write(&buf).await.is_err() {
        return;
    }
    buf.clear();
    enum Step {
        Next(Result<(crate::model::Object, tokio::time::Instant), Closed>),
        Stop,
        PeerStopped,
        Reprioritise,
        SessionClosed,
    }
    let mut session = inner.closed.subscribe();
    loop {
        let step = tokio::select! {
            n = sub.next_timed() => Step::Next(n),
            _ = stopped.wait_for(|s| *s) => Step::Stop,
            _ = writer.closed() => Step::PeerStopped,
            Ok(()) = settings.changed() => Step::Reprioritise,
            _ = session.wait_for(|c| c.is_some()) => Step::SessionClosed,
        };
        let next = match step {
            Step::Next(n) => n,
            Step::SessionClosed => {
                writer.reset(StreamCode::SessionClosed);
                return;
            }
            Step::Reprioritise => {
                let (priority, new_base) = {
                    let now = settings.borrow_and_update();
                    (now.priority, now.base)
                };
                if (priority, new_base) == (subscriber_priority, base) {
                    continue;
                }
                (subscriber_priority, base) = (priority, new_base);
                budget = shed.budget(subscriber_priority);
                writer.set_priority(send_order(subscriber_priority, sub.priority(), group.0, base, state.order));
                continue;
            }
            //= draft-ietf-moq-transport-19#stream-reset-codes
            //# TOO_FAR_BEHIND (0x5):
            //# : The corresponding subscription has exceeded the publisher's resource limits and
            //#   is being terminated
            // Abandoning one group does not end the subscription: CANCELLED.
            Step::Stop => {
                writer.reset(StreamCode::Cancelled);
                return;
            }
            Step::PeerStopped => return,
        };
        match next {
            Ok((o, at)) => {
                if !first_seen {
                    first_seen = true;
                    timeouts = timeouts.for_first_object(&o.properties);
                }
                if first_object.is_some_and(|f| o.id < f) {
                    continue;
                }
                //= draft-ietf-moq-transport-19#delivery-timeouts
                //# if the time elapsed exceeds OBJECT_DELIVERY_TIMEOUT, it MUST reset the underlying transport stream
                //# with the reset stream code DELIVERY_TIMEOUT
                let waited = at.elapsed();
                if timeouts.object_limit().is_some_and(|t| waited > t) {
                    inner.config.stats.delivery_timeouts.fetch_add(1, Ordering::Relaxed);
                    writer.reset(StreamCode::DeliveryTimeout);
                    return;
                }
                if shed.too_late(budget, waited) {
                    inner.config.stats.groups_shed.fetch_add(1, Ordering::Relaxed);
                    // The relay's latency budget is a delivery timeout it imposes; the subscription goes on.
                    writer.reset(StreamCode::DeliveryTimeout);
                    return;
                }
                let h = ObjectHeader {
                    object_id: o.id,
                    properties: o.properties,
                    payload_len: o.payload.len(),
                    status: o.status,
                };
                if w.write_object_header(&mut buf, &h).is_err() {
                    writer.reset(StreamCode::InternalError);
                    return;
                }
                if writer.write(&buf).await.is_err() {
                    return;
                }
                buf.clear();
                inner.config.stats.objects_out.fetch_add(1, Ordering::Relaxed);
                inner.config.stats.bytes_out.fetch_add(o.payload.len() as u64, Ordering::Relaxed);
                if !o.payload.is_empty() && writer.write_chunk(o.payload).await.is_err() {
                    return;
                }
            }
            Err(Closed::Finished) => {
                if !buf.is_empty() && writer.write(&buf).await.is_err() {
                    return;
                }
                writer.finish();
                //= draft-ietf-moq-transport-19#delivery-timeouts
                //# the MOQT implementation MUST
                //# start a timer of SUBGROUP_DELIVERY_TIMEOUT duration once it becomes
                //# aware that all of the objects on the subgroup have been published
                // That is the upstream FIN (the subgroup's close), not ours, which may come later.
                if let Some(t) = timeouts.subgroup {
                    let since_fin = sub.closed_at().map(|at| at.elapsed()).unwrap_or_default();
                    if tokio::time::timeout(t.saturating_sub(since_fin), writer.closed()).await.is_err() {
                        writer.reset(StreamCode::DeliveryTimeout);
                    }
                }
                return;
            }
            Err(Closed::Reset(code)) => {
                writer.reset(StreamCode::from(code));
                return;
            }
        }
    }
}
