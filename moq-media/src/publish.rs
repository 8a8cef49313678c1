//! Publishing: an fMP4 input becomes a broadcast (a `catalog` track and one track per media track).

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use moq_transport::wire::namespace::{FullTrackName, TrackNamespace};
use moq_transport::{GroupProducer, Object, Origin, SubgroupProducer, TrackEnd, TrackInfo, TrackProducer};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::catalog::{CATALOG_TRACK, Catalog, Track};
use crate::loc::{Frame, PUBLISH_TIME};
use crate::mp4::{Demuxer, Event, Kind, MediaTrack, Sample, fragment, init_segment};
use crate::{Error, now_micros, now_millis, rescale};

/// How media objects are packaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Packaging {
    /// LOC: one frame per object, metadata in Object Properties (`"packaging": "loc"`).
    #[default]
    Loc,
    /// CMSF: one CMAF chunk (`moof` + `mdat`, one frame) per object, init segment in the catalog
    /// (`"packaging": "cmaf"`).
    Cmaf,
}

impl Packaging {
    /// The catalog's `packaging` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Packaging::Loc => "loc",
            Packaging::Cmaf => "cmaf",
        }
    }
}

/// Settings of a [`Broadcast`].
#[derive(Debug, Clone)]
pub struct BroadcastOptions {
    /// Packaging of the media tracks.
    pub packaging: Packaging,
    /// Groups each track keeps for late joiners.
    pub window: usize,
    /// Bytes each track keeps beyond its newest group.
    pub max_cache_bytes: u64,
    /// Publish in real time: wait until each sample's time (relative to the first) before writing it. For
    /// files standing in for a live source; a live encoder already delivers in real time.
    pub pace: bool,
    /// Longest audio group when no video keyframe cuts it earlier.
    pub max_audio_group: Duration,
    /// `targetLatency` in the catalog, milliseconds.
    pub target_latency_ms: Option<u64>,
}

impl Default for BroadcastOptions {
    fn default() -> Self {
        BroadcastOptions {
            packaging: Packaging::Loc,
            window: moq_transport::DEFAULT_GROUP_WINDOW,
            max_cache_bytes: 16 * 1024 * 1024,
            pace: false,
            max_audio_group: Duration::from_secs(2),
            target_latency_ms: None,
        }
    }
}

/// Publisher priorities (lower is more important): the catalog first, then audio, then video.
pub(crate) const CATALOG_PRIORITY: u8 = 0;
pub(crate) const AUDIO_PRIORITY: u8 = 64;
pub(crate) const VIDEO_PRIORITY: u8 = 128;

/// Catalog measurements are refreshed once after this much media.
const MEASURE_US: u64 = 2_000_000;

/// One output track.
struct Output {
    input_id: u32,
    name: String,
    kind: Kind,
    timescale: u32,
    producer: TrackProducer,
    /// The open group: producer, its only subgroup, the next object id.
    group: Option<(GroupProducer, SubgroupProducer, u64)>,
    next_group: u64,
    group_start_us: u64,
    sequence: u32,
    /// The avcC/av1C sent with LOC keyframes.
    video_config: Option<Bytes>,
    /// For the measured frame rate and bitrate.
    frames: u64,
    bytes: u64,
    first_us: Option<u64>,
    last_us: u64,
}

impl Output {
    fn close_group(&mut self) {
        if let Some((group, sub, _)) = self.group.take() {
            sub.finish();
            group.finish();
        }
    }
}

/// A broadcast being published into an [`Origin`]: the catalog track plus one track per input media track.
///
/// Video tracks start a new group at every keyframe; audio tracks at the first packet after a video keyframe
/// (so groups of all tracks start together) or after [`BroadcastOptions::max_audio_group`].
pub struct Broadcast {
    origin: Origin,
    namespace: TrackNamespace,
    options: BroadcastOptions,
    catalog_track: TrackProducer,
    catalog: Catalog,
    catalog_group: u64,
    measured: bool,
    outputs: Vec<Output>,
    inputs: Vec<MediaTrack>,
    /// Wall-clock µs minus media µs, fixed by the first sample: TIMESTAMP = media time + this.
    clock_base: Option<i128>,
    /// Added to media time, so that a looped input continues where the last pass ended.
    offset_us: u64,
    /// The end of the latest sample, media µs (offset included).
    end_us: u64,
    /// Real-time pacing: the instant and media µs of the first sample.
    pace_origin: Option<(tokio::time::Instant, u64)>,
    /// Media µs of the latest video keyframe, to cut audio groups there.
    last_keyframe_us: Option<u64>,
    /// The first sample's media µs (before the offset) of the current pass over the input.
    pass_start_us: Option<u64>,
    group_base: u64,
}

