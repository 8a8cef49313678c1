// The studio's encoder worker: the source (a test pattern and tone made here, or camera and microphone frames
// from the page), one WebCodecs VideoEncoder per rendition, or the Opus AudioEncoder. The studio starts one worker
// for video and one for audio. Encoded chunks go back to the page, which packages and publishes them.
//
// Timestamps: every chunk carries its capture wall-clock time in µs (the LOC TIMESTAMP). Pattern frames are
// stamped with the wall clock when drawn. Camera and microphone frames carry the browser's capture clock (one
// monotonic clock for both), shifted onto the wall clock by one offset: the smallest wall-minus-capture
// difference among the first frames read, the one least delayed on its way here.

import { drawStamp } from "../media/stamp.ts";
import {
  codecString,
  type FromEncoder,
  type Rendition,
  type RenditionStats,
  type Source,
  type ToEncoder,
  type VideoCodecChoice,
} from "./protocol.ts";

const scope = self as unknown as DedicatedWorkerGlobalScope;
const post = (m: FromEncoder, transfer: Transferable[] = []) => scope.postMessage(m, transfer);
const wallUs = () => Math.round((performance.timeOrigin + performance.now()) * 1000);

/** Frames queued in an encoder beyond which new frames are dropped (realtime: never build a backlog). */
const MAX_ENCODE_QUEUE = 2;
const SAMPLE_RATE = 48_000;
const AUDIO_CHUNK = 960; // 20 ms

interface VideoOutput {
  rendition: Rendition;
  encoder: VideoEncoder;
  /** Scales the source for renditions smaller than it. */
  scaler?: { canvas: OffscreenCanvas; ctx: OffscreenCanvasRenderingContext2D };
  dropped: number;
  frames: number;
  /** The last second's chunks: when (performance ms), size, and capture-to-output time (ms). */
  recent: Chunk[];
}

interface Chunk {
  at: number;
  bytes: number;
  encodeMs: number;
}

let outputs: VideoOutput[] = [];
let audioEncoder: AudioEncoder | undefined;
let audioStarted = false;
let audioRecent: Chunk[] = [];
let audioFrames = 0;
/** The pattern's next frame and the tone's next chunk. */
let patternTimer: ReturnType<typeof setTimeout> | undefined;
let toneTimer: ReturnType<typeof setTimeout> | undefined;
let running = false;
let keyframeIntervalUs = 2_000_000;
let lastKeyUs = Number.NEGATIVE_INFINITY;
let keyRequested = false;
/** Capture clock to wall clock, µs (0 for the pattern, whose frames carry the wall clock). */
let clockOffset = 0;
/** Camera and microphone frames left to refine clockOffset with. */
let offsetSamples = 0;
const OFFSET_SAMPLES = 30;

/** Camera / microphone: refines the capture-to-wall-clock offset over the first frames. */
function observeCaptureClock(timestampUs: number): void {
  if (offsetSamples >= OFFSET_SAMPLES) return;
  const d = wallUs() - timestampUs;
  clockOffset = offsetSamples === 0 ? d : Math.min(clockOffset, d);
  offsetSamples++;
}

function fail(e: unknown, track?: string): void {
  const message = e instanceof Error ? e.message : String(e);
  post(track ? { type: "error", message, track } : { type: "error", message });
}

function record(list: Chunk[], bytes: number, timestampUs: number): void {
  const at = performance.now();
  list.push({ at, bytes, encodeMs: wallUs() / 1000 - timestampUs / 1000 });
  while (list.length > 0 && (list[0] as { at: number }).at < at - 1000) list.shift();
}

