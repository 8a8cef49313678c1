//! `quic-fanout`: the raw-QUIC ceiling for relay fan-out. The same traffic as `moq-load` (one publisher, N
//! subscriber connections, a stream per group, frames stamped with their send time), through a forwarder that
//! knows nothing of MoQT: it copies each incoming stream's bytes to one new stream per subscriber.
//!
//! ```text
//! taskset -c 0 quic-fanout forward --listen 127.0.0.1:14444          # prints its certificate fingerprint
//! taskset -c 1 quic-fanout load --forwarder 127.0.0.1:14444 --fingerprint HEX --subscribers 100 \
//!     --frame-size 40000 --relay-pid $(pidof quic-fanout)
//! ```
//!
//! The forwarder uses the same quinn and rustls (ring) stack and the same transport settings as moq-transport,
//! and, like the relay, one task per subscriber stream fed from a shared copy of the group, so a slow
//! subscriber does not hold up the others. Frames are length-prefixed (u32) on the wire.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use bytes::{Buf, Bytes};
use clap::{Parser, Subcommand};
use moq_bench::load::{Clock, Meter, Shape};
use moq_transport::cli::AckArgs;
use moq_transport::quic::QuicCounters;
use moq_transport::tls::{Certificate, Trust, client_config, parse_fingerprint};
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};

const ALPN_PUB: &[u8] = b"fanout-pub";
const ALPN_SUB: &[u8] = b"fanout-sub";

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the forwarder.
    Forward {
        /// UDP address to listen on.
        #[arg(long, default_value = "127.0.0.1:14444")]
        listen: SocketAddr,
        /// Bytes QUIC may hold unacknowledged per connection (moq-relay's default --send-window).
        #[arg(long, default_value_t = 256 * 1024)]
        send_window: u64,
        /// The ACK frequency the forwarder asks its peers for (as moq-relay's flags).
        #[command(flatten)]
        ack: AckArgs,
    },
    /// Run the publisher and subscribers against a forwarder.
    Load {
        /// The forwarder's address.
        #[arg(long)]
        forwarder: SocketAddr,
        /// Its certificate fingerprint (hex), as it printed.
        #[arg(long)]
        fingerprint: String,
        #[command(flatten)]
        shape: Shape,
        /// The ACK frequency the load's connections ask the forwarder for.
        #[command(flatten)]
        ack: AckArgs,
    },
}

/// The transport settings of moq-transport's sessions, with this send window and ACK frequency.
fn transport(send_window: u64, ack: &AckArgs) -> Arc<quinn::TransportConfig> {
    let config = moq_transport::SessionConfig { send_window, ack_frequency: ack.ack_frequency(), ..Default::default() };
    Arc::new(moq_transport::quic::transport_config(&config))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Args::parse().command {
        Command::Forward { listen, send_window, ack } => forward(listen, transport(send_window, &ack)).await,
        Command::Load { forwarder, fingerprint, shape, ack } => {
            load(forwarder, &fingerprint, shape, transport(moq_transport::DEFAULT_SEND_WINDOW, &ack)).await
        }
    }
}

/// Subscriber connections; each incoming publisher stream is copied to all of them.
type Subscribers = Arc<Mutex<Vec<quinn::Connection>>>;

async fn forward(listen: SocketAddr, transport: Arc<quinn::TransportConfig>) -> anyhow::Result<()> {
    let cert = Certificate::self_signed(&["localhost"])?;
    println!("fingerprint {}", cert.sha256_hex());
    let mut tls = moq_transport::tls::server_config(cert)?;
    tls.alpn_protocols = vec![ALPN_PUB.to_vec(), ALPN_SUB.to_vec()];
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(QuicServerConfig::try_from(tls)?));
    server.transport_config(transport);
    let endpoint = quinn::Endpoint::server(server, listen)?;
    println!("listening {}", endpoint.local_addr()?);
    let subscribers: Subscribers = Arc::default();
    while let Some(incoming) = endpoint.accept().await {
        let subscribers = subscribers.clone();
        tokio::spawn(async move {
            let Ok(conn) = incoming.await else { return };
            let alpn = conn
                .handshake_data()
                .and_then(|d| d.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
                .and_then(|d| d.protocol);
            match alpn.as_deref() {
                Some(ALPN_SUB) => subscribers.lock().unwrap_or_else(|e| e.into_inner()).push(conn),
                Some(ALPN_PUB) => {
                    while let Ok(stream) = conn.accept_uni().await {
                        tokio::spawn(fan_out(stream, subscribers.clone()));
                    }
                    // The run is over: what the subscriber connections cost in packets.
                    let total: QuicCounters =
                        subscribers.lock().unwrap_or_else(|e| e.into_inner()).iter().map(QuicCounters::of).sum();
                    println!(
                        "{}",
                        serde_json::json!({ "forwarder_to_subscribers": {
                            "datagrams_sent": total.datagrams_sent,
                            "send_calls": total.send_calls,
                            "datagrams_per_send_call": total.datagrams_sent as f64 / total.send_calls.max(1) as f64,
                            "acks_received": total.acks_received,
                            "ack_frequency_sent": total.ack_frequency_sent,
                        }})
                    );
                }
                _ => conn.close(1u32.into(), b"unknown ALPN"),
            }
        });
    }
    Ok(())
}

