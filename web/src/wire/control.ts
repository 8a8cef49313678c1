// Control messages (draft-19 §9): `Type (vi64), Length (16), Body`. The body must be consumed exactly.

import { Reader, text, utf8, Writer } from "./buffer.ts";
import { DecodeError, EncodeError, SessionCode } from "./errors.ts";
import { MAX_REASON_LEN, Properties } from "./kvp.ts";
import {
  decodeFullName,
  decodeNamespace,
  encodeFullName,
  encodeNamespace,
  type Namespace,
} from "./namespace.ts";
import {
  type AuthToken,
  decodeLocation,
  decodeParams,
  decodeToken,
  encodeLocation,
  encodeParams,
  encodeToken,
  type Location,
  type Parameters,
} from "./params.ts";
import type { Version } from "./version.ts";

export const MAX_MESSAGE_LEN = 0xffff;
export const MAX_GOAWAY_URI_LEN = 8192;

export const MessageType = {
  SETUP: 0x2f00,
  GOAWAY: 0x10,
  SUBSCRIBE: 0x03,
  SUBSCRIBE_OK: 0x04,
  REQUEST_UPDATE: 0x02,
  PUBLISH: 0x1d,
  PUBLISH_DONE: 0x0b,
  FETCH: 0x16,
  FETCH_OK: 0x18,
  TRACK_STATUS: 0x0d,
  PUBLISH_NAMESPACE: 0x06,
  SUBSCRIBE_NAMESPACE: 0x50,
  SUBSCRIBE_TRACKS: 0x51,
  NAMESPACE: 0x08,
  NAMESPACE_DONE: 0x0e,
  PUBLISH_SKIPPED: 0x0f,
  REQUEST_OK: 0x07,
  REQUEST_ERROR: 0x05,
} as const;

/** The -18 table's stale code for PUBLISH_OK; an alias of REQUEST_OK there only. */
const LEGACY_PUBLISH_OK = 0x1e;

export type MessageName = keyof typeof MessageType;

/** Setup Options (§9.3.1); unknown ones are kept and ignored. */
export interface SetupOptions {
  path?: Uint8Array;
  authTokens?: AuthToken[];
  maxAuthTokenCacheSize?: number;
  authority?: Uint8Array;
  maxFilterRanges?: number;
  implementation?: string;
  maxRequestUpdates?: number;
  unknown?: Properties;
}

export interface Track {
  namespace: Namespace;
  name: Uint8Array;
}

export type ControlMessage =
  | { type: "SETUP"; options: SetupOptions }
  | { type: "GOAWAY"; newSessionUri: Uint8Array; timeout: number; requestId?: number }
  | ({ type: "SUBSCRIBE"; requestId: number; params: Parameters } & Track)
  | { type: "SUBSCRIBE_OK"; trackAlias: bigint; params: Parameters; trackProperties: Properties }
  | { type: "REQUEST_UPDATE"; requestId: number; params: Parameters }
  | ({
      type: "PUBLISH";
      requestId: number;
      trackAlias: bigint;
      params: Parameters;
      trackProperties: Properties;
    } & Track)
  | { type: "PUBLISH_DONE"; status: bigint; streamCount: bigint; reason: string }
  | {
      type: "FETCH";
      requestId: number;
      fetchType: 1 | 2 | 3;
      namespace?: Namespace;
      name?: Uint8Array;
      start?: Location;
      end?: Location;
      joiningRequestId?: number;
      joiningStart?: number;
      params: Parameters;
    }
  | {
      type: "FETCH_OK";
      endOfTrack: boolean;
      endLocation: Location;
      params: Parameters;
      trackProperties: Properties;
    }
  | ({ type: "TRACK_STATUS"; requestId: number; params: Parameters } & Track)
  | { type: "PUBLISH_NAMESPACE"; requestId: number; namespace: Namespace; params: Parameters }
  | { type: "SUBSCRIBE_NAMESPACE"; requestId: number; prefix: Namespace; params: Parameters }
  | { type: "SUBSCRIBE_TRACKS"; requestId: number; prefix: Namespace; params: Parameters }
  | { type: "NAMESPACE"; suffix: Namespace }
  | { type: "NAMESPACE_DONE"; suffix: Namespace }
  | { type: "PUBLISH_SKIPPED"; suffix: Namespace; name: Uint8Array }
  | { type: "REQUEST_OK"; params: Parameters; trackProperties: Properties }
  | {
      type: "REQUEST_ERROR";
      code: bigint;
      retryInterval: number;
      reason: string;
      redirect?: { connectUri: Uint8Array; namespace: Namespace; name: Uint8Array };
    };

export type MessageOf<N extends MessageName> = Extract<ControlMessage, { type: N }>;

