//! Data we receive: subgroup streams, datagrams and fetch streams, delivered into tracks.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use moq_wire::codes::{PublishDoneCode, RequestErrorCode, StreamCode};
use moq_wire::control::{ControlMessage, Publish, PublishDone, RequestError, RequestOk};
use moq_wire::data::{
    DataStreamHeader, Datagram, DatagramContent, ObjectDatagram, StreamKind, SubgroupHeader, SubgroupIdMode,
    SubgroupReader,
};
use moq_wire::kvp::property;
use moq_wire::params::Parameters;
use moq_wire::setup::SetupOptions;
use moq_wire::{ObjectId, ObjectStatus};
use tokio::sync::{oneshot, watch};
use web_transport_trait::Session as WtSession;

use super::control::run_control;
use super::handles::Event;
use super::malformed::{Arrival, Malformed, TrackShape};
use super::request::{reject, unexpected};
use super::rules::Refusal;
use super::{Inner, lock};
use crate::error::{Error, SessionError, StreamError, from_wt};
use crate::io::{Reader, Writer};
use crate::model::{
    Delivery, GroupProducer, Object, SubgroupInfo, SubgroupProducer, TrackEnd, TrackInfo, TrackProducer,
};

/// How long a data stream for an unknown track alias is held before it is abandoned.
pub(super) const ALIAS_WAIT: Duration = Duration::from_secs(2);

/// Receive state of a track we get objects for (our SUBSCRIBE, or the peer's PUBLISH).
pub(super) struct Incoming {
    pub(super) producer: TrackProducer,
    /// Data streams received for this track (to wait for PUBLISH_DONE's Stream Count).
    pub(super) streams: watch::Sender<u64>,
    pub(super) groups: Mutex<BTreeMap<u64, GroupProducer>>,
    pub(super) window: usize,
    /// What the objects so far said of the track's shape (§Malformed Tracks).
    shape: Mutex<TrackShape>,
    /// Signalled once the track is found malformed: the request's task then cancels it.
    pub(super) malformed: tokio::sync::Notify,
}

impl Incoming {
    fn new(producer: TrackProducer, window: usize) -> Incoming {
        Incoming {
            producer,
            streams: watch::Sender::new(0),
            groups: Mutex::default(),
            window,
            shape: Mutex::new(TrackShape::new(window.max(64))),
            malformed: tokio::sync::Notify::new(),
        }
    }

    /// Checks an arriving object against the track's shape; a malformed track is ended with MALFORMED_TRACK
    /// and its request told to cancel.
    //= draft-ietf-moq-transport-19#malformed-tracks
    //# When a subscriber detects a Malformed Track, it MUST cancel any corresponding
    //# subscription or fetches for that Track from that publisher
    fn check(&self, arrival: Arrival<'_>) -> bool {
        let result = lock(&self.shape).object(arrival);
        self.verdict(result)
    }

    /// Records a subgroup stream's FIN (see [`TrackShape::subgroup_fin`]).
    fn fin(&self, group: u64, subgroup: u64, last: Option<u64>, end_of_group: bool) -> bool {
        let result = lock(&self.shape).subgroup_fin(group, subgroup, last, end_of_group);
        self.verdict(result)
    }

    fn verdict(&self, result: Result<(), Malformed>) -> bool {
        let Err(why) = result else { return true };
        tracing::warn!(track = %self.producer.info().name, reason = why.reason(), "malformed track");
        self.producer.end(TrackEnd::Error(PublishDoneCode::MalformedTrack.to_u64()));
        self.malformed.notify_one();
        false
    }

    /// A new subgroup producer in group `group`, creating the group if it is new. Groups and subgroups are
    /// accepted in any arrival order (QUIC streams race): only a group older than the whole window is refused.
    /// Received groups are never finished early on the peer's say-so (another subgroup may still be on its way);
    /// they finish when they leave the window.
    pub(super) fn subgroup(&self, group: u64, info: SubgroupInfo) -> Option<SubgroupProducer> {
        let mut groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(g) = groups.get(&group) {
            return Some(g.create_subgroup_with(info));
        }
        let mut g = self.producer.new_group(group);
        let sg = g.create_subgroup_with(info);
        self.producer.insert_group(&mut g).ok()?;
        groups.insert(group, g);
        while groups.len() > self.window {
            groups.pop_first();
        }
        Some(sg)
    }
}

/// What a subgroup stream's header says of its subgroup.
fn subgroup_info(h: &SubgroupHeader, first: ObjectId, priority: u8) -> SubgroupInfo {
    SubgroupInfo {
        first_object: h.first_object,
        end_of_group: h.end_of_group,
        ..SubgroupInfo::new(h.subgroup_id(first).0, priority)
    }
}

