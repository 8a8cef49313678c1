//! Serving the peer's FETCH: from a track's cache, or streamed through from upstream when the cache does not
//! reach back far enough. Answered with FETCH_OK (Track Properties included) or REQUEST_ERROR; the objects go on
//! one stream below the live data of the same priorities; REQUEST_UPDATE may change the priority meanwhile.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use moq_wire::codes::{RequestErrorCode, StreamCode};
use moq_wire::control::{ControlMessage, Fetch, FetchOk, FetchType, RequestError, RequestOk};
use moq_wire::data::{EndOfRange, FetchHeader, FetchObject, FetchWriter};
use moq_wire::kvp::property;
use moq_wire::params::Parameters;
use moq_wire::{Encode, GroupOrder, Location, RequestId, Version};
use tokio::sync::{mpsc, watch};
use web_transport_trait::Session as WtSession;

use super::Inner;
use super::fetch_cache::{cached_items, fill, fill_holes, last_in_range, plan};
use super::publisher::track_properties;
use super::request::{reject, unexpected};
use super::rules::{Refusal, fetch_end, fetch_send_order, joining_range};
use crate::error::{Error, SessionError, from_wt};
use crate::io::{Reader, Writer};
use crate::model::{FetchItem, TrackEnd};

/// Where the objects of an accepted FETCH come from.
enum Entries {
    /// Taken from the cache when the FETCH arrived.
    Cached(Vec<FetchItem>),
    /// Streamed from upstream as they arrive.
    Upstream(mpsc::Receiver<Result<FetchItem, Error>>),
}

impl Entries {
    async fn next(&mut self) -> Option<Result<FetchItem, Error>> {
        match self {
            Entries::Cached(items) => items.pop().map(Ok),
            Entries::Upstream(rx) => rx.recv().await,
        }
    }
}

/// An accepted FETCH: its FETCH_OK and its entries.
struct Answer {
    ok: FetchOk,
    publisher_priority: u8,
    entries: Entries,
}

pub(super) async fn serve_fetch<S: WtSession>(
    inner: &Arc<Inner<S>>,
    writer: &mut Writer<S::SendStream>,
    reader: &mut Reader<S::RecvStream>,
    m: Fetch,
) -> Result<(), Error> {
    let v = inner.version;
    let order = m.params.group_order.unwrap_or(GroupOrder::Ascending);
    let answer = match accept_fetch(inner, &m, order).await {
        Ok(a) => a,
        Err((code, reason)) => return reject(writer, v, code, reason).await,
    };
    writer.message(&answer.ok.clone().into(), v).await?;
    let stream = inner.transport.open_uni().await.map_err(from_wt)?;
    let mut data = Writer::new(stream);
    if let Some(log) = inner.stream_log(true, Some("fetch_header")) {
        log.fetch_header(true, m.request_id.0);
    }
    let (priority, priorities) = watch::channel(m.params.subscriber_priority.unwrap_or(128));
    let send = send_entries(&mut data, (m.request_id, order, v), answer, priorities);
    let mut session = inner.closed.subscribe();
    let outcome = tokio::select! {
        sent = send => Some(sent),
        _ = fetch_updates(inner, writer, reader, &priority) => None,
        _ = session.wait_for(|c| c.is_some()) => None,
    };
    match outcome {
        Some(Ok(())) => {
            data.finish();
            writer.finish();
            Ok(())
        }
        // The source failed midway: the response is cut short, never FINished as if complete.
        Some(Err(e)) => {
            data.reset(StreamCode::UnknownObjectStatus);
            writer.reset(StreamCode::InternalError);
            if e.is_session_error() { Err(e) } else { Ok(()) }
        }
        //= draft-ietf-moq-transport-19#message-request-update
        //# When a REQUEST_UPDATE fails for a FETCH, the publisher MUST reset the FETCH data stream.
        None => {
            data.reset(StreamCode::Cancelled);
            Ok(())
        }
    }
}

/// A fixed reason for a track the origin could not find (FETCH refusals carry static reasons).
fn refusal_reason(code: RequestErrorCode) -> &'static str {
    match code {
        RequestErrorCode::DoesNotExist => "no such track",
        RequestErrorCode::Timeout => "the track's publisher did not answer in time",
        RequestErrorCode::ExcessiveLoad => "the track's publisher is overloaded",
        _ => "the track is not available",
    }
}