/** REQUEST_ERROR 0x34: a Redirect structure follows. */
const REDIRECT = 0x34n;

const NAMES = new Map<number, MessageName>(
  Object.entries(MessageType).map(([k, v]) => [v, k as MessageName] as [number, MessageName]),
);

// ---- Setup Options ----

const Opt = { PATH: 1n, AUTH: 3n, CACHE: 4n, AUTHORITY: 5n, FILTERS: 6n, IMPL: 7n, UPDATES: 8n } as const;

function decodeSetup(r: Reader): SetupOptions {
  const props = Properties.decodeAll(r);
  const o: SetupOptions = {};
  const set = <K extends keyof SetupOptions>(k: K, value: SetupOptions[K]) => {
    if (o[k] !== undefined) throw new DecodeError(`duplicate setup option ${k}`);
    o[k] = value;
  };
  const num = (x: bigint) => {
    if (x > BigInt(Number.MAX_SAFE_INTEGER)) throw new DecodeError(`setup option value ${x} too large`);
    return Number(x);
  };
  for (const p of props.pairs) {
    if (p.key === Opt.PATH && "bytes" in p) set("path", p.bytes);
    else if (p.key === Opt.AUTH && "bytes" in p) {
      o.authTokens ??= [];
      o.authTokens.push(decodeToken(p.bytes));
    } else if (p.key === Opt.CACHE && "int" in p) set("maxAuthTokenCacheSize", num(p.int));
    else if (p.key === Opt.AUTHORITY && "bytes" in p) set("authority", p.bytes);
    else if (p.key === Opt.FILTERS && "int" in p) set("maxFilterRanges", num(p.int));
    else if (p.key === Opt.IMPL && "bytes" in p) set("implementation", text(p.bytes));
    else if (p.key === Opt.UPDATES && "int" in p) set("maxRequestUpdates", num(p.int));
    else {
      o.unknown ??= new Properties();
      o.unknown.pairs.push(p);
    }
  }
  return o;
}

function encodeSetup(w: Writer, o: SetupOptions): void {
  const p = new Properties();
  if (o.path) p.setBytes(Opt.PATH, o.path);
  for (const t of o.authTokens ?? []) {
    const tw = new Writer();
    encodeToken(tw, t);
    p.setBytes(Opt.AUTH, tw.finish());
  }
  if (o.maxAuthTokenCacheSize !== undefined) p.setInt(Opt.CACHE, o.maxAuthTokenCacheSize);
  if (o.authority) p.setBytes(Opt.AUTHORITY, o.authority);
  if (o.maxFilterRanges !== undefined) p.setInt(Opt.FILTERS, o.maxFilterRanges);
  if (o.implementation !== undefined) p.setBytes(Opt.IMPL, utf8.encode(o.implementation));
  if (o.maxRequestUpdates !== undefined) p.setInt(Opt.UPDATES, o.maxRequestUpdates);
  for (const x of o.unknown?.pairs ?? []) {
    if (x.key === 1n || (x.key >= 3n && x.key <= 8n)) throw new EncodeError(`option ${x.key} is not unknown`);
    p.push(x);
  }
  p.encodeAll(w);
}

// ---- bodies ----

function reason(r: Reader): string {
  return text(r.lenBytes(MAX_REASON_LEN, "reason phrase"));
}

