//! The relay's copy of a track, fed by every publisher of it.
//!
//! "Relays MUST send SUBSCRIBE messages to all matching publishers" (draft-19 § Relays): each upstream
//! subscription (and each PUBLISHed copy of the track) is a source; their groups are copied into one track as
//! they arrive, the first copy of a group wins and later copies of it are skipped, so subscribers see each group
//! once. The track ends when its last source ends: at once if the publisher ended it, or after a grace period if
//! the source was lost (a relay or publisher died), so that a publisher reconnecting elsewhere in the cluster
//! takes over the same track and its subscribers carry on from the next group.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use moq_transport::{
    Closed, GroupConsumer, SubgroupConsumer, SubgroupProducer, TrackConsumer, TrackEnd, TrackProducer,
};

/// How a source found malformed ends.
const MALFORMED: TrackEnd = TrackEnd::Error(moq_transport::wire::codes::PublishDoneCode::MalformedTrack.to_u64());

/// How long an ended source's last groups may take to be copied before the merged track ends without them.
const COPY_DRAIN: Duration = Duration::from_secs(2);

/// One track fed by any number of sources.
#[derive(Debug)]
pub(crate) struct Merged {
    track: TrackProducer,
    /// Sources still feeding; the track ends when the last one does.
    live: Mutex<usize>,
    /// How long the track waits for a new source after the last one was lost.
    grace: Duration,
}

impl Merged {
    /// A merged track writing into `track` (empty, not fed yet), waiting `grace` for a new source when the last
    /// one is lost.
    pub(crate) fn new(track: TrackProducer, grace: Duration) -> Arc<Merged> {
        Arc::new(Merged { track, live: Mutex::new(0), grace })
    }

    /// The track subscribers read.
    pub(crate) fn track(&self) -> &TrackProducer {
        &self.track
    }

    /// Copies `source` in from its oldest held group on, until it ends. `false` if the merged track already
    /// ended (every earlier source is gone): start a new one.
    pub(crate) fn add_source(self: &Arc<Merged>, source: TrackConsumer) -> bool {
        {
            let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
            if self.track.ended().is_some() {
                return false;
            }
            *live += 1;
        }
        if let Some(largest) = source.largest() {
            self.track.note_largest(largest);
        }
        tokio::spawn(self.clone().feed(source));
        true
    }

    async fn feed(self: Arc<Merged>, mut source: TrackConsumer) {
        let mut copies = tokio::task::JoinSet::new();
        let end = loop {
            match source.next_group().await {
                Ok(group) => {
                    while copies.try_join_next().is_some() {}
                    copies.spawn(copy_group(self.track.clone(), group));
                }
                Err(end) => break end,
            }
        };
        // The groups that arrived just before the end are still being copied: let them land before the track
        // ends (they finish as soon as the source's end reaches them). Bounded, in case one never does.
        let copied = async { while copies.join_next().await.is_some() {} };
        if tokio::time::timeout(COPY_DRAIN, copied).await.is_err() {
            copies.detach_all();
        }
        {
            let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
            *live = live.saturating_sub(1);
            if *live > 0 {
                return;
            }
            // A malformed track is not lost: it ends at once (draft-19 §Malformed Tracks: "immediately").
            if end == TrackEnd::Ended || end == MALFORMED || self.grace.is_zero() {
                return self.track.end(end);
            }
        }
        // Lost, not ended: wait for another publisher to take over.
        tokio::time::sleep(self.grace).await;
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        if *live == 0 {
            self.track.end(end);
        }
    }
}

/// Copies a group unless the track already holds one with its id (from another source) or it is too old.
async fn copy_group(track: TrackProducer, mut group: GroupConsumer) {
    let Some(first) = group.next_subgroup_to_end().await else { return };
    let mut out = track.new_group(group.id().0);
    let sub = out.create_subgroup_with(*first.info());
    if track.insert_group(&mut out).is_err() {
        return;
    }
    tokio::spawn(copy_subgroup(first, sub));
    while let Some(next) = group.next_subgroup_to_end().await {
        let sub = out.create_subgroup_with(*next.info());
        tokio::spawn(copy_subgroup(next, sub));
    }
    out.finish();
}

/// Copies objects as they arrive, and how the subgroup ended (a reset stays a reset).
async fn copy_subgroup(mut from: SubgroupConsumer, to: SubgroupProducer) {
    loop {
        match from.next().await {
            Ok(object) => {
                if to.write(object).is_err() {
                    return;
                }
            }
            Err(Closed::Finished) => return to.finish(),
            Err(Closed::Reset(code)) => return to.abort(code),
        }
    }
}

