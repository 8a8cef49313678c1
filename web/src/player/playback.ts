// One playback of a broadcast over one session: the catalog, the chosen tracks, the live edge at the transport
// (skipping to the newest group when behind), rendition switches at group boundaries, automatic choice, and
// rewind (played from the relay's cache, rewind.ts).

import type { Group, Subscription } from "../client/requests.ts";
import { RequestError } from "../client/requests.ts";
import type { Session } from "../client/session.ts";
import { type Properties, RequestErrorCode } from "../wire/index.ts";
import { AbrPolicy, ThroughputMeter } from "./abr.ts";
import { audioTrack, type Catalog, type CatalogTrack, parseCatalog, videoTracks } from "./catalog.ts";
import { CmafError, parseFragment } from "./cmaf.ts";
import { BroadcastError, configMessage, decoderConfig } from "./decoder-config.ts";
import type { Wants } from "./demand.ts";
import { LocError, readLoc } from "./loc.ts";
import type { ToWorker } from "./protocol.ts";
import {
  type FetchObject,
  GroupClock,
  MAX_REWIND_S,
  type Range,
  Rewind,
  type RewindHost,
  type Rewound,
  rewindPoint,
} from "./rewind.ts";

/** An object later than the playout delay by this much, with a newer group waiting, abandons its group. */
const MAX_LAG_MS = 300;

export interface TransportStats {
  groupsSkipped: number;
  videoBytes: number;
  audioBytes: number;
  videoObjects: number;
  audioObjects: number;
}

export { BroadcastError };

interface Reading {
  track: CatalogTrack;
  sub: Subscription;
  stopped: boolean;
  /** CMAF: the track's timescale, and the smallest (publish time - media time) seen, µs. */
  timescale?: number;
  offset?: number;
}

interface Frame {
  data: Uint8Array;
  /** Wall-clock presentation time, µs. */
  timestamp: number;
  key: boolean;
  publishTime: number | undefined;
  config: Uint8Array | undefined;
}

/** The same complaint about a track's objects is shown at most this often, ms. */
const COMPLAINT_MS = 2000;

export class Playback {
  catalog: Catalog | undefined;
  readonly stats: TransportStats = {
    groupsSkipped: 0,
    videoBytes: 0,
    audioBytes: 0,
    videoObjects: 0,
    audioObjects: 0,
  };
  video: Reading | undefined;
  audio: Reading | undefined;
  /** The manual rendition, or undefined for automatic. */
  manual: string | undefined;
  onchange: (() => void) | undefined;
  /** A track could not start or play (unsupported codec, malformed init data, ...). */
  onerror: ((message: string) => void) | undefined;
  private closed = false;
  private switching: string | undefined;
  /** Bumped when video or audio stops: a start still under way for the old generation gives up. */
  private videoGen = 0;
  private audioGen = 0;
  private audioStarting: string | undefined;
  /** The rendition before video was paused, to resume with. */
  private lastVideo: CatalogTrack | undefined;
  private catalogSub: Subscription | undefined;
  /** CMAF: each track's media-time offset (Reading.offset), kept for its rewind. */
  private readonly offsets = new Map<string, number>();
  /** Where each catalog track's groups start, as seen (for rewind). */
  private readonly clocks = new Map<string, GroupClock>();
  /** Played from the relay's cache instead of live (rewind.ts), and its state once started. */
  private rewinding: Rewind | undefined;
  rewound: Rewound | undefined;
  /** A rewind set the delay (`r`), or ended (undefined): the player sets the worker's target to match. */
  onrewind: ((r: Rewound | undefined) => void) | undefined;

  constructor(
    private readonly session: Session,
    readonly broadcast: string,
    private readonly post: (m: ToWorker, transfer?: Transferable[]) => void,
    /** The worker's playout delay, ms (for the live-edge decision). */
    private readonly delayMs: () => number,
    /** Which tracks to subscribe (demand.ts); `want` changes it. */
    private wants: Wants,
  ) {}

  /** Video is not subscribed (not wanted now). */
  get videoPaused(): boolean {
    return !this.wants.video;
  }

  /**
   * Subscribes or cancels video and audio to match `w`. A track that comes back is subscribed without a filter:
   * the relay starts it at the current group, so video starts with a keyframe at the live edge.
   */
  want(w: Wants): void {
    this.wants = w;
    this.sync();
  }

