//! Serving a subscription (the peer's SUBSCRIBE, or our PUBLISH): groups, subgroup streams and datagrams.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use moq_wire::codes::{PublishDoneCode, StreamCode};
use moq_wire::control::{ControlMessage, PublishDone, RequestError, RequestOk};
use moq_wire::data::{DatagramContent, ObjectDatagram, ObjectHeader, SubgroupHeader, SubgroupIdMode, SubgroupWriter};
use moq_wire::kvp::{Properties, ReasonPhrase, property};
use moq_wire::params::{LocationFilter, Parameters};
use moq_wire::{GroupId, GroupOrder, Location, ObjectId, ObjectStatus, TrackAlias};
use tokio::sync::watch;
use tokio::task::JoinSet;
use web_transport_trait::Session as WtSession;

use super::Inner;
use super::request::MAX_FILTER_RANGES;
use super::rules::{Start, effective_timeout, position_base, publish_done_status, send_order, subscription_update};
use crate::error::Error;
use crate::io::{Reader, Writer};
use crate::model::{Closed, Delivery, GroupConsumer, SubgroupConsumer, TrackConsumer, TrackInfo, TrackProducer};

/// Groups of one subscription being written at once; older ones are reset (CANCELLED) beyond this.
pub(super) const MAX_GROUPS_IN_FLIGHT: usize = 4;

/// A subscription the peer made that we serve, kept for joining FETCH.
pub(super) struct Served {
    pub(super) track: TrackProducer,
    pub(super) state: SubState,
}

// ---- serving a subscription (the peer's SUBSCRIBE, or our PUBLISH) ----

/// What a subscriber may change while a subscription is served (REQUEST_UPDATE), and its teardown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SubSettings {
    /// The Forward State.
    pub(super) forward: bool,
    /// SUBSCRIBER_PRIORITY; open streams follow its changes.
    pub(super) priority: u8,
    /// OBJECT_DELIVERY_TIMEOUT and SUBGROUP_DELIVERY_TIMEOUT from the subscriber, ms (0: none).
    pub(super) object_timeout: u64,
    pub(super) subgroup_timeout: u64,
    /// The Joining Location: the largest location when Forward last went to 1.
    pub(super) joining: Option<Location>,
    /// The group its streams' send order ranks groups from ([`position_base`]).
    pub(super) base: u64,
    /// The subscription is being torn down: its data streams end.
    pub(super) cancelled: bool,
}

impl SubSettings {
    fn new(params: &Parameters) -> SubSettings {
        SubSettings {
            forward: params.forward.unwrap_or(true),
            priority: params.subscriber_priority.unwrap_or(128),
            object_timeout: params.object_delivery_timeout.unwrap_or(0),
            subgroup_timeout: params.subgroup_delivery_timeout.unwrap_or(0),
            joining: None,
            base: 0,
            cancelled: false,
        }
    }

    /// Applies an accepted REQUEST_UPDATE; `largest` is the track's Largest Location now.
    pub(super) fn update(&mut self, params: &Parameters, largest: Option<Location>) {
        if let Some(f) = params.forward {
            //= draft-ietf-moq-transport-19#joining-fetches
            //# MUST save the Largest Location communicated in SUBSCRIBE_OK, PUBLISH or REQUEST_UPDATE_OK that
            //# changes the Forward State from 0 to 1
            if f && !self.forward {
                self.joining = largest;
            }
            self.forward = f;
        }
        //= draft-ietf-moq-transport-19#priorities
        //# When subscriber priority is changed, a best effort SHOULD be made to apply the change to all
        //# objects that have not been scheduled
        if let Some(p) = params.subscriber_priority {
            self.priority = p;
        }
        if let Some(t) = params.object_delivery_timeout {
            self.object_timeout = t;
        }
        if let Some(t) = params.subgroup_delivery_timeout {
            self.subgroup_timeout = t;
        }
    }
}

/// A served subscription: what is fixed when it starts, its [`SubSettings`] (one watch, changed in one place,
/// that its tasks wake on) and its stream count.
#[derive(Clone)]
pub(super) struct SubState {
    pub(super) order: GroupOrder,
    /// Whether load shedding applies: the subscription follows the live edge (no absolute start in the past).
    pub(super) live: bool,
    /// When the subscription began.
    pub(super) since: tokio::time::Instant,
    /// Picks which groups overload control skips for this subscription (different ones for each).
    pub(super) key: u64,
    settings: Arc<watch::Sender<SubSettings>>,
    /// Subgroup streams opened (PUBLISH_DONE's Stream Count).
    streams: Arc<AtomicU64>,
}

/// Hands out [`SubState::key`]s.
static NEXT_KEY: AtomicU64 = AtomicU64::new(0);

