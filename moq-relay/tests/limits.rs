//! Every resource a client can make the relay hold has a limit: requests, subscriptions, namespaces and prefixes
//! per session, updates per second, sessions and handshakes per address; each is refused with the draft's code,
//! counted on /metrics, and leaves everyone else untouched.

mod common;

use std::time::Duration;

use common::raw::{RawPeer, frame};
use common::*;
use moq_relay::Config;
use moq_transport::quic::Client;
use moq_transport::wire::codes::RequestErrorCode;
use moq_transport::wire::control::*;
use moq_transport::wire::namespace::TrackNamespace;
use moq_transport::wire::params::Parameters;
use moq_transport::wire::{RequestId, Version};
use moq_transport::*;
use tokio::time::timeout;

fn ns(p: &str) -> TrackNamespace {
    TrackNamespace::from_path(p).unwrap()
}

fn excessive(m: &ControlMessage) -> bool {
    matches!(m, ControlMessage::RequestError(e) if e.code == RequestErrorCode::ExcessiveLoad)
}

fn ok(m: &ControlMessage) -> bool {
    matches!(m, ControlMessage::RequestOk(_) | ControlMessage::SubscribeOk(_))
}

fn subscribe(request_id: RequestId, track: &str) -> ControlMessage {
    Subscribe { request_id, track: name("live/a", track), params: Parameters::default() }.into()
}

fn announce(request_id: RequestId, p: &str) -> ControlMessage {
    PublishNamespace { request_id, namespace: ns(p), params: Parameters::default() }.into()
}

fn prefix(request_id: RequestId, p: &str) -> ControlMessage {
    SubscribeNamespace { request_id, prefix: ns(p), params: Parameters::default() }.into()
}

/// Opens a request made by `msg` with the peer's next Request ID; returns its streams and the first answer.
async fn ask(
    peer: &mut RawPeer,
    msg: impl FnOnce(RequestId) -> ControlMessage,
) -> (web_transport_quinn::SendStream, common::raw::MessageReader, ControlMessage) {
    let id = peer.request_id();
    peer.request(msg(id)).await
}

