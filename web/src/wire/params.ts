// Message Parameters (draft-19 §9.2): a count, then parameters with delta-encoded ascending types. Every
// parameter must be known, allowed in its message, and (except tokens and range filters) appear once.

import { Reader, type Writer } from "./buffer.ts";
import { DecodeError, EncodeError, SessionCode } from "./errors.ts";
import { decodeNamespace, encodeNamespace, type Namespace } from "./namespace.ts";
import type { Version } from "./version.ts";

export const Param = {
  OBJECT_DELIVERY_TIMEOUT: 0x02,
  AUTHORIZATION_TOKEN: 0x03,
  RENDEZVOUS_TIMEOUT: 0x04,
  SUBGROUP_DELIVERY_TIMEOUT: 0x06,
  EXPIRES: 0x08,
  LARGEST_OBJECT: 0x09,
  FILL_TIMEOUT: 0x0a,
  FORWARD: 0x10,
  SUBSCRIBER_PRIORITY: 0x20,
  LOCATION_FILTER: 0x21,
  GROUP_ORDER: 0x22,
  SUBGROUP_FILTER: 0x25,
  OBJECTID_FILTER: 0x26,
  PRIORITY_FILTER: 0x27,
  OBJECT_PROPERTY_FILTER: 0x28,
  TRACK_PROPERTY_FILTER: 0x29,
  NEW_GROUP_REQUEST: 0x32,
  TRACK_NAMESPACE_PREFIX: 0x34,
} as const;

export interface Location {
  group: number;
  object: number;
}

export function compareLocation(a: Location, b: Location): number {
  return a.group - b.group || a.object - b.object;
}

/** AUTHORIZATION_TOKEN value (§9.2.1.1): aliasType 0 DELETE, 1 REGISTER, 2 USE_ALIAS, 3 USE_VALUE. */
export interface AuthToken {
  aliasType: 0 | 1 | 2 | 3;
  alias?: number;
  tokenType?: number;
  value?: Uint8Array;
}

/** Location Filter (§5.1.2): 1 Next Group Start, 2 Largest Object, 3 AbsoluteStart, 4 AbsoluteRange. */
export interface LocationFilter {
  type: 1 | 2 | 3 | 4;
  start?: Location;
  endGroupDelta?: number;
}

/** A range filter (draft-19 §5.1.3), ranges as sent (deltas). No `setId` is the removal form. */
export interface RangeFilter {
  param: number;
  setId?: number;
  propertyType?: number;
  ranges: { start: number; end?: number }[];
}

export interface Parameters {
  objectDeliveryTimeout?: number;
  authTokens?: AuthToken[];
  rendezvousTimeout?: number;
  subgroupDeliveryTimeout?: number;
  expires?: number;
  largestObject?: Location;
  fillTimeout?: number;
  forward?: boolean;
  subscriberPriority?: number;
  locationFilter?: LocationFilter;
  groupOrder?: 1 | 2;
  rangeFilters?: RangeFilter[];
  newGroupRequest?: number;
  trackNamespacePrefix?: Namespace;
}

export type ParamContext =
  | "SUBSCRIBE"
  | "SUBSCRIBE_OK"
  | "REQUEST_UPDATE"
  | "PUBLISH"
  | "REQUEST_OK"
  | "FETCH"
  | "FETCH_OK"
  | "TRACK_STATUS"
  | "PUBLISH_NAMESPACE"
  | "SUBSCRIBE_NAMESPACE"
  | "SUBSCRIBE_TRACKS";

const P = Param;

function isKnown(t: number, v: Version): boolean {
  if (t >= P.SUBGROUP_FILTER && t <= P.TRACK_PROPERTY_FILTER) return v >= 19;
  return (Object.values(P) as number[]).includes(t);
}

