// The player's worker: WebCodecs decoding, the playout clock, and handing each frame, when due, to the page: written
// to a MediaStreamTrackGenerator's stream that a <video> shows (the browser's own video path), or drawn to the
// transferred canvas where there is none. It sleeps until the next frame is due; nothing polls.
//
// Timing: every LOC timestamp is the publisher's wall clock in µs. A frame is due at timestamp + delay, where the
// delay is the larger of the viewer's target latency and what delivery actually needs (the smallest recent
// arrival delay plus a margin). Anchoring to the wall clock means no drift; when audio plays, video follows the
// audio clock instead (the timestamp being heard, from the worklet), which rests on the same anchor. A publisher's
// timestamps that stop making sense (far in the future, or persistently far in the past) re-anchor that kind's
// timeline (playout.ts) with an error shown, rather than dragging the delay after them.

import { StampReader } from "../media/stamp.ts";
import { ChunkHold } from "./chunk-hold.ts";
import { type Joining, pickFrame } from "./frame-pick.ts";
import { checkDecoderInput, checkSupport, drawableSize } from "./loc.ts";
import { PlayoutDelay, Timeline } from "./playout.ts";
import type { FromWorker, ToWorker, WorkerStats } from "./protocol.ts";
import { AudioRing, clockAt } from "./ring.ts";

const scope = self as unknown as DedicatedWorkerGlobalScope;
const post = (m: FromWorker) => scope.postMessage(m);
const now = () => performance.timeOrigin + performance.now();

/** A decoded frame more than this far behind the clock is stale: dropped, never shown. */
const STALE_MS = 80;
const WINDOW_MS = 3000;
/** Decoded audio due further ahead than this is dropped, ms (chunks reach the decoder 500 ms ahead at most). */
const EARLY_AUDIO_MS = 1500;
/** Chunks queued in the video decoder beyond which it skips to the next keyframe. */
const MAX_DECODE_QUEUE = 30;

let canvas: OffscreenCanvas | undefined;
let ctx: OffscreenCanvasRenderingContext2D | null = null;
/** The <video>'s track generator, when the page renders through one. */
let frames: WritableStreamDefaultWriter<VideoFrame> | undefined;
let ring: AudioRing | undefined;
/** The worklet's port when there is no shared ring, and the last clock sample it sent. */
let feed: MessagePort | undefined;
let feedClock: { pts: number; wall: number } | undefined;
let feedBuffered = 0;

/** The audio clock (µs heard now), from the shared ring or the worklet's messages. */
function audioClock(t: number): number | undefined {
  if (ring) return ring.clock(t);
  return feedClock ? clockAt(feedClock.pts, feedClock.wall, t) : undefined;
}
const playout = new PlayoutDelay(50);
const timelines = { video: new Timeline(), audio: new Timeline() };
const arrivals: { at: number; delay: number; audio: boolean }[] = [];

interface Pending {
  frame: VideoFrame;
  publishTime: number | undefined;
}

/** Chunks that arrive while a decoder is being configured wait here instead of being lost. */
const pendingChunks: Extract<ToWorker, { type: "chunk" }>[] = [];
let configuring = 0;

const video = {
  decoder: undefined as VideoDecoder | undefined,
  configKey: "",
  configBytes: undefined as Uint8Array | undefined,
  track: undefined as string | undefined,
  waitingKey: true,
  queue: [] as Pending[],
  publishTimes: new Map<number, number | undefined>(),
  announced: false,
  /** The timestamp of the frame on screen, µs. */
  shownUs: undefined as number | undefined,
  width: 0,
  height: 0,
  /** Paused (not subscribed): decoded frames are discarded until the next chunk. */
  paused: false,
  /** The newest timestamp sent to the decoder, and the one before it (for the frame interval), µs. */
  newestUs: Number.NEGATIVE_INFINITY,
  frameUs: 33_333,
};

const audio = {
  decoder: undefined as AudioDecoder | undefined,
  configKey: "",
  configBytes: undefined as Uint8Array | undefined,
  written: 0,
};

