//! The model's unit tests.

use moq_wire::namespace::{FullTrackName, TrackNamespace};
use moq_wire::{GroupId, Location, ObjectId, SubgroupId};

use super::*;

fn track(window: usize) -> TrackProducer {
    TrackProducer::with_window(TrackInfo::new(FullTrackName::new(TrackNamespace::new(["t"]).unwrap(), "x")), window)
}

#[tokio::test]
async fn consumers_read_at_their_own_pace() {
    let t = track(4);
    let mut fast = t.consume();
    let mut slow = t.consume();
    for g in 0..3u64 {
        t.write_group(g, (0..3).map(|o| Object::new(o, vec![g as u8; 4]))).unwrap();
        let mut group = fast.next_group().await.unwrap();
        assert_eq!(group.id(), GroupId(g));
        let mut sub = group.next_subgroup().await.unwrap();
        for o in 0..3 {
            assert_eq!(sub.next().await.unwrap().id, ObjectId(o));
        }
        assert_eq!(sub.next().await, Err(Closed::Finished));
        assert!(group.next_subgroup().await.is_none());
    }
    // The slow consumer still gets every group, in order.
    for g in 0..3u64 {
        assert_eq!(slow.next_group().await.unwrap().id(), GroupId(g));
    }
    assert_eq!(slow.skipped(), 0);
    assert_eq!(t.largest(), Some(Location::new(2, 2)));
}

#[tokio::test]
async fn a_consumer_that_falls_behind_skips() {
    let t = track(2);
    let mut c = t.consume();
    for g in 0..5u64 {
        t.write_group(g, [Object::new(0, "x")]).unwrap();
    }
    // Only groups 3 and 4 are held: the consumer skips 0..=2 and says so.
    assert_eq!(c.next_group().await.unwrap().id(), GroupId(3));
    assert_eq!(c.skipped(), 3);
    assert_eq!(c.next_group().await.unwrap().id(), GroupId(4));
    t.end(TrackEnd::Ended);
    assert_eq!(c.next_group().await.unwrap_err(), TrackEnd::Ended);
}

#[tokio::test]
async fn byte_limit_drops_old_groups() {
    let t = TrackProducer::with_limits(
        TrackInfo::new(FullTrackName::new(TrackNamespace::new(["t"]).unwrap(), "x")),
        100,
        2_500,
    );
    for g in 0..10u64 {
        t.write_group(g, [Object::new(0, vec![0u8; 1000])]).unwrap();
    }
    // Groups are dropped when a new one starts and the held bytes exceed the limit.
    assert!(t.cached_bytes() <= 3_000, "{}", t.cached_bytes());
    let held: Vec<u64> = t.consume().cached_groups().iter().map(|g| g.id().0).collect();
    assert_eq!(held.last(), Some(&9));
    assert!(held.len() <= 3, "{held:?}");
}

#[tokio::test]
async fn late_joiner_starts_at_latest_group() {
    let t = track(8);
    for g in 0..3u64 {
        t.write_group(g, [Object::new(0, "x")]).unwrap();
    }
    let mut late = t.consume();
    assert_eq!(late.next_group().await.unwrap().id(), GroupId(2));
    assert!(t.create_group(2).is_err(), "a group id is used once");
}

#[tokio::test]
async fn groups_are_accepted_in_any_order_within_the_window() {
    let t = track(3);
    let mut c = t.consume();
    t.write_group(1, [Object::new(0, "b")]).unwrap();
    t.write_group(0, [Object::new(0, "a")]).unwrap(); // raced behind group 1
    // Every group reaches the consumer, in arrival order.
    assert_eq!(c.next_group().await.unwrap().id(), GroupId(1));
    assert_eq!(c.next_group().await.unwrap().id(), GroupId(0));
    assert_eq!(t.largest(), Some(Location::new(1, 0)));
    t.write_group(5, [Object::new(0, "c")]).unwrap();
    // FETCH sees the cache by group id.
    let ids: Vec<u64> = t.consume().cached_groups().iter().map(|g| g.id().0).collect();
    assert_eq!(ids, [0, 1, 5]);
    // The window is full: a group older than all held is too late, a gap inside it is not.
    assert!(t.create_group(0).is_err());
    t.write_group(3, [Object::new(0, "d")]).unwrap();
    assert!(t.create_group(3).is_err(), "a group id is used once");
}

