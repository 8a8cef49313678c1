//! The relay over loopback, both transports: fan-out to many subscribers, late joiners, publisher restart,
//! isolation from a garbage-sending client, and the HTTP endpoints.

use moq_transport::{RequestFailure, *};

mod common;

use std::time::Duration;

use common::*;
use moq_relay::{Config, Relay};
use moq_transport::quic::Client;
use moq_transport::tls::{Trust, parse_fingerprint};
use moq_transport::wire::namespace::{FullTrackName, TrackNamespace};
use moq_transport::wire::{GroupId, Version};
use tokio::time::timeout;
use url::Url;

#[tokio::test]
async fn fan_out_to_fifty_subscribers_over_both_transports() {
    let relay = start().await;
    let (_pub_session, track, _ann) = relay.publisher("live/demo").await;
    let mut subs = Vec::new();
    for i in 0..50 {
        let session = relay.connect(i % 2 == 1, Origin::new()).await;
        let sub = timeout(T, session.subscribe(name("live/demo", "video"), SubscribeOptions::default()))
            .await
            .unwrap()
            .unwrap();
        subs.push((session, sub));
    }
    for g in 0..4u64 {
        track.write_group(g, (0..10).map(|o| Object::new(o, format!("{g}/{o}")))).unwrap();
    }
    let want: Vec<(u64, u64, Vec<u8>)> =
        (0..4).flat_map(|g| (0..10).map(move |o| (g, o, format!("{g}/{o}").into_bytes()))).collect();
    let readers: Vec<_> = subs.iter().map(|(_, s)| tokio::spawn(read_groups(s.consumer(), 4))).collect();
    for r in readers {
        assert_eq!(r.await.unwrap(), want, "every subscriber gets every object, in order");
    }
    let metrics = relay.http_get("/metrics").await;
    assert!(metrics.contains("moq_relay_tracks 1"), "{metrics}");
    assert!(metrics.contains("moq_relay_objects_out_total 2000"), "50 x 40 objects out:\n{metrics}");
}

#[tokio::test]
async fn late_joiner_starts_at_the_current_group() {
    let relay = start().await;
    let (_p, track, _ann) = relay.publisher("live/late").await;
    // A first subscriber makes the relay subscribe upstream.
    let early = relay.connect(false, Origin::new()).await;
    let early_sub = early.subscribe(name("live/late", "video"), SubscribeOptions::default()).await.unwrap();
    for g in 0..3u64 {
        track.write_group(g, [Object::new(0, "x")]).unwrap();
    }
    let _ = read_groups(early_sub.consumer(), 3).await;
    let late = relay.connect(true, Origin::new()).await;
    let sub = late.subscribe(name("live/late", "video"), SubscribeOptions::default()).await.unwrap();
    assert_eq!(sub.largest, Some(moq_transport::wire::Location::new(2, 0)));
    let mut c = sub.consumer();
    track.write_group(3, [Object::new(0, "y")]).unwrap();
    let first = timeout(T, c.next_group()).await.unwrap().unwrap();
    assert!(first.id() >= GroupId(2), "late joiner starts at the current group, got {}", first.id());
}

#[tokio::test]
async fn publisher_restart() {
    let relay = start().await;
    let (p1, track, ann) = relay.publisher("live/restart").await;
    let viewer = relay.connect(false, Origin::new()).await;
    let sub = viewer.subscribe(name("live/restart", "video"), SubscribeOptions::default()).await.unwrap();
    let mut c = sub.consumer();
    track.write_group(0, [Object::new(0, "before")]).unwrap();
    assert_eq!(timeout(T, c.next_group()).await.unwrap().unwrap().id(), GroupId(0));
    // The publisher goes away: the subscription ends.
    drop(ann);
    drop(p1);
    assert!(timeout(T, c.closed()).await.is_ok());
    // It comes back: new subscriptions work.
    let (_p2, track2, _ann2) = relay.publisher("live/restart").await;
    let sub2 = subscribe_eventually(&viewer, name("live/restart", "video")).await;
    track2.write_group(5, [Object::new(0, "after")]).unwrap();
    let mut g = timeout(T, sub2.consumer().next_group()).await.unwrap().unwrap();
    assert_eq!(g.id(), GroupId(5));
    let mut sg = g.next_subgroup().await.unwrap();
    assert_eq!(&sg.next().await.unwrap().payload[..], b"after");
}