const stats = {
  decoded: 0,
  rendered: 0,
  dropped: 0,
  decodeErrors: 0,
  renderTimes: [] as number[],
  latencies: [] as number[],
  recent: [] as number[],
  latency: undefined as number | undefined,
  glass: undefined as number | undefined,
  stamp: undefined as number | undefined,
  stamps: [] as number[],
  stampRecent: [] as number[],
  stampErrors: 0,
  frameRecent: [] as [number, number][],
};

/**
 * Reads the stamp of each drawn frame: for glass to glass when the catalog says frames carry one (`stamped`), for
 * the frame log (`frameLog`, the player's `frame-log` attribute) whatever the catalog says.
 */
let stampReader: StampReader | undefined;
let stamped = false;
let frameLog = false;

function fail(kind: "video" | "audio", message: string): void {
  stats.decodeErrors++;
  post({ type: "error", kind, message });
}

const noticed = new Map<string, number>();

/** Shows `message` (not a decode error), the same kind of notice at most every 2 s. */
function notice(kind: "video" | "audio", what: string, message: string): void {
  const t = performance.now();
  const key = `${kind}|${what}`;
  if (t - (noticed.get(key) ?? Number.NEGATIVE_INFINITY) < 2000) return;
  noticed.set(key, t);
  post({ type: "error", kind, message });
}

const sameBytes = (a: Uint8Array | undefined, b: Uint8Array | undefined) =>
  a === b || (!!a && !!b && a.length === b.length && a.every((x, i) => x === b[i]));

async function configureVideo(m: Extract<ToWorker, { type: "video-config" }>): Promise<void> {
  const key = `${m.track}|${m.codec}|${m.width}x${m.height}`;
  if (key === video.configKey && sameBytes(m.description, video.configBytes)) return;
  video.configKey = key;
  video.configBytes = m.description;
  const problem = checkDecoderInput("video", m);
  if (problem) {
    fail("video", problem);
    return;
  }
  const config: VideoDecoderConfig = { codec: m.codec, optimizeForLatency: true };
  if (m.description) config.description = m.description as BufferSource;
  if (m.width && m.height) {
    config.codedWidth = m.width;
    config.codedHeight = m.height;
  }
  const refused = await checkSupport("video", config, (c) => VideoDecoder.isConfigSupported(c));
  if (refused) {
    fail("video", refused);
    return;
  }
  // A new decoder per configuration: frames of the old rendition stay queued until the new one has a frame.
  const old = video.decoder;
  const decoder = new VideoDecoder({
    output: (frame) => {
      if (decoder !== video.decoder || video.paused) {
        frame.close();
        return;
      }
      stats.decoded++;
      const publishTime = video.publishTimes.get(frame.timestamp);
      video.publishTimes.delete(frame.timestamp);
      video.queue.push({ frame, publishTime });
      video.queue.sort((a, b) => a.frame.timestamp - b.frame.timestamp);
      while (video.queue.length > 60) dropFrame();
      schedule();
    },
    error: (e) => {
      fail("video", `video decoder: ${e.message}`);
      video.configKey = ""; // reconfigure on the next config message
      video.configBytes = undefined;
      video.waitingKey = true;
    },
  });
  decoder.configure(config);
  video.decoder = decoder;
  video.track = m.track;
  video.waitingKey = true;
  video.announced = false;
  if (old && old.state !== "closed") old.close();
}

