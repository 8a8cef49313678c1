//! Chat rooms: every participant publishes its own track, the relay checks each post and merges them into one
//! ordered room track.
//!
//! A participant PUBLISH_NAMESPACEs `<prefix>/<channel>/users/<pid>` and serves track `messages`, one group per
//! post holding one object: `{"name", "text"}`, or from the channel's streamer a moderation request
//! `{"name", "mod": "remove", "seq"}` / `{"name", "mod": "mute", "id"}`. The relay binds each participant to the
//! session that announced it (one participant per session and room) and gives it an id of its own (`s<n>`, the
//! session's): rate limits, the pinned name and mutes follow that id, not the page's `<pid>`. Names starting with
//! "streamer" and moderation need the channel's publish grant (a token granting publish on `live/<channel>`).
//!
//! What passes goes to the room track `<prefix>/<channel>` / `room`: one group per entry, group id = the room's
//! sequence number, JSON `{"seq", "id", "name", "text", "ts"}` (plus `"role": "streamer"`), or
//! `{"seq", "kind": "remove", "target", "ts"}`. The room keeps its last `history` entries for late joiners. Each
//! participant can read the relay's `notices` track in its own namespace: `{"you": id}` first, then
//! `{"refused": reason, "post": group}` for every post refused, so the page can say why. One relay orders a
//! room; rooms are per relay.

mod post;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use moq_transport::wire::namespace::{FullTrackName, TrackNamespace};
use moq_transport::{NamespaceEvent, Object, Origin, TrackInfo, TrackProducer};
use tokio::time::Instant;

pub use post::{Post, RateLimiter, Rejected, reserved};

use crate::Metrics;

/// The room track's name inside a channel's namespace.
pub const ROOM_TRACK: &str = "room";
/// A participant's track name.
pub const MESSAGES_TRACK: &str = "messages";
/// The relay's track of notices to one participant, in the participant's namespace.
pub const NOTICES_TRACK: &str = "notices";

/// Limits of the chat rooms (relay flags `--chat-*`).
#[derive(Debug, Clone)]
pub struct ChatLimits {
    /// Messages a room keeps for late joiners.
    pub history: usize,
    /// Posts a session may send at once before its rate applies.
    pub burst: u32,
    /// Posts per second a session may send in the long run.
    pub per_second: f64,
    /// Posts all the sessions of one IP address may send at once.
    pub address_burst: u32,
    /// Posts per second all the sessions of one IP address may send in the long run.
    pub address_per_second: f64,
    /// Longest message text, in bytes (UTF-8).
    pub max_text: usize,
    /// Longest display name, in characters.
    pub max_name: usize,
    /// Rooms held at once; a room with nobody in it for `idle` is dropped.
    pub max_rooms: usize,
    /// Participants followed at once over all rooms.
    pub max_participants: usize,
    /// How long an empty room (no participant, no reader) is kept.
    pub idle: Duration,
    /// How long a mute lasts.
    pub mute: Duration,
}

impl Default for ChatLimits {
    fn default() -> Self {
        ChatLimits {
            history: 100,
            burst: 5,
            per_second: 1.0,
            address_burst: 20,
            address_per_second: 5.0,
            max_text: 500,
            max_name: 32,
            max_rooms: 1024,
            max_participants: 10_000,
            idle: Duration::from_secs(600),
            mute: Duration::from_secs(600),
        }
    }
}

/// Who announced a participant namespace: told by the relay's session loop before the namespace is published.
#[derive(Clone)]
pub struct Owner {
    /// The relay's id of the session.
    pub session: u64,
    /// The session's IP address.
    pub ip: IpAddr,
    /// Whether the session may publish this broadcast namespace (`live/<channel>`): the streamer's grant.
    pub publishes: Arc<dyn Fn(&TrackNamespace) -> bool + Send + Sync>,
}

impl std::fmt::Debug for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Owner").field("session", &self.session).field("ip", &self.ip).finish()
    }
}

impl Owner {
    /// The participant id the relay shows for this session.
    pub fn id(&self) -> String {
        format!("s{}", self.session)
    }
}

struct Room {
    track: TrackProducer,
    next_seq: u64,
    participants: usize,
    last_activity: Instant,
    /// Muted participant ids, until when.
    muted: HashMap<String, Instant>,
}