  private sync(): void {
    const c = this.catalog;
    if (!c || this.closed) return;
    if (this.rewinding) {
      this.syncRewind(c, this.rewinding);
      return;
    }
    if (this.wants.video) {
      const want = this.pick(videoTracks(c));
      if (want && want.name !== this.video?.track.name) this.switchVideo(want).catch((e) => this.report(e));
    } else this.stopVideo();
    const a = audioTrack(c);
    if (this.wants.audio && a) {
      if (a.name !== this.audio?.track.name) this.startAudio(a).catch((e) => this.report(e));
    } else this.stopAudio();
  }

  private stopVideo(): void {
    this.videoGen++;
    this.switching = undefined;
    const r = this.video;
    if (!r) return;
    this.lastVideo = r.track;
    r.stopped = true;
    r.sub.cancel();
    this.video = undefined;
    this.post({ type: "video-pause" });
    this.onchange?.();
  }

  private stopAudio(): void {
    this.audioGen++;
    this.audioStarting = undefined;
    const r = this.audio;
    if (!r) return;
    r.stopped = true;
    r.sub.cancel();
    this.audio = undefined;
  }

  get renditions(): CatalogTrack[] {
    return this.catalog ? videoTracks(this.catalog) : [];
  }

  /** Reads the catalog and starts the tracks. Resolves when playback ends (catalog complete or session gone). */
  async run(): Promise<void> {
    let sub: Subscription;
    try {
      sub = await this.session.subscribe(this.broadcast, "catalog", { priority: 0 });
    } catch (e) {
      if (e instanceof RequestError && e.code === RequestErrorCode.DOES_NOT_EXIST) {
        throw new BroadcastError(`no such broadcast: ${this.broadcast}`);
      }
      throw e;
    }
    this.catalogSub = sub;
    const first = await this.nextCatalog(sub);
    if (!first) throw new BroadcastError(`${this.broadcast}: the catalog track ended`);
    this.apply(first);
    for (;;) {
      const c = await this.nextCatalog(sub);
      if (!c || this.closed) break;
      this.apply(c);
      if (c.complete) break;
    }
    if (!this.closed) throw new BroadcastError(`${this.broadcast} has ended`);
  }

  private async nextCatalog(sub: Subscription): Promise<Catalog | undefined> {
    for (;;) {
      const g = await sub.nextGroup();
      if (!g) return undefined;
      const o = await g.next();
      g.cancel();
      if (o && o.payload.length > 0) return parseCatalog(o.payload);
    }
  }

  private apply(c: Catalog): void {
    this.catalog = c;
    this.post({ type: "stamp", enabled: c.stamped });
    const videos = videoTracks(c);
    if (videos.length === 0 && !audioTrack(c))
      throw new BroadcastError(`${this.broadcast} has no playable tracks`);
    this.sync();
    this.onchange?.();
  }

  private report(e: unknown): void {
    if (!this.closed) this.onerror?.(e instanceof Error ? e.message : String(e));
  }

  private pick(videos: CatalogTrack[]): CatalogTrack | undefined {
    if (this.manual) return videos.find((v) => v.name === this.manual) ?? videos[0];
    // Automatic: start at the largest rendition that fits 1.25 x the element's size, the smallest otherwise.
    const fits = videos.filter(
      (v) => (v.height ?? 0) <= Math.max(360, (globalThis.innerHeight ?? 720) * 1.25),
    );
    const before = this.video?.track ?? videos.find((v) => v.name === this.lastVideo?.name);
    return before ?? fits[0] ?? videos[videos.length - 1];
  }

  /** Chooses a rendition (undefined: automatic). The switch happens at the new track's next group. */
  choose(name: string | undefined): void {
    this.manual = name;
    const target = name ? this.renditions.find((v) => v.name === name) : this.pick(this.renditions);
    if (this.rewinding) {
      this.lastVideo = target;
      if (this.catalog && target && target.name !== this.rewinding.track("video"))
        this.syncRewind(this.catalog, this.rewinding);
    } else if (!this.wants.video) this.lastVideo = target;
    else if (target && target.name !== this.video?.track.name)
      this.switchVideo(target).catch((e) => this.report(e));
  }

  private readonly meter = new ThroughputMeter();
  private readonly policy = new AbrPolicy();
  /** A cap on the throughput estimate, bits per second (the `throughput-cap` attribute: tests, diagnostics). */
  capBps: number | undefined;
  /** The video delivery throughput estimate in force, bits per second (capped), if known. */
  estimateBps: number | undefined;