// ---- unidirectional streams ----

pub(super) async fn run_uni<S: WtSession>(
    inner: Arc<Inner<S>>,
    setup_tx: oneshot::Sender<Result<SetupOptions, Error>>,
) {
    let setup_tx = Arc::new(Mutex::new(Some(setup_tx)));
    let control_seen = Arc::new(AtomicBool::new(false));
    loop {
        let recv = match inner.transport.accept_uni().await {
            Ok(r) => r,
            Err(e) => {
                let e = from_wt(e);
                inner.record_closed(e.clone());
                if let Some(tx) = lock(&setup_tx).take() {
                    let _ = tx.send(Err(e));
                }
                return;
            }
        };
        // Each stream gets its own task at once: a stream that never sends its type must not hold up the others.
        let inner = inner.clone();
        let setup_tx = setup_tx.clone();
        let control_seen = control_seen.clone();
        let tasks = inner.tasks.clone();
        tasks.spawn(async move {
            let mut reader = Reader::new(recv);
            let kind = match reader.decode_with(|b| StreamKind::peek(b, inner.version).map(|k| (k, 0))).await {
                Ok(Some(k)) => k,
                Ok(None) => return,
                // A stream reset before its type arrived is not the session's problem.
                Err(e) if !e.is_session_error() => return,
                Err(e) => return inner.close(e),
            };
            match kind {
                StreamKind::Control => {
                    if control_seen.swap(true, Ordering::Relaxed) {
                        return inner.close(Error::protocol("second control stream"));
                    }
                    let tx = lock(&setup_tx).take();
                    let reader = reader.logged(inner.stream_log(false, Some("control")));
                    run_control(inner, reader, tx).await;
                }
                _ => {
                    if let Err(e) = handle_data_stream(&inner, reader).await
                        && e.is_session_error()
                    {
                        inner.close(e);
                    }
                }
            }
        });
    }
}

/// How long after an End of Track object the track ends: earlier groups racing it on other streams land first.
const END_OF_TRACK_GRACE: Duration = Duration::from_millis(500);

