// The data plane (draft-19 §10), byte-identical in -18 and -19: stream types, SUBGROUP_HEADER and its objects,
// FETCH_HEADER and fetch entries, OBJECT_DATAGRAM.

import { Reader, Writer } from "./buffer.ts";
import { DecodeError, EncodeError } from "./errors.ts";
import { Properties } from "./kvp.ts";
import type { Location } from "./params.ts";

/** An End of Range entry's object id meaning "the rest of the group" (2^62 - 1 on the wire). */
export const LAST_OBJECT = Number.MAX_SAFE_INTEGER;
const LARGEST_VARINT = (1n << 62n) - 1n;

export const STREAM_FETCH = 0x05;
export const STREAM_SETUP = 0x2f00;
export const STREAM_PADDING = 0x132b3e28;
export const DATAGRAM_PADDING = 0x132b3e29;

export const ObjectStatus = { NORMAL: 0, END_OF_GROUP: 3, END_OF_TRACK: 4 } as const;
export type ObjectStatusValue = (typeof ObjectStatus)[keyof typeof ObjectStatus];

function status(v: number): ObjectStatusValue {
  if (v === 0 || v === 3 || v === 4) return v;
  throw new DecodeError(`object status ${v}`);
}

export type StreamKind = "control" | "fetch" | "padding" | "subgroup";

/** What a unidirectional stream's type says it is; unknown types are a protocol violation. */
export function streamKind(type: number): StreamKind {
  if (type === STREAM_SETUP) return "control";
  if (type === STREAM_FETCH) return "fetch";
  if (type === STREAM_PADDING) return "padding";
  if (isSubgroupType(type)) return "subgroup";
  throw new DecodeError(`unknown stream type 0x${type.toString(16)}`);
}

// ---- subgroups ----

const SG = {
  PROPERTIES: 0x01,
  MODE: 0x06,
  END_OF_GROUP: 0x08,
  FORM: 0x10,
  DEFAULT_PRIORITY: 0x20,
  FIRST: 0x40,
};

export function isSubgroupType(t: number): boolean {
  return t < 0x80 && (t & SG.FORM) !== 0 && (t & SG.MODE) !== SG.MODE;
}

export interface SubgroupHeader {
  trackAlias: bigint;
  groupId: number;
  /** 0: Subgroup ID 0; 1: the first object's id; 2: `subgroupId` is sent. */
  subgroupMode: 0 | 1 | 2;
  subgroupId?: number;
  /** Absent: the subscription's default priority applies. */
  publisherPriority?: number;
  hasProperties: boolean;
  endOfGroup: boolean;
  firstObject: boolean;
}

export function subgroupType(h: SubgroupHeader): number {
  let t = SG.FORM | (h.subgroupMode << 1);
  if (h.hasProperties) t |= SG.PROPERTIES;
  if (h.endOfGroup) t |= SG.END_OF_GROUP;
  if (h.publisherPriority === undefined) t |= SG.DEFAULT_PRIORITY;
  if (h.firstObject) t |= SG.FIRST;
  return t;
}

/** Decodes a SUBGROUP_HEADER after its type. */
export function decodeSubgroupHeader(type: number, r: Reader): SubgroupHeader {
  if (!isSubgroupType(type)) throw new DecodeError(`subgroup header type 0x${type.toString(16)}`);
  const trackAlias = r.varintBig();
  const groupId = r.varint();
  const subgroupMode = ((type & SG.MODE) >> 1) as 0 | 1 | 2;
  const h: SubgroupHeader = {
    trackAlias,
    groupId,
    subgroupMode,
    hasProperties: (type & SG.PROPERTIES) !== 0,
    endOfGroup: (type & SG.END_OF_GROUP) !== 0,
    firstObject: (type & SG.FIRST) !== 0,
  };
  if (subgroupMode === 2) h.subgroupId = r.varint();
  if ((type & SG.DEFAULT_PRIORITY) === 0) h.publisherPriority = r.u8();
  return h;
}

export function encodeSubgroupHeader(w: Writer, h: SubgroupHeader): void {
  w.varint(subgroupType(h)).varint(h.trackAlias).varint(h.groupId);
  if (h.subgroupMode === 2) w.varint(h.subgroupId ?? 0);
  if (h.publisherPriority !== undefined) w.u8(h.publisherPriority);
}

