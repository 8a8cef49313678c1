//! Session state machines driven over the in-memory transport, no sockets, no TLS: every request type end to end,
//! data streams, datagrams, delivery timeouts, priorities, FETCH, rendezvous and live SUBSCRIBE_TRACKS.
//! (The error paths of a misbehaving peer are in `session_errors.rs`.)

use moq_transport::{RequestFailure, app_code};

mod common;

use common::*;

#[tokio::test]
async fn subscribe_objects_publish_done() {
    let (origin, track) = live_track();
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
    let (origin, track) = live_track();
    track.write_group(0, [Object::new(0, "a"), Object::new(1, "b")]).unwrap();
    let (client, server) = sessions(origin.clone()).await;

    // TRACK_STATUS
    let st = client.track_status(name("live", "v")).await.unwrap();
    assert_eq!(st.largest, Some(moq_transport::wire::Location::new(0, 1)));
    // FETCH
    let range = groups(0, 0);
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

/// What a subscriber gets first when it asks (AbsoluteStart 0/0, `delivery_timeout`) for a track `info` whose
/// group 0 holds only `first`, written 60 ms earlier.
async fn first_of_an_old_group(
    info: TrackInfo,
    first: Object,
    delivery_timeout: Option<Duration>,
) -> Result<Object, Closed> {
    let origin = Origin::new();
    let track = TrackProducer::new(info);
    origin.publish_track(track.clone());
    let group = track.create_group(0).unwrap();
    let sg = group.create_subgroup(0, 0);
    sg.write(first).unwrap();
    tokio::time::sleep(Duration::from_millis(60)).await;
    let (client, _server) = sessions(origin).await;
    let opts = SubscribeOptions {
        filter: Some(moq_transport::wire::params::LocationFilter::AbsoluteStart {
            start: moq_transport::wire::Location::new(0, 0),
        }),
        delivery_timeout,
        ..Default::default()
    };
    let sub = client.subscribe(name("live", "v"), opts).await.unwrap();
    let mut c = sub.consumer();
    let mut g = timeout(T, c.next_group()).await.unwrap().unwrap();
    let mut s = timeout(T, g.next_subgroup()).await.unwrap().unwrap();
    timeout(T, s.next()).await.unwrap()
}

/// AbsoluteStart 0/0 asks for the cached object, but it is older than the 20 ms delivery timeout.
#[tokio::test(start_paused = true)]
async fn late_objects_are_reset_with_delivery_timeout() {
    let info = TrackInfo::new(name("live", "v"));
    let first = first_of_an_old_group(info, Object::new(0, "old"), Some(Duration::from_millis(20))).await;
    let code = moq_transport::wire::codes::StreamCode::DeliveryTimeout.to_u64();
    assert_eq!(first, Err(Closed::Reset(code)));
}

/// A subgroup that arrives long after a newer group started (a stream held up by loss) is still forwarded: it is
/// owed to the subscriber. (It was dropped when it came more than a second late.)
#[tokio::test(start_paused = true)]
async fn a_subgroup_arriving_long_after_newer_groups_is_still_forwarded() {
    let (origin, track) = live_track();
    let (client, _server) = sessions(origin).await;
    let sub = client.subscribe(name("live", "v"), SubscribeOptions::default()).await.unwrap();
    let mut c = sub.consumer();
    let group = track.create_group(0).unwrap();
    group.create_subgroup(0, 0).write(Object::new(0, "first")).unwrap();
    let mut g0 = timeout(T, c.next_group()).await.unwrap().unwrap();
    let _ = timeout(T, g0.next_subgroup_to_end()).await.unwrap().unwrap();
    track.write_group(1, [Object::new(0, "newer")]).unwrap();
    let _ = timeout(T, c.next_group()).await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let late = group.create_subgroup(1, 0);
    late.write(Object::new(1, "late")).unwrap();
    late.finish();
    let mut s = timeout(T, g0.next_subgroup_to_end()).await.unwrap().expect("the late subgroup");
    assert_eq!(s.id().0, 1);
    assert_eq!(timeout(T, s.next()).await.unwrap().unwrap().payload, "late");
}

/// Under a filter that starts mid-group (Largest Object), a subgroup that begins at or after the filter's start
/// still begins with its first object, and its stream says so with FIRST_OBJECT (it was always cleared).
#[tokio::test]
async fn first_object_is_kept_for_subgroups_starting_after_a_mid_group_filter() {
    let (origin, track) = live_track();
    let group = track.create_group(0).unwrap();
    let first = group.create_subgroup(0, 0);
    for o in 0..3 {
        first.write(Object::new(o, "before")).unwrap();
    }
    let (client, _server) = sessions(origin).await;
    let opts = SubscribeOptions {
        filter: Some(moq_transport::wire::params::LocationFilter::LargestObject),
        ..Default::default()
    };
    let sub = client.subscribe(name("live", "v"), opts).await.unwrap();
    let later = group.create_subgroup(5, 0);
    later.write(Object::new(5, "after the start")).unwrap();
    let mut c = sub.consumer();
    let mut g = timeout(T, c.next_group()).await.unwrap().unwrap();
    let subgroup = loop {
        let s = timeout(T, g.next_subgroup_to_end()).await.unwrap().expect("subgroup 5");
        if s.id().0 == 5 {
            break s;
        }
    };
    assert!(subgroup.info().first_object, "subgroup 5 begins with its first object");
}

/// A served track that ends with a status meaning the same downstream (here EXCESSIVE_LOAD) passes it on in
/// PUBLISH_DONE, instead of INTERNAL_ERROR.
#[tokio::test]
async fn an_upstream_publish_done_status_is_passed_on() {
    let (origin, track) = live_track();
    let (client, _server) = sessions(origin).await;
    let sub = client.subscribe(name("live", "v"), SubscribeOptions::default()).await.unwrap();
    let excessive_load = moq_transport::wire::codes::PublishDoneCode::ExcessiveLoad.to_u64();
    track.end(TrackEnd::Error(excessive_load));
    let end = timeout(T, sub.consumer().next_group()).await.unwrap().unwrap_err();
    assert_eq!(end, TrackEnd::Error(excessive_load));
}

/// An object older than its track's MAX_CACHE_DURATION is not forwarded from the cache (draft-19
/// §MAX_CACHE_DURATION): its stream is reset instead.
#[tokio::test(start_paused = true)]
async fn objects_older_than_max_cache_duration_are_not_served() {
    use moq_transport::wire::kvp::{Properties, property};
    let mut info = TrackInfo::new(name("live", "v"));
    info.properties = Properties::new().with_int(property::MAX_CACHE_DURATION, 20).unwrap();
    let first = first_of_an_old_group(info, Object::new(0, "expired"), None).await;
    assert!(matches!(first, Err(Closed::Reset(_))), "the expired object was sent");
}

/// An OBJECT_DELIVERY_TIMEOUT Object Property on a subgroup's first object overrides the track's (none here) for
/// that subgroup (draft-19 §Delivery Timeouts): the old object's stream is reset with DELIVERY_TIMEOUT.
#[tokio::test(start_paused = true)]
async fn a_first_objects_delivery_timeout_property_applies_to_its_subgroup() {
    use moq_transport::wire::kvp::{Properties, property};
    let mut old = Object::new(0, "old");
    old.properties = Properties::new().with_int(property::OBJECT_DELIVERY_TIMEOUT, 20).unwrap();
    let first = first_of_an_old_group(TrackInfo::new(name("live", "v")), old, None).await;
    let code = moq_transport::wire::codes::StreamCode::DeliveryTimeout.to_u64();
    assert_eq!(first, Err(Closed::Reset(code)));
}

/// A datagram track with one cached group, subscribed from the start (AbsoluteStart 0/0) 60 ms later, under a
/// SUBGROUP_DELIVERY_TIMEOUT Track Property of `timeout_ms` (none if 0); group 1 is written after SUBSCRIBE_OK.
/// Returns the first group the subscriber gets.
async fn first_datagram_group(timeout_ms: u64) -> u64 {
    use moq_transport::wire::kvp::{Properties, property};
    let origin = Origin::new();
    let mut info = TrackInfo::new(name("audio", "opus"));
    info.delivery = Delivery::Datagrams;
    if timeout_ms > 0 {
        info.properties = Properties::new().with_int(property::SUBGROUP_DELIVERY_TIMEOUT, timeout_ms).unwrap();
    }
    let track = TrackProducer::new(info);
    origin.publish_track(track.clone());
    track.write_group(0, [Object::new(0, "old")]).unwrap();
    tokio::time::sleep(Duration::from_millis(60)).await;
    let (client, _server) = sessions(origin).await;
    let opts = SubscribeOptions {
        filter: Some(moq_transport::wire::params::LocationFilter::AbsoluteStart {
            start: moq_transport::wire::Location::new(0, 0),
        }),
        ..Default::default()
    };
    let sub = client.subscribe(name("audio", "opus"), opts).await.unwrap();
    track.write_group(1, [Object::new(0, "fresh")]).unwrap();
    let mut c = sub.consumer();
    timeout(T, c.next_group()).await.unwrap().unwrap().id().0
}

/// A datagram sent right behind SUBSCRIBE_OK may arrive before it: it is held until the alias is known, not
/// dropped (the cached group 0 goes out at once after SUBSCRIBE_OK).
#[tokio::test(start_paused = true)]
async fn a_datagram_overtaking_its_subscribe_ok_is_kept() {
    assert_eq!(first_datagram_group(0).await, 0);
}

/// For datagrams, SUBGROUP_DELIVERY_TIMEOUT acts as OBJECT_DELIVERY_TIMEOUT (draft-19 §Delivery Timeouts): the
/// 60 ms old datagram is dropped under a 20 ms timeout, the fresh one goes out.
#[tokio::test(start_paused = true)]
async fn a_subgroup_delivery_timeout_drops_old_datagrams() {
    assert_eq!(first_datagram_group(20).await, 1);
}

/// A datagram track `audio--opus` published by a server, and a client's subscription to it (kept alive by the
/// returned handles).
async fn datagram_subscription() -> (TrackProducer, TrackConsumer, (Subscription, Session<MemorySession>)) {
    let origin = Origin::new();
    let mut info = TrackInfo::new(name("audio", "opus"));
    info.delivery = Delivery::Datagrams;
    let track = TrackProducer::new(info);
    origin.publish_track(track.clone());
    let (client, server) = sessions(origin).await;
    let sub = client.subscribe(name("audio", "opus"), SubscribeOptions::default()).await.unwrap();
    let c = sub.consumer();
    (track, c, (sub, server))
}

#[tokio::test]
async fn datagram_tracks_arrive_as_datagrams() {
    let (track, mut c, _sessions) = datagram_subscription().await;
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

#[tokio::test]
async fn an_empty_last_datagram_object_keeps_its_end_of_group() {
    let (track, mut c, _sessions) = datagram_subscription().await;
    let group = track.create_group(0).unwrap();
    let datagram =
        |id, end_of_group| SubgroupInfo { delivery: Delivery::Datagrams, end_of_group, ..SubgroupInfo::new(id, 0) };
    let first = group.create_subgroup_with(datagram(0, false));
    first.write(Object::new(0, "frame")).unwrap();
    first.finish();
    // The group's last object: Normal, no payload, END_OF_GROUP. Forwarded as a status datagram it would need the
    // STATUS and END_OF_GROUP bits together, which the draft forbids, and it was dropped.
    let last = group.create_subgroup_with(datagram(1, true));
    last.write(Object::new(1, "")).unwrap();
    last.finish();
    let mut g = timeout(T, c.next_group()).await.unwrap().unwrap();
    let mut ends = Vec::new();
    for _ in 0..2 {
        let mut s = timeout(T, g.next_subgroup()).await.unwrap().unwrap();
        let o = timeout(T, s.next()).await.unwrap().unwrap();
        ends.push((o.id.0, o.payload.len(), o.status == ObjectStatus::Normal, s.info().end_of_group));
    }
    ends.sort();
    assert_eq!(ends, vec![(0, 5, true, false), (1, 0, true, true)]);
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
    let code = app_code(moq_transport::wire::codes::StreamCode::Cancelled);
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
    let range = groups(0, 0);
    let f = client.fetch(range, moq_transport::wire::GroupOrder::Ascending).await.unwrap();
    assert_eq!(f.track_properties.get_int(0x02), Some(250));
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
    let range = groups(0, 4);
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

#[tokio::test(start_paused = true)]
async fn a_joining_fetch_right_behind_its_subscribe_waits_for_it() {
    // A relay's track that takes a while to find (an upstream SUBSCRIBE): the SUBSCRIBE is pending when the
    // joining FETCH pipelined behind it arrives.
    let origin = Origin::new();
    let track = TrackProducer::new(TrackInfo::new(name("live", "v")));
    track.write_group(0, [Object::new(0, "a")]).unwrap();
    let found = track.clone();
    origin.set_resolver(std::sync::Arc::new(move |_| {
        let t = found.clone();
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            Ok(t)
        })
    }));
    let (peer, _server) = RawPeer::connect(origin).await;
    let sub = Subscribe { request_id: RequestId(0), track: name("live", "v"), params: Parameters::default() };
    let (_s, mut sub_recv) = peer.request(&frame(sub.into())).await;
    let fetch = Fetch {
        request_id: RequestId(2),
        fetch_type: FetchType::RelativeJoining { joining_request_id: RequestId(0), joining_start: 0 },
        params: Parameters::default(),
    };
    let (_f, mut fetch_recv) = peer.request(&frame(fetch.into())).await;
    let answer = next_message(&mut fetch_recv, &mut BytesMut::new()).await;
    assert!(matches!(answer, ControlMessage::FetchOk(_)), "the joining FETCH was refused: {answer:?}");
    let answer = next_message(&mut sub_recv, &mut BytesMut::new()).await;
    assert!(matches!(answer, ControlMessage::SubscribeOk(_)), "{answer:?}");
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
    assert!(matches!(e, Error::Request(RequestFailure::Rejected { code: RequestErrorCode::DoesNotExist, .. })), "{e}");
}

#[tokio::test(start_paused = true)]
async fn a_rendezvous_that_expires_is_answered_with_timeout() {
    let (client, _server) = sessions(Origin::new()).await;
    let options = SubscribeOptions { rendezvous: Some(Duration::from_millis(1500)), ..Default::default() };
    let started = tokio::time::Instant::now();
    let e = client.subscribe(name("never", "v"), options).await.unwrap_err();
    assert!(matches!(e, Error::Request(RequestFailure::Rejected { code: RequestErrorCode::Timeout, .. })), "{e}");
    assert!(started.elapsed() >= Duration::from_millis(1500));
}

/// A held SUBSCRIBE looks for its publisher again whenever a namespace or track appears, and otherwise backs off
/// (each look may cost a relay a SUBSCRIBE upstream): over a 20 s rendezvous, a dozen looks rather than 80.
#[tokio::test(start_paused = true)]
async fn a_held_subscribe_backs_off_between_looks() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let origin = Origin::new();
    let looks = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = looks.clone();
    origin.set_resolver(std::sync::Arc::new(move |_request| {
        counted.fetch_add(1, Ordering::Relaxed);
        Box::pin(async { Err(Unresolved::not_found()) })
    }));
    let (client, _server) = sessions(origin).await;
    let options = SubscribeOptions { rendezvous: Some(Duration::from_secs(20)), ..Default::default() };
    let e = client.subscribe(name("never", "v"), options).await.unwrap_err();
    assert!(matches!(e, Error::Request(RequestFailure::Rejected { code: RequestErrorCode::Timeout, .. })), "{e}");
    let looks = looks.load(Ordering::Relaxed);
    assert!((5..=15).contains(&looks), "{looks} looks in 20 s");
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
    assert!(matches!(e, Error::Request(RequestFailure::Rejected { code: RequestErrorCode::PrefixOverlap, .. })), "{e}");
}

