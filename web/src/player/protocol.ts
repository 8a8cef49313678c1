// Messages between the player (main thread) and its decoder worker.

import type { LatencyMode } from "./playout.ts";
import type { RingLayout } from "./ring.ts";

export type ToWorker =
  /** Frames go to `frames` (a MediaStreamTrackGenerator's stream, shown by a <video>), else to `canvas`. */
  | {
      type: "init";
      frames?: WritableStream<VideoFrame>;
      canvas?: OffscreenCanvas;
      ring?: RingLayout;
      targetMs: number;
    }
  /** The viewer's latency mode; without `mode`, a fixed delay of `ms`. */
  | { type: "target"; ms: number; mode?: LatencyMode }
  /** Audio without shared memory: PCM goes to the worklet over this port, its clock comes back. */
  | { type: "audio-port"; port: MessagePort; outputLatencyMs: number }
  | {
      type: "video-config";
      track: string;
      codec: string;
      description?: Uint8Array;
      width?: number;
      height?: number;
    }
  | {
      type: "audio-config";
      track: string;
      codec: string;
      sampleRate: number;
      channels: number;
      description?: Uint8Array;
    }
  | {
      type: "chunk";
      kind: "video" | "audio";
      track: string;
      data: ArrayBuffer;
      timestamp: number;
      key: boolean;
      publishTime?: number;
      arrival: number;
      /** Objects were skipped before this one (a jump to a newer group). */
      discontinuity: boolean;
    }
  /** Read the glass-to-glass stamp from decoded frames (the catalog says they carry one). */
  | { type: "stamp"; enabled: boolean }
  /** Log the stamp's frame number and the draw time of every drawn frame, stamped or not by the catalog. */
  | { type: "frame-log"; enabled: boolean }
  /** Video is no longer subscribed: drop what is queued and wait for a keyframe when chunks come again. */
  | { type: "video-pause" }
  /** The viewer went (back) to the live edge: the delay drops to the target, past arrival delays are forgotten. */
  | { type: "live" }
  | { type: "reset" };

export interface WorkerStats {
  type: "stats";
  framesDecoded: number;
  framesRendered: number;
  framesDropped: number;
  fps: number;
  /** Publish (PUBLISH_TIME) to display, ms: the latest and the median of the last 100 frames. */
  latencyMs?: number;
  latencyP50Ms?: number;
  /** Every publish-to-display latency since the previous report, ms. */
  recent: number[];
  /** Capture (LOC TIMESTAMP) to display, ms. */
  glassMs?: number;
  /** Glass to glass from the stamp drawn into the frame: the latest and the median of the last 100, ms. */
  stampMs?: number;
  stampP50Ms?: number;
  /** Every stamp reading since the previous report, ms. */
  stampRecent: number[];
  /**
   * Every drawn frame since the previous report when the frame log is on: [the stamp's frame number, the draw
   * time in ms since the Unix epoch].
   */
  frameRecent: [number, number][];
  /** Stamped (or frame-logged) frames whose stamp could not be read. */
  stampErrors: number;
  /** The playout delay in force and the smallest observed arrival delay, ms. */
  delayMs: number;
  baseMs?: number;
  width: number;
  height: number;
  videoTrack?: string;
  audioBufferedMs: number;
  audioSamplesWritten: number;
  audioClock: boolean;
  decodeErrors: number;
}

export type FromWorker =
  | WorkerStats
  | { type: "error"; kind: "video" | "audio"; message: string }
  | { type: "first-frame"; track: string };
