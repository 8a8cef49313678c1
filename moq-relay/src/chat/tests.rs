use std::net::Ipv4Addr;

use moq_transport::TrackConsumer;

use super::*;

fn chat_with(limits: ChatLimits) -> Arc<Chat> {
    let chat = Chat::new(TrackNamespace::from_path("chat").unwrap(), limits, Origin::new(), Arc::default());
    tokio::spawn(chat.clone().run());
    chat
}

fn chat() -> Arc<Chat> {
    chat_with(ChatLimits::default())
}

fn owner(session: u64, ip: u8, streamer: bool) -> Owner {
    Owner {
        session,
        ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, ip)),
        publishes: Arc::new(move |ns| streamer && ns == &TrackNamespace::from_path("live/tv").unwrap()),
    }
}

fn room_name() -> FullTrackName {
    FullTrackName::new(TrackNamespace::from_path("chat/tv").unwrap(), ROOM_TRACK)
}

/// A participant `pid` of room chat/tv announced by `owner`; returns its namespace and messages track.
async fn join(chat: &Chat, pid: &str, owner: Owner) -> (TrackNamespace, TrackProducer) {
    let ns = TrackNamespace::from_path(&format!("chat/tv/users/{pid}")).unwrap();
    let track = TrackProducer::new(TrackInfo::new(FullTrackName::new(ns.clone(), MESSAGES_TRACK)));
    chat.set_owner(&ns, owner);
    chat.origin.publish_track(track.clone());
    chat.origin.publish_namespace(ns.clone());
    (ns, track)
}