/// REQUEST_UPDATE with TRACK_NAMESPACE_PREFIX moves a SUBSCRIBE_NAMESPACE: what follows is relative to the new
/// prefix, and a prefix overlapping another SUBSCRIBE_NAMESPACE of the session is refused with PREFIX_OVERLAP.
#[tokio::test]
async fn a_namespace_subscription_moves_to_a_new_prefix() {
    let origin = Origin::new();
    for ns in ["a/x", "b/z"] {
        origin.publish_namespace(TrackNamespace::from_path(ns).unwrap());
    }
    let (peer, _server) = RawPeer::connect(origin.clone()).await;
    let ns = |p: &str| TrackNamespace::from_path(p).unwrap();
    let sub = SubscribeNamespace { request_id: RequestId(0), prefix: ns("a"), params: Parameters::default() };
    let (mut send, mut recv) = peer.request(&frame(sub.into())).await;
    let mut buf = BytesMut::new();
    assert!(matches!(next_message(&mut recv, &mut buf).await, ControlMessage::RequestOk(_)));
    assert_eq!(next_message(&mut recv, &mut buf).await, ControlMessage::Namespace(Namespace { suffix: ns("x") }));
    // Another subscription holds `c`.
    let other = SubscribeNamespace { request_id: RequestId(2), prefix: ns("c"), params: Parameters::default() };
    let (_s2, mut r2) = peer.request(&frame(other.into())).await;
    assert!(matches!(next_message(&mut r2, &mut BytesMut::new()).await, ControlMessage::RequestOk(_)));

    let onto = |id: u64, p: &str| {
        let params = Parameters { track_namespace_prefix: Some(ns(p)), ..Default::default() };
        frame(RequestUpdate { request_id: RequestId(id), params }.into())
    };
    send.write_all(&onto(4, "c/d")).await.unwrap();
    match next_message(&mut recv, &mut buf).await {
        ControlMessage::RequestError(e) => assert_eq!(e.code, RequestErrorCode::PrefixOverlap),
        m => panic!("expected PREFIX_OVERLAP, got {m:?}"),
    }
    send.write_all(&onto(6, "b")).await.unwrap();
    assert!(matches!(next_message(&mut recv, &mut buf).await, ControlMessage::RequestOk(_)));
    assert_eq!(next_message(&mut recv, &mut buf).await, ControlMessage::Namespace(Namespace { suffix: ns("z") }));
    origin.publish_namespace(ns("a/later"));
    origin.publish_namespace(ns("b/w"));
    assert_eq!(next_message(&mut recv, &mut buf).await, ControlMessage::Namespace(Namespace { suffix: ns("w") }));
}