impl Broadcast {
    /// A broadcast under `namespace`, published in `origin` (its catalog track appears there at once, its
    /// media tracks on [`Broadcast::set_tracks`]).
    pub fn new(origin: Origin, namespace: TrackNamespace, options: BroadcastOptions) -> Broadcast {
        let catalog_track = TrackProducer::with_limits(
            TrackInfo::new(FullTrackName::new(namespace.clone(), CATALOG_TRACK)),
            2,
            1024 * 1024,
        );
        origin.publish_track(catalog_track.clone());
        origin.publish_namespace(namespace.clone());
        // Group IDs start at the wall-clock millisecond, so that a restarted publisher's groups are newer.
        let group_base = now_millis();
        Broadcast {
            origin,
            namespace,
            options,
            catalog_track,
            catalog: Catalog::new(),
            catalog_group: group_base,
            measured: false,
            outputs: Vec::new(),
            inputs: Vec::new(),
            clock_base: None,
            offset_us: 0,
            end_us: 0,
            pace_origin: None,
            last_keyframe_us: None,
            pass_start_us: None,
            group_base,
        }
    }

    /// The namespace.
    pub fn namespace(&self) -> &TrackNamespace {
        &self.namespace
    }

    /// The catalog as last published.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The media tracks (after [`Broadcast::set_tracks`]).
    pub fn tracks(&self) -> Vec<TrackProducer> {
        self.outputs.iter().map(|o| o.producer.clone()).collect()
    }

    /// Sets the input's tracks and publishes the catalog. Tracks keep their names (`video0`, `video1`, ...,
    /// `audio0`, ...) across calls; a call with the same tracks changes nothing.
    pub fn set_tracks(&mut self, tracks: &[MediaTrack]) -> Result<(), Error> {
        let same = tracks.len() == self.inputs.len()
            && tracks.iter().zip(&self.inputs).all(|(a, b)| a.id == b.id && a.config == b.config);
        if same {
            return Ok(());
        }
        let (mut videos, mut audios) = (0, 0);
        let mut outputs = Vec::new();
        let mut catalog = Catalog::new();
        let alternates = tracks.iter().filter(|t| t.config.kind == Kind::Video).count() > 1;
        for track in tracks {
            let name = match track.config.kind {
                Kind::Video => {
                    videos += 1;
                    format!("video{}", videos - 1)
                }
                Kind::Audio => {
                    audios += 1;
                    format!("audio{}", audios - 1)
                }
            };
            let mut entry = Track::media(&name, self.options.packaging.as_str(), &track.config);
            entry.target_latency = self.options.target_latency_ms;
            if alternates && track.config.kind == Kind::Video {
                entry.alt_group = Some(1);
            }
            catalog.tracks.push(entry);
            let init = match self.options.packaging {
                Packaging::Loc => track.config.description.clone(),
                Packaging::Cmaf => Some(init_segment(vec![track.trak.clone()])?),
            };
            if let Some(init) = init {
                let i = catalog.tracks.len() - 1;
                catalog.set_init_data(i, &init);
            }
            // Reuse the producer of a track with the same name, so that subscribers stay subscribed.
            let previous = self.outputs.iter().position(|o| o.name == name).map(|i| self.outputs.remove(i));
            let (producer, next_group, sequence) = match previous {
                Some(mut p) => {
                    p.close_group();
                    (p.producer, p.next_group, p.sequence)
                }
                None => {
                    let mut info = TrackInfo::new(FullTrackName::new(self.namespace.clone(), name.as_str()));
                    info.priority = if track.config.kind == Kind::Audio { AUDIO_PRIORITY } else { VIDEO_PRIORITY };
                    let p = TrackProducer::with_limits(info, self.options.window, self.options.max_cache_bytes);
                    self.origin.publish_track(p.clone());
                    (p, self.group_base, 0)
                }
            };
            outputs.push(Output {
                input_id: track.id,
                name,
                kind: track.config.kind,
                timescale: track.config.timescale.max(1),
                producer,
                group: None,
                next_group,
                group_start_us: 0,
                sequence,
                video_config: (track.config.kind == Kind::Video).then(|| track.config.description.clone()).flatten(),
                frames: 0,
                bytes: 0,
                first_us: None,
                last_us: 0,
            });
        }
        // Tracks the new input no longer has.
        for mut gone in self.outputs.drain(..) {
            gone.close_group();
            gone.producer.end(TrackEnd::Ended);
            self.origin.remove_track(&gone.producer.info().name);
        }
        if !self.inputs.is_empty() {
            // A new moov mid-stream (an encoder restart): its timestamps start over, ours carry on.
            self.continue_timeline();
        }
        self.outputs = outputs;
        self.inputs = tracks.to_vec();
        self.measured = false;
        self.publish_catalog(catalog)
    }

