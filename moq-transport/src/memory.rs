//! An in-memory transport implementing the `web-transport-trait` interfaces: two connected endpoints with
//! streams, stream resets, STOP_SENDING, datagrams and session close, without sockets or TLS.
//!
//! It exists so that session logic can be tested deterministically and fast (`tokio::time::pause` works), and
//! so that tests can play a misbehaving peer by writing raw bytes.

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use bytes::Bytes;
use tokio::sync::{Mutex, mpsc, watch};

/// Errors of the in-memory transport.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemoryError {
    /// The session was closed with this code and reason.
    #[error("session closed: {0} {1}")]
    Closed(u32, String),
    /// The peer reset the stream.
    #[error("stream reset: {0}")]
    Reset(u32),
    /// The peer stopped the stream.
    #[error("stream stopped: {0}")]
    Stopped(u32),
}

impl web_transport_trait::Error for MemoryError {
    fn session_error(&self) -> Option<(u32, String)> {
        match self {
            MemoryError::Closed(c, r) => Some((*c, r.clone())),
            _ => None,
        }
    }

    fn stream_error(&self) -> Option<u32> {
        match self {
            MemoryError::Reset(c) | MemoryError::Stopped(c) => Some(*c),
            MemoryError::Closed(..) => None,
        }
    }
}

enum Chunk {
    Data(Bytes),
    Fin,
    Reset(u32),
}

type Closed = watch::Receiver<Option<(u32, String)>>;

/// The sending half of an in-memory stream. Dropping it without `finish` resets the stream.
pub struct MemorySend {
    tx: mpsc::UnboundedSender<Chunk>,
    stopped: watch::Receiver<Option<u32>>,
    closed: Closed,
    done: bool,
    priority: Arc<AtomicI32>,
}

/// The receiving half of an in-memory stream.
pub struct MemoryRecv {
    rx: mpsc::UnboundedReceiver<Chunk>,
    stop: watch::Sender<Option<u32>>,
    closed: Closed,
    pending: Option<Bytes>,
    ended: bool,
    priority: Arc<AtomicI32>,
}

fn stream(closed: &Closed) -> (MemorySend, MemoryRecv) {
    let (tx, rx) = mpsc::unbounded_channel();
    let (stop, stopped) = watch::channel(None);
    let priority = Arc::new(AtomicI32::new(0));
    (
        MemorySend { tx, stopped, closed: closed.clone(), done: false, priority: priority.clone() },
        MemoryRecv { rx, stop, closed: closed.clone(), pending: None, ended: false, priority },
    )
}

/// Resolves once the session is closed, with the close error.
async fn wait_closed(mut rx: Closed) -> MemoryError {
    let _ = rx.wait_for(|c| c.is_some()).await.map(|_| ());
    closed_error(&rx).unwrap_or(MemoryError::Closed(0, String::new()))
}

/// Resolves once the receiver stops the stream, with its code.
async fn wait_stopped(mut rx: watch::Receiver<Option<u32>>) -> u32 {
    match rx.wait_for(|s| s.is_some()).await.map(|s| s.unwrap_or(0)) {
        Ok(code) => code,
        Err(_) => std::future::pending().await,
    }
}

fn closed_error(closed: &Closed) -> Option<MemoryError> {
    closed.borrow().as_ref().map(|(c, r)| MemoryError::Closed(*c, r.clone()))
}

impl MemoryRecv {
    /// The send order the sender set last (a test hook: a real transport does not tell the receiver).
    pub fn sender_priority(&self) -> i32 {
        self.priority.load(Ordering::Relaxed)
    }
}

impl MemorySend {
    fn check(&self) -> Result<(), MemoryError> {
        if let Some(e) = closed_error(&self.closed) {
            return Err(e);
        }
        if let Some(code) = *self.stopped.borrow() {
            return Err(MemoryError::Stopped(code));
        }
        Ok(())
    }
}

impl Drop for MemorySend {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.tx.send(Chunk::Reset(0));
        }
    }
}

impl web_transport_trait::SendStream for MemorySend {
    type Error = MemoryError;

    async fn write(&mut self, buf: &[u8]) -> Result<usize, MemoryError> {
        self.check()?;
        let _ = self.tx.send(Chunk::Data(Bytes::copy_from_slice(buf)));
        Ok(buf.len())
    }