#[tokio::test]
async fn garbage_client_loses_only_its_session() {
    let relay = start().await;
    let (_p, track, _ann) = relay.publisher("live/iso").await;
    let good = relay.connect(true, Origin::new()).await;
    let sub = good.subscribe(name("live/iso", "video"), SubscribeOptions::default()).await.unwrap();
    let bad = relay.connect(false, Origin::new()).await;
    let (mut send, _recv) = web_transport_trait::Session::open_bi(bad.transport()).await.unwrap();
    web_transport_trait::SendStream::write_all(&mut send, &[0x3f, 0x00, 0x02, 0xde, 0xad]).await.unwrap();
    let e = timeout(T, bad.closed()).await.unwrap();
    assert_eq!(e.session_code(), moq_transport::wire::codes::SessionCode::ProtocolViolation, "{e}");
    track.write_group(0, [Object::new(0, "fine")]).unwrap();
    let got = read_groups(sub.consumer(), 1).await;
    assert_eq!(got, vec![(0, 0, b"fine".to_vec())]);
}

#[tokio::test]
async fn unknown_tracks_and_discovery() {
    let relay = start().await;
    let (_p, _track, _ann) = relay.publisher("live/disc").await;
    let viewer = relay.connect(false, Origin::new()).await;
    let err = viewer.subscribe(name("nowhere", "x"), SubscribeOptions::default()).await.unwrap_err();
    assert!(matches!(err, Error::Request(RequestFailure::Rejected { .. })), "{err}");
    let mut ns = viewer.subscribe_namespace(TrackNamespace::from_path("live").unwrap()).await.unwrap();
    assert_eq!(
        timeout(T, ns.next()).await.unwrap(),
        Some(NamespaceEvent::Added(TrackNamespace::from_path("live/disc").unwrap()))
    );
    assert_eq!(viewer.version(), Version::Draft19);
}

#[tokio::test]
async fn http_endpoints() {
    let relay = start().await;
    let fp = relay.http_get("/certificate.sha256").await;
    assert!(fp.starts_with("HTTP/1.1 200"), "{fp}");
    let body = fp.rsplit("\r\n\r\n").next().unwrap().trim();
    assert_eq!(body.len(), 64);
    assert!(relay.http_get("/health").await.ends_with("ok\n"));
    let _s = relay.connect(false, Origin::new()).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let metrics = relay.http_get("/metrics").await;
    assert!(metrics.contains("moq_relay_sessions_total 1"), "{metrics}");
    assert!(metrics.contains("moq_relay_tracks 0") && metrics.contains("moq_relay_cache_bytes 0"), "{metrics}");
}

/// A relay on 127.0.0.1:0 with `drain` as its drain timeout, running until `stop` is sent, and a client's session
/// to it.
async fn session_to_a_stopping_relay(
    drain: Duration,
) -> (Session, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<anyhow::Result<()>>) {
    let config = Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        http_bind: String::new(),
        drain_timeout: drain,
        ..Config::default()
    };
    let relay = Relay::bind(&config).await.unwrap();
    let port = relay.local_addr().unwrap().port();
    let trust = Trust::Fingerprints(vec![parse_fingerprint(relay.fingerprint()).unwrap()]);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(relay.run(async {
        let _ = stopped.await;
    }));
    let client = Client::new(trust, SessionConfig::default()).unwrap();
    let session = client.connect(&Url::parse(&format!("moqt://localhost:{port}/")).unwrap()).await.unwrap();
    (session, stop, running)
}

#[tokio::test]
async fn shutdown_sends_goaway_and_drains() {
    let (session, stop, running) = session_to_a_stopping_relay(Duration::from_secs(30)).await;
    let _ = stop.send(());
    match timeout(T, session.next_event()).await.unwrap() {
        Some(Event::GoAway { uri, timeout }) => {
            assert!(uri.is_empty());
            assert_eq!(timeout, Duration::from_secs(30));
        }
        other => panic!("{other:?}"),
    }
    // The client leaves; the relay finishes well before the drain timeout.
    drop(session);
    let started = std::time::Instant::now();
    timeout(Duration::from_secs(25), running).await.unwrap().unwrap().unwrap();
    // (it would otherwise wait the whole 30 s drain timeout)
    assert!(started.elapsed() < Duration::from_secs(20));
}

/// A client that stays past the drain timeout is closed by the relay, not left to its idle timeout.
#[tokio::test]
async fn shutdown_closes_sessions_that_stay() {
    let (session, stop, running) = session_to_a_stopping_relay(Duration::from_millis(200)).await;
    let _ = stop.send(());
    let closed = timeout(T, session.closed()).await.expect("the relay closes the session");
    assert!(matches!(closed, moq_transport::Error::Session(moq_transport::SessionError::Closed { .. })), "{closed}");
    timeout(T, running).await.unwrap().unwrap().unwrap();
}

