// The objects a Session hands out for its requests: subscriptions (with their groups), fetches and namespace
// subscriptions. Each owns one request stream (draft-19 §3.3) and the data streams routed to it.

import {
  type ControlMessage,
  codeName,
  decodeControl,
  type FetchEntry,
  FetchReader,
  type Location,
  type Namespace,
  namespaceToPath,
  type Properties,
  PublishDoneCode,
  Reader,
  RequestErrorCode,
  ResetCode,
  type SubgroupHeader,
  type SubgroupObject,
  SubgroupReader,
  type Version,
} from "../wire/index.ts";
import { Queue } from "./queue.ts";
import type { StreamReader, StreamWriter } from "./stream.ts";

/** A request the peer refused (REQUEST_ERROR), or that failed before its response. */
export class RequestError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    readonly retryInterval = 0,
  ) {
    super(`${codeName(RequestErrorCode, code)}${reason ? `: ${reason}` : ""}`);
    this.name = "RequestError";
  }
}

/** The response half of a request stream: framed control messages until FIN. */
export class RequestStream {
  constructor(
    readonly reader: StreamReader,
    readonly writer: StreamWriter,
    private readonly version: Version,
    private readonly onGoaway: (m: ControlMessage) => void,
  ) {}

  private goaways = 0;

  /** The next message, or undefined at FIN. A GOAWAY (one per stream) is reported and skipped. */
  async next(): Promise<ControlMessage | undefined> {
    for (;;) {
      const m = await this.reader.decode((d) => {
        const { msg, used } = decodeControl(d, this.version);
        return { value: msg, used };
      });
      if (m?.type === "GOAWAY") {
        if (++this.goaways > 1) throw new Error("second GOAWAY on a request stream");
        this.onGoaway(m);
        continue;
      }
      return m;
    }
  }

  /** Cancels the request: RESET_STREAM our side, STOP_SENDING theirs. */
  cancel(code: number = ResetCode.CANCELLED): void {
    this.writer.reset(code);
    this.reader.cancel(code);
  }
}

/** One subgroup of a subscription (one data stream, or one datagram), read object by object. */
export class Group {
  /** True when the stream was reset or cancelled before its end: objects may be missing. */
  truncated = false;

  private constructor(
    readonly header: SubgroupHeader,
    private readonly source: { stream: StreamReader; reader: SubgroupReader } | { objects: SubgroupObject[] },
    private readonly onError: (e: unknown) => void,
  ) {}

  static fromStream(header: SubgroupHeader, stream: StreamReader, onError: (e: unknown) => void): Group {
    return new Group(header, { stream, reader: new SubgroupReader(header) }, onError);
  }

  static fromObject(header: SubgroupHeader, object: SubgroupObject): Group {
    return new Group(header, { objects: [object] }, () => {});
  }

  get groupId(): number {
    return this.header.groupId;
  }

  /** The next object, or undefined when the subgroup ends (FIN, reset, or cancel). */
  async next(): Promise<SubgroupObject | undefined> {
    const s = this.source;
    if ("objects" in s) return s.objects.shift();
    try {
      return await s.stream.decode((d) => {
        const { object, used } = s.reader.read(d);
        return { value: object, used };
      });
    } catch (e) {
      this.truncated = true;
      // A reset stream is not an error (the draft: it has no effect on the subscription); bad bytes are.
      if (!(e instanceof Error && e.name === "WebTransportError")) this.onError(e);
      return undefined;
    }
  }

  /** Stops reading (STOP_SENDING). */
  cancel(): void {
    this.truncated = true;
    if ("stream" in this.source) this.source.stream.cancel(ResetCode.CANCELLED);
  }
}

export interface SubscriptionEnd {
  /** PUBLISH_DONE status, or undefined if the stream ended otherwise. */
  status?: number;
  statusName: string;
  reason: string;
}

/** An established subscription: its groups arrive as the publisher opens streams. */
export class Subscription {
  readonly groups = new Queue<Group>(32, (g) => g.cancel());
  readonly ended: Promise<SubscriptionEnd>;
  private resolveEnded!: (e: SubscriptionEnd) => void;
  private open = new Set<Group>();

  constructor(
    readonly requestId: number,
    readonly namespace: Namespace,
    readonly name: string,
    readonly trackAlias: bigint,
    /** LARGEST_OBJECT of SUBSCRIBE_OK: the largest location when the subscription started. */
    readonly largest: Location | undefined,
    readonly trackProperties: Properties,
    private readonly stream: RequestStream,
    private readonly forget: () => void,
  ) {
    this.ended = new Promise((r) => {
      this.resolveEnded = r;
    });
  }

  toString(): string {
    return `${namespaceToPath(this.namespace)}/${this.name}`;
  }

  /** The next group (a subgroup stream), or undefined after the subscription ended. */
  nextGroup(): Promise<Group | undefined> {
    return this.groups.next();
  }