/** The "MAY appear in" sentence of each parameter's definition (REQUEST_OK/UPDATE accept the union). */
function isAllowed(t: number, ctx: ParamContext, v: Version): boolean {
  const d19 = v >= 19;
  const objectFilter = t >= P.SUBGROUP_FILTER && t <= P.OBJECT_PROPERTY_FILTER;
  const any = (...xs: number[]) => xs.includes(t);
  switch (ctx) {
    case "SUBSCRIBE":
      return (
        any(
          P.OBJECT_DELIVERY_TIMEOUT,
          P.AUTHORIZATION_TOKEN,
          P.RENDEZVOUS_TIMEOUT,
          P.SUBGROUP_DELIVERY_TIMEOUT,
          P.FORWARD,
          P.SUBSCRIBER_PRIORITY,
          P.LOCATION_FILTER,
          P.GROUP_ORDER,
          P.NEW_GROUP_REQUEST,
        ) ||
        (d19 && objectFilter)
      );
    case "SUBSCRIBE_OK":
      return any(P.EXPIRES, P.LARGEST_OBJECT);
    case "REQUEST_UPDATE":
      return (
        any(
          P.OBJECT_DELIVERY_TIMEOUT,
          P.AUTHORIZATION_TOKEN,
          P.SUBGROUP_DELIVERY_TIMEOUT,
          P.FORWARD,
          P.SUBSCRIBER_PRIORITY,
          P.LOCATION_FILTER,
          P.NEW_GROUP_REQUEST,
          P.TRACK_NAMESPACE_PREFIX,
        ) ||
        (d19 && (objectFilter || t === P.TRACK_PROPERTY_FILTER))
      );
    case "PUBLISH":
      return (
        any(P.AUTHORIZATION_TOKEN, P.EXPIRES, P.LARGEST_OBJECT, P.FORWARD) || (d19 && t === P.GROUP_ORDER)
      );
    case "REQUEST_OK":
      return (
        any(
          P.OBJECT_DELIVERY_TIMEOUT,
          P.SUBGROUP_DELIVERY_TIMEOUT,
          P.FORWARD,
          P.SUBSCRIBER_PRIORITY,
          P.LOCATION_FILTER,
          P.NEW_GROUP_REQUEST,
          P.EXPIRES,
          P.LARGEST_OBJECT,
        ) ||
        (!d19 && t === P.GROUP_ORDER) ||
        (d19 && objectFilter)
      );
    case "FETCH":
      return (
        any(P.AUTHORIZATION_TOKEN, P.FILL_TIMEOUT, P.SUBSCRIBER_PRIORITY, P.GROUP_ORDER) ||
        (d19 && objectFilter)
      );
    case "FETCH_OK":
      return false;
    case "TRACK_STATUS":
    case "PUBLISH_NAMESPACE":
    case "SUBSCRIBE_NAMESPACE":
      return t === P.AUTHORIZATION_TOKEN;
    case "SUBSCRIBE_TRACKS":
      return d19
        ? isAllowed(t, "SUBSCRIBE", v) || t === P.TRACK_PROPERTY_FILTER
        : any(P.AUTHORIZATION_TOKEN, P.FORWARD);
  }
}

function decodeLocation(r: Reader): Location {
  return { group: r.varint(), object: r.varint() };
}

function encodeLocation(w: Writer, l: Location): void {
  w.varint(l.group).varint(l.object);
}

export { decodeLocation, encodeLocation };

const badToken = () =>
  new DecodeError("malformed authorization token", SessionCode.KEY_VALUE_FORMATTING_ERROR);

export function decodeToken(data: Uint8Array): AuthToken {
  const r = new Reader(data, true, "authorization token");
  try {
    const aliasType = r.varint();
    let t: AuthToken;
    if (aliasType === 0 || aliasType === 2) t = { aliasType, alias: r.varint() };
    else if (aliasType === 1) t = { aliasType, alias: r.varint(), tokenType: r.varint(), value: r.rest() };
    else if (aliasType === 3) t = { aliasType, tokenType: r.varint(), value: r.rest() };
    else throw badToken();
    if (!r.done) throw badToken();
    return t;
  } catch (e) {
    if (e instanceof DecodeError && e.code === SessionCode.KEY_VALUE_FORMATTING_ERROR) throw e;
    throw badToken();
  }
}

