//! Chat rooms: every participant publishes its own track, the relay merges them into one ordered room track.
//!
//! A participant PUBLISH_NAMESPACEs `<prefix>/<channel>/users/<id>` and serves track `messages`, one group per
//! message holding one object, JSON `{"name": .., "text": ..}`. The relay subscribes to every such track, checks
//! each message (size, characters, a per-participant rate limit, the name pinned to the participant's first
//! message) and appends what passes to the room track `<prefix>/<channel>` / `room`: one group per message, group
//! id = the room's sequence number, JSON `{"seq", "id", "name", "text", "ts"}` (`ts` in Unix ms). The room keeps
//! its last `history` messages, so a late joiner FETCHes them. One relay orders the room; rooms are per relay.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use moq_transport::wire::namespace::{FullTrackName, TrackNamespace};
use moq_transport::{NamespaceEvent, Object, Origin, TrackInfo, TrackProducer};
use tokio::time::Instant;

use crate::Metrics;

/// The room track's name inside a channel's namespace.
pub const ROOM_TRACK: &str = "room";
/// A participant's track name.
pub const MESSAGES_TRACK: &str = "messages";

/// Limits of the chat rooms.
#[derive(Debug, Clone)]
pub struct ChatLimits {
    /// Messages a room keeps for late joiners.
    pub history: usize,
    /// Messages a participant may send at once before the rate limit applies.
    pub burst: u32,
    /// Messages per second a participant may send in the long run.
    pub per_second: f64,
    /// Longest message text, in bytes (UTF-8).
    pub max_text: usize,
    /// Longest display name, in characters.
    pub max_name: usize,
    /// Rooms held at once; a room with nobody in it for `idle` is dropped.
    pub max_rooms: usize,
    /// How long an empty room (no participant, no reader) is kept.
    pub idle: Duration,
}

impl Default for ChatLimits {
    fn default() -> Self {
        ChatLimits {
            history: 100,
            burst: 5,
            per_second: 1.0,
            max_text: 500,
            max_name: 32,
            max_rooms: 1024,
            idle: Duration::from_secs(600),
        }
    }
}

/// Why a message was not added to its room.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    #[error("not a JSON object with string fields name and text")]
    Malformed,
    #[error("empty or too long text")]
    Text,
    #[error("empty or too long name, or control characters in it")]
    Name,
    #[error("rate limit")]
    RateLimited,
}

struct Room {
    track: TrackProducer,
    next_seq: u64,
    participants: usize,
    last_activity: Instant,
}

/// The chat rooms under one namespace prefix.
pub struct Chat {
    prefix: TrackNamespace,
    limits: ChatLimits,
    origin: Origin,
    metrics: Arc<Metrics>,
    rooms: Mutex<HashMap<TrackNamespace, Room>>,
    participants: Mutex<HashSet<TrackNamespace>>,
}

impl Chat {
    /// Rooms under `prefix` in `origin`; call [`Chat::run`] to follow participants.
    pub fn new(prefix: TrackNamespace, limits: ChatLimits, origin: Origin, metrics: Arc<Metrics>) -> Arc<Chat> {
        Arc::new(Chat { prefix, limits, origin, metrics, rooms: Mutex::default(), participants: Mutex::default() })
    }

    /// The room track for a SUBSCRIBE or FETCH of `name`, created on first use; `None` if `name` is not a room.
    pub fn room_track(&self, name: &FullTrackName) -> Option<TrackProducer> {
        if name.name.as_bytes() != ROOM_TRACK.as_bytes() || name.namespace.len() != self.prefix.len() + 1 {
            return None;
        }
        if !name.namespace.starts_with(&self.prefix) {
            return None;
        }
        self.room(&name.namespace)
    }

    /// The room track of channel namespace `ns`, created if new (`None` beyond the room limit).
    fn room(&self, ns: &TrackNamespace) -> Option<TrackProducer> {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(room) = rooms.get(ns) {
            return Some(room.track.clone());
        }
        if rooms.len() >= self.limits.max_rooms {
            tracing::warn!(room = %ns, "too many chat rooms");
            return None;
        }
        let name = FullTrackName::new(ns.clone(), ROOM_TRACK);
        let track = TrackProducer::with_window(TrackInfo::new(name), self.limits.history);
        rooms.insert(
            ns.clone(),
            Room { track: track.clone(), next_seq: 0, participants: 0, last_activity: Instant::now() },
        );
        self.origin.publish_track(track.clone());
        self.origin.publish_namespace(ns.clone());
        tracing::info!(room = %ns, "chat room opened");
        Some(track)
    }