/// With `qlog_dir`, each session writes a MoQT qlog (JSON-SEQ): the header names the moqt event schema, and the
/// SUBSCRIBE we sent, the SUBSCRIBE_OK we read and the subgroup stream that followed are in it.
#[tokio::test]
async fn a_session_writes_a_moqt_qlog() {
    let dir = std::env::temp_dir().join(format!("moq-qlog-session-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (origin, track) = live_track();
    let (a, b) = memory::pair(None);
    let config = SessionConfig { qlog_dir: Some(dir.clone()), ..Default::default() };
    let (client, _server) = tokio::join!(
        Session::establish(a, V, Role::Client, config),
        Session::establish(b, V, Role::Server, SessionConfig { origin, ..Default::default() }),
    );
    let client = client.unwrap();
    let sub = client.subscribe(name("live", "v"), SubscribeOptions::default()).await.unwrap();
    track.write_group(0, [Object::new(0, "frame")]).unwrap();
    timeout(T, sub.consumer().next_group()).await.unwrap().unwrap();
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1, "one file for the one session with a qlog: {files:?}");
    assert!(files[0].to_string_lossy().ends_with("-client.sqlog"), "{files:?}");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    let records: Vec<&str> = text.split('\x1e').filter(|r| !r.is_empty()).collect();
    assert!(records[0].contains("urn:ietf:params:qlog:events:moqt-07"), "{}", records[0]);
    let has = |name: &str, needle: &str| records.iter().any(|r| r.contains(name) && r.contains(needle));
    assert!(has("moqt:control_message_created", "\"type\":\"subscribe\""), "{text}");
    assert!(has("moqt:control_message_parsed", "\"type\":\"subscribe_ok\""), "{text}");
    assert!(has("moqt:stream_type_set", "\"control\""), "{text}");
    assert!(has("moqt:subgroup_header_parsed", "\"group_id\":0"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Objects the track's largest location says exist but that have not arrived (a relay's upstream still bringing
/// them) are waited for, then reported as an unknown range: a gap would say they do not exist (draft-19 §Fetch
/// Handling).
#[tokio::test(start_paused = true)]
async fn a_fetch_reports_objects_not_arrived_yet_as_unknown() {
    let (origin, track) = live_track();
    track.write_group(0, [Object::new(0, "a")]).unwrap();
    track.write_group(1, [Object::new(0, "b")]).unwrap();
    // An upstream said group 2 exists; it has not come.
    track.note_largest(moq_transport::wire::Location::new(2, 0));
    let (client, _server) = sessions(origin).await;
    let range = groups(0, 3);
    let entries = fetch_entries(&client, range).await;
    assert_eq!(entries, ["object 0/0", "object 1/0", "end 2/0 unknown true"]);
}

/// An object that arrives while a FETCH waits for it wakes the FETCH, which then serves it.
#[tokio::test(start_paused = true)]
async fn a_fetch_serves_an_object_that_arrives_while_it_waits() {
    let (origin, track) = live_track();
    track.write_group(0, [Object::new(0, "a")]).unwrap();
    track.note_largest(moq_transport::wire::Location::new(1, 0));
    let (client, _server) = sessions(origin).await;
    let late = track.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        late.write_group(1, [Object::new(0, "b")]).unwrap();
    });
    let range = groups(0, 2);
    let entries = fetch_entries(&client, range).await;
    assert_eq!(entries, ["object 0/0", "object 1/0"]);
}

const LAST: u64 = (1 << 62) - 1;

/// A FETCH of a group older than the cache is answered with an unknown End of Range up to the group before the
/// oldest held, even past the range's end: a player learns from it where the cache begins (the rewind does).
#[tokio::test(start_paused = true)]
async fn a_fetch_before_the_cache_says_where_the_cache_begins() {
    let (origin, track) = live_track();
    track.write_group(5, [Object::new(0, "e")]).unwrap();
    let (client, _server) = sessions(origin).await;
    let entries = fetch_entries(&client, groups(0, 0)).await;
    assert_eq!(entries, [format!("end 4/{LAST} unknown true")]);
}

/// A group the cache holds only from the middle of a subgroup (joined without FIRST_OBJECT): the objects before
/// the first one held are reported unknown, not left as a gap that says they do not exist (draft-19 §Fetch
/// Handling).
#[tokio::test(start_paused = true)]
async fn a_fetch_reports_the_start_of_a_group_joined_midway_as_unknown() {
    let (origin, track) = live_track();
    let group = track.create_group(0).unwrap();
    let sub = group.create_subgroup_with(SubgroupInfo { first_object: false, ..SubgroupInfo::new(0, 128) });
    sub.write(Object::new(3, "d")).unwrap();
    sub.write(Object::new(4, "e")).unwrap();
    sub.finish();
    group.finish();
    track.write_group(1, [Object::new(0, "f")]).unwrap();
    let (client, _server) = sessions(origin).await;
    let range = groups(0, 2);
    let entries = fetch_entries(&client, range).await;
    assert_eq!(entries, ["end 0/2 unknown true", "object 0/3", "object 0/4", "object 1/0"]);
}

/// The start of a group held only from the middle of a subgroup is asked upstream when the origin can fetch (a
/// relay), the answer taking the hole's place; group IDs missing between held groups are gaps (groups numbered by
/// time skip IDs), not asked for.
#[tokio::test(start_paused = true)]
async fn a_fetch_confirms_the_start_of_a_group_upstream() {
    let (origin, track) = live_track();
    track.write_group(0, [Object::new(0, "a")]).unwrap();
    let group = track.create_group(2).unwrap();
    let sub = group.create_subgroup_with(SubgroupInfo { first_object: false, ..SubgroupInfo::new(0, 128) });
    sub.write(Object::new(1, "d")).unwrap();
    sub.finish();
    group.finish();
    let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = asked.clone();
    origin.set_fetcher(std::sync::Arc::new(move |_, start: moq_transport::wire::Location, end, _| {
        seen.lock().unwrap().push((start.group.0, start.object.0, end.group.0, end.object.0));
        Box::pin(async move {
            let (tx, items) = tokio::sync::mpsc::channel(4);
            let object = FetchedObject {
                location: moq_transport::wire::Location::new(2, 0),
                subgroup: Some(moq_transport::wire::SubgroupId(0)),
                priority: 128,
                properties: Default::default(),
                payload: bytes::Bytes::from_static(b"c"),
            };
            tx.send(Ok(FetchItem::Object(object))).await.unwrap();
            Some(FetchSource {
                end_of_track: false,
                end_location: moq_transport::wire::Location::new(2, 1),
                track_properties: Default::default(),
                items,
            })
        })
    }));
    let (client, _server) = sessions(origin).await;
    let entries = fetch_entries(&client, groups(0, 3)).await;
    assert_eq!(entries, ["object 0/0", "object 2/0", "object 2/1"]);
    assert_eq!(*asked.lock().unwrap(), [(2, 0, 2, 1)], "only the start of group 2 is asked for");
}

/// In descending order an unknown End of Range still covers exactly the missing part: groups are sent newest
/// first and objects in id order within a group, and each End of Range covers from the entry before it. (It was
/// put first, ahead of its own group's objects.)
#[tokio::test(start_paused = true)]
async fn a_descending_fetch_covers_the_objects_not_arrived_after_their_group() {
    let (origin, track) = live_track();
    track.write_group(0, [Object::new(0, "a")]).unwrap();
    track.write_group(2, [Object::new(0, "c")]).unwrap();
    // Upstream said (3, 1) exists: the rest of group 2 and group 3 up to it have not arrived.
    track.note_largest(moq_transport::wire::Location::new(3, 1));
    let (client, _server) = sessions(origin).await;
    let range = groups(0, 4);
    let entries = fetch_entries_in(&client, range, moq_transport::wire::GroupOrder::Descending).await;
    // After object 2/0, one entry covers the rest of group 2; group 1 is a gap (never published).
    let rest_of_2 = format!("end 2/{LAST} unknown true");
    assert_eq!(entries, ["end 3/1 unknown true", "object 2/0", rest_of_2.as_str(), "object 0/0"]);
}

/// A cached object older than its track's MAX_CACHE_DURATION is not served by FETCH either: its state is unknown
/// (draft-19 §MAX_CACHE_DURATION), so it goes out as an unknown End of Range, not as the object.
#[tokio::test(start_paused = true)]
async fn a_fetch_reports_objects_past_max_cache_duration_as_unknown() {
    use moq_transport::wire::kvp::{Properties, property};
    let origin = Origin::new();
    let mut info = TrackInfo::new(name("live", "v"));
    info.properties = Properties::new().with_int(property::MAX_CACHE_DURATION, 20).unwrap();
    let track = TrackProducer::new(info);
    origin.publish_track(track.clone());
    track.write_group(0, [Object::new(0, "expired")]).unwrap();
    tokio::time::sleep(Duration::from_millis(60)).await;
    track.write_group(1, [Object::new(0, "fresh")]).unwrap();
    let (client, _server) = sessions(origin).await;
    let range = groups(0, 2);
    let entries = fetch_entries(&client, range).await;
    assert_eq!(entries, ["end 0/0 unknown true", "object 1/0"]);
}

/// An origin publishing the track live--v, and the track.
fn live_track() -> (Origin, TrackProducer) {
    let origin = Origin::new();
    let track = TrackProducer::new(TrackInfo::new(name("live", "v")));
    origin.publish_track(track.clone());
    (origin, track)
}

/// A standalone FETCH of live--v from the start of group `from` to the start of group `to`.
fn groups(from: u64, to: u64) -> FetchRange {
    FetchRange::Standalone {
        track: name("live", "v"),
        start: moq_transport::wire::Location::new(from, 0),
        end: moq_transport::wire::Location::new(to, 0),
    }
}

/// Every entry of an ascending FETCH of `range`, as text.
async fn fetch_entries(client: &Session<MemorySession>, range: FetchRange) -> Vec<String> {
    fetch_entries_in(client, range, moq_transport::wire::GroupOrder::Ascending).await
}

/// Every entry of a FETCH of `range` in `order`, as text.
async fn fetch_entries_in(
    client: &Session<MemorySession>,
    range: FetchRange,
    order: moq_transport::wire::GroupOrder,
) -> Vec<String> {
    let mut f = client.fetch(range, order).await.unwrap();
    let mut entries = Vec::new();
    while let Some(item) = timeout(T, f.next_item()).await.unwrap().unwrap() {
        entries.push(match item {
            FetchItem::Object(o) => format!("object {}/{}", o.location.group.0, o.location.object.0),
            FetchItem::EndOfRange { end, unknown } => format!("end {}/{} unknown {unknown}", end.group.0, end.object.0),
        });
    }
    entries
}
