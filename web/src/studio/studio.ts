// Going live: capture, the encoder workers (video, audio), the broadcast, and the session that publishes it into
// `live/<channel>`. The session reconnects with backoff (250 ms doubling to 5 s) and republishes whenever the
// relay goes away; the encoders keep running meanwhile, so a new subscriber gets the newest group at once.

import { assetUrl, moduleWorker } from "../assets.ts";
import { RequestError } from "../client/requests.ts";
import { errorText, Session } from "../client/session.ts";
import { RequestErrorCode } from "../wire/index.ts";
import { type ChannelInfo, LiveBroadcast } from "./broadcast.ts";
import { audioFrames, videoFrames } from "./capture-fallback.ts";
import { KeyframeLimiter } from "./keyframes.ts";
import {
  type FromEncoder,
  type RenditionStats,
  renditionsFor,
  type Source,
  type ToEncoder,
  type VideoCodecChoice,
} from "./protocol.ts";

export type SourceChoice = "pattern" | "camera" | "screen";

export interface StudioOptions {
  relay: string;
  fingerprintUrl?: string;
  channel: string;
  title: string;
  token?: string;
  source: SourceChoice;
  codec: VideoCodecChoice;
  /** The pattern's size (default 1280x720 at 30 fps). */
  width?: number;
  height?: number;
  fps?: number;
  keyframeIntervalMs?: number;
  audio?: boolean;
  /** Where the pattern's preview is drawn (transferred to the worker). */
  preview?: HTMLCanvasElement;
  /** Where camera or screen frames are shown. */
  video?: HTMLVideoElement;
  /** Where studio-worker.js and capture-worklet.js are (default: beside this module). */
  assets?: string;
}

/** Forced keyframes (viewers' NEW_GROUP_REQUESTs) are at most this frequent, ms. */
const FORCED_KEYFRAME_MS = 500;

export type StudioState = "offline" | "starting" | "connecting" | "live" | "reconnecting" | "refused";

export interface StudioStats {
  state: StudioState;
  video: RenditionStats[];
  audioKbps: number;
  /** Subscriptions the relay holds to our tracks. */
  subscribers: number;
  reconnects: number;
  error?: string;
}

/** How often a live session checks that the relay still answers, and how long it waits for the answer. */
const PROBE_MS = 2000;

/** Channel names: lowercase letters, digits, `-` and `_`, 1-32 characters. */
export const CHANNEL_NAME = /^[a-z0-9][a-z0-9_-]{0,31}$/;

const REFUSED = new Set<number>([
  RequestErrorCode.UNAUTHORIZED,
  RequestErrorCode.MALFORMED_AUTH_TOKEN,
  RequestErrorCode.EXPIRED_AUTH_TOKEN,
]);

export class Studio {
  readonly stats: StudioStats = { state: "offline", video: [], audioKbps: 0, subscribers: 0, reconnects: 0 };
  onchange: (() => void) | undefined;
  broadcast: LiveBroadcast | undefined;
  private videoWorker: Worker | undefined;
  private audioWorker: Worker | undefined;
  private stream: MediaStream | undefined;
  private session: Session | undefined;
  private announcement: { cancel(): void } | undefined;
  private running = false;
  private wake: (() => void) | undefined;

  constructor(readonly opts: StudioOptions) {}

  get namespace(): string {
    return `live/${this.opts.channel}`;
  }

  private set(state: StudioState, error?: string): void {
    this.stats.state = state;
    if (error !== undefined) this.stats.error = error;
    this.onchange?.();
  }

  /** Captures, encodes, and publishes until `stop`. Throws if capture or the encoders cannot start. */
  async start(): Promise<void> {
    if (!CHANNEL_NAME.test(this.opts.channel))
      throw new Error("channel names are 1-32 lowercase letters, digits, - or _");
    this.running = true;
    this.stats.error = undefined;
    this.set("starting");
    const o = this.opts;
    const source = await this.capture();
    const renditions = renditionsFor(source.width, source.height);
    const audio = o.audio !== false && (source.kind === "pattern" || source.audio !== undefined);
    const info: ChannelInfo = { title: o.title || o.channel, startedAt: Date.now() };
    if (source.kind === "pattern" && source.stamp) info.stamp = true;
    this.broadcast = new LiveBroadcast(this.namespace, info, [
      ...renditions.map((r) => r.track),
      ...(audio ? ["audio0"] : []),
    ]);
    this.broadcast.onkeyframewanted = () => this.keyframeWanted();
    const common = { codec: o.codec, keyframeIntervalMs: o.keyframeIntervalMs ?? 2000 };
    // Video: every rendition, and the pattern's preview.
    const video: ToEncoder = { type: "start", ...common, source, renditions, audio: false };
    const videoTransfer: Transferable[] = [];
    // Audio in a worker of its own, so that video work never delays it.
    let audioStart: ToEncoder | undefined;
    const audioTransfer: Transferable[] = [];
    if (source.kind === "media") {
      const { audio: mic, video: camera, ...size } = source;
      video.source = camera ? { ...size, video: camera } : size;
      if (camera) videoTransfer.push(camera);
      if (mic) {
        const audioSource: Source = { ...size, audio: mic };
        audioStart = { type: "start", ...common, source: audioSource, renditions: [], audio: true };
        audioTransfer.push(mic);
      }
    } else {
      if (o.preview) {
        const offscreen = o.preview.transferControlToOffscreen();
        video.preview = offscreen;
        videoTransfer.push(offscreen);
      }
      if (audio) audioStart = { type: "start", ...common, source, renditions: [], audio: true };
    }
    this.videoWorker = this.startWorker(video, videoTransfer, "video");
    if (audioStart) this.audioWorker = this.startWorker(audioStart, audioTransfer, "audio");
    this.publishLoop().catch((e) => this.set("offline", errorText(e)));
  }

