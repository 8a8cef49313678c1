//! The public interop-runner test cases (englishm/moq-interop-runner, docs/tests/TEST-CASES.md, written for
//! draft-18) as loopback tests against moq-relay, each within the case's own timeout, at draft 18 and 19. The
//! publisher side is written by hand (common/raw.rs) so that its messages are exactly the case's.

mod common;

use std::time::Duration;

use common::raw::RawPeer;
use common::*;
use moq_transport::wire::Version;
use moq_transport::wire::codes::{PublishDoneCode, RequestErrorCode};
use moq_transport::wire::control::*;
use moq_transport::wire::data::SubgroupIdMode;
use moq_transport::wire::kvp::ReasonPhrase;
use moq_transport::*;
use tokio::time::timeout;

const VERSIONS: [Version; 2] = [Version::Draft18, Version::Draft19];

/// The case's timeout, checked around everything it does.
async fn within<F: std::future::Future>(seconds: f64, case: &str, f: F) -> F::Output {
    timeout(Duration::from_secs_f64(seconds), f).await.unwrap_or_else(|_| panic!("{case}: over its timeout"))
}

#[tokio::test]
async fn setup_only() {
    let relay = start().await;
    for v in VERSIONS {
        // RawPeer::connect sends SETUP and requires the relay's SETUP.
        let peer = within(2.0, "setup-only", RawPeer::connect(&relay, v)).await;
        web_transport_trait::Session::close(&peer.session, 0, "done");
    }
}

#[tokio::test]
async fn announce_only_and_publish_namespace_done() {
    let relay = start().await;
    let watcher = relay.connect(false, Origin::new()).await;
    let mut namespaces =
        watcher.subscribe_namespace(moq_transport::wire::namespace::TrackNamespace::empty()).await.unwrap();
    for v in VERSIONS {
        let mut peer = RawPeer::connect(&relay, v).await;
        // announce-only: REQUEST_OK (PUBLISH_NAMESPACE_OK), no error.
        let (mut send, mut reader) = within(2.0, "announce-only", peer.announce("moq-test/interop")).await;
        let ns = moq_transport::wire::namespace::TrackNamespace::from_path("moq-test/interop").unwrap();
        assert_eq!(within(2.0, "announce-only", namespaces.next()).await, Some(NamespaceEvent::Added(ns.clone())));
        // publish-namespace-done: cancelling the request stream withdraws the namespace.
        send.reset(0).unwrap();
        reader.stop(moq_transport::wire::codes::StreamCode::Cancelled);
        assert_eq!(within(2.0, "publish-namespace-done", namespaces.next()).await, Some(NamespaceEvent::Removed(ns)));
    }
}

#[tokio::test]
async fn subscribe_error() {
    let relay = start().await;
    for v in VERSIONS {
        let mut peer = RawPeer::connect(&relay, v).await;
        let request_id = peer.request_id();
        let track = name("nonexistent/namespace", "test-track");
        let sub = Subscribe { request_id, track, params: Default::default() };
        let (_send, _reader, answer) = within(2.0, "subscribe-error", peer.request(sub.into())).await;
        let ControlMessage::RequestError(e) = answer else { panic!("expected REQUEST_ERROR, got {answer:?}") };
        assert_eq!(e.code, RequestErrorCode::DoesNotExist);
    }
}

#[tokio::test]
async fn announce_subscribe() {
    let relay = start().await;
    for (i, v) in VERSIONS.into_iter().enumerate() {
        let ns = format!("moq-test/interop{i}");
        let mut publisher = RawPeer::connect(&relay, v).await;
        let _announce = publisher.announce(&ns).await;
        let subscriber = relay.connect(false, Origin::new()).await;
        let (sub, upstream) = within(3.0, "announce-subscribe", async {
            tokio::join!(
                subscriber.subscribe(name(&ns, "test-track"), SubscribeOptions::default()),
                publisher.accept_subscribe(1)
            )
        })
        .await;
        assert!(sub.is_ok(), "{:?}", sub.err());
        drop(upstream);
    }
}

