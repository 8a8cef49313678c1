// LOC objects (draft-ietf-moq-loc): the payload is one frame as WebCodecs takes it; metadata is in properties.

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

/** Reads a LOC object's properties; undefined without a TIMESTAMP (not a LOC media object). */
export function readLoc(p: Properties): LocFrame | undefined {
  const ts = p.getInt(LocProperty.TIMESTAMP);
  if (ts === undefined) return undefined;
  const scale = p.getInt(LocProperty.TIMESCALE);
  const marking = p.getBytes(LocProperty.VIDEO_FRAME_MARKING);
  return {
    timestamp: scale ? (ts * 1_000_000) / scale : ts,
    // RFC 9626 frame marking: S 0x80, E 0x40, I (independent) 0x20.
    keyframe: marking && marking.length > 0 ? ((marking[0] as number) & 0x20) !== 0 : undefined,
    config: p.getBytes(LocProperty.VIDEO_CONFIG),
    publishTime: p.getInt(LocProperty.PUBLISH_TIME),
  };
}
