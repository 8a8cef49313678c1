//! The relay's data plane against a hand-written draft publisher: every object a subscriber is owed arrives,
//! whatever order the publisher's streams land in, however many subgroups a group has, and on the transport the
//! publisher chose for it (stream or datagram). Each case runs at draft 19 and draft 18.

use moq_transport::{app_code, *};

mod common;

use std::collections::BTreeSet;

use common::raw::{RawPeer, explicit};
use common::*;
use moq_transport::wire::Version;
use moq_transport::wire::codes::SessionCode;
use moq_transport::wire::data::SubgroupIdMode;
use tokio::sync::mpsc;
use tokio::time::timeout;

/// (group, subgroup, object, payload, delivery, first_object)
type Received = (u64, u64, u64, Vec<u8>, Delivery, bool);

/// Reads everything a subscription delivers, every group and subgroup concurrently (so that a reader waiting on
/// one group never hides another), as a forwarder would.
fn collect(mut consumer: TrackConsumer) -> mpsc::UnboundedReceiver<Received> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(mut group) = consumer.next_group().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                while let Some(mut sub) = group.next_subgroup_to_end().await {
                    let (tx, g) = (tx.clone(), group.id().0);
                    tokio::spawn(async move {
                        let info = *sub.info();
                        while let Ok(o) = sub.next().await {
                            let item = (g, info.id.0, o.id.0, o.payload.to_vec(), info.delivery, info.first_object);
                            let _ = tx.send(item);
                        }
                    });
                }
            });
        }
    });
    rx
}

async fn take(rx: &mut mpsc::UnboundedReceiver<Received>, n: usize) -> BTreeSet<(u64, u64, u64)> {
    let mut got = BTreeSet::new();
    while got.len() < n {
        let Ok(Some((g, sg, o, ..))) = timeout(T, rx.recv()).await else {
            panic!("only {} of {n} objects arrived: {got:?}", got.len());
        };
        got.insert((g, sg, o));
    }
    got
}

/// A relay, a raw publisher that announced `ns`, and a subscriber whose SUBSCRIBE reached the publisher before
/// anything was published (the relay's upstream subscription uses alias 7).
async fn early_subscriber(relay: &Running, version: Version, ns: &str) -> (RawPeer, Subscription, Session) {
    let mut publisher = RawPeer::connect(relay, version).await;
    let announce = publisher.announce(ns).await;
    std::mem::forget(announce); // the namespace stays announced for the whole test
    let viewer = relay.connect(false, Origin::new()).await;
    let track = name(ns, "video");
    let (sub, upstream) =
        tokio::join!(timeout(T, viewer.subscribe(track, SubscribeOptions::default())), publisher.accept_subscribe(7));
    std::mem::forget(upstream);
    (publisher, sub.unwrap().unwrap(), viewer)
}

async fn burst_of_groups_reaches_an_early_subscriber(version: Version) {
    let relay = start().await;
    let (publisher, sub, _viewer) = early_subscriber(&relay, version, "burst").await;
    let mut rx = collect(sub.consumer());
    // Group 1 is written and lands first; group 0 (5 objects) follows on its own stream.
    let mut g1 = publisher.subgroup(7, 1, SubgroupIdMode::Zero, false).await;
    g1.object(0, b"g1").await;
    g1.finish();
    assert_eq!(take(&mut rx, 1).await, BTreeSet::from([(1, 0, 0)]));
    let mut g0 = publisher.subgroup(7, 0, SubgroupIdMode::Zero, true).await;
    for o in 0..5 {
        g0.object(o, b"g0").await;
    }
    g0.finish();
    assert_eq!(take(&mut rx, 5).await, (0..5).map(|o| (0, 0, o)).collect());
    // Three groups of three objects in a burst, streams opened newest first.
    let mut streams = Vec::new();
    for g in (2..5).rev() {
        streams.push(publisher.subgroup(7, g, SubgroupIdMode::Zero, true).await);
    }
    for s in &mut streams {
        for o in 0..3 {
            s.object(o, b"burst").await;
        }
    }
    streams.into_iter().for_each(|s| s.finish());
    let expected: BTreeSet<_> = (2..5).flat_map(|g| (0..3).map(move |o| (g, 0, o))).collect();
    assert_eq!(take(&mut rx, 9).await, expected);
}

#[tokio::test]
async fn burst_of_groups_reaches_an_early_subscriber_draft19() {
    burst_of_groups_reaches_an_early_subscriber(Version::Draft19).await;
}

#[tokio::test]
async fn burst_of_groups_reaches_an_early_subscriber_draft18() {
    burst_of_groups_reaches_an_early_subscriber(Version::Draft18).await;
}

