//! Endpoints: a server that accepts raw QUIC (`moqt-19`, `moqt-18`) and WebTransport (`h3`) on one UDP port, and
//! a client that connects to `moqt://` (raw QUIC) or `https://` (WebTransport) URLs.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use moq_wire::Version;
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use url::Url;
use web_transport_quinn::proto::ConnectResponse;

use crate::error::{SessionError, app_code};
use crate::tls::{Certificate, Trust, client_config};
use crate::transport::Transport;
use crate::{Error, Role, Session, SessionConfig};

/// The ALPN tokens a server offers: every MoQT version, then HTTP/3 for WebTransport.
fn server_alpns() -> Vec<Vec<u8>> {
    let mut alpns: Vec<Vec<u8>> = Version::ALL.iter().map(|v| v.alpn().as_bytes().to_vec()).collect();
    alpns.push(web_transport_quinn::ALPN.as_bytes().to_vec());
    alpns
}

/// The QUIC transport settings of our endpoints: stream limits from `config`, keep-alive, idle timeout, send
/// window, congestion controller and ACK frequency. Public so that tools comparing against plain QUIC (the
/// `quic-fanout` bench) run with exactly the same settings.
pub fn transport_config(config: &SessionConfig) -> quinn::TransportConfig {
    let mut t = quinn::TransportConfig::default();
    t.max_concurrent_bidi_streams(config.max_bidi_streams.into());
    t.max_concurrent_uni_streams(config.max_uni_streams.into());
    t.keep_alive_interval(Some(config.keep_alive));
    let idle = config.idle_timeout.try_into().unwrap_or(quinn::IdleTimeout::from(quinn::VarInt::from_u32(30_000)));
    t.max_idle_timeout(Some(idle));
    t.send_window(config.send_window);
    match config.congestion {
        crate::Congestion::Cubic => {
            t.congestion_controller_factory(Arc::new(quinn::congestion::CubicConfig::default()))
        }
        crate::Congestion::NewReno => {
            t.congestion_controller_factory(Arc::new(quinn::congestion::NewRenoConfig::default()))
        }
        crate::Congestion::Bbr => t.congestion_controller_factory(Arc::new(quinn::congestion::BbrConfig::default())),
    };
    t.ack_frequency_config(config.ack_frequency.map(|a| {
        let mut f = quinn::AckFrequencyConfig::default();
        f.ack_eliciting_threshold(quinn::VarInt::from_u32(a.threshold)).max_ack_delay(Some(a.max_delay));
        f
    }));
    t
}

/// A MoQT server endpoint.
pub struct Server {
    endpoint: quinn::Endpoint,
    config: SessionConfig,
    fingerprint: [u8; 32],
}

impl Server {
    /// Binds `addr` (use `127.0.0.1:0` in tests) with this certificate.
    pub fn bind(addr: SocketAddr, cert: Certificate, config: SessionConfig) -> Result<Server, Error> {
        let fingerprint = cert.sha256();
        let mut tls = crate::tls::server_config(cert)?;
        tls.alpn_protocols = server_alpns();
        let crypto = QuicServerConfig::try_from(tls).map_err(|e| Error::Tls(e.to_string()))?;
        let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        server.transport_config(Arc::new(transport_config(&config)));
        let endpoint = quinn::Endpoint::server(server, addr).map_err(Error::transport)?;
        Ok(Server { endpoint, config, fingerprint })
    }

    /// The bound address.
    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        self.endpoint.local_addr().map_err(Error::transport)
    }

    /// The SHA-256 of the server certificate.
    pub fn fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }

    /// Waits for the next connection attempt; `None` when the endpoint is closed. Finish it with
    /// [`Incoming::establish`], ideally in its own task so one slow handshake does not hold up others.
    pub async fn accept(&self) -> Option<Incoming> {
        let incoming = self.endpoint.accept().await?;
        Some(Incoming { incoming, config: self.config.clone() })
    }

    /// Stops accepting and closes every connection with `code`.
    pub fn close(&self, code: u32, reason: &str) {
        self.endpoint.close(code.into(), reason.as_bytes());
    }
}

