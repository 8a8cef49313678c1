//! Watching: subscribe to a broadcast's catalog and tracks and write them out as fragmented MP4.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moq_transport::wire::namespace::{FullTrackName, TrackNamespace};
use moq_transport::{Session, SubscribeOptions, TrackConsumer, TrackEnd};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use web_transport_trait::Session as WtSession;

use crate::catalog::{CATALOG_TRACK, Catalog, Track};
use crate::loc::{Frame, PUBLISH_TIME};
use crate::mp4::{Demuxer, Event, Kind, Sample, TrackConfig, init_segment, trak};
use crate::mux::{Unit, Writer};
use crate::publish::{AUDIO_PRIORITY, CATALOG_PRIORITY, VIDEO_PRIORITY};
use crate::{Error, now_micros, rescale};

/// Which tracks of a broadcast to watch.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Exactly these tracks (by name). Empty: one video rendition and the first audio track.
    pub tracks: Vec<String>,
    /// The video rendition: a track name, or a height such as `360` or `360p`. Default: the largest.
    pub rendition: Option<String>,
    /// Leave video out.
    pub no_video: bool,
    /// Leave audio out.
    pub no_audio: bool,
}

impl Selection {
    /// The catalog tracks this selection picks.
    pub fn choose(&self, catalog: &Catalog) -> Result<Vec<Track>, Error> {
        if !self.tracks.is_empty() {
            return self
                .tracks
                .iter()
                .map(|name| {
                    catalog.track(name).cloned().ok_or_else(|| {
                        let names: Vec<_> = catalog.tracks.iter().map(|t| t.name.as_str()).collect();
                        Error::Broadcast(format!("no track `{name}` in the catalog (it has: {})", names.join(", ")))
                    })
                })
                .collect();
        }
        let mut chosen = Vec::new();
        let videos: Vec<&Track> = catalog.tracks.iter().filter(|t| t.kind() == Some(Kind::Video)).collect();
        if !self.no_video && !videos.is_empty() {
            let video = match &self.rendition {
                Some(r) => {
                    let height = r.trim_end_matches('p').parse::<u32>().ok();
                    videos.iter().find(|t| t.name == *r || (height.is_some() && t.height == height)).ok_or_else(
                        || {
                            let names: Vec<_> =
                                videos.iter().map(|t| format!("{} ({}p)", t.name, t.height.unwrap_or(0))).collect();
                            Error::Broadcast(format!("no rendition `{r}` (renditions: {})", names.join(", ")))
                        },
                    )?
                }
                None => videos
                    .iter()
                    .max_by_key(|t| (u64::from(t.width.unwrap_or(0)) * u64::from(t.height.unwrap_or(0)), t.bitrate))
                    .ok_or_else(|| Error::Broadcast("no video".into()))?,
            };
            chosen.push((*video).clone());
        }
        if !self.no_audio
            && let Some(audio) = catalog.tracks.iter().find(|t| t.kind() == Some(Kind::Audio))
        {
            chosen.push(audio.clone());
        }
        if chosen.is_empty() {
            return Err(Error::Broadcast("the selection leaves no track to watch".into()));
        }
        Ok(chosen)
    }
}

/// Settings of [`watch`].
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// Which tracks.
    pub selection: Selection,
    /// Print per-track statistics to stderr this often (and once at the end).
    pub stats: Option<Duration>,
    /// Stop after this long (from the first frame written).
    pub duration: Option<Duration>,
    /// How long to wait for every track's first frame before writing (to line the tracks up).
    pub align: Duration,
    /// Stay this close to the live edge: when a track's objects arrive later than this after they were published
    /// (by their PUBLISH_TIME) and a newer group exists, skip to the newest group. Objects without a publish time
    /// skip when two or more groups behind. `None`: never skip (only the track buffer's window bounds the lag).
    pub max_latency: Option<Duration>,
    /// Write the publisher's timestamps unchanged instead of starting the output at zero (CMAF keeps the
    /// source's media timeline, LOC the publisher's wall clock).
    pub keep_timestamps: bool,
}

