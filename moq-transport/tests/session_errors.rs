//! A misbehaving peer loses its session with the draft's code while other sessions carry on; requests that cannot
//! be served are refused with REQUEST_ERROR and leave the session open. Over the in-memory transport.

use moq_transport::{RequestFailure, SessionError, app_code};

mod common;

use common::*;

#[tokio::test]
async fn malformed_request_closes_with_protocol_violation() {
    let (peer, server) = RawPeer::connect(Origin::new()).await;
    // SUBSCRIBE whose length says 3 but whose fields need more: truncated body.
    let _s = peer.request(&[0x03, 0x00, 0x03, 0x00, 0x01, 0x01]).await;
    assert_eq!(peer.close_code().await, app_code(SessionCode::ProtocolViolation));
    assert_eq!(server.closed().await.session_code(), SessionCode::ProtocolViolation);
}

#[tokio::test]
async fn unknown_message_type_closes() {
    let (peer, _server) = RawPeer::connect(Origin::new()).await;
    let _s = peer.request(&[0x3f, 0x00, 0x00]).await;
    assert_eq!(peer.close_code().await, app_code(SessionCode::ProtocolViolation));
}

#[tokio::test]
async fn response_as_first_message_closes() {
    let (peer, _server) = RawPeer::connect(Origin::new()).await;
    let _s = peer.request(&frame(RequestOk::default().into())).await;
    assert_eq!(peer.close_code().await, app_code(SessionCode::ProtocolViolation));
}

#[tokio::test]
async fn wrong_parity_request_id_closes() {
    let (peer, _server) = RawPeer::connect(Origin::new()).await;
    // A client must use even ids.
    let ts = TrackStatus { request_id: RequestId(1), track: name("a", "b"), params: Parameters::default() };
    let _s = peer.request(&frame(ts.into())).await;
    assert_eq!(peer.close_code().await, app_code(SessionCode::InvalidRequestId));
}

#[tokio::test]
async fn duplicate_request_id_closes() {
    let (peer, _server) = RawPeer::connect(Origin::new()).await;
    let ts = TrackStatus { request_id: RequestId(2), track: name("a", "b"), params: Parameters::default() };
    let (_s1, mut r1) = peer.request(&frame(ts.clone().into())).await;
    // The first is answered (DOES_NOT_EXIST); the second with the same id kills the session.
    let answer = r1.read_chunk(1024).await.unwrap().unwrap();
    assert_eq!(answer[0], 0x05, "REQUEST_ERROR");
    let _s2 = peer.request(&frame(ts.into())).await;
    assert_eq!(peer.close_code().await, app_code(SessionCode::InvalidRequestId));
}

#[tokio::test]
async fn unknown_stream_type_closes() {
    let (peer, _server) = RawPeer::connect(Origin::new()).await;
    let mut s = peer.transport.open_uni().await.unwrap();
    s.write_all(&[0x04, 0x00]).await.unwrap();
    assert_eq!(peer.close_code().await, app_code(SessionCode::ProtocolViolation));
}

#[tokio::test(start_paused = true)]
async fn missing_setup_times_out() {
    let (raw, b) = memory::pair(None);
    let server = tokio::spawn(Session::establish(b, V, Role::Server, SessionConfig::default()));
    // No SETUP ever arrives: the server gives up with CONTROL_MESSAGE_TIMEOUT (time is paused and auto-advances).
    let err = server.await.unwrap().unwrap_err();
    assert!(matches!(err, Error::Session(SessionError::SetupTimeout)), "{err}");
    assert_eq!(err.session_code(), SessionCode::ControlMessageTimeout);
    // The transport closes just after the streams are reset.
    let _ = timeout(T, raw.closed()).await.unwrap();
    assert_eq!(raw.close_reason().unwrap().0, app_code(SessionCode::ControlMessageTimeout));
}

#[tokio::test]
async fn second_control_stream_closes() {
    let (peer, _server) = RawPeer::connect(Origin::new()).await;
    let mut again = peer.transport.open_uni().await.unwrap();
    again.write_all(&frame(Setup::default().into())).await.unwrap();
    assert_eq!(peer.close_code().await, app_code(SessionCode::ProtocolViolation));
}

#[tokio::test]
async fn fin_inside_a_message_closes() {
    let (peer, _server) = RawPeer::connect(Origin::new()).await;
    let (mut s, _r) = peer.request(&[0x03, 0x00, 0x10, 0x00]).await;
    s.finish().unwrap();
    assert_eq!(peer.close_code().await, app_code(SessionCode::ProtocolViolation));
}

