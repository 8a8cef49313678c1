//! The transports a session runs over: QUIC (raw or WebTransport, through `web-transport-quinn`) or QMux over a
//! WebSocket (the `qmux` crate), for browsers without a working WebTransport. [`Transport`] is either, so one
//! relay holds sessions of both kinds side by side.

use std::net::SocketAddr;

use bytes::{Buf, BufMut, Bytes};
use web_transport_trait as wt;

/// A session's transport: QUIC, or QMux over a WebSocket.
// Held once per session (in its shared state): the size difference costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub enum Transport {
    /// QUIC, raw or WebTransport.
    Quic(web_transport_quinn::Session),
    /// QMux (draft-ietf-quic-qmux) over a WebSocket, and the peer's TCP address.
    WebSocket(qmux::Session, SocketAddr),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::Quic(_) => f.write_str("Transport::Quic"),
            Transport::WebSocket(_, remote) => write!(f, "Transport::WebSocket({remote})"),
        }
    }
}

impl Transport {
    /// The peer's address.
    pub fn remote_address(&self) -> SocketAddr {
        match self {
            Transport::Quic(s) => std::ops::Deref::deref(s).remote_address(),
            Transport::WebSocket(_, remote) => *remote,
        }
    }

    /// The QUIC connection, unless this is a WebSocket.
    pub fn quic(&self) -> Option<&quinn::Connection> {
        match self {
            Transport::Quic(s) => Some(s),
            Transport::WebSocket(..) => None,
        }
    }

    /// Whether this is QMux over a WebSocket.
    pub fn is_websocket(&self) -> bool {
        matches!(self, Transport::WebSocket(..))
    }
}