/// The default [`WatchOptions::max_latency`].
pub const DEFAULT_MAX_LATENCY: Duration = Duration::from_secs(1);

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            selection: Selection::default(),
            stats: None,
            duration: None,
            align: Duration::from_secs(1),
            max_latency: Some(DEFAULT_MAX_LATENCY),
            keep_timestamps: false,
        }
    }
}

/// What one watched track received.
#[derive(Debug, Clone, Default)]
pub struct TrackStats {
    /// Track name.
    pub name: String,
    /// Objects received.
    pub objects: u64,
    /// Groups received.
    pub groups: u64,
    /// Payload bytes received.
    pub bytes: u64,
    /// Groups skipped because we fell behind the live edge.
    pub skipped: u64,
    /// Publish-to-receive latency of the latest [`LATENCY_SAMPLES`] objects carrying a publish time, microseconds.
    pub latency_us: Vec<u64>,
    latency_next: usize,
    first: Option<Instant>,
    last: Option<Instant>,
}

/// How many latency samples a track keeps (the newest), so that long watches stay flat in memory and CPU.
pub const LATENCY_SAMPLES: usize = 10_000;

impl TrackStats {
    /// Records one latency sample, replacing the oldest once [`LATENCY_SAMPLES`] are held.
    fn record_latency(&mut self, us: u64) {
        if self.latency_us.len() < LATENCY_SAMPLES {
            self.latency_us.push(us);
        } else {
            self.latency_us[self.latency_next] = us;
        }
        self.latency_next = (self.latency_next + 1) % LATENCY_SAMPLES;
    }

    /// A latency percentile (0-100), microseconds.
    pub fn latency_percentile(&self, p: f64) -> Option<u64> {
        if self.latency_us.is_empty() {
            return None;
        }
        let mut v = self.latency_us.clone();
        v.sort_unstable();
        let i = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
        v.get(i).copied()
    }

    /// Received bitrate in bits per second.
    pub fn bitrate(&self) -> f64 {
        match (self.first, self.last) {
            (Some(a), Some(b)) if b > a => self.bytes as f64 * 8.0 / (b - a).as_secs_f64(),
            _ => 0.0,
        }
    }

    /// One line for humans.
    pub fn summary(&self) -> String {
        let ms = |v: Option<u64>| v.map(|u| format!("{:.1}", u as f64 / 1000.0)).unwrap_or_else(|| "-".into());
        format!(
            "{}: {} objects, {} groups, {:.0} kb/s, {} skipped, latency p50 {} ms p99 {} ms",
            self.name,
            self.objects,
            self.groups,
            self.bitrate() / 1000.0,
            self.skipped,
            ms(self.latency_percentile(50.0)),
            ms(self.latency_percentile(99.0)),
        )
    }
}

/// How a watched track's objects become frames.
enum Unpack {
    /// LOC: the object is the frame.
    Loc,
    /// CMAF: each object is a fragment; the demuxer has read the track's init segment (kept to reset it).
    Cmaf(Box<Demuxer>, Vec<u8>),
}

/// Watches the broadcast under `namespace` over one session: reads its catalog, subscribes to the selected tracks
/// and writes them to `out` as fragmented MP4 (an init segment, then a fragment per frame) until the tracks end or
/// [`WatchOptions::duration`] passes. Returns what each track received. A lost session is an error; use
/// [`Watch`] to carry on over a new one.
pub async fn watch<S: WtSession, W: AsyncWrite + Unpin>(
    session: &Session<S>,
    namespace: &TrackNamespace,
    options: &WatchOptions,
    out: W,
) -> Result<Vec<TrackStats>, Error> {
    let mut watch = Watch::new(namespace.clone(), options.clone(), out);
    let end = watch.run(session).await;
    let stats = watch.finish().await?;
    match end? {
        WatchEnd::Ended => Ok(stats),
        WatchEnd::Lost(e) => Err(Error::Transport(e)),
        WatchEnd::Moved(_) => {
            Err(Error::Transport(moq_transport::Error::Request(moq_transport::RequestFailure::GoingAway)))
        }
    }
}

