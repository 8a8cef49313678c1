//! The MoQ vs HLS/LL-HLS evaluation's tools (see `eval/README.md` and `docs/evaluation.md`):
//!
//! - [`stamp`]: the glass-to-glass stamp burned into every frame of the source clip;
//! - [`fragments`]: a fragmented-MP4 stream split into its init segment and per-frame fragments, bytes untouched;
//! - [`netem`]: a packet-level network emulator between two network namespaces;
//! - [`llhls`]: an LL-HLS packager (parts, segments, playlists with preload hints);
//! - [`origin`]: the HTTPS origin serving HLS, LL-HLS (blocking reload) and the player pages;
//! - [`playlist`]: the little of M3U8 the HLS load tool reads.

pub mod fragments;
pub mod llhls;
pub mod netem;
pub mod origin;
pub mod playlist;
pub mod stamp;

/// Wall-clock milliseconds since the Unix epoch, with microsecond resolution.
pub fn unix_ms() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64() * 1000.0).unwrap_or(0.0)
}
