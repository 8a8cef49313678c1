//! Load shedding: a subscriber behind a link four times too slow for the track stays near the live edge (the
//! relay drops what it cannot send in time, whole groups), instead of falling further behind every second.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::*;
use moq_transport::quic::Client;
use moq_transport::*;
use tokio::net::UdpSocket;
use tokio::time::timeout;
use url::Url;

/// A UDP proxy in front of `server`: what the client sends passes at once; what the server sends back is paced
/// at `rate` bytes per second through a drop-tail queue of `queue` bytes, as on a slow access link.
async fn slow_link(server: SocketAddr, rate: u64, queue: usize) -> SocketAddr {
    let front = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let back = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = front.local_addr().unwrap();
    back.connect(server).await.unwrap();
    tokio::spawn(async move {
        let mut client: Option<SocketAddr> = None;
        let mut queued: std::collections::VecDeque<Vec<u8>> = Default::default();
        let mut queued_bytes = 0usize;
        let mut tokens = 0f64;
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        let (mut up, mut down) = (vec![0u8; 65536], vec![0u8; 65536]);
        loop {
            tokio::select! {
                r = front.recv_from(&mut up) => if let Ok((n, from)) = r {
                    client = Some(from);
                    let _ = back.send(&up[..n]).await;
                },
                r = back.recv(&mut down) => if let Ok(n) = r && queued_bytes + n <= queue {
                    queued_bytes += n;
                    queued.push_back(down[..n].to_vec());
                },
                _ = tick.tick() => {
                    // A burst of at most 50 ms, and never less than two full packets.
                    tokens = (tokens + rate as f64 / 1000.0).min((rate as f64 / 20.0).max(3000.0));
                    while let (Some(p), Some(to)) = (queued.front(), client) {
                        if (p.len() as f64) > tokens {
                            break;
                        }
                        tokens -= p.len() as f64;
                        let _ = front.send_to(p, to).await;
                        queued_bytes -= p.len();
                        queued.pop_front();
                    }
                },
            }
        }
    });
    addr
}

/// Publishes like a 1.2 Mb/s camera: a 5 KB object every 33 ms, a new group every half second (15 objects), each
/// object starting with its publish time (µs since `base`).
fn publish(track: TrackProducer, base: tokio::time::Instant) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        for g in 0.. {
            let Ok(group) = track.create_group(g) else { return };
            let sub = group.create_subgroup(0, 128);
            for o in 0..15 {
                let mut payload = vec![0u8; 5_000];
                payload[..8].copy_from_slice(&(base.elapsed().as_micros() as u64).to_be_bytes());
                let _ = sub.write(Object::new(o, payload));
                tokio::time::sleep(Duration::from_millis(33)).await;
            }
            sub.finish();
            group.finish();
        }
    })
}

/// The worst latency over the last second of a 5 s run of a subscriber at `priority` behind a 0.32 Mb/s link (a
/// quarter of the track's rate), the groups the relay shed, and the objects received.
async fn behind_a_slow_link(max_latency: Duration, priority: u8) -> (Duration, u64, u64) {
    let mut config = test_config();
    config.max_latency = max_latency;
    config.send_window = 16_000;
    let relay = start_with(config).await;
    let (_p, track, _ann) = relay.publisher("live/slow").await;
    let base = tokio::time::Instant::now();
    let writer = publish(track, base);

    let link = slow_link(format!("127.0.0.1:{}", relay.port).parse().unwrap(), 40_000, 32_000).await;
    let client = Client::new(relay.trust.clone(), SessionConfig::default()).unwrap();
    let url = Url::parse(&format!("moqt://localhost:{}/", link.port())).unwrap();
    let viewer = timeout(T, client.connect(&url)).await.unwrap().unwrap();
    let options = SubscribeOptions { priority, ..Default::default() };
    let sub = viewer.subscribe(name("live/slow", "video"), options).await.unwrap();
    let mut c = sub.consumer();
    let worst_late = Arc::new(AtomicU64::new(0));
    let mut received = 0;
    let end = tokio::time::Instant::now() + Duration::from_secs(5);
    let late_from = end - Duration::from_secs(1);
    while tokio::time::Instant::now() < end {
        let Ok(Ok(mut g)) = tokio::time::timeout_at(end, c.next_group()).await else { break };
        let Ok(Some(mut s)) = tokio::time::timeout_at(end, g.next_subgroup()).await else { continue };
        while let Ok(Ok(o)) = tokio::time::timeout_at(end, s.next()).await {
            received += 1;
            let sent = u64::from_be_bytes(o.payload[..8].try_into().unwrap());
            let latency = (base.elapsed().as_micros() as u64).saturating_sub(sent);
            if tokio::time::Instant::now() >= late_from {
                worst_late.fetch_max(latency, Ordering::Relaxed);
            }
        }
    }
    writer.abort();
    let metrics = relay.http_get("/metrics").await;
    let shed = metrics
        .lines()
        .find_map(|l| l.strip_prefix("moq_relay_groups_shed_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    (Duration::from_micros(worst_late.load(Ordering::Relaxed)), shed, received)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_on_a_slow_link_stays_near_the_live_edge() {
    let (latency, shed, _) = behind_a_slow_link(Duration::from_millis(300), 128).await;
    assert!(shed > 0, "nothing was shed");
    // Without shedding the backlog grows by 3 s every 4 s (9 s behind after 5 s lost at this rate, and more).
    // With it, a group that cannot be sent in time is dropped for the next one: about a group (0.5 s) behind.
    assert!(latency < Duration::from_millis(2000), "the subscriber fell {latency:?} behind");
}

/// At SUBSCRIBER_PRIORITY 0 the budget is 16 times longer (4.8 s here): on the same link, where a default-priority
/// subscriber loses groups within the first seconds, the relay sheds nothing for it in this 5 s run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_important_subscriber_has_a_longer_budget() {
    let (_, shed, received) = behind_a_slow_link(Duration::from_millis(300), 0).await;
    assert!(received > 0, "nothing arrived");
    assert_eq!(shed, 0, "groups were shed for a priority-0 subscriber");
}