/// How watching over one session ended.
#[derive(Debug)]
pub enum WatchEnd {
    /// The broadcast ended (every track ended cleanly) or the duration passed.
    Ended,
    /// The session was lost (closed, or a track ended with an error): connect again and
    /// [`Watch::run`] again to carry on.
    Lost(moq_transport::Error),
    /// The relay sent GOAWAY: connect to the session URI it named (empty: the same one, see
    /// [`moq_transport::goaway_url`]) and [`Watch::run`] again to carry on.
    Moved(String),
}

/// One output fed by one or more sessions in turn: after a reconnection the same tracks continue in the same
/// file, video from its next keyframe, on a timeline that never goes back.
pub struct Watch<W> {
    namespace: TrackNamespace,
    options: WatchOptions,
    out: W,
    /// The tracks chosen from the first session's catalog, with their output configuration.
    chosen: Vec<(Track, TrackConfig)>,
    writer: Option<Writer>,
    stats: Vec<Arc<Mutex<TrackStats>>>,
    deadline: Option<tokio::time::Instant>,
    /// When the latest [`Watch::run`] wrote its first frame.
    first_write: Option<std::time::Instant>,
}

impl<W: AsyncWrite + Unpin> Watch<W> {
    /// A watch of `namespace` into `out`; nothing happens until [`Watch::run`].
    pub fn new(namespace: TrackNamespace, options: WatchOptions, out: W) -> Watch<W> {
        let (chosen, stats) = (Vec::new(), Vec::new());
        Watch { namespace, options, out, chosen, writer: None, stats, deadline: None, first_write: None }
    }

    /// When the latest [`Watch::run`] wrote its first frame (`None` if it wrote none): where an outage ended.
    pub fn first_write(&self) -> Option<std::time::Instant> {
        self.first_write
    }

    /// What each track received so far.
    pub fn stats(&self) -> Vec<TrackStats> {
        snapshot(&self.stats)
    }

    /// Flushes the output and prints the final statistics (with `--stats`); returns them.
    pub async fn finish(mut self) -> Result<Vec<TrackStats>, Error> {
        if let Some(writer) = self.writer.as_mut() {
            writer.flush(&mut self.out, true).await?;
        }
        self.out.flush().await?;
        let stats = self.stats();
        if self.options.stats.is_some() {
            for s in &stats {
                eprintln!("{}", s.summary());
            }
        }
        Ok(stats)
    }