async fn every_subgroup_of_a_group_is_forwarded(version: Version) {
    let relay = start().await;
    let (publisher, sub, _viewer) = early_subscriber(&relay, version, "multi").await;
    let mut rx = collect(sub.consumer());
    // Group 0 on subgroups 0 and 7; group 1 starts before subgroup 7 of group 0 arrives.
    let mut s0 = publisher.subgroup(7, 0, explicit(0), false).await;
    s0.object(0, b"a").await;
    s0.object(2, b"c").await;
    s0.finish();
    assert_eq!(take(&mut rx, 2).await.len(), 2);
    // Group 1, Subgroup ID = its first Object ID (3).
    let mut g1 = publisher.subgroup(7, 1, SubgroupIdMode::FirstObjectId, false).await;
    g1.object(3, b"d").await;
    g1.finish();
    assert_eq!(take(&mut rx, 1).await, BTreeSet::from([(1, 3, 3)]));
    let mut s7 = publisher.subgroup(7, 0, explicit(7), true).await;
    s7.object(1, b"b").await;
    s7.object(3, b"e").await;
    s7.finish();
    assert_eq!(take(&mut rx, 2).await, BTreeSet::from([(0, 7, 1), (0, 7, 3)]));
}

#[tokio::test]
async fn every_subgroup_of_a_group_is_forwarded_draft19() {
    every_subgroup_of_a_group_is_forwarded(Version::Draft19).await;
}

#[tokio::test]
async fn every_subgroup_of_a_group_is_forwarded_draft18() {
    every_subgroup_of_a_group_is_forwarded(Version::Draft18).await;
}

async fn datagrams_stay_datagrams(version: Version) {
    let relay = start().await;
    let (publisher, sub, _viewer) = early_subscriber(&relay, version, "dgram").await;
    let mut rx = collect(sub.consumer());
    // One track mixing both forwarding preferences: a subgroup stream, then datagrams in the same group.
    let mut s = publisher.subgroup(7, 0, SubgroupIdMode::Zero, false).await;
    s.object(0, b"stream").await;
    s.finish();
    let mut seen = Vec::new();
    let Some(first) = timeout(T, rx.recv()).await.unwrap() else { panic!("no object") };
    seen.push(first);
    // Datagrams may be lost even on loopback: send until three distinct ones arrived.
    let mut object = 1;
    while seen.len() < 4 {
        publisher.datagram(7, 0, object, b"datagram");
        object += 1;
        if let Ok(Some(d)) = timeout(std::time::Duration::from_millis(200), rx.recv()).await {
            seen.push(d);
        }
        assert!(object < 100, "datagrams do not get through: {seen:?}");
    }
    for (g, sg, o, payload, delivery, first_object) in seen {
        assert_eq!(g, 0);
        if o == 0 {
            assert_eq!((sg, delivery, payload.as_slice()), (0, Delivery::Streams, &b"stream"[..]));
            assert!(first_object, "a forwarded subgroup that starts at its first object says so");
        } else {
            assert_eq!((delivery, payload.as_slice()), (Delivery::Datagrams, &b"datagram"[..]), "object {o}");
        }
    }
}

#[tokio::test]
async fn datagrams_stay_datagrams_draft19() {
    datagrams_stay_datagrams(Version::Draft19).await;
}

#[tokio::test]
async fn datagrams_stay_datagrams_draft18() {
    datagrams_stay_datagrams(Version::Draft18).await;
}

#[tokio::test]
async fn a_control_stream_reset_closes_that_session_among_fifty() {
    let relay = start().await;
    // Fifty busy sessions: each announces a namespace and keeps it.
    let mut peers = Vec::new();
    for i in 0..50 {
        let mut p = RawPeer::connect(&relay, Version::Draft19).await;
        let held = p.announce(&format!("crowd/{i}")).await;
        peers.push((p, held));
    }
    let (offender, _held) = &mut peers[17];
    offender.reset_control();
    let closed = timeout(std::time::Duration::from_secs(2), offender.session.closed()).await;
    let error = closed.expect("the session that reset its control stream is still open");
    let code = web_transport_trait::Error::session_error(&error).map(|(c, _)| c);
    assert_eq!(code, Some(app_code(SessionCode::ProtocolViolation)));
    // The others are untouched.
    for (i, (p, _)) in peers.iter().enumerate() {
        let still_open = timeout(std::time::Duration::ZERO, p.session.closed()).await.is_err();
        assert!(i == 17 || still_open, "session {i} was closed");
    }
}