/// A connection being accepted.
pub struct Incoming {
    incoming: quinn::Incoming,
    config: SessionConfig,
}

/// What a server learns about a new session before it runs.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The negotiated version.
    pub version: Version,
    /// What carries the session.
    pub via: Via,
    /// The request path: the WebTransport URL's path and query, or the PATH setup option on raw QUIC.
    pub path: String,
    /// The peer's address.
    pub remote: SocketAddr,
}

/// What carries a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// Raw QUIC (ALPN `moqt-NN`).
    Quic,
    /// WebTransport over HTTP/3.
    WebTransport,
    /// QMux over a WebSocket ([`crate::websocket`]).
    WebSocket,
}

impl std::fmt::Display for Via {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Via::Quic => "quic",
            Via::WebTransport => "webtransport",
            Via::WebSocket => "websocket",
        })
    }
}

impl Incoming {
    /// The peer's address, as its first packet claims it.
    pub fn remote_address(&self) -> SocketAddr {
        self.incoming.remote_address()
    }

    /// Whether the peer has proven it can receive at its address (it echoed a QUIC Retry token).
    pub fn remote_address_validated(&self) -> bool {
        self.incoming.remote_address_validated()
    }

    /// Answers with a QUIC Retry: the peer must prove its address before we spend a handshake on it. A peer
    /// that was validated already is refused instead.
    pub fn retry(self) {
        if let Err(e) = self.incoming.retry() {
            e.into_incoming().refuse();
        }
    }

    /// Refuses the connection (QUIC CONNECTION_REFUSED) before any handshake work.
    pub fn refuse(self) {
        self.incoming.refuse();
    }

    /// Gives this session its own [`crate::RequestLimits`] instead of the server's.
    pub fn with_limits(mut self, limits: crate::RequestLimits) -> Incoming {
        self.config.limits = limits;
        self
    }

