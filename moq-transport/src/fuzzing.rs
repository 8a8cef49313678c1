//! Drives a server session with arbitrary peer input, for the `session` fuzz target and its property test.
//!
//! The input is read as a draft version and a sequence of stream events (bytes on the control stream, on new or
//! existing request streams, on data streams, resets, FINs, datagrams) against a server whose origin holds one
//! track. Whatever the input, nothing may panic, and a session the server closes must be closed with a code the
//! draft defines.

use bytes::Bytes;
use moq_wire::Version;
use moq_wire::codes::SessionCode;
use moq_wire::control::{ControlMessage, Setup};
use moq_wire::namespace::{FullTrackName, TrackNamespace};
use moq_wire::setup::SetupOptions;
use web_transport_trait::{SendStream as _, Session as _};

use crate::memory::{self, MemorySend};
use crate::model::{Object, TrackInfo, TrackProducer};
use crate::{Origin, Role, Session, SessionConfig};

/// How a fuzzed session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Still open once the input has been taken in.
    Open,
    /// SETUP never completed.
    NoSession,
    /// Closed by the server with this code.
    Closed(u32),
}

/// Runs one input; panics only if the session misbehaves (a panic inside it, or a close code the draft does not
/// define).
pub fn session_input(data: &[u8]) -> Outcome {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build();
    let Ok(runtime) = runtime else { return Outcome::NoSession };
    let outcome = runtime.block_on(drive(data));
    if let Outcome::Closed(code) = outcome {
        let known = !matches!(SessionCode::from(code as u64), SessionCode::Unknown(_));
        assert!(known, "session closed with a code the draft does not define: {code:#x}");
    }
    outcome
}

/// Gives the session's tasks `rounds` turns on the (single-threaded) runtime.
async fn settle(rounds: usize) {
    for _ in 0..rounds {
        tokio::task::yield_now().await;
    }
}

async fn drive(data: &[u8]) -> Outcome {
    let (&first, mut input) = data.split_first().unwrap_or((&0, &[]));
    let version = if first & 1 == 0 { Version::Draft19 } else { Version::Draft18 };
    let origin = Origin::new();
    let name = FullTrackName::new(TrackNamespace::new(["live"]).unwrap_or_default(), "v");
    let track = TrackProducer::new(TrackInfo::new(name));
    origin.publish_track(track.clone());
    for g in 0..3 {
        let _ = track.write_group(g, [Object::new(0, "x"), Object::new(1, "y")]);
    }
    let (peer, ours) = memory::pair(None);
    let config = SessionConfig { origin, ..Default::default() };
    let server = tokio::spawn(Session::establish(ours, version, Role::Server, config));
    let Ok(mut control) = peer.open_uni().await else { return Outcome::NoSession };
    // Most inputs start from a valid SETUP, so that the rest reaches the established session.
    if first & 2 == 0 {
        let mut buf = bytes::BytesMut::new();
        if (ControlMessage::Setup(Setup { options: SetupOptions::default() })).encode(&mut buf, version).is_ok() {
            let _ = control.write_all(&buf).await;
        }
    }
    let mut requests: Vec<(MemorySend, memory::MemoryRecv)> = Vec::new();
    let mut data_streams: Vec<MemorySend> = Vec::new();
    while let Some((&op, rest)) = input.split_first() {
        let (&len, rest) = rest.split_first().unwrap_or((&0, &[]));
        let len = (len as usize).min(rest.len());
        let (chunk, rest) = rest.split_at(len);
        input = rest;
        match op % 7 {
            0 => {
                let _ = control.write_all(chunk).await;
            }
            1 => {
                if let Ok((mut send, recv)) = peer.open_bi().await {
                    let _ = send.write_all(chunk).await;
                    requests.push((send, recv));
                }
            }
            2 => {
                if let Some((send, _)) = requests.last_mut() {
                    let _ = send.write_all(chunk).await;
                }
            }
            3 => {
                if let Ok(mut send) = peer.open_uni().await {
                    let _ = send.write_all(chunk).await;
                    data_streams.push(send);
                }
            }
            4 => match (op / 7) % 3 {
                0 => drop(requests.pop()),
                1 => {
                    if let Some((send, _)) = requests.last_mut() {
                        let _ = send.finish();
                    }
                }
                _ => drop(data_streams.pop()),
            },
            5 => {
                let _ = peer.send_datagram(Bytes::copy_from_slice(chunk));
            }
            _ => settle(chunk.len()).await,
        }
        settle(4).await;
    }
    // Let everything the input set off run to quiescence (no timers: those would make each run slow).
    settle(256).await;
    if !server.is_finished() {
        server.abort();
        return Outcome::NoSession;
    }
    let session = match server.await {
        Ok(Ok(session)) => session,
        _ => return Outcome::NoSession,
    };
    settle(256).await;
    // The server decides the close at once (and closes the transport a moment later, after its streams).
    let outcome = match tokio::time::timeout(std::time::Duration::ZERO, session.closed()).await {
        Ok(e) => Outcome::Closed(crate::error::app_code(e.session_code())),
        Err(_) => Outcome::Open,
    };
    drop(session);
    outcome
}
