// One participant in a channel's chat room, over its own session.
//
// Posting: PUBLISH_NAMESPACE `chat/<channel>/users/<id>` and serve track `messages`, one group per message
// (0, 1, 2, … per session) holding one object. Reading: SUBSCRIBE to `chat/<channel>` / `room` plus a joining
// FETCH of the last 50 groups, shown in sequence order, each once. The session reconnects with backoff; each
// session publishes a fresh `messages` track, so the relay never reads a message twice.

import { Priority, TrackPublisher } from "../client/publish.ts";
import type { Subscription } from "../client/requests.ts";
import { errorText, Session } from "../client/session.ts";
import {
  ChatError,
  checkName,
  decodeRoomMessage,
  defaultName,
  encodePost,
  HISTORY_GROUPS,
  newParticipantId,
  type PendingPost,
  PendingPosts,
  RoomLog,
  type RoomMessage,
} from "./messages.ts";

export interface RoomOptions {
  relay: string;
  channel: string;
  fingerprintUrl?: string;
  token?: string;
  name?: string;
}

export class ChatRoom {
  readonly id = newParticipantId();
  readonly log = new RoomLog();
  name: string;
  /** The relay pins the name to the first message; after that it cannot change. */
  posted = false;
  /** Called after the log or the connection changed. */
  onchange: (() => void) | undefined;
  /** A post of ours appeared in the room. */
  ondelivered: ((p: PendingPost) => void) | undefined;
  /** A post that did not appear in the room in time (rate-limited or refused by the relay). */
  onundelivered: ((p: PendingPost) => void) | undefined;
  status = "connecting…";
  private messages = new TrackPublisher("messages", Priority.CHAT);
  private readonly pending = new PendingPosts();
  private session: Session | undefined;
  private running = true;
  private readonly timer: ReturnType<typeof setInterval>;

  constructor(readonly o: RoomOptions) {
    this.name = o.name ? checkName(o.name) : defaultName(this.id);
    this.timer = setInterval(() => this.checkPending(), 250);
    this.run().catch(() => {});
  }

  get namespace(): string {
    return `chat/${this.o.channel}`;
  }

  /** Mine: posted by this participant. */
  mine(m: RoomMessage): boolean {
    return m.id === this.id;
  }

  rename(name: string): void {
    if (this.posted) throw new ChatError("the name is fixed once you have posted");
    this.name = checkName(name);
  }

  /** Posts a message (throws a ChatError if it is empty or too long). */
  post(text: string): PendingPost {
    const payload = encodePost(this.name, text);
    this.posted = true;
    const p = this.pending.add(text, performance.now());
    this.messages.newGroup();
    this.messages.write({ payload });
    return p;
  }

  close(): void {
    this.running = false;
    clearInterval(this.timer);
    this.session?.close(0, "left the chat");
  }

  private changed(): void {
    this.onchange?.();
  }

  private checkPending(): void {
    for (const p of this.pending.overdue(performance.now())) this.onundelivered?.(p);
  }

  private receive(payload: Uint8Array): void {
    const m = decodeRoomMessage(payload);
    if (!m || !this.log.add(m)) return;
    const delivered = this.mine(m) ? this.pending.confirm(m) : undefined;
    if (delivered) this.ondelivered?.(delivered);
    this.changed();
  }

  private async run(): Promise<void> {
    let backoff = 250;
    while (this.running) {
      try {
        const opts: Parameters<typeof Session.connect>[1] = {};
        if (this.o.fingerprintUrl) opts.fingerprintUrl = this.o.fingerprintUrl;
        if (this.o.token) opts.token = this.o.token;
        const session = await Session.connect(this.o.relay, opts);
        this.session = session;
        session.ongoaway = () => session.close(0, "going away");
        const room = await session.subscribe(this.namespace, "room", { priority: 1 });
        this.history(session, room).catch(() => {});
        const track = this.messages;
        await session.publishNamespace(`${this.namespace}/users/${this.id}`, (n) =>
          n === "messages" ? track : undefined,
        );
        this.status = `in ${this.namespace} as ${this.id}`;
        backoff = 250;
        this.changed();
        for (let g = await room.nextGroup(); g; g = await room.nextGroup()) {
          const o = await g.next();
          if (o && o.payload.length > 0) this.receive(o.payload);
        }
        await Promise.race([session.closed, new Promise((r) => setTimeout(r, 100))]);
      } catch (e) {
        this.status = `chat unavailable: ${errorText(e)}`;
      }
      this.session?.close();
      this.session = undefined;
      // A new session, a new track: what the old one held must not be read again.
      this.messages.end();
      this.messages = new TrackPublisher("messages", Priority.CHAT);
      if (!this.running) return;
      if (!this.status.startsWith("chat unavailable")) this.status = "reconnecting…";
      this.changed();
      await new Promise((r) => setTimeout(r, backoff));
      backoff = Math.min(backoff * 2, 5000);
    }
  }

  /** The last HISTORY_GROUPS messages before the subscription started (nothing to fetch in a new room). */
  private async history(session: Session, room: Subscription): Promise<void> {
    if (!room.largest) return;
    const f = await session.fetch({ joining: room, start: HISTORY_GROUPS }, { priority: 2 });
    for (let e = await f.next(); e; e = await f.next()) if ("payload" in e) this.receive(e.payload);
  }
}