#[cfg(test)]
mod tests {
    use moq_transport::wire::namespace::{FullTrackName, TrackNamespace};
    use moq_transport::{Object, TrackInfo};
    use tokio::time::timeout;

    use super::*;

    fn track() -> TrackProducer {
        TrackProducer::new(TrackInfo::new(FullTrackName::new(TrackNamespace::from_path("m").unwrap(), "t")))
    }

    async fn read(c: &mut TrackConsumer) -> (u64, Vec<String>) {
        let mut g = timeout(Duration::from_secs(5), c.next_group()).await.unwrap().unwrap();
        let mut s = g.next_subgroup_to_end().await.unwrap();
        let mut objects = Vec::new();
        while let Ok(o) = s.next().await {
            objects.push(String::from_utf8(o.payload.to_vec()).unwrap());
        }
        (g.id().0, objects)
    }

    #[tokio::test]
    async fn groups_of_every_source_arrive_once_and_the_last_source_ends_it() {
        let (a, b) = (track(), track());
        let merged = Merged::new(track(), Duration::ZERO);
        let mut reader = merged.track().consume_from_start();
        assert!(merged.add_source(a.consume_from_start()));
        assert!(merged.add_source(b.consume_from_start()));
        a.write_group(0, [Object::new(0, "a0")]).unwrap();
        assert_eq!(read(&mut reader).await, (0, vec!["a0".to_string()]));
        b.write_group(0, [Object::new(0, "b0")]).unwrap();
        b.write_group(1, [Object::new(0, "b1"), Object::new(1, "b1.1")]).unwrap();
        assert_eq!(read(&mut reader).await, (1, vec!["b1".to_string(), "b1.1".to_string()]), "b's group 0 dropped");
        a.end(TrackEnd::Ended);
        b.write_group(2, [Object::new(0, "b2")]).unwrap();
        assert_eq!(read(&mut reader).await.0, 2, "b still feeds it after a ended");
        b.end(TrackEnd::Error(7));
        assert_eq!(timeout(Duration::from_secs(5), reader.closed()).await.unwrap(), TrackEnd::Error(7));
        assert!(!merged.add_source(track().consume()), "an ended merge takes no source");
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_source_is_replaced_within_the_grace_period() {
        let (a, b) = (track(), track());
        let merged = Merged::new(track(), Duration::from_secs(5));
        let mut reader = merged.track().consume_from_start();
        merged.add_source(a.consume_from_start());
        a.write_group(0, [Object::new(0, "a0")]).unwrap();
        assert_eq!(read(&mut reader).await.0, 0);
        a.end(TrackEnd::Error(0x3)); // its relay died
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(reader.ended(), None, "still waiting for another publisher");
        assert!(merged.add_source(b.consume_from_start()));
        b.write_group(1, [Object::new(0, "b1")]).unwrap();
        assert_eq!(read(&mut reader).await, (1, vec!["b1".to_string()]));
        b.end(TrackEnd::Error(0x3));
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert_eq!(reader.ended(), Some(TrackEnd::Error(0x3)), "nobody came within the grace period");
    }

    /// A group the source received just before it ended (a publisher's last group and its PUBLISH_DONE arrive
    /// together) is copied before the merged track ends: it was dropped when the end overtook the copy.
    #[tokio::test]
    async fn the_last_group_before_the_end_is_not_lost() {
        for _ in 0..50 {
            let a = track();
            let merged = Merged::new(track(), Duration::ZERO);
            let mut reader = merged.track().consume_from_start();
            merged.add_source(a.consume_from_start());
            a.write_group(0, [Object::new(0, "last")]).unwrap();
            a.end(TrackEnd::Ended);
            assert_eq!(read(&mut reader).await, (0, vec!["last".to_string()]));
            let end = timeout(Duration::from_secs(5), reader.next_group()).await.unwrap();
            assert_eq!(end.err(), Some(TrackEnd::Ended));
        }
    }

    #[tokio::test]
    async fn a_reset_subgroup_stays_reset() {
        let a = track();
        let merged = Merged::new(track(), Duration::ZERO);
        let mut reader = merged.track().consume_from_start();
        merged.add_source(a.consume_from_start());
        let g = a.create_group(0).unwrap();
        let s = g.create_subgroup(3, 9);
        s.write(Object::new(0, "x")).unwrap();
        s.abort(42);
        let mut got = timeout(Duration::from_secs(5), reader.next_group()).await.unwrap().unwrap();
        let mut sub = got.next_subgroup_to_end().await.unwrap();
        assert_eq!((sub.id().0, sub.priority()), (3, 9), "the subgroup's id and priority are kept");
        assert!(sub.next().await.is_ok());
        assert_eq!(sub.next().await.err(), Some(Closed::Reset(42)));
    }
}