#[tokio::test]
async fn second_goaway_and_client_uri_close() {
    let (raw, b) = memory::pair(None);
    let server = tokio::spawn(Session::establish(b, V, Role::Server, SessionConfig::default()));
    let mut control = raw.open_uni().await.unwrap();
    control.write_all(&frame(Setup::default().into())).await.unwrap();
    let server = server.await.unwrap().unwrap();
    control.write_all(&frame(GoAway::default().into())).await.unwrap();
    match timeout(T, server.next_event()).await.unwrap() {
        Some(Event::GoAway { uri, .. }) => assert!(uri.is_empty()),
        other => panic!("{other:?}"),
    }
    control.write_all(&frame(GoAway::default().into())).await.unwrap();
    let _ = timeout(T, raw.closed()).await.unwrap();
    assert_eq!(raw.close_reason().unwrap().0, app_code(SessionCode::ProtocolViolation));

    // A GOAWAY with a URI from a client.
    let (raw, b) = memory::pair(None);
    let server = tokio::spawn(Session::establish(b, V, Role::Server, SessionConfig::default()));
    let mut control = raw.open_uni().await.unwrap();
    control.write_all(&frame(Setup::default().into())).await.unwrap();
    let _server = server.await.unwrap().unwrap();
    let g = GoAway { new_session_uri: Bytes::from_static(b"moqt://x/"), ..Default::default() };
    control.write_all(&frame(g.into())).await.unwrap();
    let _ = timeout(T, raw.closed()).await.unwrap();
    assert_eq!(raw.close_reason().unwrap().0, app_code(SessionCode::ProtocolViolation));
}

#[tokio::test]
async fn closing_the_control_stream_closes() {
    let (raw, b) = memory::pair(None);
    let server = tokio::spawn(Session::establish(b, V, Role::Server, SessionConfig::default()));
    let mut control = raw.open_uni().await.unwrap();
    control.write_all(&frame(Setup::default().into())).await.unwrap();
    let _server = server.await.unwrap().unwrap();
    control.finish().unwrap();
    let _ = timeout(T, raw.closed()).await.unwrap();
    assert_eq!(raw.close_reason().unwrap().0, app_code(SessionCode::ProtocolViolation));
}

#[tokio::test]
async fn a_bad_peer_does_not_affect_other_sessions() {
    let origin = Origin::new();
    let track = TrackProducer::new(TrackInfo::new(name("live", "v")));
    origin.publish_track(track.clone());
    let (good, _server) = sessions(origin.clone()).await;
    let sub = good.subscribe(name("live", "v"), SubscribeOptions::default()).await.unwrap();
    let mut c = sub.consumer();

    let (bad, _bad_server) = RawPeer::connect(origin.clone()).await;
    let _s = bad.request(&[0x3f, 0xff, 0xff]).await; // garbage: no such message type
    track.write_group(0, [Object::new(0, "still here")]).unwrap();
    assert_eq!(bad.close_code().await, app_code(SessionCode::ProtocolViolation));
    let mut g = timeout(T, c.next_group()).await.unwrap().unwrap();
    assert_eq!(g.id(), GroupId(0));
    let mut sg = g.next_subgroup().await.unwrap();
    assert_eq!(&sg.next().await.unwrap().payload[..], b"still here");
}

#[tokio::test]
async fn rejected_requests_leave_the_session_open() {
    let (client, _server) = sessions(Origin::new()).await;
    for _ in 0..3 {
        let e = client.subscribe(name("x", "y"), SubscribeOptions::default()).await.unwrap_err();
        assert!(matches!(e, Error::Request(RequestFailure::Rejected { code: RequestErrorCode::DoesNotExist, .. })));
    }
    // Request ids keep their parity and advance.
    let e = client.track_status(name("x", "y")).await.unwrap_err();
    assert!(matches!(e, Error::Request(RequestFailure::Rejected { .. })));
}