  /**
   * Automatic choice, called every 250 ms with whether groups were skipped or frames dropped since the last call:
   * down when the throughput estimate no longer carries the rendition or on trouble, up after sustained room
   * (abr.ts).
   */
  adapt(troubled: boolean): void {
    const now = performance.now();
    const measured = this.meter.estimate(now);
    const cap = this.capBps;
    this.estimateBps = cap === undefined ? measured : Math.min(measured ?? cap, cap);
    if (this.manual || this.switching || !this.video) return;
    const list = this.renditions;
    const current = list.findIndex((v) => v.name === this.video?.track.name);
    const to = this.policy.decide({ renditions: list, current, estimate: this.estimateBps, troubled, now });
    if (to !== undefined && to !== current) this.switchVideo(list[to] as CatalogTrack).catch(() => {});
  }

  private async switchVideo(track: CatalogTrack): Promise<void> {
    if (this.switching === track.name) return;
    // Checked before subscribing: a track outside the limits is an error shown, and nothing is fetched.
    const decoder = decoderConfig(track, "video");
    this.switching = track.name;
    const gen = this.videoGen;
    // A switch starts at the new track's next group (its next keyframe): no stale frames to decode and drop.
    // NEW_GROUP_REQUEST 0 asks a DYNAMIC_GROUPS publisher (the studio) for that group now, not at its next
    // scheduled keyframe; other publishers ignore it (it needs no foreknowledge in SUBSCRIBE).
    const opts = this.video
      ? { priority: 2, filter: { type: 1 as const }, newGroupRequest: 0 }
      : { priority: 2, newGroupRequest: 0 };
    const sub = await this.session.subscribe(this.broadcast, track.name, opts);
    const first = await sub.nextGroup();
    if (!first || this.closed || this.switching !== track.name || gen !== this.videoGen) {
      sub.cancel();
      return;
    }
    // Switch at this group boundary: the old track stops, the new one starts with its keyframe.
    const old = this.video;
    const reading: Reading = { track, sub, stopped: false };
    if (decoder.timescale) reading.timescale = decoder.timescale;
    this.video = reading;
    this.switching = undefined;
    this.policy.switched(performance.now());
    this.meter.reset();
    this.post(configMessage("video", track, decoder));
    if (old) {
      old.stopped = true;
      old.sub.cancel();
    }
    this.onchange?.();
    await this.read(reading, "video", first);
  }

  private async startAudio(track: CatalogTrack): Promise<void> {
    if (this.audioStarting === track.name) return;
    const decoder = decoderConfig(track, "audio");
    this.audioStarting = track.name;
    const gen = this.audioGen;
    let sub: Subscription;
    try {
      sub = await this.session.subscribe(this.broadcast, track.name, { priority: 1 });
    } finally {
      if (gen === this.audioGen) this.audioStarting = undefined;
    }
    if (this.closed || gen !== this.audioGen) {
      sub.cancel();
      return;
    }
    const old = this.audio;
    const reading: Reading = { track, sub, stopped: false };
    if (decoder.timescale) reading.timescale = decoder.timescale;
    this.audio = reading;
    if (old) {
      old.stopped = true;
      old.sub.cancel();
    }
    this.post(configMessage("audio", track, decoder));
    await this.read(reading, "audio");
  }

  /** Reads a track's groups in order, jumping to the newest group whenever it falls behind. */
  private async read(r: Reading, kind: "video" | "audio", first?: Group): Promise<void> {
    let group = first ?? (await r.sub.nextGroup());
    let discontinuity = true;
    while (group && !r.stopped) {
      // More than one group waiting: we are behind by a whole group; play the newest.
      const waiting = r.sub.groups.length > 1 ? r.sub.groups.drain() : [];
      if (waiting.length > 0) {
        group.cancel();
        for (const g of waiting.slice(0, -1)) g.cancel();
        this.stats.groupsSkipped += waiting.length;
        group = waiting[waiting.length - 1] as Group;
        discontinuity = true;
      }
      for (;;) {
        const o = await group.next();
        if (!o || r.stopped) break;
        const c = this.convert(r, kind, o.objectId, o.properties, o.payload);
        if (!c) continue;
        if (o.objectId === 0) this.clock(r.track.name).observe(group.groupId, c.timestampUs);
        const f = c.send(discontinuity);
        discontinuity = false;
        if (kind === "video") this.meter.add(o.payload.length, f.arrival, f.timestamp / 1000);
        const lag = Date.now() - f.timestamp / 1000 - this.delayMs();
        if (lag > MAX_LAG_MS && r.sub.groups.length > 0) {
          // Behind and something newer exists: drop the rest of this group (never play stale frames).
          group.cancel();
          this.stats.groupsSkipped++;
          discontinuity = true;
          break;
        }
      }
      if (r.stopped) break;
      group = await r.sub.nextGroup();
    }
  }

