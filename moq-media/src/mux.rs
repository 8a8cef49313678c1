//! Muxing received frames of several tracks into fragmented MP4, on one timeline that stays monotonic across
//! reconnections.

use bytes::Bytes;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::mp4::{Kind, Sample, TrackConfig, fragment};
use crate::{Error, rescale};

/// A frame on its way from a track reader to the writer, times in microseconds.
#[derive(Debug)]
pub(crate) struct Unit {
    pub(crate) track: usize,
    pub(crate) dts_us: i64,
    pub(crate) pts_us: i64,
    pub(crate) duration_us: Option<u64>,
    pub(crate) keyframe: bool,
    pub(crate) data: Bytes,
}

/// Muxes frames of several tracks into fragments, on a timeline starting at the earliest first frame.
pub(crate) struct Writer {
    configs: Vec<TrackConfig>,
    /// Per track: started (a keyframe seen), last dts written (output units).
    started: Vec<bool>,
    last_dts: Vec<Option<u64>>,
    pub(crate) base_us: Option<i64>,
    pub(crate) pending: Vec<Unit>,
    sequence: u32,
    written: u64,
    /// After a reconnection: the next frames start a new stretch of the timeline, placed right after the last
    /// frame written (the publisher's clock may have restarted, or jumped by the outage).
    rebase: bool,
    /// Write the publisher's timestamps as they are (the output's timeline is the publisher's).
    keep_timestamps: bool,
}

/// The gap left on the output timeline where a reconnection happened.
const RESUME_GAP_US: i64 = 40_000;

impl Writer {
    pub(crate) fn new(configs: Vec<TrackConfig>, keep_timestamps: bool) -> Writer {
        let n = configs.len();
        Writer {
            configs,
            started: vec![false; n],
            last_dts: vec![None; n],
            base_us: None,
            pending: Vec::new(),
            sequence: 0,
            written: 0,
            rebase: false,
            keep_timestamps,
        }
    }

    /// Frames written so far.
    pub(crate) fn written(&self) -> u64 {
        self.written
    }

    /// Whether frames wait for every track's first one (the timeline's origin is not placed yet).
    pub(crate) fn waiting_for_tracks(&self) -> bool {
        (self.base_us.is_none() || self.rebase) && !self.pending.is_empty()
    }

    /// A new session feeds the same tracks: wait for a keyframe on video again and continue the timeline after the
    /// last frame written, whatever the new frames' timestamps are.
    pub(crate) fn resume(&mut self) {
        self.started.iter_mut().for_each(|s| *s = false);
        self.pending.clear();
        self.rebase = self.base_us.is_some();
    }

    /// Where the last frame written sits on the output timeline, in microseconds.
    fn last_written_us(&self) -> i64 {
        let per_track = self.last_dts.iter().zip(&self.configs).filter_map(|(dts, config)| {
            dts.map(|d| rescale(i128::from(d), u64::from(config.timescale.max(1)), 1_000_000))
        });
        per_track.max().map_or(0, |us| i64::try_from(us).unwrap_or(i64::MAX))
    }

    pub(crate) fn push(&mut self, unit: Unit) {
        // Video starts at a keyframe.
        if !self.started[unit.track] {
            if self.configs[unit.track].kind == Kind::Video && !unit.keyframe {
                return;
            }
            self.started[unit.track] = true;
        }
        self.pending.push(unit);
    }

    /// Writes what is pending once the timeline's origin is known: when every track has a frame, or `force`.
    pub(crate) async fn flush<W: AsyncWrite + Unpin>(&mut self, out: &mut W, force: bool) -> Result<(), Error> {
        if self.base_us.is_none() || self.rebase {
            if self.pending.is_empty() || !(force || self.started.iter().all(|s| *s)) {
                return Ok(());
            }
            let first = self.pending.iter().map(|u| u.dts_us.min(u.pts_us)).min();
            self.base_us = match (self.rebase, first) {
                _ if self.keep_timestamps => Some(0),
                (true, Some(first)) => Some(first - self.last_written_us() - RESUME_GAP_US),
                _ => first,
            };
            self.rebase = false;
        }
        let base = self.base_us.unwrap_or(0);
        for unit in std::mem::take(&mut self.pending) {
            if unit.dts_us.min(unit.pts_us) < base {
                continue; // before the timeline's start: a track that began earlier than the others
            }
            let config = &self.configs[unit.track];
            let scale = u64::from(config.timescale.max(1));
            let to_units = |us: i64| {
                let t = rescale(i128::from(us) - i128::from(base), 1_000_000, scale);
                u64::try_from(t.max(0)).unwrap_or(u64::MAX)
            };
            let mut dts = to_units(unit.dts_us);
            // Decode times must increase; LOC carries presentation times only.
            if let Some(last) = self.last_dts[unit.track]
                && dts <= last
            {
                dts = last.saturating_add(1);
            }
            let pts = i64::try_from(to_units(unit.pts_us)).unwrap_or(i64::MAX);
            let duration = match (unit.duration_us, self.last_dts[unit.track]) {
                (Some(d), _) => u32::try_from(rescale(d.into(), 1_000_000, scale)).unwrap_or(u32::MAX),
                // Until the next frame tells us, assume this one lasts as long as the gap since the previous.
                (None, Some(last)) => u32::try_from(dts.saturating_sub(last)).unwrap_or(u32::MAX),
                (None, None) => match config.kind {
                    Kind::Video => (config.timescale / 30).max(1),
                    Kind::Audio => (config.timescale / 50).max(1),
                },
            };
            self.last_dts[unit.track] = Some(dts);
            self.sequence = self.sequence.wrapping_add(1);
            let sample = Sample {
                track_id: unit.track as u32 + 1,
                dts,
                // A B-frame's presentation time may precede its decode time: a negative composition offset.
                pts,
                duration,
                keyframe: unit.keyframe,
                data: unit.data,
            };
            out.write_all(&fragment(self.sequence, sample.track_id, &sample)?).await?;
            self.written += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mp4::tests::video;
    use crate::mp4::{Demuxer, Event};

    /// Decode times written for frames stamped 2 s and 2.1 s.
    async fn written_dts(keep_timestamps: bool) -> Vec<u64> {
        let mut w = Writer::new(vec![video()], keep_timestamps);
        for (i, us) in [2_000_000i64, 2_100_000].into_iter().enumerate() {
            let data = Bytes::from_static(b"frame");
            w.push(Unit { track: 0, dts_us: us, pts_us: us, duration_us: None, keyframe: i == 0, data });
        }
        let mut out = Vec::new();
        w.flush(&mut out, true).await.unwrap();
        let init = crate::mp4::init_segment(vec![crate::mp4::trak(1, &video()).unwrap()]).unwrap();
        let mut d = Demuxer::new();
        let mut events = d.push(&init).unwrap();
        events.extend(d.push(&out).unwrap());
        events.into_iter().filter_map(|e| if let Event::Sample(s) = e { Some(s.dts) } else { None }).collect()
    }

    #[tokio::test]
    async fn the_timeline_starts_at_zero_unless_told_to_keep_timestamps() {
        assert_eq!(written_dts(false).await, [0, 9_000]);
        assert_eq!(written_dts(true).await, [180_000, 189_000]);
    }
}
