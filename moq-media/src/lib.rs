//! Media on MoQT: broadcasts of audio and video tracks, described by an MSF catalog and packaged as LOC
//! (a frame per object) or CMAF (a fragment per object).
//!
//! * [`mp4`]: fragmented MP4 in ([`mp4::Demuxer`]) and out ([`mp4::init_segment`], [`mp4::fragment`]).
//! * [`catalog`]: the MSF catalog JSON.
//! * [`loc`]: LOC object properties.
//! * [`Broadcast`]: publish an fMP4 input as a catalog track plus one track per media track.
//! * [`watch`]: subscribe to a broadcast and write it out as fragmented MP4.
//!
//! The track layout is documented in `docs/media.md`.

pub mod catalog;
pub mod catalog_limits;
pub mod loc;
pub mod mp4;
mod mux;
mod publish;
mod subscribe;

pub use publish::{Broadcast, BroadcastOptions, Input, Packaging};
pub use subscribe::{
    DEFAULT_MAX_LATENCY, LATENCY_SAMPLES, Selection, TrackStats, Watch, WatchEnd, WatchOptions, read_catalog, watch,
};

/// A 4-second synthetic clip (640x360 H.264 at 30 fps with a keyframe per second, 48 kHz mono Opus),
/// fragmented per frame: what `moq-relay --demo` loops. Made with ffmpeg's `testsrc` and `sine` sources; the
/// command is in `docs/media.md`.
pub const DEMO_CLIP: &[u8] = include_bytes!("../assets/demo-clip.mp4");

/// Why publishing or watching failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The media input or a received fragment was not usable MP4.
    #[error(transparent)]
    Mp4(#[from] mp4::Mp4Error),
    /// The catalog could not be read.
    #[error(transparent)]
    Catalog(#[from] catalog::CatalogError),
    /// Reading the input or writing the output failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The MoQT session failed.
    #[error(transparent)]
    Transport(#[from] moq_transport::Error),
    /// The broadcast does not have what was asked for.
    #[error("{0}")]
    Broadcast(String),
}

/// `t` in units of `1/from` seconds, expressed in units of `1/to` seconds, rounded to the nearest unit.
pub(crate) fn rescale(t: i128, from: u64, to: u64) -> i128 {
    let from = i128::from(from.max(1));
    (t * i128::from(to) + from / 2).div_euclid(from)
}

/// Microseconds since the Unix epoch, now.
pub fn now_micros() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

/// Milliseconds since the Unix epoch, now.
pub fn now_millis() -> u64 {
    now_micros() / 1000
}