function decodeBody(type: number, r: Reader, v: Version): ControlMessage {
  switch (type) {
    case MessageType.SETUP:
      return { type: "SETUP", options: decodeSetup(r) };
    case MessageType.GOAWAY: {
      const newSessionUri = r.lenBytes(MAX_GOAWAY_URI_LEN, "new session URI");
      const timeout = r.varint();
      // Draft-18 adds the smallest unprocessed Request ID on the control stream; -19 removed it.
      if (v === 18 && !r.done) return { type: "GOAWAY", newSessionUri, timeout, requestId: r.varint() };
      return { type: "GOAWAY", newSessionUri, timeout };
    }
    case MessageType.SUBSCRIBE: {
      const requestId = r.varint();
      const t = decodeFullName(r);
      return { type: "SUBSCRIBE", requestId, ...t, params: decodeParams(r, v, "SUBSCRIBE") };
    }
    case MessageType.SUBSCRIBE_OK: {
      const trackAlias = r.varintBig();
      const params = decodeParams(r, v, "SUBSCRIBE_OK");
      return { type: "SUBSCRIBE_OK", trackAlias, params, trackProperties: Properties.decodeAll(r) };
    }
    case MessageType.REQUEST_UPDATE:
      return { type: "REQUEST_UPDATE", requestId: r.varint(), params: decodeParams(r, v, "REQUEST_UPDATE") };
    case MessageType.PUBLISH: {
      const requestId = r.varint();
      const t = decodeFullName(r);
      const trackAlias = r.varintBig();
      const params = decodeParams(r, v, "PUBLISH");
      return {
        type: "PUBLISH",
        requestId,
        ...t,
        trackAlias,
        params,
        trackProperties: Properties.decodeAll(r),
      };
    }
    case MessageType.PUBLISH_DONE:
      return { type: "PUBLISH_DONE", status: r.varintBig(), streamCount: r.varintBig(), reason: reason(r) };
    case MessageType.FETCH: {
      const requestId = r.varint();
      const fetchType = r.varint();
      if (fetchType === 1) {
        const t = decodeFullName(r);
        const start = decodeLocation(r);
        const end = decodeLocation(r);
        return { type: "FETCH", requestId, fetchType, ...t, start, end, params: decodeParams(r, v, "FETCH") };
      }
      if (fetchType === 2 || fetchType === 3) {
        const joiningRequestId = r.varint();
        const joiningStart = r.varint();
        const params = decodeParams(r, v, "FETCH");
        return { type: "FETCH", requestId, fetchType, joiningRequestId, joiningStart, params };
      }
      throw new DecodeError(`fetch type ${fetchType}`);
    }
    case MessageType.FETCH_OK: {
      const eot = r.u8();
      if (eot > 1) throw new DecodeError(`End Of Track ${eot}`);
      const endLocation = decodeLocation(r);
      const params = decodeParams(r, v, "FETCH_OK");
      return {
        type: "FETCH_OK",
        endOfTrack: eot === 1,
        endLocation,
        params,
        trackProperties: Properties.decodeAll(r),
      };
    }
    case MessageType.TRACK_STATUS: {
      const requestId = r.varint();
      const t = decodeFullName(r);
      return { type: "TRACK_STATUS", requestId, ...t, params: decodeParams(r, v, "TRACK_STATUS") };
    }
    case MessageType.PUBLISH_NAMESPACE: {
      const requestId = r.varint();
      const namespace = decodeNamespace(r);
      return {
        type: "PUBLISH_NAMESPACE",
        requestId,
        namespace,
        params: decodeParams(r, v, "PUBLISH_NAMESPACE"),
      };
    }
    case MessageType.SUBSCRIBE_NAMESPACE:
    case MessageType.SUBSCRIBE_TRACKS: {
      const name = type === MessageType.SUBSCRIBE_TRACKS ? "SUBSCRIBE_TRACKS" : "SUBSCRIBE_NAMESPACE";
      const requestId = r.varint();
      const prefix = decodeNamespace(r);
      return { type: name, requestId, prefix, params: decodeParams(r, v, name) };
    }
    case MessageType.NAMESPACE:
      return { type: "NAMESPACE", suffix: decodeNamespace(r) };
    case MessageType.NAMESPACE_DONE:
      return { type: "NAMESPACE_DONE", suffix: decodeNamespace(r) };
    case MessageType.PUBLISH_SKIPPED: {
      const t = decodeFullName(r);
      return { type: "PUBLISH_SKIPPED", suffix: t.namespace, name: t.name };
    }
    case MessageType.REQUEST_OK:
    case LEGACY_PUBLISH_OK: {
      const params = decodeParams(r, v, "REQUEST_OK");
      return { type: "REQUEST_OK", params, trackProperties: Properties.decodeAll(r) };
    }
    case MessageType.REQUEST_ERROR: {
      const code = r.varintBig();
      const retryInterval = r.varint();
      const why = reason(r);
      if (code !== REDIRECT) return { type: "REQUEST_ERROR", code, retryInterval, reason: why };
      const connectUri = r.lenBytes(MAX_MESSAGE_LEN, "connect URI");
      const t = decodeFullName(r);
      return { type: "REQUEST_ERROR", code, retryInterval, reason: why, redirect: { connectUri, ...t } };
    }
  }
  throw new DecodeError(`unknown control message type 0x${type.toString(16)}`);
}

