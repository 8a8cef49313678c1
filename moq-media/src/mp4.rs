//! Fragmented MP4 in and out, on top of `mp4-atom`.
//!
//! [`Demuxer`] turns a byte stream (`ftyp`, `moov`, then `moof`/`mdat` pairs, as ffmpeg writes with
//! `-movflags cmaf+frag_every_frame+empty_moov+default_base_moof`) into track descriptions and samples.
//! [`init_segment`] and [`fragment`] write them back: one `moof`/`mdat` per sample, so a player can start
//! decoding as soon as a frame arrives.

use bytes::{Bytes, BytesMut};
use mp4_atom::{
    Atom, Audio, Av01, Av1c, Avc1, Avcc, Codec, DecodeAtom, DecodeMaybe, Dinf, Dops, Dref, Encode, Ftyp, Hdlr, Header,
    Mdat, Mdhd, Mdia, Mfhd, Minf, Moof, Moov, Mp4a, Mvex, Mvhd, Opus, Smhd, Stbl, Stco, Stsd, Tfdt, Tfhd, Tkhd, Traf,
    Trak, Trex, Trun, TrunEntry, Url, Visual, Vmhd, Vp08, Vp09, VpcC,
};

/// Boxes larger than this are refused rather than buffered (a hostile or corrupt length).
pub const MAX_BOX_SIZE: usize = 64 * 1024 * 1024;
/// Samples one fragment may describe (a `trun` can claim billions of empty samples in a few bytes).
pub const MAX_SAMPLES_PER_FRAGMENT: usize = 10_000;

/// Why an MP4 input or a codec configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum Mp4Error {
    /// The bytes do not start like an MP4 file.
    #[error("not an MP4 stream: {0}")]
    NotMp4(String),
    /// The input ended in the middle of a box.
    #[error("truncated MP4: the input ended inside a `{kind}` box ({have} of {need} bytes)")]
    Truncated {
        /// The box being read.
        kind: String,
        /// Bytes of it received.
        have: usize,
        /// Its full size.
        need: usize,
    },
    /// A box claims a size we will not buffer.
    #[error("`{kind}` box of {size} bytes exceeds the {MAX_BOX_SIZE}-byte limit")]
    TooLarge {
        /// The box.
        kind: String,
        /// Its claimed size.
        size: usize,
    },
    /// The input is MP4 but not fragmented the way we need.
    #[error("unsupported MP4 layout: {0}")]
    Layout(String),
    /// A codec we cannot carry.
    #[error("unsupported codec `{0}` (supported: H.264 avc1/avc3, VP8, VP9, AV1, Opus, AAC)")]
    UnsupportedCodec(String),
    /// A box failed to decode or encode.
    #[error("malformed MP4: {0}")]
    Atom(#[from] mp4_atom::Error),
}

/// Video or audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A visual track (`vide`).
    Video,
    /// A sound track (`soun`).
    Audio,
}

/// What a decoder needs to know about a track: the WebCodecs view of it.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackConfig {
    /// Video or audio.
    pub kind: Kind,
    /// WebCodecs codec string (`avc1.42c01e`, `opus`, `mp4a.40.2`, `vp09.00.10.08`, `av01.0.04M.08`).
    pub codec: String,
    /// WebCodecs `description`: avcC, OpusHead, AudioSpecificConfig or av1C; none for VP8/VP9.
    pub description: Option<Bytes>,
    /// Units per second of the track's timestamps.
    pub timescale: u32,
    /// Coded width (video).
    pub width: u16,
    /// Coded height (video).
    pub height: u16,
    /// Sample rate in Hz (audio).
    pub sample_rate: u32,
    /// Channel count (audio).
    pub channels: u16,
    /// Bitrate from the sample entry's `btrt`, if any.
    pub bitrate: Option<u64>,
}

impl TrackConfig {
    /// Whether a decoder set up for `self` decodes `other`: everything but the bitrate, a measured hint that a
    /// publisher may update in its catalog at any time, is the same.
    pub fn decodes_like(&self, other: &TrackConfig) -> bool {
        TrackConfig { bitrate: None, ..self.clone() } == TrackConfig { bitrate: None, ..other.clone() }
    }
}