  /**
   * An object of `r`'s track made ready for the worker (undefined: not usable media): `send` posts it, a decoder
   * configuration first when a keyframe carries one, and counts it.
   */
  private convert(
    r: Reading,
    kind: "video" | "audio",
    objectId: number,
    props: Properties,
    payload: Uint8Array,
  ): { timestampUs: number; send(discontinuity: boolean): Frame & { arrival: number } } | undefined {
    if (payload.length === 0) return undefined;
    const f = this.frame(r, objectId, props, payload);
    if (!f) return undefined;
    return {
      timestampUs: f.timestamp,
      send: (discontinuity) => {
        if (kind === "video" && f.key && f.config) {
          this.post({
            type: "video-config",
            track: r.track.name,
            codec: r.track.codec,
            description: f.config,
          });
        }
        const data = f.data.slice().buffer;
        const arrival = performance.timeOrigin + performance.now();
        const chunk: ToWorker = {
          type: "chunk",
          kind,
          track: r.track.name,
          data,
          timestamp: f.timestamp,
          key: f.key,
          arrival,
          discontinuity,
        };
        if (f.publishTime !== undefined) chunk.publishTime = f.publishTime;
        this.post(chunk, [data]);
        if (kind === "video") {
          this.stats.videoBytes += payload.length;
          this.stats.videoObjects++;
        } else {
          this.stats.audioBytes += payload.length;
          this.stats.audioObjects++;
        }
        return { ...f, arrival };
      },
    };
  }

  /** Where `track`'s groups start (one clock per catalog track; others are not remembered). */
  private clock(track: string): GroupClock {
    let c = this.clocks.get(track);
    if (!c) {
      c = new GroupClock();
      if (this.catalog?.tracks.some((t) => t.name === track)) this.clocks.set(track, c);
    }
    return c;
  }

  /**
   * Plays from `seconds` before what is shown now (further back when already rewound), from the relay's cache:
   * the live subscriptions stop, and the tracks are fetched (rewind.ts). Resolves once the delay is set; rejects
   * (back at live) when the relay has nothing there. `live` returns to the live edge.
   */
  async rewind(seconds: number): Promise<Rewound> {
    const c = this.catalog;
    if (!c || this.closed) throw new BroadcastError("nothing to rewind yet");
    if (!(seconds > 0)) throw new RangeError(`rewind by ${seconds} s`);
    const videos = videoTracks(c);
    const video = videos.length > 0 ? (this.video?.track ?? this.pick(videos)) : undefined;
    const a = audioTrack(c);
    const audio = this.wants.audio ? a : undefined;
    if (video) decoderConfig(video, "video");
    if (audio) decoderConfig(audio, "audio");
    const delay = this.rewound?.delayMs ?? this.delayMs();
    const point = rewindPoint(Date.now(), delay, Math.min(seconds, MAX_REWIND_S));
    if (video) this.lastVideo = video;
    this.rewinding?.stop();
    this.rewound = undefined;
    const rw = new Rewind(this.rewindHost());
    this.rewinding = rw;
    // The live subscriptions stop; frames queued in the worker are dropped.
    this.stopVideo();
    this.stopAudio();
    this.post({ type: "video-pause" });
    const tracks: { video?: string; audio?: string } = {};
    if (video) tracks.video = video.name;
    if (audio) tracks.audio = audio.name;
    try {
      const r = await rw.start(point, tracks, (r) => {
        if (this.rewinding !== rw) return;
        this.rewound = r;
        this.onrewind?.(r);
      });
      rw.failure.catch((e) => {
        if (this.rewinding !== rw) return;
        this.report(new BroadcastError(`rewind ended: ${e instanceof Error ? e.message : e}`));
        this.live();
      });
      return r;
    } catch (e) {
      if (this.rewinding === rw) this.live();
      throw e;
    }
  }

  /** Back to the live edge after a rewind: the fetches stop, the tracks are subscribed from the current group. */
  live(): void {
    const rw = this.rewinding;
    if (!rw) return;
    rw.stop();
    this.rewinding = undefined;
    this.rewound = undefined;
    this.post({ type: "video-pause" });
    this.onrewind?.(undefined);
    this.sync();
    this.onchange?.();
  }

  /**
   * While rewound: video stays the chosen rendition, audio follows the mute; the leading track (video, else audio)
   * no longer wanted ends it.
   */
  private syncRewind(c: Catalog, rw: Rewind): void {
    if (videoTracks(c).length > 0 ? !this.wants.video : !this.wants.audio) {
      // Paused, hidden or out of view: nothing is fetched; playing again starts at the live edge.
      this.live();
      return;
    }
    const report = (e: unknown) => this.report(e);
    const v = this.lastVideo && videoTracks(c).find((t) => t.name === this.lastVideo?.name);
    if (v && v.name !== rw.track("video")) {
      decoderConfig(v, "video");
      rw.follow("video", v.name).catch(report);
    }
    const a = audioTrack(c);
    if (this.wants.audio && a) {
      if (a.name !== rw.track("audio")) rw.follow("audio", a.name).catch(report);
    } else rw.drop("audio");
  }

