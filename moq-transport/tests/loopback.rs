//! Integration tests over real QUIC on 127.0.0.1, for both raw QUIC (`moqt://`) and WebTransport (`https://`).

use std::time::Duration;

use bytes::Bytes;
use moq_transport::quic::{Client, Server};
use moq_transport::tls::{Certificate, Trust};
use moq_transport::wire::codes::RequestErrorCode;
use moq_transport::wire::namespace::{FullTrackName, TrackNamespace};
use moq_transport::wire::params::LocationFilter;
use moq_transport::wire::{GroupId, GroupOrder, Location, ObjectId, Version};
use moq_transport::{RequestFailure, *};
use tokio::time::timeout;
use url::Url;

const T: Duration = Duration::from_secs(5);

struct Pair {
    client: Session,
    server: Session,
    origin: Origin,
    _server: Server,
}

fn name(ns: &str, track: &str) -> FullTrackName {
    FullTrackName::new(TrackNamespace::from_path(ns).unwrap(), track)
}

/// A server on 127.0.0.1:0 with `origin`, and a client connected to it.
async fn pair(webtransport: bool, origin: Origin, client_origin: Origin) -> Pair {
    let cert = Certificate::self_signed(&["localhost"]).unwrap();
    let fp = cert.sha256();
    let server = Server::bind(
        "127.0.0.1:0".parse().unwrap(),
        cert,
        SessionConfig { origin: origin.clone(), ..Default::default() },
    )
    .unwrap();
    let addr = server.local_addr().unwrap();
    let client =
        Client::new(Trust::Fingerprints(vec![fp]), SessionConfig { origin: client_origin, ..Default::default() })
            .unwrap();
    let scheme = if webtransport { "https" } else { "moqt" };
    let url = Url::parse(&format!("{scheme}://localhost:{}/live?x=1", addr.port())).unwrap();
    let (client, accepted) = tokio::join!(client.connect(&url), async {
        let incoming = server.accept().await.unwrap();
        incoming.establish().await
    });
    let client = client.unwrap();
    let (server_session, accepted) = accepted.unwrap();
    assert_eq!(accepted.via == moq_transport::quic::Via::WebTransport, webtransport);
    assert_eq!(accepted.path, "/live?x=1");
    assert_eq!(accepted.version, Version::Draft19);
    assert_eq!(client.version(), Version::Draft19);
    Pair { client, server: server_session, origin, _server: server }
}

fn clock_track(ns: &str) -> TrackProducer {
    TrackProducer::new(TrackInfo::new(name(ns, "clock")))
}

