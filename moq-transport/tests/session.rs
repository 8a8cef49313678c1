//! Session state machines driven over the in-memory transport: no sockets, no TLS. These cover every request
//! type end to end and the error paths where a misbehaving peer must lose its session, with the draft's code,
//! while other sessions carry on.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use moq_transport::memory::{self, MemorySession};
use moq_transport::wire::codes::{RequestErrorCode, SessionCode};
use moq_transport::wire::control::*;
use moq_transport::wire::namespace::{FullTrackName, TrackNamespace};
use moq_transport::wire::params::Parameters;
use moq_transport::wire::setup::SetupOptions;
use moq_transport::wire::{Decode, GroupId, RequestId, Version};
use moq_transport::*;
use tokio::time::timeout;
use web_transport_trait::{RecvStream as _, SendStream as _, Session as _};

const V: Version = Version::Draft19;
const T: Duration = Duration::from_secs(5);

fn name(ns: &str, track: &str) -> FullTrackName {
    FullTrackName::new(TrackNamespace::from_path(ns).unwrap(), track)
}

async fn sessions(origin: Origin) -> (Session<MemorySession>, Session<MemorySession>) {
    let (a, b) = memory::pair(None);
    let (client, server) = tokio::join!(
        Session::establish(a, V, Role::Client, SessionConfig::default()),
        Session::establish(b, V, Role::Server, SessionConfig { origin, ..Default::default() }),
    );
    (client.unwrap(), server.unwrap())
}

fn frame(msg: ControlMessage) -> Bytes {
    let mut buf = BytesMut::new();
    msg.encode(&mut buf, V).unwrap();
    buf.freeze()
}

/// A hand-driven client: completes SETUP, then lets the test write whatever bytes it likes.
struct RawPeer {
    transport: MemorySession,
    server: tokio::task::JoinHandle<Result<Session<MemorySession>, Error>>,
}

impl RawPeer {
    async fn connect(origin: Origin) -> (RawPeer, Session<MemorySession>) {
        let (raw, b) = memory::pair(None);
        let server =
            tokio::spawn(Session::establish(b, V, Role::Server, SessionConfig { origin, ..Default::default() }));
        let mut control = raw.open_uni().await.unwrap();
        control.write_all(&frame(Setup { options: SetupOptions::default() }.into())).await.unwrap();
        std::mem::forget(control); // keep our control stream open for the whole test
        let mut peer = RawPeer { transport: raw, server };
        let session = (&mut peer.server).await.unwrap().unwrap();
        // Take the server's control stream off the accept queue, so that tests see only data streams there.
        let control = timeout(T, peer.transport.accept_uni()).await.unwrap().unwrap();
        std::mem::forget(control);
        (peer, session)
    }

    /// A server publishing `live--v` and a raw peer that has sent SUBSCRIBE for it (the reply not yet read).
    async fn subscribed() -> (TrackProducer, RawPeer, Session<MemorySession>, memory::MemorySend, memory::MemoryRecv) {
        let origin = Origin::new();
        let track = TrackProducer::new(TrackInfo::new(name("live", "v")));
        origin.publish_track(track.clone());
        let (peer, server) = RawPeer::connect(origin).await;
        let sub = Subscribe { request_id: RequestId(0), track: name("live", "v"), params: Parameters::default() };
        let (send, recv) = peer.request(&frame(sub.into())).await;
        (track, peer, server, send, recv)
    }

    /// Opens a request stream and writes `bytes` on it.
    async fn request(&self, bytes: &[u8]) -> (memory::MemorySend, memory::MemoryRecv) {
        let (mut send, recv) = self.transport.open_bi().await.unwrap();
        send.write_all(bytes).await.unwrap();
        (send, recv)
    }

    /// Waits for the server to close the session; returns the code.
    async fn close_code(&self) -> u32 {
        let _ = timeout(T, self.transport.closed()).await.expect("session should close");
        self.transport.close_reason().unwrap().0
    }
}