    fn publish_catalog(&mut self, mut catalog: Catalog) -> Result<(), Error> {
        catalog.generated_at = Some(now_millis());
        let group = self.catalog_track.create_group(self.catalog_group)?;
        self.catalog_group += 1;
        let sub = group.create_subgroup(0, CATALOG_PRIORITY);
        sub.write(Object::new(0, catalog.to_json()))?;
        sub.finish();
        group.finish();
        tracing::debug!(namespace = %self.namespace, tracks = catalog.tracks.len(), "published catalog");
        self.catalog = catalog;
        Ok(())
    }

    /// Publishes one sample of the input (waiting first when pacing).
    pub async fn write(&mut self, sample: &Sample) -> Result<(), Error> {
        let Some(index) = self.outputs.iter().position(|o| o.input_id == sample.track_id) else {
            return Ok(()); // a track we skipped
        };
        let timescale = u64::from(self.outputs[index].timescale);
        let to_us = |t: u64| u64::try_from(rescale(t.into(), timescale, 1_000_000));
        let raw_us = to_us(sample.pts.max(0) as u64).unwrap_or(u64::MAX);
        self.pass_start_us.get_or_insert(raw_us);
        let media_us = raw_us.saturating_add(self.offset_us);
        // A frame lasts at least a microsecond, so that a loop never repeats a timestamp.
        let end_us = media_us.saturating_add(to_us(u64::from(sample.duration)).unwrap_or(0).max(1));
        self.end_us = self.end_us.max(end_us);
        if self.options.pace {
            let (start, first_us) = *self.pace_origin.get_or_insert((tokio::time::Instant::now(), media_us));
            let due = start + Duration::from_micros(media_us.saturating_sub(first_us));
            tokio::time::sleep_until(due).await;
        }
        let now = now_micros();
        let base = *self.clock_base.get_or_insert(i128::from(now) - i128::from(media_us));
        let timestamp_us = u64::try_from(i128::from(media_us) + base).unwrap_or(0);

        let packaging = self.options.packaging;
        let max_audio_us = self.options.max_audio_group.as_micros() as u64;
        let last_keyframe = self.last_keyframe_us;
        let out = &mut self.outputs[index];
        let new_group = match out.kind {
            Kind::Video => sample.keyframe || out.group.is_none(),
            Kind::Audio => {
                out.group.is_none()
                    || last_keyframe.is_some_and(|k| k > out.group_start_us && media_us >= k)
                    || media_us.saturating_sub(out.group_start_us) >= max_audio_us
            }
        };
        if out.kind == Kind::Video && out.group.is_none() && !sample.keyframe {
            // A video track must start at a keyframe; drop what comes before the first one.
            return Ok(());
        }
        if new_group {
            out.close_group();
            let group = out.producer.create_group(out.next_group)?;
            out.next_group += 1;
            out.group_start_us = media_us;
            let priority = if out.kind == Kind::Audio { AUDIO_PRIORITY } else { VIDEO_PRIORITY };
            let sub = group.create_subgroup(0, priority);
            out.group = Some((group, sub, 0));
        }
        if out.kind == Kind::Video && sample.keyframe {
            self.last_keyframe_us = Some(media_us);
        }
        let Some((_, sub, next_object)) = out.group.as_mut() else {
            return Ok(());
        };
        let object = match packaging {
            Packaging::Loc => Frame {
                timestamp_us,
                keyframe: (out.kind == Kind::Video).then_some(sample.keyframe),
                config: if sample.keyframe { out.video_config.clone() } else { None },
                publish_time_us: Some(now),
                payload: sample.data.clone(),
            }
            .to_object(*next_object),
            Packaging::Cmaf => {
                out.sequence = out.sequence.wrapping_add(1);
                let mut shifted = sample.clone();
                let shift =
                    u64::try_from(u128::from(self.offset_us) * u128::from(timescale) / 1_000_000).unwrap_or(u64::MAX);
                shifted.dts = shifted.dts.saturating_add(shift);
                shifted.pts = shifted.pts.saturating_add(i64::try_from(shift).unwrap_or(i64::MAX));
                let mut o = Object::new(*next_object, fragment(out.sequence, sample.track_id, &shifted)?);
                o.properties = o.properties.with_int(PUBLISH_TIME, now).unwrap_or_default();
                o
            }
        };
        sub.write(object)?;
        *next_object += 1;
        out.frames += 1;
        out.bytes += sample.data.len() as u64;
        out.first_us.get_or_insert(media_us);
        out.last_us = media_us;
        self.maybe_measure()
    }