async fn subscribe_and_receive(webtransport: bool) {
    let origin = Origin::new();
    let track = clock_track("clock");
    origin.publish_track(track.clone());
    let p = pair(webtransport, origin, Origin::new()).await;

    let sub =
        timeout(T, p.client.subscribe(name("clock", "clock"), SubscribeOptions::default())).await.unwrap().unwrap();
    assert_eq!(sub.largest, None);
    let mut consumer = sub.consumer();
    let writer = tokio::spawn(async move {
        for g in 0..3u64 {
            let group = track.create_group(g).unwrap();
            let sg = group.create_subgroup(0, 0);
            for o in 0..5u64 {
                sg.write(Object::new(o, format!("{g}:{o}"))).unwrap();
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            sg.finish();
        }
        track.end(TrackEnd::Ended);
    });
    let mut got = Vec::new();
    loop {
        match timeout(T, consumer.next_group()).await.unwrap() {
            Ok(mut group) => {
                let mut sub = group.next_subgroup().await.unwrap();
                while let Ok(o) = timeout(T, sub.next()).await.unwrap() {
                    got.push((group.id().0, o.id.0, o.payload));
                }
            }
            Err(end) => {
                assert_eq!(end, TrackEnd::Ended);
                break;
            }
        }
    }
    writer.await.unwrap();
    let want: Vec<(u64, u64, Bytes)> =
        (0..3).flat_map(|g| (0..5).map(move |o| (g, o, Bytes::from(format!("{g}:{o}"))))).collect();
    assert_eq!(got, want);
    drop(p);
}

#[tokio::test]
async fn subscribe_raw_quic() {
    subscribe_and_receive(false).await;
}

#[tokio::test]
async fn subscribe_webtransport() {
    subscribe_and_receive(true).await;
}

#[tokio::test]
async fn unknown_track_is_rejected_and_session_survives() {
    for wt in [false, true] {
        let origin = Origin::new();
        origin.publish_track(clock_track("clock"));
        let p = pair(wt, origin, Origin::new()).await;
        let err = p.client.subscribe(name("nope", "x"), SubscribeOptions::default()).await.unwrap_err();
        assert!(
            matches!(err, Error::Request(RequestFailure::Rejected { code: RequestErrorCode::DoesNotExist, .. })),
            "{err}"
        );
        let err = p.client.track_status(name("nope", "x")).await.unwrap_err();
        assert!(
            matches!(err, Error::Request(RequestFailure::Rejected { code: RequestErrorCode::DoesNotExist, .. })),
            "{err}"
        );
        // The session still works.
        let status = p.client.track_status(name("clock", "clock")).await.unwrap();
        assert_eq!(status.largest, None);
    }
}

#[tokio::test]
async fn track_status_fetch_and_joining_fetch() {
    for wt in [false, true] {
        let origin = Origin::new();
        let track = clock_track("clock");
        origin.publish_track(track.clone());
        for g in 0..4u64 {
            track.write_group(g, (0..3).map(|o| Object::new(o, vec![g as u8, o as u8]))).unwrap();
        }
        let p = pair(wt, origin, Origin::new()).await;
        let status = p.client.track_status(name("clock", "clock")).await.unwrap();
        assert_eq!(status.largest, Some(Location::new(3, 2)));

        // Standalone: groups 1 and 2 whole (end {2, 0}: "Object 0 means the entire group"), ascending.
        let range = FetchRange::Standalone {
            track: name("clock", "clock"),
            start: Location::new(1, 0),
            end: Location::new(2, 0),
        };
        let mut f = timeout(T, p.client.fetch(range, GroupOrder::Ascending)).await.unwrap().unwrap();
        let mut locs = Vec::new();
        while let Some(o) = timeout(T, f.next()).await.unwrap().unwrap() {
            assert_eq!(&o.payload[..], &[o.location.group.0 as u8, o.location.object.0 as u8]);
            locs.push((o.location.group.0, o.location.object.0));
        }
        assert_eq!(locs, vec![(1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (2, 2)]);

        // Descending order, last two groups up to the end.
        let range = FetchRange::Standalone {
            track: name("clock", "clock"),
            start: Location::new(2, 1),
            end: Location::new(3, 2),
        };
        let mut f = p.client.fetch(range, GroupOrder::Descending).await.unwrap();
        let mut locs = Vec::new();
        while let Some(o) = f.next().await.unwrap() {
            locs.push((o.location.group.0, o.location.object.0));
        }
        assert_eq!(locs, vec![(3, 0), (3, 1), (2, 1), (2, 2)]);

        // Joining: subscribe, then fetch the previous group up to the joining location.
        let sub = p.client.subscribe(name("clock", "clock"), SubscribeOptions::default()).await.unwrap();
        assert_eq!(sub.largest, Some(Location::new(3, 2)));
        let range = FetchRange::Joining { subscription: sub.request_id, groups_back: 1 };
        let mut f = p.client.fetch(range, GroupOrder::Ascending).await.unwrap();
        assert_eq!(f.end_location, Location::new(3, 3));
        let mut n = 0;
        while let Some(o) = f.next().await.unwrap() {
            assert!(o.location.group.0 >= 2);
            n += 1;
        }
        assert_eq!(n, 6);

        // Empty track and bad joining id.
        let err = p
            .client
            .fetch(FetchRange::Joining { subscription: RequestIdFor::bogus(), groups_back: 0 }, GroupOrder::Ascending)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::Request(RequestFailure::Rejected { code: RequestErrorCode::InvalidJoiningRequestId, .. })
            ),
            "{err}"
        );
    }
}

struct RequestIdFor;
impl RequestIdFor {
    fn bogus() -> moq_transport::wire::RequestId {
        moq_transport::wire::RequestId(1000)
    }
}