/// A failure of either transport.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error(transparent)]
    /// A QUIC or WebTransport session failed.
    Session(#[from] web_transport_quinn::SessionError),
    #[error(transparent)]
    /// Writing a QUIC stream failed.
    Write(#[from] web_transport_quinn::WriteError),
    #[error(transparent)]
    /// Reading a QUIC stream failed.
    Read(#[from] web_transport_quinn::ReadError),
    #[error(transparent)]
    /// The WebSocket session or one of its streams failed.
    QMux(#[from] qmux::Error),
}

impl wt::Error for TransportError {
    fn session_error(&self) -> Option<(u32, String)> {
        match self {
            TransportError::Session(e) => e.session_error(),
            TransportError::Write(e) => e.session_error(),
            TransportError::Read(e) => e.session_error(),
            TransportError::QMux(e) => e.session_error(),
        }
    }

    fn stream_error(&self) -> Option<u32> {
        match self {
            TransportError::Session(e) => e.stream_error(),
            TransportError::Write(e) => e.stream_error(),
            TransportError::Read(e) => e.stream_error(),
            TransportError::QMux(e) => e.stream_error(),
        }
    }
}

/// A sending stream of either transport.
pub enum SendStream {
    /// A QUIC stream.
    Quic(web_transport_quinn::SendStream),
    /// A QMux stream.
    WebSocket(qmux::SendStream),
}

/// A receiving stream of either transport.
pub enum RecvStream {
    /// A QUIC stream.
    Quic(web_transport_quinn::RecvStream),
    /// A QMux stream.
    WebSocket(qmux::RecvStream),
}

fn quic_pair(
    (send, recv): (web_transport_quinn::SendStream, web_transport_quinn::RecvStream),
) -> (SendStream, RecvStream) {
    (SendStream::Quic(send), RecvStream::Quic(recv))
}

fn qmux_pair((send, recv): (qmux::SendStream, qmux::RecvStream)) -> (SendStream, RecvStream) {
    (SendStream::WebSocket(send), RecvStream::WebSocket(recv))
}

impl wt::Session for Transport {
    type SendStream = SendStream;
    type RecvStream = RecvStream;
    type Error = TransportError;

    async fn accept_uni(&self) -> Result<RecvStream, TransportError> {
        Ok(match self {
            Transport::Quic(s) => RecvStream::Quic(wt::Session::accept_uni(s).await?),
            Transport::WebSocket(s, _) => RecvStream::WebSocket(wt::Session::accept_uni(s).await?),
        })
    }

    async fn accept_bi(&self) -> Result<(SendStream, RecvStream), TransportError> {
        Ok(match self {
            Transport::Quic(s) => quic_pair(wt::Session::accept_bi(s).await?),
            Transport::WebSocket(s, _) => qmux_pair(wt::Session::accept_bi(s).await?),
        })
    }

    async fn open_bi(&self) -> Result<(SendStream, RecvStream), TransportError> {
        Ok(match self {
            Transport::Quic(s) => quic_pair(wt::Session::open_bi(s).await?),
            Transport::WebSocket(s, _) => qmux_pair(wt::Session::open_bi(s).await?),
        })
    }

    async fn open_uni(&self) -> Result<SendStream, TransportError> {
        Ok(match self {
            Transport::Quic(s) => SendStream::Quic(wt::Session::open_uni(s).await?),
            Transport::WebSocket(s, _) => SendStream::WebSocket(wt::Session::open_uni(s).await?),
        })
    }

    fn send_datagram(&self, payload: Bytes) -> Result<(), TransportError> {
        match self {
            Transport::Quic(s) => Ok(wt::Session::send_datagram(s, payload)?),
            Transport::WebSocket(s, _) => Ok(wt::Session::send_datagram(s, payload)?),
        }
    }

    async fn recv_datagram(&self) -> Result<Bytes, TransportError> {
        match self {
            Transport::Quic(s) => Ok(wt::Session::recv_datagram(s).await?),
            Transport::WebSocket(s, _) => Ok(wt::Session::recv_datagram(s).await?),
        }
    }

    fn max_datagram_size(&self) -> usize {
        match self {
            Transport::Quic(s) => wt::Session::max_datagram_size(s),
            Transport::WebSocket(s, _) => wt::Session::max_datagram_size(s),
        }
    }

    fn protocol(&self) -> Option<&str> {
        match self {
            Transport::Quic(s) => wt::Session::protocol(s),
            Transport::WebSocket(s, _) => wt::Session::protocol(s),
        }
    }

    fn close(&self, code: u32, reason: &str) {
        match self {
            Transport::Quic(s) => wt::Session::close(s, code, reason),
            Transport::WebSocket(s, _) => wt::Session::close(s, code, reason),
        }
    }

    async fn closed(&self) -> TransportError {
        match self {
            Transport::Quic(s) => wt::Session::closed(s).await.into(),
            Transport::WebSocket(s, _) => wt::Session::closed(s).await.into(),
        }
    }
}

impl wt::SendStream for SendStream {
    type Error = TransportError;

    async fn write(&mut self, buf: &[u8]) -> Result<usize, TransportError> {
        match self {
            SendStream::Quic(s) => Ok(wt::SendStream::write(s, buf).await?),
            SendStream::WebSocket(s) => Ok(wt::SendStream::write(s, buf).await?),
        }
    }

    async fn write_buf<B: Buf + Send>(&mut self, buf: &mut B) -> Result<usize, TransportError> {
        match self {
            SendStream::Quic(s) => Ok(wt::SendStream::write_buf(s, buf).await?),
            SendStream::WebSocket(s) => Ok(wt::SendStream::write_buf(s, buf).await?),
        }
    }

    async fn write_chunk(&mut self, chunk: Bytes) -> Result<(), TransportError> {
        match self {
            SendStream::Quic(s) => Ok(wt::SendStream::write_chunk(s, chunk).await?),
            SendStream::WebSocket(s) => Ok(wt::SendStream::write_chunk(s, chunk).await?),
        }
    }

    async fn write_all(&mut self, buf: &[u8]) -> Result<(), TransportError> {
        match self {
            SendStream::Quic(s) => Ok(wt::SendStream::write_all(s, buf).await?),
            SendStream::WebSocket(s) => Ok(wt::SendStream::write_all(s, buf).await?),
        }
    }

    fn set_priority(&mut self, order: i32) {
        match self {
            SendStream::Quic(s) => wt::SendStream::set_priority(s, order),
            SendStream::WebSocket(s) => wt::SendStream::set_priority(s, order),
        }
    }

    fn finish(&mut self) -> Result<(), TransportError> {
        match self {
            SendStream::Quic(s) => Ok(wt::SendStream::finish(s)?),
            SendStream::WebSocket(s) => Ok(wt::SendStream::finish(s)?),
        }
    }

    fn reset(&mut self, code: u32) {
        match self {
            SendStream::Quic(s) => wt::SendStream::reset(s, code),
            SendStream::WebSocket(s) => wt::SendStream::reset(s, code),
        }
    }

    async fn closed(&mut self) -> Result<(), TransportError> {
        match self {
            SendStream::Quic(s) => Ok(wt::SendStream::closed(s).await?),
            SendStream::WebSocket(s) => Ok(wt::SendStream::closed(s).await?),
        }
    }
}

impl wt::RecvStream for RecvStream {
    type Error = TransportError;

    async fn read(&mut self, dst: &mut [u8]) -> Result<Option<usize>, TransportError> {
        match self {
            RecvStream::Quic(s) => Ok(wt::RecvStream::read(s, dst).await?),
            RecvStream::WebSocket(s) => Ok(wt::RecvStream::read(s, dst).await?),
        }
    }

    async fn read_buf<B: BufMut + Send>(&mut self, buf: &mut B) -> Result<Option<usize>, TransportError> {
        match self {
            RecvStream::Quic(s) => Ok(wt::RecvStream::read_buf(s, buf).await?),
            RecvStream::WebSocket(s) => Ok(wt::RecvStream::read_buf(s, buf).await?),
        }
    }

    async fn read_chunk(&mut self, max: usize) -> Result<Option<Bytes>, TransportError> {
        match self {
            RecvStream::Quic(s) => Ok(wt::RecvStream::read_chunk(s, max).await?),
            RecvStream::WebSocket(s) => Ok(wt::RecvStream::read_chunk(s, max).await?),
        }
    }

    fn stop(&mut self, code: u32) {
        match self {
            RecvStream::Quic(s) => wt::RecvStream::stop(s, code),
            RecvStream::WebSocket(s) => wt::RecvStream::stop(s, code),
        }
    }

    async fn closed(&mut self) -> Result<(), TransportError> {
        match self {
            RecvStream::Quic(s) => Ok(wt::RecvStream::closed(s).await?),
            RecvStream::WebSocket(s) => Ok(wt::RecvStream::closed(s).await?),
        }
    }
}