async function configureAudio(m: Extract<ToWorker, { type: "audio-config" }>): Promise<void> {
  const key = `${m.track}|${m.codec}|${m.sampleRate}|${m.channels}`;
  if (key === audio.configKey && sameBytes(m.description, audio.configBytes)) return;
  audio.configKey = key;
  audio.configBytes = m.description;
  const problem = checkDecoderInput("audio", { ...m, sampleRate: m.sampleRate, channels: m.channels });
  if (problem) {
    fail("audio", problem);
    return;
  }
  const config: AudioDecoderConfig = {
    codec: m.codec,
    sampleRate: m.sampleRate,
    numberOfChannels: m.channels,
  };
  if (m.description && m.codec !== "opus") config.description = m.description as BufferSource;
  const refused = await checkSupport("audio", config, (c) => AudioDecoder.isConfigSupported(c));
  if (refused) {
    fail("audio", refused);
    return;
  }
  audio.decoder?.close();
  audio.decoder = new AudioDecoder({
    output: (data) => {
      // Decoded before a jump of the timeline (a rewind): it would hold up the ring for seconds.
      if (data.timestamp / 1000 > now() - playout.delayMs + EARLY_AUDIO_MS) {
        data.close();
        return;
      }
      const planes: Float32Array[] = [];
      const channels = Math.min(data.numberOfChannels, ring?.layout.channels ?? 2);
      for (let c = 0; c < channels; c++) {
        const plane = new Float32Array(data.numberOfFrames);
        data.copyTo(plane, { planeIndex: c, format: "f32-planar" });
        planes.push(plane);
      }
      // Before the first user gesture the worklet is not running: discard rather than queue stale audio.
      if (ring?.running && ring.write(data.timestamp, planes)) audio.written += data.numberOfFrames;
      else if (feed) {
        feed.postMessage(
          { pts: data.timestamp, planes },
          planes.map((p) => p.buffer),
        );
        audio.written += data.numberOfFrames;
      }
      data.close();
    },
    error: (e) => fail("audio", `audio decoder: ${e.message}`),
  });
  audio.decoder.configure(config);
}

/** Maps a chunk's timestamp onto its kind's timeline; false when the chunk is unusable. */
function anchor(m: Extract<ToWorker, { type: "chunk" }>): boolean {
  const mapped = timelines[m.kind].map(m.timestamp, m.arrival);
  if (!mapped) {
    notice(m.kind, "timestamp", `${m.kind} objects skipped: unusable timestamps`);
    return false;
  }
  if (mapped.jumpMs !== 0) {
    // The old anchor's arrival delays say nothing about the new one.
    for (let i = arrivals.length - 1; i >= 0; i--)
      if ((arrivals[i] as { audio: boolean }).audio === (m.kind === "audio")) arrivals.splice(i, 1);
    if (m.kind === "video") video.shownUs = undefined;
    const s = Math.abs(mapped.jumpMs / 1000);
    const away = s >= 86_400 ? `${Math.round(s / 86_400)} days` : `${s.toFixed(1)} s`;
    notice(m.kind, "jump", `${m.kind} timestamps jumped ${away}: the clock was re-anchored`);
  }
  m.timestamp = mapped.ts;
  return true;
}

type Chunk = Extract<ToWorker, { type: "chunk" }>;
/** Chunks due later than the lookahead (a delay of seconds) wait here, encoded. */
const hold = new ChunkHold<Chunk>();
let holdWake: ReturnType<typeof setTimeout> | undefined;

function onChunk(m: Chunk): void {
  if (!anchor(m)) return;
  const delay = m.arrival - m.timestamp / 1000;
  arrivals.push({ at: m.arrival, delay, audio: m.kind === "audio" });
  for (const c of hold.push(m, now(), playout.delayMs)) decodeChunk(c);
  scheduleHold();
}

/** Releases the held chunks that are due, then sleeps until the next one is. */
function releaseHeld(): void {
  for (const c of hold.release(now(), playout.delayMs)) decodeChunk(c);
  scheduleHold();
}

function scheduleHold(): void {
  clearTimeout(holdWake);
  holdWake = undefined;
  const at = hold.nextReleaseMs(playout.delayMs);
  if (at !== undefined) holdWake = setTimeout(releaseHeld, Math.max(0, at - now()));
}