impl SubState {
    /// The state of a subscription with `params` to a track whose own group order is `track_order`.
    pub(super) fn new(params: &Parameters, track_order: GroupOrder) -> SubState {
        SubState {
            order: params.group_order.unwrap_or(track_order),
            live: !matches!(
                params.location_filter,
                Some(LocationFilter::AbsoluteStart { .. }) | Some(LocationFilter::AbsoluteRange { .. })
            ),
            since: tokio::time::Instant::now(),
            key: NEXT_KEY.fetch_add(1, Ordering::Relaxed),
            settings: Arc::new(watch::Sender::new(SubSettings::new(params))),
            streams: Arc::default(),
        }
    }

    /// The settings now.
    pub(super) fn settings(&self) -> SubSettings {
        *self.settings.borrow()
    }

    /// A receiver that wakes on every change of the settings.
    fn watch(&self) -> watch::Receiver<SubSettings> {
        self.settings.subscribe()
    }

    /// Records the Joining Location (SUBSCRIBE_OK or PUBLISH with Forward 1).
    pub(super) fn set_joining(&self, largest: Option<Location>) {
        self.settings.send_modify(|s| s.joining = largest);
    }

    /// Applies an accepted REQUEST_UPDATE.
    fn update(&self, params: &Parameters, largest: Option<Location>) {
        self.settings.send_if_modified(|s| {
            let before = *s;
            s.update(params, largest);
            *s != before
        });
    }

    /// Ends the subscription's data streams.
    fn cancel(&self) {
        self.settings.send_if_modified(|s| !std::mem::replace(&mut s.cancelled, true));
    }

    fn count_stream(&self) {
        self.streams.fetch_add(1, Ordering::Relaxed);
    }

    fn streams(&self) -> u64 {
        self.streams.load(Ordering::Relaxed)
    }
}

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
            state.settings.send_modify(|s| s.base = base);
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

/// The effective delivery timeouts of a subscription: the smaller non-zero value of the subscriber's parameter
/// and the track's property (draft-19 §10.5.1).
#[derive(Debug, Clone, Copy)]
pub(super) struct Timeouts {
    pub(super) object: Option<Duration>,
    pub(super) subgroup: Option<Duration>,
    /// The subscriber's values (ms, 0: none), for a subgroup whose first object overrides the track's.
    subscriber: (u64, u64),
    /// The track's MAX_CACHE_DURATION.
    cache: Option<Duration>,
}

impl Timeouts {
    pub(super) fn new(info: &TrackInfo, state: &SubState) -> Timeouts {
        let settings = state.settings();
        let subscriber = (settings.object_timeout, settings.subgroup_timeout);
        Timeouts {
            object: effective_timeout(subscriber.0, info.properties.get_int(property::OBJECT_DELIVERY_TIMEOUT)),
            subgroup: effective_timeout(subscriber.1, info.properties.get_int(property::SUBGROUP_DELIVERY_TIMEOUT)),
            subscriber,
            cache: info.properties.get_int(property::MAX_CACHE_DURATION).map(Duration::from_millis),
        }
    }

    /// The age past which an object is not sent: its OBJECT_DELIVERY_TIMEOUT, or sooner its track's
    /// MAX_CACHE_DURATION.
    //= draft-ietf-moq-transport-19#max-cache-duration
    //# If present, the
    //# relay MUST NOT start forwarding any individual Object received through this
    //# subscription or fetch after the specified number of milliseconds has elapsed
    //# since the beginning of the Object was received.
    pub(super) fn object_limit(&self) -> Option<Duration> {
        [self.object, self.cache].into_iter().flatten().min()
    }

    /// The timeouts of a subgroup whose first object carries `properties`.
    //= draft-ietf-moq-transport-19#delivery-timeouts
    //# For
    //# each type of timeout, the
    //# publisher's value is the Object Property when present on the first object of the
    //# subgroup, and the Track Property otherwise.
    pub(super) fn for_first_object(self, properties: &Properties) -> Timeouts {
        let mut t = self;
        if let Some(ms) = properties.get_int(property::OBJECT_DELIVERY_TIMEOUT) {
            t.object = effective_timeout(t.subscriber.0, Some(ms));
        }
        if let Some(ms) = properties.get_int(property::SUBGROUP_DELIVERY_TIMEOUT) {
            t.subgroup = effective_timeout(t.subscriber.1, Some(ms));
        }
        t
    }

    /// The limit on a datagram's age: the smaller non-zero of the two.
    //= draft-ietf-moq-transport-19#delivery-timeouts
    //# For objects with Object Forwarding Preference set to Datagram, the
    //# SUBGROUP_DELIVERY_TIMEOUT acts the same way as OBJECT_DELIVERY_TIMEOUT; if both
    //# are non-zero, the smaller of the two is used.
    fn datagram(&self) -> Option<Duration> {
        [self.object_limit(), self.subgroup].into_iter().flatten().min()
    }
}