async function startVideo(r: Rendition, codec: VideoCodecChoice, fps: number, sourceWidth: number) {
  const config: VideoEncoderConfig = {
    codec: codecString(codec, r.height),
    width: r.width,
    height: r.height,
    bitrate: r.bitrate,
    framerate: fps,
    latencyMode: "realtime",
  };
  if (codec === "h264") (config as VideoEncoderConfig & { avc: object }).avc = { format: "avc" };
  const support = await VideoEncoder.isConfigSupported(config);
  if (!support.supported)
    throw new Error(`this browser cannot encode ${config.codec} at ${r.width}x${r.height}`);
  const encoder = new VideoEncoder({
    output: (chunk, meta) => {
      if (meta?.decoderConfig) {
        const d = meta.decoderConfig.description;
        post({
          type: "config",
          config: {
            track: r.track,
            kind: "video",
            codec: config.codec,
            ...(d ? { description: copyBytes(d) } : {}),
            width: r.width,
            height: r.height,
            framerate: fps,
            bitrate: r.bitrate,
          },
        });
      }
      const data = new ArrayBuffer(chunk.byteLength);
      chunk.copyTo(data);
      out.frames++;
      const timestamp = chunk.timestamp + clockOffset;
      record(out.recent, chunk.byteLength, timestamp);
      post({ type: "chunk", track: r.track, kind: "video", data, timestamp, key: chunk.type === "key" }, [
        data,
      ]);
    },
    error: (e) => fail(`${r.track} encoder: ${e.message}`),
  });
  encoder.configure(config);
  const out: VideoOutput = { rendition: r, encoder, dropped: 0, frames: 0, recent: [] };
  if (r.width !== sourceWidth) {
    const canvas = new OffscreenCanvas(r.width, r.height);
    const ctx = canvas.getContext("2d");
    if (ctx) out.scaler = { canvas, ctx };
  }
  return out;
}

function copyBytes(d: AllowSharedBufferSource): Uint8Array {
  if (d instanceof ArrayBuffer || (typeof SharedArrayBuffer === "function" && d instanceof SharedArrayBuffer))
    return new Uint8Array(d.slice(0));
  const v = d as ArrayBufferView;
  return new Uint8Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength));
}

/** Encodes one source frame in every rendition (skipping renditions whose encoder is behind); closes it. */
function encodeFrame(frame: VideoFrame): void {
  const ts = frame.timestamp + clockOffset;
  const key = keyRequested || ts - lastKeyUs >= keyframeIntervalUs;
  if (key) {
    lastKeyUs = ts;
    keyRequested = false;
  }
  for (const o of outputs) {
    if (o.encoder.state !== "configured") continue;
    if (o.encoder.encodeQueueSize > MAX_ENCODE_QUEUE && !key) {
      o.dropped++;
      continue;
    }
    let input = frame;
    if (o.scaler) {
      o.scaler.ctx.drawImage(frame, 0, 0, o.rendition.width, o.rendition.height);
      input = new VideoFrame(o.scaler.canvas, { timestamp: frame.timestamp });
    }
    try {
      o.encoder.encode(input, { keyFrame: key });
    } catch (e) {
      fail(e);
    }
    if (input !== frame) input.close();
  }
  frame.close();
}