    /// Watches over `session` until the broadcast ends, the duration passes, or the session is lost.
    pub async fn run<S: WtSession>(&mut self, session: &Session<S>) -> Result<WatchEnd, Error> {
        let catalog = read_catalog(session, &self.namespace).await?;
        if catalog.is_complete && catalog.tracks.is_empty() {
            return Err(Error::Broadcast(format!("broadcast {} has ended", self.namespace)));
        }
        let chosen = self.options.selection.choose(&catalog)?;
        // Small, so that a slow output shows up as lag the readers can see (and skip), not as a hidden queue.
        let (tx, mut rx) = mpsc::channel::<Unit>(16);
        let mut traks = Vec::new();
        let mut configs = Vec::new();
        let mut readers = Vec::new();
        let resuming = self.writer.is_some();
        self.first_write = None;
        for (i, track) in chosen.iter().enumerate() {
            let (config, trak, unpack) = unpacking(&catalog, track, i)?;
            if resuming && self.chosen.get(i).is_none_or(|(t, c)| t.name != track.name || !c.decodes_like(&config)) {
                return Err(Error::Broadcast("the broadcast's tracks changed while reconnecting".into()));
            }
            let name = FullTrackName::new(self.namespace.clone(), track.name.as_str());
            // Subscriber priorities mirror the publisher's: catalog, then audio, then video.
            let priority = if config.kind == Kind::Audio { AUDIO_PRIORITY } else { VIDEO_PRIORITY };
            let subscription = session.subscribe(name, SubscribeOptions { priority, ..Default::default() }).await?;
            tracing::info!(track = %track.name, codec = %config.codec, packaging = %track.packaging, "subscribed");
            if !resuming {
                self.stats.push(Arc::new(Mutex::new(TrackStats { name: track.name.clone(), ..Default::default() })));
            }
            let reader = TrackReader {
                index: i,
                kind: config.kind,
                timescale: config.timescale.max(1),
                unpack,
                stats: self.stats[i].clone(),
                max_latency: self.options.max_latency,
            };
            let tx = tx.clone();
            readers.push(tokio::spawn(async move {
                let consumer = subscription.consumer();
                let end = reader.run(consumer, tx).await;
                drop(subscription);
                end
            }));
            traks.push(trak);
            configs.push(config);
        }
        drop(tx);
        match self.writer.as_mut() {
            Some(writer) => writer.resume(),
            None => {
                self.out.write_all(&init_segment(traks)?).await?;
                self.chosen = chosen.into_iter().zip(configs.iter().cloned()).collect();
                self.writer = Some(Writer::new(configs, self.options.keep_timestamps));
            }
        }
        let result = self.pump(session, &mut rx).await;
        for r in &readers {
            r.abort();
        }
        // A track that ended with an error (its relay or publisher was lost) is a lost session, not the end.
        let mut failed = None;
        for r in readers {
            if let Ok(TrackEnd::Error(code)) = r.await {
                failed = Some(code);
            }
        }
        match (result?, failed) {
            (WatchEnd::Ended, Some(code)) if !self.deadline_passed() => {
                Ok(WatchEnd::Lost(moq_transport::Error::Transport(format!("a track ended with error {code:#x}"))))
            }
            (end, _) => Ok(end),
        }
    }

    fn deadline_passed(&self) -> bool {
        self.deadline.is_some_and(|d| tokio::time::Instant::now() >= d)
    }

    /// Moves frames from the readers to the output until they all end, the duration passes or the session ends.
    async fn pump<S: WtSession>(
        &mut self,
        session: &Session<S>,
        rx: &mut mpsc::Receiver<Unit>,
    ) -> Result<WatchEnd, Error> {
        let Some(writer) = self.writer.as_mut() else { return Ok(WatchEnd::Ended) };
        let align_until = tokio::time::Instant::now() + self.options.align;
        let mut ticker = self.options.stats.map(tokio::time::interval);
        let stats = &self.stats;
        loop {
            let tick = async {
                match ticker.as_mut() {
                    Some(t) => t.tick().await,
                    None => std::future::pending().await,
                }
            };
            let deadline = self.deadline;
            let stop = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            let align = async {
                if writer.waiting_for_tracks() {
                    tokio::time::sleep_until(align_until).await
                } else {
                    std::future::pending().await
                }
            };
            tokio::select! {
                unit = rx.recv() => match unit {
                    Some(unit) => {
                        writer.push(unit);
                        let before = writer.written();
                        writer.flush(&mut self.out, false).await?;
                        if self.first_write.is_none() && writer.written() > before {
                            self.first_write = Some(std::time::Instant::now());
                        }
                        if self.deadline.is_none() && writer.base_us.is_some() {
                            self.deadline = self.options.duration.map(|d| tokio::time::Instant::now() + d);
                        }
                    }
                    None => return Ok(WatchEnd::Ended),
                },
                _ = align => writer.flush(&mut self.out, true).await?,
                _ = tick => for s in snapshot(stats) {
                    eprintln!("{}", s.summary());
                },
                _ = stop => return Ok(WatchEnd::Ended),
                e = session.closed() => return Ok(WatchEnd::Lost(e)),
                event = session.next_event() => if let Some(moq_transport::Event::GoAway { uri, .. }) = event {
                    // The relay is going away: move to a new session now rather than at its drain deadline.
                    return Ok(WatchEnd::Moved(uri));
                },
            }
        }
    }
}