  private startWorker(start: ToEncoder, transfer: Transferable[], kind: "video" | "audio"): Worker {
    const worker = moduleWorker(assetUrl("studio-worker.js", this.opts.assets));
    worker.onmessage = (e: MessageEvent<FromEncoder>) => this.onWorker(e.data, kind);
    worker.onerror = (e) => this.set(this.stats.state, `${kind} encoder worker: ${e.message}`);
    worker.postMessage(start, transfer);
    return worker;
  }

  /** Release what capture-fallback.ts made (its ticker worker, the audio graph, a hidden <video>). */
  private releaseCapture: (() => void)[] = [];

  /**
   * The source: the worker's pattern, or camera / screen tracks read through MediaStreamTrackProcessors (or,
   * without them, capture-fallback.ts).
   */
  private async capture(): Promise<Source> {
    const o = this.opts;
    const fps = o.fps ?? 30;
    if (o.source === "pattern")
      return { kind: "pattern", width: o.width ?? 1280, height: o.height ?? 720, fps, stamp: true };
    const constraints = {
      width: { ideal: o.width ?? 1280 },
      height: { ideal: o.height ?? 720 },
      frameRate: fps,
    };
    const stream =
      o.source === "screen"
        ? await navigator.mediaDevices.getDisplayMedia({ video: constraints, audio: o.audio !== false })
        : await navigator.mediaDevices.getUserMedia({ video: constraints, audio: o.audio !== false });
    this.stream = stream;
    const [videoTrack] = stream.getVideoTracks();
    if (!videoTrack) throw new Error("no video track from the capture device");
    const settings = videoTrack.getSettings();
    if (o.video) {
      o.video.srcObject = stream;
      o.video.hidden = false;
      o.video.play().catch(() => {});
    }
    const Processor = (
      globalThis as unknown as {
        MediaStreamTrackProcessor?: new (init: {
          track: MediaStreamTrack;
        }) => { readable: ReadableStream<VideoFrame | AudioData> };
      }
    ).MediaStreamTrackProcessor;
    const [audioTrack] = stream.getAudioTracks();
    const source: Source = {
      kind: "media",
      width: settings.width ?? 1280,
      height: settings.height ?? 720,
      fps,
    };
    if (Processor) {
      source.video = new Processor({ track: videoTrack }).readable as ReadableStream<VideoFrame>;
      if (audioTrack)
        source.audio = new Processor({ track: audioTrack }).readable as ReadableStream<AudioData>;
      return source;
    }
    // No MediaStreamTrackProcessor (Firefox, Safari): frames from a playing <video>, samples from a worklet.
    let video = o.video;
    if (!video) {
      const hidden = document.createElement("video");
      hidden.muted = true;
      hidden.playsInline = true;
      hidden.srcObject = stream;
      await hidden.play().catch(() => {});
      this.releaseCapture.push(() => {
        hidden.srcObject = null;
      });
      video = hidden;
    }
    const frames = videoFrames(video, fps);
    this.releaseCapture.push(frames.close);
    source.video = frames.stream;
    if (audioTrack) {
      const audio = await audioFrames(audioTrack, assetUrl("capture-worklet.js", o.assets));
      this.releaseCapture.push(audio.close);
      source.audio = audio.stream;
    }
    return source;
  }

