//! Requests we make as a subscriber: SUBSCRIBE, TRACK_STATUS, FETCH, SUBSCRIBE_NAMESPACE, SUBSCRIBE_TRACKS.

use std::collections::HashSet;

use moq_wire::GroupOrder;
use moq_wire::codes::{PublishDoneCode, RequestErrorCode, StreamCode};
use moq_wire::control::{
    ControlMessage, Fetch, FetchType, RequestOk, RequestUpdate, Subscribe, SubscribeNamespace, SubscribeTracks,
    TrackStatus,
};
use moq_wire::kvp::property;
use moq_wire::namespace::{FullTrackName, TrackNamespace};
use moq_wire::params::Parameters;
use tokio::sync::{mpsc, oneshot};
use web_transport_trait::Session as WtSession;

use super::Session;
use super::answer::{EMPTY_REQUEST_OK, FETCH_OK, REQUEST_OK, RESPONSE_TIMEOUT, SUBSCRIBE_OK, rejected};
use super::handles::{
    Event, FetchRange, FetchResponse, NamespaceSubscription, SubscribeOptions, Subscription, TrackStatusInfo,
    TracksSubscription,
};
use super::rules::fetch_end_before_start;
use crate::error::{Error, RequestFailure};
use crate::model::{TrackEnd, TrackInfo, TrackProducer};
use crate::origin::NamespaceEvent;

impl<S: WtSession> Session<S> {
    /// Subscribes to a track and waits for SUBSCRIBE_OK.
    pub async fn subscribe(&self, track: FullTrackName, options: SubscribeOptions) -> Result<Subscription, Error> {
        let v = self.inner.version;
        let request_id = self.request_id()?;
        let params = Parameters {
            forward: Some(options.forward),
            subscriber_priority: Some(options.priority),
            group_order: options.group_order,
            location_filter: options.filter,
            auth_tokens: options.auth_tokens.clone(),
            object_delivery_timeout: options.delivery_timeout.map(|d| d.as_millis() as u64),
            rendezvous_timeout: options.rendezvous.map(|d| d.as_millis() as u64),
            new_group_request: options.new_group_request,
            ..Default::default()
        };
        let msg = Subscribe { request_id, track: track.clone(), params };
        // The answer may wait for the rendezvous.
        let within = RESPONSE_TIMEOUT + options.rendezvous.unwrap_or_default();
        let ((mut writer, mut reader), ok) = self.request_within(msg.into(), false, SUBSCRIBE_OK, within).await?;
        //= draft-ietf-moq-transport-19#mandatory-track-properties
        //# For SUBSCRIBE_OK messages: the subscriber MUST cancel the subscription
        if let Some(key) = ok.track_properties.mandatory() {
            writer.reset(StreamCode::Cancelled);
            reader.stop(StreamCode::Cancelled);
            return Err(unsupported_extension(key));
        }
        let mut info = TrackInfo::new(track);
        info.properties = ok.track_properties.clone();
        if let Some(p) = ok.track_properties.get_int(property::DEFAULT_PUBLISHER_PRIORITY) {
            info.priority = p.min(255) as u8;
        }
        let producer = TrackProducer::with_limits(info, self.inner.config.window, self.inner.config.max_cache_bytes);
        //= draft-ietf-moq-transport-19#largest-param
        //# A relay MUST set LARGEST_OBJECT to the largest of the following:
        //# 1. Any LARGEST_OBJECT value received from the upstream publisher in SUBSCRIBE_OK,
        if let Some(largest) = ok.params.largest_object {
            producer.note_largest(largest);
        }
        let consumer = producer.consume_from_start();
        let alias = ok.track_alias;
        let incoming = self.inner.add_alias(alias.0, producer.clone())?;
        let producer_handle = producer.clone();

        let (updates, mut update_rx) =
            mpsc::unbounded_channel::<(Parameters, oneshot::Sender<Result<RequestOk, Error>>)>();
        let inner = self.inner.clone();
        //= draft-ietf-moq-transport-19#max-request-updates
        //# The sender MUST NOT have more than MAX_REQUEST_UPDATES outstanding
        //# REQUEST_UPDATEs on any single request stream at a time.
        let max_updates = inner.peer_setup.get().and_then(|s| s.max_request_updates).unwrap_or(0);
        let tasks = inner.tasks.clone();
        tasks.spawn(async move {
            let mut waiting: std::collections::VecDeque<oneshot::Sender<Result<RequestOk, Error>>> = Default::default();
            let mut expected_streams = None;
            let end = loop {
                tokio::select! {
                    msg = reader.request_message(v) => match msg {
                        Ok(Some(ControlMessage::PublishDone(done))) => {
                            expected_streams = Some(done.stream_count);
                            break match done.status {
                                PublishDoneCode::TrackEnded | PublishDoneCode::SubscriptionEnded => TrackEnd::Ended,
                                other => TrackEnd::Error(other.to_u64()),
                            };
                        }
                        Ok(Some(ControlMessage::RequestOk(ok))) if !ok.track_properties.is_empty() => {
                            inner.close(Error::protocol("REQUEST_UPDATE answered with Track Properties"));
                            break TrackEnd::Error(PublishDoneCode::InternalError.to_u64());
                        }
                        Ok(Some(ControlMessage::RequestOk(ok))) => {
                            if let Some(largest) = ok.params.largest_object { producer.note_largest(largest); }
                            if let Some(tx) = waiting.pop_front() { let _ = tx.send(Ok(ok)); }
                        }
                        Ok(Some(ControlMessage::RequestError(e))) => {
                            if let Some(tx) = waiting.pop_front() { let _ = tx.send(Err(rejected(e))); }
                        }
                        Ok(Some(_)) => {
                            inner.close(Error::protocol("unexpected message on a subscription"));
                            break TrackEnd::Error(PublishDoneCode::InternalError.to_u64());
                        }
                        Ok(None) => break TrackEnd::Error(PublishDoneCode::InternalError.to_u64()),
                        Err(e) => {
                            if e.is_session_error() { inner.close(e); }
                            break TrackEnd::Error(PublishDoneCode::InternalError.to_u64());
                        }
                    },
                    // Our receive path found the track malformed (and ended it): cancel the subscription.
                    _ = incoming.malformed.notified() => {
                        writer.reset(StreamCode::MalformedTrack);
                        reader.stop(StreamCode::MalformedTrack);
                        break TrackEnd::Error(PublishDoneCode::MalformedTrack.to_u64());
                    }
                    // Further updates wait in the channel while the peer's limit is reached (0: no limit).
                    update = update_rx.recv(), if max_updates == 0 || (waiting.len() as u64) < max_updates => match update {
                        Some((params, tx)) => {
                            let next = inner.state().next_request_id();
                            let request_id = match next {
                                Ok(id) => id,
                                Err(e) => { let _ = tx.send(Err(e)); continue; }
                            };
                            let msg = ControlMessage::RequestUpdate(RequestUpdate { request_id, params });
                            match writer.message(&msg, v).await {
                                Ok(()) => waiting.push_back(tx),
                                Err(e) => { let _ = tx.send(Err(e)); }
                            }
                        }
                        None => {
                            // The Subscription was dropped: cancel.
                            writer.reset(StreamCode::Cancelled);
                            reader.stop(StreamCode::Cancelled);
                            break TrackEnd::Error(StreamCode::Cancelled.to_u64());
                        }
                    },
                }
            };
            inner.end_incoming(alias.0, &producer, end, expected_streams).await;
        });

        Ok(Subscription {
            request_id,
            track_alias: alias,
            largest: ok.params.largest_object,
            track_properties: ok.track_properties,
            consumer,
            producer: producer_handle,
            updates,
        })
    }