#[tokio::test]
async fn subscribe_objects_publish_done() {
    let origin = Origin::new();
    let track = TrackProducer::new(TrackInfo::new(name("live", "v")));
    origin.publish_track(track.clone());
    let (client, server) = sessions(origin).await;
    assert_eq!((client.role(), server.role()), (Role::Client, Role::Server));
    assert_eq!(server.peer_setup().implementation.as_deref(), Some(concat!("moq-rs/", env!("CARGO_PKG_VERSION"))));

    let sub = client.subscribe(name("live", "v"), SubscribeOptions::default()).await.unwrap();
    assert_eq!(sub.request_id, RequestId(0));
    let mut c = sub.consumer();
    for g in 0..3 {
        track.write_group(g, (0..4).map(|o| Object::new(o, vec![g as u8; 3]))).unwrap();
    }
    track.end(TrackEnd::Ended);
    let mut objects = 0;
    while let Ok(mut group) = timeout(T, c.next_group()).await.unwrap() {
        while let Some(mut sg) = group.next_subgroup().await {
            while let Ok(o) = sg.next().await {
                assert_eq!(&o.payload[..], &[group.id().0 as u8; 3]);
                objects += 1;
            }
        }
    }
    assert_eq!(objects, 12);
    // PUBLISH_DONE TRACK_ENDED ends the subscriber's track cleanly.
    assert_eq!(c.ended(), Some(TrackEnd::Ended));
}

