//! What the relay tests share: a relay on loopback (ephemeral ports) and clients of it.
#![allow(dead_code)] // each test binary uses part of it

pub mod raw;

use std::time::Duration;

use moq_relay::{Config, Relay};
use moq_transport::quic::Client;
use moq_transport::tls::{Trust, parse_fingerprint};
use moq_transport::wire::namespace::{FullTrackName, TrackNamespace};
use moq_transport::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;
use url::Url;

pub const T: Duration = Duration::from_secs(10);

pub struct Running {
    pub port: u16,
    pub http: std::net::SocketAddr,
    pub trust: Trust,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The configuration every test relay starts from: loopback, ephemeral ports for QUIC and HTTP.
/// A relay on free loopback ports, without overload control (a loaded test machine's late timers would make it
/// skip groups).
pub fn test_config() -> Config {
    Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        http_bind: "127.0.0.1:0".into(),
        overload_lag: Duration::ZERO,
        ..Config::default()
    }
}

pub async fn start() -> Running {
    start_with(test_config()).await
}

/// Binds a relay with `config` and runs it until the returned handle drops.
pub async fn start_with(config: Config) -> Running {
    let relay = Relay::bind(&config).await.unwrap();
    let port = relay.local_addr().unwrap().port();
    let http = relay.http_addr().unwrap();
    let trust = Trust::Fingerprints(vec![parse_fingerprint(relay.fingerprint()).unwrap()]);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(relay.run(async {
        let _ = stopped.await;
    }));
    Running { port, http, trust, stop: Some(stop) }
}

pub fn name(ns: &str, track: &str) -> FullTrackName {
    FullTrackName::new(TrackNamespace::from_path(ns).unwrap(), track)
}

impl Running {
    pub fn url(&self, webtransport: bool) -> Url {
        let scheme = if webtransport { "https" } else { "moqt" };
        Url::parse(&format!("{scheme}://localhost:{}/", self.port)).unwrap()
    }

    pub async fn connect(&self, webtransport: bool, origin: Origin) -> Session {
        let client = Client::new(self.trust.clone(), SessionConfig { origin, ..Default::default() }).unwrap();
        timeout(T, client.connect(&self.url(webtransport))).await.unwrap().unwrap()
    }

    /// A publisher of `ns/track` that has announced its namespace.
    pub async fn publisher(&self, ns: &str) -> (Session, TrackProducer, Announcement) {
        let origin = Origin::new();
        let track = TrackProducer::new(TrackInfo::new(name(ns, "video")));
        origin.publish_track(track.clone());
        let session = self.connect(false, origin).await;
        let ann = session.publish_namespace(TrackNamespace::from_path(ns).unwrap()).await.unwrap();
        (session, track, ann)
    }

    /// The value of a counter on /metrics.
    pub async fn metric(&self, name: &str) -> u64 {
        let text = self.http_get("/metrics").await;
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
            .unwrap_or_else(|| panic!("no {name} in /metrics"))
    }

    pub async fn http_get(&self, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(self.http).await.unwrap();
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }
}

/// Polls until `track` has `n` consumers (the relay's served subscriptions of it).
pub async fn wait_consumers(track: &TrackProducer, n: usize) {
    timeout(T, async {
        while track.consumer_count() != n {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the track has {} consumers, not {n}", track.consumer_count()));
}

/// Reads `groups` whole groups from a subscription and returns (group, object, payload) in arrival order.
pub async fn read_groups(mut c: TrackConsumer, groups: usize) -> Vec<(u64, u64, Vec<u8>)> {
    let mut out = Vec::new();
    for _ in 0..groups {
        let mut g = timeout(T, c.next_group()).await.unwrap().unwrap();
        let mut sg = timeout(T, g.next_subgroup()).await.unwrap().unwrap();
        while let Ok(o) = timeout(T, sg.next()).await.unwrap() {
            out.push((g.id().0, o.id.0, o.payload.to_vec()));
        }
    }
    out
}
