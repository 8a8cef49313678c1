//! Set-ups shared by the benches and load tools: a publisher, an optional in-process relay, and N subscribers,
//! all over loopback QUIC, plus a receive loop that reports every object that arrives.

pub mod load;
pub mod process;

use std::sync::Arc;

use bytes::Bytes;
use moq_relay::{Config, Relay};
use moq_transport::quic::{Client, Server};
use moq_transport::tls::{Certificate, Trust, parse_fingerprint};
use moq_transport::wire::namespace::{FullTrackName, TrackNamespace};
use moq_transport::*;
use tokio::sync::mpsc;
use url::Url;

/// Objects per group before the publisher starts a new one (keeps memory flat over long runs).
pub const OBJECTS_PER_GROUP: u64 = 100;

/// A publisher with `n` subscribers; every object a subscriber receives is reported on `received`.
pub struct Fanout {
    /// Where objects are written.
    pub publisher: Publisher,
    /// One message per (subscriber, object).
    pub received: mpsc::UnboundedReceiver<()>,
    /// Sessions, subscriptions and servers kept alive for the run.
    _keep: Vec<Box<dyn std::any::Any + Send>>,
}

/// Writes objects into a track, a group per [`OBJECTS_PER_GROUP`] objects.
pub struct Publisher {
    track: TrackProducer,
    group: Option<(GroupProducer, SubgroupProducer)>,
    next: u64,
}

impl Publisher {
    fn new(track: TrackProducer) -> Publisher {
        Publisher { track, group: None, next: 0 }
    }

    /// Writes one object.
    pub fn write(&mut self, payload: Bytes) {
        let group_id = self.next / OBJECTS_PER_GROUP;
        let object_id = self.next % OBJECTS_PER_GROUP;
        if object_id == 0 {
            if let Some((g, s)) = self.group.take() {
                s.finish();
                g.finish();
            }
            let g = self.track.create_group(group_id).expect("increasing group ids");
            let s = g.create_subgroup(0, 0);
            self.group = Some((g, s));
        }
        if let Some((_, s)) = &self.group {
            s.write(Object::new(object_id, payload)).expect("increasing object ids");
        }
        self.next += 1;
    }
}

fn name() -> FullTrackName {
    FullTrackName::new(TrackNamespace::from_path("bench").expect("valid"), "track")
}

/// Reads a subscription forever, reporting each object.
fn spawn_reader(mut track: TrackConsumer, tx: mpsc::UnboundedSender<()>) {
    tokio::spawn(async move {
        while let Ok(mut group) = track.next_group().await {
            while let Some(mut sub) = group.next_subgroup().await {
                while sub.next().await.is_ok() {
                    if tx.send(()).is_err() {
                        return;
                    }
                }
            }
        }
    });
}

/// Producer to `n` consumers in memory: the model alone.
pub fn in_memory(n: usize) -> Fanout {
    let track = TrackProducer::new(TrackInfo::new(name()));
    let (tx, received) = mpsc::unbounded_channel();
    for _ in 0..n {
        spawn_reader(track.consume(), tx.clone());
    }
    Fanout { publisher: Publisher::new(track), received, _keep: Vec::new() }
}

async fn subscribers(
    n: usize,
    url: &Url,
    trust: Trust,
    tx: mpsc::UnboundedSender<()>,
    keep: &mut Vec<Box<dyn std::any::Any + Send>>,
) -> anyhow::Result<()> {
    for _ in 0..n {
        let client = Client::new(trust.clone(), SessionConfig::default())?;
        let session = client.connect(url).await?;
        let sub = session.subscribe(name(), SubscribeOptions::default()).await?;
        spawn_reader(sub.consumer(), tx.clone());
        keep.push(Box::new((session, sub)));
    }
    Ok(())
}

/// A publisher serving `n` subscriber sessions directly (no relay), over raw QUIC on loopback.
pub async fn direct(n: usize) -> anyhow::Result<Fanout> {
    let track = TrackProducer::new(TrackInfo::new(name()));
    let origin = Origin::new();
    origin.publish_track(track.clone());
    let cert = Certificate::self_signed(&["localhost"])?;
    let trust = Trust::Fingerprints(vec![cert.sha256()]);
    let server = Arc::new(Server::bind("127.0.0.1:0".parse()?, cert, SessionConfig { origin, ..Default::default() })?);
    let url = Url::parse(&format!("moqt://localhost:{}/", server.local_addr()?.port()))?;
    let s = server.clone();
    tokio::spawn(async move {
        while let Some(incoming) = s.accept().await {
            tokio::spawn(async move {
                if let Ok((session, _)) = incoming.establish().await {
                    session.closed().await;
                }
            });
        }
    });
    let (tx, received) = mpsc::unbounded_channel();
    let mut keep: Vec<Box<dyn std::any::Any + Send>> = vec![Box::new(server)];
    subscribers(n, &url, trust, tx, &mut keep).await?;
    Ok(Fanout { publisher: Publisher::new(track), received, _keep: keep })
}

/// A publisher and `n` subscribers connected through an in-process `moq-relay`, over raw QUIC on loopback.
pub async fn via_relay(n: usize) -> anyhow::Result<Fanout> {
    // Overload control off: a saturated bench would otherwise measure skipped groups.
    let config = Config {
        bind: "127.0.0.1:0".parse()?,
        http_bind: String::new(),
        overload_lag: std::time::Duration::ZERO,
        ..Config::default()
    };
    let relay = Relay::bind(&config).await?;
    let url = Url::parse(&format!("moqt://localhost:{}/", relay.local_addr()?.port()))?;
    let trust = Trust::Fingerprints(vec![parse_fingerprint(relay.fingerprint())?]);
    tokio::spawn(relay.run(std::future::pending()));

    let track = TrackProducer::new(TrackInfo::new(name()));
    let origin = Origin::new();
    origin.publish_track(track.clone());
    let client = Client::new(trust.clone(), SessionConfig { origin, ..Default::default() })?;
    let publisher = client.connect(&url).await?;
    let announcement = publisher.publish_namespace(name().namespace).await?;

    let (tx, received) = mpsc::unbounded_channel();
    let mut keep: Vec<Box<dyn std::any::Any + Send>> = vec![Box::new((publisher, announcement))];
    subscribers(n, &url, trust, tx, &mut keep).await?;
    Ok(Fanout { publisher: Publisher::new(track), received, _keep: keep })
}