#[tokio::test]
async fn subscribe_before_announce() {
    let relay = start().await;
    for (i, v) in VERSIONS.into_iter().enumerate() {
        let ns = format!("moq-test/early{i}");
        let subscriber = relay.connect(false, Origin::new()).await;
        let options = SubscribeOptions { rendezvous: Some(Duration::from_secs(3)), ..Default::default() };
        let track = name(&ns, "test-track");
        let pending = tokio::spawn(async move { (subscriber.subscribe(track, options).await, subscriber) });
        // The publisher starts 500 ms after the subscriber.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut publisher = RawPeer::connect(&relay, v).await;
        let _announce = publisher.announce(&ns).await;
        let (_upstream, pending) =
            within(3.0, "subscribe-before-announce", async { tokio::join!(publisher.accept_subscribe(1), pending) })
                .await;
        let (sub, _subscriber) = pending.unwrap();
        // We hold the SUBSCRIBE (rendezvous) rather than refuse it: it succeeds once the publisher is there.
        assert!(sub.is_ok(), "{:?}", sub.err());
    }
}

#[tokio::test]
async fn publish_track_only() {
    let relay = start().await;
    for v in VERSIONS {
        let mut publisher = RawPeer::connect(&relay, v).await;
        let (mut send, _reader, ok) =
            within(10.0, "publish-track-only", publisher.publish("moq-test/publish", "published-track", 1)).await;
        // An omitted FORWARD means 1: the publisher sends its object.
        assert_ne!(ok.params.forward, Some(false));
        let mut s = publisher.subgroup(1, 0, SubgroupIdMode::Zero, true).await;
        s.object(0, b"moqt18-publish-track-only").await;
        s.finish();
        let done =
            PublishDone { status: PublishDoneCode::TrackEnded, stream_count: 1, reason: ReasonPhrase::default() };
        send.write_all(&common::raw::frame(done.into(), v)).await.unwrap();
        send.finish().unwrap();
        // The relay accepted it all: the session is still up.
        assert!(
            timeout(Duration::from_millis(200), web_transport_trait::Session::closed(&publisher.session))
                .await
                .is_err()
        );
    }
}

#[tokio::test]
async fn publish_track_subscribe() {
    let relay = start().await;
    for (i, v) in VERSIONS.into_iter().enumerate() {
        let ns = format!("moq-test/publish{i}");
        let subscriber = relay.connect(false, Origin::new()).await;
        let options = SubscribeOptions { rendezvous: Some(Duration::from_secs(5)), ..Default::default() };
        let track = name(&ns, "published-track");
        let pending = tokio::spawn(async move { (subscriber.subscribe(track, options).await, subscriber) });
        tokio::time::sleep(Duration::from_millis(100)).await;
        within(10.0, "publish-track-subscribe", async {
            let mut publisher = RawPeer::connect(&relay, v).await;
            let (mut send, _reader, ok) = publisher.publish(&ns, "published-track", 9).await;
            assert_ne!(ok.params.forward, Some(false));
            // The pending SUBSCRIBE is matched to the PUBLISHed track.
            let (sub, _subscriber) = pending.await.unwrap();
            let sub = sub.expect("SUBSCRIBE_OK");
            let mut s = publisher.subgroup(9, 0, SubgroupIdMode::Zero, true).await;
            s.object(0, b"moqt18-publish-track-subscribe").await;
            s.finish();
            let done =
                PublishDone { status: PublishDoneCode::TrackEnded, stream_count: 1, reason: ReasonPhrase::default() };
            send.write_all(&common::raw::frame(done.into(), v)).await.unwrap();
            send.finish().unwrap();
            // Exactly group 0, subgroup 0, object 0 with the payload, then the track ends.
            let mut c = sub.consumer();
            let mut g = c.next_group().await.unwrap();
            let mut sg = g.next_subgroup().await.unwrap();
            let o = sg.next().await.unwrap();
            assert_eq!((g.id().0, sg.id().0, o.id.0), (0, 0, 0));
            assert_eq!(&o.payload[..], b"moqt18-publish-track-subscribe");
            assert_eq!(c.closed().await, TrackEnd::Ended);
        })
        .await;
    }
}
