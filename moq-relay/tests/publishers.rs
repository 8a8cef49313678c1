//! Several publishers of one track: the relay subscribes to every matching publisher, PUBLISHed copies join the
//! track subscribers already read, and objects are merged (each group once).

use moq_transport::{RequestFailure, *};

mod common;

use common::*;
use tokio::time::timeout;

/// The next group's id and first payload.
async fn next(c: &mut TrackConsumer) -> (u64, String) {
    let mut g = timeout(T, c.next_group()).await.unwrap().unwrap();
    let mut s = timeout(T, g.next_subgroup()).await.unwrap().unwrap();
    let o = timeout(T, s.next()).await.unwrap().unwrap();
    (g.id().0, String::from_utf8(o.payload.to_vec()).unwrap())
}

/// Two publishers announce the same namespace (say, a primary and a backup encoder): the relay subscribes to
/// both, the viewer gets each group once, and keeps getting groups when one publisher leaves.
#[tokio::test]
async fn every_matching_publisher_is_subscribed_and_merged() {
    let relay = start().await;
    let (a_session, a, a_ann) = relay.publisher("live/twin").await;
    let (_b_session, b, _b_ann) = relay.publisher("live/twin").await;
    let viewer = relay.connect(true, Origin::new()).await;
    let sub = viewer.subscribe(name("live/twin", "video"), SubscribeOptions::default()).await.unwrap();
    wait_consumers(&a, 1).await;
    wait_consumers(&b, 1).await;
    let mut c = sub.consumer();
    a.write_group(0, [Object::new(0, "a0")]).unwrap();
    assert_eq!(next(&mut c).await, (0, "a0".into()));
    b.write_group(0, [Object::new(0, "b0")]).unwrap();
    b.write_group(1, [Object::new(0, "b1")]).unwrap();
    assert_eq!(next(&mut c).await, (1, "b1".into()), "group 0 only once");
    // The first publisher leaves; the second carries on in the same subscription.
    drop((a_ann, a_session));
    b.write_group(2, [Object::new(0, "b2")]).unwrap();
    assert_eq!(next(&mut c).await, (2, "b2".into()));
}

/// A publisher that announces after the relay subscribed elsewhere is subscribed too.
#[tokio::test]
async fn a_later_publisher_of_a_subscribed_track_is_subscribed() {
    let relay = start().await;
    let (a_session, a, a_ann) = relay.publisher("live/later").await;
    let viewer = relay.connect(false, Origin::new()).await;
    let sub = viewer.subscribe(name("live/later", "video"), SubscribeOptions::default()).await.unwrap();
    let mut c = sub.consumer();
    wait_consumers(&a, 1).await;
    a.write_group(0, [Object::new(0, "a0")]).unwrap();
    assert_eq!(next(&mut c).await, (0, "a0".into()));
    let (_b_session, b, _b_ann) = relay.publisher("live/later").await;
    wait_consumers(&b, 1).await;
    drop((a_ann, a_session));
    b.write_group(1, [Object::new(0, "b1")]).unwrap();
    assert_eq!(next(&mut c).await, (1, "b1".into()));
}

/// Graceful publisher switchover (draft-19 §Graceful Publisher Relay Switchover): a publisher PUBLISHes its track
/// again on a new session, then leaves the old one; the relay deduplicates the two copies and its viewers keep
/// their subscription, getting the new session's groups (they were stranded on the old copy).
#[tokio::test]
async fn a_publisher_switching_sessions_with_publish_keeps_its_viewers() {
    let relay = start().await;
    let old = relay.connect(false, Origin::new()).await;
    let track = TrackProducer::new(TrackInfo::new(name("live/switch", "video")));
    let published = timeout(T, old.publish(track.clone())).await.unwrap().unwrap();
    let viewer = relay.connect(true, Origin::new()).await;
    let sub =
        timeout(T, viewer.subscribe(name("live/switch", "video"), SubscribeOptions::default())).await.unwrap().unwrap();
    let mut c = sub.consumer();
    track.write_group(0, [Object::new(0, "old0")]).unwrap();
    assert_eq!(next(&mut c).await, (0, "old0".into()));
    // The same track on a new session; both copies carry group 1 for a while.
    let new = relay.connect(false, Origin::new()).await;
    let moved = TrackProducer::new(TrackInfo::new(name("live/switch", "video")));
    let _republished = timeout(T, new.publish(moved.clone())).await.unwrap().unwrap();
    moved.write_group(1, [Object::new(0, "new1")]).unwrap();
    track.write_group(1, [Object::new(0, "old1")]).unwrap();
    assert_eq!(next(&mut c).await.0, 1, "group 1 once");
    // The old session goes; the viewer carries on with the new one's groups.
    drop(published);
    drop(old);
    moved.write_group(2, [Object::new(0, "new2")]).unwrap();
    assert_eq!(next(&mut c).await, (2, "new2".into()));
}