/// What one subgroup task sends.
#[derive(Debug, Clone, Copy)]
pub(super) struct Job {
    pub(super) group: GroupId,
    pub(super) alias: TrackAlias,
    /// Skip objects before this one (filters that start mid-group).
    pub(super) first_object: Option<ObjectId>,
    pub(super) timeouts: Timeouts,
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

/// What a subgroup stream needs to know to shed load: its subscription, its budget at the default priority (`None`:
/// no shedding) and its group, to see whether a newer one exists.
pub(super) struct Shed {
    pub(super) state: SubState,
    pub(super) base_budget: Option<Duration>,
    pub(super) group: GroupConsumer,
}

impl Shed {
    fn new<S: WtSession>(inner: &Inner<S>, state: &SubState, group: &GroupConsumer) -> Shed {
        let base_budget = inner.config.max_latency.filter(|_| state.live);
        Shed { state: state.clone(), base_budget, group: group.clone() }
    }

    /// The budget at SUBSCRIBER_PRIORITY `priority`.
    fn budget(&self, priority: u8) -> Option<Duration> {
        self.base_budget.map(|b| shed_budget(b, priority))
    }

    /// Whether an object that waited `waited` is too late to send: longer than the budget (counting objects
    /// cached before the subscription began from its start), and a newer group exists (which the subscriber will
    /// get instead). The clock is read again only for an object already past the budget.
    fn too_late(&self, budget: Option<Duration>, waited: Duration) -> bool {
        budget.is_some_and(|b| waited > b && self.state.since.elapsed() > b) && self.group.is_superseded()
    }
}

/// The latency budget of a subscription at SUBSCRIBER_PRIORITY `priority`: `base` scaled by its
/// [`importance`](super::overload::importance), so that the least important subscribers lose groups first.
pub(super) fn shed_budget(base: Duration, priority: u8) -> Duration {
    base.mul_f64(super::overload::importance(priority))
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

#[cfg(test)]
mod tests {
    use super::*;
    use moq_wire::namespace::{FullTrackName, TrackNamespace};

    /// REQUEST_UPDATE changes only what it names; Forward going from 0 to 1 saves the Joining Location, and
    /// staying at 1 does not move it.
    #[test]
    fn an_update_changes_what_it_names_and_records_the_joining_location() {
        let mut s = SubSettings::new(&Parameters { forward: Some(false), ..Default::default() });
        assert_eq!((s.forward, s.priority, s.joining), (false, 128, None));
        let at = |g, o| Some(Location::new(g, o));
        s.update(&Parameters { subscriber_priority: Some(7), ..Default::default() }, at(1, 0));
        assert_eq!((s.forward, s.priority, s.joining), (false, 7, None));
        s.update(&Parameters { forward: Some(true), ..Default::default() }, at(2, 3));
        assert_eq!((s.forward, s.joining), (true, at(2, 3)));
        s.update(
            &Parameters { forward: Some(true), object_delivery_timeout: Some(40), ..Default::default() },
            at(5, 0),
        );
        assert_eq!((s.joining, s.object_timeout, s.subgroup_timeout), (at(2, 3), 40, 0));
        assert!(!s.cancelled);
    }

    /// For datagrams SUBGROUP_DELIVERY_TIMEOUT bounds an object's age too, the smaller of the two winning; a
    /// first object's properties override the track's values, and the subscriber's smaller value still wins.
    #[test]
    fn datagram_and_first_object_delivery_timeouts() {
        let ms = Duration::from_millis;
        let mut info = TrackInfo::new(FullTrackName::new(TrackNamespace::from_path("t").unwrap(), "x"));
        info.properties = Properties::new().with_int(property::SUBGROUP_DELIVERY_TIMEOUT, 20).unwrap();
        let state = SubState::new(&Parameters::default(), GroupOrder::Ascending);
        let track_only = Timeouts::new(&info, &state);
        assert_eq!((track_only.object, track_only.subgroup, track_only.datagram()), (None, Some(ms(20)), Some(ms(20))));
        let first = Properties::new().with_int(property::OBJECT_DELIVERY_TIMEOUT, 5).unwrap();
        let overridden = track_only.for_first_object(&first);
        assert_eq!((overridden.object, overridden.datagram()), (Some(ms(5)), Some(ms(5))));
        let params = Parameters { object_delivery_timeout: Some(3), ..Default::default() };
        let subscriber = Timeouts::new(&info, &SubState::new(&params, GroupOrder::Ascending));
        assert_eq!(subscriber.for_first_object(&first).object, Some(ms(3)), "the smaller non-zero value");
    }

    #[test]
    fn the_shedding_budget_doubles_per_32_priority_steps() {
        let base = Duration::from_millis(1000);
        assert_eq!(shed_budget(base, 128), base);
        assert_eq!(shed_budget(base, 96), base * 2);
        assert_eq!(shed_budget(base, 0), base * 16);
        assert_eq!(shed_budget(base, 160), base / 2);
        assert!(shed_budget(base, 255) < Duration::from_millis(70));
    }
}