export interface SubgroupObject {
  objectId: number;
  properties: Properties;
  status: ObjectStatusValue;
  payload: Uint8Array;
}

/** Reads the objects of one subgroup stream, keeping the Object ID delta state. */
export class SubgroupReader {
  private prev: number | undefined;
  private ended = false;

  constructor(readonly header: SubgroupHeader) {}

  /** The Subgroup ID, once known (mode 1 needs the first object). */
  get subgroupId(): number | undefined {
    if (this.header.subgroupMode === 0) return 0;
    if (this.header.subgroupMode === 2) return this.header.subgroupId;
    return this.firstId;
  }

  private firstId: number | undefined;

  /** Decodes one whole object from the start of `data`; throws ShortError (state unchanged) if incomplete. */
  read(data: Uint8Array): { object: SubgroupObject; used: number } {
    const r = new Reader(data);
    const delta = r.varint();
    const objectId = this.prev === undefined ? delta : this.prev + delta + 1;
    if (!Number.isSafeInteger(objectId)) throw new DecodeError("object id overflows");
    const properties = this.header.hasProperties ? Properties.decodeBlock(r) : new Properties();
    const len = r.varint();
    const st = len === 0 ? status(r.varint()) : ObjectStatus.NORMAL;
    if (st !== ObjectStatus.NORMAL && properties.size > 0)
      throw new DecodeError("properties on a status object");
    if (this.ended) throw new DecodeError("object after the end of the group or track");
    const payload = r.bytes(len);
    this.prev = objectId;
    this.firstId ??= objectId;
    if (st !== ObjectStatus.NORMAL) this.ended = true;
    return { object: { objectId, properties, status: st, payload }, used: r.pos };
  }
}

/** Writes the objects of one subgroup stream, computing the Object ID deltas. */
export class SubgroupWriter {
  private prev: number | undefined;

  constructor(readonly header: SubgroupHeader) {}

  header_(w: Writer): void {
    encodeSubgroupHeader(w, this.header);
  }

  object(w: Writer, o: SubgroupObject): void {
    if (this.prev !== undefined && o.objectId <= this.prev) throw new EncodeError("object ids must increase");
    w.varint(this.prev === undefined ? o.objectId : o.objectId - this.prev - 1);
    if (this.header.hasProperties) o.properties.encodeBlock(w);
    else if (o.properties.size > 0)
      throw new EncodeError("properties on a stream without the PROPERTIES bit");
    w.varint(o.payload.length);
    if (o.payload.length === 0) w.varint(o.status);
    else if (o.status !== ObjectStatus.NORMAL) throw new EncodeError("a status object has no payload");
    w.bytes(o.payload);
    this.prev = o.objectId;
  }
}

// ---- fetch streams ----

const F = { MODE: 0x03, OBJECT: 0x04, GROUP: 0x08, PRIORITY: 0x10, PROPERTIES: 0x20, DATAGRAM: 0x40 };
const END_OF_NON_EXISTENT_RANGE = 0x8c;
const END_OF_UNKNOWN_RANGE = 0x10c;

export type FetchEntry =
  | {
      groupId: number;
      /** Absent for an object with the Datagram forwarding preference. */
      subgroupId?: number;
      objectId: number;
      publisherPriority: number;
      properties: Properties;
      payload: Uint8Array;
    }
  | { endOfRange: true; unknown: boolean; end: Location };

/** Reads the entries of a fetch stream after its FETCH_HEADER, resolving the "prior object" references. */
export class FetchReader {
  private location: Location | undefined;
  private subgroup: number | undefined;
  private priority: number | undefined;

  /** `groupOrder` 1 ascending, 2 descending (the FETCH's). */
  constructor(readonly groupOrder: 1 | 2 = 1) {}