/// One media track of an input.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaTrack {
    /// The MP4 track ID.
    pub id: u32,
    /// Its configuration.
    pub config: TrackConfig,
    /// The `trak` box as the input had it (for CMAF init segments).
    pub trak: Trak,
    /// Its `trex` defaults, if the input had them.
    pub trex: Option<Trex>,
}

/// One sample (a video frame or an audio packet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// The MP4 track ID.
    pub track_id: u32,
    /// Decode time, in the track's timescale.
    pub dts: u64,
    /// Presentation time, in the track's timescale.
    pub pts: i64,
    /// Duration in the track's timescale (0 when unknown).
    pub duration: u32,
    /// A sync sample (keyframe).
    pub keyframe: bool,
    /// The coded bytes (H.264 in AVCC length-prefixed form, as MP4 stores it).
    pub data: Bytes,
}

/// What the demuxer found, in stream order.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A `moov`: the tracks that follow (a new one replaces the previous set).
    Init(Vec<MediaTrack>),
    /// A sample of one of the current tracks.
    Sample(Sample),
}

/// An incremental fragmented-MP4 parser: feed it bytes as they arrive, get tracks and samples out.
#[derive(Debug, Default)]
pub struct Demuxer {
    buf: BytesMut,
    /// Stream offset of `buf[0]`.
    pos: u64,
    tracks: Vec<MediaTrack>,
    /// The last `moof` and its stream offset, waiting for its `mdat`.
    moof: Option<(u64, Moof)>,
    /// Where each track's next decode time continues when a fragment has no `tfdt`.
    next_dts: Vec<(u32, u64)>,
    seen_box: bool,
}

/// Top-level boxes that may start an MP4 stream.
const FIRST_BOXES: [&[u8; 4]; 8] = [b"ftyp", b"styp", b"moov", b"free", b"skip", b"sidx", b"wide", b"uuid"];

impl Demuxer {
    /// A parser at the start of a stream.
    pub fn new() -> Demuxer {
        Demuxer::default()
    }

    /// The tracks of the last `moov`.
    pub fn tracks(&self) -> &[MediaTrack] {
        &self.tracks
    }

