// Messages between the studio page and its encoder worker.

export type VideoCodecChoice = "h264" | "vp9" | "av1";

export interface Rendition {
  /** Track name: video0 is the largest. */
  track: string;
  width: number;
  height: number;
  bitrate: number;
}

export type Source =
  /** A test pattern drawn in the worker (with the glass-to-glass stamp when asked). */
  | { kind: "pattern"; width: number; height: number; fps: number; stamp: boolean }
  /** Camera (or screen) and microphone frames, from MediaStreamTrackProcessors on the page. */
  | {
      kind: "media";
      width: number;
      height: number;
      fps: number;
      video?: ReadableStream<VideoFrame>;
      audio?: ReadableStream<AudioData>;
    };

/**
 * The studio runs two of these workers: one for video (every rendition), one for audio, so that a busy video
 * worker never delays audio capture or encoding.
 */
export type ToEncoder =
  | {
      type: "start";
      source: Source;
      /** The video renditions to encode (none in the audio worker). */
      renditions: Rendition[];
      codec: VideoCodecChoice;
      audio: boolean;
      keyframeIntervalMs: number;
      /** The pattern's preview (the page shows camera frames itself). */
      preview?: OffscreenCanvas;
    }
  | { type: "keyframe" }
  | { type: "stop" };

export interface TrackConfig {
  track: string;
  kind: "video" | "audio";
  codec: string;
  description?: Uint8Array;
  width?: number;
  height?: number;
  framerate?: number;
  bitrate: number;
  samplerate?: number;
  channels?: number;
}

export interface RenditionStats {
  track: string;
  width: number;
  height: number;
  fps: number;
  kbps: number;
  /** Frames waiting in the encoder. */
  queue: number;
  /** Frames not encoded because the encoder was behind. */
  dropped: number;
  frames: number;
  /** Capture to encoded chunk, ms: the median of the last second. */
  encodeMs: number;
}

export type FromEncoder =
  | { type: "config"; config: TrackConfig }
  | {
      type: "chunk";
      track: string;
      kind: "video" | "audio";
      data: ArrayBuffer;
      /** Capture wall-clock time, µs since the Unix epoch (the LOC TIMESTAMP). */
      timestamp: number;
      key: boolean;
    }
  | { type: "stats"; video: RenditionStats[]; audio?: { kbps: number; frames: number } }
  /** `track`: that track cannot go on (its encoder failed); the others can. */
  | { type: "error"; message: string; track?: string }
  | { type: "stopped" };

/** The simulcast ladder: each rung no larger than the source, largest first. */
export function renditionsFor(width: number, height: number): Rendition[] {
  const ladder = [
    { height: 1080, bitrate: 4_500_000 },
    { height: 720, bitrate: 2_500_000 },
    { height: 360, bitrate: 800_000 },
  ];
  const out: Rendition[] = [];
  for (const r of ladder) {
    if (r.height > height) continue;
    // Even dimensions, the source's aspect ratio.
    const w = Math.round((width * r.height) / height / 2) * 2;
    out.push({ track: `video${out.length}`, width: w, height: r.height, bitrate: r.bitrate });
  }
  if (out.length === 0) out.push({ track: "video0", width, height, bitrate: 600_000 });
  return out;
}

/** The WebCodecs codec string for a rendition of `height` lines. */
export function codecString(codec: VideoCodecChoice, height: number): string {
  if (codec === "vp9") return "vp09.00.40.08";
  if (codec === "av1") return height > 720 ? "av01.0.08M.08" : "av01.0.05M.08";
  // Constrained Baseline: level 4.0 for 1080p, 3.1 up to 720p.
  return height > 720 ? "avc1.42e028" : "avc1.42e01f";
}