#[tokio::test]
async fn auth_allows_and_denies() {
    use moq_relay::auth::{Claims, now, sign};
    let dir = std::env::temp_dir().join(format!("moq-relay-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key_path = dir.join("key.hex");
    std::fs::write(&key_path, moq_relay::auth::generate_key().unwrap()).unwrap();
    let key = moq_relay::auth::load_key(&key_path).unwrap();
    let config = Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        http_bind: "127.0.0.1:0".into(),
        auth_key: Some(key_path.clone()),
        auth_public: vec!["open".into()],
        ..Config::default()
    };
    let relay = Relay::bind(&config).await.unwrap();
    let port = relay.local_addr().unwrap().port();
    let trust = Trust::Fingerprints(vec![parse_fingerprint(relay.fingerprint()).unwrap()]);
    let metrics = relay.metrics();
    tokio::spawn(relay.run(std::future::pending()));
    let connect = |scheme: &'static str, query: String, origin: Origin| {
        let trust = trust.clone();
        async move {
            let client = Client::new(trust, SessionConfig { origin, ..Default::default() }).unwrap();
            let url = Url::parse(&format!("{scheme}://localhost:{port}/{query}")).unwrap();
            client.connect(&url).await.unwrap()
        }
    };
    let unauthorized = |r: Result<(), Error>| {
        matches!(
            r,
            Err(Error::Request(RequestFailure::Rejected {
                code: moq_transport::wire::codes::RequestErrorCode::Unauthorized,
                ..
            }))
        )
    };

    // Anonymous: refused outside the public prefix, allowed inside it.
    let anon = connect("moqt", String::new(), Origin::new()).await;
    assert!(unauthorized(anon.publish_namespace(TrackNamespace::from_path("live/alice").unwrap()).await.map(|_| ())));
    assert!(unauthorized(anon.subscribe(name("live/alice", "video"), SubscribeOptions::default()).await.map(|_| ())));
    assert!(anon.publish_namespace(TrackNamespace::from_path("open/x").unwrap()).await.is_ok());

    // Alice may publish under live/alice (token in the URL query over WebTransport).
    let alice_token =
        sign(&key, &Claims { publish: vec!["live/alice".into()], subscribe: vec![], exp: now() + 60 }).unwrap();
    let origin = Origin::new();
    let track = TrackProducer::new(TrackInfo::new(name("live/alice", "video")));
    origin.publish_track(track.clone());
    let alice = connect("https", format!("?jwt={alice_token}"), origin).await;
    let _ann = alice.publish_namespace(TrackNamespace::from_path("live/alice").unwrap()).await.unwrap();
    assert!(unauthorized(alice.publish_namespace(TrackNamespace::from_path("live/bob").unwrap()).await.map(|_| ())));

    // A viewer with a subscribe token (in the PATH setup option over raw QUIC).
    let viewer_token =
        sign(&key, &Claims { publish: vec![], subscribe: vec!["live".into()], exp: now() + 60 }).unwrap();
    let viewer = connect("moqt", format!("?jwt={viewer_token}"), Origin::new()).await;
    let sub = viewer.subscribe(name("live/alice", "video"), SubscribeOptions::default()).await.unwrap();
    track.write_group(0, [Object::new(0, "hi")]).unwrap();
    assert_eq!(read_groups(sub.consumer(), 1).await, vec![(0, 0, b"hi".to_vec())]);

    assert!(metrics.auth_failures.load(std::sync::atomic::Ordering::Relaxed) >= 3);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A relay with its own stop switch (`drain_timeout` 0: it closes as soon as it is told to).
async fn start_node(cluster_root: Option<(u16, String)>) -> Running {
    let mut config = test_config();
    config.drain_timeout = Duration::ZERO;
    if let Some((port, fp)) = cluster_root {
        config.cluster_root = vec![Url::parse(&format!("moqt://localhost:{port}/")).unwrap()];
        config.cluster_fingerprint = Some(fp);
    }
    start_with(config).await
}

fn fingerprint_of(r: &Running) -> String {
    match &r.trust {
        Trust::Fingerprints(f) => moq_transport::tls::hex(&f[0]),
        _ => unreachable!(),
    }
}

/// Subscribes, retrying while the namespace propagates through the cluster.
async fn subscribe_eventually(session: &Session, track: FullTrackName) -> Subscription {
    timeout(T, async {
        loop {
            match session.subscribe(track.clone(), SubscribeOptions::default()).await {
                Ok(s) => break s,
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    })
    .await
    .expect("the track should become reachable")
}

#[tokio::test]
async fn three_relays_deliver_across_the_cluster() {
    let root = start_node(None).await;
    let root_fp = fingerprint_of(&root);
    let a = start_node(Some((root.port, root_fp.clone()))).await;
    let b = start_node(Some((root.port, root_fp.clone()))).await;

    // Publisher on A, subscribers on B (raw QUIC) and on the root (WebTransport).
    let (_p, track, _ann) = a.publisher("live/cluster").await;
    let on_b = b.connect(false, Origin::new()).await;
    let sub_b = subscribe_eventually(&on_b, name("live/cluster", "video")).await;
    let on_root = root.connect(true, Origin::new()).await;
    let sub_root = subscribe_eventually(&on_root, name("live/cluster", "video")).await;
    for g in 0..3u64 {
        track.write_group(g, (0..5).map(|o| Object::new(o, format!("{g}:{o}")))).unwrap();
    }
    let want: Vec<(u64, u64, Vec<u8>)> =
        (0..3).flat_map(|g| (0..5).map(move |o| (g, o, format!("{g}:{o}").into_bytes()))).collect();
    assert_eq!(read_groups(sub_b.consumer(), 3).await, want);
    assert_eq!(read_groups(sub_root.consumer(), 3).await, want);

    // One copy per link: the root subscribed to A once, although two of its downstreams asked.
    let root_metrics = root.http_get("/metrics").await;
    assert!(root_metrics.contains("moq_relay_upstream_subscriptions_total 1"), "{root_metrics}");

    // A dies; the publisher reconnects to the root; B re-routes.
    drop(a);
    let (_p2, track2, _ann2) = root.publisher("live/cluster").await;
    let sub_b2 = timeout(T, async {
        loop {
            let s = subscribe_eventually(&on_b, name("live/cluster", "video")).await;
            track2.write_group(100, [Object::new(0, "again")]).ok();
            let mut c = s.consumer();
            if let Ok(Ok(mut g)) = timeout(Duration::from_millis(500), c.next_group()).await
                && g.id() == GroupId(100)
                && let Some(mut sg) = g.next_subgroup().await
                && let Ok(o) = sg.next().await
            {
                break o;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(&sub_b2.payload[..], b"again");
}

/// A subscriber that subscribes and then never reads its data streams (raw QUIC, no session tasks behind it).
async fn stalled_subscriber(port: u16, trust: &Trust, track: FullTrackName) -> quinn::Connection {
    use moq_transport::wire::control::{ControlMessage, Setup, Subscribe};
    let mut tls = moq_transport::tls::client_config(trust).unwrap();
    tls.alpn_protocols = vec![b"moqt-19".to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap();
    // Small windows and few streams, so that a reader that never reads blocks the sender quickly.
    let mut transport = quinn::TransportConfig::default();
    transport.stream_receive_window(16_384u32.into());
    transport.receive_window(65_536u32.into());
    transport.max_concurrent_uni_streams(8u32.into());
    let mut client_config = quinn::ClientConfig::new(std::sync::Arc::new(crypto));
    client_config.transport_config(std::sync::Arc::new(transport));
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    endpoint.set_default_client_config(client_config);
    let conn = endpoint.connect(format!("127.0.0.1:{port}").parse().unwrap(), "localhost").unwrap().await.unwrap();
    let frame = |m: ControlMessage| {
        let mut b = bytes::BytesMut::new();
        m.encode(&mut b, Version::Draft19).unwrap();
        b.freeze()
    };
    let mut control = conn.open_uni().await.unwrap();
    let setup = moq_transport::wire::setup::SetupOptions {
        path: Some(bytes::Bytes::from_static(b"/")),
        authority: Some(bytes::Bytes::from_static(b"localhost")),
        ..Default::default()
    };
    control.write_all(&frame(Setup { options: setup }.into())).await.unwrap();
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    let sub = Subscribe { request_id: moq_transport::wire::RequestId(0), track, params: Default::default() };
    send.write_all(&frame(sub.into())).await.unwrap();
    let mut ok = [0u8; 1];
    recv.read_exact(&mut ok).await.unwrap();
    assert_eq!(ok[0], 0x04, "SUBSCRIBE_OK");
    std::mem::forget((control, send, recv, endpoint));
    conn
}

#[tokio::test]
async fn a_stalled_subscriber_does_not_delay_the_others() {
    let relay = start().await;
    let (_p, track, _ann) = relay.publisher("live/stall").await;
    // The healthy subscriber keeps a generous window locally, so that only the relay's behaviour is tested.
    let client = Client::new(relay.trust.clone(), SessionConfig { window: 64, ..Default::default() }).unwrap();
    let good = client.connect(&relay.url(false)).await.unwrap();
    let sub = good.subscribe(name("live/stall", "video"), SubscribeOptions::default()).await.unwrap();
    let _stalled = stalled_subscriber(relay.port, &relay.trust, name("live/stall", "video")).await;
    let reader = tokio::spawn(read_groups(sub.consumer(), 40));
    // 40 groups of 10 x 10 KB, one every 50 ms: far more than the stalled subscriber's windows.
    let payload = vec![7u8; 10_000];
    for g in 0..40u64 {
        track.write_group(g, (0..10).map(|o| Object::new(o, payload.clone()))).unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = timeout(T, reader).await.unwrap().unwrap();
    assert_eq!(got.len(), 400, "the healthy subscriber gets every object");
    assert!(got.iter().zip(got.iter().skip(1)).all(|(a, b)| (a.0, a.1) < (b.0, b.1)), "in order");
    let metrics = relay.http_get("/metrics").await;
    let skipped: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("moq_relay_groups_skipped_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    assert!(skipped > 0, "the stalled subscriber skipped groups:\n{metrics}");
}

#[tokio::test]
async fn http_url_fetches_and_pins_the_fingerprint() {
    // UDP and TCP on one port number, as in production (4443): take a free port from the OS.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = Config {
        bind: format!("127.0.0.1:{port}").parse().unwrap(),
        http_bind: format!("127.0.0.1:{port}"),
        ..Config::default()
    };
    let relay = Relay::bind(&config).await.unwrap();
    tokio::spawn(relay.run(std::future::pending()));
    // No trust configured at all: the http:// URL supplies it.
    let client = Client::new(Trust::System, SessionConfig::default()).unwrap();
    let session =
        timeout(T, client.connect(&Url::parse(&format!("http://localhost:{port}/")).unwrap())).await.unwrap().unwrap();
    assert_eq!(session.version(), Version::Draft19);
}

#[tokio::test]
async fn fetch_of_history_the_relay_never_held_goes_upstream() {
    let relay = start().await;
    let (_p, track, _ann) = relay.publisher("live/history").await;
    // Published before anyone subscribed through the relay: the relay holds none of it.
    for g in 0..4u64 {
        track.write_group(g, (0..3).map(|o| Object::new(o, format!("{g}.{o}")))).unwrap();
    }
    let viewer = relay.connect(true, Origin::new()).await;
    let range = FetchRange::Standalone {
        track: name("live/history", "video"),
        start: moq_transport::wire::Location::new(1, 0),
        end: moq_transport::wire::Location::new(2, 0),
    };
    let mut f = timeout(T, viewer.fetch(range, moq_transport::wire::GroupOrder::Ascending)).await.unwrap().unwrap();
    let mut got = Vec::new();
    while let Some(o) = timeout(T, f.next()).await.unwrap().unwrap() {
        got.push(String::from_utf8(o.payload.to_vec()).unwrap());
    }
    assert_eq!(got, ["1.0", "1.1", "1.2", "2.0", "2.1", "2.2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progressive_writes_reach_early_subscribers() {
    let relay = start().await;
    let (_p, track, _ann) = relay.publisher("live/progressive").await;
    let viewer = relay.connect(false, Origin::new()).await;
    let sub = viewer.subscribe(name("live/progressive", "video"), SubscribeOptions::default()).await.unwrap();
    let reader = tokio::spawn(read_groups(sub.consumer(), 2));
    for g in 0..2u64 {
        let group = track.create_group(g).unwrap();
        let s = group.create_subgroup(0, 0);
        for o in 0..5u64 {
            s.write(Object::new(o, format!("{g}-{o}"))).unwrap();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        s.finish();
        group.finish();
    }
    assert_eq!(timeout(T, reader).await.unwrap().unwrap().len(), 10);
    // A reader that walks every subgroup of a group moves on as soon as the next group starts.
    let mut c = sub.consumer();
    let mut g0 = c.next_group().await.unwrap();
    while let Some(mut s) = timeout(T, g0.next_subgroup()).await.unwrap() {
        while s.next().await.is_ok() {}
    }
}

#[tokio::test]
async fn pushed_tracks_are_served_and_withdrawn_when_the_publisher_leaves() {
    let relay = start().await;
    let viewer = relay.connect(false, Origin::new()).await;
    let mut ns = viewer.subscribe_namespace(TrackNamespace::from_path("push").unwrap()).await.unwrap();
    // The publisher pushes a track with PUBLISH and never announces its namespace.
    let publisher = relay.connect(true, Origin::new()).await;
    let track = TrackProducer::new(TrackInfo::new(name("push/cam", "video")));
    let published = timeout(T, publisher.publish(track.clone())).await.unwrap().unwrap();
    let cam = TrackNamespace::from_path("push/cam").unwrap();
    assert_eq!(timeout(T, ns.next()).await.unwrap(), Some(NamespaceEvent::Added(cam.clone())));
    let sub = subscribe_eventually(&viewer, name("push/cam", "video")).await;
    track.write_group(0, [Object::new(0, "pushed")]).unwrap();
    assert_eq!(read_groups(sub.consumer(), 1).await, vec![(0, 0, b"pushed".to_vec())]);
    // The publisher leaves: the namespace is withdrawn and the track is no longer served.
    drop(published);
    drop(publisher);
    assert_eq!(timeout(T, ns.next()).await.unwrap(), Some(NamespaceEvent::Removed(cam)));
    let err = viewer.subscribe(name("push/cam", "video"), SubscribeOptions::default()).await.unwrap_err();
    assert!(matches!(err, Error::Request(RequestFailure::Rejected { .. })), "{err}");
}

#[tokio::test]
async fn upstream_is_cancelled_once_the_last_subscriber_and_status_request_left() {
    let relay = start_with(Config { upstream_linger: Duration::from_millis(100), ..test_config() }).await;
    let (_publisher, track, _ann) = relay.publisher("linger").await;
    let viewer = relay.connect(false, Origin::new()).await;
    let (a, b) = tokio::join!(
        viewer.subscribe(name("linger", "video"), SubscribeOptions::default()),
        viewer.subscribe(name("linger", "video"), SubscribeOptions::default()),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    // One upstream subscription for both viewers.
    wait_consumers(&track, 1).await;
    drop(a);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(track.consumer_count(), 1, "a remaining subscriber keeps the upstream subscription");
    drop(b);
    wait_consumers(&track, 0).await;
    // TRACK_STATUS needs the upstream too, but only for a moment.
    let status = viewer.track_status(name("linger", "video")).await.unwrap();
    assert_eq!(status.largest, None);
    wait_consumers(&track, 1).await;
    wait_consumers(&track, 0).await;
    // A subscriber coming back later gets a fresh upstream subscription.
    let again = viewer.subscribe(name("linger", "video"), SubscribeOptions::default()).await.unwrap();
    track.write_group(0, [Object::new(0, "back")]).unwrap();
    assert_eq!(read_groups(again.consumer(), 1).await, vec![(0, 0, b"back".to_vec())]);
}

#[tokio::test]
async fn the_first_viewer_learns_the_largest_object_from_upstream() {
    let relay = start().await;
    let (_publisher, track, _ann) = relay.publisher("largest").await;
    for g in 0..3u64 {
        track.write_group(g, [Object::new(0, "x"), Object::new(1, "y")]).unwrap();
    }
    let viewer = relay.connect(false, Origin::new()).await;
    let sub = viewer.subscribe(name("largest", "video"), SubscribeOptions::default()).await.unwrap();
    assert_eq!(sub.largest, Some(moq_transport::wire::Location::new(2, 1)));
}

#[tokio::test]
async fn a_subscriber_waits_for_a_publisher_that_comes_later() {
    let relay = start().await;
    let viewer = relay.connect(true, Origin::new()).await;
    let options = SubscribeOptions { rendezvous: Some(Duration::from_secs(5)), ..Default::default() };
    let waiting = tokio::spawn(async move {
        let sub = viewer.subscribe(name("later", "video"), options).await;
        (viewer, sub)
    });
    // The publisher connects and announces only after the SUBSCRIBE reached the relay.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (_publisher, track, _ann) = relay.publisher("later").await;
    let (_viewer, sub) = timeout(T, waiting).await.unwrap().unwrap();
    let sub = sub.unwrap();
    track.write_group(0, [Object::new(0, "hello")]).unwrap();
    assert_eq!(read_groups(sub.consumer(), 1).await, vec![(0, 0, b"hello".to_vec())]);
}