/// Decides how to answer a FETCH: the range, where the objects come from, the FETCH_OK.
async fn accept_fetch<S: WtSession>(inner: &Arc<Inner<S>>, m: &Fetch, order: GroupOrder) -> Result<Answer, Refusal> {
    let origin = &inner.config.origin;
    let (name, track, start, end) = match &m.fetch_type {
        // Only what is held here: a track not held is fetched upstream below, without subscribing to it.
        FetchType::Standalone { track: name, start, end } => (name.clone(), origin.track(name), *start, *end),
        FetchType::RelativeJoining { joining_request_id, joining_start }
        | FetchType::AbsoluteJoining { joining_request_id, joining_start } => {
            let relative = matches!(m.fetch_type, FetchType::RelativeJoining { .. });
            super::subscribe::joining_wait(inner, joining_request_id.0).await;
            let served = inner.state().served.get(&joining_request_id.0).map(|s| (s.track.clone(), s.state.settings()));
            let Some((track, settings)) = served else {
                return Err((RequestErrorCode::InvalidJoiningRequestId, "no such subscription"));
            };
            //= draft-ietf-moq-transport-19#joining-fetches
            //# If no Objects have been published for the track the publisher MUST respond with a REQUEST_ERROR
            //# with error code `INVALID_RANGE`.
            if !settings.forward {
                return Err((RequestErrorCode::InvalidRange, "joining subscription has Forward 0"));
            }
            let Some(joining) = settings.joining else {
                return Err((RequestErrorCode::InvalidRange, "nothing published yet"));
            };
            let (start, end) = joining_range(relative, *joining_start, joining);
            (track.info().name.clone(), Some(track), start, end)
        }
    };
    // History older than the cache is fetched upstream when the origin knows how, and streamed through.
    let held_from = track.as_ref().and_then(|t| t.consume().cached_groups().first().map(|g| g.id()));
    if held_from.is_none_or(|first| start.group < first)
        && let Some(fetcher) = origin.fetcher()
        && let Some(source) = fetcher(name.clone(), start, end, order).await
    {
        let ok = FetchOk {
            end_of_track: source.end_of_track,
            end_location: source.end_location,
            params: Parameters::default(),
            track_properties: source.track_properties,
        };
        return Ok(Answer { ok, publisher_priority: 128, entries: Entries::Upstream(source.items) });
    }
    let track = match track {
        Some(t) => t,
        None => origin.find(&name).await.map_err(|e| (e.code, refusal_reason(e.code)))?,
    };
    let largest = track.largest();
    let end_location = fetch_end(start, end, largest)?;
    let clipped_end = largest.map(|l| Location::new(l.group.0, l.object.0.saturating_add(1))).unwrap_or_default();
    let consumer = track.consume();
    let ok = FetchOk {
        end_of_track: consumer.ended() == Some(TrackEnd::Ended) && end_location == clipped_end,
        end_location,
        params: Parameters::default(),
        track_properties: track_properties(track.info()),
    };
    // Objects the track's largest location says exist but that have not arrived (a relay's upstream still
    // bringing them) are waited for within the fill budget, then reported unknown rather than as a gap, which
    // would say they do not exist.
    //= draft-ietf-moq-transport-19#fetch-handling
    //# If it encounters an object
    //# in the requested range that is not cached and has unknown status, the relay MUST
    //# pause subsequent delivery until it has confirmed the object's status upstream.
    // One budget for everything the FETCH waits for: objects not arrived yet, then holes asked upstream.
    let budget = m.params.fill_timeout.map(Duration::from_millis).unwrap_or(DEFAULT_FILL).min(MAX_FILL);
    let deadline = tokio::time::Instant::now() + budget;
    let unknown_tail = match largest.map(|l| l.min(last_in_range(end_location))) {
        Some(target) => fill(&consumer, target, deadline).await,
        None => None,
    };
    let max_cache = track.info().properties.get_int(property::MAX_CACHE_DURATION).map(Duration::from_millis);
    let planned = plan(&consumer.cached_groups(), start, end_location, unknown_tail);
    let filled = fill_holes(origin.fetcher(), &name, &planned, order, deadline).await;
    let mut items = cached_items(planned, filled, order, max_cache);
    items.reverse(); // popped from the back
    Ok(Answer { ok, publisher_priority: track.info().priority, entries: Entries::Cached(items) })
}

