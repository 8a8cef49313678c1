//! An LL-HLS packager (RFC 8216bis, Low-Latency HLS): fragments in, parts, segments and a media playlist with
//! `EXT-X-PART`, `EXT-X-PRELOAD-HINT` and blocking-reload support out. The fragments' bytes are not rewritten: a
//! part is the `moof`/`mdat` pairs of its frames back to back, a segment its parts back to back.
//!
//! Parts close as soon as their last video frame is in (no waiting for the next frame); a segment closes at the
//! first keyframe once it holds `segment_frames` frames. Audio that arrives between parts joins the next part.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use moq_media::mp4::Kind;

use crate::fragments::Fragment;

/// How the stream is cut.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Frame rate of the video.
    pub fps: f64,
    /// Video frames per part (10 at 30 fps: 333 ms).
    pub part_frames: u32,
    /// Video frames per segment, at least (60 at 30 fps: 2 s); a segment starts at a keyframe.
    pub segment_frames: u32,
    /// Complete segments kept in the playlist.
    pub window: usize,
}

impl Config {
    /// Parts of about `part_ms` and segments of about `segment_ms` at `fps`.
    pub fn new(fps: f64, part_ms: u32, segment_ms: u32) -> Config {
        let frames = |ms: u32| ((f64::from(ms) * fps / 1000.0).round() as u32).max(1);
        Config { fps, part_frames: frames(part_ms), segment_frames: frames(segment_ms), window: 6 }
    }

    /// PART-TARGET: the longest part, rounded up to the playlist's 5 decimals.
    pub fn part_target(&self) -> f64 {
        (f64::from(self.part_frames) / self.fps * 1e5).ceil() / 1e5
    }
}

/// A partial segment.
#[derive(Debug, Clone)]
pub struct Part {
    /// Its bytes.
    pub bytes: Bytes,
    /// Its duration in seconds (of its video).
    pub duration: f64,
    /// It starts with a keyframe.
    pub independent: bool,
}

#[derive(Debug)]
struct Segment {
    msn: u64,
    parts: Vec<Part>,
    complete: bool,
    video_frames: u32,
}

impl Segment {
    fn duration(&self) -> f64 {
        self.parts.iter().map(|p| p.duration).sum()
    }
}

/// The part being filled.
#[derive(Debug, Default)]
struct Open {
    bytes: BytesMut,
    video_frames: u32,
    duration: f64,
    independent: bool,
}

/// Whether a blocking request can be answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ready<T> {
    /// Yes, with this.
    Now(T),
    /// Not yet: wait for the stream.
    Later,
    /// Never (too old, or a part that will not exist).
    Gone,
    /// The request is too far ahead of the live edge (answered with 400).
    TooFar,
}

/// The packager's state.
#[derive(Debug)]
pub struct Packager {
    config: Config,
    init: Option<Bytes>,
    segments: VecDeque<Segment>,
    open: Open,
    /// Audio waiting for the next part with video.
    waiting_audio: BytesMut,
    next_msn: u64,
}

impl Packager {
    /// An empty packager.
    pub fn new(config: Config) -> Packager {
        Packager {
            config,
            init: None,
            segments: VecDeque::new(),
            open: Open::default(),
            waiting_audio: BytesMut::new(),
            next_msn: 0,
        }
    }

    /// Its configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Sets the init segment (`EXT-X-MAP`).
    pub fn set_init(&mut self, init: Bytes) {
        self.init = Some(init);
    }

    /// The init segment, once known.
    pub fn init(&self) -> Option<Bytes> {
        self.init.clone()
    }

    fn close_part(&mut self) {
        let open = std::mem::take(&mut self.open);
        if open.video_frames == 0 {
            return;
        }
        if let Some(seg) = self.segments.back_mut() {
            seg.parts.push(Part { bytes: open.bytes.freeze(), duration: open.duration, independent: open.independent });
        }
    }

    /// Adds the next fragment of the stream.
    pub fn push(&mut self, f: &Fragment) {
        if f.kind == Kind::Audio {
            if self.open.video_frames > 0 {
                self.open.bytes.extend_from_slice(&f.bytes);
            } else if !self.segments.is_empty() {
                self.waiting_audio.extend_from_slice(&f.bytes);
            }
            return;
        }
        let full = self.segments.back().is_none_or(|s| s.video_frames >= self.config.segment_frames);
        if f.keyframe && full {
            self.close_part();
            if let Some(seg) = self.segments.back_mut() {
                seg.complete = true;
            }
            self.segments.push_back(Segment {
                msn: self.next_msn,
                parts: Vec::new(),
                complete: false,
                video_frames: 0,
            });
            self.next_msn += 1;
            while self.segments.iter().filter(|s| s.complete).count() > self.config.window {
                self.segments.pop_front();
            }
        }
        let Some(seg) = self.segments.back_mut() else {
            return; // before the first keyframe
        };
        if self.open.video_frames == 0 {
            self.open.independent = f.keyframe;
            self.open.bytes.extend_from_slice(&self.waiting_audio.split());
        }
        self.open.bytes.extend_from_slice(&f.bytes);
        self.open.video_frames += 1;
        self.open.duration += f.duration as f64 / f64::from(f.timescale.max(1));
        seg.video_frames += 1;
        if self.open.video_frames >= self.config.part_frames {
            self.close_part();
        }
    }