    /// The channel namespace and participant id of a participant namespace `<prefix>/<channel>/users/<id>`.
    fn participant_of(&self, ns: &TrackNamespace) -> Option<(TrackNamespace, String)> {
        let n = self.prefix.len();
        if ns.len() != n + 3 || !ns.starts_with(&self.prefix) || ns.fields()[n + 1].as_ref() != b"users" {
            return None;
        }
        let id = String::from_utf8(ns.fields()[n + 2].to_vec()).ok()?;
        let channel = TrackNamespace::new(ns.fields()[..=n].iter().cloned()).ok()?;
        Some((channel, id))
    }

    /// Follows participants as they come and go, and drops idle rooms, until the origin goes away.
    pub async fn run(self: Arc<Chat>) {
        let mut events = self.origin.watch();
        for ns in self.origin.namespaces(&self.prefix) {
            self.clone().join(ns);
        }
        let mut sweep = tokio::time::interval(Duration::from_secs(30).min(self.limits.idle));
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Ok(NamespaceEvent::Added(ns)) => self.clone().join(ns),
                    Ok(NamespaceEvent::Removed(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        for ns in self.origin.namespaces(&self.prefix) {
                            self.clone().join(ns);
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
                _ = sweep.tick() => self.sweep(),
            }
        }
    }

    /// Starts reading a participant's messages, once per namespace.
    fn join(self: Arc<Chat>, ns: TrackNamespace) {
        let Some((room_ns, id)) = self.participant_of(&ns) else { return };
        if !self.participants.lock().unwrap_or_else(|e| e.into_inner()).insert(ns.clone()) {
            return;
        }
        tokio::spawn(async move {
            if self.room(&room_ns).is_some() {
                self.with_room(&room_ns, |r| r.participants += 1);
                self.read_participant(&ns, &room_ns, &id).await;
                self.with_room(&room_ns, |r| {
                    r.participants = r.participants.saturating_sub(1);
                    r.last_activity = Instant::now();
                });
            }
            self.participants.lock().unwrap_or_else(|e| e.into_inner()).remove(&ns);
        });
    }

    fn with_room(&self, ns: &TrackNamespace, f: impl FnOnce(&mut Room)) {
        if let Some(room) = self.rooms.lock().unwrap_or_else(|e| e.into_inner()).get_mut(ns) {
            f(room);
        }
    }

    async fn read_participant(&self, ns: &TrackNamespace, room: &TrackNamespace, id: &str) {
        let name = FullTrackName::new(ns.clone(), MESSAGES_TRACK);
        let Some(track) = self.origin.resolve(&name).await else {
            tracing::debug!(participant = %ns, "no messages track");
            return;
        };
        tracing::info!(participant = %ns, "chat participant joined");
        let mut messages = track.consume_from_start();
        let mut limiter = RateLimiter::new(self.limits.burst, self.limits.per_second);
        let mut pinned: Option<String> = None;
        while let Ok(mut group) = messages.next_group().await {
            let Some(mut subgroup) = group.next_subgroup().await else { continue };
            let Ok(Ok(object)) = tokio::time::timeout(Duration::from_secs(5), subgroup.next()).await else {
                continue;
            };
            match self.check(&object.payload, &mut limiter, &mut pinned) {
                Ok((name, text)) => self.append(room, id, &name, &text),
                Err(why) => {
                    self.metrics.chat_rejected.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(participant = %ns, %why, "chat message rejected");
                }
            }
        }
        tracing::info!(participant = %ns, "chat participant left");
    }

    /// The name and text of an acceptable message.
    fn check(
        &self,
        payload: &[u8],
        limiter: &mut RateLimiter,
        pinned: &mut Option<String>,
    ) -> Result<(String, String), Rejected> {
        #[derive(serde::Deserialize)]
        struct Post {
            name: String,
            text: String,
        }
        if payload.len() > 4 * (self.limits.max_text + self.limits.max_name) {
            return Err(Rejected::Text);
        }
        let post: Post = serde_json::from_slice(payload).map_err(|_| Rejected::Malformed)?;
        let text: String = post.text.trim().chars().filter(|c| *c == '\n' || !c.is_control()).collect();
        if text.is_empty() || text.len() > self.limits.max_text {
            return Err(Rejected::Text);
        }
        let name = post.name.trim();
        if pinned.is_none()
            && (name.is_empty() || name.chars().count() > self.limits.max_name || name.chars().any(char::is_control))
        {
            return Err(Rejected::Name);
        }
        if !limiter.allow(Instant::now()) {
            return Err(Rejected::RateLimited);
        }
        let name = pinned.get_or_insert_with(|| name.to_string()).clone();
        Ok((name, text))
    }

    fn append(&self, room: &TrackNamespace, id: &str, name: &str, text: &str) {
        let ts = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        let Some(r) = rooms.get_mut(room) else { return };
        let seq = r.next_seq;
        let body = serde_json::json!({ "seq": seq, "id": id, "name": name, "text": text, "ts": ts });
        if r.track.write_group(seq, [Object::new(0, body.to_string())]).is_ok() {
            r.next_seq += 1;
            r.last_activity = Instant::now();
            self.metrics.chat_messages.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Drops rooms nobody has been in (participant or reader) for the idle time.
    fn sweep(&self) {
        let now = Instant::now();
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        rooms.retain(|ns, r| {
            if r.participants > 0 || r.track.has_consumers() {
                r.last_activity = now;
                return true;
            }
            if now.duration_since(r.last_activity) < self.limits.idle {
                return true;
            }
            tracing::info!(room = %ns, "chat room closed (idle)");
            self.origin.remove_track(&r.track.info().name);
            self.origin.remove_namespace(ns);
            false
        });
    }

    /// Rooms held now.
    pub fn rooms(&self) -> usize {
        self.rooms.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// A token bucket: `burst` messages at once, refilled at `per_second`.
#[derive(Debug)]
struct RateLimiter {
    tokens: f64,
    burst: f64,
    per_second: f64,
    at: Option<Instant>,
}

impl RateLimiter {
    fn new(burst: u32, per_second: f64) -> RateLimiter {
        RateLimiter { tokens: burst as f64, burst: burst as f64, per_second, at: None }
    }

    fn allow(&mut self, now: Instant) -> bool {
        if let Some(at) = self.at {
            self.tokens = (self.tokens + now.duration_since(at).as_secs_f64() * self.per_second).min(self.burst);
        }
        self.at = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat() -> Arc<Chat> {
        let prefix = TrackNamespace::from_path("chat").unwrap();
        Chat::new(prefix, ChatLimits::default(), Origin::new(), Arc::default())
    }

    #[test]
    fn the_bucket_allows_a_burst_then_the_rate() {
        let start = Instant::now();
        let mut l = RateLimiter::new(5, 1.0);
        assert_eq!((0..8).filter(|_| l.allow(start)).count(), 5);
        assert!(!l.allow(start + Duration::from_millis(500)));
        assert!(l.allow(start + Duration::from_millis(1600)));
        assert!(!l.allow(start + Duration::from_millis(1700)));
        assert_eq!((0..8).filter(|_| l.allow(start + Duration::from_secs(100))).count(), 5, "refills to the burst");
    }

    #[tokio::test]
    async fn messages_are_checked_and_names_pinned() {
        let chat = chat();
        let mut l = RateLimiter::new(100, 1.0);
        let mut pinned = None;
        let ok = chat.check(br#"{"name":" ann ","text":" hi\u0007 there "}"#, &mut l, &mut pinned);
        assert_eq!(ok, Ok(("ann".into(), "hi there".into())), "trimmed, control characters dropped");
        let renamed = chat.check(br#"{"name":"bob","text":"x"}"#, &mut l, &mut pinned);
        assert_eq!(renamed, Ok(("ann".into(), "x".into())), "the first name stays");
        let mut fresh = None;
        assert_eq!(chat.check(b"not json", &mut l, &mut fresh), Err(Rejected::Malformed));
        assert_eq!(chat.check(br#"{"name":"a"}"#, &mut l, &mut fresh), Err(Rejected::Malformed));
        assert_eq!(chat.check(br#"{"name":"a","text":"  "}"#, &mut l, &mut fresh), Err(Rejected::Text));
        let long = format!(r#"{{"name":"a","text":"{}"}}"#, "x".repeat(501));
        assert_eq!(chat.check(long.as_bytes(), &mut l, &mut fresh), Err(Rejected::Text));
        let long_name = format!(r#"{{"name":"{}","text":"x"}}"#, "n".repeat(33));
        assert_eq!(chat.check(long_name.as_bytes(), &mut l, &mut fresh), Err(Rejected::Name));
        assert_eq!(chat.check(br#"{"name":"a\nb","text":"x"}"#, &mut l, &mut fresh), Err(Rejected::Name));
        assert_eq!(fresh, None, "nothing pinned by rejected messages");
    }

    #[tokio::test]
    async fn rooms_exist_only_at_the_channel_level_and_are_bounded() {
        let chat = chat();
        let room = |p: &str, t: &str| FullTrackName::new(TrackNamespace::from_path(p).unwrap(), t);
        assert!(chat.room_track(&room("chat/tv", "room")).is_some());
        assert!(chat.room_track(&room("chat/tv", "other")).is_none());
        assert!(chat.room_track(&room("chat", "room")).is_none());
        assert!(chat.room_track(&room("chat/tv/users", "room")).is_none());
        assert!(chat.room_track(&room("live/tv", "room")).is_none());
        let a = chat.room_track(&room("chat/tv", "room")).unwrap();
        assert!(a.is_same(&chat.room_track(&room("chat/tv", "room")).unwrap()), "one room per channel");
        assert!(chat.origin.track(&room("chat/tv", "room")).is_some(), "published in the origin");
        let small = Chat::new(
            TrackNamespace::from_path("chat").unwrap(),
            ChatLimits { max_rooms: 2, ..Default::default() },
            Origin::new(),
            Arc::default(),
        );
        assert!(small.room_track(&room("chat/a", "room")).is_some());
        assert!(small.room_track(&room("chat/b", "room")).is_some());
        assert!(small.room_track(&room("chat/c", "room")).is_none(), "over the cap");
    }

    #[tokio::test(start_paused = true)]
    async fn idle_rooms_are_dropped() {
        let chat = chat();
        let name = FullTrackName::new(TrackNamespace::from_path("chat/tv").unwrap(), "room");
        let reader = chat.room_track(&name).unwrap().consume();
        tokio::time::advance(Duration::from_secs(700)).await;
        chat.sweep();
        assert_eq!(chat.rooms(), 1, "a reader keeps it");
        drop(reader);
        chat.sweep();
        assert_eq!(chat.rooms(), 1, "idle only from now");
        tokio::time::advance(Duration::from_secs(601)).await;
        chat.sweep();
        assert_eq!(chat.rooms(), 0);
        assert!(chat.origin.track(&name).is_none());
    }

    /// Participants' messages end up in one room, in sequence, with the relay's ids; a flood is cut to the burst.
    #[tokio::test]
    async fn participants_are_merged_into_the_room() {
        let chat = chat();
        let origin = chat.origin.clone();
        let user = |id: &str| {
            let ns = TrackNamespace::from_path(&format!("chat/tv/users/{id}")).unwrap();
            let track = TrackProducer::new(TrackInfo::new(FullTrackName::new(ns.clone(), MESSAGES_TRACK)));
            origin.publish_track(track.clone());
            (ns, track)
        };
        let (ann_ns, ann) = user("a1");
        let (bob_ns, bob) = user("b2");
        tokio::spawn(chat.clone().run());
        tokio::task::yield_now().await;
        let room = chat.room_track(&FullTrackName::new(TrackNamespace::from_path("chat/tv").unwrap(), "room")).unwrap();
        let mut reader = room.consume_from_start();
        origin.publish_namespace(ann_ns);
        origin.publish_namespace(bob_ns);
        let post = |name: &str, text: &str| Object::new(0, format!(r#"{{"name":"{name}","text":"{text}"}}"#));
        let mut seen = Vec::new();
        let mut read = async |n: usize, seen: &mut Vec<serde_json::Value>| {
            for _ in 0..n {
                let mut g = tokio::time::timeout(Duration::from_secs(5), reader.next_group()).await.unwrap().unwrap();
                let mut s = g.next_subgroup().await.unwrap();
                let o = s.next().await.unwrap();
                let v: serde_json::Value = serde_json::from_slice(&o.payload).unwrap();
                assert_eq!(v["seq"], g.id().0);
                seen.push(v);
            }
        };
        // Wait for both participants to be followed before posting.
        for _ in 0..200 {
            if ann.has_consumers() && bob.has_consumers() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        ann.write_group(0, [post("ann", "one")]).unwrap();
        read(1, &mut seen).await;
        bob.write_group(0, [post("bob", "two")]).unwrap();
        read(1, &mut seen).await;
        for i in 1..20 {
            bob.write_group(i, [post("bob", "flood")]).unwrap();
        }
        ann.write_group(1, [post("ann", "three")]).unwrap();
        read(5, &mut seen).await;
        let texts: Vec<_> = seen.iter().map(|v| (v["id"].as_str().unwrap(), v["text"].as_str().unwrap())).collect();
        assert_eq!(texts[..2], [("a1", "one"), ("b2", "two")]);
        let floods = texts.iter().filter(|t| t.1 == "flood").count();
        assert_eq!(floods, 4, "bob's burst of 5 minus the one he used: {texts:?}");
        assert!(texts.contains(&("a1", "three")), "ann is not affected by bob's flood: {texts:?}");
        assert!(tokio::time::timeout(Duration::from_millis(300), reader.next_group()).await.is_err(), "no more");
        assert_eq!(chat.metrics.chat_messages.load(Ordering::Relaxed), 7);
        assert!(chat.metrics.chat_rejected.load(Ordering::Relaxed) > 0);
    }
}
