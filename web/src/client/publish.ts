// Tracks this client publishes, and the SUBSCRIBEs the relay sends for them.
//
// A track keeps only its newest group in memory. A SUBSCRIBE is answered as moq-transport answers one without a
// filter: SUBSCRIBE_OK with the largest location, then the newest group from its start, then every new object as
// it is written. Each group goes on its own unidirectional stream (one subgroup, id 0); a new group finishes the
// stream of the previous one. Ending a track sends PUBLISH_DONE (TRACK_ENDED) to every subscriber.

import {
  type ControlMessage,
  DecodeError,
  encodeControl,
  type Location,
  type Parameters,
  Properties,
  PublishDoneCode,
  RequestErrorCode,
  ResetCode,
  SubgroupWriter,
  type Version,
  Writer,
} from "../wire/index.ts";
import type { RequestStream } from "./requests.ts";
import { StreamWriter } from "./stream.ts";

/** What a published track needs from the session that serves it. */
export interface PublishTransport {
  readonly version: Version;
  /** A new unidirectional stream; higher `sendOrder` is sent first. */
  openUni(sendOrder: number): Promise<WritableStream<Uint8Array>>;
}

export interface PublishedObject {
  payload: Uint8Array;
  properties?: Properties;
}

/** Track Property DYNAMIC_GROUPS (draft-19): 1 means subscribers' NEW_GROUP_REQUESTs are acted on. */
export const DYNAMIC_GROUPS = 0x30;

/** Publisher priority: lower is more important (the catalog 0, audio 64, video 128, as moq-pub). */
export const Priority = { CATALOG: 0, AUDIO: 64, VIDEO: 128, CHAT: 32 } as const;

/** One track: its newest group and the subscriptions to it. */
export class TrackPublisher {
  private group: { id: number; objects: PublishedObject[] } | undefined;
  private readonly subscribers = new Set<ServedSubscription>();
  ended = false;
  /**
   * DYNAMIC_GROUPS (Track Property 0x30 = 1 in SUBSCRIBE_OK): subscribers may ask for a new group with
   * NEW_GROUP_REQUEST, and `onnewgroup` is called when one should start (the publisher decides when).
   */
  dynamicGroups = false;
  onnewgroup: (() => void) | undefined;
  /** Objects and payload bytes written so far. */
  objects = 0;
  bytes = 0;

  constructor(
    readonly name: string,
    readonly priority: number = Priority.VIDEO,
    /**
     * Live media: a subscriber's group stream still sending when this many newer groups have started is reset
     * (its media is stale), so a slow link never builds a backlog. Default: never (every object matters).
     */
    readonly maxGroupsBehind = Number.POSITIVE_INFINITY,
  ) {}

  /** The largest location written, if any. */
  get largest(): Location | undefined {
    const g = this.group;
    return g && g.objects.length > 0 ? { group: g.id, object: g.objects.length - 1 } : undefined;
  }

  /** The newest object written, if any. */
  get newest(): PublishedObject | undefined {
    return this.group?.objects[this.group.objects.length - 1];
  }

  get subscriberCount(): number {
    return this.subscribers.size;
  }

  /** Starts a new group (the previous one is complete). Ids must increase; default: the next one, or 0. */
  newGroup(id?: number): number {
    const next = id ?? (this.group ? this.group.id + 1 : 0);
    if (this.group && next <= this.group.id) throw new Error(`group ${next} after ${this.group.id}`);
    this.group = { id: next, objects: [] };
    for (const s of this.subscribers) s.endGroup();
    return next;
  }

  /** Appends an object to the current group (starting group 0 if there is none). */
  write(o: PublishedObject): Location {
    if (this.ended) throw new Error(`${this.name} has ended`);
    if (!this.group) this.newGroup();
    const g = this.group as { id: number; objects: PublishedObject[] };
    g.objects.push(o);
    this.objects++;
    this.bytes += o.payload.length;
    const at = { group: g.id, object: g.objects.length - 1 };
    for (const s of this.subscribers) s.send(at, o);
    return at;
  }

