// Where a session's incoming objects go: subgroup streams and datagrams to their subscription (by Track Alias),
// fetch streams to their FETCH (by Request ID). One per Session; it owns the routing tables.

import {
  DecodeError,
  decodeDatagram,
  decodeSubgroupHeader,
  Reader,
  type SubgroupHeader,
} from "../wire/index.ts";
import { type FetchResponse, fetchHeaderRequestId, Group, type Subscription } from "./requests.ts";
import type { StreamReader } from "./stream.ts";

/** How long a data stream for an unknown Track Alias waits for its SUBSCRIBE_OK. */
const UNKNOWN_ALIAS_WAIT_MS = 1_000;

export class DataRouter {
  readonly subscriptions = new Map<bigint, Subscription>();
  readonly fetches = new Map<number, FetchResponse>();
  private readonly waiting = new Map<bigint, (() => void)[]>();

  constructor(
    /** A protocol error in a data stream: the session closes with its code. */
    private readonly fail: (e: unknown) => void,
  ) {}

  /** A subscription's SUBSCRIBE_OK arrived: route its alias, and wake streams that arrived before it. */
  add(alias: bigint, sub: Subscription): void {
    this.subscriptions.set(alias, sub);
    for (const wake of this.waiting.get(alias) ?? []) wake();
    this.waiting.delete(alias);
  }

  /** The session ended: every subscription and fetch finishes. */
  endAll(reason: string): void {
    for (const s of this.subscriptions.values()) s.finish({ statusName: "SESSION_CLOSED", reason });
    for (const f of this.fetches.values()) f.entries.close();
    this.subscriptions.clear();
    this.fetches.clear();
  }

  async readSubgroup(stream: StreamReader): Promise<void> {
    let header: SubgroupHeader | undefined;
    try {
      header = await stream.decode((d) => {
        const r = new Reader(d);
        const value = decodeSubgroupHeader(r.varint(), r);
        return { value, used: r.pos };
      });
    } catch (e) {
      if (e instanceof DecodeError) throw e;
      return; // reset inside the header
    }
    if (!header) return;
    const alias = header.trackAlias;
    let sub = this.subscriptions.get(alias);
    if (!sub) {
      // The stream may beat its SUBSCRIBE_OK; wait briefly (the draft allows buffering or dropping it).
      await new Promise<void>((wake) => {
        const list = this.waiting.get(alias) ?? [];
        list.push(wake);
        this.waiting.set(alias, list);
        setTimeout(wake, UNKNOWN_ALIAS_WAIT_MS);
      });
      sub = this.subscriptions.get(alias);
    }
    if (!sub) {
      stream.cancel(0);
      return;
    }
    sub.deliver(Group.fromStream(header, stream, this.fail));
  }

  async readFetch(stream: StreamReader): Promise<void> {
    await stream.varint();
    const requestId = await stream.decode(fetchHeaderRequestId);
    if (requestId === undefined) return;
    const f = this.fetches.get(requestId);
    if (!f) {
      stream.cancel(0);
      return;
    }
    try {
      await f.readData(stream);
    } finally {
      this.fetches.delete(requestId);
    }
  }

  /** Reads datagrams until the session ends (`done`); each becomes a one-object group. */
  async readDatagrams(readable: ReadableStream<Uint8Array>, done: () => boolean): Promise<void> {
    const reader = readable.getReader() as ReadableStreamDefaultReader<Uint8Array>;
    for (;;) {
      const { value, done: end } = await reader.read();
      if (end || done()) return;
      const d = decodeDatagram(value);
      if (!d) continue;
      const sub = this.subscriptions.get(d.trackAlias);
      if (!sub) continue; // unknown or cancelled: the draft allows dropping it
      const header = {
        trackAlias: d.trackAlias,
        groupId: d.groupId,
        subgroupMode: 0 as const,
        hasProperties: d.properties.size > 0,
        endOfGroup: d.endOfGroup,
        firstObject: false,
        ...(d.publisherPriority !== undefined ? { publisherPriority: d.publisherPriority } : {}),
      };
      const object = {
        objectId: d.objectId,
        properties: d.properties,
        status: d.status ?? 0,
        payload: d.payload ?? new Uint8Array(),
      };
      sub.deliver(Group.fromObject(header, object));
    }
  }
}