#[tokio::test]
async fn filters_start_where_asked() {
    let origin = Origin::new();
    let track = clock_track("clock");
    origin.publish_track(track.clone());
    track.write_group(0, (0..3).map(|o| Object::new(o, "x"))).unwrap();
    let group1 = track.create_group(1).unwrap();
    let sg = group1.create_subgroup(0, 0);
    sg.write(Object::new(0, "a")).unwrap();
    sg.write(Object::new(1, "b")).unwrap();
    let p = pair(false, origin, Origin::new()).await;

    // Largest Object: only objects after 1/1.
    let opts = SubscribeOptions { filter: Some(LocationFilter::LargestObject), ..Default::default() };
    let sub = p.client.subscribe(name("clock", "clock"), opts).await.unwrap();
    assert_eq!(sub.largest, Some(Location::new(1, 1)));
    let mut c = sub.consumer();
    sg.write(Object::new(2, "c")).unwrap();
    sg.finish();
    let mut g = timeout(T, c.next_group()).await.unwrap().unwrap();
    assert_eq!(g.id(), GroupId(1));
    let mut s = g.next_subgroup().await.unwrap();
    assert_eq!(timeout(T, s.next()).await.unwrap().unwrap().id, ObjectId(2));

    // Next Group Start: nothing from group 1, everything from group 2.
    let opts = SubscribeOptions { filter: Some(LocationFilter::NextGroupStart), ..Default::default() };
    let sub = p.client.subscribe(name("clock", "clock"), opts).await.unwrap();
    let mut c = sub.consumer();
    track.write_group(2, (0..2).map(|o| Object::new(o, "y"))).unwrap();
    let g = timeout(T, c.next_group()).await.unwrap().unwrap();
    assert_eq!(g.id(), GroupId(2));

    // AbsoluteRange from 0/1 to group 0: the cached group 0 from object 1, then SUBSCRIPTION_ENDED.
    let opts = SubscribeOptions {
        filter: Some(LocationFilter::AbsoluteRange { start: Location::new(0, 1), end_group_delta: 0 }),
        ..Default::default()
    };
    let err = p.client.subscribe(name("clock", "clock"), opts).await.unwrap_err();
    assert!(
        matches!(err, Error::Request(RequestFailure::Rejected { code: RequestErrorCode::InvalidRange, .. })),
        "{err}"
    );
}