/** The test pattern: moving bars and a box, the time, and the stamp in the corner. */
function startPattern(source: Extract<Source, { kind: "pattern" }>, preview?: OffscreenCanvas): void {
  const canvas = new OffscreenCanvas(source.width, source.height);
  const ctx = canvas.getContext("2d");
  const pctx = preview?.getContext("2d");
  if (!ctx) throw new Error("no 2D canvas in this worker");
  clockOffset = 0;
  offsetSamples = OFFSET_SAMPLES;
  const frameMs = 1000 / source.fps;
  let frame = 0;
  let due = performance.now();
  const { width: w, height: h } = source;
  const tick = () => {
    if (!running) return;
    const ms = performance.timeOrigin + performance.now();
    const t = frame / source.fps;
    for (let i = 0; i < 8; i++) {
      ctx.fillStyle = `hsl(${(i * 45 + t * 40) % 360} 70% 45%)`;
      ctx.fillRect((i * w) / 8, 0, w / 8 + 1, h);
    }
    ctx.fillStyle = "#fff";
    ctx.fillRect(((t * 0.25) % 1) * (w - h / 4), h * 0.6, h / 4, h / 4);
    ctx.font = `${Math.round(h / 12)}px monospace`;
    ctx.fillText(`${new Date(ms).toISOString().slice(11, 23)}  #${frame}`, w * 0.05, h * 0.45);
    if (source.stamp) drawStamp(ctx, w, { timeMs: Math.floor(ms), frame });
    if (pctx && preview) pctx.drawImage(canvas, 0, 0, preview.width, preview.height);
    // The stamp's time in µs: what the viewer's stamp reader and LOC TIMESTAMP agree on.
    encodeFrame(new VideoFrame(canvas, { timestamp: Math.floor(ms) * 1000, duration: 1e6 / source.fps }));
    frame++;
    due += frameMs;
    const now = performance.now();
    if (due < now - frameMs) due = now; // fell behind (a busy machine): skip rather than burst
    patternTimer = setTimeout(tick, Math.max(0, due - now));
  };
  tick();
}

/** A 440 Hz tone with a short 880 Hz beep each second, in 20 ms chunks paced by the wall clock. */
function startTone(): void {
  let sent = 0;
  const start = wallUs();
  const pump = () => {
    if (!running) return;
    const due = Math.floor(((wallUs() - start) / 1e6) * SAMPLE_RATE);
    while (sent + AUDIO_CHUNK <= due) {
      const data = new Float32Array(AUDIO_CHUNK * 2);
      for (let i = 0; i < AUDIO_CHUNK; i++) {
        const n = sent + i;
        const beep = n % SAMPLE_RATE < SAMPLE_RATE / 20;
        const v = 0.2 * Math.sin((2 * Math.PI * (beep ? 880 : 440) * n) / SAMPLE_RATE);
        data[i] = v;
        data[AUDIO_CHUNK + i] = v;
      }
      const timestamp = start + Math.round((sent / SAMPLE_RATE) * 1e6);
      encodeAudio(
        new AudioData({
          format: "f32-planar",
          sampleRate: SAMPLE_RATE,
          numberOfChannels: 2,
          numberOfFrames: AUDIO_CHUNK,
          timestamp,
          data,
        }),
      );
      sent += AUDIO_CHUNK;
    }
    toneTimer = setTimeout(pump, 10);
  };
  pump();
}

function encodeAudio(data: AudioData): void {
  const e = audioEncoder;
  if (e?.state === "configured" && e.encodeQueueSize < 10) e.encode(data);
  data.close();
}

async function startAudio(channels: number, sampleRate = SAMPLE_RATE): Promise<void> {
  const config: AudioEncoderConfig = {
    codec: "opus",
    sampleRate,
    numberOfChannels: channels,
    bitrate: 64_000,
  };
  const support = await AudioEncoder.isConfigSupported(config);
  if (!support.supported)
    throw new Error(
      `audio encoder: this browser cannot encode Opus at ${sampleRate} Hz, ${channels} channels`,
    );
  audioEncoder = new AudioEncoder({
    output: (chunk, meta) => {
      if (meta?.decoderConfig) {
        const d = meta.decoderConfig.description;
        post({
          type: "config",
          config: {
            track: "audio0",
            kind: "audio",
            codec: "opus",
            ...(d ? { description: copyBytes(d) } : {}),
            bitrate: 64_000,
            samplerate: sampleRate,
            channels,
          },
        });
      }
      const data = new ArrayBuffer(chunk.byteLength);
      chunk.copyTo(data);
      audioFrames++;
      const timestamp = chunk.timestamp + clockOffset;
      record(audioRecent, chunk.byteLength, timestamp);
      post({ type: "chunk", track: "audio0", kind: "audio", data, timestamp, key: true }, [data]);
    },
    error: (e) => {
      fail(`audio encoder: ${e.message}`, "audio0");
      audioEncoder = undefined;
    },
  });
  audioEncoder.configure(config);
}

