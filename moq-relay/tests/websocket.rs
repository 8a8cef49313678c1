//! MoQT over a WebSocket (QMux) on the relay's HTTP port: the fallback for browsers without WebTransport.

mod common;

use common::*;
use moq_transport::wire::Version;
use moq_transport::wire::namespace::TrackNamespace;
use moq_transport::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;
use url::Url;

impl Running {
    fn ws_url(&self) -> Url {
        Url::parse(&format!("ws://127.0.0.1:{}/", self.http.port())).unwrap()
    }

    async fn connect_ws(&self, origin: Origin, versions: &[Version]) -> Session {
        let config = SessionConfig { origin, ..Default::default() };
        timeout(T, moq_transport::websocket::connect(&self.ws_url(), versions, config)).await.unwrap().unwrap()
    }

    /// The status line of a WebSocket upgrade request offering `protocols`.
    async fn upgrade_status(&self, protocols: &str) -> String {
        self.upgrade_response(protocols, "13").await.lines().next().unwrap_or_default().to_string()
    }

    /// The response head to a WebSocket upgrade request of `version` offering `protocols`.
    async fn upgrade_response(&self, protocols: &str, version: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(self.http).await.unwrap();
        let request = format!(
            "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: {version}\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Protocol: {protocols}\r\n\r\n"
        );
        s.write_all(request.as_bytes()).await.unwrap();
        let mut buf = vec![0; 1024];
        let n = timeout(T, s.read(&mut buf)).await.unwrap().unwrap();
        String::from_utf8_lossy(&buf[..n]).to_string()
    }
}

/// A viewer over a WebSocket watches a publisher over QUIC: every object of several groups arrives intact,
/// large ones too (QMux flow control and records), on the newest draft both offer.
#[tokio::test]
async fn a_websocket_viewer_watches_a_quic_publisher() {
    let relay = start().await;
    let (_publisher, track, _ann) = relay.publisher("ws/quic").await;
    let viewer = relay.connect_ws(Origin::new(), &Version::ALL).await;
    assert_eq!(viewer.version(), Version::ALL[0]);
    let sub = viewer.subscribe(name("ws/quic", "video"), SubscribeOptions::default()).await.unwrap();
    let consumer = sub.consumer();
    let big = vec![7u8; 300_000];
    for g in 0..3u64 {
        track.write_group(g, [Object::new(0, big.clone()), Object::new(1, format!("g{g}"))]).unwrap();
    }
    let got = read_groups(consumer, 3).await;
    let expected: Vec<(u64, u64, Vec<u8>)> =
        (0..3u64).flat_map(|g| [(g, 0, big.clone()), (g, 1, format!("g{g}").into_bytes())]).collect();
    assert!(got == expected, "every object of the three groups, intact and in order");
}

/// A publisher over a WebSocket (draft-18 only) is watched by a viewer over QUIC.
#[tokio::test]
async fn a_websocket_publisher_reaches_a_quic_viewer() {
    let relay = start().await;
    let origin = Origin::new();
    let track = TrackProducer::new(TrackInfo::new(name("ws/pub", "video")));
    origin.publish_track(track.clone());
    let publisher = relay.connect_ws(origin, &[Version::Draft18]).await;
    assert_eq!(publisher.version(), Version::Draft18);
    let _ann = publisher.publish_namespace(TrackNamespace::from_path("ws/pub").unwrap()).await.unwrap();
    let viewer = relay.connect(false, Origin::new()).await;
    let sub = viewer.subscribe(name("ws/pub", "video"), SubscribeOptions::default()).await.unwrap();
    track.write_group(5, [Object::new(0, "hello")]).unwrap();
    assert_eq!(read_groups(sub.consumer(), 1).await, vec![(5, 0, b"hello".to_vec())]);
}

/// An upgrade that offers no MoQT version we speak is refused before any session exists; one that does is
/// switched, with the chosen subprotocol named.
#[tokio::test]
async fn an_upgrade_without_a_shared_draft_is_refused() {
    let relay = start().await;
    assert!(relay.upgrade_status("qmux-02.moq-lite-04, qmux-02").await.contains("400"));
    let switched = relay.upgrade_response("qmux-01.moqt-18, qmux-01.moqt-19", "13").await.to_ascii_lowercase();
    assert!(switched.starts_with("http/1.1 101"), "{switched}");
    // RFC 6455's example key and its accept value.
    assert!(switched.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="), "{switched}");
    assert!(switched.contains("sec-websocket-protocol: qmux-01.moqt-19"), "{switched}");
    // Another WebSocket version: 426, naming the one spoken.
    let old = relay.upgrade_response("qmux-02.moqt-19", "8").await.to_ascii_lowercase();
    assert!(old.starts_with("http/1.1 426") && old.contains("sec-websocket-version: 13"), "{old}");
}

/// WebSocket sessions are limited in number (`--http-max-connections`) even from addresses not counted per
/// address (loopback here, or a proxy in front): past it, upgrades are refused; when one ends, there is room.
#[tokio::test]
async fn websocket_sessions_are_limited_in_number() {
    let relay = start_with(moq_relay::Config { http_max_connections: 1, ..test_config() }).await;
    let first = relay.connect_ws(Origin::new(), &Version::ALL).await;
    assert!(relay.upgrade_status("qmux-02.moqt-19").await.contains("503"));
    first.close(moq_transport::wire::codes::SessionCode::NoError, "done");
    timeout(T, async {
        while !relay.upgrade_status("qmux-02.moqt-19").await.contains("101") {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("a slot comes back when a session ends");
}

/// WebSocket sessions count against their address like QUIC ones: past the per-address limit the upgrade is
/// refused.
#[tokio::test]
async fn websocket_sessions_count_against_their_address() {
    let relay =
        start_with(moq_relay::Config { max_sessions_per_address: 1, limit_loopback: true, ..test_config() }).await;
    let _first = relay.connect_ws(Origin::new(), &Version::ALL).await;
    assert!(relay.upgrade_status("qmux-02.moqt-19").await.contains("503"));
}

/// The ordinary client (what moq-sub, moq-pub and moq-load use) takes a `ws://` URL to the WebSocket.
#[tokio::test]
async fn the_client_takes_a_ws_url_to_the_websocket() {
    let relay = start().await;
    let (_publisher, track, _ann) = relay.publisher("ws/client").await;
    let client = moq_transport::quic::Client::new(relay.trust.clone(), SessionConfig::default()).unwrap();
    let viewer = timeout(T, client.connect(&relay.ws_url())).await.unwrap().unwrap();
    assert!(viewer.transport().is_websocket());
    let sub = viewer.subscribe(name("ws/client", "video"), SubscribeOptions::default()).await.unwrap();
    track.write_group(0, [Object::new(0, "x")]).unwrap();
    assert_eq!(read_groups(sub.consumer(), 1).await, vec![(0, 0, b"x".to_vec())]);
}