    /// Asks for the status of a track (TRACK_STATUS).
    pub async fn track_status(&self, track: FullTrackName) -> Result<TrackStatusInfo, Error> {
        let request_id = self.request_id()?;
        let msg = TrackStatus { request_id, track, params: Parameters::default() };
        let (_stream, ok) = self.request(msg.into(), true, REQUEST_OK).await?;
        Ok(TrackStatusInfo { largest: ok.params.largest_object, track_properties: ok.track_properties })
    }

    /// Fetches past objects (FETCH) and waits for FETCH_OK.
    pub async fn fetch(&self, range: FetchRange, order: GroupOrder) -> Result<FetchResponse<S>, Error> {
        let request_id = self.request_id()?;
        let mut requested_start = None;
        let fetch_type = match range {
            FetchRange::Standalone { track, start, end } => {
                requested_start = Some(start);
                FetchType::Standalone { track, start, end }
            }
            FetchRange::Joining { subscription, groups_back } => {
                FetchType::RelativeJoining { joining_request_id: subscription, joining_start: groups_back }
            }
        };
        let params = Parameters { group_order: Some(order), ..Default::default() };
        let (tx, rx) = oneshot::channel();
        self.inner.state().fetches.insert(request_id.0, tx);
        let msg = Fetch { request_id, fetch_type, params };
        let ((mut writer, mut reader), ok) = match self.request(msg.into(), true, FETCH_OK).await {
            Ok(ok) => ok,
            Err(e) => {
                self.inner.state().fetches.remove(&request_id.0);
                return Err(e);
            }
        };
        if requested_start.is_some_and(|start| fetch_end_before_start(start, ok.end_location)) {
            self.inner.state().fetches.remove(&request_id.0);
            let e = Error::protocol("FETCH_OK ends before the FETCH's start");
            self.inner.close(e.clone());
            return Err(e);
        }
        //= draft-ietf-moq-transport-19#mandatory-track-properties
        //# For FETCH_OK messages: the subscriber MUST cancel the fetch
        if let Some(key) = ok.track_properties.mandatory() {
            self.inner.state().fetches.remove(&request_id.0);
            writer.reset(StreamCode::Cancelled);
            reader.stop(StreamCode::Cancelled);
            return Err(unsupported_extension(key));
        }
        Ok(FetchResponse {
            end_of_track: ok.end_of_track,
            end_location: ok.end_location,
            track_properties: ok.track_properties,
            reader: None,
            pending: Some(rx),
            request: Some((writer, reader)),
            order,
            version: self.inner.version,
        })
    }

