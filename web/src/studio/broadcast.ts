// A browser broadcast as moq-pub publishes one: a `catalog` track (MSF, one complete catalog per group) and one
// LOC track per rendition and for audio. Video groups start at keyframes; audio groups start with the first
// packet after a keyframe of video0 (so the groups of all tracks begin together) or after 2 s.
//
// LOC objects carry TIMESTAMP (capture wall clock, µs), PUBLISH_TIME (0x3A10, when written, µs),
// VIDEO_FRAME_MARKING (0xE0 keyframe, 0xC0 other) and, on keyframes, VIDEO_CONFIG (the avcC / av1C).

import { Priority, TrackPublisher } from "../client/publish.ts";
import type { TrackLookup } from "../client/session.ts";
import { CHANNEL_FIELD } from "../player/catalog.ts";
import { LocProperty } from "../player/loc.ts";
import { Properties, utf8 } from "../wire/index.ts";
import type { TrackConfig } from "./protocol.ts";

export interface ChannelInfo {
  title: string;
  /** When the broadcast started, ms since the Unix epoch. */
  startedAt: number;
  /** Frames carry the glass-to-glass stamp (media/stamp.ts). */
  stamp?: boolean;
}

const MAX_AUDIO_GROUP_US = 2_000_000;
const MARK_KEY = new Uint8Array([0xe0]);
const MARK_DELTA = new Uint8Array([0xc0]);

function base64(b: Uint8Array): string {
  let s = "";
  for (const x of b) s += String.fromCharCode(x);
  return btoa(s);
}

/** An OpusHead (RFC 7845) for encoders that give no description: version 1, 312 samples pre-skip, no gain. */
export function opusHead(channels: number, sampleRate: number): Uint8Array {
  const h = new Uint8Array(19);
  h.set(utf8.encode("OpusHead"));
  const v = new DataView(h.buffer);
  v.setUint8(8, 1);
  v.setUint8(9, channels);
  v.setUint16(10, 312, true);
  v.setUint32(12, sampleRate, true);
  return h;
}

interface MediaTrack {
  config: TrackConfig;
  publisher: TrackPublisher;
  /** A video track waits for its first keyframe. */
  started: boolean;
  groupStartUs: number;
}

export class LiveBroadcast {
  readonly catalog = new TrackPublisher("catalog", Priority.CATALOG);
  private readonly media = new Map<string, MediaTrack>();
  /** Group ids start at the wall-clock millisecond, so a restarted studio's groups are newer (as moq-pub). */
  private readonly groupBase = Date.now();
  private catalogGroup = this.groupBase;
  private cutAudio = false;
  private expected: Set<string>;
  finished = false;
  /** A subscriber asked a video track for a new group: the encoders should make a keyframe soon. */
  onkeyframewanted: (() => void) | undefined;

  constructor(
    readonly namespace: string,
    readonly info: ChannelInfo,
    /** Track names to wait for before the first catalog (every rendition and audio). */
    expected: string[],
  ) {
    this.expected = new Set(expected);
  }

  /** The track lookup for Session.publishNamespace. */
  readonly lookup: TrackLookup = (name) =>
    name === "catalog" ? this.catalog : this.media.get(name)?.publisher;

  get tracks(): TrackPublisher[] {
    return [this.catalog, ...[...this.media.values()].map((m) => m.publisher)];
  }

  /** A track's configuration, from its encoder's first output. The catalog goes out once all are known. */
  configure(config: TrackConfig): void {
    const known = this.media.get(config.track);
    if (known) {
      known.config = config;
    } else {
      const priority = config.kind === "audio" ? Priority.AUDIO : Priority.VIDEO;
      // A subscriber more than a group behind loses the old group rather than falling further behind.
      const publisher = new TrackPublisher(config.track, priority, 1);
      if (config.kind === "video") {
        // A joining viewer may ask for a new group (NEW_GROUP_REQUEST) rather than wait for the next keyframe.
        publisher.dynamicGroups = true;
        publisher.onnewgroup = () => this.onkeyframewanted?.();
      }
      this.media.set(config.track, {
        config,
        publisher,
        started: config.kind === "audio",
        groupStartUs: 0,
      });
    }
    if ([...this.expected].every((t) => this.media.has(t))) this.publishCatalog();
  }