/// How track `i` of the output is described and how its objects become frames.
fn unpacking(catalog: &Catalog, track: &Track, i: usize) -> Result<(TrackConfig, mp4_atom::Trak, Unpack), Error> {
    let init = catalog.init_data(track)?;
    match track.packaging.as_str() {
        "cmaf" => {
            let init =
                init.ok_or_else(|| Error::Broadcast(format!("CMAF track `{}` without init data", track.name)))?;
            let mut demuxer = Demuxer::new();
            let tracks = demuxer.push(&init)?.into_iter().find_map(|e| match e {
                Event::Init(t) => Some(t),
                Event::Sample(_) => None,
            });
            let media = tracks
                .and_then(|t| t.into_iter().next())
                .ok_or_else(|| Error::Broadcast(format!("track `{}`: init data has no track", track.name)))?;
            let mut trak = media.trak.clone();
            trak.tkhd.track_id = i as u32 + 1;
            Ok((media.config, trak, Unpack::Cmaf(Box::new(demuxer), init)))
        }
        "loc" => {
            let config = track.config(init).ok_or_else(|| {
                Error::Broadcast(format!("track `{}` is neither video nor audio, or has no codec", track.name))
            })?;
            let trak = trak(i as u32 + 1, &config)?;
            Ok((config, trak, Unpack::Loc))
        }
        other => Err(Error::Broadcast(format!("track `{}`: unsupported packaging `{other}`", track.name))),
    }
}

/// Reads the current complete catalog of the broadcast under `namespace`.
pub async fn read_catalog<S: WtSession>(session: &Session<S>, namespace: &TrackNamespace) -> Result<Catalog, Error> {
    let name = FullTrackName::new(namespace.clone(), CATALOG_TRACK);
    let sub = session.subscribe(name, SubscribeOptions { priority: CATALOG_PRIORITY, ..Default::default() }).await?;
    let mut consumer = sub.consumer();
    loop {
        let mut group = consumer
            .next_group()
            .await
            .map_err(|e| Error::Broadcast(format!("catalog track of {namespace} ended ({e:?})")))?;
        let Some(mut subgroup) = group.next_subgroup().await else { continue };
        if let Ok(object) = subgroup.next().await
            && object.id.0 == 0
        {
            return Ok(Catalog::apply(None, &object.payload)?);
        }
    }
}

/// Reads one track's objects and sends them to the writer as frames.
struct TrackReader {
    index: usize,
    kind: Kind,
    timescale: u32,
    unpack: Unpack,
    stats: Arc<Mutex<TrackStats>>,
    max_latency: Option<Duration>,
}