#[tokio::test]
async fn range_filters_are_refused_with_invalid_filter() {
    use moq_transport::wire::params::{RangeDelta, RangeFilter, RangeFilterKind};
    let origin = Origin::new();
    origin.publish_track(TrackProducer::new(TrackInfo::new(name("live", "v"))));
    let (peer, _server) = RawPeer::connect(origin).await;
    // We advertise no MAX_FILTER_RANGES, so the peer may send none: refused, and the session stays open.
    let mut params = Parameters::default();
    params.range_filters.push(RangeFilter {
        kind: RangeFilterKind::ObjectId,
        set_id: Some(0),
        ranges: vec![RangeDelta { start: 0, end: Some(3) }],
    });
    let sub = Subscribe { request_id: RequestId(0), track: name("live", "v"), params };
    let (_send, mut recv) = peer.request(&frame(sub.into())).await;
    let (bytes, _) = drain(&mut recv).await;
    let mut buf = BytesMut::from(&bytes[..]);
    let answer = ControlMessage::decode_from(&mut buf, V).unwrap();
    let ControlMessage::RequestError(e) = answer else { panic!("expected REQUEST_ERROR, got {answer:?}") };
    assert_eq!(e.code, RequestErrorCode::InvalidFilter);
    let plain = Subscribe { request_id: RequestId(2), track: name("live", "v"), params: Parameters::default() };
    let (_send, mut recv) = peer.request(&frame(plain.into())).await;
    let ok = timeout(T, recv.read_chunk(1024)).await.unwrap().unwrap().unwrap();
    let answer = ControlMessage::decode_from(&mut BytesMut::from(&ok[..]), V).unwrap();
    assert!(matches!(answer, ControlMessage::SubscribeOk(_)), "{answer:?}");
}

#[tokio::test]
async fn a_publisher_may_update_its_publish_and_send_one_goaway_per_request() {
    let (peer, _server) = RawPeer::connect(Origin::new()).await;
    let (mut send, mut recv) = publish_pushed(&peer).await;
    let mut buf = BytesMut::new();
    assert!(matches!(next_message(&mut recv, &mut buf).await, ControlMessage::RequestOk(_)));
    // A GOAWAY on a request stream migrates that request: the session carries on.
    let goaway = GoAway { new_session_uri: Bytes::new(), timeout_ms: 0, request_id: None };
    send.write_all(&frame(goaway.clone().into())).await.unwrap();
    let update =
        RequestUpdate { request_id: RequestId(2), params: Parameters { forward: Some(true), ..Default::default() } };
    send.write_all(&frame(update.into())).await.unwrap();
    let answer = next_message(&mut recv, &mut buf).await;
    assert!(matches!(answer, ControlMessage::RequestOk(_)), "{answer:?}");
    // A second GOAWAY on the same request stream closes the session.
    send.write_all(&frame(goaway.into())).await.unwrap();
    assert_eq!(peer.close_code().await, app_code(SessionCode::ProtocolViolation));
}

/// PUBLISH of `pushed--v` as track alias 1 (request 0); the answer not yet read.
async fn publish_pushed(peer: &RawPeer) -> (memory::MemorySend, memory::MemoryRecv) {
    let publish = Publish {
        request_id: RequestId(0),
        track: name("pushed", "v"),
        track_alias: moq_transport::wire::TrackAlias(1),
        params: Parameters::default(),
        track_properties: Default::default(),
    };
    peer.request(&frame(publish.into())).await
}

/// One subgroup stream of track alias 1: its header, then each (object id, payload or status), then FIN.
async fn raw_subgroup(peer: &RawPeer, group: u64, objects: &[(u64, Result<&str, ObjectStatus>)]) {
    use moq_transport::wire::data::{ObjectHeader, SubgroupHeader, SubgroupIdMode, SubgroupWriter};
    let header = SubgroupHeader {
        track_alias: moq_transport::wire::TrackAlias(1),
        group_id: GroupId(group),
        subgroup: SubgroupIdMode::Zero,
        publisher_priority: Some(0),
        has_properties: false,
        end_of_group: false,
        first_object: true,
    };
    let mut w = SubgroupWriter::new(header, V);
    let mut buf = BytesMut::new();
    w.write_header(&mut buf).unwrap();
    for (id, o) in objects {
        let id = moq_transport::wire::ObjectId(*id);
        match o {
            Ok(payload) => w.write_object(&mut buf, id, Default::default(), payload.as_bytes()).unwrap(),
            Err(status) => {
                let h = ObjectHeader { object_id: id, properties: Default::default(), payload_len: 0, status: *status };
                w.write_object_header(&mut buf, &h).unwrap();
            }
        }
    }
    let mut stream = peer.transport.open_uni().await.unwrap();
    stream.write_all(&buf).await.unwrap();
    stream.finish().unwrap();
}