pub(super) async fn handle_data_stream<S: WtSession>(
    inner: &Arc<Inner<S>>,
    mut reader: Reader<S::RecvStream>,
) -> Result<(), Error> {
    let v = inner.version;
    let Some(header) = reader.decode::<DataStreamHeader>(v).await? else {
        return Ok(());
    };
    match header {
        DataStreamHeader::Padding => Ok(()),
        DataStreamHeader::Fetch(h) => {
            if let Some(log) = inner.stream_log(false, Some("fetch_header")) {
                log.fetch_header(false, h.request_id.0);
            }
            let tx = inner.state().fetches.remove(&h.request_id.0);
            match tx {
                Some(tx) => {
                    let _ = tx.send(reader);
                }
                None => reader.stop(StreamCode::Cancelled),
            }
            Ok(())
        }
        DataStreamHeader::Subgroup(h) => {
            if let Some(log) = inner.stream_log(false, Some("subgroup_header")) {
                log.subgroup_header(false, &h);
            }
            let Some(incoming) = inner.wait_alias(h.track_alias.0).await else {
                reader.stop(StreamCode::Cancelled);
                return Ok(());
            };
            incoming.streams.send_modify(|n| *n += 1);
            let priority = h.publisher_priority.unwrap_or(incoming.producer.info().priority);
            let mut state = SubgroupReader::new(h, v);
            // With the subgroup id in the header the subgroup exists now; in FirstObjectId mode, at the first object.
            let mut sub: Option<SubgroupProducer> = match h.subgroup {
                SubgroupIdMode::FirstObjectId => None,
                _ => match incoming.subgroup(h.group_id.0, subgroup_info(&h, ObjectId(0), priority)) {
                    Some(s) => Some(s),
                    None => {
                        reader.stop(StreamCode::Cancelled);
                        return Ok(());
                    }
                },
            };
            let group = h.group_id.0;
            // The subgroup's id and its last object so far, for the malformed-track checks.
            let mut subgroup_id: Option<u64> = sub.as_ref().map(|s| s.info().id.0);
            let mut last: Option<u64> = None;
            loop {
                let next = reader.decode_with(|b| state.decode_header(b)).await;
                match next {
                    Ok(Some(obj)) => {
                        let payload = reader.payload(obj.payload_len).await?;
                        inner.config.stats.objects_in.fetch_add(1, Ordering::Relaxed);
                        inner.config.stats.bytes_in.fetch_add(payload.len() as u64, Ordering::Relaxed);
                        let id = *subgroup_id.get_or_insert(h.subgroup_id(obj.object_id).0);
                        let arrival = Arrival {
                            group,
                            subgroup: id,
                            object: obj.object_id.0,
                            priority,
                            datagram: false,
                            status: obj.status,
                            properties: &obj.properties,
                        };
                        //= draft-ietf-moq-transport-19#malformed-tracks
                        //# Object(s) triggering Malformed Track status
                        //# MUST NOT be cached.
                        if !incoming.check(arrival) {
                            reader.stop(StreamCode::MalformedTrack);
                            if let Some(s) = &sub {
                                s.abort(StreamCode::MalformedTrack.to_u64());
                            }
                            return Ok(());
                        }
                        last = Some(obj.object_id.0);
                        if sub.is_none() {
                            match incoming.subgroup(group, subgroup_info(&h, obj.object_id, priority)) {
                                Some(s) => sub = Some(s),
                                None => {
                                    reader.stop(StreamCode::Cancelled);
                                    return Ok(());
                                }
                            }
                        }
                        if let Some(s) = &sub {
                            let status = obj.status;
                            let _ = s.write(Object { id: obj.object_id, properties: obj.properties, payload, status });
                            if status == ObjectStatus::EndOfTrack {
                                // Groups before it may still be on their way on other streams: end a little later.
                                let producer = incoming.producer.clone();
                                let tasks = inner.tasks.clone();
                                tasks.spawn(async move {
                                    tokio::time::sleep(END_OF_TRACK_GRACE).await;
                                    producer.end(TrackEnd::Ended);
                                });
                            }
                        }
                    }
                    Ok(None) => {
                        let well_formed = match subgroup_id {
                            Some(id) => incoming.fin(group, id, last, h.end_of_group),
                            None => true,
                        };
                        if let Some(s) = &sub {
                            if well_formed {
                                s.finish();
                            } else {
                                s.abort(StreamCode::MalformedTrack.to_u64());
                            }
                        }
                        return Ok(());
                    }
                    Err(Error::Stream(StreamError::Reset(code))) => {
                        if let Some(s) = &sub {
                            s.abort(code as u64);
                        }
                        return Ok(());
                    }
                    Err(e) => {
                        if let Some(s) = &sub {
                            s.abort(StreamCode::InternalError.to_u64());
                        }
                        return Err(e);
                    }
                }
            }
        }
    }
}

/// Datagrams held for a track alias not known yet (its SUBSCRIBE_OK or PUBLISH still on its way: a datagram can
/// overtake it), at most this many, each for at most [`ALIAS_WAIT`].
const MAX_EARLY_DATAGRAMS: usize = 256;

pub(super) async fn run_datagrams<S: WtSession>(inner: Arc<Inner<S>>) {
    let mut early: std::collections::VecDeque<(tokio::time::Instant, ObjectDatagram)> = Default::default();
    let mut aliases = inner.aliases.subscribe();
    loop {
        // The oldest held datagram is dropped when its wait is over.
        let expiry = early.front().map(|(at, _)| *at + ALIAS_WAIT);
        let bytes = tokio::select! {
            received = inner.transport.recv_datagram() => match received {
                Ok(bytes) => bytes,
                Err(_) => return,
            },
            // Look again at held datagrams as aliases appear.
            Ok(()) = aliases.changed(), if !early.is_empty() => {
                retry_early(&inner, &mut early);
                continue;
            }
            () = tokio::time::sleep_until(expiry.unwrap_or_else(tokio::time::Instant::now)), if expiry.is_some() => {
                retry_early(&inner, &mut early);
                continue;
            }
        };
        let d = match Datagram::decode(&bytes, inner.version) {
            Ok(Datagram::Object(d)) => {
                if let Some(log) = &inner.qlog {
                    let len = match &d.content {
                        DatagramContent::Payload(p) => p.len(),
                        DatagramContent::Status(_) => 0,
                    };
                    log.datagram(false, &d, len);
                }
                d
            }
            Ok(Datagram::Padding) => continue,
            Err(e) => {
                inner.close(e.into());
                return;
            }
        };
        if let Err(d) = deliver_datagram(&inner, d) {
            if early.len() == MAX_EARLY_DATAGRAMS {
                early.pop_front();
            }
            early.push_back((tokio::time::Instant::now(), d));
        }
    }
}

