// eval-hls.html: the evaluation's HLS viewer. hls.js plays `?src=<playlist>` (relative to the page) in a muted
// <video>, configured by `&mode=hls|ll|ll-tuned` (see hls-config.ts; `&part-hold-back=S` moves ll-tuned's target,
// default 1 s). Every frame the video shows is logged with the frame number read from its stamp (media/stamp.ts)
// and its display time. Everything is on `window.evalLog` (EvalLog below), which scripts/eval-watch.ts drains.

import Hls from "hls.js";
import { StampReader } from "../media/stamp.ts";
import { hlsConfig, type Mode, parseMode } from "./hls-config.ts";

/** Frames kept when nobody drains the log (more than a 100 minutes at 30 fps), then the oldest go. */
const MAX_FRAMES = 200_000;
const MAX_ERRORS = 1000;
const MAX_SAMPLES = 36_000;
/** How long after a fatal network error loading starts again, ms. */
const RETRY_MS = 1000;

export interface LatencySample {
  unix_ms: number;
  /** hls.latency: the estimated live edge minus the playhead, s. */
  latency_s: number;
  /** hls.targetLatency, s (null before the first playlist). */
  target_s: number | null;
  /** hls.drift: how fast the playlist's edge advances against real time. */
  drift: number | null;
  playback_rate: number;
  /** Buffered media ahead of the playhead, s. */
  buffer_s: number;
}

/** A 'waiting' event of the video after its first frame (it stopped for want of data), until the next 'playing'. */
export interface Stall {
  unix_ms: number;
  /** The media time where it stopped, s. */
  position_s: number;
  resumed_unix_ms?: number;
}

export interface EvalLog {
  /** The page's start (performance.timeOrigin), ms since the Unix epoch. */
  start_unix_ms: number;
  src: string;
  mode: Mode | string;
  /** [frame number from the stamp, display time in ms since the Unix epoch] per shown frame, oldest first. */
  frames: [number, number][];
  errors: string[];
  hls: {
    version: string;
    config: object;
    latency: LatencySample[];
    stalls: Stall[];
    /** Shown frames whose stamp could not be read (not in `frames`). */
    unreadable: number;
    /** Frames the compositor presented without a video-frame callback (not in `frames`). */
    missed_callbacks: number;
    /** Fatal errors after which loading was restarted (network) or the media recovered. */
    recoveries: number;
    errors_total: number;
  };
}

const params = new URLSearchParams(location.search);
const now = () => performance.timeOrigin + performance.now();
const src = params.get("src") ?? "";
const mode = parseMode(params.get("mode"));
const partHoldBack = Number(params.get("part-hold-back") ?? 1);
const config = mode
  ? hlsConfig(mode, Number.isFinite(partHoldBack) && partHoldBack > 0 ? partHoldBack : 1)
  : {};

const log: EvalLog = {
  start_unix_ms: performance.timeOrigin,
  src,
  mode: mode ?? params.get("mode") ?? "",
  frames: [],
  errors: [],
  hls: {
    version: Hls.version,
    config,
    latency: [],
    stalls: [],
    unreadable: 0,
    missed_callbacks: 0,
    recoveries: 0,
    errors_total: 0,
  },
};
(globalThis as unknown as { evalLog: EvalLog }).evalLog = log;

function push<T>(list: T[], item: T, max: number): void {
  list.push(item);
  if (list.length > max) list.splice(0, list.length - max);
}

const status = document.querySelector<HTMLElement>("#status");

function error(message: string): void {
  log.hls.errors_total++;
  push(log.errors, `${now().toFixed(0)} ${message}`, MAX_ERRORS);
  if (status) status.dataset.error = message;
}

const video = document.querySelector("video") as HTMLVideoElement; // eval-hls.html has one

// Every shown frame: its stamp, read from the video while the frame is the one being presented.
const reader = new StampReader();
let presented: number | undefined;
const onFrame: VideoFrameRequestCallback = (_, meta) => {
  const shown = performance.timeOrigin + meta.expectedDisplayTime;
  const stamp = reader.read(video, shown);
  if (stamp) push(log.frames, [stamp.frame, shown], MAX_FRAMES);
  else log.hls.unreadable++;
  // presentedFrames counts from the element's start; it restarts when the media is re-attached.
  if (presented !== undefined && meta.presentedFrames > presented + 1)
    log.hls.missed_callbacks += meta.presentedFrames - presented - 1;
  presented = meta.presentedFrames;
  video.requestVideoFrameCallback(onFrame);
};
video.requestVideoFrameCallback(onFrame);

// Waiting before the first frame is startup, not a stall.
video.addEventListener("waiting", () => {
  if (presented !== undefined)
    push(log.hls.stalls, { unix_ms: now(), position_s: video.currentTime }, MAX_SAMPLES);
});
video.addEventListener("playing", () => {
  const last = log.hls.stalls[log.hls.stalls.length - 1];
  if (last && last.resumed_unix_ms === undefined) last.resumed_unix_ms = now();
});
video.addEventListener("error", () => error(`video: ${video.error?.message ?? video.error?.code}`));

function bufferAhead(): number {
  const b = video.buffered;
  for (let i = 0; i < b.length; i++)
    if (b.start(i) <= video.currentTime + 0.1 && video.currentTime <= b.end(i))
      return b.end(i) - video.currentTime;
  return 0;
}

if (!src) error("no ?src= playlist");
else if (!mode) error(`unknown mode ${params.get("mode")}: hls, ll or ll-tuned`);
else if (!Hls.isSupported()) error("hls.js: Media Source Extensions are not supported here");
else start(src);

function start(playlist: string): void {
  const hls = new Hls(config);
  let parsed = false;
  hls.on(Hls.Events.MANIFEST_PARSED, () => {
    parsed = true;
    video.play().catch((e) => error(`play: ${e}`));
  });
  hls.on(Hls.Events.ERROR, (_, data) => {
    error(
      `hls.js ${data.fatal ? "fatal " : ""}${data.type} ${data.details}${data.reason ? `: ${data.reason}` : ""}`,
    );
    if (!data.fatal) return;
    // The recovery hls.js documents: media errors recover in place; after a network error that exhausted its
    // retries, load again a little later (the playlist itself, if it never came).
    log.hls.recoveries++;
    if (data.type === Hls.ErrorTypes.MEDIA_ERROR) hls.recoverMediaError();
    else if (data.type === Hls.ErrorTypes.NETWORK_ERROR)
      setTimeout(() => (parsed ? hls.startLoad() : hls.loadSource(playlist)), RETRY_MS);
    else error("hls.js: unrecoverable, playback ends");
  });
  hls.attachMedia(video);
  hls.loadSource(playlist);

  setInterval(() => {
    const sample: LatencySample = {
      unix_ms: now(),
      latency_s: hls.latency,
      target_s: hls.targetLatency,
      drift: hls.drift,
      playback_rate: video.playbackRate,
      buffer_s: bufferAhead(),
    };
    push(log.hls.latency, sample, MAX_SAMPLES);
    if (status)
      status.textContent = `${log.mode}  latency ${sample.latency_s.toFixed(2)} s (target ${sample.target_s?.toFixed(2) ?? "–"})  rate ${sample.playback_rate}  frames ${log.frames.length}  stalls ${log.hls.stalls.length}  errors ${log.hls.errors_total}`;
  }, 1000);
}
