// The one validating parser of an MSF catalog. The catalog comes from a publisher, who may be hostile: every
// field is checked against the limits below before the page uses it, and nothing it contains is ever echoed in an
// error (errors name tracks by their index).
//
// The whole catalog is refused (an error string) when it is over 4 MiB, not UTF-8, nested deeper than 32, not a
// JSON object, a delta update, lists more than 64 tracks or 128 initDataList entries, has an initDataList entry
// whose data is not base64 or decodes to more than 256 KiB, or when it lists tracks and none of them is valid.
// A track with any known field out of its limits, a duplicate name or an initRef to nothing is dropped with a
// warning, and the rest plays. Unknown fields are ignored, and so are root fields of the wrong type (`tracks`
// that is not an array counts as no tracks; an invalid channel title as no title, with a warning).

import type { Catalog, CatalogTrack } from "./catalog.ts";

/** The root field the studio adds for the channel list (title, streamer, stamp); MSF players ignore it. */
export const CHANNEL_FIELD = "com.moq-web.channel";

export const LIMITS = {
  catalogBytes: 4 << 20,
  depth: 32,
  tracks: 64,
  initEntries: 128,
  /** Track names, initData ids and namespace parts: UTF-8 bytes. */
  nameBytes: 256,
  namespaceParts: 32,
  /** Labels and titles: characters (code points). */
  textChars: 256,
  initBytes: 256 * 1024,
  dimension: 8192,
  framerate: 240,
  bitrate: 1e9,
  samplerate: 384_000,
  channels: 32,
  timescale: 2 ** 32 - 1,
  group: 2 ** 32 - 1,
} as const;

/** A WebCodecs codec string: avc1.42e01f, opus, mp4a.40.2, vp09.00.31.08, av01.0.08M.08, ... */
export const CODEC = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** role and packaging: a short token. */
const TOKEN = /^[A-Za-z][A-Za-z0-9_-]{0,31}$/;
/**
 * What a printable string may not contain: control characters (C0, DEL, C1), lone surrogates, line and paragraph
 * separators, bidirectional overrides and isolates, the BOM and interlinear annotation marks.
 */
const UNPRINTABLE = /[\p{Cc}\p{Cs}\p{Zl}\p{Zp}\u202A-\u202E\u2066-\u2069\uFEFF\uFFF9-\uFFFB]/u;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

export type CatalogResult = { ok: true; catalog: Catalog; warnings: string[] } | { ok: false; error: string };

const utf8Length = (s: string) => new TextEncoder().encode(s).length;

/** A name (track, initData id, namespace part): 1 to 256 bytes of UTF-8, printable. */
export function checkName(v: unknown): string | undefined {
  if (typeof v !== "string" || v.length === 0 || v.length > LIMITS.nameBytes || UNPRINTABLE.test(v)) return;
  return utf8Length(v) <= LIMITS.nameBytes ? v : undefined;
}

/** A label or title: at most 256 characters, printable (may be empty). */
export function checkText(v: unknown): string | undefined {
  if (typeof v !== "string" || v.length > 2 * LIMITS.textChars || UNPRINTABLE.test(v)) return;
  let chars = 0;
  for (const _ of v) chars++;
  return chars <= LIMITS.textChars ? v : undefined;
}

/** A `/`-separated namespace: 1 to 32 parts, each a valid name. */
export function checkNamespace(v: unknown): string | undefined {
  if (typeof v !== "string") return;
  const parts = v.split("/");
  if (parts.length > LIMITS.namespaceParts || !parts.every((p) => checkName(p) !== undefined)) return;
  return v;
}

function int(v: unknown, min: number, max: number): number | undefined {
  return typeof v === "number" && Number.isInteger(v) && v >= min && v <= max ? v : undefined;
}

/** Base64 (padding optional) of at most 256 KiB, decoded; undefined if it is not. */
function base64(v: unknown): Uint8Array | undefined {
  if (typeof v !== "string" || v.length % 4 === 1 || !BASE64.test(v)) return;
  if (v.includes("=") && v.length % 4 !== 0) return;
  if (Math.floor((v.replace(/=+$/, "").length * 3) / 4) > LIMITS.initBytes) return;
  try {
    const bin = atob(v);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  } catch {
    return;
  }
}

/** The deepest nesting of arrays and objects in JSON text, or Infinity once it passes `limit`. */
function depth(text: string, limit: number): number {
  let d = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++d > limit) return Number.POSITIVE_INFINITY;
      if (d > max) max = d;
    } else if (c === 0x5d || c === 0x7d) d--;
  }
  return max;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** The optional numeric fields of a track: each checker returns undefined for a value out of its limits. */
const NUMBERS: [keyof CatalogTrack & string, (v: unknown) => number | undefined][] = [
  ["width", (v) => int(v, 1, LIMITS.dimension)],
  ["height", (v) => int(v, 1, LIMITS.dimension)],
  ["framerate", (v) => (typeof v === "number" && v > 0 && v <= LIMITS.framerate ? v : undefined)],
  ["bitrate", (v) => (typeof v === "number" && v >= 0 && v <= LIMITS.bitrate ? v : undefined)],
  ["samplerate", (v) => int(v, 1, LIMITS.samplerate)],
  ["timescale", (v) => int(v, 1, LIMITS.timescale)],
  ["altGroup", (v) => int(v, 0, LIMITS.group)],
  ["renderGroup", (v) => int(v, 0, LIMITS.group)],
];