/// Delivers the held datagrams whose alias is known now; drops those held longer than [`ALIAS_WAIT`].
fn retry_early<S: WtSession>(
    inner: &Inner<S>,
    early: &mut std::collections::VecDeque<(tokio::time::Instant, ObjectDatagram)>,
) {
    for (at, d) in std::mem::take(early) {
        if let Err(d) = deliver_datagram(inner, d)
            && at.elapsed() < ALIAS_WAIT
        {
            early.push_back((at, d));
        }
    }
}

/// Puts a datagram's object into its track; gives it back if the track alias is not known (yet).
fn deliver_datagram<S: WtSession>(inner: &Inner<S>, d: ObjectDatagram) -> Result<(), ObjectDatagram> {
    let Some(incoming) = inner.state().incoming.get(&d.track_alias.0).cloned() else {
        return Err(d);
    };
    let priority = d.publisher_priority.unwrap_or(incoming.producer.info().priority);
    let (payload, status) = match d.content {
        DatagramContent::Payload(p) => (p, ObjectStatus::Normal),
        DatagramContent::Status(s) => (Bytes::new(), s),
    };
    let arrival = Arrival {
        group: d.group_id.0,
        subgroup: d.object_id.0,
        object: d.object_id.0,
        priority,
        datagram: true,
        // A datagram with the END_OF_GROUP bit is its group's final object.
        status: if d.end_of_group && status == ObjectStatus::Normal { ObjectStatus::EndOfGroup } else { status },
        properties: &d.properties,
    };
    if !incoming.check(arrival) {
        return Ok(());
    }
    // A datagram object is a subgroup of its own, keyed by object id, and is forwarded as a datagram.
    let info = SubgroupInfo {
        delivery: Delivery::Datagrams,
        end_of_group: d.end_of_group,
        ..SubgroupInfo::new(d.object_id.0, priority)
    };
    if let Some(sub) = incoming.subgroup(d.group_id.0, info) {
        let _ = sub.write(Object { id: d.object_id, properties: d.properties, payload, status });
        sub.finish();
    }
    Ok(())
}

/// Whether we can take a publisher's REQUEST_UPDATE of its PUBLISH: a FORWARD change or new tokens need nothing
/// from us (the objects tell the rest); what would change how we receive is refused.
fn publish_update(params: &Parameters) -> Result<(), Refusal> {
    if params.location_filter.is_some() || !params.range_filters.is_empty() || params.group_order.is_some() {
        return Err((RequestErrorCode::NotSupported, "cannot change a PUBLISH's filters or group order"));
    }
    Ok(())
}

/// Accepts the peer's PUBLISH: the track arrives as [`Event::Published`] and ends with PUBLISH_DONE.
pub(super) async fn accept_publish<S: WtSession>(
    inner: &Arc<Inner<S>>,
    writer: &mut Writer<S::SendStream>,
    reader: &mut Reader<S::RecvStream>,
    m: Publish,
) -> Result<(), Error> {
    let v = inner.version;
    let mut info = TrackInfo::new(m.track.clone());
    info.properties = m.track_properties.clone();
    if let Some(p) = m.track_properties.get_int(property::DEFAULT_PUBLISHER_PRIORITY) {
        info.priority = p.min(255) as u8;
    }
    //= draft-ietf-moq-transport-19#mandatory-track-properties
    //# For PUBLISH messages: the subscriber MUST respond with REQUEST_ERROR with
    //# error code UNSUPPORTED_EXTENSION.
    if let Some(key) = m.track_properties.mandatory() {
        let reason = format!("mandatory track property {key:#x} is not understood");
        return reject(writer, v, RequestErrorCode::UnsupportedExtension, &reason).await;
    }
    let producer = TrackProducer::with_limits(info, inner.config.window, inner.config.max_cache_bytes);
    if let Some(largest) = m.params.largest_object {
        producer.note_largest(largest);
    }
    let incoming = inner.add_alias(m.track_alias.0, producer.clone())?;
    writer.message(&RequestOk::default().into(), v).await?;
    let _ = inner.events.send(Event::Published(producer.clone()));
    // The publisher may update its PUBLISH (REQUEST_UPDATE, answered) until it ends it with PUBLISH_DONE.
    let mut expected_streams = None;
    let end = loop {
        let msg = tokio::select! {
            m = reader.request_message(v) => m,
            // Our receive path found the track malformed (and ended it): cancel the PUBLISH.
            _ = incoming.malformed.notified() => {
                writer.reset(StreamCode::MalformedTrack);
                reader.stop(StreamCode::MalformedTrack);
                break TrackEnd::Error(PublishDoneCode::MalformedTrack.to_u64());
            }
        };
        match msg {
            Ok(Some(ControlMessage::PublishDone(d))) => {
                expected_streams = Some(d.stream_count);
                break match d.status {
                    PublishDoneCode::TrackEnded | PublishDoneCode::SubscriptionEnded => TrackEnd::Ended,
                    other => TrackEnd::Error(other.to_u64()),
                };
            }
            //= draft-ietf-moq-transport-19#message-request-update
            //# The sender of a request (SUBSCRIBE, PUBLISH, FETCH, PUBLISH_NAMESPACE,
            //# SUBSCRIBE_NAMESPACE, SUBSCRIBE_TRACKS) can later send a REQUEST_UPDATE on the
            //# same bidi stream as the request to modify it.
            Ok(Some(ControlMessage::RequestUpdate(u))) => {
                let answer = match inner.check_update(&u)?.and_then(|_| publish_update(&u.params)) {
                    Ok(()) => RequestOk::default().into(),
                    Err((code, reason)) => RequestError::new(code, reason).into(),
                };
                writer.message(&answer, v).await?;
            }
            Ok(Some(m)) => return Err(Error::Session(SessionError::ProtocolViolation(unexpected(&m)))),
            Err(e) if e.is_session_error() => return Err(e),
            Ok(None) | Err(_) => break TrackEnd::Error(StreamCode::Cancelled.to_u64()),
        }
    };
    inner.end_incoming(m.track_alias.0, &producer, end, expected_streams).await;
    writer.finish();
    Ok(())
}

