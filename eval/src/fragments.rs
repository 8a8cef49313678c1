//! A fragmented-MP4 stream cut into its init segment (`ftyp` + `moov`) and its fragments (`moof` + `mdat`), each
//! with its bytes untouched and what `moq_media::mp4::Demuxer` says about its samples. The pacer releases
//! fragments on time and the LL-HLS packager groups them into parts.

use bytes::{Buf, Bytes, BytesMut};
use moq_media::mp4::{Demuxer, Event, Kind, MediaTrack, Mp4Error};

/// One top-level piece of the stream.
#[derive(Debug, Clone)]
pub enum Piece {
    /// `ftyp` and `moov` (and whatever came before the first fragment).
    Init {
        /// The bytes.
        bytes: Bytes,
        /// Its tracks.
        tracks: Vec<MediaTrack>,
    },
    /// A `moof` and its `mdat`.
    Fragment(Fragment),
}

/// A `moof` + `mdat` pair.
#[derive(Debug, Clone)]
pub struct Fragment {
    /// The bytes.
    pub bytes: Bytes,
    /// The track of its first sample.
    pub track_id: u32,
    /// Video or audio.
    pub kind: Kind,
    /// Decode time of its first sample, in the track's timescale.
    pub dts: u64,
    /// Units per second of `dts`.
    pub timescale: u32,
    /// Its samples' total duration, in the timescale.
    pub duration: u64,
    /// Its first sample is a keyframe.
    pub keyframe: bool,
}

impl Fragment {
    /// Its decode time in seconds.
    pub fn seconds(&self) -> f64 {
        self.dts as f64 / f64::from(self.timescale.max(1))
    }
}

/// Cuts a byte stream into [`Piece`]s.
#[derive(Debug, Default)]
pub struct Splitter {
    demuxer: Demuxer,
    buf: BytesMut,
    /// Whole boxes since the last piece.
    pending: BytesMut,
}

impl Splitter {
    /// A splitter at the start of a stream.
    pub fn new() -> Splitter {
        Splitter::default()
    }

    /// Adds bytes and returns the pieces now complete.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<Piece>, Mp4Error> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(len) = box_len(&self.buf)? {
            if self.buf.len() < len {
                break;
            }
            let atom = self.buf.split_to(len);
            let kind: [u8; 4] = [atom[4], atom[5], atom[6], atom[7]];
            self.pending.extend_from_slice(&atom);
            let events = self.demuxer.push(&atom)?;
            for event in events {
                match event {
                    Event::Init(tracks) => {
                        out.push(Piece::Init { bytes: self.pending.split().freeze(), tracks });
                    }
                    Event::Sample(s) => {
                        if let Some(Piece::Fragment(f)) = out.last_mut()
                            && f.bytes.is_empty()
                        {
                            f.duration += u64::from(s.duration);
                            continue;
                        }
                        let Some(track) = self.demuxer.tracks().iter().find(|t| t.id == s.track_id) else {
                            continue;
                        };
                        out.push(Piece::Fragment(Fragment {
                            bytes: Bytes::new(), // filled below, once the whole mdat is in
                            track_id: s.track_id,
                            kind: track.config.kind,
                            dts: s.dts,
                            timescale: track.config.timescale,
                            duration: u64::from(s.duration),
                            keyframe: s.keyframe,
                        }));
                    }
                }
            }
            if &kind == b"mdat" {
                let bytes = self.pending.split().freeze();
                if let Some(Piece::Fragment(f)) = out.last_mut()
                    && f.bytes.is_empty()
                {
                    f.bytes = bytes;
                }
            }
        }
        Ok(out)
    }
}

/// The size of the box at the start of `buf`, once its header is in.
fn box_len(buf: &[u8]) -> Result<Option<usize>, Mp4Error> {
    if buf.len() < 8 {
        return Ok(None);
    }
    let mut b = buf;
    let size = u64::from(b.get_u32());
    let size = match size {
        1 if buf.len() < 16 => return Ok(None),
        1 => {
            b.advance(4);
            b.get_u64()
        }
        0 => return Err(Mp4Error::Layout("a box that runs to the end of a live stream".into())),
        s => s,
    };
    if size < 8 || size > moq_media::mp4::MAX_BOX_SIZE as u64 {
        return Err(Mp4Error::Layout(format!("a top-level box of {size} bytes")));
    }
    Ok(Some(size as usize))
}

#[cfg(test)]
mod tests {
    use super::*;
    use moq_media::mp4::{Sample, TrackConfig, fragment, init_segment, trak};

    fn video() -> TrackConfig {
        TrackConfig {
            kind: Kind::Video,
            codec: "avc1.42c01f".into(),
            description: Some(Bytes::from_static(&[1, 0x42, 0xc0, 0x1f, 0xff, 0xe0, 0x00])),
            timescale: 90_000,
            width: 320,
            height: 180,
            sample_rate: 0,
            channels: 0,
            bitrate: None,
        }
    }

    #[test]
    fn cuts_init_and_fragments_whatever_the_chunking() {
        let init = init_segment(vec![trak(1, &video()).unwrap()]).unwrap();
        let mut stream = init.to_vec();
        let mut frags = Vec::new();
        for i in 0..5u64 {
            let s = Sample {
                track_id: 1,
                dts: i * 3000,
                pts: (i * 3000) as i64,
                duration: 3000,
                keyframe: i.is_multiple_of(3),
                data: Bytes::from(vec![i as u8; 100 + i as usize]),
            };
            let f = fragment(i as u32 + 1, 1, &s).unwrap();
            stream.extend_from_slice(&f);
            frags.push(f);
        }
        for chunk in [1, 7, 64, stream.len()] {
            let mut sp = Splitter::new();
            let pieces: Vec<Piece> = stream.chunks(chunk).flat_map(|c| sp.push(c).unwrap()).collect();
            assert_eq!(pieces.len(), 6, "chunk {chunk}");
            let Piece::Init { bytes, tracks } = &pieces[0] else { panic!() };
            assert_eq!(bytes, &init);
            assert_eq!(tracks.len(), 1);
            for (i, p) in pieces[1..].iter().enumerate() {
                let Piece::Fragment(f) = p else { panic!() };
                assert_eq!(f.bytes, frags[i], "fragment {i} bytes");
                assert_eq!((f.dts, f.duration, f.keyframe), (i as u64 * 3000, 3000, i % 3 == 0));
                assert_eq!(f.timescale, 90_000);
            }
        }
    }

    #[test]
    fn a_hostile_box_size_is_an_error() {
        let mut sp = Splitter::new();
        assert!(sp.push(&[0, 0, 0, 3, b'f', b't', b'y', b'p']).is_err());
        let mut sp = Splitter::new();
        assert!(sp.push(&[0, 0, 0, 0, b'm', b'd', b'a', b't']).is_err());
    }
}