impl TrackReader {
    fn stats(&self) -> std::sync::MutexGuard<'_, TrackStats> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads until the track ends (returning how) or the writer goes away.
    async fn run(mut self, mut consumer: TrackConsumer, tx: mpsc::Sender<Unit>) -> TrackEnd {
        let end = 'groups: loop {
            let mut group = match consumer.next_group().await {
                Ok(g) => g,
                Err(end) => break 'groups end,
            };
            let group_id = group.id().0;
            {
                let mut stats = self.stats();
                stats.groups += 1;
                stats.skipped = consumer.skipped();
            }
            while let Some(mut subgroup) = group.next_subgroup().await {
                while let Ok(object) = subgroup.next().await {
                    let latency_us = object.properties.get_int(PUBLISH_TIME).map(|t| now_micros().saturating_sub(t));
                    if self.behind(&consumer, group_id, latency_us) {
                        // Too far from the live edge: drop the rest of this group and go to the newest one, which
                        // starts with a keyframe.
                        consumer.skip_to_latest();
                        self.stats().skipped = consumer.skipped();
                        continue 'groups;
                    }
                    {
                        let now = Instant::now();
                        let mut stats = self.stats();
                        stats.first.get_or_insert(now);
                        stats.last = Some(now);
                        stats.objects += 1;
                        stats.bytes += object.payload.len() as u64;
                        if let Some(latency) = latency_us {
                            stats.record_latency(latency);
                        }
                    }
                    let units = match self.unpack(&object, object.id.0 == 0) {
                        Ok(u) => u,
                        Err(e) => {
                            let name = self.stats().name.clone();
                            tracing::warn!(track = %name, error = %e, "dropping an object we cannot read");
                            continue;
                        }
                    };
                    for unit in units {
                        if tx.send(unit).await.is_err() {
                            break 'groups TrackEnd::Ended;
                        }
                    }
                }
            }
        };
        self.stats().skipped = consumer.skipped();
        end
    }

    /// Whether an object of group `group_id`, read `latency_us` after it was published (when it says), is too
    /// late and a newer group exists to skip to.
    fn behind(&self, consumer: &TrackConsumer, group_id: u64, latency_us: Option<u64>) -> bool {
        let Some(max) = self.max_latency else { return false };
        if latency_us.is_some_and(|l| l <= max.as_micros() as u64) {
            return false; // on time: the common case, decided without looking at the track
        }
        let Some(newest) = consumer.largest().map(|l| l.group.0) else { return false };
        match latency_us {
            Some(_) => newest > group_id,
            None => newest >= group_id.saturating_add(2),
        }
    }

    fn unpack(&mut self, object: &moq_transport::Object, first_in_group: bool) -> Result<Vec<Unit>, Error> {
        let us = |t: i128, scale: u32| {
            let us = rescale(t, scale.into(), 1_000_000);
            i64::try_from(us).unwrap_or(if us < 0 { i64::MIN } else { i64::MAX })
        };
        match &mut self.unpack {
            Unpack::Loc => {
                let Some(frame) = Frame::from_object(object) else {
                    return Err(Error::Broadcast("LOC object without a TIMESTAMP".into()));
                };
                let ts = i64::try_from(frame.timestamp_us).unwrap_or(i64::MAX);
                let keyframe = match self.kind {
                    Kind::Video => frame.keyframe.unwrap_or(first_in_group),
                    Kind::Audio => true,
                };
                Ok(vec![Unit {
                    track: self.index,
                    dts_us: ts,
                    pts_us: ts,
                    duration_us: None,
                    keyframe,
                    data: frame.payload,
                }])
            }
            Unpack::Cmaf(demuxer, init) => {
                // Each object must hold whole boxes: a partial or oversized one must not swallow the next objects.
                let events = demuxer.push(&object.payload);
                if events.is_err() || demuxer.buffered() > 0 {
                    let mut fresh = Demuxer::new();
                    fresh.push(init)?;
                    **demuxer = fresh;
                    return Err(events
                        .err()
                        .map(Error::from)
                        .unwrap_or_else(|| Error::Broadcast("CMAF object does not end on a box boundary".into())));
                }
                let mut units = Vec::new();
                for event in events? {
                    if let Event::Sample(Sample { dts, pts, duration, keyframe, data, .. }) = event {
                        units.push(Unit {
                            track: self.index,
                            dts_us: us(i128::from(dts), self.timescale),
                            pts_us: us(i128::from(pts), self.timescale),
                            duration_us: (duration > 0)
                                .then(|| u64::from(duration) * 1_000_000 / u64::from(self.timescale)),
                            keyframe,
                            data,
                        });
                    }
                }
                Ok(units)
            }
        }
    }
}

/// A copy of each track's statistics.
fn snapshot(stats: &[Arc<Mutex<TrackStats>>]) -> Vec<TrackStats> {
    stats.iter().map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).clone()).collect()
}