  read(data: Uint8Array): { entry: FetchEntry; used: number } {
    const r = new Reader(data);
    const flags = r.varint();
    if (flags === END_OF_NON_EXISTENT_RANGE || flags === END_OF_UNKNOWN_RANGE) {
      // The object may be the largest varint, 2^62 - 1, for "the rest of the group" (what moq-relay sends for
      // history it never held): it reads as LAST_OBJECT and is written back as 2^62 - 1.
      const group = r.varint();
      const object = r.varintBig();
      const end = { group, object: object > BigInt(LAST_OBJECT) ? LAST_OBJECT : Number(object) };
      this.location = end;
      return { entry: { endOfRange: true, unknown: flags === END_OF_UNKNOWN_RANGE, end }, used: r.pos };
    }
    if (flags >= 128) throw new DecodeError(`serialization flags 0x${flags.toString(16)}`);
    const prior = this.location;
    const groupChanged = (flags & F.GROUP) !== 0;
    let groupId: number;
    if (groupChanged) {
      const d = r.varint();
      groupId = prior === undefined ? d : this.groupOrder === 1 ? prior.group + d + 1 : prior.group - d - 1;
      if (groupId < 0 || !Number.isSafeInteger(groupId)) throw new DecodeError("group id out of range");
    } else if (prior) {
      groupId = prior.group;
    } else {
      throw new DecodeError("first fetch object without a group id");
    }
    let subgroupId: number | undefined;
    if ((flags & F.DATAGRAM) === 0) {
      const mode = flags & F.MODE;
      if (mode === 0) subgroupId = 0;
      else if (mode === 3) subgroupId = r.varint();
      else if (this.subgroup === undefined) throw new DecodeError("no prior subgroup");
      else subgroupId = this.subgroup + (mode === 2 ? 1 : 0);
    }
    let objectId: number;
    if (flags & F.OBJECT) {
      const d = r.varint();
      objectId = prior && !groupChanged ? prior.object + d : d;
    } else if (prior) {
      objectId = prior.object + 1;
    } else {
      throw new DecodeError("first fetch object without an object id");
    }
    if (!Number.isSafeInteger(objectId)) throw new DecodeError("object id overflows");
    let publisherPriority: number;
    if (flags & F.PRIORITY) publisherPriority = r.u8();
    else if (this.priority !== undefined) publisherPriority = this.priority;
    else throw new DecodeError("no prior priority");
    const properties = flags & F.PROPERTIES ? Properties.decodeBlock(r) : new Properties();
    const payload = r.bytes(r.varint());
    this.location = { group: groupId, object: objectId };
    this.subgroup = subgroupId;
    this.priority = publisherPriority;
    const entry: FetchEntry = { groupId, objectId, publisherPriority, properties, payload };
    if (subgroupId !== undefined) entry.subgroupId = subgroupId;
    return { entry, used: r.pos };
  }
}

/** Writes fetch entries, using the shortest references to the prior object. */
export class FetchWriter {
  private location: Location | undefined;
  private subgroup: number | undefined;
  private priority: number | undefined;

  constructor(readonly groupOrder: 1 | 2 = 1) {}

  entry(w: Writer, e: FetchEntry): void {
    if ("endOfRange" in e) {
      w.varint(e.unknown ? END_OF_UNKNOWN_RANGE : END_OF_NON_EXISTENT_RANGE)
        .varint(e.end.group)
        .varint(e.end.object === LAST_OBJECT ? LARGEST_VARINT : e.end.object);
      this.location = e.end;
      return;
    }
    const prior = this.location;
    let flags = 0;
    const fields = new Writer();
    let groupDelta: number | undefined;
    if (!prior) groupDelta = e.groupId;
    else if (e.groupId !== prior.group) {
      groupDelta = this.groupOrder === 1 ? e.groupId - prior.group - 1 : prior.group - e.groupId - 1;
      if (groupDelta < 0) throw new EncodeError("fetch groups out of order");
    }
    if (groupDelta !== undefined) {
      flags |= F.GROUP;
      fields.varint(groupDelta);
    }
    if (e.subgroupId === undefined) flags |= F.DATAGRAM;
    else if (e.subgroupId === 0) flags |= 0;
    else if (this.subgroup !== undefined && e.subgroupId === this.subgroup) flags |= 1;
    else if (this.subgroup !== undefined && e.subgroupId === this.subgroup + 1) flags |= 2;
    else {
      flags |= 3;
      fields.varint(e.subgroupId);
    }
    if (!prior || (groupDelta !== undefined && e.objectId !== prior.object + 1)) {
      flags |= F.OBJECT;
      fields.varint(e.objectId);
    } else if (groupDelta === undefined && e.objectId !== prior.object + 1) {
      if (e.objectId < prior.object) throw new EncodeError("fetch objects out of order");
      flags |= F.OBJECT;
      fields.varint(e.objectId - prior.object);
    }
    if (e.publisherPriority !== this.priority) {
      flags |= F.PRIORITY;
      fields.u8(e.publisherPriority);
    }
    if (e.properties.size > 0) {
      flags |= F.PROPERTIES;
      e.properties.encodeBlock(fields);
    }
    w.varint(flags).bytes(fields.finish()).varint(e.payload.length).bytes(e.payload);
    this.location = { group: e.groupId, object: e.objectId };
    this.subgroup = e.subgroupId;
    this.priority = e.publisherPriority;
  }
}