#[tokio::test]
async fn groups_racing_an_end_of_track_object_are_still_taken() {
    let (peer, server) = RawPeer::connect(Origin::new()).await;
    let (_send, mut recv) = publish_pushed(&peer).await;
    assert!(matches!(next_message(&mut recv, &mut BytesMut::new()).await, ControlMessage::RequestOk(_)));
    let Some(Event::Published(track)) = timeout(T, server.next_event()).await.unwrap() else { panic!("no PUBLISH") };
    let mut c = track.consume_from_start();
    // Group 1 ends the track; group 0, sent earlier on its own stream, lands after it (QUIC streams race).
    raw_subgroup(&peer, 1, &[(0, Ok("last")), (1, Err(ObjectStatus::EndOfTrack))]).await;
    assert_eq!(timeout(T, c.next_group()).await.unwrap().unwrap().id(), GroupId(1));
    raw_subgroup(&peer, 0, &[(0, Ok("first"))]).await;
    let g = timeout(T, c.next_group()).await.unwrap().expect("group 0 refused: the track had ended at once");
    assert_eq!(g.id(), GroupId(0));
    assert_eq!(timeout(T, c.next_group()).await.unwrap().unwrap_err(), TrackEnd::Ended);
}

#[tokio::test]
async fn an_update_that_cannot_be_applied_ends_the_subscription_with_update_failed() {
    let (_track, _peer, _server, mut send, mut recv) = RawPeer::subscribed().await;
    let mut buf = BytesMut::new();
    assert!(matches!(next_message(&mut recv, &mut buf).await, ControlMessage::SubscribeOk(_)));
    // A new location filter is not something we apply to a live subscription: refused, not ignored.
    let params = Parameters {
        location_filter: Some(moq_transport::wire::params::LocationFilter::NextGroupStart),
        ..Default::default()
    };
    send.write_all(&frame(RequestUpdate { request_id: RequestId(2), params }.into())).await.unwrap();
    let answer = next_message(&mut recv, &mut buf).await;
    assert!(matches!(answer, ControlMessage::RequestError(_)), "{answer:?}");
    let done = next_message(&mut recv, &mut buf).await;
    let ControlMessage::PublishDone(done) = done else { panic!("expected PUBLISH_DONE, got {done:?}") };
    assert_eq!(done.status, moq_transport::wire::codes::PublishDoneCode::UpdateFailed);
}

/// `Session::closed` must not read the session's close state twice under one lock: with other tasks closing the
/// session at the same moment (each close takes the write lock), a second read waits behind the writer, which
/// waits for the first read: a deadlock that stopped a relay's whole runtime under churn.
#[test]
fn closed_waiters_and_concurrent_closes_never_deadlock() {
    let work = async {
        for _ in 0..300 {
            let (a, _b) = sessions(Origin::new()).await;
            let waiters: Vec<_> = (0..4)
                .map(|_| {
                    let a = a.clone();
                    tokio::spawn(async move { a.closed().await })
                })
                .collect();
            let closers: Vec<_> = (0..4)
                .map(|_| {
                    let a = a.clone();
                    tokio::spawn(async move {
                        for _ in 0..200 {
                            a.close(SessionCode::NoError, "bye");
                            tokio::task::yield_now().await;
                        }
                    })
                })
                .collect();
            for t in waiters {
                t.await.unwrap();
            }
            for t in closers {
                t.await.unwrap();
            }
        }
    };
    // A deadlock stops every worker, timers included: watch from a plain thread.
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap();
        runtime.block_on(work);
        let _ = done.send(());
    });
    assert!(finished.recv_timeout(Duration::from_secs(60)).is_ok(), "a closed() waiter deadlocked");
}

/// A subscriber more than four groups behind loses its oldest group, but not its subscription: the group's stream
/// is reset with CANCELLED. TOO_FAR_BEHIND would tell it that the subscription is being terminated
/// (draft-19 §Stream Reset Error Codes).
#[tokio::test]
async fn a_group_abandoned_for_a_slow_subscriber_is_cancelled_not_too_far_behind() {
    use moq_transport::wire::codes::StreamCode;
    let (track, peer, _server, _send, mut recv) = RawPeer::subscribed().await;
    let mut buf = BytesMut::new();
    assert!(matches!(next_message(&mut recv, &mut buf).await, ControlMessage::SubscribeOk(_)));
    // Five groups, each with a subgroup still open (still being written): one more than may be in flight.
    let mut open = Vec::new();
    let mut streams = Vec::new();
    for g in 0..5 {
        let group = track.create_group(g).unwrap();
        let subgroup = group.create_subgroup(0, 0);
        subgroup.write(Object::new(0, "frame")).unwrap();
        open.push((group, subgroup));
        streams.push(timeout(T, peer.transport.accept_uni()).await.unwrap().unwrap());
    }
    let (_, end) = drain(&mut streams[0]).await;
    assert_eq!(end, Err(app_code(StreamCode::Cancelled)), "the oldest group's stream");
    // The subscription goes on: the newest group is still being delivered.
    let chunk = timeout(T, streams[4].read_chunk(1024)).await.unwrap().unwrap();
    assert!(chunk.is_some_and(|c| !c.is_empty()));
}

