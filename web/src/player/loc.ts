// LOC objects (draft-ietf-moq-loc): the payload is one frame as WebCodecs takes it; metadata is in properties.
// Also the limits on what any publisher (LOC or CMAF) may hand the decoders: the publisher may be hostile.

import type { Properties } from "../wire/index.ts";

export const LocProperty = {
  TIMESCALE: 0x08,
  VIDEO_FRAME_MARKING: 0x09,
  VIDEO_CONFIG: 0x0d,
  TIMESTAMP: 0x10,
  /** Ours: wall-clock µs since the Unix epoch when the publisher wrote the object. */
  PUBLISH_TIME: 0x3a10,
} as const;

export interface LocFrame {
  /** Presentation time, µs (LOC's default timescale; a TIMESCALE property is honoured). */
  timestamp: number;
  /** A keyframe per VIDEO_FRAME_MARKING, or undefined when not marked. */
  keyframe: boolean | undefined;
  /** In-band decoder configuration (VIDEO_CONFIG). */
  config: Uint8Array | undefined;
  /** PUBLISH_TIME in µs since the epoch, if present. */
  publishTime: number | undefined;
}

/** A LOC media object this player cannot use (its TIMESTAMP is out of range). */
export class LocError extends Error {
  override name = "LocError";
}

/**
 * Reads a LOC object's properties; undefined without a TIMESTAMP (not a LOC media object). A TIMESTAMP that is
 * not a whole number of µs up to 2^53 (after TIMESCALE) is a LocError.
 */
export function readLoc(p: Properties): LocFrame | undefined {
  const raw = p.getInt(LocProperty.TIMESTAMP);
  if (raw === undefined) {
    const present = p.pairs.some((x) => x.key === BigInt(LocProperty.TIMESTAMP) && "int" in x);
    if (present) throw new LocError("a LOC TIMESTAMP beyond 2^53");
    return undefined;
  }
  const scale = p.getInt(LocProperty.TIMESCALE);
  const timestamp = scale ? Math.round((raw * 1_000_000) / scale) : raw;
  if (!Number.isSafeInteger(timestamp))
    throw new LocError(`a LOC TIMESTAMP beyond 2^53 µs (timescale ${scale})`);
  const marking = p.getBytes(LocProperty.VIDEO_FRAME_MARKING);
  return {
    timestamp,
    // RFC 9626 frame marking: S 0x80, E 0x40, I (independent) 0x20.
    keyframe: marking && marking.length > 0 ? ((marking[0] as number) & 0x20) !== 0 : undefined,
    config: p.getBytes(LocProperty.VIDEO_CONFIG),
    publishTime: p.getInt(LocProperty.PUBLISH_TIME),
  };
}

// ---- what the decoders are given ----

/** The largest coded width or height a decoder is configured for, and the largest frame drawn. */
export const MAX_CODED_SIZE = 8192;
/** The largest decoder description (avcC, av1C, AudioSpecificConfig, OpusHead) or init segment, bytes. */
export const MAX_CONFIG_BYTES = 1 << 20;
/** A WebCodecs codec string: avc1.42e01f, opus, mp4a.40.2, vp09.00.31.08, av01.0.08M.08, ... */
export const CODEC_STRING = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const MAX_SAMPLE_RATE = 384_000;
export const MAX_CHANNELS = 32;

export interface DecoderInput {
  codec: string;
  description?: Uint8Array | undefined;
  /** Video: the coded size, when known. */
  width?: number | undefined;
  height?: number | undefined;
  /** Audio. */
  sampleRate?: number | undefined;
  channels?: number | undefined;
}

const inRange = (v: number | undefined, max: number) =>
  v === undefined || (Number.isInteger(v) && v >= 1 && v <= max);

/** Why a decoder configuration is refused before WebCodecs sees it, or undefined if it is within the limits. */
export function checkDecoderInput(kind: "video" | "audio", m: DecoderInput): string | undefined {
  if (!CODEC_STRING.test(m.codec)) return `the ${kind} track's codec is not a codec string`;
  const bytes = m.description?.byteLength ?? 0;
  if (bytes > MAX_CONFIG_BYTES)
    return `the ${kind} decoder configuration is ${bytes} bytes, over ${MAX_CONFIG_BYTES} (1 MiB)`;
  if (!inRange(m.width, MAX_CODED_SIZE) || !inRange(m.height, MAX_CODED_SIZE))
    return `the ${kind} coded size ${m.width}x${m.height} is outside 1-${MAX_CODED_SIZE}`;
  if (!inRange(m.sampleRate, MAX_SAMPLE_RATE))
    return `the audio sample rate ${m.sampleRate} is outside 1-384000`;
  if (!inRange(m.channels, MAX_CHANNELS)) return `${m.channels} audio channels is outside 1-32`;
  return undefined;
}

/** Whether a decoded frame's size may be drawn. */
export function drawableSize(width: number, height: number): boolean {
  return inRange(width, MAX_CODED_SIZE) && inRange(height, MAX_CODED_SIZE);
}

/** How long the browser gets to answer isConfigSupported, ms. */
export const SUPPORT_TIMEOUT_MS = 2000;

/**
 * Asks the browser (`isConfigSupported`) whether it can decode `config`: undefined if it can, else the error to
 * show. A refusal, a throw and no answer within SUPPORT_TIMEOUT_MS are all "cannot".
 */
export async function checkSupport<C extends { codec: string }>(
  kind: "video" | "audio",
  config: C,
  isConfigSupported: (c: C) => Promise<{ supported?: boolean }>,
  timeoutMs = SUPPORT_TIMEOUT_MS,
): Promise<string | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<{ supported?: boolean }>((resolve) => {
    timer = setTimeout(() => resolve({ supported: false }), timeoutMs);
  });
  const answer = await Promise.race([
    Promise.resolve()
      .then(() => isConfigSupported(config))
      .catch(() => ({ supported: false })),
    late,
  ]);
  clearTimeout(timer);
  if (answer?.supported === true) return undefined;
  const codec = CODEC_STRING.test(config.codec) ? config.codec : "(not a codec string)";
  return `this browser cannot decode the ${kind} codec ${codec}`;
}
