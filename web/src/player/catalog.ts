// The MSF catalog (draft-ietf-moq-msf) as moq-pub and `moq-relay --demo` publish it: JSON in object 0 of each
// group of the `catalog` track. Unknown fields are ignored; anything malformed is a clear error.

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
}

/** The root field the studio adds for the channel list (title, streamer, stamp); MSF players ignore it. */
export const CHANNEL_FIELD = "com.moq-web.channel";

export class CatalogError extends Error {
  override name = "CatalogError";
}

function base64(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

const str = (v: unknown) => (typeof v === "string" ? v : undefined);
const num = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : undefined);

export function parseCatalog(bytes: Uint8Array): Catalog {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new CatalogError("the catalog is not JSON");
  }
  if (!json || typeof json !== "object" || Array.isArray(json))
    throw new CatalogError("the catalog is not an object");
  const root = json as Record<string, unknown>;
  if (root.deltaUpdate !== undefined) throw new CatalogError("delta catalog updates are not supported yet");
  const inits = new Map<string, Uint8Array>();
  for (const e of Array.isArray(root.initDataList) ? root.initDataList : []) {
    const id = str(e?.id);
    const data = str(e?.data);
    if (id && data && (e.type === undefined || e.type === "inline")) {
      try {
        inits.set(id, base64(data));
      } catch {
        throw new CatalogError(`initDataList entry ${id} is not base64`);
      }
    }
  }
  const tracks: CatalogTrack[] = [];
  for (const t of Array.isArray(root.tracks) ? root.tracks : []) {
    const name = str(t?.name);
    const codec = str(t?.codec);
    if (!name || !codec) continue;
    const track: CatalogTrack = {
      name,
      codec,
      role: str(t.role) ?? (num(t.width) ? "video" : num(t.samplerate) ? "audio" : "unknown"),
      packaging: str(t.packaging) ?? "loc",
    };
    for (const k of [
      "width",
      "height",
      "framerate",
      "bitrate",
      "samplerate",
      "altGroup",
      "renderGroup",
    ] as const) {
      const v = num(t[k]);
      if (v !== undefined) track[k] = v;
    }
    const channels = t.channelConfig;
    if (typeof channels === "string" || typeof channels === "number") track.channelConfig = String(channels);
    const ref = str(t.initRef);
    const inline = str(t.initData);
    if (ref && inits.has(ref)) track.init = inits.get(ref) as Uint8Array;
    else if (inline) track.init = base64(inline);
    tracks.push(track);
  }
  const channel = root[CHANNEL_FIELD] as Record<string, unknown> | undefined;
  return { tracks, complete: root.isComplete === true, stamped: channel?.stamp === true };
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
  const size = t.height ? `${t.height}p` : t.name;
  return t.bitrate ? `${size} (${Math.round(t.bitrate / 1000)} kb/s)` : size;
}
