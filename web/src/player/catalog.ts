// The MSF catalog (draft-ietf-moq-msf) as moq-pub and `moq-relay --demo` publish it: JSON in object 0 of each
// group of the `catalog` track, as checked by catalog-check.ts.

import { checkCatalog } from "./catalog-check.ts";

export interface CatalogTrack {
  name: string;
  role: "video" | "audio" | string;
  packaging: string;
  codec: string;
  width?: number;
  height?: number;
  framerate?: number;
  bitrate?: number;
  samplerate?: number;
  /** CMAF tracks: the MP4 timescale. */
  timescale?: number;
  channelConfig?: string;
  altGroup?: number;
  renderGroup?: number;
  /** The track's namespace, when not the broadcast's own (not used for playback). */
  namespace?: string;
  /** A human-readable name for the rendition menu. */
  label?: string;
  /** LOC: the WebCodecs `description` (avcC, OpusHead, ...); CMAF: the init segment. From initDataList or
   * legacy inline initData. */
  init?: Uint8Array;
}

export interface Catalog {
  tracks: CatalogTrack[];
  /** The broadcast has ended. */
  complete: boolean;
  /** Video frames carry the glass-to-glass stamp (media/stamp.ts); from the studio's channel field. */
  stamped: boolean;
  /** The channel's title (from the studio's channel field). */
  title?: string;
}

export { CHANNEL_FIELD, checkCatalog } from "./catalog-check.ts";

export class CatalogError extends Error {
  override name = "CatalogError";
}

/**
 * The checked catalog (catalog-check.ts: the limits, what is refused and what dropped); a refused one is a
 * CatalogError. Dropped tracks are logged as warnings.
 */
export function parseCatalog(bytes: Uint8Array): Catalog {
  const r = checkCatalog(bytes);
  if (!r.ok) throw new CatalogError(r.error);
  for (const w of r.warnings) console.warn(`catalog: ${w}`);
  return r.catalog;
}

/** Video renditions, largest first. */
export function videoTracks(c: Catalog): CatalogTrack[] {
  return c.tracks
    .filter((t) => t.role === "video")
    .sort(
      (a, b) =>
        (b.height ?? 0) * (b.width ?? 0) - (a.height ?? 0) * (a.width ?? 0) ||
        (b.bitrate ?? 0) - (a.bitrate ?? 0),
    );
}

export function audioTrack(c: Catalog): CatalogTrack | undefined {
  return c.tracks.find((t) => t.role === "audio");
}

export function renditionLabel(t: CatalogTrack): string {
  if (t.label) return t.label;
  const size = t.height ? `${t.height}p` : t.name;
  return t.bitrate ? `${size} (${Math.round(t.bitrate / 1000)} kb/s)` : size;
}