  /** @internal Called by the session for each data stream of this subscription. */
  deliver(g: Group): void {
    if (this.groups.closed) {
      g.cancel();
      return;
    }
    this.open.add(g);
    this.groups.push(g);
  }

  /** @internal Reads the response stream until PUBLISH_DONE or its end. */
  async run(): Promise<void> {
    let end: SubscriptionEnd = { statusName: "STREAM_ENDED", reason: "" };
    try {
      for (;;) {
        const m = await this.stream.next();
        if (!m) break;
        if (m.type === "PUBLISH_DONE") {
          const status = Number(m.status);
          end = { status, statusName: codeName(PublishDoneCode, m.status), reason: m.reason };
          break;
        }
        // REQUEST_OK / REQUEST_ERROR answer REQUEST_UPDATEs; nothing else belongs here.
        if (m.type !== "REQUEST_OK" && m.type !== "REQUEST_ERROR")
          throw new Error(`${m.type} on a subscription`);
      }
    } catch (e) {
      end = { statusName: "STREAM_ERROR", reason: e instanceof Error ? e.message : String(e) };
    }
    this.finish(end);
    await this.stream.writer.finish();
  }

  /** Unsubscribes: resets the request stream and stops every data stream of it. */
  cancel(): void {
    this.stream.cancel(ResetCode.CANCELLED);
    for (const g of this.open) g.cancel();
    this.finish({ statusName: "CANCELLED", reason: "" });
  }

  /** @internal */
  finish(end: SubscriptionEnd): void {
    if (this.groups.closed) return;
    this.groups.close();
    this.forget();
    this.resolveEnded(end);
  }
}

/**
 * Entries a FETCH response holds before it stops reading its stream: the relay's data waits in QUIC's flow
 * control rather than in the page, however much it sends.
 */
export const MAX_FETCH_BUFFERED = 256;

/** A FETCH's response: entries from its data stream. */
export class FetchResponse {
  readonly entries = new Queue<FetchEntry>(Number.POSITIVE_INFINITY);
  endLocation: Location | undefined;
  endOfTrack = false;

  constructor(
    readonly requestId: number,
    readonly groupOrder: 1 | 2,
    private readonly stream: RequestStream,
  ) {}

  /** The next entry (object or end of range), or undefined at the end of the response. */
  next(): Promise<FetchEntry | undefined> {
    return this.entries.next();
  }

  /** @internal Reads the FETCH_HEADER stream after its header. */
  async readData(data: StreamReader): Promise<void> {
    const reader = new FetchReader(this.groupOrder);
    try {
      for (;;) {
        const e = await data.decode((d) => {
          const { entry, used } = reader.read(d);
          return { value: entry, used };
        });
        if (!e) break;
        this.entries.push(e);
        await this.entries.room(MAX_FETCH_BUFFERED);
      }
    } finally {
      this.entries.close();
    }
  }

  cancel(): void {
    this.stream.cancel();
    this.entries.close();
  }
}

export type NamespaceEvent = { active: boolean; namespace: Namespace };

/** A SUBSCRIBE_NAMESPACE: namespaces under the prefix as they come and go. */
export class NamespaceWatch {
  readonly events = new Queue<NamespaceEvent>(Number.POSITIVE_INFINITY);
  private active = new Map<string, Namespace>();

  constructor(
    readonly prefix: Namespace,
    private readonly stream: RequestStream,
  ) {}

  next(): Promise<NamespaceEvent | undefined> {
    return this.events.next();
  }

  /** @internal Reads NAMESPACE / NAMESPACE_DONE until the stream ends. Throws on a protocol violation. */
  async run(): Promise<void> {
    try {
      for (;;) {
        const m = await this.stream.next();
        if (!m) break;
        if (m.type !== "NAMESPACE" && m.type !== "NAMESPACE_DONE")
          throw new Error(`${m.type} on SUBSCRIBE_NAMESPACE`);
        const namespace = [...this.prefix, ...m.suffix];
        const key = namespaceToPath(namespace);
        if (m.type === "NAMESPACE") {
          this.active.set(key, namespace);
          this.events.push({ active: true, namespace });
        } else {
          if (!this.active.delete(key)) throw new Error("NAMESPACE_DONE before NAMESPACE");
          this.events.push({ active: false, namespace });
        }
      }
    } catch (e) {
      if (e instanceof Error && e.message.includes("NAMESPACE_DONE before")) throw e;
    } finally {
      // A FIN or reset ends every namespace (draft-19 §9.25).
      for (const namespace of this.active.values()) this.events.push({ active: false, namespace });
      this.active.clear();
      this.events.close();
    }
  }

  cancel(): void {
    this.stream.cancel();
    this.events.close();
  }
}

/** Reads the request id of a FETCH_HEADER after its type. */
export function fetchHeaderRequestId(d: Uint8Array): { value: number; used: number } {
  const r = new Reader(d);
  return { value: r.varint(), used: r.pos };
}
