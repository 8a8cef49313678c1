//! Chat rooms over a real relay: participants publish their own tracks, everyone reads the one room track.

mod common;

use common::*;
use moq_transport::wire::namespace::TrackNamespace;
use moq_transport::wire::{GroupOrder, Location};
use moq_transport::*;
use tokio::time::timeout;

/// A participant session: `chat/<channel>/users/<id>` announced, its `messages` track to write posts into.
async fn participant(relay: &Running, channel: &str, id: &str) -> (Session, TrackProducer, Announcement) {
    let ns = format!("chat/{channel}/users/{id}");
    let origin = Origin::new();
    let track = TrackProducer::new(TrackInfo::new(name(&ns, "messages")));
    origin.publish_track(track.clone());
    let session = relay.connect(true, origin).await;
    let ann = session.publish_namespace(TrackNamespace::from_path(&ns).unwrap()).await.unwrap();
    (session, track, ann)
}

fn post(track: &TrackProducer, group: u64, name: &str, text: &str) {
    let body = serde_json::json!({ "name": name, "text": text }).to_string();
    track.write_group(group, [Object::new(0, body)]).unwrap();
}

async fn next_message(c: &mut TrackConsumer) -> serde_json::Value {
    let mut g = timeout(T, c.next_group()).await.unwrap().unwrap();
    let mut s = timeout(T, g.next_subgroup()).await.unwrap().unwrap();
    let o = timeout(T, s.next()).await.unwrap().unwrap();
    serde_json::from_slice(&o.payload).unwrap()
}

#[tokio::test]
async fn a_room_orders_everyones_messages_and_a_late_joiner_fetches_history() {
    let relay = start().await;
    let viewer = relay.connect(true, Origin::new()).await;
    let room = viewer.subscribe(name("chat/tv", "room"), SubscribeOptions::default()).await.unwrap();
    let mut reader = room.consumer();
    let (ann_session, ann, _aa) = participant(&relay, "tv", "a1").await;
    let (_b, bob, _ba) = participant(&relay, "tv", "b2").await;
    wait_consumers(&ann, 1).await;
    wait_consumers(&bob, 1).await;
    // The relay tells each participant the id it shows for it, on the participant's notices track.
    let told = ann_session.subscribe(name("chat/tv/users/a1", "notices"), SubscribeOptions::default()).await.unwrap();
    let ann_id = next_message(&mut told.consumer()).await["you"].as_str().unwrap().to_string();
    assert!(ann_id.starts_with('s'), "{ann_id}");
    post(&ann, 0, "ann", "hello");
    let m = next_message(&mut reader).await;
    assert_eq!(
        (m["seq"].as_u64(), m["id"].as_str(), m["name"].as_str()),
        (Some(0), Some(ann_id.as_str()), Some("ann"))
    );
    post(&bob, 0, "bob", "<b>hi</b>");
    let m = next_message(&mut reader).await;
    assert_eq!((m["seq"].as_u64(), m["text"].as_str()), (Some(1), Some("<b>hi</b>")), "text passes as text");
    assert_ne!(m["id"].as_str(), Some(ann_id.as_str()), "bob's session has another id");
    post(&ann, 1, "ann", "third");
    assert_eq!(next_message(&mut reader).await["seq"], 2);
    let metrics = relay.http_get("/metrics").await;
    assert!(metrics.contains("moq_relay_chat_rooms 1\n"), "{metrics}");
    assert!(metrics.contains("moq_relay_chat_participants 2\n"), "{metrics}");

    // A late joiner FETCHes what the room holds.
    let late = relay.connect(false, Origin::new()).await;
    let range =
        FetchRange::Standalone { track: name("chat/tv", "room"), start: Location::new(0, 0), end: Location::new(2, 1) };
    let mut f = timeout(T, late.fetch(range, GroupOrder::Ascending)).await.unwrap().unwrap();
    let mut texts = Vec::new();
    while let Some(o) = timeout(T, f.next()).await.unwrap().unwrap() {
        let v: serde_json::Value = serde_json::from_slice(&o.payload).unwrap();
        texts.push(v["text"].as_str().unwrap().to_string());
    }
    assert_eq!(texts, ["hello", "<b>hi</b>", "third"]);
}