// ---- datagrams ----

const DG = {
  PROPERTIES: 0x01,
  END_OF_GROUP: 0x02,
  ZERO_OBJECT_ID: 0x04,
  DEFAULT_PRIORITY: 0x08,
  STATUS: 0x20,
};

export interface ObjectDatagram {
  trackAlias: bigint;
  groupId: number;
  objectId: number;
  publisherPriority?: number;
  properties: Properties;
  endOfGroup: boolean;
  /** Present when the datagram carries a status instead of a payload. */
  status?: ObjectStatusValue;
  payload?: Uint8Array;
}

/** Decodes one datagram; `undefined` for a padding datagram. A datagram is never continued: short is malformed. */
export function decodeDatagram(data: Uint8Array): ObjectDatagram | undefined {
  const r = new Reader(data, true, "datagram");
  const type = r.varint();
  if (type === DATAGRAM_PADDING) return undefined;
  if ((type & ~0x2f) !== 0 || ((type & DG.STATUS) !== 0 && (type & DG.END_OF_GROUP) !== 0)) {
    throw new DecodeError(`datagram type 0x${type.toString(16)}`);
  }
  const trackAlias = r.varintBig();
  const groupId = r.varint();
  const objectId = type & DG.ZERO_OBJECT_ID ? 0 : r.varint();
  const d: ObjectDatagram = {
    trackAlias,
    groupId,
    objectId,
    properties: new Properties(),
    endOfGroup: (type & DG.END_OF_GROUP) !== 0,
  };
  if ((type & DG.DEFAULT_PRIORITY) === 0) d.publisherPriority = r.u8();
  if (type & DG.PROPERTIES) {
    const len = r.varint();
    if (len === 0) throw new DecodeError("empty properties in a datagram");
    d.properties = Properties.decodeAll(r.sub(len, "properties"));
  }
  if (type & DG.STATUS) {
    d.status = status(r.varint());
    if (d.status !== ObjectStatus.NORMAL && d.properties.size > 0) {
      throw new DecodeError("properties on a status object");
    }
    if (!r.done) throw new DecodeError("bytes after a datagram status");
  } else {
    d.payload = r.rest();
  }
  return d;
}

export function encodeDatagram(d: ObjectDatagram): Uint8Array {
  let type = 0;
  if (d.properties.size > 0) type |= DG.PROPERTIES;
  if (d.endOfGroup) type |= DG.END_OF_GROUP;
  if (d.objectId === 0) type |= DG.ZERO_OBJECT_ID;
  if (d.publisherPriority === undefined) type |= DG.DEFAULT_PRIORITY;
  if (d.status !== undefined) type |= DG.STATUS;
  if (d.status !== undefined && d.endOfGroup) throw new EncodeError("a status datagram cannot end the group");
  const w = new Writer();
  w.varint(type).varint(d.trackAlias).varint(d.groupId);
  if (d.objectId !== 0) w.varint(d.objectId);
  if (d.publisherPriority !== undefined) w.u8(d.publisherPriority);
  if (d.properties.size > 0) d.properties.encodeBlock(w);
  if (d.status !== undefined) w.varint(d.status);
  else w.bytes(d.payload ?? new Uint8Array());
  return w.finish();
}
