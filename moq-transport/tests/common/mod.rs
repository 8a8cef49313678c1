//! What the session tests share: sessions over the in-memory transport, a hand-driven raw peer, framing.
#![allow(dead_code, unused_imports)] // each test binary uses part of it

pub use bytes::{Bytes, BytesMut};
pub use moq_transport::memory::{self, MemorySession};
pub use moq_transport::wire::codes::{RequestErrorCode, SessionCode};
pub use moq_transport::wire::control::*;
pub use moq_transport::wire::namespace::{FullTrackName, TrackNamespace};
pub use moq_transport::wire::params::Parameters;
pub use moq_transport::wire::setup::SetupOptions;
pub use moq_transport::wire::{Decode, GroupId, ObjectStatus, RequestId, Version};
pub use moq_transport::*;
pub use std::time::Duration;
pub use tokio::time::timeout;
pub use web_transport_trait::{RecvStream as _, SendStream as _, Session as _};

pub const V: Version = Version::Draft19;
pub const T: Duration = Duration::from_secs(5);

pub fn name(ns: &str, track: &str) -> FullTrackName {
    FullTrackName::new(TrackNamespace::from_path(ns).unwrap(), track)
}

pub async fn sessions(origin: Origin) -> (Session<MemorySession>, Session<MemorySession>) {
    let (a, b) = memory::pair(None);
    let (client, server) = tokio::join!(
        Session::establish(a, V, Role::Client, SessionConfig::default()),
        Session::establish(b, V, Role::Server, SessionConfig { origin, ..Default::default() }),
    );
    (client.unwrap(), server.unwrap())
}

pub fn frame(msg: ControlMessage) -> Bytes {
    let mut buf = BytesMut::new();
    msg.encode(&mut buf, V).unwrap();
    buf.freeze()
}

/// A hand-driven client: completes SETUP, then lets the test write whatever bytes it likes.
pub struct RawPeer {
    pub transport: MemorySession,
    pub server: tokio::task::JoinHandle<Result<Session<MemorySession>, Error>>,
}

impl RawPeer {
    pub async fn connect(origin: Origin) -> (RawPeer, Session<MemorySession>) {
        let (raw, b) = memory::pair(None);
        let server =
            tokio::spawn(Session::establish(b, V, Role::Server, SessionConfig { origin, ..Default::default() }));
        let mut control = raw.open_uni().await.unwrap();
        control.write_all(&frame(Setup { options: SetupOptions::default() }.into())).await.unwrap();
        std::mem::forget(control); // keep our control stream open for the whole test
        let mut peer = RawPeer { transport: raw, server };
        let session = (&mut peer.server).await.unwrap().unwrap();
        // Take the server's control stream off the accept queue, so that tests see only data streams there.
        let control = timeout(T, peer.transport.accept_uni()).await.unwrap().unwrap();
        std::mem::forget(control);
        (peer, session)
    }

    /// A server publishing `live--v` and a raw peer that has sent SUBSCRIBE for it (the reply not yet read).
    pub async fn subscribed() -> (TrackProducer, RawPeer, Session<MemorySession>, memory::MemorySend, memory::MemoryRecv)
    {
        let origin = Origin::new();
        let track = TrackProducer::new(TrackInfo::new(name("live", "v")));
        origin.publish_track(track.clone());
        let (peer, server) = RawPeer::connect(origin).await;
        let sub = Subscribe { request_id: RequestId(0), track: name("live", "v"), params: Parameters::default() };
        let (send, recv) = peer.request(&frame(sub.into())).await;
        (track, peer, server, send, recv)
    }

    /// Opens a request stream and writes `bytes` on it.
    pub async fn request(&self, bytes: &[u8]) -> (memory::MemorySend, memory::MemoryRecv) {
        let (mut send, recv) = self.transport.open_bi().await.unwrap();
        send.write_all(bytes).await.unwrap();
        (send, recv)
    }

    /// Waits for the server to close the session; returns the code.
    pub async fn close_code(&self) -> u32 {
        let _ = timeout(T, self.transport.closed()).await.expect("session should close");
        self.transport.close_reason().unwrap().0
    }
}

/// Reads from a raw stream until it ends; returns the bytes and how it ended (`Ok` = FIN, `Err(code)` = reset).
pub async fn drain(recv: &mut memory::MemoryRecv) -> (Vec<u8>, Result<(), u32>) {
    let mut out = Vec::new();
    loop {
        match timeout(T, recv.read_chunk(64 * 1024)).await.expect("stream should end") {
            Ok(Some(chunk)) => out.extend_from_slice(&chunk),
            Ok(None) => return (out, Ok(())),
            Err(memory::MemoryError::Reset(code)) => return (out, Err(code)),
            Err(e) => panic!("{e}"),
        }
    }
}

/// Reads one control message from a request stream's receive side.
pub async fn next_message(recv: &mut memory::MemoryRecv, buf: &mut BytesMut) -> ControlMessage {
    loop {
        match ControlMessage::decode_from(buf, V) {
            Ok(m) => return m,
            Err(e) if e.is_short() => {}
            Err(e) => panic!("{e}"),
        }
        let chunk = timeout(T, recv.read_chunk(64 * 1024)).await.expect("a message").unwrap().expect("not FIN");
        buf.extend_from_slice(&chunk);
    }
}