/// How long a FETCH waits for objects that exist but have not arrived, without FILL_TIMEOUT.
const DEFAULT_FILL: Duration = Duration::from_millis(500);
/// The longest a FETCH waits for them, whatever FILL_TIMEOUT asks.
const MAX_FILL: Duration = Duration::from_secs(5);

/// Writes the entries on the FETCH stream, following priority changes.
async fn send_entries<W: web_transport_trait::SendStream>(
    data: &mut Writer<W>,
    (request_id, order, v): (RequestId, GroupOrder, Version),
    mut answer: Answer,
    mut priority: watch::Receiver<u8>,
) -> Result<(), Error> {
    data.set_priority(fetch_send_order(*priority.borrow_and_update(), answer.publisher_priority));
    let mut buf = BytesMut::new();
    FetchHeader { request_id }.encode(&mut buf, v)?;
    let mut fw = FetchWriter::new(order, v);
    while let Some(item) = answer.entries.next().await {
        if priority.has_changed().unwrap_or(false) {
            data.set_priority(fetch_send_order(*priority.borrow_and_update(), answer.publisher_priority));
        }
        match item? {
            FetchItem::Object(o) => {
                let fo = FetchObject {
                    group_id: o.location.group,
                    subgroup_id: o.subgroup,
                    object_id: o.location.object,
                    publisher_priority: o.priority,
                    properties: o.properties,
                    payload_len: o.payload.len(),
                };
                if fw.write_object(&mut buf, &fo).is_err() {
                    // Out of the requested order (an upstream's mistake): left out rather than failing the rest.
                    buf.clear();
                    continue;
                }
                data.write(&buf).await?;
                buf.clear();
                data.write_chunk(o.payload).await?;
            }
            FetchItem::EndOfRange { end, unknown } => {
                if fw.write_end_of_range(&mut buf, &EndOfRange { unknown, end }).is_err() {
                    buf.clear();
                    continue;
                }
            }
        }
    }
    if !buf.is_empty() {
        data.write(&buf).await?;
    }
    Ok(())
}

/// Answers REQUEST_UPDATEs on a FETCH: a new subscriber priority is applied, anything else refused. Returns when
/// an update was refused or the requester cancelled; never after a FIN (no more updates).
async fn fetch_updates<S: WtSession>(
    inner: &Arc<Inner<S>>,
    writer: &mut Writer<S::SendStream>,
    reader: &mut Reader<S::RecvStream>,
    priority: &watch::Sender<u8>,
) {
    let v = inner.version;
    loop {
        match reader.request_message(v).await {
            Ok(Some(ControlMessage::RequestUpdate(u))) => {
                let checked = match inner.check_update(&u) {
                    Ok(checked) => checked,
                    Err(e) => return inner.close(e),
                };
                if let Err((code, reason)) = checked {
                    let _ = writer.message(&RequestError::new(code, reason).into(), v).await;
                    return;
                }
                let Parameters { subscriber_priority, ref auth_tokens, .. } = u.params;
                let only_priority =
                    Parameters { subscriber_priority, auth_tokens: auth_tokens.clone(), ..Default::default() }
                        == u.params;
                if !only_priority {
                    let refusal = RequestError::new(RequestErrorCode::NotSupported, "a FETCH takes only a priority");
                    let _ = writer.message(&refusal.into(), v).await;
                    return;
                }
                if let Some(p) = subscriber_priority {
                    priority.send_replace(p);
                }
                if writer.message(&RequestOk::default().into(), v).await.is_err() {
                    return;
                }
            }
            Ok(Some(m)) => return inner.close(Error::Session(SessionError::ProtocolViolation(unexpected(&m)))),
            // FIN: no more updates; the answer goes on.
            Ok(None) => return std::future::pending().await,
            Err(e) if e.is_session_error() => return inner.close(e),
            Err(_) => return,
        }
    }
}