#[tokio::test]
async fn subscriptions_namespaces_and_prefixes_per_session() {
    let config = Config { max_subscriptions: 2, max_namespaces: 1, max_prefixes: 1, max_requests: 4, ..test_config() };
    let relay = start_with(config).await;
    let (_p, _track, _ann) = relay.publisher("live/a").await;
    let mut peer = RawPeer::connect(&relay, Version::Draft19).await;
    let (first, _r1, a1) = ask(&mut peer, |id| subscribe(id, "video")).await;
    let (_s2, _r2, a2) = ask(&mut peer, |id| subscribe(id, "video")).await;
    let (_s3, _r3, a3) = ask(&mut peer, |id| subscribe(id, "video")).await;
    assert!(ok(&a1) && ok(&a2), "{a1:?} {a2:?}");
    assert!(excessive(&a3), "the third subscription: {a3:?}");
    assert_eq!(relay.metric("moq_relay_refused_subscriptions_total").await, 1);
    // Ending one frees its slot.
    drop((first, _r1));
    let again = timeout(T, async {
        loop {
            let (s, r, a) = ask(&mut peer, |id| subscribe(id, "video")).await;
            if ok(&a) {
                break (s, r);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("a slot comes back when a subscription ends");

    let (_n1, _rn1, n1) = ask(&mut peer, |id| announce(id, "live/b")).await;
    let (_n2, _rn2, n2) = ask(&mut peer, |id| announce(id, "live/c")).await;
    assert!(ok(&n1) && excessive(&n2), "{n1:?} {n2:?}");
    assert_eq!(relay.metric("moq_relay_refused_namespaces_total").await, 1);

    // Two subscriptions and a namespace are open: one more request of any kind reaches --max-requests (4).
    let (_p1, _rp1, p1) = ask(&mut peer, |id| prefix(id, "x")).await;
    assert!(ok(&p1), "{p1:?}");
    let (_p2, _rp2, p2) = ask(&mut peer, |id| prefix(id, "y")).await;
    assert!(excessive(&p2), "{p2:?}");
    assert_eq!(relay.metric("moq_relay_refused_requests_total").await, 1);
    drop(again);

    // The limits are per session: another session starts afresh.
    let mut other = RawPeer::connect(&relay, Version::Draft19).await;
    let (_o, _ro, o) = ask(&mut other, |id| subscribe(id, "video")).await;
    assert!(ok(&o), "{o:?}");
}

#[tokio::test]
async fn prefixes_per_session() {
    let relay = start_with(Config { max_prefixes: 1, ..test_config() }).await;
    let mut peer = RawPeer::connect(&relay, Version::Draft18).await;
    let msg = |request_id: RequestId, p: &str| -> ControlMessage {
        SubscribeTracks { request_id, prefix: ns(p), params: Parameters::default() }.into()
    };
    let (_a, _ra, a) = ask(&mut peer, |id| msg(id, "x")).await;
    let (_b, _rb, b) = ask(&mut peer, |id| msg(id, "y")).await;
    assert!(ok(&a) && excessive(&b), "{a:?} {b:?}");
    assert_eq!(relay.metric("moq_relay_refused_prefixes_total").await, 1);
}

#[tokio::test]
async fn updates_per_second_per_session() {
    // A burst of 2, then one a second: the third update in a row is refused, the request goes on.
    let relay = start_with(Config { max_updates_per_second: 1.0, ..test_config() }).await;
    let mut peer = RawPeer::connect(&relay, Version::Draft19).await;
    let msg = SubscribeNamespace { request_id: peer.request_id(), prefix: ns("live"), params: Parameters::default() };
    let (mut send, mut reader, answer) = peer.request(msg.into()).await;
    assert!(ok(&answer));
    let mut answers = Vec::new();
    for _ in 0..3 {
        let update = RequestUpdate { request_id: peer.request_id(), params: Parameters::default() };
        send.write_all(&frame(update.into(), peer.version)).await.unwrap();
        answers.push(timeout(T, reader.next()).await.unwrap().unwrap());
    }
    assert!(ok(&answers[0]) && ok(&answers[1]), "{answers:?}");
    assert!(excessive(&answers[2]), "{answers:?}");
    assert_eq!(relay.metric("moq_relay_refused_updates_total").await, 1);
    // Still subscribed: a namespace published now is announced on it.
    let (_p, _t, _ann) = relay.publisher("live/new").await;
    let next = timeout(T, reader.next()).await.unwrap();
    assert!(matches!(next, Some(ControlMessage::Namespace(_))), "{next:?}");
}

async fn try_connect(relay: &Running) -> Result<Session, Error> {
    let client = Client::new(relay.trust.clone(), SessionConfig::default()).unwrap();
    timeout(T, client.connect(&relay.url(false))).await.expect("connect finishes")
}

#[tokio::test]
async fn sessions_per_address() {
    let config = Config { max_sessions_per_address: 2, limit_loopback: true, ..test_config() };
    let relay = start_with(config).await;
    let first = try_connect(&relay).await.unwrap();
    let _second = try_connect(&relay).await.unwrap();
    assert!(try_connect(&relay).await.is_err(), "a third session from the address is refused");
    assert_eq!(relay.metric("moq_relay_refused_sessions_per_address_total").await, 1);
    first.close_and_wait(moq_transport::wire::codes::SessionCode::NoError, "bye").await;
    drop(first);
    timeout(T, async {
        while try_connect(&relay).await.is_err() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("a slot comes back when a session ends");
}

#[tokio::test]
async fn handshakes_per_address() {
    // One handshake now, the next in 100 s.
    let config = Config { handshakes_per_second: 0.01, limit_loopback: true, ..test_config() };
    let relay = start_with(config).await;
    let _first = try_connect(&relay).await.unwrap();
    assert!(try_connect(&relay).await.is_err());
    assert_eq!(relay.metric("moq_relay_refused_handshakes_total").await, 1);
}

#[tokio::test]
async fn retry_validates_addresses_under_a_flood() {
    // Any rate is "a flood": every client is sent a Retry first, and connects once it has proven its address.
    let config = Config { retry_above: 0.0, limit_loopback: true, ..test_config() };
    let relay = start_with(config).await;
    let session = try_connect(&relay).await.expect("a client that answers the Retry connects");
    drop(session);
    assert!(relay.metric("moq_relay_quic_retries_total").await >= 1);
}

/// The sessions of one address share a subscription budget.
#[tokio::test]
async fn subscriptions_per_address() {
    let config = Config { max_subscriptions_per_address: 3, limit_loopback: true, ..test_config() };
    let relay = start_with(config).await;
    let (_p, _track, _ann) = relay.publisher("live/a").await;
    let mut one = RawPeer::connect(&relay, Version::Draft19).await;
    let mut two = RawPeer::connect(&relay, Version::Draft19).await;
    let (_a, _ra, a) = ask(&mut one, |id| subscribe(id, "video")).await;
    let (_b, _rb, b) = ask(&mut one, |id| subscribe(id, "video")).await;
    let (_c, _rc, c) = ask(&mut two, |id| subscribe(id, "video")).await;
    let (_d, _rd, d) = ask(&mut two, |id| subscribe(id, "video")).await;
    assert!(ok(&a) && ok(&b) && ok(&c), "{a:?} {b:?} {c:?}");
    assert!(excessive(&d), "the address's fourth subscription: {d:?}");
    assert_eq!(relay.metric("moq_relay_refused_subscriptions_total").await, 1);
}

/// `--trusted-address` (another relay of a cluster) is held to neither the per-address nor the per-session limits.
#[tokio::test]
async fn trusted_addresses_are_not_limited() {
    let config = Config {
        max_sessions_per_address: 1,
        max_subscriptions: 1,
        limit_loopback: true,
        trusted_address: vec!["127.0.0.1".parse().unwrap()],
        ..test_config()
    };
    let relay = start_with(config).await;
    let (_p, _track, _ann) = relay.publisher("live/a").await;
    let mut one = RawPeer::connect(&relay, Version::Draft19).await;
    let _two = RawPeer::connect(&relay, Version::Draft19).await;
    let (_a, _ra, a) = ask(&mut one, |id| subscribe(id, "video")).await;
    let (_b, _rb, b) = ask(&mut one, |id| subscribe(id, "video")).await;
    assert!(ok(&a) && ok(&b), "{a:?} {b:?}");
}
