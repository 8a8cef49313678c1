//! A flood from one address leaves a viewer on another address playing. In its own test binary, so that no other
//! test shares its process and cores.

mod common;

use std::time::Duration;

use common::raw::frame;
use common::*;
use moq_relay::Config;
use moq_transport::quic::Client;
use moq_transport::wire::control::*;
use moq_transport::wire::params::Parameters;
use moq_transport::wire::{RequestId, Version};
use moq_transport::*;
use tokio::time::timeout;

/// A thousand connection attempts from one address, the admitted ones each opening a hundred subscriptions they
/// never read: a viewer elsewhere keeps receiving every group in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_leaves_a_viewer_playing() {
    // Shedding waits 3 s and the cache holds 3 s of groups, instead of 1 s and 8 groups: a debug build on a busy
    // 2-core CI machine can stall that long without any flood, and a viewer skipped then would say nothing about
    // the flood's limits.
    let config =
        Config { limit_loopback: true, max_latency: Duration::from_secs(3), cache_groups: 90, ..test_config() };
    let relay = start_with(config).await;
    let (_p, track, _ann) = relay.publisher("live/a").await;
    // The viewer keeps every group it receives: what is measured is the relay's delivery, not whether this test
    // process, busy with the flood's own clients, read the viewer's track before its window moved on.
    let config = SessionConfig { window: 100_000, ..Default::default() };
    let client = Client::new(relay.trust.clone(), config).unwrap();
    let viewer = timeout(T, client.connect(&relay.url(false))).await.unwrap().unwrap();
    let sub = viewer.subscribe(name("live/a", "video"), SubscribeOptions::default()).await.unwrap();
    let mut consumer = sub.consumer();
    // The viewer reads all along, and reports every group id it gets.
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        while let Ok(Ok(group)) = timeout(T, consumer.next_group()).await {
            if seen_tx.send(group.id().0).is_err() {
                return;
            }
        }
    });
    let payload = bytes::Bytes::from(vec![7u8; 1_000]);
    let writer = tokio::spawn({
        let track = track.clone();
        async move {
            for g in 0u64.. {
                if track.write_group(g, [Object::new(0, payload.clone())]).is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(33)).await;
            }
        }
    });

    // The flood, from another loopback address.
    let flood_client = Client::bind("127.0.0.2:0".parse().unwrap(), relay.trust.clone(), SessionConfig::default())
        .unwrap()
        .with_versions(&[Version::Draft19]);
    let url = relay.url(false);
    let mut admitted = Vec::new();
    let mut refused = 0;
    for _ in 0..1000 {
        match flood_client.connect_transport(&url).await {
            Ok((session, _)) => admitted.push(session),
            Err(_) => refused += 1,
        }
    }
    let (path, authority) = moq_transport::quic::path_and_authority(&url);
    let options = moq_transport::wire::setup::SetupOptions {
        path: Some(path.into()),
        authority: Some(authority.into()),
        ..Default::default()
    };
    let (mut held, mut unread) = (Vec::new(), Vec::new());
    for session in &admitted {
        let mut control = session.open_uni().await.unwrap();
        control.write_all(&frame(Setup { options: options.clone() }.into(), Version::Draft19)).await.unwrap();
        held.push(control);
        for i in 0..100u64 {
            let Ok((mut send, recv)) = session.open_bi().await else { break };
            let msg = Subscribe {
                request_id: RequestId(2 * i),
                track: name("live/a", "video"),
                params: Parameters::default(),
            };
            let _ = send.write_all(&frame(msg.into(), Version::Draft19)).await;
            held.push(send);
            unread.push(recv);
        }
    }
    assert!(refused > 0 && !admitted.is_empty(), "admitted {}, refused {refused}", admitted.len());
    assert!(admitted.len() <= 64, "no more sessions than --max-sessions-per-address: {}", admitted.len());

    // The viewer: groups keep coming, through the flood and for 60 groups (2 s) after it, every one of them (a
    // loaded client may take one group's stream after the next one's: order is not checked). The flood's own
    // subscriptions are shed, as they never read.
    let mut ids = std::collections::BTreeSet::new();
    for _ in 0..seen.len() + 60 {
        ids.insert(timeout(T, seen.recv()).await.expect("the viewer froze").expect("the viewer's track ended"));
    }
    let (first, newest) = (*ids.first().unwrap(), *ids.last().unwrap());
    // The newest few may still be on their way.
    let missing: Vec<u64> = (first..newest.saturating_sub(3)).filter(|g| !ids.contains(g)).collect();
    assert!(missing.is_empty(), "the viewer lost groups {missing:?}");
    assert!(relay.metric("moq_relay_refused_subscriptions_total").await > 0);
    writer.abort();
    reader.abort();
}
