//! The relay's HTTP side under hostile clients: slow headers are cut off, and connections beyond the cap are
//! closed at once, while well-behaved requests are still served.

mod common;

use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// Whether the server closes `s` within `within` (reads end of stream or an error).
async fn closed_by_server(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 512];
    matches!(
        timeout(within, async {
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await,
        Ok(())
    )
}

#[tokio::test]
async fn slow_header_clients_are_cut_off_and_the_connection_cap_holds() {
    let mut config = test_config();
    config.http_header_timeout = Duration::from_millis(300);
    config.http_max_connections = 4;
    let relay = start_with(config).await;

    // Three clients trickle a request line and never finish their headers.
    let mut slow = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(relay.http).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        slow.push(s);
    }
    // A fourth fills the cap; a fifth is closed at once.
    let mut fourth = TcpStream::connect(relay.http).await.unwrap();
    let mut fifth = TcpStream::connect(relay.http).await.unwrap();
    assert!(closed_by_server(&mut fifth, Duration::from_millis(200)).await, "a connection over the cap was kept");
    for s in &mut slow {
        assert!(closed_by_server(s, Duration::from_secs(2)).await, "a slow-header client was kept open");
    }
    assert!(closed_by_server(&mut fourth, Duration::from_secs(2)).await, "an idle connection was kept open");
    // Slots are free again: a normal request is answered.
    assert!(relay.http_get("/health").await.ends_with("ok\n"));
    assert!(relay.http_get("/metrics").await.contains("moq_relay_http_refused_total 1"));
}