/** Passes each frame of `stream` to `take` until the stream ends or the studio stops. */
async function readFrames<F extends VideoFrame | AudioData>(
  stream: ReadableStream<F>,
  take: (frame: F) => void,
) {
  const reader = stream.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done || !running) {
      value?.close();
      // Tells the page's side (a processor, or capture-fallback.ts) to stop producing.
      reader.cancel().catch(() => {});
      return;
    }
    observeCaptureClock(value.timestamp);
    take(value);
  }
}

/** Reads frames from the page's MediaStreamTrackProcessors until stopped. */
async function pumpMedia(source: Extract<Source, { kind: "media" }>): Promise<void> {
  await Promise.all([
    source.video ? readFrames(source.video, encodeFrame) : undefined,
    source.audio
      ? readFrames(source.audio, (value) => {
          // The encoder takes the microphone's channel count and rate, known from its first buffer.
          if (!audioStarted) {
            audioStarted = true; // buffers are dropped until the encoder is configured
            startAudio(value.numberOfChannels, value.sampleRate).catch((e) => fail(e, "audio0"));
          }
          encodeAudio(value);
        })
      : undefined,
  ]);
}

function report(): void {
  const video: RenditionStats[] = outputs.map((o) => {
    const now = performance.now();
    const recent = o.recent.filter((c) => c.at >= now - 1000);
    const encode = recent.map((c) => c.encodeMs).sort((a, b) => a - b);
    return {
      track: o.rendition.track,
      width: o.rendition.width,
      height: o.rendition.height,
      fps: recent.length,
      kbps: (recent.reduce((a, c) => a + c.bytes, 0) * 8) / 1000,
      queue: o.encoder.encodeQueueSize,
      dropped: o.dropped,
      frames: o.frames,
      encodeMs: encode[Math.floor(encode.length / 2)] ?? 0,
    };
  });
  const now = performance.now();
  const a = audioRecent.filter((c) => c.at >= now - 1000);
  const audio = audioEncoder
    ? { kbps: (a.reduce((s, c) => s + c.bytes, 0) * 8) / 1000, frames: audioFrames }
    : undefined;
  post(audio ? { type: "stats", video, audio } : { type: "stats", video });
}

let statsTimer: ReturnType<typeof setInterval> | undefined;

async function start(m: Extract<ToEncoder, { type: "start" }>): Promise<void> {
  running = true;
  keyframeIntervalUs = m.keyframeIntervalMs * 1000;
  const s = m.source;
  outputs = await Promise.all(m.renditions.map((r) => startVideo(r, m.codec, s.fps, s.width)));
  if (m.audio && s.kind === "pattern") await startAudio(2);
  statsTimer = setInterval(report, 500);
  if (s.kind === "pattern") {
    if (outputs.length > 0) startPattern(s, m.preview);
    if (m.audio) startTone();
  } else {
    pumpMedia(s).catch(fail);
  }
}

async function stop(): Promise<void> {
  running = false;
  clearTimeout(patternTimer);
  clearTimeout(toneTimer);
  clearInterval(statsTimer);
  const encoders: (VideoEncoder | AudioEncoder)[] = outputs.map((o) => o.encoder);
  if (audioEncoder) encoders.push(audioEncoder);
  await Promise.all(encoders.map((e) => (e.state === "configured" ? e.flush().catch(() => {}) : undefined)));
  for (const e of encoders) if (e.state !== "closed") e.close();
  outputs = [];
  audioEncoder = undefined;
  audioStarted = false;
  audioRecent = [];
  post({ type: "stopped" });
}

scope.onmessage = (e: MessageEvent<ToEncoder>) => {
  const m = e.data;
  if (m.type === "start") start(m).catch(fail);
  else if (m.type === "keyframe") keyRequested = true;
  else if (m.type === "stop") stop().catch(fail);
};