/// A client may not name a new session URI in a GOAWAY, on a request stream as on the control stream
/// (draft-19 §GOAWAY): the server closes the session with PROTOCOL_VIOLATION.
#[tokio::test]
async fn a_client_goaway_with_a_uri_on_a_request_stream_is_a_protocol_violation() {
    let (_track, peer, _server, mut send, mut recv) = RawPeer::subscribed().await;
    let mut buf = BytesMut::new();
    assert!(matches!(next_message(&mut recv, &mut buf).await, ControlMessage::SubscribeOk(_)));
    let goaway =
        GoAway { new_session_uri: Bytes::from_static(b"https://elsewhere.example/"), timeout_ms: 0, request_id: None };
    send.write_all(&frame(goaway.into())).await.unwrap();
    assert_eq!(peer.close_code().await, app_code(SessionCode::ProtocolViolation));
}

/// Our PUBLISH_NAMESPACE stays published when the responder closes its side of the request stream or sends a
/// GOAWAY on it: only a cancel (a reset or STOP_SENDING) withdraws it (draft-19 §Publishing Namespaces). Dropping
/// the announcement withdraws it with CANCELLED.
#[tokio::test(start_paused = true)]
async fn a_published_namespace_survives_the_responders_fin_and_goaway() {
    use moq_transport::wire::codes::StreamCode;
    let (peer, server) = RawPeer::connect(Origin::new()).await;
    let session = server.clone();
    let announcing =
        tokio::spawn(async move { session.publish_namespace(TrackNamespace::from_path("live").unwrap()).await });
    let (mut send, mut recv) = timeout(T, peer.transport.accept_bi()).await.unwrap().unwrap();
    let mut buf = BytesMut::new();
    assert!(matches!(next_message(&mut recv, &mut buf).await, ControlMessage::PublishNamespace(_)));
    send.write_all(&frame(RequestOk::default().into())).await.unwrap();
    let announcement = timeout(T, announcing).await.unwrap().unwrap().unwrap();
    send.write_all(&frame(GoAway { new_session_uri: Bytes::new(), timeout_ms: 0, request_id: None }.into()))
        .await
        .unwrap();
    send.finish().unwrap();
    // Still published a minute later: the stream was neither reset nor stopped.
    let read = timeout(Duration::from_secs(60), recv.read_chunk(1024)).await;
    assert!(read.is_err(), "the namespace was withdrawn: {read:?}");
    drop(announcement);
    let (_, end) = drain(&mut recv).await;
    assert_eq!(end, Err(app_code(StreamCode::Cancelled)));
}

/// An object after its group's END_OF_GROUP makes the track malformed (draft-19 §Malformed Tracks): the track
/// ends with MALFORMED_TRACK, the offending object is not kept, and the PUBLISH is cancelled.
#[tokio::test]
async fn an_object_past_the_end_of_its_group_makes_the_track_malformed() {
    use moq_transport::wire::codes::StreamCode;
    let (peer, server) = RawPeer::connect(Origin::new()).await;
    let (_send, mut recv) = publish_pushed(&peer).await;
    let mut buf = BytesMut::new();
    assert!(matches!(next_message(&mut recv, &mut buf).await, ControlMessage::RequestOk(_)));
    let Some(Event::Published(track)) = timeout(T, server.next_event()).await.unwrap() else { panic!("no PUBLISH") };
    let mut c = track.consume_from_start();
    raw_subgroup(&peer, 0, &[(0, Ok("a")), (1, Err(ObjectStatus::EndOfGroup))]).await;
    // The same subgroup again, now with an object past the group's end.
    raw_subgroup(&peer, 0, &[(2, Ok("too far"))]).await;
    let (_, end) = drain(&mut recv).await;
    assert_eq!(end, Err(app_code(StreamCode::MalformedTrack)), "the PUBLISH is cancelled");
    let mut group = timeout(T, c.next_group()).await.unwrap().unwrap();
    let mut ids = Vec::new();
    while let Some(mut sub) = timeout(T, group.next_subgroup_to_end()).await.unwrap() {
        while let Ok(o) = timeout(T, sub.next()).await.unwrap() {
            ids.push(o.id.0);
        }
    }
    assert!(!ids.contains(&2), "the malformed object was kept: {ids:?}");
    let end = timeout(T, c.next_group()).await.unwrap().unwrap_err();
    assert_eq!(end, TrackEnd::Error(moq_transport::wire::codes::PublishDoneCode::MalformedTrack.to_u64()));
}