    /// Adds bytes and returns everything that is now complete.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<Event>, Mp4Error> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some((header, header_len, size)) = self.next_header()? {
            if self.buf.len() < header_len + size {
                break;
            }
            let start = self.pos;
            let atom = self.buf.split_to(header_len + size).freeze();
            self.pos += atom.len() as u64;
            let body = &mut &atom[header_len..];
            match header.kind {
                Ftyp::KIND => {}
                Moov::KIND => {
                    let moov = Moov::decode_atom(&header, body)?;
                    self.tracks = tracks_of(&moov)?;
                    self.next_dts.clear();
                    out.push(Event::Init(self.tracks.clone()));
                }
                Moof::KIND => {
                    if self.tracks.is_empty() {
                        return Err(Mp4Error::Layout("a fragment (moof) before any moov".into()));
                    }
                    self.moof = Some((start, Moof::decode_atom(&header, body)?));
                }
                Mdat::KIND => {
                    let Some((moof_start, moof)) = self.moof.take() else {
                        return Err(Mp4Error::Layout(
                            "media data (mdat) outside a fragment: the input is not fragmented; \
                             use ffmpeg -movflags cmaf+frag_every_frame+empty_moov+default_base_moof"
                                .into(),
                        ));
                    };
                    let payload = atom.slice(header_len..);
                    self.samples(moof_start, &moof, &payload, start + header_len as u64, &mut out)?;
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// Bytes received but not yet part of a complete box.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Checks that the stream ended on a box boundary.
    pub fn finish(&self) -> Result<(), Mp4Error> {
        if !self.seen_box {
            return Err(Mp4Error::NotMp4(format!("{} bytes, not even one box", self.buf.len())));
        }
        if self.buf.is_empty() {
            return Ok(());
        }
        let mut peek: &[u8] = &self.buf;
        match Header::decode_maybe(&mut peek) {
            Ok(Some(h)) => Err(Mp4Error::Truncated {
                kind: h.kind.to_string(),
                have: self.buf.len(),
                need: h.size.unwrap_or(0) + (self.buf.len() - peek.len()),
            }),
            _ => Err(Mp4Error::Truncated { kind: "header".into(), have: self.buf.len(), need: 8 }),
        }
    }

    /// The header of the next box, its length and its body size, once enough bytes are buffered.
    fn next_header(&mut self) -> Result<Option<(Header, usize, usize)>, Mp4Error> {
        if !self.seen_box && self.buf.len() >= 8 && !FIRST_BOXES.iter().any(|k| &self.buf[4..8] == *k) {
            let shown: String = self.buf[..8].iter().map(|b| format!("{b:02x}")).collect();
            return Err(Mp4Error::NotMp4(format!("it starts with {shown}, not an ftyp/moov box")));
        }
        let mut peek: &[u8] = &self.buf;
        let Some(header) = Header::decode_maybe(&mut peek)? else {
            return Ok(None);
        };
        self.seen_box = true;
        let header_len = self.buf.len() - peek.len();
        let kind = header.kind.to_string();
        let size = header.size.ok_or_else(|| Mp4Error::Layout(format!("`{kind}` box without a size")))?;
        if size > MAX_BOX_SIZE {
            return Err(Mp4Error::TooLarge { kind, size });
        }
        Ok(Some((header, header_len, size)))
    }

    fn samples(
        &mut self,
        moof_start: u64,
        moof: &Moof,
        payload: &Bytes,
        payload_start: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), Mp4Error> {
        let bad = |what: &str| Mp4Error::Layout(format!("fragment {what}"));
        let count: usize = moof.traf.iter().flat_map(|t| &t.trun).map(|r| r.samples.len()).sum();
        if count > MAX_SAMPLES_PER_FRAGMENT {
            return Err(bad(&format!("describes {count} samples (limit {MAX_SAMPLES_PER_FRAGMENT})")));
        }
        let mut next_base = moof_start;
        for traf in &moof.traf {
            let tfhd = &traf.tfhd;
            let Some(track) = self.tracks.iter().find(|t| t.id == tfhd.track_id) else {
                continue; // a track we do not carry (e.g. subtitles)
            };
            let trex = track.trex.as_ref();
            let base = match (tfhd.base_data_offset, tfhd.default_base_is_moof) {
                (Some(b), _) => b,
                (None, true) => moof_start,
                (None, false) => next_base,
            };
            let continued = self.next_dts.iter().find(|(id, _)| *id == tfhd.track_id).map(|(_, t)| *t);
            let mut dts = traf.tfdt.as_ref().map(|t| t.base_media_decode_time).or(continued).unwrap_or(0);
            let mut offset = base;
            for trun in &traf.trun {
                if let Some(off) = trun.data_offset {
                    offset = base.checked_add_signed(off.into()).ok_or_else(|| bad("data offset out of range"))?;
                }
                for e in trun.samples.iter() {
                    let duration = e
                        .duration
                        .or(tfhd.default_sample_duration)
                        .or(trex.map(|t| t.default_sample_duration))
                        .unwrap_or(0);
                    let size = e.size.or(tfhd.default_sample_size).or(trex.map(|t| t.default_sample_size)).unwrap_or(0)
                        as usize;
                    let flags =
                        e.flags.or(tfhd.default_sample_flags).or(trex.map(|t| t.default_sample_flags)).unwrap_or(0);
                    let rel = offset.checked_sub(payload_start).ok_or_else(|| bad("data before its mdat"))? as usize;
                    let end = rel.checked_add(size).ok_or_else(|| bad("sample size overflows"))?;
                    if end > payload.len() {
                        return Err(bad("sample beyond the end of its mdat"));
                    }
                    let pts = i64::try_from(i128::from(dts) + i128::from(e.cts.unwrap_or(0)))
                        .map_err(|_| bad("presentation time out of range"))?;
                    out.push(Event::Sample(Sample {
                        track_id: tfhd.track_id,
                        dts,
                        pts,
                        duration,
                        keyframe: is_sync(flags),
                        data: payload.slice(rel..end),
                    }));
                    offset += size as u64;
                    dts = dts.checked_add(u64::from(duration)).ok_or_else(|| bad("decode time overflows"))?;
                }
            }
            next_base = offset;
            match self.next_dts.iter_mut().find(|(id, _)| *id == tfhd.track_id) {
                Some(entry) => entry.1 = dts,
                None => self.next_dts.push((tfhd.track_id, dts)),
            }
        }
        Ok(())
    }
}

/// Whether sample flags mark a sync sample (`sample_is_non_sync_sample` clear).
pub fn is_sync(flags: u32) -> bool {
    flags & 0x0001_0000 == 0
}

/// The video and audio tracks of a `moov`; other tracks (text, metadata) are skipped.
fn tracks_of(moov: &Moov) -> Result<Vec<MediaTrack>, Mp4Error> {
    let mut tracks = Vec::new();
    for trak in &moov.trak {
        let handler = trak.mdia.hdlr.handler;
        if handler != b"vide".into() && handler != b"soun".into() {
            tracing::debug!(track = trak.tkhd.track_id, %handler, "skipping a non-media track");
            continue;
        }
        let Some(codec) = trak.mdia.minf.stbl.stsd.codecs.first() else {
            return Err(Mp4Error::Layout(format!("track {} has no sample description", trak.tkhd.track_id)));
        };
        let config = codec_config(codec, trak.mdia.mdhd.timescale)?;
        let trex = moov.mvex.as_ref().and_then(|m| m.trex.iter().find(|t| t.track_id == trak.tkhd.track_id)).cloned();
        tracks.push(MediaTrack { id: trak.tkhd.track_id, config, trak: trak.clone(), trex });
    }
    if tracks.is_empty() {
        return Err(Mp4Error::Layout("no video or audio track in the moov".into()));
    }
    Ok(tracks)
}

fn body<A: Atom>(atom: &A) -> Result<Bytes, Mp4Error> {
    let mut out = Vec::new();
    atom.encode_body(&mut out)?;
    Ok(out.into())
}

/// The WebCodecs view of a sample entry.
pub fn codec_config(codec: &Codec, timescale: u32) -> Result<TrackConfig, Mp4Error> {
    let video = |codec: String, description: Option<Bytes>, v: &Visual, btrt: Option<&mp4_atom::Btrt>| TrackConfig {
        kind: Kind::Video,
        codec,
        description,
        timescale,
        width: v.width,
        height: v.height,
        sample_rate: 0,
        channels: 0,
        bitrate: btrt.map(|b| u64::from(b.avg_bitrate.max(b.max_bitrate))).filter(|b| *b > 0),
    };
    let audio = |codec: String, description: Option<Bytes>, a: &Audio, btrt: Option<&mp4_atom::Btrt>| TrackConfig {
        kind: Kind::Audio,
        codec,
        description,
        timescale,
        width: 0,
        height: 0,
        sample_rate: match a.sample_rate.integer() {
            0 => timescale,
            hz => u32::from(hz),
        },
        channels: a.channel_count,
        bitrate: btrt.map(|b| u64::from(b.avg_bitrate.max(b.max_bitrate))).filter(|b| *b > 0),
    };
    let avc = |c: &Avcc| {
        format!("{:02x}{:02x}{:02x}", c.avc_profile_indication, c.profile_compatibility, c.avc_level_indication)
    };
    Ok(match codec {
        Codec::Avc1(e) => video(format!("avc1.{}", avc(&e.avcc)), Some(body(&e.avcc)?), &e.visual, e.btrt.as_ref()),
        Codec::Avc3(e) => video(format!("avc3.{}", avc(&e.avcc)), Some(body(&e.avcc)?), &e.visual, e.btrt.as_ref()),
        Codec::Vp08(e) => video("vp8".into(), None, &e.visual, e.btrt.as_ref()),
        Codec::Vp09(e) => {
            let c = &e.vpcc;
            video(format!("vp09.{:02}.{:02}.{:02}", c.profile, c.level, c.bit_depth), None, &e.visual, e.btrt.as_ref())
        }
        Codec::Av01(e) => {
            let c = &e.av1c;
            let depth = match (c.high_bitdepth, c.twelve_bit) {
                (false, _) => 8,
                (true, false) => 10,
                (true, true) => 12,
            };
            let tier = if c.seq_tier_0 { 'H' } else { 'M' };
            let codec = format!("av01.{}.{:02}{tier}.{depth:02}", c.seq_profile, c.seq_level_idx_0);
            video(codec, Some(body(&e.av1c)?), &e.visual, e.btrt.as_ref())
        }
        Codec::Opus(e) => audio("opus".into(), Some(opus_head(&e.dops).into()), &e.audio, e.btrt.as_ref()),
        Codec::Mp4a(e) if e.esds.es_desc.dec_config.object_type_indication != 0x40 => {
            let oti = e.esds.es_desc.dec_config.object_type_indication;
            return Err(Mp4Error::UnsupportedCodec(format!("mp4a.{oti:02x} (only AAC, mp4a.40, is)")));
        }
        Codec::Mp4a(e) => {
            let dc = &e.esds.es_desc.dec_config;
            let ds = dc.dec_specific.as_ref();
            let codec = format!("mp4a.{:02x}.{}", dc.object_type_indication, ds.map(|d| d.profile).unwrap_or(2));
            audio(codec, ds.map(|d| Bytes::from(d.raw.clone())), &e.audio, e.btrt.as_ref())
        }
        Codec::Unknown(fourcc, _) => return Err(Mp4Error::UnsupportedCodec(fourcc.to_string())),
        other => {
            // The variant name (`Hev1`, `Mp3`, ...), without its fields.
            let name = format!("{other:?}");
            let name = name.split(['(', ' ', '{']).next().unwrap_or_default().to_lowercase();
            return Err(Mp4Error::UnsupportedCodec(name));
        }
    })
}

/// The OpusHead (RFC 7845, little-endian) that WebCodecs takes as an Opus `description`, from an MP4 `dOps`.
pub fn opus_head(d: &Dops) -> Vec<u8> {
    let mut h = b"OpusHead".to_vec();
    h.push(1);
    h.push(d.output_channel_count);
    h.extend_from_slice(&d.pre_skip.to_le_bytes());
    h.extend_from_slice(&d.input_sample_rate.to_le_bytes());
    h.extend_from_slice(&d.output_gain.to_le_bytes());
    match &d.channel_mapping {
        None => h.push(0),
        Some(m) => {
            h.extend_from_slice(&[m.family, m.stream_count, m.coupled_count]);
            h.extend_from_slice(&m.channel_mapping);
        }
    }
    h
}

/// The `dOps` of an OpusHead (the inverse of [`opus_head`]); `None` if it is not one.
fn dops_of(head: &[u8]) -> Option<Dops> {
    if head.len() < 19 || &head[..8] != b"OpusHead" {
        return None;
    }
    let family = head[18];
    let channel_mapping = if family == 0 {
        None
    } else {
        let rest = head.get(19..)?;
        Some(mp4_atom::OpusChannelMapping {
            family,
            stream_count: *rest.first()?,
            coupled_count: *rest.get(1)?,
            channel_mapping: rest.get(2..)?.to_vec(),
        })
    };
    Some(Dops {
        output_channel_count: head[9],
        pre_skip: u16::from_le_bytes([head[10], head[11]]),
        input_sample_rate: u32::from_le_bytes([head[12], head[13], head[14], head[15]]),
        output_gain: i16::from_le_bytes([head[16], head[17]]),
        channel_mapping,
    })
}

/// The sample entry for a configuration (the inverse of [`codec_config`]), for writing MP4 from LOC tracks.
pub fn sample_entry(config: &TrackConfig) -> Result<Codec, Mp4Error> {
    let unsupported = || Mp4Error::UnsupportedCodec(config.codec.clone());
    let desc = config.description.as_deref();
    let visual = Visual { data_reference_index: 1, width: config.width, height: config.height, ..Default::default() };
    let audio = Audio {
        data_reference_index: 1,
        channel_count: config.channels.max(1),
        sample_size: 16,
        sample_rate: u16::try_from(config.sample_rate).unwrap_or(0).into(),
    };
    let btrt = config.bitrate.map(|b| {
        let b = u32::try_from(b).unwrap_or(u32::MAX);
        mp4_atom::Btrt { buffer_size_db: 0, max_bitrate: b, avg_bitrate: b }
    });
    let prefix = config.codec.split('.').next().unwrap_or_default();
    Ok(match prefix {
        "avc1" | "avc3" => {
            let avcc = Avcc::decode_body(&mut desc.ok_or_else(unsupported)?)?;
            Avc1 { visual, avcc, btrt, ..Default::default() }.into()
        }
        "vp8" => Vp08 { visual, vpcc: vpcc_of("vp09.00.10.08"), btrt, ..Default::default() }.into(),
        "vp09" => Vp09 { visual, vpcc: vpcc_of(&config.codec), btrt, ..Default::default() }.into(),
        "av01" => {
            let av1c = Av1c::decode_body(&mut desc.ok_or_else(unsupported)?)?;
            Av01 { visual, av1c, btrt, ..Default::default() }.into()
        }
        "opus" => {
            let dops = desc.and_then(dops_of).unwrap_or(Dops {
                output_channel_count: audio.channel_count as u8,
                pre_skip: 0,
                input_sample_rate: config.sample_rate,
                output_gain: 0,
                channel_mapping: None,
            });
            Opus { audio, dops, btrt }.into()
        }
        "mp4a" => {
            let asc = desc.ok_or_else(unsupported)?;
            let (a, b) = (asc.first().copied().unwrap_or(0), asc.get(1).copied().unwrap_or(0));
            let dec_specific = mp4_atom::esds::DecoderSpecific {
                profile: a >> 3,
                freq_index: ((a & 7) << 1) | (b >> 7),
                chan_conf: (b >> 3) & 0xf,
                raw: asc.to_vec(),
            };
            let dec_config = mp4_atom::esds::DecoderConfig {
                object_type_indication: 0x40,
                stream_type: 5,
                dec_specific: Some(dec_specific),
                ..Default::default()
            };
            let es_desc = mp4_atom::esds::EsDescriptor { es_id: 1, dec_config, ..Default::default() };
            Mp4a { audio, esds: mp4_atom::Esds { es_desc }, btrt, taic: None }.into()
        }
        _ => return Err(unsupported()),
    })
}

/// A `vpcC` from a `vp09.PP.LL.DD` codec string (missing parts default to profile 0, level 1.0, 8 bits).
fn vpcc_of(codec: &str) -> VpcC {
    let mut parts = codec.split('.').skip(1).map(|p| p.parse::<u8>().ok());
    VpcC {
        profile: parts.next().flatten().unwrap_or(0),
        level: parts.next().flatten().unwrap_or(10),
        bit_depth: parts.next().flatten().unwrap_or(8),
        chroma_subsampling: 1,
        color_primaries: 1,
        transfer_characteristics: 1,
        matrix_coefficients: 1,
        ..Default::default()
    }
}

/// A `trak` for a track of this configuration with ID `id`.
pub fn trak(id: u32, config: &TrackConfig) -> Result<Trak, Mp4Error> {
    let entry = sample_entry(config)?;
    let (handler, vmhd, smhd) = match config.kind {
        Kind::Video => (b"vide", Some(Vmhd::default()), None),
        Kind::Audio => (b"soun", None, Some(Smhd::default())),
    };
    Ok(Trak {
        tkhd: Tkhd {
            track_id: id,
            enabled: true,
            in_movie: true,
            width: config.width.into(),
            height: config.height.into(),
            volume: if config.kind == Kind::Audio { 1.into() } else { 0.into() },
            ..Default::default()
        },
        mdia: Mdia {
            mdhd: Mdhd { timescale: config.timescale, language: "und".into(), ..Default::default() },
            hdlr: Hdlr { handler: handler.into(), name: format!("{:?}Handler", config.kind) },
            minf: Minf {
                vmhd,
                smhd,
                dinf: Dinf { dref: Dref { entries: vec![Url::default().into()] } },
                stbl: Stbl { stsd: Stsd { codecs: vec![entry] }, stco: Some(Stco::default()), ..Default::default() },
                ..Default::default()
            },
        },
        ..Default::default()
    })
}

/// An init segment (`ftyp` + `moov` with `mvex`) holding these tracks.
pub fn init_segment(traks: Vec<Trak>) -> Result<Bytes, Mp4Error> {
    let ftyp = Ftyp {
        major_brand: b"iso6".into(),
        minor_version: 512,
        compatible_brands: vec![b"iso6".into(), b"cmfc".into(), b"mp41".into()],
    };
    let trex = traks
        .iter()
        .map(|t| Trex { track_id: t.tkhd.track_id, default_sample_description_index: 1, ..Default::default() })
        .collect();
    let next_track_id = traks.iter().map(|t| t.tkhd.track_id).max().unwrap_or(0).saturating_add(1);
    let moov = Moov {
        mvhd: Mvhd { timescale: 1000, rate: 1.into(), volume: 1.into(), next_track_id, ..Default::default() },
        mvex: Some(Mvex { mehd: None, trex }),
        trak: traks,
        ..Default::default()
    };
    let mut out = Vec::new();
    ftyp.encode(&mut out)?;
    moov.encode(&mut out)?;
    Ok(out.into())
}

/// One sample as a fragment: `moof` (one `traf`, one `trun` entry) and `mdat`.
pub fn fragment(sequence: u32, track_id: u32, sample: &Sample) -> Result<Bytes, Mp4Error> {
    let flags = if sample.keyframe { 0x0200_0000 } else { 0x0101_0000 };
    let cts = sample.pts - sample.dts as i64;
    let size = u32::try_from(sample.data.len()).map_err(|_| Mp4Error::Layout("sample larger than 4 GiB".into()))?;
    let mut moof = Moof {
        mfhd: Mfhd { sequence_number: sequence },
        traf: vec![Traf {
            tfhd: Tfhd { track_id, default_base_is_moof: true, ..Default::default() },
            tfdt: Some(Tfdt { base_media_decode_time: sample.dts }),
            trun: vec![Trun {
                data_offset: Some(0),
                samples: vec![TrunEntry {
                    duration: Some(sample.duration),
                    size: Some(size),
                    flags: Some(flags),
                    cts: (cts != 0).then_some(cts),
                }]
                .into(),
            }],
            ..Default::default()
        }],
    };
    let mut out = Vec::with_capacity(128 + sample.data.len());
    moof.encode(&mut out)?;
    let moof_len = i32::try_from(out.len()).map_err(|_| Mp4Error::Layout("moof too large".into()))?;
    moof.traf[0].trun[0].data_offset = Some(moof_len + 8);
    out.clear();
    moof.encode(&mut out)?;
    Header { kind: Mdat::KIND, size: Some(sample.data.len()) }.encode(&mut out)?;
    out.extend_from_slice(&sample.data);
    Ok(out.into())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A small H.264 video configuration for tests.
    pub(crate) fn video() -> TrackConfig {
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
    fn a_new_bitrate_decodes_like_the_old_but_a_new_size_does_not() {
        let before = video();
        assert!(before.decodes_like(&TrackConfig { bitrate: Some(195_301), ..before.clone() }));
        assert!(!before.decodes_like(&TrackConfig { width: 640, ..before.clone() }));
    }

    fn clip() -> (Vec<MediaTrack>, Vec<Sample>) {
        let mut d = Demuxer::new();
        let mut tracks = Vec::new();
        let mut samples = Vec::new();
        // Byte-at-a-time in odd chunk sizes: the parser must cope with any split.
        for chunk in crate::DEMO_CLIP.chunks(997) {
            for e in d.push(chunk).unwrap() {
                match e {
                    Event::Init(t) => tracks = t,
                    Event::Sample(s) => samples.push(s),
                }
            }
        }
        d.finish().unwrap();
        (tracks, samples)
    }

    #[test]
    fn demuxes_the_demo_clip() {
        let (tracks, samples) = clip();
        assert_eq!(tracks.len(), 2);
        let video = &tracks[0].config;
        assert_eq!(video.kind, Kind::Video);
        assert!(video.codec.starts_with("avc1.42"), "{}", video.codec);
        assert_eq!((video.width, video.height), (640, 360));
        let audio = &tracks[1].config;
        assert_eq!((audio.codec.as_str(), audio.sample_rate), ("opus", 48_000));
        assert!(audio.description.as_ref().unwrap().starts_with(b"OpusHead"));
        let video_samples: Vec<_> = samples.iter().filter(|s| s.track_id == tracks[0].id).collect();
        assert_eq!(video_samples.len(), 120);
        assert_eq!(video_samples.iter().filter(|s| s.keyframe).count(), 4, "a keyframe per 30 frames");
        assert!(video_samples[0].keyframe);
        assert!(video_samples.windows(2).all(|w| w[0].dts < w[1].dts));
        assert_eq!(samples.iter().filter(|s| s.track_id == tracks[1].id).count(), 201);
    }

    #[test]
    fn remuxed_output_demuxes_to_the_same_samples() {
        let (tracks, samples) = clip();
        let traks = tracks.iter().map(|t| trak(t.id, &t.config).unwrap()).collect();
        let mut out = init_segment(traks).unwrap().to_vec();
        for (i, s) in samples.iter().enumerate() {
            out.extend_from_slice(&fragment(i as u32 + 1, s.track_id, s).unwrap());
        }
        let mut d = Demuxer::new();
        let events = d.push(&out).unwrap();
        d.finish().unwrap();
        let Event::Init(again) = &events[0] else { panic!("init first") };
        let configs: Vec<_> = again.iter().map(|t| &t.config).collect();
        assert_eq!(configs, tracks.iter().map(|t| &t.config).collect::<Vec<_>>());
        let back: Vec<_> = events[1..]
            .iter()
            .map(|e| match e {
                Event::Sample(s) => s.clone(),
                Event::Init(_) => panic!("one init"),
            })
            .collect();
        assert_eq!(back, samples);
    }

    #[test]
    fn refuses_bad_input_cleanly() {
        assert!(matches!(Demuxer::new().push(b"hello, this is not an mp4 file"), Err(Mp4Error::NotMp4(_))));
        let mut d = Demuxer::new();
        d.push(&crate::DEMO_CLIP[..5000]).unwrap();
        assert!(matches!(d.finish(), Err(Mp4Error::Truncated { .. })));
        // A box claiming 3 GB.
        let mut huge = crate::DEMO_CLIP[..8].to_vec();
        huge[..4].copy_from_slice(&0xC000_0000u32.to_be_bytes());
        assert!(matches!(Demuxer::new().push(&huge), Err(Mp4Error::TooLarge { .. })));
        // A trun claiming a million empty samples in a few bytes is refused, not expanded.
        let mut d = Demuxer::new();
        let init_end = crate::DEMO_CLIP.windows(4).position(|w| w == b"moof").unwrap() - 4;
        d.push(&crate::DEMO_CLIP[..init_end]).unwrap();
        let moof = Moof {
            mfhd: Mfhd { sequence_number: 1 },
            traf: vec![Traf {
                tfhd: Tfhd {
                    track_id: 1,
                    default_sample_size: Some(0),
                    default_base_is_moof: true,
                    ..Default::default()
                },
                trun: vec![Trun {
                    data_offset: None,
                    samples: mp4_atom::TrunSamples::Inherited { count: 1_000_000, first_flags: None },
                }],
                ..Default::default()
            }],
        };
        let mut bomb = Vec::new();
        moof.encode(&mut bomb).unwrap();
        Header { kind: Mdat::KIND, size: Some(0) }.encode(&mut bomb).unwrap();
        assert!(matches!(d.push(&bomb), Err(Mp4Error::Layout(m)) if m.contains("1000000 samples")));
        // Flipping bytes anywhere never panics.
        for i in (0..crate::DEMO_CLIP.len().min(4000)).step_by(7) {
            let mut bad = crate::DEMO_CLIP[..6000].to_vec();
            bad[i] ^= 0xff;
            let _ = Demuxer::new().push(&bad);
        }
    }
}
