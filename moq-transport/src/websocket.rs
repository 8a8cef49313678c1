//! MoQT over a WebSocket, for browsers without a working WebTransport (Safari, Firefox before 153).
//!
//! The WebSocket carries QMux (draft-ietf-quic-qmux), QUIC's streams and flow control over an ordered byte
//! stream, through the `qmux` crate. The MoQT version rides in the WebSocket subprotocol, the QMux wire version
//! as its prefix: `qmux-02.moqt-19` offers QMux draft-02 carrying MoQT draft-19. That is how moq-dev's relays and
//! `@moq/qmux` name it, so their players and ours meet. As over WebTransport, the URL carries the path, so SETUP
//! may carry neither PATH nor AUTHORITY.
//!
//! A WebSocket is one TCP stream: a lost packet holds back every MoQT stream behind it (head-of-line blocking),
//! datagrams arrive reliably, and stream priorities order only what is still queued here.

use std::net::SocketAddr;
use std::time::Duration;

use moq_wire::Version;
use qmux::ws::tokio_tungstenite::tungstenite::client::IntoClientRequest;
use qmux::ws::tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use qmux::ws::{KeepAlive, Upgraded};
use url::Url;

use crate::error::SessionError;
use crate::transport::Transport;
use crate::{Error, Role, Session, SessionConfig};

pub use qmux::ws::tokio_tungstenite;

/// How long a client waits for the TCP connection and the WebSocket upgrade.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The QMux wire versions we speak, newest first.
const QMUX_VERSIONS: [qmux::Version; 3] = [qmux::Version::QMux02, qmux::Version::QMux01, qmux::Version::QMux00];

/// The WebSocket subprotocols a client offers for `versions` (in its order of preference), each under every QMux
/// version, newest first.
pub fn offered_protocols(versions: &[Version]) -> Vec<String> {
    let mut out = Vec::new();
    for v in versions {
        for q in QMUX_VERSIONS {
            out.push(format!("{}{}", q.prefix(), v.alpn()));
        }
    }
    out
}

/// The subprotocol to accept from a client's `Sec-WebSocket-Protocol` values: the newest MoQT version we share,
/// over the newest QMux version offered with it. `None` if none is ours.
pub fn select_protocol<'a>(offered: impl IntoIterator<Item = &'a str>) -> Option<(String, Version)> {
    let offered: Vec<&str> = offered.into_iter().flat_map(|h| h.split(',')).map(str::trim).collect();
    Version::ALL.into_iter().find_map(|v| {
        QMUX_VERSIONS
            .into_iter()
            .map(|q| format!("{}{}", q.prefix(), v.alpn()))
            .find(|p| offered.contains(&p.as_str()))
            .map(|p| (p, v))
    })
}

/// The largest WebSocket message or frame we buffer: QMux records are at most 16 KiB; this leaves room for peers
/// that send whole frames per message, and no more.
pub const MAX_MESSAGE: usize = 1 << 20;

/// The WebSocket limits of a MoQT session (both sides).
pub fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default().max_message_size(Some(MAX_MESSAGE)).max_frame_size(Some(MAX_MESSAGE))
}

/// The MoQT version a negotiated subprotocol names.
fn version_of(protocol: &str) -> Option<Version> {
    let app = QMUX_VERSIONS.into_iter().find_map(|q| protocol.strip_prefix(q.prefix()))?;
    Version::from_alpn(app.as_bytes())
}

/// QMux's flow-control and idle settings from a session's.
fn qmux_config(config: &SessionConfig) -> qmux::Config {
    let mut q = qmux::Config::default();
    q.max_streams_bidi = config.max_bidi_streams.into();
    q.max_streams_uni = config.max_uni_streams.into();
    q.max_idle_timeout = u64::try_from(config.idle_timeout.as_millis()).unwrap_or(u64::MAX);
    q
}

fn keep_alive(config: &SessionConfig) -> KeepAlive {
    let interval = if config.keep_alive.is_zero() { Duration::from_secs(5) } else { config.keep_alive };
    KeepAlive::new(interval, config.idle_timeout.max(interval * 2))
}