/// Copies one publisher stream to a new stream on every subscriber connection.
async fn fan_out(mut stream: quinn::RecvStream, subscribers: Subscribers) {
    let conns: Vec<quinn::Connection> = {
        let mut subs = subscribers.lock().unwrap_or_else(|e| e.into_inner());
        subs.retain(|c| c.close_reason().is_none());
        subs.clone()
    };
    // The group as received so far, shared by the subscriber tasks (as a relay's group cache is).
    let (tx, _) = tokio::sync::watch::channel((Vec::<Bytes>::new(), false));
    let tx = Arc::new(tx);
    for conn in conns {
        let mut rx = tx.subscribe();
        tokio::spawn(async move {
            let Ok(mut out) = conn.open_uni().await else { return };
            let mut sent = 0;
            loop {
                let (chunks, done) = {
                    let state = rx.borrow_and_update();
                    (state.0[sent..].to_vec(), state.1)
                };
                for chunk in chunks {
                    if out.write_chunk(chunk).await.is_err() {
                        return;
                    }
                    sent += 1;
                }
                if done {
                    let _ = out.finish();
                    return;
                }
                if rx.changed().await.is_err() {
                    return;
                }
            }
        });
    }
    while let Ok(Some(chunk)) = stream.read_chunk(usize::MAX, true).await {
        tx.send_modify(|s| s.0.push(chunk.bytes));
    }
    tx.send_modify(|s| s.1 = true);
}

async fn load(
    forwarder: SocketAddr,
    fingerprint: &str,
    shape: Shape,
    transport: Arc<quinn::TransportConfig>,
) -> anyhow::Result<()> {
    anyhow::ensure!(shape.frame_size >= 8, "--frame-size must be at least 8");
    let trust = Trust::Fingerprints(vec![parse_fingerprint(fingerprint)?]);
    let connect = |alpn: &'static [u8]| {
        let (trust, transport) = (trust.clone(), transport.clone());
        async move {
            let mut tls = client_config(&trust)?;
            tls.alpn_protocols = vec![alpn.to_vec()];
            let mut config = quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls)?));
            config.transport_config(transport);
            // Each connection its own endpoint (UDP socket), as moq-load's sessions are.
            let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse()?)?;
            let conn = endpoint.connect_with(config, forwarder, "localhost")?.await.context("connect")?;
            anyhow::Ok((endpoint, conn))
        }
    };
    let (meter, latencies) = Meter::new();
    let mut keep = Vec::new();
    for _ in 0..shape.subscribers {
        let (endpoint, conn) = connect(ALPN_SUB).await?;
        let meter = meter.clone();
        let c = conn.clone();
        tokio::spawn(async move {
            while let Ok(stream) = c.accept_uni().await {
                tokio::spawn(read_frames(stream, meter.clone()));
            }
        });
        keep.push((endpoint, conn));
    }
    // Let the forwarder register every subscriber before the first group.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (publisher_endpoint, publisher) = connect(ALPN_PUB).await?;
    let mut clock = Clock::new(&shape, meter.clone());
    let mut group: Option<quinn::SendStream> = None;
    let group_size = shape.group_size.max(1);
    while let Some(frame) = clock.tick().await {
        if frame.is_multiple_of(group_size) {
            if let Some(mut s) = group.take() {
                let _ = s.finish();
            }
            group = Some(publisher.open_uni().await?);
        }
        if let Some(s) = group.as_mut() {
            let payload = meter.frame(shape.frame_size);
            s.write_chunk(Bytes::copy_from_slice(&(payload.len() as u32).to_be_bytes())).await?;
            s.write_chunk(payload).await?;
        }
    }
    clock.report(latencies, || keep.iter().map(|(_, conn)| QuicCounters::of(conn)).sum()).await;
    // The forwarder reports its counters when the publisher leaves: tell it now, not at the idle timeout.
    publisher.close(0u32.into(), b"done");
    let _ = tokio::time::timeout(Duration::from_secs(1), publisher_endpoint.wait_idle()).await;
    drop(keep);
    Ok(())
}

/// Reads length-prefixed frames from one group stream.
async fn read_frames(mut stream: quinn::RecvStream, meter: Arc<Meter>) {
    let mut buf = bytes::BytesMut::new();
    while let Ok(Some(chunk)) = stream.read_chunk(usize::MAX, true).await {
        buf.extend_from_slice(&chunk.bytes);
        while buf.len() >= 4 {
            let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
            if buf.len() < 4 + len {
                break;
            }
            buf.advance(4);
            let frame = buf.split_to(len);
            meter.received(&frame);
        }
    }
}