    /// Follows the namespaces the peer publishes under `prefix` (SUBSCRIBE_NAMESPACE).
    pub async fn subscribe_namespace(&self, prefix: TrackNamespace) -> Result<NamespaceSubscription, Error> {
        let v = self.inner.version;
        let request_id = self.request_id()?;
        let msg = SubscribeNamespace { request_id, prefix: prefix.clone(), params: Parameters::default() };
        let ((writer, mut reader), _) = self.request(msg.into(), false, EMPTY_REQUEST_OK).await?;
        let (tx, events) = mpsc::unbounded_channel();
        let inner = self.inner.clone();
        let p = prefix.clone();
        let tasks = inner.tasks.clone();
        tasks.spawn(async move {
            let _writer = writer; // dropped (and reset) when this task ends
            let mut known = HashSet::new();
            loop {
                let msg = tokio::select! {
                    m = reader.request_message(v) => m,
                    // The NamespaceSubscription was dropped: cancel.
                    _ = tx.closed() => {
                        reader.stop(StreamCode::Cancelled);
                        break;
                    }
                };
                let event = match msg {
                    Ok(Some(ControlMessage::Namespace(n))) => match p.join(&n.suffix) {
                        Ok(ns) => {
                            known.insert(ns.clone());
                            NamespaceEvent::Added(ns)
                        }
                        Err(_) => break,
                    },
                    Ok(Some(ControlMessage::NamespaceDone(n))) => match p.join(&n.suffix) {
                        //= draft-ietf-moq-transport-19#message-subscribe-ns
                        //# If a subscriber receives a NAMESPACE_DONE before the corresponding NAMESPACE, it MUST close
                        //# the session with a 'PROTOCOL_VIOLATION'.
                        Ok(ns) if known.remove(&ns) => NamespaceEvent::Removed(ns),
                        _ => {
                            inner.close(Error::protocol("NAMESPACE_DONE before NAMESPACE"));
                            break;
                        }
                    },
                    Ok(Some(_)) => {
                        inner.close(Error::protocol("unexpected message on SUBSCRIBE_NAMESPACE"));
                        break;
                    }
                    Err(e) if e.is_session_error() => {
                        inner.close(e);
                        break;
                    }
                    Ok(None) | Err(_) => break,
                };
                if tx.send(event).is_err() {
                    reader.stop(StreamCode::Cancelled);
                    break;
                }
            }
            // The stream ended: every namespace is done.
            for ns in known {
                let _ = tx.send(NamespaceEvent::Removed(ns));
            }
        });
        Ok(NamespaceSubscription { prefix, events })
    }

    /// Asks the peer to PUBLISH every track under `prefix` (SUBSCRIBE_TRACKS); the tracks arrive as
    /// [`Event::Published`].
    pub async fn subscribe_tracks(&self, prefix: TrackNamespace) -> Result<TracksSubscription, Error> {
        let v = self.inner.version;
        let request_id = self.request_id()?;
        let msg = SubscribeTracks { request_id, prefix: prefix.clone(), params: Parameters::default() };
        let ((mut writer, mut reader), _) = self.request(msg.into(), false, REQUEST_OK).await?;
        let (cancel, mut cancelled) = oneshot::channel::<()>();
        let inner = self.inner.clone();
        let prefix_held = prefix.clone();
        let tasks = inner.tasks.clone();
        tasks.spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut cancelled => break,
                    msg = reader.request_message(v) => match msg {
                        // PUBLISH_SKIPPED: the peer will not PUBLISH that track; the application may SUBSCRIBE.
                        Ok(Some(ControlMessage::PublishSkipped(p))) => match prefix_held.join(&p.suffix) {
                            Ok(ns) => { let _ = inner.events.send(Event::Skipped(FullTrackName::new(ns, p.name))); }
                            Err(_) => {
                                inner.close(Error::protocol("PUBLISH_SKIPPED names an invalid namespace"));
                                break;
                            }
                        },
                        Ok(Some(_)) => {
                            inner.close(Error::protocol("unexpected message on SUBSCRIBE_TRACKS"));
                            break;
                        }
                        // The peer will send nothing more; the request stays until we drop it.
                        Ok(None) => {
                            let _ = (&mut cancelled).await;
                            break;
                        }
                        Err(e) => {
                            if e.is_session_error() { inner.close(e); }
                            break;
                        }
                    },
                }
            }
            writer.reset(StreamCode::Cancelled);
            reader.stop(StreamCode::Cancelled);
        });
        Ok(TracksSubscription { prefix, _cancel: cancel })
    }
}

/// The error for a track whose properties include a Mandatory Track Property we do not understand.
pub(super) fn unsupported_extension(key: u64) -> Error {
    Error::Request(RequestFailure::Rejected {
        code: RequestErrorCode::UnsupportedExtension,
        reason: format!("mandatory track property {key:#x} is not understood"),
    })
}