    /// Completes the QUIC handshake, the WebTransport CONNECT if any, and the MoQT SETUP exchange.
    pub async fn establish(self) -> Result<(Session, Accepted), Error> {
        let conn = self.incoming.await.map_err(Error::transport)?;
        let remote = conn.remote_address();
        let alpn = conn
            .handshake_data()
            .and_then(|h| h.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
            .and_then(|h| h.protocol)
            .unwrap_or_default();
        if alpn == web_transport_quinn::ALPN.as_bytes() {
            let quic = conn.clone();
            let request = web_transport_quinn::Request::accept(conn).await.map_err(Error::transport)?;
            // The client lists the versions it speaks in WT-Available-Protocols; pick our most preferred. A client
            // that lists none (Firefox's WebTransport has no protocol negotiation) gets our newest version, and the
            // response names no protocol: such a client must offer that version first.
            let offered = !request.protocols.is_empty();
            let version = match offered {
                true => Version::ALL.into_iter().find(|v| request.protocols.iter().any(|p| p == v.alpn())),
                false => Version::ALL.first().copied(),
            };
            let Some(version) = version else {
                let _ = request.reject(web_transport_quinn::http::StatusCode::BAD_REQUEST).await;
                return Err(Error::Session(SessionError::VersionNegotiation));
            };
            let mut path = request.url.path().to_string();
            if let Some(q) = request.url.query() {
                path.push('?');
                path.push_str(q);
            }
            let response = match offered {
                true => ConnectResponse::OK.with_protocol(version.alpn()),
                false => ConnectResponse::OK,
            };
            let session = request.respond(response).await.map_err(Error::transport)?;
            let mut config = self.config;
            config.connect_path = Some(path.clone());
            let session = establish_server(&quic, session, version, config).await?;
            refuse_path_and_authority(&session, Via::WebTransport)?;
            Ok((session, Accepted { version, via: Via::WebTransport, path, remote }))
        } else {
            let Some(version) = Version::from_alpn(&alpn) else {
                conn.close(0x15u32.into(), b"unsupported ALPN");
                return Err(Error::Session(SessionError::VersionNegotiation));
            };
            let session = web_transport_quinn::Session::raw(conn.clone());
            let session = establish_server(&conn, session, version, self.config).await?;
            let path = session
                .peer_setup()
                .path
                .as_ref()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .unwrap_or_else(|| "/".to_string());
            Ok((session, Accepted { version, via: Via::Quic, path, remote }))
        }
    }
}

/// Closes a server session whose client sent PATH or AUTHORITY over a transport whose URL carries them
/// (WebTransport, a WebSocket).
pub(crate) fn refuse_path_and_authority(session: &Session, via: Via) -> Result<(), Error> {
    let web_socket = via == Via::WebSocket;
    //= draft-ietf-moq-transport-19#path
    //# When a PATH parameter is received ... while WebTransport is used ... the session MUST be closed
    //# with `INVALID_PATH`.
    let e = if session.peer_setup().path.is_some() {
        SessionError::InvalidPath(if web_socket { "PATH over a WebSocket" } else { "PATH over WebTransport" })
    } else if session.peer_setup().authority.is_some() {
        SessionError::InvalidAuthority(if web_socket {
            "AUTHORITY over a WebSocket"
        } else {
            "AUTHORITY over WebTransport"
        })
    } else {
        return Ok(());
    };
    let e = Error::Session(e);
    session.close(e.session_code(), &e.to_string());
    Err(e)
}

/// The SETUP exchange of a server session, closed with PROTOCOL_VIOLATION if the peer resets a stream first.
async fn establish_server(
    quic: &quinn::Connection,
    session: web_transport_quinn::Session,
    version: Version,
    config: SessionConfig,
) -> Result<Session, Error> {
    let transport = session.clone();
    let establish = Session::establish(Transport::Quic(session), version, Role::Server, config);
    tokio::pin!(establish);
    tokio::select! {
        biased;
        s = &mut establish => s,
        _ = reset_before_setup(quic) => {
            // A client that closes at once resets its control stream right behind its SETUP: if that SETUP is
            // here, the session is established (and then sees the close); only a reset with no SETUP fails it.
            if let Ok(s) = tokio::time::timeout(Duration::from_millis(100), &mut establish).await {
                return s;
            }
            let e = Error::protocol("a stream was reset before SETUP was read");
            transport.close(app_code(e.session_code()), e.to_string().as_bytes());
            Err(e)
        }
    }
}

/// Resolves once the peer has reset any stream of this (new) connection: before SETUP is read, that can only be the
/// control stream. The session cannot tell: a unidirectional stream reset before its type arrived looks like a
/// data stream cut short (normal), and web-transport-quinn drops a stream reset before its WebTransport header
/// was read. Unseen, the session would wait for the setup timeout; QUIC's frame counters see it.
async fn reset_before_setup(conn: &quinn::Connection) {
    while conn.stats().frame_rx.reset_stream == 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A MoQT client endpoint.
#[derive(Clone)]
pub struct Client {
    endpoint: quinn::Endpoint,
    trust: Trust,
    config: SessionConfig,
    versions: Vec<Version>,
}

impl Client {
    /// A client bound to an ephemeral local port.
    pub fn new(trust: Trust, config: SessionConfig) -> Result<Client, Error> {
        let endpoint = quinn::Endpoint::client(SocketAddr::from(([0u16; 8], 0)))
            .or_else(|_| quinn::Endpoint::client(SocketAddr::from(([0, 0, 0, 0], 0))))
            .map_err(Error::transport)?;
        Ok(Client { endpoint, trust, config, versions: Version::ALL.to_vec() })
    }

    /// A client bound to `addr` (a port of 0 picks one).
    pub fn bind(addr: SocketAddr, trust: Trust, config: SessionConfig) -> Result<Client, Error> {
        let endpoint = quinn::Endpoint::client(addr).map_err(Error::transport)?;
        Ok(Client { endpoint, trust, config, versions: Version::ALL.to_vec() })
    }

    /// Waits (at most `limit`) until every connection of this client has finished closing, so that the
    /// CONNECTION_CLOSE frames went out: call it before the process exits.
    pub async fn wait_idle(&self, limit: Duration) {
        let _ = tokio::time::timeout(limit, self.endpoint.wait_idle()).await;
    }

    /// Offers only these versions, in this order of preference (default: every supported version, newest
    /// first).
    pub fn with_versions(mut self, versions: &[Version]) -> Client {
        if !versions.is_empty() {
            self.versions = versions.to_vec();
        }
        self
    }

    /// Connects: `moqt://host:port/path` uses raw QUIC, `https://host:port/path` uses WebTransport, and
    /// `ws://host:port/path` a WebSocket to the relay's HTTP port ([`crate::websocket`]). The draft version is
    /// negotiated (newest first).
    ///
    /// `http://host:port/path` is the easy local path: it fetches `http://host:port/certificate.sha256` (what
    /// `moq-relay` serves), pins that fingerprint, and connects with WebTransport to `https://host:port/path`.
    /// The fingerprint travels unauthenticated, so use it for development only.
    pub async fn connect(&self, url: &Url) -> Result<Session, Error> {
        if url.scheme() == "ws" {
            return crate::websocket::connect(url, &self.versions, self.config.clone()).await;
        }
        let (client, url) = self.resolve(url).await?;
        let (session, version) = client.transport(&url).await?;
        let mut session_config = client.config.clone();
        if url.scheme() == "https" {
            // PATH and AUTHORITY are for native QUIC only.
            session_config.path = None;
            session_config.authority = None;
        } else {
            // Native QUIC: the client MUST send AUTHORITY and PATH.
            let (path, authority) = path_and_authority(&url);
            session_config.path = Some(path);
            session_config.authority = Some(authority);
        }
        Session::establish(Transport::Quic(session), version, Role::Client, session_config).await
    }

    /// Connects the transport only (raw QUIC or WebTransport, as [`Client::connect`]) and returns it with the
    /// negotiated version, without starting a MoQT session: for test peers and tools that write MoQT by hand.
    pub async fn connect_transport(&self, url: &Url) -> Result<(web_transport_quinn::Session, Version), Error> {
        let (client, url) = self.resolve(url).await?;
        client.transport(&url).await
    }

    /// For `http://` URLs, the client pinned to the fingerprint the server publishes and the `https://` URL.
    async fn resolve(&self, url: &Url) -> Result<(Client, Url), Error> {
        if url.scheme() != "http" {
            return Ok((self.clone(), url.clone()));
        }
        let mut fp_url = url.clone();
        fp_url.set_path("/certificate.sha256");
        fp_url.set_query(None);
        let text = reqwest::get(fp_url.as_str())
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| Error::Config(format!("fetch {fp_url}: {e}")))?
            .text()
            .await
            .map_err(|e| Error::Config(format!("fetch {fp_url}: {e}")))?;
        let fingerprint = crate::tls::parse_fingerprint(text.trim())?;
        tracing::warn!(%fp_url, "trusting a certificate fingerprint fetched over plain HTTP (development only)");
        let mut https = url.clone();
        https.set_scheme("https").map_err(|_| Error::Config("cannot make an https URL".into()))?;
        Ok((Client { trust: Trust::Fingerprints(vec![fingerprint]), ..self.clone() }, https))
    }

    async fn transport(&self, url: &Url) -> Result<(web_transport_quinn::Session, Version), Error> {
        let webtransport = match url.scheme() {
            "moqt" => false,
            "https" => true,
            other => {
                return Err(Error::Config(format!(
                    "unsupported URL scheme {other:?} (use moqt://, https://, http:// or ws://)"
                )));
            }
        };
        let host = url.host_str().ok_or_else(|| Error::Config("URL has no host".into()))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = url.port().unwrap_or(443);
        let remote = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| Error::Config(format!("resolve {host}: {e}")))?
            .next()
            .ok_or_else(|| Error::Config(format!("resolve {host}: no address")))?;

        let mut tls = client_config(&self.trust)?;
        tls.alpn_protocols = if webtransport {
            vec![web_transport_quinn::ALPN.as_bytes().to_vec()]
        } else {
            self.versions.iter().map(|v| v.alpn().as_bytes().to_vec()).collect()
        };
        let crypto = QuicClientConfig::try_from(tls).map_err(|e| Error::Tls(e.to_string()))?;
        let mut config = quinn::ClientConfig::new(Arc::new(crypto));
        config.transport_config(Arc::new(transport_config(&self.config)));
        let server_name = if host.parse::<std::net::IpAddr>().is_ok() { "localhost" } else { host };
        let conn = self
            .endpoint
            .connect_with(config, remote, server_name)
            .map_err(Error::transport)?
            .await
            .map_err(Error::transport)?;

        if webtransport {
            let request = web_transport_quinn::proto::ConnectRequest::new(url.clone())
                .with_protocols(self.versions.iter().map(|v| v.alpn().to_string()));
            let session = web_transport_quinn::Session::connect(conn, request).await.map_err(Error::transport)?;
            let version = session
                .protocol()
                .and_then(|p| Version::from_alpn(p.as_bytes()))
                .ok_or(Error::Session(SessionError::VersionNegotiation))?;
            Ok((session, version))
        } else {
            let alpn = conn
                .handshake_data()
                .and_then(|h| h.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
                .and_then(|h| h.protocol)
                .unwrap_or_default();
            let version = Version::from_alpn(&alpn).ok_or(Error::Session(SessionError::VersionNegotiation))?;
            Ok((web_transport_quinn::Session::raw(conn), version))
        }
    }
}

/// PATH (path and query) and AUTHORITY (host and port) of a `moqt://` URL, as a native QUIC client sends them.
pub fn path_and_authority(url: &Url) -> (String, String) {
    let mut path = url.path().to_string();
    if let Some(q) = url.query() {
        path.push('?');
        path.push_str(q);
    }
    let authority = match url.port() {
        Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_string(),
    };
    (path, authority)
}

/// A QUIC connection's packet counters, from quinn's statistics: what a sender's cost per byte depends on
/// (datagrams per send call is the GSO batch achieved; every ACK received is a packet to decrypt and process).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct QuicCounters {
    /// UDP datagrams sent.
    pub datagrams_sent: u64,
    /// Send system calls (one per GSO batch).
    pub send_calls: u64,
    /// UDP payload bytes sent.
    pub udp_bytes_sent: u64,
    /// UDP datagrams received.
    pub datagrams_received: u64,
    /// ACK frames received.
    pub acks_received: u64,
    /// ACK frames sent.
    pub acks_sent: u64,
    /// ACK_FREQUENCY frames sent (our requests to the peer).
    pub ack_frequency_sent: u64,
    /// ACK_FREQUENCY frames received (the peer's requests to us).
    pub ack_frequency_received: u64,
}

