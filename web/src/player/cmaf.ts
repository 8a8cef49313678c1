// CMAF objects (draft-ietf-moq-cmsf): each object is one moof + mdat holding one sample; the catalog's init data
// is the track's init segment (ftyp + moov). Only what the decoder needs is read: the sample entry's codec
// configuration, the timescale, and per fragment the sample's bytes, time and sync flag. A publisher may be
// hostile: an init segment over 1 MiB, a visual sample entry wider or taller than 8192, and a sample time beyond
// 2^53 are refused.

import { MAX_CODED_SIZE, MAX_CONFIG_BYTES } from "./loc.ts";

export class CmafError extends Error {
  override name = "CmafError";
}

interface Box {
  type: string;
  /** Start of the box and of its payload, and its end, as offsets into the buffer. */
  start: number;
  body: number;
  end: number;
}

function boxes(d: Uint8Array, from: number, to: number): Box[] {
  const v = new DataView(d.buffer, d.byteOffset, d.byteLength);
  const out: Box[] = [];
  let at = from;
  while (at + 8 <= to) {
    let size = v.getUint32(at);
    const type = String.fromCharCode(d[at + 4] ?? 0, d[at + 5] ?? 0, d[at + 6] ?? 0, d[at + 7] ?? 0);
    let body = at + 8;
    if (size === 1) {
      if (at + 16 > to) throw new CmafError("truncated box header");
      size = Number(v.getBigUint64(at + 8));
      body = at + 16;
    } else if (size === 0) {
      size = to - at;
    }
    if (size < body - at || at + size > to) throw new CmafError(`box ${type} overruns its container`);
    out.push({ type, start: at, body, end: at + size });
    at += size;
  }
  return out;
}

function child(
  d: Uint8Array,
  parent: { body: number; end: number },
  type: string,
  skip = 0,
): Box | undefined {
  return boxes(d, parent.body + skip, parent.end).find((b) => b.type === type);
}

function path(d: Uint8Array, root: Box, types: string[]): Box | undefined {
  let b: Box | undefined = root;
  for (const t of types) {
    b = b && child(d, b, t);
  }
  return b;
}

export interface CmafInit {
  timescale: number;
  /** The sample entry type: avc1, av01, vp09, Opus, mp4a, ... */
  format: string;
  /** The WebCodecs description: avcC / hvcC / av1C contents, or AAC's AudioSpecificConfig. */
  description?: Uint8Array;
  /** A visual sample entry's width and height, unless 0 (which says nothing). */
  width?: number;
  height?: number;
}

/** Runs a parser, turning out-of-bounds reads of a malformed box into a CmafError. */
function guarded<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof RangeError) throw new CmafError(`malformed box: ${e.message}`);
    throw e;
  }
}

/** Reads the first track of an init segment. */
export function parseInit(init: Uint8Array): CmafInit {
  return guarded(() => readInit(init));
}

/** Reads the first sample of a moof + mdat object. */
export function parseFragment(obj: Uint8Array): CmafSample {
  return guarded(() => readFragment(obj));
}

function readInit(init: Uint8Array): CmafInit {
  if (init.length > MAX_CONFIG_BYTES)
    throw new CmafError(`init segment of ${init.length} bytes, over ${MAX_CONFIG_BYTES} (1 MiB)`);
  const moov = boxes(init, 0, init.length).find((b) => b.type === "moov");
  const trak = moov && child(init, moov, "trak");
  const mdia = trak && child(init, trak, "mdia");
  const mdhd = mdia && child(init, mdia, "mdhd");
  const stsd = mdia && path(init, mdia, ["minf", "stbl", "stsd"]);
  if (!mdhd || !stsd) throw new CmafError("init segment without moov/trak/mdia/{mdhd,stbl/stsd}");
  const v = new DataView(init.buffer, init.byteOffset, init.byteLength);
  const timescale = v.getUint32(mdhd.body + ((init[mdhd.body] ?? 0) === 1 ? 20 : 12));
  // stsd: version/flags (4) + entry count (4), then the sample entries.
  const entry = boxes(init, stsd.body + 8, stsd.end)[0];
  if (!entry || timescale === 0) throw new CmafError("init segment without a sample entry or timescale");
  const out: CmafInit = { timescale, format: entry.type };
  const visual = ["avc1", "avc3", "hvc1", "hev1", "av01", "vp08", "vp09"].includes(entry.type);
  if (visual) {
    // VisualSampleEntry: 6 reserved, data_reference_index, 16 bytes pre_defined/reserved, then width, height.
    const width = v.getUint16(entry.body + 24);
    const height = v.getUint16(entry.body + 26);
    if (width > MAX_CODED_SIZE || height > MAX_CODED_SIZE)
      throw new CmafError(`sample entry size ${width}x${height} is over ${MAX_CODED_SIZE}`);
    if (width > 0 && height > 0) {
      out.width = width;
      out.height = height;
    }
  }
  // VisualSampleEntry fields take 78 bytes, AudioSampleEntry (v0) 28, before the child boxes.
  const inner = boxes(init, entry.body + (visual ? 78 : 28), entry.end);
  const config = inner.find((b) => ["avcC", "hvcC", "av1C"].includes(b.type));
  if (config) out.description = init.slice(config.body, config.end);
  const esds = inner.find((b) => b.type === "esds");
  if (esds) {
    const asc = audioSpecificConfig(init.subarray(esds.body + 4, esds.end));
    if (asc) out.description = asc;
  }
  return out;
}