function decodeChunk(m: Chunk): void {
  if (m.kind === "audio") {
    const d = audio.decoder;
    if (d?.state !== "configured") return;
    try {
      d.decode(new EncodedAudioChunk({ type: "key", timestamp: m.timestamp, data: m.data }));
    } catch (e) {
      stats.decodeErrors++;
      notice("audio", "decode", `audio decode: ${e instanceof Error ? e.message : e}`);
    }
    return;
  }
  const d = video.decoder;
  if (d?.state !== "configured" || m.track !== video.track) return;
  video.paused = false;
  if (m.discontinuity) video.waitingKey = true;
  // A decoder that falls a second behind catches up at the next keyframe rather than decoding a backlog (the
  // burst of a group's start on joining is far smaller).
  if (d.decodeQueueSize > MAX_DECODE_QUEUE) video.waitingKey = true;
  if (video.waitingKey) {
    if (!m.key) {
      stats.dropped++;
      return;
    }
    video.waitingKey = false;
  }
  const gap = m.timestamp - video.newestUs;
  if (gap > 0 && gap < 200_000) video.frameUs = Math.max(gap, 5_000);
  video.newestUs = Math.max(video.newestUs, m.timestamp);
  video.publishTimes.set(m.timestamp, m.publishTime);
  if (video.publishTimes.size > 300) video.publishTimes.clear();
  try {
    d.decode(new EncodedVideoChunk({ type: m.key ? "key" : "delta", timestamp: m.timestamp, data: m.data }));
  } catch (e) {
    fail("video", `decode: ${e instanceof Error ? e.message : e}`);
    video.waitingKey = true;
  }
}

function dropFrame(): void {
  const p = video.queue.shift();
  if (!p) return;
  p.frame.close();
  stats.dropped++;
}

function draw(p: Pending, t: number): void {
  const f = p.frame;
  if (!drawableSize(f.displayWidth, f.displayHeight)) {
    notice(
      "video",
      "size",
      `video frames of ${f.displayWidth}x${f.displayHeight} are not drawn (outside 1-8192)`,
    );
    f.close();
    stats.dropped++;
    return;
  }
  if (canvas && (canvas.width !== f.displayWidth || canvas.height !== f.displayHeight)) {
    canvas.width = f.displayWidth;
    canvas.height = f.displayHeight;
  }
  video.width = f.displayWidth;
  video.height = f.displayHeight;
  if (stampReader && (stamped || frameLog)) readStamp(stampReader, f, t);
  stats.rendered++;
  stats.renderTimes.push(t);
  if (p.publishTime !== undefined) {
    stats.latency = t - p.publishTime / 1000;
    stats.latencies.push(stats.latency);
    stats.recent.push(stats.latency);
    if (stats.latencies.length > 100) stats.latencies.shift();
  }
  stats.glass = t - f.timestamp / 1000;
  if (frames) {
    // The generator takes the frame (and closes it once the track has it).
    frames.write(f).catch((e) => {
      f.close();
      notice("video", "render", `video output: ${e instanceof Error ? e.message : e}`);
    });
  } else {
    ctx?.drawImage(f, 0, 0, f.displayWidth, f.displayHeight);
    f.close();
  }
  if (!video.announced && video.track) {
    video.announced = true;
    post({ type: "first-frame", track: video.track });
  }
}

function readStamp(reader: StampReader, f: VideoFrame, t: number): void {
  const s = reader.read(f, t);
  if (!s) {
    stats.stampErrors++;
    return;
  }
  if (frameLog) {
    stats.frameRecent.push([s.frame, t]);
    if (stats.frameRecent.length > 10_000) stats.frameRecent.shift();
  }
  if (!stamped) return;
  stats.stamp = t - s.timeMs;
  stats.stamps.push(stats.stamp);
  stats.stampRecent.push(stats.stamp);
  if (stats.stamps.length > 100) stats.stamps.shift();
  if (stats.stampRecent.length > 10_000) stats.stampRecent.shift();
}

/** The media time being shown at wall time `t`: the audio clock when audio plays, else the delayed wall clock. */
const mediaTimeAt = (t: number) => audioClock(t) ?? (t - playout.delayMs) * 1000;