    async fn write_chunk(&mut self, chunk: Bytes) -> Result<(), MemoryError> {
        self.check()?;
        let _ = self.tx.send(Chunk::Data(chunk));
        Ok(())
    }

    fn set_priority(&mut self, order: i32) {
        self.priority.store(order, Ordering::Relaxed);
    }

    fn finish(&mut self) -> Result<(), MemoryError> {
        self.check()?;
        if !self.done {
            self.done = true;
            let _ = self.tx.send(Chunk::Fin);
        }
        Ok(())
    }

    fn reset(&mut self, code: u32) {
        if !self.done {
            self.done = true;
            let _ = self.tx.send(Chunk::Reset(code));
        }
    }

    async fn closed(&mut self) -> Result<(), MemoryError> {
        tokio::select! {
            code = wait_stopped(self.stopped.clone()) => Err(MemoryError::Stopped(code)),
            e = wait_closed(self.closed.clone()) => Err(e),
        }
    }
}

impl web_transport_trait::RecvStream for MemoryRecv {
    type Error = MemoryError;

    async fn read(&mut self, dst: &mut [u8]) -> Result<Option<usize>, MemoryError> {
        match self.read_chunk(dst.len()).await? {
            Some(chunk) => {
                dst[..chunk.len()].copy_from_slice(&chunk);
                Ok(Some(chunk.len()))
            }
            None => Ok(None),
        }
    }

    async fn read_chunk(&mut self, max: usize) -> Result<Option<Bytes>, MemoryError> {
        loop {
            if let Some(mut p) = self.pending.take() {
                if p.len() > max {
                    let rest = p.split_off(max);
                    self.pending = Some(rest);
                }
                return Ok(Some(p));
            }
            if self.ended {
                return Ok(None);
            }
            let chunk = tokio::select! {
                c = self.rx.recv() => c,
                e = wait_closed(self.closed.clone()) => return Err(e),
            };
            match chunk {
                Some(Chunk::Data(d)) => {
                    if !d.is_empty() {
                        self.pending = Some(d);
                    }
                }
                Some(Chunk::Fin) => {
                    self.ended = true;
                    return Ok(None);
                }
                Some(Chunk::Reset(code)) => return Err(MemoryError::Reset(code)),
                None => return Err(closed_error(&self.closed).unwrap_or(MemoryError::Reset(0))),
            }
        }
    }

    fn stop(&mut self, code: u32) {
        let _ = self.stop.send(Some(code));
    }

    async fn closed(&mut self) -> Result<(), MemoryError> {
        while self.read_chunk(usize::MAX).await?.is_some() {}
        Ok(())
    }
}

struct Side {
    uni: Mutex<mpsc::UnboundedReceiver<MemoryRecv>>,
    bi: Mutex<mpsc::UnboundedReceiver<(MemorySend, MemoryRecv)>>,
    datagrams: Mutex<mpsc::UnboundedReceiver<Bytes>>,
}

struct Peer {
    uni: mpsc::UnboundedSender<MemoryRecv>,
    bi: mpsc::UnboundedSender<(MemorySend, MemoryRecv)>,
    datagrams: mpsc::UnboundedSender<Bytes>,
}

/// One end of an in-memory connection.
#[derive(Clone)]
pub struct MemorySession {
    local: Arc<Side>,
    peer: Arc<Peer>,
    close: Arc<watch::Sender<Option<(u32, String)>>>,
    protocol: Option<&'static str>,
    /// This end may not open streams (a peer that grants no stream credit, as QMux before its parameters).
    no_credit: bool,
}

impl std::fmt::Debug for MemorySession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemorySession").field("closed", &*self.close.borrow()).finish()
    }
}