#[tokio::test]
async fn live_readers_move_on_while_forwarders_wait_for_late_subgroups() {
    let t = track(4);
    let g0 = t.create_group(0).unwrap();
    let _s0 = g0.create_subgroup(0, 1);
    let mut live = g0.consume();
    let mut forward = g0.consume();
    let _g1 = t.create_group(1).unwrap();
    assert_eq!(live.next_subgroup().await.unwrap().id(), SubgroupId(0));
    assert_eq!(forward.next_subgroup_to_end().await.unwrap().id(), SubgroupId(0));
    // Group 1 has started: a live reader moves on at once ...
    assert!(live.next_subgroup().await.is_none());
    // ... while a forwarder still gets subgroup 7 of group 0, which arrives late.
    let late = tokio::spawn(async move { forward.next_subgroup_to_end().await.map(|s| s.id()) });
    tokio::task::yield_now().await;
    let _s7 = g0.create_subgroup(7, 1);
    assert_eq!(late.await.unwrap(), Some(SubgroupId(7)));
    // Leaving the window ends the wait.
    let mut forward = g0.consume();
    for g in 2..6u64 {
        t.write_group(g, [Object::new(0, "x")]).unwrap();
    }
    while forward.next_subgroup_to_end().await.is_some() {}
}

#[tokio::test]
async fn a_new_group_with_its_first_subgroup_is_never_seen_empty() {
    let t = track(4);
    t.write_group(1, [Object::new(0, "b")]).unwrap();
    let mut c = t.consume_from_start();
    let mut g = t.new_group(0);
    let _s = g.create_subgroup(0, 1);
    t.insert_group(&mut g).unwrap();
    let _ = c.next_group().await.unwrap();
    // Group 0 is older than group 1, yet a live reader finds its subgroup.
    let mut g0 = c.next_group().await.unwrap();
    assert_eq!(g0.id(), GroupId(0));
    assert!(g0.next_subgroup().await.is_some());
}

#[tokio::test]
async fn objects_must_increase_and_drop_resets() {
    let t = track(2);
    let g = t.create_group(0).unwrap();
    let s = g.create_subgroup(0, 1);
    let mut c = s.consume();
    s.write(Object::new(1, "a")).unwrap();
    assert!(s.write(Object::new(1, "b")).is_err());
    drop(s);
    assert_eq!(c.next().await.unwrap().id, ObjectId(1));
    assert_eq!(c.next().await, Err(Closed::Reset(0)));
}

/// A subgroup remembers when it was closed: a relay's SUBGROUP_DELIVERY_TIMEOUT runs from the upstream FIN, not
/// from whenever the relay gets to write its own.
#[tokio::test(start_paused = true)]
async fn a_subgroup_knows_when_it_was_finished() {
    let t = track(4);
    let group = t.create_group(0).unwrap();
    let sg = group.create_subgroup(0, 0);
    let reader = sg.consume();
    sg.write(Object::new(0, "x")).unwrap();
    assert_eq!(reader.closed_at(), None);
    sg.finish();
    let finished = tokio::time::Instant::now();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert_eq!(reader.closed_at(), Some(finished));
}

/// A subgroup tells its first and last object ids without copying its objects.
#[test]
fn a_subgroup_knows_its_first_and_last_object() {
    let t = track(4);
    let group = t.create_group(0).unwrap();
    let sg = group.create_subgroup(0, 0);
    let reader = sg.consume();
    assert_eq!((reader.first_id(), reader.last_id()), (None, None));
    for id in [2, 3, 7] {
        sg.write(Object::new(id, "x")).unwrap();
    }
    assert_eq!((reader.first_id(), reader.last_id()), (Some(ObjectId(2)), Some(ObjectId(7))));
}
