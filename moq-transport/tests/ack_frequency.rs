//! QUIC ACK frequency: a sender that asks its peer to acknowledge less often gets fewer ACKs; by default it does
//! not ask.

use std::time::Duration;

use moq_transport::quic::{Client, QuicCounters, Server};
use moq_transport::tls::{Certificate, Trust};
use moq_transport::wire::namespace::{FullTrackName, TrackNamespace};
use moq_transport::*;
use tokio::time::timeout;
use url::Url;

const T: Duration = Duration::from_secs(10);
const OBJECTS: u64 = 150;
const OBJECT_SIZE: usize = 12_000;

/// A server whose sessions use `ack`, serving one track of OBJECTS × OBJECT_SIZE bytes to a client that reads it
/// all: the (client, server) counters once the client has everything.
async fn transfer(ack: Option<AckFrequency>) -> (QuicCounters, QuicCounters) {
    let name = FullTrackName::new(TrackNamespace::from_path("ack").unwrap(), "bulk");
    let origin = Origin::new();
    let track = TrackProducer::new(TrackInfo::new(name.clone()));
    origin.publish_track(track.clone());
    let cert = Certificate::self_signed(&["localhost"]).unwrap();
    let fp = cert.sha256();
    let config = SessionConfig { origin, ack_frequency: ack, ..Default::default() };
    let server = Server::bind("127.0.0.1:0".parse().unwrap(), cert, config).unwrap();
    let url = Url::parse(&format!("moqt://localhost:{}/", server.local_addr().unwrap().port())).unwrap();
    let client = Client::new(Trust::Fingerprints(vec![fp]), SessionConfig::default()).unwrap();
    let (client, accepted) =
        tokio::join!(client.connect(&url), async { server.accept().await.unwrap().establish().await });
    let (client, (server_session, _)) = (client.unwrap(), accepted.unwrap());

    let sub = timeout(T, client.subscribe(name, SubscribeOptions::default())).await.unwrap().unwrap();
    let mut consumer = sub.consumer();
    let group = track.create_group(0).unwrap();
    let subgroup = group.create_subgroup(0, 0);
    for o in 0..OBJECTS {
        subgroup.write(Object::new(o, vec![o as u8; OBJECT_SIZE])).unwrap();
    }
    subgroup.finish();
    group.finish();
    let mut g = timeout(T, consumer.next_group()).await.unwrap().unwrap();
    let mut s = timeout(T, g.next_subgroup()).await.unwrap().unwrap();
    for o in 0..OBJECTS {
        let object = timeout(T, s.next()).await.unwrap().unwrap();
        assert_eq!((object.id.0, object.payload.len()), (o, OBJECT_SIZE));
    }
    (client.quic_counters(), server_session.quic_counters())
}

#[tokio::test]
async fn asked_for_it_the_receiver_acknowledges_at_most_every_tenth_packet() {
    let ack = AckFrequency { threshold: 16, max_delay: Duration::from_millis(2) };
    let (client, server) = transfer(Some(ack)).await;
    assert!(server.ack_frequency_sent >= 1 && client.ack_frequency_received >= 1, "{server:?} {client:?}");
    assert!(client.datagrams_received > OBJECTS, "{client:?}");
    let per_ack = client.datagrams_received as f64 / client.acks_sent.max(1) as f64;
    // Threshold 16 asks for an ACK per 17 packets; several arriving in one batch share one.
    assert!(per_ack >= 10.0, "{per_ack:.1} datagrams per ACK: {client:?}");
    // The server got those ACKs, and sent its datagrams in batches (GSO, where the OS has it).
    assert!(server.acks_received > 0 && server.acks_received <= client.acks_sent, "{server:?} {client:?}");
    assert!(server.send_calls > 0 && server.send_calls <= server.datagrams_sent, "{server:?}");
}

#[tokio::test]
async fn by_default_the_receiver_acknowledges_every_few_packets() {
    let (client, server) = transfer(SessionConfig::default().ack_frequency).await;
    assert_eq!((server.ack_frequency_sent, client.ack_frequency_received), (0, 0), "{server:?}");
    let per_ack = client.datagrams_received as f64 / client.acks_sent.max(1) as f64;
    // An ACK per two packets, fewer when several arrive in one batch (about 3.4 here).
    assert!(per_ack <= 5.0, "{per_ack:.1} datagrams per ACK: {client:?}");
}