/** Shows the newest due frame; frames it passes over, stale ones, and ones not after the frame on screen are dropped. */
function render(): void {
  const t = now();
  const clock = mediaTimeAt(t);
  const q = video.queue;
  const joining: Joining | undefined = video.announced
    ? undefined
    : { frameUs: video.frameUs, newestUs: video.newestUs };
  const pick = pickFrame(
    q.map((p) => p.frame.timestamp),
    clock,
    video.shownUs,
    STALE_MS * 1000,
    joining,
  );
  for (let i = 0; i < pick.skip; i++) dropFrame();
  if (pick.next === "stale") {
    // Only the newest frame sent to the decoder arriving late says the delay is too small; older ones are a
    // backlog (a join, a burst after a stall) being worked through.
    const newest = (q[0] as Pending).frame.timestamp >= video.newestUs;
    dropFrame();
    playout.stale(newest);
  } else if (pick.next === "show") {
    const head = q.shift() as Pending;
    video.shownUs = head.frame.timestamp;
    draw(head, t);
  }
}

let wake: ReturnType<typeof setTimeout> | undefined;
/** When the pending wake-up fires (ms, wall clock). */
let wakeAt = Number.POSITIVE_INFINITY;

/**
 * Sleeps until the first queued frame is due, then renders. Called when a frame is decoded and when the delay
 * changes; with nothing queued it sleeps until the decoder's next output.
 */
function schedule(): void {
  const head = video.queue[0];
  if (!head) return;
  const t = now();
  const waitMs = Math.max(0, (head.frame.timestamp - mediaTimeAt(t)) / 1000);
  if (wake !== undefined && wakeAt <= t + waitMs + 1) return;
  clearTimeout(wake);
  wakeAt = t + waitMs;
  wake = setTimeout(() => {
    wake = undefined;
    wakeAt = Number.POSITIVE_INFINITY;
    render();
    schedule();
  }, waitMs);
}

/** Every 100 ms: the playout delay follows the target, but never below what delivery needs. */
function control(): void {
  const t = now();
  while (arrivals.length > 0 && (arrivals[0] as { at: number }).at < t - WINDOW_MS) arrivals.shift();
  let base: number | undefined;
  // The floor of each kind; the later of the two, so that both audio and video are in time (a publisher's audio
  // may trail its video by an encoder's frame or more).
  const floor = { video: undefined as number | undefined, audio: undefined as number | undefined };
  for (const a of arrivals) {
    const k = a.audio ? "audio" : "video";
    floor[k] = Math.min(floor[k] ?? a.delay, a.delay);
  }
  for (const f of [floor.video, floor.audio]) if (f !== undefined) base = Math.max(base ?? f, f);
  const delayMs = playout.tick(base);
  releaseHeld();
  schedule();
  if (ring) ring.delayMs = delayMs;
  feed?.postMessage({ delayMs });
  report(t, base);
}

let lastReport = 0;

function report(t: number, base: number | undefined): void {
  if (t - lastReport < 250) return;
  lastReport = t;
  while (stats.renderTimes.length > 0 && (stats.renderTimes[0] as number) < t - 1000)
    stats.renderTimes.shift();
  const sorted = [...stats.latencies].sort((a, b) => a - b);
  const s: WorkerStats = {
    type: "stats",
    framesDecoded: stats.decoded,
    framesRendered: stats.rendered,
    framesDropped: stats.dropped + hold.dropped,
    fps: stats.renderTimes.length,
    delayMs: playout.delayMs,
    width: video.width,
    height: video.height,
    audioBufferedMs: ring ? (ring.buffered / ring.layout.sampleRate) * 1000 : (feedBuffered / 48000) * 1000,
    audioSamplesWritten: audio.written,
    audioClock: audioClock(t) !== undefined,
    decodeErrors: stats.decodeErrors,
    recent: stats.recent.splice(0),
    stampRecent: stats.stampRecent.splice(0),
    stampErrors: stats.stampErrors,
    frameRecent: stats.frameRecent.splice(0),
  };
  if (stats.stamp !== undefined) s.stampMs = stats.stamp;
  if (stats.stamps.length > 0)
    s.stampP50Ms = [...stats.stamps].sort((a, b) => a - b)[Math.floor(stats.stamps.length / 2)];
  if (base !== undefined) s.baseMs = base;
  if (stats.latency !== undefined) s.latencyMs = stats.latency;
  if (sorted.length > 0) s.latencyP50Ms = sorted[Math.floor(sorted.length / 2)];
  if (stats.glass !== undefined) s.glassMs = stats.glass;
  if (video.track) s.videoTrack = video.track;
  post(s);
}