/// Waits until the relay reads these participants.
async fn followed(tracks: &[&TrackProducer]) {
    tokio::time::timeout(Duration::from_secs(5), async {
        while !tracks.iter().all(|t| t.has_consumers()) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the relay follows the participants");
}

fn post(track: &TrackProducer, group: u64, body: serde_json::Value) {
    track.write_group(group, [Object::new(0, body.to_string())]).unwrap();
}

fn say(track: &TrackProducer, group: u64, name: &str, text: &str) {
    post(track, group, serde_json::json!({ "name": name, "text": text }));
}

async fn next(reader: &mut TrackConsumer) -> serde_json::Value {
    let mut g = tokio::time::timeout(Duration::from_secs(5), reader.next_group()).await.unwrap().unwrap();
    let mut s = g.next_subgroup().await.unwrap();
    let o = s.next().await.unwrap();
    serde_json::from_slice(&o.payload).unwrap()
}

async fn nothing_more(reader: &mut TrackConsumer) {
    assert!(tokio::time::timeout(Duration::from_millis(300), reader.next_group()).await.is_err(), "no more");
}

/// The relay's notices to participant `ns`.
fn notices(chat: &Chat, ns: &TrackNamespace) -> TrackConsumer {
    chat.room_track(&FullTrackName::new(ns.clone(), NOTICES_TRACK)).unwrap().consume_from_start()
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
    assert!(chat.room_track(&room("chat/tv/users/x", NOTICES_TRACK)).is_some(), "a participant's notices");
    assert!(chat.room_track(&room("chat/tv/x", NOTICES_TRACK)).is_none());
    let a = chat.room_track(&room("chat/tv", "room")).unwrap();
    assert!(a.is_same(&chat.room_track(&room("chat/tv", "room")).unwrap()), "one room per channel");
    assert!(chat.origin.track(&room("chat/tv", "room")).is_some(), "published in the origin");
    let small = chat_with(ChatLimits { max_rooms: 2, max_participants: 1, ..Default::default() });
    assert!(small.room_track(&room("chat/a", "room")).is_some());
    assert!(small.room_track(&room("chat/b", "room")).is_some());
    assert!(small.room_track(&room("chat/c", "room")).is_none(), "over the cap");
    assert!(small.room_track(&room("chat/a/users/x", NOTICES_TRACK)).is_some());
    assert!(small.room_track(&room("chat/a/users/y", NOTICES_TRACK)).is_none(), "over the cap");
}

#[tokio::test(start_paused = true)]
async fn idle_rooms_are_dropped() {
    let chat =
        Chat::new(TrackNamespace::from_path("chat").unwrap(), ChatLimits::default(), Origin::new(), Arc::default());
    let reader = chat.room_track(&room_name()).unwrap().consume();
    tokio::time::advance(Duration::from_secs(700)).await;
    chat.sweep();
    assert_eq!(chat.rooms(), 1, "a reader keeps it");
    drop(reader);
    chat.sweep();
    assert_eq!(chat.rooms(), 1, "idle only from now");
    tokio::time::advance(Duration::from_secs(601)).await;
    chat.sweep();
    assert_eq!(chat.rooms(), 0);
    assert!(chat.origin.track(&room_name()).is_none());
}

/// Participants' messages end up in one room, in sequence, under the relay's ids (not the page's); a session's
/// flood is cut to its burst and leaves the others alone; names are pinned per session.
#[tokio::test]
async fn participants_are_merged_into_the_room() {
    let chat = chat();
    let mut reader = chat.room_track(&room_name()).unwrap().consume_from_start();
    let (_, ann) = join(&chat, "a1", owner(1, 1, false)).await;
    let (_, bob) = join(&chat, "b2", owner(2, 2, false)).await;
    followed(&[&ann, &bob]).await;
    say(&ann, 0, " ann ", "one");
    let m = next(&mut reader).await;
    assert_eq!((&m["seq"], &m["id"], &m["name"], &m["text"]), (&0.into(), &"s1".into(), &"ann".into(), &"one".into()));
    assert!(m.get("role").is_none());
    say(&bob, 0, "bob", "two");
    assert_eq!(next(&mut reader).await["id"], "s2");
    for i in 1..20 {
        say(&bob, i, "bob", "flood");
    }
    say(&ann, 1, "anna", "three");
    let mut seen = Vec::new();
    for _ in 0..5 {
        let v = next(&mut reader).await;
        seen.push((v["id"].as_str().unwrap().to_string(), v["name"].as_str().unwrap().to_string(), v["text"].clone()));
    }
    nothing_more(&mut reader).await;
    assert_eq!(seen.iter().filter(|t| t.2 == "flood").count(), 4, "bob's burst of 5 minus the one he used: {seen:?}");
    assert!(seen.contains(&("s1".into(), "ann".into(), "three".into())), "ann's name is pinned: {seen:?}");
    assert_eq!(chat.metrics.chat_messages.load(Ordering::Relaxed), 7);
    assert!(chat.metrics.chat_rate_limited.load(Ordering::Relaxed) > 0);
}

/// Twenty participant ids from one session are one participant: the first is followed, the others are told no.
#[tokio::test]
async fn one_participant_per_session_and_room() {
    let chat = chat();
    let mut reader = chat.room_track(&room_name()).unwrap().consume_from_start();
    let (first_ns, first) = join(&chat, "p0", owner(7, 1, false)).await;
    followed(&[&first]).await;
    let (second_ns, second) = join(&chat, "p1", owner(7, 1, false)).await;
    let mut told = notices(&chat, &second_ns);
    assert_eq!(next(&mut told).await["refused"], Rejected::SecondParticipant.to_string());
    say(&second, 0, "x", "from the second");
    say(&first, 0, "x", "from the first");
    assert_eq!(next(&mut reader).await["text"], "from the first");
    nothing_more(&mut reader).await;
    assert!(!second.has_consumers(), "the second is never read");
    assert_eq!(next(&mut notices(&chat, &first_ns)).await["you"], "s7", "the first is told its id");
}

/// The sessions of one address share a rate limit; another address is not affected.
#[tokio::test]
async fn an_address_is_rate_limited_over_its_sessions() {
    let chat = chat_with(ChatLimits { address_burst: 6, ..Default::default() });
    let mut reader = chat.room_track(&room_name()).unwrap().consume_from_start();
    let mut tracks = Vec::new();
    for session in 0..4 {
        tracks.push(join(&chat, &format!("p{session}"), owner(session, 1, false)).await.1);
    }
    let (_, other) = join(&chat, "q", owner(9, 2, false)).await;
    followed(&tracks.iter().chain([&other]).collect::<Vec<_>>()).await;
    for t in &tracks {
        for g in 0..3 {
            say(t, g, "x", "same address");
        }
    }
    say(&other, 0, "y", "elsewhere");
    let mut texts = Vec::new();
    for _ in 0..7 {
        texts.push(next(&mut reader).await["text"].as_str().unwrap().to_string());
    }
    nothing_more(&mut reader).await;
    assert_eq!(texts.iter().filter(|t| *t == "same address").count(), 6, "the address's burst: {texts:?}");
    assert!(texts.contains(&"elsewhere".to_string()));
}

/// "streamer…" names and moderation are the streamer's; a removal and a mute take effect.
#[tokio::test]
async fn the_streamer_alone_has_its_name_and_moderates() {
    let chat = chat();
    let mut reader = chat.room_track(&room_name()).unwrap().consume_from_start();
    let (streamer_ns, streamer) = join(&chat, "st", owner(1, 1, true)).await;
    let (viewer_ns, viewer) = join(&chat, "vw", owner(2, 2, false)).await;
    followed(&[&streamer, &viewer]).await;
    let mut viewer_told = notices(&chat, &viewer_ns);
    assert_eq!(next(&mut viewer_told).await["you"], "s2");

    say(&viewer, 0, "Streamer-tv", "impostor");
    let refused = next(&mut viewer_told).await;
    assert_eq!((&refused["refused"], &refused["post"]), (&Rejected::Reserved.to_string().into(), &0.into()));
    post(&viewer, 1, serde_json::json!({ "name": "v", "mod": "remove", "seq": 0 }));
    assert_eq!(next(&mut viewer_told).await["refused"], Rejected::NotModerator.to_string());

    say(&streamer, 0, "streamer-tv", "welcome");
    let m = next(&mut reader).await;
    assert_eq!((&m["name"], &m["role"], &m["id"]), (&"streamer-tv".into(), &"streamer".into(), &"s1".into()));
    say(&viewer, 2, "v", "spam");
    assert_eq!(next(&mut reader).await["seq"], 1);
    post(&streamer, 1, serde_json::json!({ "name": "streamer-tv", "mod": "remove", "seq": 1 }));
    let removal = next(&mut reader).await;
    assert_eq!((&removal["kind"], &removal["target"]), (&"remove".into(), &1.into()));
    post(&streamer, 2, serde_json::json!({ "name": "streamer-tv", "mod": "mute", "id": "s2" }));
    say(&streamer, 3, "streamer-tv", "after the mute");
    assert_eq!(next(&mut reader).await["text"], "after the mute");
    say(&viewer, 3, "v", "muted now");
    assert_eq!(next(&mut viewer_told).await["refused"], Rejected::Muted.to_string());
    nothing_more(&mut reader).await;
    let _ = streamer_ns;
}