export function encodeToken(w: Writer, t: AuthToken): void {
  w.varint(t.aliasType);
  if (t.aliasType === 0 || t.aliasType === 2) {
    w.varint(t.alias ?? 0);
    return;
  }
  if (t.aliasType === 1) w.varint(t.alias ?? 0);
  w.varint(t.tokenType ?? 0).bytes(t.value ?? new Uint8Array());
}

function decodeLocationFilter(r: Reader): LocationFilter {
  const type = r.varint();
  switch (type) {
    case 1:
    case 2:
      return { type };
    case 3:
      return { type, start: decodeLocation(r) };
    case 4: {
      const start = decodeLocation(r);
      const endGroupDelta = r.varint();
      if (start.group + endGroupDelta > Number.MAX_SAFE_INTEGER) throw new DecodeError("end group overflows");
      return { type, start, endGroupDelta };
    }
    default:
      throw new DecodeError(`filter type ${type}`);
  }
}

function encodeLocationFilter(w: Writer, f: LocationFilter): void {
  w.varint(f.type);
  if (f.type >= 3) encodeLocation(w, f.start ?? { group: 0, object: 0 });
  if (f.type === 4) w.varint(f.endGroupDelta ?? 0);
}

function decodeRangeFilter(param: number, r: Reader): RangeFilter {
  if (r.done) return { param, ranges: [] };
  const setId = r.u8();
  const f: RangeFilter = { param, setId, ranges: [] };
  if (param === P.OBJECT_PROPERTY_FILTER || param === P.TRACK_PROPERTY_FILTER) f.propertyType = r.varint();
  while (!r.done) {
    const start = r.varint();
    f.ranges.push(r.done ? { start } : { start, end: r.varint() });
  }
  return f;
}

function encodeRangeFilter(w: Writer, f: RangeFilter): void {
  if (f.setId === undefined) return;
  w.u8(f.setId);
  if (f.param === P.OBJECT_PROPERTY_FILTER || f.param === P.TRACK_PROPERTY_FILTER)
    w.varint(f.propertyType ?? 0);
  f.ranges.forEach((range, i) => {
    w.varint(range.start);
    if (range.end !== undefined) w.varint(range.end);
    else if (i + 1 !== f.ranges.length) throw new EncodeError("open range before the last");
  });
}

type Single = Exclude<keyof Parameters, "authTokens" | "rangeFilters">;

function once<K extends Single>(p: Parameters, key: K, value: Parameters[K]): void {
  if (p[key] !== undefined) throw new DecodeError(`duplicate parameter ${key}`);
  p[key] = value;
}

export function decodeParams(r: Reader, v: Version, ctx: ParamContext): Parameters {
  const count = r.varint();
  const p: Parameters = {};
  let t = 0;
  for (let i = 0; i < count; i++) {
    t += r.varint();
    if (!Number.isSafeInteger(t) || !isKnown(t, v))
      throw new DecodeError(`unknown parameter 0x${t.toString(16)}`);
    if (!isAllowed(t, ctx, v)) throw new DecodeError(`parameter 0x${t.toString(16)} not allowed in ${ctx}`);
    switch (t) {
      case P.OBJECT_DELIVERY_TIMEOUT:
        once(p, "objectDeliveryTimeout", r.varint());
        break;
      case P.AUTHORIZATION_TOKEN:
        p.authTokens ??= [];
        p.authTokens.push(decodeToken(r.lenBytes(0xffff, "authorization token")));
        break;
      case P.RENDEZVOUS_TIMEOUT:
        once(p, "rendezvousTimeout", r.varint());
        break;
      case P.SUBGROUP_DELIVERY_TIMEOUT:
        once(p, "subgroupDeliveryTimeout", r.varint());
        break;
      case P.EXPIRES:
        once(p, "expires", r.varint());
        break;
      case P.LARGEST_OBJECT:
        once(p, "largestObject", decodeLocation(r));
        break;
      case P.FILL_TIMEOUT:
        once(p, "fillTimeout", r.varint());
        break;
      case P.FORWARD: {
        const x = r.u8();
        if (x > 1) throw new DecodeError(`FORWARD ${x}`);
        once(p, "forward", x === 1);
        break;
      }
      case P.SUBSCRIBER_PRIORITY:
        once(p, "subscriberPriority", r.u8());
        break;
      case P.LOCATION_FILTER:
        once(p, "locationFilter", decodeLocationFilter(r.sub(r.varint(), "location filter")));
        break;
      case P.GROUP_ORDER: {
        const x = r.u8();
        if (x !== 1 && x !== 2) throw new DecodeError(`GROUP_ORDER ${x}`);
        once(p, "groupOrder", x);
        break;
      }
      case P.NEW_GROUP_REQUEST:
        once(p, "newGroupRequest", r.varint());
        break;
      case P.TRACK_NAMESPACE_PREFIX:
        once(p, "trackNamespacePrefix", decodeNamespace(r));
        break;
      default: // the range filters
        p.rangeFilters ??= [];
        p.rangeFilters.push(decodeRangeFilter(t, r.sub(r.varint(), "range filter")));
    }
  }
  return p;
}

