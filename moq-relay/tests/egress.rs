//! Egress cost settings: `--ack-threshold` asks subscribers to acknowledge less often (QUIC ACK frequency; off by
//! default), and /metrics shows the QUIC counters.

mod common;

use common::*;
use moq_transport::quic::QuicCounters;
use moq_transport::*;
use tokio::time::timeout;

const OBJECTS: u64 = 150;
const OBJECT_SIZE: usize = 12_000;

/// A publisher sends OBJECTS × OBJECT_SIZE bytes through a relay with `config` to one subscriber: the
/// subscriber's QUIC counters once it has everything, and the relay's /metrics then.
async fn relay_to_subscriber(config: moq_relay::Config) -> (QuicCounters, String) {
    let relay = start_with(config).await;
    let (_publisher, track, _ann) = relay.publisher("egress").await;
    let viewer = relay.connect(false, Origin::new()).await;
    let sub =
        timeout(T, viewer.subscribe(name("egress", "video"), SubscribeOptions::default())).await.unwrap().unwrap();
    wait_consumers(&track, 1).await;
    let group = track.create_group(0).unwrap();
    let subgroup = group.create_subgroup(0, 0);
    for o in 0..OBJECTS {
        subgroup.write(Object::new(o, vec![o as u8; OBJECT_SIZE])).unwrap();
    }
    subgroup.finish();
    let mut consumer = sub.consumer();
    let mut g = timeout(T, consumer.next_group()).await.unwrap().unwrap();
    let mut s = timeout(T, g.next_subgroup()).await.unwrap().unwrap();
    for o in 0..OBJECTS {
        let object = timeout(T, s.next()).await.unwrap().unwrap();
        assert_eq!((object.id.0, object.payload.len()), (o, OBJECT_SIZE));
    }
    (viewer.quic_counters(), relay.http_get("/metrics").await)
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

#[tokio::test]
async fn with_ack_threshold_subscribers_acknowledge_less_often() {
    let (viewer, metrics) = relay_to_subscriber(moq_relay::Config { ack_threshold: 16, ..test_config() }).await;
    assert!(viewer.ack_frequency_received >= 1, "the relay asked for fewer ACKs: {viewer:?}");
    let per_ack = viewer.datagrams_received as f64 / viewer.acks_sent.max(1) as f64;
    assert!(per_ack >= 10.0, "{per_ack:.1} datagrams per ACK: {viewer:?}");
    // The relay's counters cover both sessions: at least the viewer's traffic.
    assert!(metric(&metrics, "moq_relay_quic_datagrams_sent_total") >= viewer.datagrams_received);
    let calls = metric(&metrics, "moq_relay_quic_send_calls_total");
    assert!(calls > 0 && calls <= metric(&metrics, "moq_relay_quic_datagrams_sent_total"));
    assert!(metric(&metrics, "moq_relay_quic_acks_received_total") > 0);
}

#[tokio::test]
async fn by_default_the_relay_sends_no_ack_frequency_request() {
    let (viewer, _) = relay_to_subscriber(test_config()).await;
    assert_eq!(viewer.ack_frequency_received, 0, "{viewer:?}");
}