#[tokio::test]
async fn namespaces_announce_and_discover() {
    for wt in [false, true] {
        let origin = Origin::new();
        origin.publish_namespace(TrackNamespace::from_path("live/a").unwrap());
        let p = pair(wt, origin.clone(), Origin::new()).await;

        // Discovery: existing namespaces, then new ones and removals, as full namespaces.
        let mut ns = p.client.subscribe_namespace(TrackNamespace::from_path("live").unwrap()).await.unwrap();
        assert_eq!(
            timeout(T, ns.next()).await.unwrap(),
            Some(NamespaceEvent::Added(TrackNamespace::from_path("live/a").unwrap()))
        );
        p.origin.publish_namespace(TrackNamespace::from_path("live/b").unwrap());
        p.origin.publish_namespace(TrackNamespace::from_path("other/c").unwrap());
        assert_eq!(
            timeout(T, ns.next()).await.unwrap(),
            Some(NamespaceEvent::Added(TrackNamespace::from_path("live/b").unwrap()))
        );
        p.origin.remove_namespace(&TrackNamespace::from_path("live/a").unwrap());
        assert_eq!(
            timeout(T, ns.next()).await.unwrap(),
            Some(NamespaceEvent::Removed(TrackNamespace::from_path("live/a").unwrap()))
        );

        // An overlapping prefix on the same session is refused.
        let err = p.client.subscribe_namespace(TrackNamespace::from_path("live/b").unwrap()).await.unwrap_err();
        assert!(
            matches!(err, Error::Request(RequestFailure::Rejected { code: RequestErrorCode::PrefixOverlap, .. })),
            "{err}"
        );

        // PUBLISH_NAMESPACE from the client reaches the server as an event, and withdrawing it too.
        let ann = p.client.publish_namespace(TrackNamespace::from_path("up/x").unwrap()).await.unwrap();
        match timeout(T, p.server.next_event()).await.unwrap() {
            Some(Event::Announced(ns)) => {
                assert_eq!(ns, TrackNamespace::from_path("up/x").unwrap())
            }
            other => panic!("{other:?}"),
        }
        drop(ann);
        match timeout(T, p.server.next_event()).await.unwrap() {
            Some(Event::Unannounced(ns)) => {
                assert_eq!(ns, TrackNamespace::from_path("up/x").unwrap())
            }
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn publish_pushes_a_track() {
    for wt in [false, true] {
        let p = pair(wt, Origin::new(), Origin::new()).await;
        let track = clock_track("push");
        let published = p.client.publish(track.clone()).await.unwrap();
        let mut consumer = match timeout(T, p.server.next_event()).await.unwrap() {
            Some(Event::Published(c)) => c.consume_from_start(),
            other => panic!("{other:?}"),
        };
        assert_eq!(consumer.info().name, name("push", "clock"));
        track.write_group(7, [Object::new(0, "hello")]).unwrap();
        let mut g = timeout(T, consumer.next_group()).await.unwrap().unwrap();
        assert_eq!(g.id(), GroupId(7));
        let mut s = g.next_subgroup().await.unwrap();
        assert_eq!(&timeout(T, s.next()).await.unwrap().unwrap().payload[..], b"hello");
        track.end(TrackEnd::Ended);
        assert_eq!(timeout(T, consumer.closed()).await.unwrap(), TrackEnd::Ended);
        drop(published);
    }
}

#[tokio::test]
async fn goaway_stops_new_requests() {
    let origin = Origin::new();
    origin.publish_track(clock_track("clock"));
    let p = pair(false, origin, Origin::new()).await;
    p.server.goaway("moqt://elsewhere:443/", Duration::from_secs(1)).await.unwrap();
    match timeout(T, p.client.next_event()).await.unwrap() {
        Some(Event::GoAway { uri, timeout }) => {
            assert_eq!(uri, "moqt://elsewhere:443/");
            assert_eq!(timeout, Duration::from_secs(1));
        }
        other => panic!("{other:?}"),
    }
    let err = p.client.subscribe(name("clock", "clock"), SubscribeOptions::default()).await.unwrap_err();
    assert!(matches!(err, Error::Request(RequestFailure::GoingAway)), "{err}");
    // A client may not name a URI.
    assert!(p.client.goaway("moqt://x/", Duration::ZERO).await.is_err());
}

#[tokio::test]
async fn cancelling_a_subscription_stops_delivery() {
    let origin = Origin::new();
    let track = clock_track("clock");
    origin.publish_track(track.clone());
    let p = pair(false, origin, Origin::new()).await;
    let sub = p.client.subscribe(name("clock", "clock"), SubscribeOptions::default()).await.unwrap();
    let mut c = sub.consumer();
    track.write_group(0, [Object::new(0, "a")]).unwrap();
    assert_eq!(timeout(T, c.next_group()).await.unwrap().unwrap().id(), GroupId(0));
    drop(sub);
    // The subscriber's track ends as cancelled, and the publisher stops serving (no consumers left upstream).
    assert!(matches!(timeout(T, c.closed()).await.unwrap(), TrackEnd::Error(_)));
    tokio::time::sleep(Duration::from_millis(100)).await;
    track.write_group(1, [Object::new(0, "b")]).unwrap();
    // The session is still healthy.
    assert!(p.client.track_status(name("clock", "clock")).await.is_ok());
}

#[tokio::test]
async fn request_update_pauses_forwarding() {
    let origin = Origin::new();
    let track = clock_track("clock");
    origin.publish_track(track.clone());
    let p = pair(true, origin, Origin::new()).await;
    let sub = p.client.subscribe(name("clock", "clock"), SubscribeOptions::default()).await.unwrap();
    let mut c = sub.consumer();
    sub.update(moq_transport::wire::params::Parameters { forward: Some(false), ..Default::default() }).await.unwrap();
    track.write_group(0, [Object::new(0, "paused")]).unwrap();
    assert!(timeout(Duration::from_millis(300), c.next_group()).await.is_err(), "no objects while forward = 0");
    sub.update(moq_transport::wire::params::Parameters { forward: Some(true), ..Default::default() }).await.unwrap();
    track.write_group(1, [Object::new(0, "resumed")]).unwrap();
    assert_eq!(timeout(T, c.next_group()).await.unwrap().unwrap().id(), GroupId(1));
}

/// Payloads from empty to several hundred kilobytes arrive byte for byte: a payload may span many QUIC chunks,
/// share a chunk with its header and the next object's, or fill exactly one.
async fn payloads_of_every_size_arrive_intact(webtransport: bool) {
    let origin = Origin::new();
    let track = TrackProducer::new(TrackInfo::new(name("sizes", "blob")));
    origin.publish_track(track.clone());
    let p = pair(webtransport, origin, Origin::new()).await;
    let sub =
        timeout(T, p.client.subscribe(name("sizes", "blob"), SubscribeOptions::default())).await.unwrap().unwrap();
    let mut consumer = sub.consumer();
    let sizes = [0usize, 1, 100, 1_199, 1_200, 1_500, 40_000, 65_536, 65_537, 300_000, 3];
    let payload = |i: usize, n: usize| Bytes::from((0..n).map(|b| (b * 31 + i * 7) as u8).collect::<Vec<u8>>());
    let group = track.create_group(0).unwrap();
    let sg = group.create_subgroup(0, 0);
    for (i, n) in sizes.iter().enumerate() {
        sg.write(Object::new(i as u64, payload(i, *n))).unwrap();
    }
    sg.finish();
    group.finish();
    let mut g = timeout(T, consumer.next_group()).await.unwrap().unwrap();
    let mut s = timeout(T, g.next_subgroup()).await.unwrap().unwrap();
    for (i, n) in sizes.iter().enumerate() {
        let o = timeout(T, s.next()).await.unwrap().unwrap();
        assert_eq!(o.id.0, i as u64);
        assert!(o.payload == payload(i, *n), "object {i} ({n} bytes) arrived altered ({} bytes)", o.payload.len());
    }
    drop(p);
}

#[tokio::test]
async fn payload_sizes_raw_quic() {
    payloads_of_every_size_arrive_intact(false).await;
}

#[tokio::test]
async fn payload_sizes_webtransport() {
    payloads_of_every_size_arrive_intact(true).await;
}

/// A client that closes and exits at once (its runtime shut down, as a process exiting) still tells the server:
/// the server sees the session end with NO_ERROR, not a reset control stream and then 30 s of silence.
#[test]
fn a_client_that_closes_and_exits_tells_the_server() {
    let server_rt = tokio::runtime::Runtime::new().unwrap();
    let cert = Certificate::self_signed(&["localhost"]).unwrap();
    let fp = cert.sha256();
    let server =
        server_rt.block_on(async { Server::bind("127.0.0.1:0".parse().unwrap(), cert, SessionConfig::default()) });
    let server = server.unwrap();
    let port = server.local_addr().unwrap().port();
    let accepted = server_rt.spawn(async move {
        // The close may land while the server is still completing SETUP: then establishing fails with it.
        let why = match server.accept().await.unwrap().establish().await {
            Ok((session, _)) => timeout(Duration::from_secs(2), session.closed()).await.map(|e| e.session_code()),
            Err(e) => Ok(e.session_code()),
        };
        (why, server)
    });
    // The client lives in its own runtime, dropped right after closing: nothing it spawned runs after that.
    let client_rt = tokio::runtime::Runtime::new().unwrap();
    client_rt.block_on(async {
        let client = Client::new(Trust::Fingerprints(vec![fp]), SessionConfig::default()).unwrap();
        let url = Url::parse(&format!("moqt://localhost:{port}/")).unwrap();
        let session = client.connect(&url).await.unwrap();
        session.close_and_wait(moq_transport::wire::codes::SessionCode::NoError, "bye").await;
        client.wait_idle(Duration::from_millis(500)).await;
    });
    drop(client_rt);
    let (why, _server) = server_rt.block_on(accepted).unwrap();
    assert_eq!(why.ok(), Some(moq_transport::wire::codes::SessionCode::NoError), "the server never heard the close");
}

/// The controller a client connects with, read back from its quinn connection.
async fn congestion_of(congestion: Option<Congestion>) -> Box<dyn std::any::Any> {
    let cert = Certificate::self_signed(&["localhost"]).unwrap();
    let fp = cert.sha256();
    let server = Server::bind("127.0.0.1:0".parse().unwrap(), cert, SessionConfig::default()).unwrap();
    let port = server.local_addr().unwrap().port();
    let mut config = SessionConfig::default();
    if let Some(c) = congestion {
        config.congestion = c;
    }
    let client = Client::new(Trust::Fingerprints(vec![fp]), config).unwrap();
    let url = Url::parse(&format!("moqt://localhost:{port}/")).unwrap();
    let accept = async {
        let incoming = server.accept().await.unwrap();
        let _ = incoming.establish().await;
    };
    let connect = async {
        let (transport, _) = client.connect_transport(&url).await.unwrap();
        transport.congestion_state().into_any()
    };
    tokio::select! {
        state = connect => state,
        _ = accept => panic!("the server side ended first"),
    }
}

#[tokio::test]
async fn bbr_is_the_default_congestion_controller_and_others_can_be_chosen() {
    assert!(congestion_of(None).await.downcast::<quinn::congestion::Bbr>().is_ok());
    assert!(congestion_of(Some(Congestion::Cubic)).await.downcast::<quinn::congestion::Cubic>().is_ok());
    assert!(congestion_of(Some(Congestion::NewReno)).await.downcast::<quinn::congestion::NewReno>().is_ok());
    assert_eq!("BBR".parse::<Congestion>(), Ok(Congestion::Bbr));
    assert!("vegas".parse::<Congestion>().is_err());
}

/// A WebTransport client that offers no protocol (Firefox's WebTransport has no protocol negotiation) gets the
/// newest draft, and the server's response names none; before, the server refused the CONNECT with 400.
#[tokio::test]
async fn a_webtransport_client_offering_no_protocol_gets_the_newest_draft() {
    let cert = Certificate::self_signed(&["localhost"]).unwrap();
    let fp = cert.sha256();
    let origin = Origin::new();
    let track = clock_track("clock");
    origin.publish_track(track.clone());
    let server =
        Server::bind("127.0.0.1:0".parse().unwrap(), cert, SessionConfig { origin, ..Default::default() }).unwrap();
    let addr = server.local_addr().unwrap();
    let mut tls = moq_transport::tls::client_config(&Trust::Fingerprints(vec![fp])).unwrap();
    tls.alpn_protocols = vec![web_transport_quinn::ALPN.as_bytes().to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap();
    let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    let url = Url::parse(&format!("https://localhost:{}/", addr.port())).unwrap();
    let client = async {
        let config = quinn::ClientConfig::new(std::sync::Arc::new(crypto));
        let conn = endpoint.connect_with(config, addr, "localhost").unwrap().await.unwrap();
        let request = web_transport_quinn::proto::ConnectRequest::new(url);
        let wt = web_transport_quinn::Session::connect(conn, request).await.unwrap();
        assert_eq!(wt.protocol(), None, "no protocol was offered, so none is chosen");
        Session::establish(wt, Version::Draft19, Role::Client, SessionConfig::default()).await.unwrap()
    };
    let (client, accepted) = tokio::join!(client, async { server.accept().await.unwrap().establish().await });
    let (_server_session, accepted) = accepted.unwrap();
    assert_eq!(accepted.version, Version::Draft19);
    let sub = timeout(T, client.subscribe(name("clock", "clock"), SubscribeOptions::default())).await.unwrap().unwrap();
    track.write_group(0, [Object::new(0, "tick")]).unwrap();
    let mut consumer = sub.consumer();
    let mut group = timeout(T, consumer.next_group()).await.unwrap().unwrap();
    let mut subgroup = timeout(T, group.next_subgroup()).await.unwrap().unwrap();
    assert_eq!(timeout(T, subgroup.next()).await.unwrap().unwrap().payload, "tick");
}