/// A PUBLISH of a track that subscribers already read through the relay reaches them.
#[tokio::test]
async fn a_publish_reaches_existing_subscribers() {
    let relay = start().await;
    let (_a_session, a, _a_ann) = relay.publisher("live/pushed").await;
    let viewer = relay.connect(true, Origin::new()).await;
    let sub = viewer.subscribe(name("live/pushed", "video"), SubscribeOptions::default()).await.unwrap();
    let mut c = sub.consumer();
    wait_consumers(&a, 1).await;
    a.write_group(0, [Object::new(0, "a0")]).unwrap();
    assert_eq!(next(&mut c).await, (0, "a0".into()));
    let pusher = relay.connect(false, Origin::new()).await;
    let pushed = TrackProducer::new(TrackInfo::new(name("live/pushed", "video")));
    let _published = timeout(T, pusher.publish(pushed.clone())).await.unwrap().unwrap();
    pushed.write_group(1, [Object::new(0, "p1")]).unwrap();
    assert_eq!(next(&mut c).await, (1, "p1".into()));
    // A new viewer reads the same merged copy.
    let late = relay.connect(false, Origin::new()).await;
    let sub2 = late.subscribe(name("live/pushed", "video"), SubscribeOptions::default()).await.unwrap();
    let mut c2 = sub2.consumer();
    pushed.write_group(2, [Object::new(0, "p2")]).unwrap();
    let mut late_groups = vec![next(&mut c2).await.0];
    if late_groups[0] != 2 {
        late_groups.push(next(&mut c2).await.0);
    }
    assert_eq!(late_groups.last(), Some(&2), "{late_groups:?}");
    assert_eq!(next(&mut c).await, (2, "p2".into()));
}

/// A publisher that allows the relay one request stream at a time (its QUIC stream credit): the relay's second
/// upstream SUBSCRIBE cannot even be opened. The viewer gets TIMEOUT after --request-open-timeout, where it used to
/// wait for ever (holding the track's lookup), and the track already subscribed keeps serving new viewers.
#[tokio::test]
async fn a_publisher_out_of_stream_credit_gets_the_viewer_a_timeout_not_a_hang() {
    let mut config = test_config();
    config.request_open_timeout = std::time::Duration::from_millis(300);
    let relay = start_with(config).await;
    let origin = Origin::new();
    let video = TrackProducer::new(TrackInfo::new(name("live/credit", "video")));
    let audio = TrackProducer::new(TrackInfo::new(name("live/credit", "audio")));
    origin.publish_track(video.clone());
    origin.publish_track(audio.clone());
    let client =
        quic::Client::new(relay.trust.clone(), SessionConfig { origin, max_bidi_streams: 1, ..Default::default() })
            .unwrap();
    let publisher = timeout(T, client.connect(&relay.url(false))).await.unwrap().unwrap();
    let _ann =
        publisher.publish_namespace(wire::namespace::TrackNamespace::from_path("live/credit").unwrap()).await.unwrap();
    let viewer = relay.connect(true, Origin::new()).await;
    let _video = viewer.subscribe(name("live/credit", "video"), SubscribeOptions::default()).await.unwrap();
    wait_consumers(&video, 1).await;
    let refused = timeout(T, viewer.subscribe(name("live/credit", "audio"), SubscribeOptions::default()))
        .await
        .expect("the SUBSCRIBE hung: the relay waited for stream credit for ever");
    match refused {
        Err(Error::Request(RequestFailure::Rejected { code, .. })) => {
            assert_eq!(code, wire::codes::RequestErrorCode::Timeout)
        }
        other => panic!("expected REQUEST_ERROR TIMEOUT, got {other:?}"),
    }
    let second = relay.connect(true, Origin::new()).await;
    let sub = timeout(T, second.subscribe(name("live/credit", "video"), SubscribeOptions::default())).await;
    assert!(sub.unwrap().is_ok(), "the track already subscribed upstream still serves");
}

/// A SUBSCRIBE_TRACKS subscriber that allows the relay one request stream gets one PUBLISH, and PUBLISH_SKIPPED for
/// the other tracks at once (draft-19: "no available bidirectional streams"), not a wait for stream credit.
#[tokio::test]
async fn subscribe_tracks_without_stream_credit_gets_publish_skipped() {
    let mut config = test_config();
    // Long enough that waiting for credit would outlast the test's patience.
    config.request_open_timeout = std::time::Duration::from_secs(60);
    let relay = start_with(config).await;
    let pusher = relay.connect(false, Origin::new()).await;
    let mut published = Vec::new();
    for track in ["a", "b", "c"] {
        let t = TrackProducer::new(TrackInfo::new(name("live/many", track)));
        published.push(timeout(T, pusher.publish(t)).await.unwrap().unwrap());
    }
    let client =
        quic::Client::new(relay.trust.clone(), SessionConfig { max_bidi_streams: 1, ..Default::default() }).unwrap();
    let viewer = timeout(T, client.connect(&relay.url(false))).await.unwrap().unwrap();
    let _tracks = viewer.subscribe_tracks(wire::namespace::TrackNamespace::from_path("live/many").unwrap()).await;
    let (mut pushed, mut skipped) = (Vec::new(), Vec::new());
    while pushed.len() + skipped.len() < 3 {
        match timeout(T, viewer.next_event()).await.expect("each track PUBLISHed or skipped") {
            Some(Event::Published(t)) => pushed.push(t.info().name.name.clone()),
            Some(Event::Skipped(name)) => skipped.push(name.name.clone()),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((pushed.len(), skipped.len()), (1, 2), "pushed {pushed:?}, skipped {skipped:?}");
}