  /** What a rewind asks of this playback: fetches over its session, conversions, the worker. */
  private rewindHost(): RewindHost {
    // The tracks being fetched, with CMAF's media-time offset carried over from their live playback.
    const readings = new Map<string, Reading>();
    const reading = (name: string, kind: "video" | "audio"): Reading | undefined => {
      let r = readings.get(name);
      if (r) return r;
      const track = this.catalog?.tracks.find((t) => t.name === name);
      if (!track) return undefined;
      r = { track, stopped: false } as Reading;
      const timescale = track.packaging === "cmaf" ? decoderConfig(track, kind).timescale : undefined;
      if (timescale) r.timescale = timescale;
      const offset = this.offsets.get(name);
      if (offset !== undefined) r.offset = offset;
      readings.set(name, r);
      return r;
    };
    return {
      fetch: async (name, start, end): Promise<Range> => {
        const f = await this.session.fetch({ namespace: this.broadcast, name, start, end }, { priority: 2 });
        let cancelled = false;
        return {
          next: () => (cancelled ? Promise.resolve(undefined) : f.next()),
          // What arrived and was not read is let go at once.
          cancel: () => {
            cancelled = true;
            f.cancel();
            f.entries.drain();
          },
          get endLocation() {
            return f.endLocation;
          },
          get complete() {
            return f.entries.closed;
          },
        };
      },
      largest: async (name) => (await this.session.trackStatus(this.broadcast, name)).largest,
      clock: (name) => this.clock(name),
      configure: (kind, name) => {
        const track = this.catalog?.tracks.find((t) => t.name === name);
        if (track) this.post(configMessage(kind, track, decoderConfig(track, kind)));
      },
      convert: (kind, name, o: FetchObject) => {
        const r = reading(name, kind);
        return r && this.convert(r, kind, o.objectId, o.properties, o.payload);
      },
      now: () => Date.now(),
    };
  }

  private readonly complained = new Map<string, number>();

  /** Shows an error about a track's objects, the same one at most every COMPLAINT_MS. */
  private complain(message: string): void {
    const now = performance.now();
    if (now - (this.complained.get(message) ?? Number.NEGATIVE_INFINITY) < COMPLAINT_MS) return;
    this.complained.set(message, now);
    this.report(new BroadcastError(message));
  }

  /**
   * One decodable frame from an object, or undefined for objects that are not media of this packaging or cannot
   * be used (skipped, with an error shown; the track carries on).
   */
  private frame(r: Reading, objectId: number, props: Properties, payload: Uint8Array): Frame | undefined {
    if (r.track.packaging !== "cmaf") {
      let loc: ReturnType<typeof readLoc>;
      try {
        loc = readLoc(props);
      } catch (e) {
        if (!(e instanceof LocError)) throw e;
        this.complain(`${r.track.name}: objects skipped: ${e.message}`);
        return undefined;
      }
      if (!loc) return undefined;
      return {
        data: payload,
        timestamp: loc.timestamp,
        key: loc.keyframe ?? objectId === 0,
        publishTime: loc.publishTime,
        config: loc.config,
      };
    }
    let sample: ReturnType<typeof parseFragment>;
    try {
      sample = parseFragment(payload);
    } catch (e) {
      if (!(e instanceof CmafError)) throw e;
      this.complain(`${r.track.name}: objects skipped: ${e.message}`);
      return undefined;
    }
    // CMAF times are media times: tie them to the wall clock by the publish time (or the arrival time).
    const pts = (sample.pts / (r.timescale ?? 90_000)) * 1e6;
    const publishTime = props.getInt(0x3a10);
    const offset = (publishTime ?? Date.now() * 1000) - pts;
    r.offset = r.offset === undefined ? offset : Math.min(r.offset, offset);
    if (this.offsets.size < 64 || this.offsets.has(r.track.name)) this.offsets.set(r.track.name, r.offset);
    return { data: sample.data, timestamp: pts + r.offset, key: sample.key, publishTime, config: undefined };
  }

  close(): void {
    this.closed = true;
    this.rewinding?.stop();
    this.rewinding = undefined;
    for (const r of [this.video, this.audio]) {
      if (!r) continue;
      r.stopped = true;
      r.sub.cancel();
    }
    this.catalogSub?.cancel();
  }
}
