//! NEW_GROUP_REQUEST through the relay: a viewer's request reaches the original publisher of a track with
//! DYNAMIC_GROUPS, once per new group wanted.

mod common;

use std::time::Duration;

use common::*;
use moq_relay::Config;
use moq_transport::wire::kvp::{Properties, property};
use moq_transport::wire::namespace::TrackNamespace;
use moq_transport::*;
use tokio::time::timeout;

/// A publisher whose track offers dynamic groups.
async fn dynamic_publisher(relay: &Running, ns: &str) -> (Session, TrackProducer, Announcement) {
    let origin = Origin::new();
    let mut info = TrackInfo::new(name(ns, "video"));
    info.properties = Properties::new().with_int(property::DYNAMIC_GROUPS, 1).unwrap();
    let track = TrackProducer::new(info);
    origin.publish_track(track.clone());
    let session = relay.connect(false, origin).await;
    let ann = session.publish_namespace(TrackNamespace::from_path(ns).unwrap()).await.unwrap();
    (session, track, ann)
}

async fn next_request(requests: &mut tokio::sync::watch::Receiver<NewGroupRequest>) -> NewGroupRequest {
    timeout(T, requests.changed()).await.expect("no NEW_GROUP_REQUEST reached the publisher").unwrap();
    *requests.borrow_and_update()
}

#[tokio::test]
async fn a_viewers_new_group_request_reaches_the_publisher() {
    let relay = start().await;
    let (_p, track, _ann) = dynamic_publisher(&relay, "live/dyn").await;
    let mut requests = track.new_group_requests();
    let viewer = relay.connect(true, Origin::new()).await;
    let ask = SubscribeOptions { new_group_request: Some(0), ..Default::default() };
    let sub = viewer.subscribe(name("live/dyn", "video"), ask.clone()).await.unwrap();
    assert_eq!(sub.track_properties.get_int(property::DYNAMIC_GROUPS), Some(1), "the relay passes the property on");
    assert_eq!(next_request(&mut requests).await.value, 0);
    track.write_group(0, [Object::new(0, "key")]).unwrap();
    let mut c = sub.consumer();
    timeout(T, c.next_group()).await.unwrap().unwrap();

    // A second viewer joins mid-group and asks too: the relay asks for the group after the largest.
    let late = relay.connect(false, Origin::new()).await;
    let _sub2 = late.subscribe(name("live/dyn", "video"), ask).await.unwrap();
    assert_eq!(next_request(&mut requests).await.value, 1);

    // A REQUEST_UPDATE for a group the relay already has is not forwarded; one for the next group is, once.
    sub.request_new_group(0);
    sub.request_new_group(1);
    assert!(timeout(Duration::from_millis(300), requests.changed()).await.is_err(), "1 is outstanding");
    track.write_group(1, [Object::new(0, "key")]).unwrap();
    timeout(T, c.next_group()).await.unwrap().unwrap();
    sub.request_new_group(2);
    assert_eq!(next_request(&mut requests).await.value, 2);
}

#[tokio::test]
async fn tracks_without_dynamic_groups_ignore_it_in_subscribe_and_refuse_it_in_updates() {
    let relay = start().await;
    let (_p, track, _ann) = relay.publisher("live/static").await;
    let requests = track.new_group_requests();
    let viewer = relay.connect(false, Origin::new()).await;
    let ask = SubscribeOptions { new_group_request: Some(0), ..Default::default() };
    let sub = viewer.subscribe(name("live/static", "video"), ask).await.unwrap();
    let params = moq_transport::wire::params::Parameters { new_group_request: Some(1), ..Default::default() };
    assert!(timeout(T, sub.update(params)).await.unwrap().is_err(), "refused: no DYNAMIC_GROUPS");
    assert!(!requests.has_changed().unwrap());
}

/// The relay's upstream subscription to a track with dynamic groups ends once its last viewer has left, as for
/// any track (the part that forwards NEW_GROUP_REQUESTs must not count as a viewer).
#[tokio::test]
async fn the_upstream_subscription_of_a_dynamic_track_ends_after_its_last_viewer() {
    let relay = start_with(Config { upstream_linger: Duration::from_millis(100), ..test_config() }).await;
    let (_p, track, _ann) = dynamic_publisher(&relay, "live/dyn-linger").await;
    let viewer = relay.connect(false, Origin::new()).await;
    let sub = viewer.subscribe(name("live/dyn-linger", "video"), SubscribeOptions::default()).await.unwrap();
    wait_consumers(&track, 1).await;
    drop(sub);
    wait_consumers(&track, 0).await;
}

/// The relay's SUBSCRIBE upstream, made for a viewer's SUBSCRIBE, carries that viewer's NEW_GROUP_REQUEST (draft-19
/// §NEW_GROUP_REQUEST: a relay without an Established subscription MUST include it) and its priority.
#[tokio::test]
async fn the_upstream_subscribe_carries_the_viewers_new_group_request_and_priority() {
    use common::raw::RawPeer;
    let relay = start().await;
    let mut publisher = RawPeer::connect(&relay, moq_transport::wire::Version::Draft19).await;
    let _announced = publisher.announce("live/ngr").await;
    let viewer = relay.connect(false, Origin::new()).await;
    let ask = SubscribeOptions { new_group_request: Some(0), priority: 7, ..Default::default() };
    let (sub, upstream) =
        tokio::join!(timeout(T, viewer.subscribe(name("live/ngr", "video"), ask)), publisher.accept_subscribe(3));
    let (_send, _reader, subscribe) = upstream;
    assert_eq!(subscribe.params.new_group_request, Some(0));
    assert_eq!(subscribe.params.subscriber_priority, Some(7));
    sub.unwrap().unwrap();
}