/** One track, or why it is dropped. */
function checkTrack(t: unknown, inits: Map<string, Uint8Array>): CatalogTrack | string {
  if (!isObject(t)) return "not an object";
  const name = checkName(t.name);
  if (name === undefined) return "no valid name (1-256 bytes, printable)";
  if (typeof t.codec !== "string" || !CODEC.test(t.codec)) return "no valid codec string";
  const track: CatalogTrack = { name, codec: t.codec, role: "unknown", packaging: "loc" };
  for (const [key, check] of NUMBERS) {
    if (t[key] === undefined) continue;
    const v = check(t[key]);
    if (v === undefined) return `${key} out of range`;
    (track as unknown as Record<string, number>)[key] = v;
  }
  for (const key of ["role", "packaging"] as const) {
    const v = t[key];
    if (v === undefined) continue;
    if (typeof v !== "string" || !TOKEN.test(v)) return `${key} is not a short token`;
    track[key] = v;
  }
  if (t.role === undefined) track.role = track.width ? "video" : track.samplerate ? "audio" : "unknown";
  if (t.channelConfig !== undefined) {
    const c = t.channelConfig;
    const n = typeof c === "string" && /^[0-9]{1,2}$/.test(c) ? Number(c) : c;
    if (int(n, 1, LIMITS.channels) === undefined) return "channelConfig is not 1-32 channels";
    track.channelConfig = String(n);
  }
  if (t.namespace !== undefined) {
    const ns = checkNamespace(t.namespace);
    if (ns === undefined) return "namespace is not 1-32 valid parts";
    track.namespace = ns;
  }
  if (t.label !== undefined) {
    const label = checkText(t.label);
    if (label === undefined) return "label is not printable text of at most 256 characters";
    track.label = label;
  }
  if (t.initRef !== undefined) {
    const init = inits.get(checkName(t.initRef) ?? "");
    if (!init) return "initRef names no initDataList entry";
    track.init = init;
  } else if (t.initData !== undefined) {
    const init = base64(t.initData);
    if (!init) return "initData is not base64 of at most 256 KiB";
    track.init = init;
  }
  return track;
}

/** Parses and checks a catalog object's payload. Never throws. */
export function checkCatalog(bytes: Uint8Array): CatalogResult {
  const fail = (error: string): CatalogResult => ({ ok: false, error: `invalid catalog: ${error}` });
  if (bytes.length > LIMITS.catalogBytes) return fail("larger than 4 MiB");
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return fail("not UTF-8");
  }
  if (depth(text, LIMITS.depth) > LIMITS.depth) return fail(`nested deeper than ${LIMITS.depth}`);
  let root: unknown;
  try {
    root = JSON.parse(text);
  } catch {
    return fail("not JSON");
  }
  if (!isObject(root)) return fail("not a JSON object");
  if (root.deltaUpdate !== undefined) return fail("delta catalog updates are not supported yet");

  const inits = new Map<string, Uint8Array>();
  const list = Array.isArray(root.initDataList) ? root.initDataList : [];
  if (list.length > LIMITS.initEntries) return fail(`more than ${LIMITS.initEntries} initDataList entries`);
  for (const [i, e] of list.entries()) {
    const id = isObject(e) ? checkName(e.id) : undefined;
    if (!isObject(e) || id === undefined || (e.type !== undefined && e.type !== "inline")) continue;
    const data = base64(e.data);
    if (!data) return fail(`initDataList entry ${i} is not base64 of at most 256 KiB`);
    inits.set(id, data);
  }

  const listed = Array.isArray(root.tracks) ? root.tracks : [];
  if (listed.length > LIMITS.tracks) return fail(`more than ${LIMITS.tracks} tracks (${listed.length})`);
  const tracks: CatalogTrack[] = [];
  const warnings: string[] = [];
  for (const [i, t] of listed.entries()) {
    const r = checkTrack(t, inits);
    if (typeof r !== "string" && tracks.some((x) => x.name === r.name))
      warnings.push(`track ${i} dropped: its name is taken by an earlier track`);
    else if (typeof r === "string") warnings.push(`track ${i} dropped: ${r}`);
    else tracks.push(r);
  }
  if (listed.length > 0 && tracks.length === 0) return fail(`no valid track (${warnings[0]})`);

  const catalog: Catalog = { tracks, complete: root.isComplete === true, stamped: false };
  const channel = root[CHANNEL_FIELD];
  if (isObject(channel)) {
    catalog.stamped = channel.stamp === true;
    if (channel.title !== undefined) {
      const title = checkText(channel.title);
      if (title === undefined)
        warnings.push("channel title ignored: not printable text of at most 256 characters");
      else if (title) catalog.title = title;
    }
  }
  return { ok: true, catalog, warnings };
}