export function encodeParams(w: Writer, p: Parameters, v: Version, ctx: ParamContext): void {
  const entries: [number, (w: Writer) => void][] = [];
  const add = (t: number, f: (w: Writer) => void) => {
    if (!isKnown(t, v)) throw new EncodeError(`parameter 0x${t.toString(16)} not in draft-${v}`);
    if (!isAllowed(t, ctx, v)) throw new EncodeError(`parameter 0x${t.toString(16)} not allowed in ${ctx}`);
    entries.push([t, f]);
  };
  const vi = (t: number, x: number | undefined) => x !== undefined && add(t, (o) => o.varint(x));
  vi(P.OBJECT_DELIVERY_TIMEOUT, p.objectDeliveryTimeout);
  for (const tok of p.authTokens ?? []) {
    add(P.AUTHORIZATION_TOKEN, (o) =>
      o.lenPrefixed((t) => encodeToken(t, tok), 0xffff, "authorization token"),
    );
  }
  vi(P.RENDEZVOUS_TIMEOUT, p.rendezvousTimeout);
  vi(P.SUBGROUP_DELIVERY_TIMEOUT, p.subgroupDeliveryTimeout);
  vi(P.EXPIRES, p.expires);
  const largest = p.largestObject;
  if (largest) add(P.LARGEST_OBJECT, (o) => encodeLocation(o, largest));
  vi(P.FILL_TIMEOUT, p.fillTimeout);
  if (p.forward !== undefined) add(P.FORWARD, (o) => o.u8(p.forward ? 1 : 0));
  const prio = p.subscriberPriority;
  if (prio !== undefined) add(P.SUBSCRIBER_PRIORITY, (o) => o.u8(prio));
  const filter = p.locationFilter;
  if (filter)
    add(P.LOCATION_FILTER, (o) => o.lenPrefixed((t) => encodeLocationFilter(t, filter), 0xffff, "filter"));
  const order = p.groupOrder;
  if (order !== undefined) add(P.GROUP_ORDER, (o) => o.u8(order));
  const ranges = [...(p.rangeFilters ?? [])].sort((a, b) => a.param - b.param);
  for (const f of ranges)
    add(f.param, (o) => o.lenPrefixed((t) => encodeRangeFilter(t, f), 0xffff, "range filter"));
  vi(P.NEW_GROUP_REQUEST, p.newGroupRequest);
  const prefix = p.trackNamespacePrefix;
  if (prefix) add(P.TRACK_NAMESPACE_PREFIX, (o) => encodeNamespace(o, prefix));
  w.varint(entries.length);
  let prev = 0;
  for (const [t, f] of entries) {
    w.varint(t - prev);
    f(w);
    prev = t;
  }
}