/// A PUBLISH whose track carries a Mandatory Track Property (0x4000-0x7FFF) we do not understand is refused with
/// UNSUPPORTED_EXTENSION (draft-19 §Mandatory Track Properties).
#[tokio::test]
async fn a_publish_with_a_mandatory_track_property_is_refused() {
    let (peer, _server) = RawPeer::connect(Origin::new()).await;
    let publish = Publish {
        request_id: RequestId(0),
        track: name("pushed", "v"),
        track_alias: moq_transport::wire::TrackAlias(1),
        params: Parameters::default(),
        track_properties: moq_transport::wire::kvp::Properties::new().with_int(0x4000, 1).unwrap(),
    };
    let (_send, mut recv) = peer.request(&frame(publish.into())).await;
    let answer = next_message(&mut recv, &mut BytesMut::new()).await;
    let ControlMessage::RequestError(e) = answer else { panic!("expected REQUEST_ERROR, got {answer:?}") };
    assert_eq!(e.code, RequestErrorCode::UnsupportedExtension);
}

/// A FETCH_OK whose End Location lies before the FETCH's Start Location closes the session with
/// PROTOCOL_VIOLATION (draft-19 §FETCH_OK).
#[tokio::test]
async fn a_fetch_ok_ending_before_the_start_is_a_protocol_violation() {
    let (peer, server) = RawPeer::connect(Origin::new()).await;
    let range = FetchRange::Standalone {
        track: name("live", "v"),
        start: moq_transport::wire::Location::new(5, 0),
        end: moq_transport::wire::Location::new(9, 0),
    };
    let fetching =
        tokio::spawn(async move { server.fetch(range, moq_transport::wire::GroupOrder::Ascending).await.err() });
    let (mut send, mut recv) = timeout(T, peer.transport.accept_bi()).await.unwrap().unwrap();
    assert!(matches!(next_message(&mut recv, &mut BytesMut::new()).await, ControlMessage::Fetch(_)));
    let ok = FetchOk { end_location: moq_transport::wire::Location::new(4, 3), ..Default::default() };
    send.write_all(&frame(ok.into())).await.unwrap();
    assert_eq!(peer.close_code().await, app_code(SessionCode::ProtocolViolation));
    assert!(matches!(
        timeout(T, fetching).await.unwrap().unwrap(),
        Some(Error::Session(SessionError::ProtocolViolation(_)))
    ));
}

/// PUBLISH_NAMESPACE_OK (like PUBLISH_OK and SUBSCRIBE_NAMESPACE_OK) carries no Track Properties: one that does
/// closes the session with PROTOCOL_VIOLATION (draft-19 §REQUEST_OK).
#[tokio::test]
async fn a_publish_namespace_ok_with_track_properties_is_a_protocol_violation() {
    let (peer, server) = RawPeer::connect(Origin::new()).await;
    let announcing =
        tokio::spawn(async move { server.publish_namespace(TrackNamespace::from_path("live").unwrap()).await.err() });
    let (mut send, mut recv) = timeout(T, peer.transport.accept_bi()).await.unwrap().unwrap();
    assert!(matches!(next_message(&mut recv, &mut BytesMut::new()).await, ControlMessage::PublishNamespace(_)));
    let ok = RequestOk {
        track_properties: moq_transport::wire::kvp::Properties::new().with_int(0x0E, 1).unwrap(),
        ..Default::default()
    };
    send.write_all(&frame(ok.into())).await.unwrap();
    assert_eq!(peer.close_code().await, app_code(SessionCode::ProtocolViolation));
    assert!(timeout(T, announcing).await.unwrap().unwrap().is_some(), "the announcement failed");
}