  private onWorker(m: FromEncoder, kind: "video" | "audio"): void {
    const b = this.broadcast;
    if (!b) return;
    if (m.type === "config") {
      b.configure(m.config);
      this.onchange?.();
    } else if (m.type === "chunk") {
      b.write(m.track, new Uint8Array(m.data), m.timestamp, m.key);
    } else if (m.type === "stats") {
      if (kind === "video") this.stats.video = m.video;
      else this.stats.audioKbps = m.audio?.kbps ?? 0;
      this.stats.subscribers = b.tracks.reduce((n, t) => n + t.subscriberCount, 0);
      this.onchange?.();
    } else if (m.type === "error") {
      if (m.track) b.withdraw(m.track);
      this.set(this.stats.state, m.message);
    }
  }

  /** Connects and publishes the namespace; after the session ends, again with backoff. */
  private async publishLoop(): Promise<void> {
    let backoff = 250;
    while (this.running) {
      const o = this.opts;
      try {
        this.set(this.stats.reconnects > 0 ? "reconnecting" : "connecting");
        const opts: Parameters<typeof Session.connect>[1] = {};
        if (o.fingerprintUrl) opts.fingerprintUrl = o.fingerprintUrl;
        if (o.token) opts.token = o.token;
        const session = await Session.connect(o.relay, opts);
        this.session = session;
        session.ongoaway = () => session.close(0, "going away");
        this.announcement = await session.publishNamespace(this.namespace, (name) =>
          this.broadcast?.lookup(name),
        );
        if (!this.running) break;
        backoff = 250;
        this.stats.error = undefined;
        this.set("live");
        await this.watch(session);
      } catch (e) {
        if (e instanceof RequestError && REFUSED.has(e.code)) {
          this.set("refused", `the relay refused to let this token publish ${this.namespace}: ${e.message}`);
          await this.stop();
          return;
        }
        if (this.running) this.stats.error = errorText(e);
      }
      this.session?.close();
      this.session = undefined;
      if (!this.running) break;
      this.stats.reconnects++;
      this.set("reconnecting");
      await new Promise<void>((r) => {
        this.wake = r;
        setTimeout(r, backoff);
      });
      backoff = Math.min(backoff * 2, 5000);
    }
  }

  /**
   * Waits for the session to end. A relay that vanished sends no close, so every PROBE_MS a TRACK_STATUS must be
   * answered (any answer) within PROBE_MS, or the session is closed here and the loop reconnects.
   */
  private async watch(session: Session): Promise<void> {
    let closed = false;
    session.closed.then(() => {
      closed = true;
    });
    while (!closed && this.running) {
      await Promise.race([session.closed, new Promise((r) => setTimeout(r, PROBE_MS))]);
      if (closed || !this.running) break;
      const answer = session.trackStatus(this.namespace, "catalog").then(
        () => true,
        () => true,
      );
      const timeout = new Promise<boolean>((r) => setTimeout(() => r(false), PROBE_MS));
      if (!(await Promise.race([answer, timeout]))) session.close(0, "relay not responding");
    }
  }

  requestKeyframe(): void {
    this.videoWorker?.postMessage({ type: "keyframe" } satisfies ToEncoder);
  }

  private readonly keyframes = new KeyframeLimiter(() => this.requestKeyframe(), FORCED_KEYFRAME_MS);

  /** Keyframes forced by viewers' NEW_GROUP_REQUESTs (at most one per FORCED_KEYFRAME_MS). */
  get forcedKeyframes(): number {
    return this.keyframes.forced;
  }

  /** A viewer asked for a new group: a keyframe now, or as soon as FORCED_KEYFRAME_MS since the last allows. */
  private keyframeWanted(): void {
    this.keyframes.request();
  }

  /**
   * Ends the broadcast cleanly: a final catalog marked complete and PUBLISH_DONE on every track, then the
   * namespace is withdrawn and the session closed.
   */
  async stop(): Promise<void> {
    const wasRunning = this.running;
    this.running = false;
    this.keyframes.stop();
    this.wake?.();
    for (const w of [this.videoWorker, this.audioWorker])
      w?.postMessage({ type: "stop" } satisfies ToEncoder);
    this.broadcast?.finish();
    const session = this.session;
    if (wasRunning && session && !session.isClosed) {
      // Let the final catalog and PUBLISH_DONEs reach the relay before the session goes.
      await new Promise((r) => setTimeout(r, 300));
    }
    this.announcement?.cancel();
    this.announcement = undefined;
    session?.close(0, "stopped");
    this.session = undefined;
    for (const release of this.releaseCapture.splice(0)) release();
    for (const t of this.stream?.getTracks() ?? []) t.stop();
    this.stream = undefined;
    const workers = [this.videoWorker, this.audioWorker];
    this.videoWorker = this.audioWorker = undefined;
    setTimeout(() => {
      for (const w of workers) w?.terminate();
    }, 1000);
    if (this.stats.state !== "refused") this.set("offline");
  }

  /** Closes at once (the page is going away). */
  close(): void {
    this.running = false;
    this.session?.close(0, "page closed");
  }
}