    /// Once every track has [`MEASURE_US`] of media, publishes a catalog with measured frame rates and bitrates.
    fn maybe_measure(&mut self) -> Result<(), Error> {
        if self.measured
            || !self.outputs.iter().all(|o| o.first_us.is_some_and(|f| o.last_us.saturating_sub(f) >= MEASURE_US))
        {
            return Ok(());
        }
        self.measured = true;
        let mut catalog = self.catalog.clone();
        for (entry, out) in catalog.tracks.iter_mut().zip(&self.outputs) {
            let span = out.last_us.saturating_sub(out.first_us.unwrap_or(0)).max(1) as f64 / 1e6;
            if out.kind == Kind::Video {
                entry.framerate = Some(((out.frames - 1) as f64 / span * 100.0).round() / 100.0);
            }
            if entry.bitrate.is_none() {
                entry.bitrate = Some((out.bytes as f64 * 8.0 / span) as u64);
            }
        }
        self.publish_catalog(catalog)
    }

    /// Publishes everything `input` holds until it ends, following its `moov`s.
    pub async fn publish<R: AsyncRead + Unpin>(&mut self, input: &mut Input<R>) -> Result<(), Error> {
        while let Some(event) = input.next().await? {
            match event {
                Event::Init(tracks) => self.set_tracks(&tracks)?,
                Event::Sample(sample) => self.write(&sample).await?,
            }
        }
        Ok(())
    }

    /// For looping a file: the next input's timeline continues where this one ended (groups, timestamps and
    /// pacing carry on).
    pub fn continue_timeline(&mut self) {
        // The next pass's first sample (at the same media time as this pass's first) lands where this one ended.
        self.offset_us = self.end_us.saturating_sub(self.pass_start_us.take().unwrap_or(0));
    }

    /// Ends the broadcast: closes every track (PUBLISH_DONE to subscribers) after a final catalog marking it
    /// complete, and withdraws it from the origin.
    pub fn finish(mut self) {
        for out in &mut self.outputs {
            out.close_group();
            out.producer.end(TrackEnd::Ended);
        }
        let done = Catalog { is_complete: true, tracks: Vec::new(), ..Catalog::new() };
        let _ = self.publish_catalog(done);
        self.catalog_track.end(TrackEnd::Ended);
        self.origin.remove_namespace(&self.namespace);
    }
}

/// A fragmented-MP4 input read as it arrives.
pub struct Input<R> {
    reader: R,
    demuxer: Demuxer,
    pending: VecDeque<Event>,
    buf: Vec<u8>,
    eof: bool,
}

impl<R: AsyncRead + Unpin> Input<R> {
    /// Reads from `reader` (a pipe, a file, a socket).
    pub fn new(reader: R) -> Input<R> {
        Input { reader, demuxer: Demuxer::new(), pending: VecDeque::new(), buf: vec![0; 64 * 1024], eof: false }
    }

    /// The next track set or sample; `None` at a clean end of input.
    pub async fn next(&mut self) -> Result<Option<Event>, Error> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Ok(Some(e));
            }
            if self.eof {
                return Ok(None);
            }
            let n = self.reader.read(&mut self.buf).await?;
            if n == 0 {
                self.eof = true;
                self.demuxer.finish()?;
                if self.demuxer.tracks().is_empty() {
                    return Err(Error::Broadcast("the input ended before any moov (no tracks)".into()));
                }
                continue;
            }
            self.pending.extend(self.demuxer.push(&self.buf[..n])?);
        }
    }

    /// Reads until the first `moov` and returns its tracks (they are also returned again by [`Input::next`]), so
    /// that bad input is refused before anything is published.
    pub async fn tracks(&mut self) -> Result<Vec<MediaTrack>, Error> {
        if let Some(Event::Init(tracks)) = self.pending.front() {
            return Ok(tracks.clone());
        }
        match self.next().await? {
            Some(Event::Init(tracks)) => {
                self.pending.push_front(Event::Init(tracks.clone()));
                Ok(tracks)
            }
            Some(Event::Sample(_)) => Err(Error::Broadcast("a sample before the moov".into())),
            None => Err(Error::Broadcast("the input has no moov".into())),
        }
    }
}