/// A SUBSCRIBE without GROUP_ORDER gets the track's DEFAULT_PUBLISHER_GROUP_ORDER (draft-19 §GROUP_ORDER): for a
/// track that prefers descending, a newer group's stream is sent before an older one's.
#[tokio::test]
async fn a_subscription_without_a_group_order_takes_the_tracks() {
    use moq_transport::wire::kvp::{Properties, property};
    let origin = Origin::new();
    let mut info = TrackInfo::new(name("live", "v"));
    info.properties = Properties::new().with_int(property::DEFAULT_PUBLISHER_GROUP_ORDER, 2).unwrap();
    let track = TrackProducer::new(info);
    origin.publish_track(track.clone());
    let (peer, _server) = RawPeer::connect(origin).await;
    let sub = Subscribe { request_id: RequestId(0), track: name("live", "v"), params: Parameters::default() };
    let (_send, mut recv) = peer.request(&frame(sub.into())).await;
    assert!(matches!(next_message(&mut recv, &mut BytesMut::new()).await, ControlMessage::SubscribeOk(_)));
    let mut open = Vec::new();
    let mut streams = Vec::new();
    for g in 0..2 {
        let group = track.create_group(g).unwrap();
        let subgroup = group.create_subgroup(0, 0);
        subgroup.write(Object::new(0, "frame")).unwrap();
        open.push((group, subgroup));
        streams.push(timeout(T, peer.transport.accept_uni()).await.unwrap().unwrap());
    }
    assert!(streams[1].sender_priority() > streams[0].sender_priority(), "group 1 goes first");
}

/// SUBSCRIBE_TRACKS (draft-19 §SUBSCRIBE_TRACKS, §Subscribing to Namespaces): its FORWARD and GROUP_ORDER reach the
/// PUBLISHes it causes, and tracks the subscriber publishes itself are not PUBLISHed back to it.
#[tokio::test(start_paused = true)]
async fn subscribe_tracks_passes_its_parameters_and_skips_the_subscribers_own_tracks() {
    let origin = Origin::new();
    origin.publish_track(TrackProducer::new(TrackInfo::new(name("room/mine", "v"))));
    origin.publish_track(TrackProducer::new(TrackInfo::new(name("room/other", "v"))));
    let (peer, _server) = RawPeer::connect(origin).await;
    let announce = PublishNamespace {
        request_id: RequestId(0),
        namespace: TrackNamespace::from_path("room/mine").unwrap(),
        params: Parameters::default(),
    };
    let (_a_send, mut a_recv) = peer.request(&frame(announce.into())).await;
    assert!(matches!(next_message(&mut a_recv, &mut BytesMut::new()).await, ControlMessage::RequestOk(_)));
    let params = Parameters {
        forward: Some(false),
        group_order: Some(moq_transport::wire::GroupOrder::Descending),
        ..Default::default()
    };
    let tracks =
        SubscribeTracks { request_id: RequestId(2), prefix: TrackNamespace::from_path("room").unwrap(), params };
    let (_t_send, mut t_recv) = peer.request(&frame(tracks.into())).await;
    assert!(matches!(next_message(&mut t_recv, &mut BytesMut::new()).await, ControlMessage::RequestOk(_)));
    let (mut send, mut recv) = timeout(T, peer.transport.accept_bi()).await.unwrap().unwrap();
    let ControlMessage::Publish(publish) = next_message(&mut recv, &mut BytesMut::new()).await else {
        panic!("expected PUBLISH")
    };
    assert_eq!(publish.track, name("room/other", "v"), "our own track is not PUBLISHed back");
    assert_eq!(publish.params.forward, Some(false));
    assert_eq!(publish.params.group_order, Some(moq_transport::wire::GroupOrder::Descending));
    send.write_all(&frame(RequestOk::default().into())).await.unwrap();
    assert!(timeout(Duration::from_secs(30), peer.transport.accept_bi()).await.is_err(), "a second PUBLISH");
}

/// PUBLISH_OK's LOCATION_FILTER narrows what a PUBLISH sends, like a SUBSCRIBE's (draft-19 §LOCATION_FILTER):
/// with Next Group Start, the group under way is not sent.
#[tokio::test]
async fn a_publish_ok_location_filter_is_applied() {
    use moq_transport::wire::data::DataStreamHeader;
    let (peer, server) = RawPeer::connect(Origin::new()).await;
    let track = TrackProducer::new(TrackInfo::new(name("pushed", "v")));
    let group = track.create_group(0).unwrap();
    let subgroup = group.create_subgroup(0, 0);
    subgroup.write(Object::new(0, "under way")).unwrap();
    let publishing = tokio::spawn({
        let track = track.clone();
        async move { server.publish(track).await.map(|p| (p, server)) }
    });
    let (mut send, mut recv) = timeout(T, peer.transport.accept_bi()).await.unwrap().unwrap();
    assert!(matches!(next_message(&mut recv, &mut BytesMut::new()).await, ControlMessage::Publish(_)));
    let params = Parameters {
        location_filter: Some(moq_transport::wire::params::LocationFilter::NextGroupStart),
        ..Default::default()
    };
    send.write_all(&frame(RequestOk { params, ..Default::default() }.into())).await.unwrap();
    let _held = timeout(T, publishing).await.unwrap().unwrap();
    subgroup.write(Object::new(1, "still group 0")).unwrap();
    track.write_group(1, [Object::new(0, "next")]).unwrap();
    let mut stream = timeout(T, peer.transport.accept_uni()).await.unwrap().unwrap();
    let bytes = timeout(T, stream.read_chunk(1024)).await.unwrap().unwrap().expect("a header");
    let Ok((DataStreamHeader::Subgroup(h), _)) = DataStreamHeader::decode_prefix(&bytes, V) else {
        panic!("expected a subgroup stream")
    };
    assert_eq!(h.group_id, GroupId(1), "the first stream is the next group's");
}