/**
 * Video unsubscribed: nothing queued is drawn, and on return the group's backlog is the start of a new track
 * (not late frames that would raise the delay).
 */
function pauseVideo(): void {
  video.paused = true;
  hold.clear("video");
  for (const p of video.queue) p.frame.close();
  video.queue = [];
  video.waitingKey = true;
  video.publishTimes.clear();
  video.announced = false;
  video.shownUs = undefined;
  video.newestUs = Number.NEGATIVE_INFINITY;
}

function reset(): void {
  pendingChunks.length = 0;
  hold.clear();
  for (const p of video.queue) p.frame.close();
  video.queue = [];
  video.waitingKey = true;
  video.publishTimes.clear();
  video.announced = false;
  video.shownUs = undefined;
  video.newestUs = Number.NEGATIVE_INFINITY;
  arrivals.length = 0;
  timelines.video.reset();
  timelines.audio.reset();
}

scope.onmessage = (e: MessageEvent<ToWorker>) => {
  const m = e.data;
  switch (m.type) {
    case "init":
      if (m.frames) frames = m.frames.getWriter();
      else if (m.canvas) {
        canvas = m.canvas;
        ctx = canvas.getContext("2d");
      }
      if (m.ring) ring = new AudioRing(m.ring);
      playout.reset(m.targetMs);
      break;
    case "target":
      playout.mode = m.mode ?? { kind: "fixed", ms: m.ms };
      // Frames as old as the viewer asked for are not a timestamp jump.
      timelines.video.allowanceMs = playout.requestedMs;
      timelines.audio.allowanceMs = playout.requestedMs;
      releaseHeld();
      break;
    case "audio-port":
      feed = m.port;
      feed.onmessage = (e: MessageEvent<{ clock?: { pts: number; wall: number }; buffered?: number }>) => {
        if (e.data.clock) feedClock = e.data.clock;
        if (e.data.buffered !== undefined) feedBuffered = e.data.buffered;
      };
      feed.postMessage({ delayMs: playout.delayMs, outputLatencyMs: m.outputLatencyMs });
      break;
    case "video-config":
    case "audio-config":
      configuring++;
      (m.type === "video-config" ? configureVideo(m) : configureAudio(m))
        .catch((err) => fail(m.type === "video-config" ? "video" : "audio", String(err)))
        .finally(() => {
          if (--configuring === 0) for (const c of pendingChunks.splice(0)) onChunk(c);
        });
      break;
    case "chunk":
      if (configuring > 0 && pendingChunks.length < 600) pendingChunks.push(m);
      else onChunk(m);
      break;
    case "stamp":
    case "frame-log":
      if (m.type === "stamp") stamped = m.enabled;
      else frameLog = m.enabled;
      if (stamped || frameLog) stampReader ??= new StampReader();
      break;
    case "video-pause":
      pauseVideo();
      break;
    case "live":
      playout.reset(playout.targetMs);
      arrivals.length = 0;
      // The timeline jumped (back to live, or a rewind): buffered audio is from the wrong moment.
      ring?.flush();
      feed?.postMessage({ flush: true });
      releaseHeld();
      break;
    case "reset":
      reset();
      break;
  }
};

setInterval(control, 100);
