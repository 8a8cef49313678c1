//! A token reaches no further than its grant: every request kind beyond it is refused, and an update that would
//! widen a granted SUBSCRIBE_NAMESPACE or SUBSCRIBE_TRACKS is refused with the old prefix kept, at both drafts.

mod common;

use bytes::Bytes;
use common::raw::{MessageReader, RawPeer};
use common::*;
use moq_relay::auth::{Claims, now, sign};
use moq_transport::quic::Client;
use moq_transport::wire::codes::RequestErrorCode;
use moq_transport::wire::control::*;
use moq_transport::wire::namespace::TrackNamespace;
use moq_transport::wire::params::Parameters;
use moq_transport::wire::token::AuthToken;
use moq_transport::wire::{Location, Version};
use moq_transport::*;
use tokio::time::timeout;

struct Fixture {
    relay: Running,
    key: Vec<u8>,
    dir: std::path::PathBuf,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn relay_with_auth(tag: &str) -> Fixture {
    let dir = std::env::temp_dir().join(format!("moq-authz-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key_path = dir.join("key.hex");
    std::fs::write(&key_path, moq_relay::auth::generate_key().unwrap()).unwrap();
    let key = moq_relay::auth::load_key(&key_path).unwrap();
    let relay = start_with(moq_relay::Config { auth_key: Some(key_path), ..test_config() }).await;
    Fixture { relay, key, dir }
}

impl Fixture {
    fn token(&self, publish: &[&str], subscribe: &[&str]) -> String {
        let claims = Claims {
            publish: publish.iter().map(|s| s.to_string()).collect(),
            subscribe: subscribe.iter().map(|s| s.to_string()).collect(),
            exp: now() + 60,
        };
        sign(&self.key, &claims).unwrap()
    }

    /// A session whose SETUP carries `token`.
    async fn session(&self, token: &str, origin: Origin) -> Session {
        let config =
            SessionConfig { origin, auth_tokens: vec![AuthToken::value(token.to_string())], ..Default::default() };
        let client = Client::new(self.relay.trust.clone(), config).unwrap();
        timeout(T, client.connect(&self.relay.url(false))).await.unwrap().unwrap()
    }

    /// A session with `token` that PUBLISHes `ns`/video to the relay.
    async fn pusher(&self, token: &str, ns: &str) -> (Session, TrackProducer, Published) {
        let track = TrackProducer::new(TrackInfo::new(name(ns, "video")));
        let session = self.session(token, Origin::new()).await;
        let published = session.publish(track.clone()).await.unwrap();
        (session, track, published)
    }

    /// A session with `token`, publishing `ns`/video (announced).
    async fn publisher(&self, token: &str, ns: &str) -> (Session, TrackProducer, Announcement) {
        let origin = Origin::new();
        let track = TrackProducer::new(TrackInfo::new(name(ns, "video")));
        origin.publish_track(track.clone());
        let session = self.session(token, origin).await;
        let ann = session.publish_namespace(TrackNamespace::from_path(ns).unwrap()).await.unwrap();
        (session, track, ann)
    }
}

fn with_token(token: &str) -> Parameters {
    Parameters { auth_tokens: vec![AuthToken::value(Bytes::from(token.to_string()))], ..Default::default() }
}

fn ns(p: &str) -> TrackNamespace {
    TrackNamespace::from_path(p).unwrap()
}

fn is_unauthorized(m: &ControlMessage) -> bool {
    matches!(m, ControlMessage::RequestError(e) if e.code == RequestErrorCode::Unauthorized)
}

/// SUBSCRIBE, FETCH, TRACK_STATUS, PUBLISH, PUBLISH_NAMESPACE, SUBSCRIBE_NAMESPACE and SUBSCRIBE_TRACKS beyond
/// the grant are each refused with UNAUTHORIZED; within it they are accepted.
#[tokio::test]
async fn every_request_kind_beyond_the_grant_is_refused() {
    for version in [Version::Draft19, Version::Draft18] {
        let f = relay_with_auth(&format!("kinds{version:?}")).await;
        let alice = f.token(&["live/alice"], &[]);
        let (_alice, track, _ann) = f.publisher(&alice, "live/alice/secret").await;
        track.write_group(0, [Object::new(0, "secret")]).unwrap();
        let bob = f.token(&["live/bob"], &["live/bob"]);
        let mut peer = RawPeer::connect(&f.relay, version).await;
        let secret = name("live/alice/secret", "video");
        let requests: Vec<ControlMessage> = vec![
            Subscribe { request_id: peer.request_id(), track: secret.clone(), params: with_token(&bob) }.into(),
            Fetch {
                request_id: peer.request_id(),
                fetch_type: FetchType::Standalone {
                    track: secret.clone(),
                    start: Location::new(0, 0),
                    end: Location::new(1, 0),
                },
                params: with_token(&bob),
            }
            .into(),
            TrackStatus { request_id: peer.request_id(), track: secret.clone(), params: with_token(&bob) }.into(),
            Publish {
                request_id: peer.request_id(),
                track: name("live/alice/fake", "video"),
                track_alias: moq_transport::wire::TrackAlias(7),
                params: with_token(&bob),
                track_properties: Default::default(),
            }
            .into(),
            PublishNamespace { request_id: peer.request_id(), namespace: ns("live/alice"), params: with_token(&bob) }
                .into(),
            SubscribeNamespace { request_id: peer.request_id(), prefix: ns("live"), params: with_token(&bob) }.into(),
            SubscribeTracks { request_id: peer.request_id(), prefix: ns("live/alice"), params: with_token(&bob) }
                .into(),
        ];
        for msg in requests {
            let what = msg.name();
            let (_send, _reader, answer) = peer.request(msg).await;
            assert!(is_unauthorized(&answer), "{version:?} {what}: {answer:?}");
        }
        // Within the grant the same kinds pass (the session survived every refusal).
        let msg =
            PublishNamespace { request_id: peer.request_id(), namespace: ns("live/bob"), params: with_token(&bob) };
        let (_send, _reader, answer) = peer.request(msg.into()).await;
        assert!(matches!(answer, ControlMessage::RequestOk(_)), "{version:?}: {answer:?}");
        // Without any token, nothing.
        let msg =
            Subscribe { request_id: peer.request_id(), track: name("live/bob", "x"), params: Parameters::default() };
        let (_send, _reader, answer) = peer.request(msg.into()).await;
        assert!(is_unauthorized(&answer), "{version:?}: {answer:?}");
    }
}

/// Sends a REQUEST_UPDATE moving a request's prefix and returns the answer.
async fn update_prefix(
    peer: &mut RawPeer,
    send: &mut web_transport_quinn::SendStream,
    reader: &mut MessageReader,
    prefix: &str,
) -> ControlMessage {
    let update = RequestUpdate {
        request_id: peer.request_id(),
        params: Parameters { track_namespace_prefix: Some(ns(prefix)), ..Default::default() },
    };
    send.write_all(&common::raw::frame(update.into(), peer.version)).await.unwrap();
    timeout(T, reader.next()).await.unwrap().expect("an answer to the update")
}

/// Bob may subscribe under live/bob. Moving his SUBSCRIBE_NAMESPACE to `live` or to the empty prefix is refused,
/// and the namespaces he then hears of are his own only.
#[tokio::test]
async fn a_namespace_subscription_cannot_be_widened() {
    for version in [Version::Draft19, Version::Draft18] {
        let f = relay_with_auth(&format!("ns{version:?}")).await;
        let (_a, _t, _ann) = f.publisher(&f.token(&["live/alice"], &[]), "live/alice/secret").await;
        let bob = f.token(&["live/bob"], &["live/bob"]);
        let mut peer = RawPeer::connect(&f.relay, version).await;
        let msg =
            SubscribeNamespace { request_id: peer.request_id(), prefix: ns("live/bob"), params: with_token(&bob) };
        let (mut send, mut reader, answer) = peer.request(msg.into()).await;
        assert!(matches!(answer, ControlMessage::RequestOk(_)), "{answer:?}");
        for wider in ["live", ""] {
            let answer = update_prefix(&mut peer, &mut send, &mut reader, wider).await;
            assert!(is_unauthorized(&answer), "{version:?} update to {wider:?}: {answer:?}");
        }
        // Bob's own namespace appears next, relative to the old prefix, and nothing of alice's came before it.
        let (_b, _bt, _bann) = f.publisher(&bob, "live/bob/cam").await;
        let next = timeout(T, reader.next()).await.unwrap();
        let Some(ControlMessage::Namespace(n)) = next else { panic!("{version:?}: expected NAMESPACE, got {next:?}") };
        assert_eq!(n.suffix, ns("cam"), "{version:?}");
    }
}

/// The same for SUBSCRIBE_TRACKS: after refused widenings, the relay PUBLISHes bob's track and never alice's.
#[tokio::test]
async fn a_tracks_subscription_cannot_be_widened() {
    for version in [Version::Draft19, Version::Draft18] {
        let f = relay_with_auth(&format!("tracks{version:?}")).await;
        let (_a, track, _pushed) = f.pusher(&f.token(&["live/alice"], &[]), "live/alice/secret").await;
        track.write_group(0, [Object::new(0, "secret")]).unwrap();
        let bob = f.token(&["live/bob"], &["live/bob"]);
        let mut peer = RawPeer::connect(&f.relay, version).await;
        let msg = SubscribeTracks { request_id: peer.request_id(), prefix: ns("live/bob"), params: with_token(&bob) };
        let (mut send, mut reader, answer) = peer.request(msg.into()).await;
        assert!(matches!(answer, ControlMessage::RequestOk(_)), "{answer:?}");
        for wider in ["live", ""] {
            let answer = update_prefix(&mut peer, &mut send, &mut reader, wider).await;
            assert!(is_unauthorized(&answer), "{version:?} update to {wider:?}: {answer:?}");
        }
        let (_b, bob_track, _bob_pushed) = f.pusher(&bob, "live/bob/cam").await;
        bob_track.write_group(0, [Object::new(0, "mine")]).unwrap();
        let (_s, recv) = timeout(T, peer.session.accept_bi()).await.expect("a PUBLISH").unwrap();
        let mut publish = MessageReader::new(recv, version);
        let first = timeout(T, publish.next()).await.unwrap();
        let Some(ControlMessage::Publish(p)) = first else { panic!("{version:?}: expected PUBLISH, got {first:?}") };
        assert_eq!(p.track, name("live/bob/cam", "video"), "{version:?}: only bob's track may be published to him");
    }
}

/// Waits for the session to be closed by the relay and returns the close code.
async fn close_code(session: &web_transport_quinn::Session) -> u32 {
    use web_transport_quinn::{SessionError, WebTransportError};
    match timeout(T, session.closed()).await.expect("the relay closes the session") {
        SessionError::ConnectionError(quinn::ConnectionError::ApplicationClosed(c)) => c.error_code.into_inner() as u32,
        SessionError::WebTransportError(WebTransportError::Closed(code, _)) => code,
        other => panic!("unexpected close: {other:?}"),
    }
}

/// The token as a SETUP option (no URL query), over raw QUIC and WebTransport, at both drafts; and through the
/// alias cache: REGISTER once, then USE_ALIAS.
#[tokio::test]
async fn tokens_work_as_setup_options_and_aliases() {
    let f = relay_with_auth("setup").await;
    let bob = f.token(&["live/bob"], &["live/bob"]);
    for version in [Version::Draft19, Version::Draft18] {
        for webtransport in [false, true] {
            let tokens = vec![AuthToken::value(Bytes::from(bob.clone()))];
            let mut peer = RawPeer::connect_with_tokens(&f.relay, version, webtransport, tokens).await;
            let msg = PublishNamespace {
                request_id: peer.request_id(),
                namespace: ns(&format!("live/bob/{}{webtransport}", version.draft())),
                params: Parameters::default(),
            };
            let (_s, _r, answer) = peer.request(msg.into()).await;
            assert!(matches!(answer, ControlMessage::RequestOk(_)), "{version:?} wt={webtransport}: {answer:?}");
        }
        let mut peer = RawPeer::connect(&f.relay, version).await;
        let register = AuthToken::Register { alias: 9, token_type: 0, value: Bytes::from(bob.clone()) };
        let msg = PublishNamespace {
            request_id: peer.request_id(),
            namespace: ns("live/bob/a"),
            params: Parameters { auth_tokens: vec![register], ..Default::default() },
        };
        let (_s, _r, answer) = peer.request(msg.into()).await;
        assert!(matches!(answer, ControlMessage::RequestOk(_)), "{version:?} REGISTER: {answer:?}");
        let msg = PublishNamespace {
            request_id: peer.request_id(),
            namespace: ns("live/bob/b"),
            params: Parameters { auth_tokens: vec![AuthToken::UseAlias { alias: 9 }], ..Default::default() },
        };
        let (_s, _r, answer) = peer.request(msg.into()).await;
        assert!(matches!(answer, ControlMessage::RequestOk(_)), "{version:?} USE_ALIAS: {answer:?}");
        // The alias carries only its grant.
        let msg = PublishNamespace {
            request_id: peer.request_id(),
            namespace: ns("live/alice"),
            params: Parameters { auth_tokens: vec![AuthToken::UseAlias { alias: 9 }], ..Default::default() },
        };
        let (_s, _r, answer) = peer.request(msg.into()).await;
        assert!(is_unauthorized(&answer), "{version:?} USE_ALIAS beyond the grant: {answer:?}");
    }
}

/// `--max-auth-token-cache` bounds what a session may register; beyond it the session is closed with
/// AUTH_TOKEN_CACHE_OVERFLOW, counted on /metrics.
#[tokio::test]
async fn the_token_cache_is_bounded() {
    let relay = start_with(moq_relay::Config { max_auth_token_cache: 40, ..test_config() }).await;
    let mut peer = RawPeer::connect(&relay, Version::Draft19).await;
    // 16 + 20 bytes fit in 40; a second token does not.
    let register =
        |alias| AuthToken::Register { alias, token_type: 0, value: Bytes::from_static(b"01234567890123456789") };
    for alias in [1, 2] {
        let msg = SubscribeNamespace {
            request_id: peer.request_id(),
            prefix: ns(&format!("p{alias}")),
            params: Parameters { auth_tokens: vec![register(alias)], ..Default::default() },
        };
        let (mut send, recv) = peer.session.open_bi().await.unwrap();
        send.write_all(&common::raw::frame(msg.into(), Version::Draft19)).await.unwrap();
        let mut reader = MessageReader::new(recv, Version::Draft19);
        if alias == 1 {
            assert!(matches!(reader.next().await, Some(ControlMessage::RequestOk(_))));
        }
    }
    use moq_transport::wire::codes::SessionCode;
    assert_eq!(close_code(&peer.session).await as u64, SessionCode::AuthTokenCacheOverflow.to_u64());
    let metrics = timeout(T, async {
        loop {
            let m = relay.http_get("/metrics").await;
            if m.contains(r#"moq_relay_sessions_closed_total{code="AUTH_TOKEN_CACHE_OVERFLOW"} 1"#) {
                break m;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(metrics.is_ok(), "the close is counted by code");
}

/// The alias cache's session errors: DELETE or USE_ALIAS in SETUP, an unknown alias, a second REGISTER of one.
#[tokio::test]
async fn alias_misuse_closes_the_session_with_the_drafts_code() {
    use moq_transport::wire::codes::SessionCode;
    let f = relay_with_auth("alias").await;
    for version in [Version::Draft19, Version::Draft18] {
        for bad in [AuthToken::Delete { alias: 1 }, AuthToken::UseAlias { alias: 1 }] {
            let (session, _, _control) = common::raw::send_setup(&f.relay, version, false, vec![bad.clone()]).await;
            let code = close_code(&session).await;
            assert_eq!(code as u64, SessionCode::ProtocolViolation.to_u64(), "{version:?} {bad:?} in SETUP");
        }
        let cases: [(Vec<AuthToken>, SessionCode); 3] = [
            (vec![AuthToken::UseAlias { alias: 5 }], SessionCode::UnknownAuthTokenAlias),
            (vec![AuthToken::Delete { alias: 5 }], SessionCode::UnknownAuthTokenAlias),
            (
                vec![
                    AuthToken::Register { alias: 5, token_type: 0, value: Bytes::from_static(b"a") },
                    AuthToken::Register { alias: 5, token_type: 0, value: Bytes::from_static(b"b") },
                ],
                SessionCode::DuplicateAuthTokenAlias,
            ),
        ];
        for (tokens, expected) in cases {
            let mut peer = RawPeer::connect(&f.relay, version).await;
            let msg = SubscribeNamespace {
                request_id: peer.request_id(),
                prefix: ns("live"),
                params: Parameters { auth_tokens: tokens.clone(), ..Default::default() },
            };
            let (mut send, recv) = peer.session.open_bi().await.unwrap();
            send.write_all(&common::raw::frame(msg.into(), version)).await.unwrap();
            let _recv = recv;
            assert_eq!(close_code(&peer.session).await as u64, expected.to_u64(), "{version:?} {tokens:?}");
        }
    }
}

/// Over a WebSocket, a token in the URL's query authorizes as it does on WebTransport (the upgrade's path is the
/// session's), and the grant's limits hold.
#[tokio::test]
async fn a_websocket_url_token_authorizes_like_a_webtransport_one() {
    let f = relay_with_auth("ws-url").await;
    let token = f.token(&["live/alice"], &[]);
    let client = Client::new(f.relay.trust.clone(), SessionConfig::default()).unwrap();
    let connect = |query: String| {
        let url = url::Url::parse(&format!("ws://127.0.0.1:{}/{query}", f.relay.http.port())).unwrap();
        let client = client.clone();
        async move { timeout(T, client.connect(&url)).await.unwrap().unwrap() }
    };
    let refused = |r: Result<Announcement, Error>| {
        matches!(r, Err(Error::Request(RequestFailure::Rejected { code: RequestErrorCode::Unauthorized, .. })))
    };
    let anonymous = connect(String::new()).await;
    assert!(refused(anonymous.publish_namespace(ns("live/alice")).await));
    let alice = connect(format!("?jwt={token}")).await;
    assert!(alice.transport().is_websocket());
    alice.publish_namespace(ns("live/alice")).await.unwrap();
    assert!(refused(alice.publish_namespace(ns("live/bob")).await));
}