    fn segment(&self, msn: u64) -> Option<&Segment> {
        let first = self.segments.front()?.msn;
        self.segments.get(usize::try_from(msn.checked_sub(first)?).ok()?)
    }

    fn last_msn(&self) -> Option<u64> {
        self.segments.back().map(|s| s.msn)
    }

    /// Can a playlist request with `_HLS_msn=msn` (and `_HLS_part=part`) be answered yet?
    pub fn playlist_ready(&self, msn: u64, part: Option<usize>) -> Ready<()> {
        let Some(last) = self.last_msn() else { return Ready::Later };
        if msn > last + 2 {
            return Ready::TooFar;
        }
        match self.segment(msn) {
            None if msn <= last => Ready::Now(()), // older than the window
            None => Ready::Later,
            // A part past the end of a complete segment is the next segment's first (RFC 8216bis 6.2.5.2).
            Some(s) if s.complete && part.is_some_and(|p| p >= s.parts.len()) => self.playlist_ready(msn + 1, Some(0)),
            Some(s) if s.complete => Ready::Now(()),
            Some(s) => match part {
                Some(p) if p < s.parts.len() => Ready::Now(()),
                _ => Ready::Later,
            },
        }
    }

    /// Part `index` of segment `msn`.
    pub fn part(&self, msn: u64, index: usize) -> Ready<Bytes> {
        let Some(last) = self.last_msn() else { return Ready::Later };
        match self.segment(msn) {
            Some(s) => match s.parts.get(index) {
                Some(p) => Ready::Now(p.bytes.clone()),
                None if s.complete => Ready::Gone,
                None => Ready::Later,
            },
            None if msn == last + 1 => Ready::Later,
            None if msn > last + 1 => Ready::TooFar,
            None => Ready::Gone,
        }
    }

    /// The whole segment `msn`.
    pub fn segment_bytes(&self, msn: u64) -> Ready<Bytes> {
        let Some(last) = self.last_msn() else { return Ready::Later };
        match self.segment(msn) {
            Some(s) if s.complete => {
                let mut b = BytesMut::new();
                for p in &s.parts {
                    b.extend_from_slice(&p.bytes);
                }
                Ready::Now(b.freeze())
            }
            Some(_) => Ready::Later,
            None if msn == last + 1 => Ready::Later,
            None if msn > last + 1 => Ready::TooFar,
            None => Ready::Gone,
        }
    }