#[tokio::test]
async fn fifty_sessions_resetting_their_control_streams_at_once_all_close() {
    let relay = start().await;
    let mut peers = Vec::new();
    for i in 0..50 {
        let mut p = RawPeer::connect_over(&relay, Version::Draft19, i % 2 == 1).await;
        // An answered request: the relay has read our SETUP. (A reset that lands while web-transport-quinn is
        // still reading a stream's header is dropped there unseen; such a session ends at the setup timeout.)
        let held = p.announce(&format!("crowd/{i}")).await;
        peers.push((p, held));
    }
    let mut closing = tokio::task::JoinSet::new();
    for (mut p, held) in peers {
        closing.spawn(async move {
            p.reset_control();
            let closed = timeout(std::time::Duration::from_secs(2), p.session.closed()).await;
            drop(held);
            closed.ok().and_then(|e| web_transport_trait::Error::session_error(&e)).map(|(c, _)| c)
        });
    }
    while let Some(code) = closing.join_next().await {
        assert_eq!(code.unwrap(), Some(app_code(SessionCode::ProtocolViolation)));
    }
}

/// Sessions that reset their control stream right behind SETUP, before the relay answered: over WebTransport
/// the reset can land while web-transport-quinn still reads the stream's header, which drops the stream unseen.
/// Each must still be closed at once with PROTOCOL_VIOLATION, not left to the 10 s setup timeout.
#[tokio::test]
async fn sessions_resetting_their_control_stream_before_setup_is_answered_close_at_once() {
    let relay = start().await;
    let mut closing = tokio::task::JoinSet::new();
    for i in 0..50 {
        let session = RawPeer::setup_and_reset(&relay, i % 5 != 0).await;
        closing.spawn(async move {
            let closed = timeout(std::time::Duration::from_secs(2), session.closed()).await;
            let code = closed.as_ref().ok().and_then(web_transport_trait::Error::session_error).map(|(c, _)| c);
            (i, code, format!("{closed:?}"))
        });
    }
    while let Some(outcome) = closing.join_next().await {
        let (i, code, how) = outcome.unwrap();
        assert_eq!(code, Some(app_code(SessionCode::ProtocolViolation)), "session {i}: {how}");
    }
}

#[tokio::test]
async fn an_upstream_fetch_that_fails_midway_is_not_passed_on_as_complete() {
    let relay = start().await;
    let mut publisher = RawPeer::connect(&relay, Version::Draft19).await;
    let announce = publisher.announce("history").await;
    let viewer = relay.connect(false, Origin::new()).await;
    let range = FetchRange::Standalone {
        track: name("history", "video"),
        start: moq_transport::wire::Location::new(0, 0),
        end: moq_transport::wire::Location::new(3, 0),
    };
    let order = moq_transport::wire::GroupOrder::Ascending;
    let end = moq_transport::wire::Location::new(3, 0);
    let (fetch, upstream) = tokio::join!(timeout(T, viewer.fetch(range, order)), publisher.accept_fetch(end));
    let mut fetch = fetch.unwrap().unwrap();
    let (_request, mut data) = upstream;
    // The first object streams through before the upstream answer is complete.
    let first = timeout(T, fetch.next()).await.unwrap().unwrap().expect("the first object");
    assert_eq!(&first.payload[..], b"first");
    // The publisher gives up: the viewer must see the answer cut short, not a clean end.
    web_transport_trait::SendStream::reset(&mut data, 0);
    let rest = timeout(T, fetch.next()).await.unwrap();
    assert!(rest.is_err(), "a truncated FETCH answer ended as if complete: {rest:?}");
    drop(announce);
}

/// A publisher sends an object past its group's end (END_OF_GROUP): the relay finds the track malformed and ends
/// its subscribers' subscriptions at once with MALFORMED_TRACK (draft-19 §Malformed Tracks), not after the grace
/// it gives a lost publisher.
async fn a_malformed_track_ends_downstream_with_malformed_track(version: Version) {
    let relay = start().await;
    let (publisher, sub, _viewer) = early_subscriber(&relay, version, "malformed").await;
    let mut consumer = sub.consumer();
    let mut s0 = publisher.subgroup(7, 0, explicit(0), true).await;
    s0.object(0, b"a").await;
    s0.object(1, b"b").await;
    s0.finish();
    let mut s1 = publisher.subgroup(7, 0, explicit(1), false).await;
    s1.object(5, b"past the group's end").await;
    let end = timeout(std::time::Duration::from_millis(1500), async {
        loop {
            if let Err(end) = consumer.next_group().await {
                break end;
            }
        }
    })
    .await
    .expect("the subscription goes on after a malformed track");
    let malformed = moq_transport::wire::codes::PublishDoneCode::MalformedTrack.to_u64();
    assert_eq!(end, TrackEnd::Error(malformed));
}

#[tokio::test]
async fn a_malformed_track_ends_downstream_with_malformed_track_draft19() {
    a_malformed_track_ends_downstream_with_malformed_track(Version::Draft19).await;
}

#[tokio::test]
async fn a_malformed_track_ends_downstream_with_malformed_track_draft18() {
    a_malformed_track_ends_downstream_with_malformed_track(Version::Draft18).await;
}