impl QuicCounters {
    /// The counters of `conn` so far.
    pub fn of(conn: &quinn::Connection) -> QuicCounters {
        let s = conn.stats();
        QuicCounters {
            datagrams_sent: s.udp_tx.datagrams,
            send_calls: s.udp_tx.ios,
            udp_bytes_sent: s.udp_tx.bytes,
            datagrams_received: s.udp_rx.datagrams,
            acks_received: s.frame_rx.acks,
            acks_sent: s.frame_tx.acks,
            ack_frequency_sent: s.frame_tx.ack_frequency,
            ack_frequency_received: s.frame_rx.ack_frequency,
        }
    }

    /// Adds `other` to these.
    pub fn add(&mut self, other: &QuicCounters) {
        self.datagrams_sent += other.datagrams_sent;
        self.send_calls += other.send_calls;
        self.udp_bytes_sent += other.udp_bytes_sent;
        self.datagrams_received += other.datagrams_received;
        self.acks_received += other.acks_received;
        self.acks_sent += other.acks_sent;
        self.ack_frequency_sent += other.ack_frequency_sent;
        self.ack_frequency_received += other.ack_frequency_received;
    }
}

impl std::iter::Sum for QuicCounters {
    fn sum<I: Iterator<Item = QuicCounters>>(iter: I) -> QuicCounters {
        iter.fold(QuicCounters::default(), |mut total, c| {
            total.add(&c);
            total
        })
    }
}

impl Session {
    /// This session's QUIC counters.
    pub fn quic_counters(&self) -> QuicCounters {
        self.transport().quic().map(QuicCounters::of).unwrap_or_default()
    }

    /// The peer's address.
    pub fn remote_address(&self) -> SocketAddr {
        self.transport().remote_address()
    }
}