/// A session's chat state: its rate limit, its name per room, the rooms it is in.
struct Poster {
    limiter: RateLimiter,
    names: HashMap<TrackNamespace, String>,
    rooms: HashSet<TrackNamespace>,
}

#[derive(Default)]
struct State {
    rooms: HashMap<TrackNamespace, Room>,
    /// Participant namespaces being followed.
    participants: HashSet<TrackNamespace>,
    owners: HashMap<TrackNamespace, Owner>,
    posters: HashMap<u64, Poster>,
    addresses: HashMap<IpAddr, RateLimiter>,
    notices: HashMap<TrackNamespace, TrackProducer>,
}

/// The chat rooms under one namespace prefix.
pub struct Chat {
    prefix: TrackNamespace,
    /// Where broadcasts live (`live`): the streamer of `<prefix>/<channel>` publishes `<broadcasts>/<channel>`.
    broadcasts: TrackNamespace,
    limits: ChatLimits,
    origin: Origin,
    metrics: Arc<Metrics>,
    state: Mutex<State>,
}

impl Chat {
    /// Rooms under `prefix` in `origin`; call [`Chat::run`] to follow participants.
    pub fn new(prefix: TrackNamespace, limits: ChatLimits, origin: Origin, metrics: Arc<Metrics>) -> Arc<Chat> {
        let broadcasts = TrackNamespace::from_path("live").unwrap_or_default();
        Arc::new(Chat { prefix, broadcasts, limits, origin, metrics, state: Mutex::default() })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the rooms and participants gauges from `state`.
    fn gauges(&self, state: &State) {
        self.metrics.chat_rooms.store(state.rooms.len() as u64, Ordering::Relaxed);
        self.metrics.chat_participants.store(state.participants.len() as u64, Ordering::Relaxed);
    }

    /// The relay's own track for a SUBSCRIBE or FETCH of `name` (a room, or a participant's notices), created
    /// on first use; `None` if `name` is neither.
    pub fn room_track(&self, name: &FullTrackName) -> Option<TrackProducer> {
        if name.name.as_bytes() == NOTICES_TRACK.as_bytes() && self.participant_of(&name.namespace).is_some() {
            return self.notices(&name.namespace);
        }
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
        let mut state = self.state();
        if let Some(room) = state.rooms.get(ns) {
            return Some(room.track.clone());
        }
        if state.rooms.len() >= self.limits.max_rooms {
            tracing::warn!(room = %ns, "too many chat rooms");
            return None;
        }
        let name = FullTrackName::new(ns.clone(), ROOM_TRACK);
        let track = TrackProducer::with_window(TrackInfo::new(name), self.limits.history);
        let room = Room {
            track: track.clone(),
            next_seq: 0,
            participants: 0,
            last_activity: Instant::now(),
            muted: HashMap::new(),
        };
        state.rooms.insert(ns.clone(), room);
        self.gauges(&state);
        drop(state);
        self.origin.publish_track(track.clone());
        Some(track)
    }

    /// The notices track of participant namespace `ns`, created if new (`None` beyond the participant limit).
    fn notices(&self, ns: &TrackNamespace) -> Option<TrackProducer> {
        let mut state = self.state();
        if let Some(t) = state.notices.get(ns) {
            return Some(t.clone());
        }
        if state.notices.len() >= self.limits.max_participants {
            return None;
        }
        let track = TrackProducer::with_window(TrackInfo::new(FullTrackName::new(ns.clone(), NOTICES_TRACK)), 16);
        state.notices.insert(ns.clone(), track.clone());
        Some(track)
    }

    /// Tells the participant behind `ns` something (a JSON object).
    fn notify(&self, ns: &TrackNamespace, body: serde_json::Value) {
        if let Some(track) = self.notices(ns) {
            let next = track.largest().map_or(0, |l| l.group.0 + 1);
            let _ = track.write_group(next, [Object::new(0, body.to_string())]);
        }
    }

    /// The channel namespace and page-chosen id of a participant namespace `<prefix>/<channel>/users/<pid>`.
    fn participant_of(&self, ns: &TrackNamespace) -> Option<(TrackNamespace, String)> {
        let n = self.prefix.len();
        if ns.len() != n + 3 || !ns.starts_with(&self.prefix) || ns.fields()[n + 1].as_ref() != b"users" {
            return None;
        }
        let id = String::from_utf8(ns.fields()[n + 2].to_vec()).ok()?;
        let channel = TrackNamespace::new(ns.fields()[..=n].iter().cloned()).ok()?;
        Some((channel, id))
    }

    /// Whether `ns` is a participant namespace of these rooms.
    pub fn is_participant(&self, ns: &TrackNamespace) -> bool {
        self.participant_of(ns).is_some()
    }

    /// Records who announced participant namespace `ns` (before it is published in the origin). Namespaces
    /// without an owner (learnt from another relay) are not followed.
    pub fn set_owner(&self, ns: &TrackNamespace, owner: Owner) {
        if self.is_participant(ns) {
            self.state().owners.insert(ns.clone(), owner);
        }
    }

    /// Forgets what a session that ended had (its rate limit, names, owned namespaces).
    pub fn session_ended(&self, session: u64) {
        let mut state = self.state();
        state.posters.remove(&session);
        state.owners.retain(|_, o| o.session != session);
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

    /// Starts reading a participant's messages, once per namespace and one participant per session and room.
    fn join(self: Arc<Chat>, ns: TrackNamespace) {
        let Some((room_ns, _)) = self.participant_of(&ns) else { return };
        let owner = {
            let mut state = self.state();
            let Some(owner) = state.owners.get(&ns).cloned() else { return };
            if state.participants.len() >= self.limits.max_participants || !state.participants.insert(ns.clone()) {
                return;
            }
            let limits = &self.limits;
            let poster = state.posters.entry(owner.session).or_insert_with(|| Poster {
                limiter: RateLimiter::new(limits.burst, limits.per_second),
                names: HashMap::new(),
                rooms: HashSet::new(),
            });
            if !poster.rooms.insert(room_ns.clone()) {
                state.participants.remove(&ns);
                drop(state);
                self.refuse(&ns, None, Rejected::SecondParticipant);
                return;
            }
            self.gauges(&state);
            owner
        };
        self.notify(&ns, serde_json::json!({ "you": owner.id() }));
        tokio::spawn(async move {
            if self.room(&room_ns).is_some() {
                self.with_room(&room_ns, |r| r.participants += 1);
                self.read_participant(&ns, &room_ns, &owner).await;
                self.with_room(&room_ns, |r| {
                    r.participants = r.participants.saturating_sub(1);
                    r.last_activity = Instant::now();
                });
            }
            let mut state = self.state();
            state.participants.remove(&ns);
            state.notices.remove(&ns);
            if let Some(p) = state.posters.get_mut(&owner.session) {
                p.rooms.remove(&room_ns);
            }
            self.gauges(&state);
        });
    }

    fn with_room(&self, ns: &TrackNamespace, f: impl FnOnce(&mut Room)) {
        if let Some(room) = self.state().rooms.get_mut(ns) {
            f(room);
        }
    }

    async fn read_participant(&self, ns: &TrackNamespace, room: &TrackNamespace, owner: &Owner) {
        let name = FullTrackName::new(ns.clone(), MESSAGES_TRACK);
        let Some(track) = self.origin.resolve(&name).await else {
            tracing::debug!(participant = %ns, "no messages track");
            return;
        };
        tracing::info!(participant = %ns, id = owner.id(), "chat participant joined");
        let mut messages = track.consume_from_start();
        while let Ok(mut group) = messages.next_group().await {
            let Some(mut subgroup) = group.next_subgroup().await else { continue };
            let Ok(Ok(object)) = tokio::time::timeout(Duration::from_secs(5), subgroup.next()).await else {
                continue;
            };
            if let Err(why) = self.accept(&object.payload, room, owner) {
                self.refuse(ns, Some(group.id().0), why);
            }
        }
        tracing::info!(participant = %ns, "chat participant left");
    }

    fn refuse(&self, ns: &TrackNamespace, post: Option<u64>, why: Rejected) {
        let counter = match why {
            Rejected::RateLimited => &self.metrics.chat_rate_limited,
            _ => &self.metrics.chat_rejected,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(participant = %ns, %why, "chat post refused");
        self.notify(ns, serde_json::json!({ "refused": why.to_string(), "post": post }));
    }

    /// Checks a post of `owner` in `room` and adds what it asks for to the room.
    fn accept(&self, payload: &[u8], room: &TrackNamespace, owner: &Owner) -> Result<(), Rejected> {
        let post = Post::parse(payload, &self.limits)?;
        let streamer = self.streams(room, owner);
        let id = owner.id();
        let now = Instant::now();
        let mut state = self.state();
        if state.rooms.get(room).and_then(|r| r.muted.get(&id)).is_some_and(|until| *until > now) {
            return Err(Rejected::Muted);
        }
        let limits = &self.limits;
        let address = state
            .addresses
            .entry(owner.ip)
            .or_insert_with(|| RateLimiter::new(limits.address_burst, limits.address_per_second))
            .allow(now);
        let session = state.posters.get_mut(&owner.session).is_some_and(|p| p.limiter.allow(now));
        if !address || !session {
            return Err(Rejected::RateLimited);
        }
        match post {
            Post::Message { name, text } => {
                let Some(poster) = state.posters.get_mut(&owner.session) else { return Err(Rejected::Malformed) };
                if !poster.names.contains_key(room) && reserved(&name) && !streamer {
                    return Err(Rejected::Reserved);
                }
                let name = poster.names.entry(room.clone()).or_insert(name).clone();
                let mut body = serde_json::json!({ "id": id, "name": name, "text": text });
                if streamer {
                    body["role"] = "streamer".into();
                }
                Self::append(&mut state, room, body, &self.metrics);
            }
            Post::Remove { seq } if streamer => {
                Self::append(&mut state, room, serde_json::json!({ "kind": "remove", "target": seq }), &self.metrics);
            }
            Post::Mute { id: target } if streamer => {
                if let Some(r) = state.rooms.get_mut(room) {
                    r.muted.retain(|_, until| *until > now);
                    r.muted.insert(target, now + self.limits.mute);
                }
            }
            Post::Remove { .. } | Post::Mute { .. } => return Err(Rejected::NotModerator),
        }
        Ok(())
    }

    /// Whether `owner` holds the publish grant of the broadcast that `room` belongs to.
    fn streams(&self, room: &TrackNamespace, owner: &Owner) -> bool {
        let Some(channel) = room.strip_prefix(&self.prefix) else { return false };
        let Ok(broadcast) = TrackNamespace::new(self.broadcasts.fields().iter().chain(channel.fields()).cloned())
        else {
            return false;
        };
        (owner.publishes)(&broadcast)
    }

    /// Appends an entry to a room, numbered and stamped.
    fn append(state: &mut State, room: &TrackNamespace, mut body: serde_json::Value, metrics: &Metrics) {
        let ts = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let Some(r) = state.rooms.get_mut(room) else { return };
        let seq = r.next_seq;
        body["seq"] = seq.into();
        body["ts"] = ts.into();
        if r.track.write_group(seq, [Object::new(0, body.to_string())]).is_ok() {
            r.next_seq += 1;
            r.last_activity = Instant::now();
            metrics.chat_messages.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Drops rooms nobody has been in (participant or reader) for the idle time, and address limits that are
    /// back to full.
    fn sweep(&self) {
        let now = Instant::now();
        let mut state = self.state();
        state.addresses.retain(|_, l| !l.is_full(now));
        let origin = &self.origin;
        let idle = self.limits.idle;
        state.rooms.retain(|ns, r| {
            if r.participants > 0 || r.track.has_consumers() {
                r.last_activity = now;
                return true;
            }
            if now.duration_since(r.last_activity) < idle {
                return true;
            }
            tracing::info!(room = %ns, "chat room closed (idle)");
            origin.remove_track(&r.track.info().name);
            origin.remove_namespace(ns);
            false
        });
        let State { participants, notices, .. } = &mut *state;
        notices.retain(|ns, t| participants.contains(ns) || t.has_consumers());
        self.gauges(&state);
    }

    /// Rooms held now.
    pub fn rooms(&self) -> usize {
        self.state().rooms.len()
    }
}

#[cfg(test)]
mod tests;