/// Runs the server side of a MoQT session on a WebSocket the HTTP server has upgraded with `protocol` (from
/// [`select_protocol`]); `remote` is the client's address. Set `config.connect_path` to the request's path and
/// query: authorization reads tokens there, as on WebTransport.
pub async fn accept<S>(
    ws: tokio_tungstenite::WebSocketStream<S>,
    protocol: &str,
    remote: SocketAddr,
    config: SessionConfig,
) -> Result<Session, Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let version = version_of(protocol).ok_or(Error::Session(SessionError::VersionNegotiation))?;
    let qmux = Upgraded::new(ws)
        .with_alpn(protocol)
        .with_keep_alive(keep_alive(&config))
        .with_session_config(qmux_config(&config))
        .accept();
    let session = Session::establish(Transport::WebSocket(qmux, remote), version, Role::Server, config).await?;
    crate::quic::refuse_path_and_authority(&session, crate::quic::Via::WebSocket)?;
    Ok(session)
}

/// Connects to a `ws://` URL (the relay's HTTP port) and runs the client side of a MoQT session, offering
/// `versions` in order. `wss://` is left to a TLS-terminating proxy in front of the relay.
pub async fn connect(url: &Url, versions: &[Version], mut config: SessionConfig) -> Result<Session, Error> {
    if url.scheme() != "ws" {
        return Err(Error::Config(format!("not a ws:// URL: {url}")));
    }
    let host = url.host_str().ok_or_else(|| Error::Config("URL has no host".into()))?;
    let port = url.port_or_known_default().unwrap_or(80);
    let remote = tokio::net::lookup_host((host.trim_start_matches('[').trim_end_matches(']'), port))
        .await
        .map_err(|e| Error::Config(format!("resolve {host}: {e}")))?
        .next()
        .ok_or_else(|| Error::Config(format!("resolve {host}: no address")))?;
    // Our own TCP connection, without Nagle's delay (tungstenite's own connect keeps it): small objects would
    // otherwise wait for the previous segment's ACK. The connection and the upgrade have one deadline (SETUP has its
    // own).
    let offered = offered_protocols(versions).join(", ");
    let handshake = async {
        let tcp =
            tokio::net::TcpStream::connect(remote).await.map_err(|e| Error::Config(format!("connect {url}: {e}")))?;
        tcp.set_nodelay(true).map_err(|e| Error::Config(format!("connect {url}: {e}")))?;
        let mut request = url.as_str().into_client_request().map_err(Error::transport)?;
        request.headers_mut().insert(
            "sec-websocket-protocol",
            offered.parse().map_err(|_| Error::Config("unencodable subprotocols".into()))?,
        );
        tokio_tungstenite::client_async_with_config(request, tcp, Some(ws_config())).await.map_err(Error::transport)
    };
    let (ws, response) = tokio::time::timeout(CONNECT_TIMEOUT, handshake)
        .await
        .map_err(|_| Error::Config(format!("connect {url}: no WebSocket upgrade within {CONNECT_TIMEOUT:?}")))??;
    let protocol = response
        .headers()
        .get("sec-websocket-protocol")
        .and_then(|p| p.to_str().ok())
        .filter(|p| offered.split(", ").any(|o| o == *p))
        .ok_or(Error::Session(SessionError::VersionNegotiation))?
        .to_string();
    let version = version_of(&protocol).ok_or(Error::Session(SessionError::VersionNegotiation))?;
    let qmux = Upgraded::new(ws)
        .with_alpn(&protocol)
        .with_keep_alive(keep_alive(&config))
        .with_session_config(qmux_config(&config))
        .connect();
    config.path = None;
    config.authority = None;
    Session::establish(Transport::WebSocket(qmux, remote), version, Role::Client, config).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The newest shared MoQT version wins over the client's order, then the newest QMux version offered with it;
    /// bare QMux versions and other applications are not ours.
    #[test]
    fn the_newest_shared_draft_is_selected() {
        let offered = ["qmux-01.moqt-18, qmux-00.moqt-19", "qmux-01.moqt-19"];
        assert_eq!(select_protocol(offered), Some(("qmux-01.moqt-19".to_string(), Version::Draft19)));
        assert_eq!(select_protocol(["qmux-02.moqt-18"]), Some(("qmux-02.moqt-18".to_string(), Version::Draft18)));
        assert_eq!(select_protocol(["qmux-02", "webtransport", "qmux-02.moq-lite-04"]), None);
        assert_eq!(select_protocol(["qmux-02.moqt-17"]), None);
    }

    #[test]
    fn offered_protocols_round_trip_through_selection() {
        let offered = offered_protocols(&[Version::Draft18]);
        assert_eq!(offered[0], "qmux-02.moqt-18");
        let (chosen, v) = select_protocol(offered.iter().map(String::as_str)).unwrap();
        assert_eq!((version_of(&chosen), v), (Some(Version::Draft18), Version::Draft18));
    }
}
