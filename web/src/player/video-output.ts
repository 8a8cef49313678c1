// Where the player's frames go. Through the browser's own video path where it has one: a <video> showing a
// MediaStreamTrackGenerator's track, whose writable end goes to the decoder worker (a decoded frame is handed to
// the compositor once, and picture-in-picture and full screen are the video element's own). Else a canvas that
// the worker draws to (each frame converted and copied into the canvas, then composited).

import { el } from "./controls.ts";

/** Chromium's MediaStreamTrackGenerator (mediacapture-transform), not in TypeScript's DOM types. */
interface TrackGenerator extends MediaStreamTrack {
  readonly writable: WritableStream<VideoFrame>;
}
type TrackGeneratorClass = new (init: { kind: "video" }) => TrackGenerator;

export interface VideoOutput {
  screen: HTMLVideoElement | HTMLCanvasElement;
  /** The stream the worker writes frames to (absent: the worker draws to the canvas). */
  frames?: WritableStream<VideoFrame>;
}

/**
 * The output for the `renderer` attribute: "canvas" forces the canvas; anything else takes the <video> path when
 * the browser can feed a <video> from a worker, and the canvas when not.
 */
export function videoOutput(renderer: string | null): VideoOutput {
  const Generator = (globalThis as { MediaStreamTrackGenerator?: TrackGeneratorClass })
    .MediaStreamTrackGenerator;
  if (renderer === "canvas" || !Generator) return { screen: el("canvas") };
  const generator = new Generator({ kind: "video" });
  const video = el("video", "screen");
  video.muted = true;
  video.autoplay = true;
  video.playsInline = true;
  video.disableRemotePlayback = true;
  // The controls are the player's own; a frame is shown as soon as it arrives (no buffering of a file's kind).
  video.controls = false;
  video.srcObject = new MediaStream([generator]);
  video.play().catch(() => {});
  return { screen: video, frames: generator.writable };
}