#[tokio::test]
async fn every_request_type_over_memory() {
    let origin = Origin::new();
    let track = TrackProducer::new(TrackInfo::new(name("live", "v")));
    origin.publish_track(track.clone());
    track.write_group(0, [Object::new(0, "a"), Object::new(1, "b")]).unwrap();
    let (client, server) = sessions(origin.clone()).await;

    // TRACK_STATUS
    let st = client.track_status(name("live", "v")).await.unwrap();
    assert_eq!(st.largest, Some(moq_transport::wire::Location::new(0, 1)));
    // FETCH
    let range = FetchRange::Standalone {
        track: name("live", "v"),
        start: moq_transport::wire::Location::new(0, 0),
        end: moq_transport::wire::Location::new(0, 0),
    };
    let mut f = client.fetch(range, moq_transport::wire::GroupOrder::Ascending).await.unwrap();
    let mut payloads = Vec::new();
    while let Some(o) = f.next().await.unwrap() {
        payloads.push(o.payload);
    }
    assert_eq!(payloads, vec![Bytes::from("a"), Bytes::from("b")]);
    // SUBSCRIBE_NAMESPACE
    let mut ns = client.subscribe_namespace(TrackNamespace::empty()).await.unwrap();
    assert_eq!(ns.next().await, Some(NamespaceEvent::Added(TrackNamespace::from_path("live").unwrap())));
    // PUBLISH_NAMESPACE
    let _ann = client.publish_namespace(TrackNamespace::from_path("mine").unwrap()).await.unwrap();
    assert!(matches!(server.next_event().await, Some(Event::Announced(_))));
    // PUBLISH
    let pushed = TrackProducer::new(TrackInfo::new(name("mine", "p")));
    let _p = client.publish(pushed.clone()).await.unwrap();
    assert!(matches!(server.next_event().await, Some(Event::Published(_))));
    // SUBSCRIBE_TRACKS: the server PUBLISHes what it has under the prefix.
    let _tracks = client.subscribe_tracks(TrackNamespace::from_path("live").unwrap()).await.unwrap();
    match timeout(T, client.next_event()).await.unwrap() {
        Some(Event::Published(c)) => assert_eq!(c.info().name, name("live", "v")),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn malformed_request_closes_with_protocol_violation() {
    let (peer, server) = RawPeer::connect(Origin::new()).await;
    // SUBSCRIBE whose length says 3 but whose fields need more: truncated body.
    let _s = peer.request(&[0x03, 0x00, 0x03, 0x00, 0x01, 0x01]).await;
    assert_eq!(peer.close_code().await, SessionCode::ProtocolViolation.to_u64() as u32);
    assert_eq!(server.closed().await.session_code(), SessionCode::ProtocolViolation);
}

#[tokio::test]
async fn unknown_message_type_closes() {
    let (peer, _server) = RawPeer::connect(Origin::new()).await;
    let _s = peer.request(&[0x3f, 0x00, 0x00]).await;
    assert_eq!(peer.close_code().await, SessionCode::ProtocolViolation.to_u64() as u32);
}

#[tokio::test]
async fn response_as_first_message_closes() {
    let (peer, _server) = RawPeer::connect(Origin::new()).await;
    let _s = peer.request(&frame(RequestOk::default().into())).await;
    assert_eq!(peer.close_code().await, SessionCode::ProtocolViolation.to_u64() as u32);
}

#[tokio::test]
async fn wrong_parity_request_id_closes() {
    let (peer, _server) = RawPeer::connect(Origin::new()).await;
    // A client must use even ids.
    let ts = TrackStatus { request_id: RequestId(1), track: name("a", "b"), params: Parameters::default() };
    let _s = peer.request(&frame(ts.into())).await;
    assert_eq!(peer.close_code().await, SessionCode::InvalidRequestId.to_u64() as u32);
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
    assert_eq!(peer.close_code().await, SessionCode::InvalidRequestId.to_u64() as u32);
}

#[tokio::test]
async fn unknown_stream_type_closes() {
    let (peer, _server) = RawPeer::connect(Origin::new()).await;
    let mut s = peer.transport.open_uni().await.unwrap();
    s.write_all(&[0x04, 0x00]).await.unwrap();
    assert_eq!(peer.close_code().await, SessionCode::ProtocolViolation.to_u64() as u32);
}

#[tokio::test(start_paused = true)]
async fn missing_setup_times_out() {
    let (raw, b) = memory::pair(None);
    let server = tokio::spawn(Session::establish(b, V, Role::Server, SessionConfig::default()));
    // No SETUP ever arrives: the server gives up with CONTROL_MESSAGE_TIMEOUT (time is paused and auto-advances).
    let err = server.await.unwrap().unwrap_err();
    assert!(matches!(err, Error::Timeout), "{err}");
    // The transport closes just after the streams are reset.
    let _ = timeout(T, raw.closed()).await.unwrap();
    assert_eq!(raw.close_reason().unwrap().0, SessionCode::ControlMessageTimeout.to_u64() as u32);
}

#[tokio::test]
async fn second_control_stream_closes() {
    let (peer, _server) = RawPeer::connect(Origin::new()).await;
    let mut again = peer.transport.open_uni().await.unwrap();
    again.write_all(&frame(Setup::default().into())).await.unwrap();
    assert_eq!(peer.close_code().await, SessionCode::ProtocolViolation.to_u64() as u32);
}

#[tokio::test]
async fn fin_inside_a_message_closes() {
    let (peer, _server) = RawPeer::connect(Origin::new()).await;
    let (mut s, _r) = peer.request(&[0x03, 0x00, 0x10, 0x00]).await;
    s.finish().unwrap();
    assert_eq!(peer.close_code().await, SessionCode::ProtocolViolation.to_u64() as u32);
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
    assert_eq!(raw.close_reason().unwrap().0, SessionCode::ProtocolViolation.to_u64() as u32);

    // A GOAWAY with a URI from a client.
    let (raw, b) = memory::pair(None);
    let server = tokio::spawn(Session::establish(b, V, Role::Server, SessionConfig::default()));
    let mut control = raw.open_uni().await.unwrap();
    control.write_all(&frame(Setup::default().into())).await.unwrap();
    let _server = server.await.unwrap().unwrap();
    let g = GoAway { new_session_uri: Bytes::from_static(b"moqt://x/"), ..Default::default() };
    control.write_all(&frame(g.into())).await.unwrap();
    let _ = timeout(T, raw.closed()).await.unwrap();
    assert_eq!(raw.close_reason().unwrap().0, SessionCode::ProtocolViolation.to_u64() as u32);
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
    assert_eq!(raw.close_reason().unwrap().0, SessionCode::ProtocolViolation.to_u64() as u32);
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
    assert_eq!(bad.close_code().await, SessionCode::ProtocolViolation.to_u64() as u32);
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
        assert!(matches!(e, Error::Rejected { code: RequestErrorCode::DoesNotExist, .. }));
    }
    // Request ids keep their parity and advance.
    let e = client.track_status(name("x", "y")).await.unwrap_err();
    assert!(matches!(e, Error::Rejected { .. }));
}

#[tokio::test(start_paused = true)]
async fn late_objects_are_reset_with_delivery_timeout() {
    let origin = Origin::new();
    let track = TrackProducer::new(TrackInfo::new(name("live", "v")));
    origin.publish_track(track.clone());
    let group = track.create_group(0).unwrap();
    let sg = group.create_subgroup(0, 0);
    sg.write(Object::new(0, "old")).unwrap();
    tokio::time::sleep(Duration::from_millis(60)).await;
    let (client, _server) = sessions(origin).await;
    // AbsoluteStart 0/0 asks for the cached object, but it is older than the 20 ms delivery timeout.
    let opts = SubscribeOptions {
        filter: Some(moq_transport::wire::params::LocationFilter::AbsoluteStart {
            start: moq_transport::wire::Location::new(0, 0),
        }),
        delivery_timeout: Some(Duration::from_millis(20)),
        ..Default::default()
    };
    let sub = client.subscribe(name("live", "v"), opts).await.unwrap();
    let mut c = sub.consumer();
    let mut g = timeout(T, c.next_group()).await.unwrap().unwrap();
    let mut s = timeout(T, g.next_subgroup()).await.unwrap().unwrap();
    let code = moq_transport::wire::codes::StreamCode::DeliveryTimeout.to_u64();
    assert_eq!(timeout(T, s.next()).await.unwrap(), Err(Closed::Reset(code)));
}

#[tokio::test]
async fn datagram_tracks_arrive_as_datagrams() {
    let origin = Origin::new();
    let mut info = TrackInfo::new(name("audio", "opus"));
    info.delivery = Delivery::Datagrams;
    let track = TrackProducer::new(info);
    origin.publish_track(track.clone());
    let (client, _server) = sessions(origin).await;
    let sub = client.subscribe(name("audio", "opus"), SubscribeOptions::default()).await.unwrap();
    let mut c = sub.consumer();
    for g in 0..3u64 {
        track.write_group(g, [Object::new(0, format!("frame {g}"))]).unwrap();
    }
    for g in 0..3u64 {
        let mut group = timeout(T, c.next_group()).await.unwrap().unwrap();
        assert_eq!(group.id(), GroupId(g));
        let mut s = group.next_subgroup().await.unwrap();
        assert_eq!(s.next().await.unwrap().payload, Bytes::from(format!("frame {g}")));
    }
}

/// Reads from a raw stream until it ends; returns the bytes and how it ended (`Ok` = FIN, `Err(code)` = reset).
async fn drain(recv: &mut memory::MemoryRecv) -> (Vec<u8>, Result<(), u32>) {
    let mut out = Vec::new();
    loop {
        match timeout(T, recv.read_chunk(64 * 1024)).await.expect("stream should end") {
            Ok(Some(chunk)) => out.extend_from_slice(&chunk),
            Ok(None) => return (out, Ok(())),
            Err(memory::MemoryError::Reset(code)) => return (out, Err(code)),
            Err(e) => panic!("{e}"),
        }
    }
}

#[tokio::test]
async fn fin_is_not_cancel_but_stop_sending_is() {
    let (track, peer, _server, mut send, mut recv) = RawPeer::subscribed().await;
    // FIN right after the request: allowed, and not a cancellation.
    send.finish().unwrap();
    let ok = recv.read_chunk(1024).await.unwrap().unwrap();
    assert_eq!(ok[0], 0x04, "SUBSCRIBE_OK");
    // The subscription keeps delivering.
    track.write_group(0, [Object::new(0, "after FIN")]).unwrap();
    let mut data = timeout(T, peer.transport.accept_uni()).await.unwrap().unwrap();
    let (bytes, end) = drain(&mut data).await;
    assert!(bytes.ends_with(b"after FIN"));
    assert_eq!(end, Ok(()), "a finished subgroup ends with FIN");
    // STOP_SENDING cancels: the publisher resets its side of the request stream.
    recv.stop(1);
    let code = moq_transport::wire::codes::StreamCode::Cancelled.to_u64() as u32;
    assert_eq!(drain(&mut recv).await.1, Err(code));
}

#[tokio::test]
async fn cancelled_subscriptions_reset_their_data_streams() {
    let (track, peer, _server, mut send, mut recv) = RawPeer::subscribed().await;
    let _ok = recv.read_chunk(1024).await.unwrap().unwrap();
    // A subgroup that is still open when the subscriber cancels.
    let group = track.create_group(0).unwrap();
    let sg = group.create_subgroup(0, 0);
    sg.write(Object::new(0, "partial")).unwrap();
    let mut data = timeout(T, peer.transport.accept_uni()).await.unwrap().unwrap();
    let first = timeout(T, data.read_chunk(1024)).await.unwrap().unwrap().unwrap();
    assert!(!first.is_empty());
    // Cancel: reset our side and stop theirs.
    send.reset(1);
    recv.stop(1);
    // The truncated subgroup must not look complete: it is reset, not FINished.
    let (_, end) = drain(&mut data).await;
    assert!(end.is_err(), "expected a reset, got {end:?}");
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
async fn a_priority_update_reaches_streams_already_open() {
    let (track, peer, _server, mut send, mut recv) = RawPeer::subscribed().await;
    let _ok = recv.read_chunk(1024).await.unwrap().unwrap();
    let group = track.create_group(0).unwrap();
    let sg = group.create_subgroup(0, 0);
    sg.write(Object::new(0, "open")).unwrap();
    let data = timeout(T, peer.transport.accept_uni()).await.unwrap().unwrap();
    let before = data.sender_priority();
    let params = Parameters { subscriber_priority: Some(5), ..Default::default() };
    send.write_all(&frame(RequestUpdate { request_id: RequestId(2), params }.into())).await.unwrap();
    let _update_ok = timeout(T, recv.read_chunk(1024)).await.unwrap().unwrap().unwrap();
    timeout(T, async {
        while data.sender_priority() == before {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the open stream's priority did not change");
    // Priority 5 outranks the default 128: the stream now goes earlier.
    assert!(data.sender_priority() > before);
}

#[tokio::test]
async fn fetch_answers_carry_track_properties() {
    let origin = Origin::new();
    let mut info = TrackInfo::new(name("live", "v"));
    info.properties = moq_transport::wire::kvp::Properties::new().with_int(0x02, 250).unwrap();
    let track = TrackProducer::new(info);
    origin.publish_track(track.clone());
    track.write_group(0, [Object::new(0, "a")]).unwrap();
    let (client, _server) = sessions(origin).await;
    let range = FetchRange::Standalone {
        track: name("live", "v"),
        start: moq_transport::wire::Location::new(0, 0),
        end: moq_transport::wire::Location::new(0, 0),
    };
    let f = client.fetch(range, moq_transport::wire::GroupOrder::Ascending).await.unwrap();
    assert_eq!(f.track_properties.get_int(0x02), Some(250));
}

/// Reads one control message from a request stream's receive side.
async fn next_message(recv: &mut memory::MemoryRecv, buf: &mut BytesMut) -> ControlMessage {
    loop {
        match ControlMessage::decode_from(buf, V) {
            Ok(m) => return m,
            Err(e) if e.is_short() => {}
            Err(e) => panic!("{e}"),
        }
        let chunk = timeout(T, recv.read_chunk(64 * 1024)).await.expect("a message").unwrap().expect("not FIN");
        buf.extend_from_slice(&chunk);
    }
}

#[tokio::test]
async fn a_fetch_reaching_before_the_cache_marks_the_range_unknown() {
    let origin = Origin::new();
    let track = TrackProducer::with_window(TrackInfo::new(name("live", "v")), 2);
    origin.publish_track(track.clone());
    for g in 0..5u64 {
        track.write_group(g, [Object::new(0, "x"), Object::new(1, "y")]).unwrap();
    }
    let (client, _server) = sessions(origin).await;
    let range = FetchRange::Standalone {
        track: name("live", "v"),
        start: moq_transport::wire::Location::new(0, 0),
        end: moq_transport::wire::Location::new(4, 0),
    };
    let mut f = client.fetch(range, moq_transport::wire::GroupOrder::Ascending).await.unwrap();
    // Groups 0..=2 left the cache: their status is unknown here, which the answer says instead of a silent gap.
    match f.next_item().await.unwrap() {
        Some(FetchItem::EndOfRange { end, unknown: true }) => assert_eq!(end.group, GroupId(2)),
        other => panic!("expected an End of Unknown Range first, got {other:?}"),
    }
    let mut locations = Vec::new();
    while let Some(o) = f.next().await.unwrap() {
        locations.push((o.location.group.0, o.location.object.0));
    }
    assert_eq!(locations, [(3, 0), (3, 1), (4, 0), (4, 1)]);
}

#[tokio::test]
async fn request_update_on_a_fetch_is_answered_and_applied() {
    // A FETCH answered from "upstream" (an origin fetcher) that is still streaming when the update comes.
    let origin = Origin::new();
    let (tx, items) = tokio::sync::mpsc::channel(4);
    let source = std::sync::Mutex::new(Some(FetchSource {
        end_of_track: false,
        end_location: moq_transport::wire::Location::new(9, 0),
        track_properties: Default::default(),
        items,
    }));
    origin.set_fetcher(std::sync::Arc::new(move |_, _, _, _| {
        let s = source.lock().unwrap().take();
        Box::pin(async move { s })
    }));
    let (peer, _server) = RawPeer::connect(origin).await;
    let fetch = Fetch {
        request_id: RequestId(0),
        fetch_type: FetchType::Standalone {
            track: name("live", "v"),
            start: moq_transport::wire::Location::new(0, 0),
            end: moq_transport::wire::Location::new(9, 0),
        },
        params: Parameters::default(),
    };
    let (mut send, mut recv) = peer.request(&frame(fetch.into())).await;
    let mut buf = BytesMut::new();
    assert!(matches!(next_message(&mut recv, &mut buf).await, ControlMessage::FetchOk(_)));
    let data = timeout(T, peer.transport.accept_uni()).await.unwrap().unwrap();
    let before = data.sender_priority();
    let params = Parameters { subscriber_priority: Some(3), ..Default::default() };
    send.write_all(&frame(RequestUpdate { request_id: RequestId(2), params }.into())).await.unwrap();
    let answer = next_message(&mut recv, &mut buf).await;
    assert!(matches!(answer, ControlMessage::RequestOk(_)), "{answer:?}");
    // The new priority applies from the next entry on.
    let object = FetchedObject {
        location: moq_transport::wire::Location::new(0, 0),
        subgroup: Some(moq_transport::wire::SubgroupId(0)),
        priority: 128,
        properties: Default::default(),
        payload: Bytes::from_static(b"x"),
    };
    tx.send(Ok(FetchItem::Object(object))).await.unwrap();
    timeout(T, async {
        while data.sender_priority() == before {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the FETCH stream's priority did not change");
}

#[tokio::test]
async fn a_publisher_may_update_its_publish_and_send_one_goaway_per_request() {
    let (peer, _server) = RawPeer::connect(Origin::new()).await;
    let publish = Publish {
        request_id: RequestId(0),
        track: name("pushed", "v"),
        track_alias: moq_transport::wire::TrackAlias(1),
        params: Parameters::default(),
        track_properties: Default::default(),
    };
    let (mut send, mut recv) = peer.request(&frame(publish.into())).await;
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
    assert_eq!(peer.close_code().await, SessionCode::ProtocolViolation.to_u64() as u32);
}

#[tokio::test(start_paused = true)]
async fn a_subscribe_waits_for_its_publisher_up_to_the_rendezvous_timeout() {
    let origin = Origin::new();
    let (client, _server) = sessions(origin.clone()).await;
    let options = SubscribeOptions { rendezvous: Some(Duration::from_secs(5)), ..Default::default() };
    let waiting = tokio::spawn({
        let client = client.clone();
        async move { client.subscribe(name("late", "v"), options).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!waiting.is_finished(), "SUBSCRIBE_OK must wait for the publisher");
    let track = TrackProducer::new(TrackInfo::new(name("late", "v")));
    origin.publish_track(track.clone());
    let sub = timeout(T, waiting).await.unwrap().unwrap().unwrap();
    track.write_group(0, [Object::new(0, "arrived")]).unwrap();
    let mut g = timeout(T, sub.consumer().next_group()).await.unwrap().unwrap();
    let mut s = g.next_subgroup().await.unwrap();
    assert_eq!(&s.next().await.unwrap().payload[..], b"arrived");
    // Without a rendezvous timeout the answer is immediate.
    let e = client.subscribe(name("never", "v"), SubscribeOptions::default()).await.unwrap_err();
    assert!(matches!(e, Error::Rejected { code: RequestErrorCode::DoesNotExist, .. }), "{e}");
}

#[tokio::test(start_paused = true)]
async fn a_rendezvous_that_expires_is_answered_with_timeout() {
    let (client, _server) = sessions(Origin::new()).await;
    let options = SubscribeOptions { rendezvous: Some(Duration::from_millis(1500)), ..Default::default() };
    let started = tokio::time::Instant::now();
    let e = client.subscribe(name("never", "v"), options).await.unwrap_err();
    assert!(matches!(e, Error::Rejected { code: RequestErrorCode::Timeout, .. }), "{e}");
    assert!(started.elapsed() >= Duration::from_millis(1500));
}

#[tokio::test]
async fn subscribe_tracks_follows_tracks_published_later() {
    let origin = Origin::new();
    origin.publish_track(TrackProducer::new(TrackInfo::new(name("room/a", "v"))));
    let (client, _server) = sessions(origin.clone()).await;
    let prefix = TrackNamespace::from_path("room").unwrap();
    let _tracks = client.subscribe_tracks(prefix.clone()).await.unwrap();
    let published = |e: Option<Event>| match e {
        Some(Event::Published(t)) => t.info().name.clone(),
        other => panic!("expected a PUBLISH, got {other:?}"),
    };
    assert_eq!(published(timeout(T, client.next_event()).await.unwrap()), name("room/a", "v"));
    // A track that appears afterwards is pushed too.
    origin.publish_track(TrackProducer::new(TrackInfo::new(name("room/b", "v"))));
    assert_eq!(published(timeout(T, client.next_event()).await.unwrap()), name("room/b", "v"));
    // Another SUBSCRIBE_TRACKS overlapping the first is refused.
    let e = client.subscribe_tracks(TrackNamespace::from_path("room/b").unwrap()).await.unwrap_err();
    assert!(matches!(e, Error::Rejected { code: RequestErrorCode::PrefixOverlap, .. }), "{e}");
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