function encodeBody(w: Writer, m: ControlMessage, v: Version): void {
  switch (m.type) {
    case "SETUP":
      encodeSetup(w, m.options);
      return;
    case "GOAWAY":
      w.lenBytes(m.newSessionUri, MAX_GOAWAY_URI_LEN, "new session URI").varint(m.timeout);
      if (m.requestId !== undefined) {
        if (v !== 18) throw new EncodeError("GOAWAY has no Request ID in draft-19");
        w.varint(m.requestId);
      }
      return;
    case "SUBSCRIBE":
    case "TRACK_STATUS":
      w.varint(m.requestId);
      encodeFullName(w, m.namespace, m.name);
      encodeParams(w, m.params, v, m.type);
      return;
    case "SUBSCRIBE_OK":
      w.varint(m.trackAlias);
      encodeParams(w, m.params, v, "SUBSCRIBE_OK");
      m.trackProperties.encodeAll(w);
      return;
    case "REQUEST_UPDATE":
      w.varint(m.requestId);
      encodeParams(w, m.params, v, "REQUEST_UPDATE");
      return;
    case "PUBLISH":
      w.varint(m.requestId);
      encodeFullName(w, m.namespace, m.name);
      w.varint(m.trackAlias);
      encodeParams(w, m.params, v, "PUBLISH");
      m.trackProperties.encodeAll(w);
      return;
    case "PUBLISH_DONE":
      w.varint(m.status).varint(m.streamCount);
      w.lenBytes(utf8.encode(m.reason), MAX_REASON_LEN, "reason phrase");
      return;
    case "FETCH":
      w.varint(m.requestId).varint(m.fetchType);
      if (m.fetchType === 1) {
        if (!m.namespace || !m.name || !m.start || !m.end)
          throw new EncodeError("standalone FETCH needs a track");
        encodeFullName(w, m.namespace, m.name);
        encodeLocation(w, m.start);
        encodeLocation(w, m.end);
      } else {
        w.varint(m.joiningRequestId ?? 0).varint(m.joiningStart ?? 0);
      }
      encodeParams(w, m.params, v, "FETCH");
      return;
    case "FETCH_OK":
      w.u8(m.endOfTrack ? 1 : 0);
      encodeLocation(w, m.endLocation);
      encodeParams(w, m.params, v, "FETCH_OK");
      m.trackProperties.encodeAll(w);
      return;
    case "PUBLISH_NAMESPACE":
      w.varint(m.requestId);
      encodeNamespace(w, m.namespace);
      encodeParams(w, m.params, v, "PUBLISH_NAMESPACE");
      return;
    case "SUBSCRIBE_NAMESPACE":
    case "SUBSCRIBE_TRACKS":
      w.varint(m.requestId);
      encodeNamespace(w, m.prefix);
      encodeParams(w, m.params, v, m.type);
      return;
    case "NAMESPACE":
    case "NAMESPACE_DONE":
      encodeNamespace(w, m.suffix);
      return;
    case "PUBLISH_SKIPPED":
      encodeFullName(w, m.suffix, m.name);
      return;
    case "REQUEST_OK":
      encodeParams(w, m.params, v, "REQUEST_OK");
      m.trackProperties.encodeAll(w);
      return;
    case "REQUEST_ERROR":
      if ((m.code === REDIRECT) !== (m.redirect !== undefined))
        throw new EncodeError("Redirect needs code REDIRECT");
      w.varint(m.code).varint(m.retryInterval);
      w.lenBytes(utf8.encode(m.reason), MAX_REASON_LEN, "reason phrase");
      if (m.redirect) {
        w.lenBytes(m.redirect.connectUri, MAX_MESSAGE_LEN, "connect URI");
        encodeFullName(w, m.redirect.namespace, m.redirect.name);
      }
      return;
  }
}

/** Encodes one framed message. */
export function encodeControl(m: ControlMessage, v: Version): Uint8Array {
  const w = new Writer();
  w.varint(MessageType[m.type]);
  const at = w.len;
  w.u16(0);
  encodeBody(w, m, v);
  const len = w.len - at - 2;
  if (len > MAX_MESSAGE_LEN) throw new EncodeError(`${m.type} body of ${len} bytes`);
  w.patchU16(at, len);
  return w.finish();
}

function knownType(type: number, v: Version): boolean {
  return NAMES.has(type) || (type === LEGACY_PUBLISH_OK && v === 18);
}

/**
 * Decodes one framed message from the start of `data`. Throws {@link ShortError} if the frame is incomplete
 * (nothing is consumed), {@link DecodeError} if it is malformed.
 */
export function decodeControl(data: Uint8Array, v: Version): { msg: ControlMessage; used: number } {
  const r = new Reader(data);
  const type = r.varint();
  // An unknown type is refused from the type alone, before its body arrives.
  if (!knownType(type, v)) throw new DecodeError(`unknown control message type 0x${type.toString(16)}`);
  const len = (r.u8() << 8) | r.u8();
  const body = r.sub(len, "control message");
  const msg = decodeBody(type, body, v);
  if (!body.done)
    throw new DecodeError(`${msg.type}: ${body.remaining} trailing bytes`, SessionCode.PROTOCOL_VIOLATION);
  return { msg, used: r.pos };
}

/** Whether a message may open a request stream (draft-19 §3.3). */
export function isRequest(m: ControlMessage): boolean {
  return [
    "TRACK_STATUS",
    "SUBSCRIBE",
    "PUBLISH",
    "FETCH",
    "PUBLISH_NAMESPACE",
    "SUBSCRIBE_NAMESPACE",
    "SUBSCRIBE_TRACKS",
  ].includes(m.type);
}