/// A peer that allows one outstanding REQUEST_UPDATE per stream (MAX_REQUEST_UPDATES = 1) gets the second only
/// after it answered the first (draft-19 §MAX_REQUEST_UPDATES: the sender MUST NOT exceed it).
#[tokio::test(start_paused = true)]
async fn request_updates_respect_the_peers_max_request_updates() {
    let (raw, b) = memory::pair(None);
    let server = tokio::spawn(Session::establish(b, V, Role::Server, SessionConfig::default()));
    let mut control = raw.open_uni().await.unwrap();
    let options = SetupOptions { max_request_updates: Some(1), ..Default::default() };
    control.write_all(&frame(Setup { options }.into())).await.unwrap();
    let server = server.await.unwrap().unwrap();
    let peer_control = timeout(T, raw.accept_uni()).await.unwrap().unwrap();
    let subscribing = tokio::spawn({
        let server = server.clone();
        async move { server.subscribe(name("live", "v"), SubscribeOptions::default()).await }
    });
    let (mut send, mut recv) = timeout(T, raw.accept_bi()).await.unwrap().unwrap();
    let mut buf = BytesMut::new();
    assert!(matches!(next_message(&mut recv, &mut buf).await, ControlMessage::Subscribe(_)));
    let ok = SubscribeOk {
        track_alias: moq_transport::wire::TrackAlias(1),
        params: Parameters::default(),
        track_properties: Default::default(),
    };
    send.write_all(&frame(ok.into())).await.unwrap();
    let sub = std::sync::Arc::new(timeout(T, subscribing).await.unwrap().unwrap().unwrap());
    let updates: Vec<_> = [Some(false), Some(true)]
        .into_iter()
        .map(|forward| {
            let sub = sub.clone();
            tokio::spawn(async move { sub.update(Parameters { forward, ..Default::default() }).await })
        })
        .collect();
    assert!(matches!(next_message(&mut recv, &mut buf).await, ControlMessage::RequestUpdate(_)));
    let more = timeout(Duration::from_secs(30), recv.read_chunk(1024)).await;
    assert!(more.is_err() && buf.is_empty(), "a second REQUEST_UPDATE before the first was answered");
    send.write_all(&frame(RequestOk::default().into())).await.unwrap();
    assert!(matches!(next_message(&mut recv, &mut buf).await, ControlMessage::RequestUpdate(_)));
    send.write_all(&frame(RequestOk::default().into())).await.unwrap();
    for u in updates {
        timeout(T, u).await.unwrap().unwrap().unwrap();
    }
    drop((control, peer_control));
}

/// A PUBLISH_DONE whose Stream Count never arrives, and then our session closes: the received track still ends
/// with the publisher's status (waiting for the streams stops at the close; the session's tasks are aborted soon
/// after, which would otherwise leave the track open for ever).
#[tokio::test(start_paused = true)]
async fn a_publish_done_waiting_for_streams_still_ends_the_track_when_the_session_closes() {
    use moq_transport::wire::codes::PublishDoneCode;
    let (peer, server) = RawPeer::connect(Origin::new()).await;
    let (mut send, mut recv) = publish_pushed(&peer).await;
    let mut buf = BytesMut::new();
    assert!(matches!(next_message(&mut recv, &mut buf).await, ControlMessage::RequestOk(_)));
    let Some(Event::Published(track)) = timeout(T, server.next_event()).await.unwrap() else { panic!("no PUBLISH") };
    let mut c = track.consume_from_start();
    let done = PublishDone { status: PublishDoneCode::TrackEnded, stream_count: 5, reason: Default::default() };
    send.write_all(&frame(done.into())).await.unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    server.close(SessionCode::NoError, "done");
    let end = timeout(Duration::from_secs(10), c.next_group()).await.expect("the track ends").unwrap_err();
    assert_eq!(end, TrackEnd::Ended);
}