  /** Ends the track: PUBLISH_DONE to every subscriber. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    for (const s of this.subscribers) s.done(PublishDoneCode.TRACK_ENDED, "track ended");
    this.subscribers.clear();
  }

  /**
   * @internal A subscriber's NEW_GROUP_REQUEST (in SUBSCRIBE or REQUEST_UPDATE): 0 or a value above our newest
   * group asks for a new one (draft-19 §new-group-request); anything else is already there.
   */
  newGroupRequested(value: number): void {
    if (!this.dynamicGroups || this.ended) return;
    if (value !== 0 && this.group && value <= this.group.id) return;
    this.onnewgroup?.();
  }

  /** @internal Serves a SUBSCRIBE the session has accepted: sends SUBSCRIBE_OK, the newest group, then live. */
  async serve(
    stream: RequestStream,
    alias: bigint,
    transport: PublishTransport,
    params: Parameters = {},
  ): Promise<void> {
    const ok: ControlMessage = {
      type: "SUBSCRIBE_OK",
      trackAlias: alias,
      params: this.largest ? { largestObject: this.largest } : {},
      trackProperties: this.dynamicGroups ? new Properties().setInt(DYNAMIC_GROUPS, 1) : new Properties(),
    };
    await stream.writer.write(encodeControl(ok, transport.version));
    const sub = new ServedSubscription(this, stream, alias, transport);
    if (this.ended) {
      sub.done(PublishDoneCode.TRACK_ENDED, "track ended");
      return;
    }
    this.subscribers.add(sub);
    const g = this.group;
    if (g) for (const [i, o] of g.objects.entries()) sub.send({ group: g.id, object: i }, o);
    if (params.newGroupRequest !== undefined) this.newGroupRequested(params.newGroupRequest);
    await sub.watch();
    this.subscribers.delete(sub);
  }
}

/** One open subgroup stream: writes are chained so objects go out in order. */
interface GroupStream {
  group: number;
  writer: Promise<StreamWriter | undefined>;
  chain: Promise<void>;
  subgroup: SubgroupWriter;
  headerSent: boolean;
  /** Writes queued and not yet done. */
  queued: number;
}

/** A SUBSCRIBE being served: its request stream, and the data stream of the group being sent. */
class ServedSubscription {
  private current: GroupStream | undefined;
  private streams = 0;
  private closed = false;
  private readonly open = new Set<GroupStream>();

  constructor(
    private readonly track: TrackPublisher,
    private readonly stream: RequestStream,
    private readonly alias: bigint,
    private readonly transport: PublishTransport,
  ) {}

  send(at: Location, o: PublishedObject): void {
    if (this.closed) return;
    if (!this.current || this.current.group !== at.group) {
      this.endGroup();
      this.dropStale(at.group);
      this.current = this.openGroup(at.group);
    }
    const g = this.current;
    const w = new Writer();
    if (!g.headerSent) g.subgroup.header_(w);
    g.headerSent = true;
    g.subgroup.object(w, {
      objectId: at.object,
      properties: o.properties ?? new Properties(),
      status: 0,
      payload: o.payload,
    });
    const bytes = w.finish();
    g.queued++;
    g.chain = g.chain.then(async () => {
      const writer = await g.writer;
      await writer?.write(bytes);
      g.queued--;
    });
    g.chain.catch(() => this.drop(g));
  }

  private openGroup(group: number): GroupStream {
    this.streams++;
    // Newer groups first within a priority; more important tracks (lower priority) before others.
    const sendOrder = (255 - this.track.priority) * 2 ** 32 + (group % 2 ** 32);
    const writer = this.transport.openUni(sendOrder).then(
      (s) => new StreamWriter(s),
      () => undefined,
    );
    const g: GroupStream = {
      group,
      writer,
      chain: Promise.resolve(),
      headerSent: false,
      queued: 0,
      subgroup: new SubgroupWriter({
        trackAlias: this.alias,
        groupId: group,
        subgroupMode: 0,
        publisherPriority: this.track.priority,
        hasProperties: true,
        endOfGroup: false,
        firstObject: true,
      }),
    };
    this.open.add(g);
    return g;
  }