    /// The media playlist now.
    pub fn playlist(&self) -> String {
        use std::fmt::Write;
        let c = &self.config;
        let target = self
            .segments
            .iter()
            .filter(|s| s.complete)
            .map(Segment::duration)
            .fold(f64::from(c.segment_frames) / c.fps, f64::max);
        let mut out = String::new();
        let _ = writeln!(out, "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:{}", target.round().max(1.0));
        let _ = writeln!(out, "#EXT-X-PART-INF:PART-TARGET={:.5}", c.part_target());
        let _ = writeln!(out, "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={:.5}", 3.0 * c.part_target());
        let first = self.segments.front().map_or(0, |s| s.msn);
        let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{first}\n#EXT-X-INDEPENDENT-SEGMENTS");
        let _ = writeln!(out, "#EXT-X-MAP:URI=\"init.mp4\"");
        // Parts are listed for the segments within three target durations of the end.
        let with_parts = (3.0 * target / (f64::from(c.segment_frames) / c.fps)).ceil() as usize + 1;
        let skip_parts = self.segments.len().saturating_sub(with_parts);
        for (i, s) in self.segments.iter().enumerate() {
            if i >= skip_parts {
                for (k, p) in s.parts.iter().enumerate() {
                    let independent = if p.independent { ",INDEPENDENT=YES" } else { "" };
                    let _ = writeln!(
                        out,
                        "#EXT-X-PART:DURATION={:.5},URI=\"part{}.{k}.m4s\"{independent}",
                        p.duration, s.msn
                    );
                }
            }
            if s.complete {
                let _ = writeln!(out, "#EXTINF:{:.5},\nseg{}.m4s", s.duration(), s.msn);
            }
        }
        if let Some(s) = self.segments.back() {
            // The next part: of this segment, or of the next one once this one is full.
            let (msn, k) = if s.video_frames >= c.segment_frames { (s.msn + 1, 0) } else { (s.msn, s.parts.len()) };
            let _ = writeln!(out, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part{msn}.{k}.m4s\"");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playlist::MediaPlaylist;

    fn frame(n: u64, kind: Kind) -> Fragment {
        let video = kind == Kind::Video;
        Fragment {
            bytes: Bytes::from(format!("{}{n};", if video { "v" } else { "a" })),
            track_id: if video { 1 } else { 2 },
            kind,
            dts: n * 3000,
            timescale: 90_000,
            duration: 3000,
            keyframe: video && n.is_multiple_of(30),
        }
    }

    /// 30 fps video with a keyframe every 30 frames and an audio packet after every video frame.
    fn packager(frames: u64) -> Packager {
        let mut p = Packager::new(Config::new(30.0, 333, 2000));
        p.set_init(Bytes::from_static(b"init"));
        for n in 0..frames {
            p.push(&frame(n, Kind::Video));
            p.push(&frame(n, Kind::Audio));
        }
        p
    }

    #[test]
    fn cuts_333_ms_parts_and_2_s_segments_at_keyframes() {
        let c = Config::new(30.0, 333, 2000);
        assert_eq!((c.part_frames, c.segment_frames), (10, 60));
        assert_eq!(c.part_target(), 0.33334);
        let p = packager(125);
        // Segments 0 and 1 complete (60 frames each), segment 2 has 5 frames: no part yet.
        assert_eq!(p.segments.len(), 3);
        assert!(p.segments[0].complete && p.segments[1].complete && !p.segments[2].complete);
        assert_eq!(p.segments[0].parts.len(), 6);
        assert!(p.segments[0].parts[0].independent && !p.segments[0].parts[1].independent);
        assert!(p.segments[0].parts[3].independent, "frame 30 is a keyframe and starts part 3");
        assert!((p.segments[0].parts[0].duration - 1.0 / 3.0).abs() < 1e-9);
        // Every byte in order, none twice: audio after frame 9 waits for part 1.
        assert_eq!(
            &p.segments[0].parts[0].bytes[..],
            "v0;a0;v1;a1;v2;a2;v3;a3;v4;a4;v5;a5;v6;a6;v7;a7;v8;a8;v9;".as_bytes()
        );
        assert!(p.segments[0].parts[1].bytes.starts_with(b"a9;v10;a10;"));
        let Ready::Now(seg) = p.segment_bytes(0) else { panic!() };
        assert_eq!(seg.len(), p.segments[0].parts.iter().map(|x| x.bytes.len()).sum::<usize>());
    }

    #[test]
    fn the_playlist_follows_the_ll_hls_rules() {
        let p = packager(125);
        let text = p.playlist();
        let pl = MediaPlaylist::parse(&text).unwrap();
        assert_eq!(pl.media_sequence, 0);
        assert_eq!(pl.target_duration, 2.0);
        assert_eq!(pl.part_target, Some(0.33334));
        assert_eq!(pl.segments.len(), 2);
        assert!(text.contains("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.00002"));
        // PART-HOLD-BACK at least three part targets; every part within PART-TARGET.
        for s in &pl.segments {
            for part in &s.parts {
                assert!(part.duration <= 0.33334, "{part:?}");
            }
            let total: f64 = s.parts.iter().map(|x| x.duration).sum();
            assert!((total - s.duration).abs() < 1e-4, "parts add up to their segment");
        }
        assert_eq!(pl.preload_hint.as_deref(), Some("part2.0.m4s"));
        // EXTINF rounds to at most TARGETDURATION.
        assert!(pl.segments.iter().all(|s| s.duration.round() <= pl.target_duration));
    }

    #[test]
    fn blocking_requests_wait_for_their_part() {
        let mut p = packager(65); // segment 1 has 5 frames: no part yet
        assert_eq!(p.playlist_ready(1, Some(0)), Ready::Later);
        assert_eq!(p.playlist_ready(0, Some(5)), Ready::Now(()), "segment 0's last part");
        assert_eq!(p.playlist_ready(0, Some(6)), Ready::Later, "past segment 0's end: segment 1's first part");
        assert_eq!(p.playlist_ready(4, None), Ready::TooFar);
        assert_eq!(p.part(1, 0), Ready::Later);
        assert_eq!(p.part(0, 6), Ready::Gone, "segment 0 ended with six parts");
        assert_eq!(p.part(2, 0), Ready::Later, "the next segment's first part");
        for n in 65..70 {
            p.push(&frame(n, Kind::Video));
        }
        assert_eq!(p.playlist_ready(1, Some(0)), Ready::Now(()));
        assert!(matches!(p.part(1, 0), Ready::Now(b) if b.starts_with(b"a59;v60;")));
    }

    #[test]
    fn old_segments_leave_the_window() {
        let p = packager(30 * 2 * 10 + 1); // ten complete segments
        let pl = MediaPlaylist::parse(&p.playlist()).unwrap();
        assert_eq!(pl.segments.len(), 6);
        assert_eq!(pl.media_sequence, 4);
        assert_eq!(p.segment_bytes(3), Ready::Gone);
        // Parts only near the live edge.
        assert!(pl.segments[0].parts.is_empty() && !pl.segments[5].parts.is_empty());
    }
}