impl<S: WtSession> Inner<S> {
    /// Ends a received track once its data streams have arrived: PUBLISH_DONE gives their number; without it
    /// (or with 0, which some peers always send) a short grace period lets streams already in flight land.
    pub(super) async fn end_incoming(
        &self,
        alias: u64,
        producer: &TrackProducer,
        end: TrackEnd,
        expected: Option<u64>,
    ) {
        let incoming = self.state().incoming.get(&alias).filter(|i| i.producer.is_same(producer)).cloned();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        // A malformed track ends at once: its remaining streams are not wanted (and some may have been reset
        // before their header could be counted).
        let malformed = end == TrackEnd::Error(PublishDoneCode::MalformedTrack.to_u64());
        match (incoming.as_ref().filter(|_| !malformed), expected) {
            (Some(i), Some(n)) if n > 0 && n != PublishDone::UNKNOWN_STREAM_COUNT => {
                // A closed session brings no more streams.
                let (mut streams, mut closed) = (i.streams.subscribe(), self.closed.subscribe());
                let arrived = async {
                    tokio::select! {
                        _ = streams.wait_for(|s| *s >= n) => {}
                        _ = closed.wait_for(|c| c.is_some()) => {}
                    }
                };
                let _ = tokio::time::timeout_at(deadline, arrived).await;
            }
            _ if malformed => {}
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
        producer.end(end);
        // Remove only our own entry: the alias may have been reused by a newer subscription meanwhile.
        let mut state = self.state();
        let map = &mut state.incoming;
        if map.get(&alias).is_some_and(|i| i.producer.is_same(producer)) {
            map.remove(&alias);
        }
    }

    pub(super) fn add_alias(&self, alias: u64, producer: TrackProducer) -> Result<Arc<Incoming>, Error> {
        let mut state = self.state();
        let map = &mut state.incoming;
        //= draft-ietf-moq-transport-19#track-alias
        //# If a subscriber receives PUBLISH or SUBSCRIBE_OK that uses the same Track Alias as a different
        //# Track with an `Established` subscription, it MUST close the session with error `DUPLICATE_TRACK_ALIAS`.
        if map.get(&alias).is_some_and(|i| i.producer.info().name != producer.info().name) {
            drop(state);
            let e = Error::Session(SessionError::DuplicateTrackAlias(alias));
            self.close(e.clone());
            return Err(e);
        }
        let incoming = Arc::new(Incoming::new(producer, self.config.window));
        map.insert(alias, incoming.clone());
        drop(state);
        self.aliases.send_modify(|n| *n += 1);
        Ok(incoming)
    }

    pub(super) async fn wait_alias(&self, alias: u64) -> Option<Arc<Incoming>> {
        let deadline = tokio::time::Instant::now() + ALIAS_WAIT;
        let mut aliases = self.aliases.subscribe();
        loop {
            if let Some(i) = self.state().incoming.get(&alias) {
                return Some(i.clone());
            }
            if !matches!(tokio::time::timeout_at(deadline, aliases.changed()).await, Ok(Ok(()))) {
                return None;
            }
        }
    }
}