/// Two connected in-memory sessions (client, server) that report `protocol` as their negotiated protocol.
pub fn pair(protocol: Option<&'static str>) -> (MemorySession, MemorySession) {
    let (a_uni_tx, a_uni_rx) = mpsc::unbounded_channel();
    let (a_bi_tx, a_bi_rx) = mpsc::unbounded_channel();
    let (a_dg_tx, a_dg_rx) = mpsc::unbounded_channel();
    let (b_uni_tx, b_uni_rx) = mpsc::unbounded_channel();
    let (b_bi_tx, b_bi_rx) = mpsc::unbounded_channel();
    let (b_dg_tx, b_dg_rx) = mpsc::unbounded_channel();
    let close = Arc::new(watch::Sender::new(None));
    let a = MemorySession {
        local: Arc::new(Side { uni: Mutex::new(a_uni_rx), bi: Mutex::new(a_bi_rx), datagrams: Mutex::new(a_dg_rx) }),
        peer: Arc::new(Peer { uni: b_uni_tx, bi: b_bi_tx, datagrams: b_dg_tx }),
        close: close.clone(),
        protocol,
        no_credit: false,
    };
    let b = MemorySession {
        local: Arc::new(Side { uni: Mutex::new(b_uni_rx), bi: Mutex::new(b_bi_rx), datagrams: Mutex::new(b_dg_rx) }),
        peer: Arc::new(Peer { uni: a_uni_tx, bi: a_bi_tx, datagrams: a_dg_tx }),
        close,
        protocol,
        no_credit: false,
    };
    (a, b)
}

impl MemorySession {
    /// This end, unable to open a stream until the connection closes (its peer grants no stream credit).
    pub fn without_stream_credit(mut self) -> MemorySession {
        self.no_credit = true;
        self
    }

    /// Waits while this end may not open streams: until the connection closes.
    async fn credit(&self) -> Result<(), MemoryError> {
        if self.no_credit {
            return Err(wait_closed(self.closed_rx()).await);
        }
        self.check()
    }

    fn closed_rx(&self) -> Closed {
        self.close.subscribe()
    }

    fn check(&self) -> Result<(), MemoryError> {
        closed_error(&self.closed_rx()).map_or(Ok(()), Err)
    }

    /// The close code and reason, once closed.
    pub fn close_reason(&self) -> Option<(u32, String)> {
        self.close.borrow().clone()
    }
}

impl web_transport_trait::Session for MemorySession {
    type SendStream = MemorySend;
    type RecvStream = MemoryRecv;
    type Error = MemoryError;

    async fn accept_uni(&self) -> Result<MemoryRecv, MemoryError> {
        let mut rx = self.local.uni.lock().await;
        tokio::select! {
            s = rx.recv() => s.ok_or(MemoryError::Closed(0, String::new())),
            e = wait_closed(self.closed_rx()) => Err(e),
        }
    }

    async fn accept_bi(&self) -> Result<(MemorySend, MemoryRecv), MemoryError> {
        let mut rx = self.local.bi.lock().await;
        tokio::select! {
            s = rx.recv() => s.ok_or(MemoryError::Closed(0, String::new())),
            e = wait_closed(self.closed_rx()) => Err(e),
        }
    }

    async fn open_bi(&self) -> Result<(MemorySend, MemoryRecv), MemoryError> {
        self.credit().await?;
        let closed = self.closed_rx();
        let (our_send, their_recv) = stream(&closed);
        let (their_send, our_recv) = stream(&closed);
        self.peer.bi.send((their_send, their_recv)).map_err(|_| MemoryError::Closed(0, String::new()))?;
        Ok((our_send, our_recv))
    }

    async fn open_uni(&self) -> Result<MemorySend, MemoryError> {
        self.credit().await?;
        let (send, recv) = stream(&self.closed_rx());
        self.peer.uni.send(recv).map_err(|_| MemoryError::Closed(0, String::new()))?;
        Ok(send)
    }

    fn send_datagram(&self, payload: Bytes) -> Result<(), MemoryError> {
        self.check()?;
        let _ = self.peer.datagrams.send(payload);
        Ok(())
    }

    async fn recv_datagram(&self) -> Result<Bytes, MemoryError> {
        let mut rx = self.local.datagrams.lock().await;
        tokio::select! {
            d = rx.recv() => d.ok_or(MemoryError::Closed(0, String::new())),
            e = wait_closed(self.closed_rx()) => Err(e),
        }
    }

    fn max_datagram_size(&self) -> usize {
        1200
    }

    fn protocol(&self) -> Option<&str> {
        self.protocol
    }

    fn close(&self, code: u32, reason: &str) {
        self.close.send_if_modified(|c| {
            if c.is_some() {
                return false;
            }
            *c = Some((code, reason.to_string()));
            true
        });
    }

    async fn closed(&self) -> MemoryError {
        wait_closed(self.closed_rx()).await
    }
}