/** The DecoderSpecificInfo (tag 5) inside an ES_Descriptor. */
function audioSpecificConfig(d: Uint8Array): Uint8Array | undefined {
  let at = 0;
  while (at < d.length) {
    const tag = d[at++] as number;
    let len = 0;
    for (let i = 0; i < 4 && at < d.length; i++) {
      const b = d[at++] as number;
      len = (len << 7) | (b & 0x7f);
      if (!(b & 0x80)) break;
    }
    if (tag === 0x05) return d.slice(at, at + len);
    // ES_Descriptor (3) and DecoderConfigDescriptor (4) contain the others after fixed fields.
    if (tag === 0x03) at += 3;
    else if (tag === 0x04) at += 13;
    else at += len;
  }
  return undefined;
}

export interface CmafSample {
  data: Uint8Array;
  /** Presentation time in the track's timescale. */
  pts: number;
  key: boolean;
}

function readFragment(obj: Uint8Array): CmafSample {
  const top = boxes(obj, 0, obj.length);
  const moof = top.find((b) => b.type === "moof");
  const mdat = top.find((b) => b.type === "mdat");
  const traf = moof && child(obj, moof, "traf");
  const tfhd = traf && child(obj, traf, "tfhd");
  const trun = traf && child(obj, traf, "trun");
  if (!moof || !mdat || !tfhd || !trun)
    throw new CmafError("object is not a moof/traf/{tfhd,trun} + mdat fragment");
  const v = new DataView(obj.buffer, obj.byteOffset, obj.byteLength);
  const tfdt = child(obj, traf, "tfdt");
  let decodeTime = 0;
  if (tfdt)
    decodeTime = obj[tfdt.body] === 1 ? Number(v.getBigUint64(tfdt.body + 4)) : v.getUint32(tfdt.body + 4);
  if (!Number.isSafeInteger(decodeTime)) throw new CmafError("decode time beyond 2^53");
  // tfhd: flags, track id, then optional fields in flag order.
  const hf = v.getUint32(tfhd.body) & 0xffffff;
  let at = tfhd.body + 8;
  if (hf & 0x01) at += 8;
  if (hf & 0x02) at += 4;
  if (hf & 0x08) at += 4;
  let size = 0;
  if (hf & 0x10) {
    size = v.getUint32(at);
    at += 4;
  }
  let flags = hf & 0x20 ? v.getUint32(at) : 0;
  // trun: flags, sample count, optional data offset and first-sample flags, then the first sample's fields.
  const rf = v.getUint32(trun.body) & 0xffffff;
  let t = trun.body + 8;
  let dataOffset: number | undefined;
  if (rf & 0x01) {
    dataOffset = v.getInt32(t);
    t += 4;
  }
  if (rf & 0x04) {
    flags = v.getUint32(t);
    t += 4;
  }
  if (rf & 0x100) t += 4;
  if (rf & 0x200) {
    size = v.getUint32(t);
    t += 4;
  }
  if (rf & 0x400 && !(rf & 0x04)) flags = v.getUint32(t);
  if (rf & 0x400) t += 4;
  const cto = rf & 0x800 ? (obj[trun.body] === 1 ? v.getInt32(t) : v.getUint32(t)) : 0;
  // default-base-is-moof: the data offset counts from the moof; without one the sample starts the mdat payload.
  const start = dataOffset !== undefined ? moof.start + dataOffset : mdat.body;
  if (size === 0) size = mdat.end - start;
  if (start < mdat.body || start + size > mdat.end) throw new CmafError("sample outside its mdat");
  // sample_is_non_sync_sample is bit 16 of the sample flags.
  return { data: obj.subarray(start, start + size), pts: decodeTime + cto, key: (flags & 0x10000) === 0 };
}