  /** A track that cannot go on (its encoder failed): the catalog goes out, or is republished, without it. */
  withdraw(track: string): void {
    this.expected.delete(track);
    const m = this.media.get(track);
    this.media.delete(track);
    m?.publisher.end();
    if (!this.finished && [...this.expected].every((t) => this.media.has(t))) this.publishCatalog();
  }

  /** The MSF catalog of the current tracks. */
  catalogJson(complete = false): Record<string, unknown> {
    const tracks: Record<string, unknown>[] = [];
    const initDataList: Record<string, unknown>[] = [];
    const videos = [...this.media.values()].filter((m) => m.config.kind === "video").length;
    if (!complete) {
      for (const { config: c } of this.media.values()) {
        const t: Record<string, unknown> = {
          name: c.track,
          packaging: "loc",
          isLive: true,
          role: c.kind,
          codec: c.codec,
          bitrate: c.bitrate,
          renderGroup: 1,
        };
        if (c.kind === "video") {
          Object.assign(t, { width: c.width, height: c.height, framerate: c.framerate });
          if (videos > 1) t.altGroup = 1;
        } else {
          Object.assign(t, { samplerate: c.samplerate, channelConfig: String(c.channels ?? 2) });
        }
        const init =
          c.description ??
          (c.codec === "opus" ? opusHead(c.channels ?? 2, c.samplerate ?? 48000) : undefined);
        if (init) {
          t.initRef = `init-${c.track}`;
          initDataList.push({ id: t.initRef, type: "inline", data: base64(init) });
        }
        tracks.push(t);
      }
    }
    const catalog: Record<string, unknown> = { version: "draft-01", generatedAt: Date.now() };
    if (complete) catalog.isComplete = true;
    catalog.tracks = tracks;
    if (initDataList.length > 0) catalog.initDataList = initDataList;
    catalog[CHANNEL_FIELD] = this.info;
    return catalog;
  }

  private publishCatalog(complete = false): void {
    this.catalog.newGroup(this.catalogGroup++);
    this.catalog.write({ payload: utf8.encode(JSON.stringify(this.catalogJson(complete))) });
  }

  /** Updates the channel's title (a new catalog). */
  retitle(title: string): void {
    this.info.title = title;
    if (this.catalog.largest) this.publishCatalog();
  }

  /** Packages one encoded chunk as a LOC object of its track. */
  write(track: string, data: Uint8Array, timestampUs: number, key: boolean): void {
    const m = this.media.get(track);
    if (!m || this.finished) return;
    const video = m.config.kind === "video";
    if (video && !m.started && !key) return; // a video track starts at a keyframe
    const p = m.publisher;
    const newGroup = video
      ? key
      : !p.largest || this.cutAudio || timestampUs - m.groupStartUs >= MAX_AUDIO_GROUP_US;
    if (newGroup) {
      const last = p.largest?.group;
      p.newGroup(last === undefined ? this.groupBase : last + 1);
      m.groupStartUs = timestampUs;
      if (!video) this.cutAudio = false;
    }
    if (video && key && track === "video0") this.cutAudio = true;
    m.started = true;
    const props = new Properties()
      .setInt(LocProperty.TIMESTAMP, timestampUs)
      .setInt(LocProperty.PUBLISH_TIME, Math.round((performance.timeOrigin + performance.now()) * 1000));
    if (video) {
      props.setBytes(LocProperty.VIDEO_FRAME_MARKING, key ? MARK_KEY : MARK_DELTA);
      if (key && m.config.description) props.setBytes(LocProperty.VIDEO_CONFIG, m.config.description);
    }
    p.write({ payload: data, properties: props });
  }

  /** Ends the broadcast: a final catalog marked complete, then every track ends (PUBLISH_DONE). */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.publishCatalog(true);
    for (const t of this.tracks) t.end();
  }
}