  /** The current group is complete: FIN its stream after what is queued. */
  endGroup(): void {
    const g = this.current;
    this.current = undefined;
    if (!g) return;
    g.chain = g.chain.then(async () => {
      await (await g.writer)?.finish();
      this.open.delete(g);
    });
    g.chain.catch(() => this.drop(g));
  }

  /** Resets group streams too far behind `group` that are still sending. */
  private dropStale(group: number): void {
    for (const g of this.open) {
      if (g.queued > 0 && group - g.group > this.track.maxGroupsBehind) {
        g.queued = 0;
        this.drop(g, ResetCode.DELIVERY_TIMEOUT);
      }
    }
  }

  private drop(g: GroupStream, code: number = ResetCode.INTERNAL_ERROR): void {
    this.open.delete(g);
    g.writer.then((w) => w?.reset(code));
  }

  /** Reads the request stream until the subscriber cancels (reset, FIN or session end). */
  async watch(): Promise<void> {
    try {
      for (;;) {
        const m = await this.stream.next();
        if (!m || this.closed) break;
        if (m.type === "REQUEST_UPDATE") {
          if (m.params.newGroupRequest !== undefined) this.track.newGroupRequested(m.params.newGroupRequest);
          const ok: ControlMessage = { type: "REQUEST_OK", params: {}, trackProperties: new Properties() };
          await this.stream.writer.write(encodeControl(ok, this.transport.version));
        }
      }
    } catch {
      // Reset by the subscriber, or the session ended.
    }
    this.cancel();
  }

  /** The subscriber left: stop every data stream. */
  private cancel(): void {
    if (this.closed) return;
    this.closed = true;
    for (const g of this.open) g.writer.then((w) => w?.reset(ResetCode.CANCELLED));
    this.open.clear();
    this.stream.cancel();
  }

  /** PUBLISH_DONE after the queued objects, then FIN. */
  done(status: number, reason: string): void {
    if (this.closed) return;
    this.endGroup();
    const pending = [...this.open].map((g) => g.chain.catch(() => {}));
    this.closed = true;
    Promise.all(pending)
      .then(async () => {
        const m: ControlMessage = {
          type: "PUBLISH_DONE",
          status: BigInt(status),
          streamCount: BigInt(this.streams),
          reason,
        };
        await this.stream.writer.write(encodeControl(m, this.transport.version));
        await this.stream.writer.finish();
      })
      .catch(() => {});
  }
}

/**
 * Answers a request the relay opened: SUBSCRIBE and TRACK_STATUS for a track we publish (`track`); everything
 * else is refused (PUBLISH with UNINTERESTED, other track requests with DOES_NOT_EXIST).
 */
export async function answerRequest(
  stream: RequestStream,
  m: ControlMessage,
  track: TrackPublisher | undefined,
  transport: PublishTransport,
  alias: () => bigint,
): Promise<void> {
  const v = transport.version;
  if (track && m.type === "SUBSCRIBE") {
    await track.serve(stream, alias(), transport, m.params);
    return;
  }
  if (track && m.type === "TRACK_STATUS") {
    const largest = track.largest;
    const ok: ControlMessage = {
      type: "REQUEST_OK",
      params: largest ? { largestObject: largest } : {},
      trackProperties: new Properties(),
    };
    await stream.writer.write(encodeControl(ok, v));
    await stream.writer.finish();
    return;
  }
  let code: number;
  if (m.type === "PUBLISH") code = RequestErrorCode.UNINTERESTED;
  else if (m.type === "SUBSCRIBE" || m.type === "FETCH" || m.type === "TRACK_STATUS")
    code = RequestErrorCode.DOES_NOT_EXIST;
  else if (
    m.type === "PUBLISH_NAMESPACE" ||
    m.type === "SUBSCRIBE_NAMESPACE" ||
    m.type === "SUBSCRIBE_TRACKS"
  )
    code = RequestErrorCode.NOT_SUPPORTED;
  else throw new DecodeError(`${m.type} opened a request stream`);
  const refusal: ControlMessage = { type: "REQUEST_ERROR", code: BigInt(code), retryInterval: 0, reason: "" };
  await stream.writer.write(encodeControl(refusal, v));
  await stream.writer.finish();
  stream.reader.cancel(0);
}
