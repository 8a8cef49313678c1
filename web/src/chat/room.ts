// One participant in a channel's chat room, over its own session.
//
// Posting: PUBLISH_NAMESPACE `chat/<channel>/users/<pid>` (a random pid per session) and serve track `messages`,
// one group per post (0, 1, 2, … per session) holding one object. A track replays only its newest group to a new
// subscriber, so posts wait in an outbox until the relay subscribes. The relay binds that namespace to the session
// and names the participant itself: its `notices` track in the namespace says `{"you": id}` first, then
// `{"refused", "post"}` for each post it refuses (`post` = our group id). Reading: SUBSCRIBE to
// `chat/<channel>` / `room` plus a joining FETCH of the last 50 groups, shown in sequence order, each once,
// removals applied. The session reconnects with backoff; each session publishes a fresh `messages` track, so
// the relay never reads a post twice.

import { Priority, TrackPublisher } from "../client/publish.ts";
import { RequestError, type Subscription } from "../client/requests.ts";
import { errorText, Session } from "../client/session.ts";
import { RequestErrorCode } from "../wire/index.ts";
import {
  ChatError,
  checkName,
  decodeNotice,
  decodeRoomEntry,
  defaultName,
  encodeMute,
  encodePost,
  encodeRemove,
  HISTORY_GROUPS,
  isRemoval,
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

/** SUBSCRIBEs to our notices refused with DOES_NOT_EXIST are tried again this many times (100 ms, 200 ms, …). */
const NOTICE_RETRIES = 4;
/** Notices fetched from before our subscription (the relay keeps 16). */
const NOTICE_HISTORY = 16;
/** Moderation requests remembered for their refusals. */
const MODERATION_KEPT = 32;
/** Posts waiting for the relay to subscribe. */
const OUTBOX_SIZE = 20;

/** A post not yet written: a message (its pending post) or a moderation request (what it asks). */
interface Outgoing {
  payload: Uint8Array;
  post?: PendingPost;
  what?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class ChatRoom {
  readonly log = new RoomLog();
  name: string;
  /** Our participant id as the relay gave it in this session (undefined until its notice). */
  you: string | undefined;
  /** Our own messages came back with role "streamer": the relay lets us moderate. */
  streamer = false;
  /** The relay pins the name to the first accepted message; after that it cannot change. */
  posted = false;
  /** Called after the log or the connection changed. */
  onchange: (() => void) | undefined;
  /** A post of ours appeared in the room. */
  ondelivered: ((p: PendingPost) => void) | undefined;
  /** A post the relay refused (its reason, from a notice), or that did not appear in time (no reason). */
  onundelivered: ((p: PendingPost, reason?: string) => void) | undefined;
  /** A refusal of something else: a moderation request (`what`), or this participant as a whole. */
  onrefused: ((reason: string, what?: string) => void) | undefined;
  status = "connecting…";
  private messages = new TrackPublisher("messages", Priority.CHAT);
  /** Which messages track is current (one per session). */
  private epoch = 0;
  /** Some post of ours was accepted (the name is pinned). */
  private accepted = false;
  private readonly pending = new PendingPosts();
  private readonly moderation = new Map<string, string>();
  private readonly outbox: Outgoing[] = [];
  private flushing: ReturnType<typeof setTimeout> | undefined;
  private session: Session | undefined;
  private running = true;
  private readonly timer: ReturnType<typeof setInterval>;

  constructor(readonly o: RoomOptions) {
    this.name = o.name ? checkName(o.name) : defaultName(newParticipantId());
    this.timer = setInterval(() => this.checkPending(), 250);
    this.run().catch(() => {});
  }

  get namespace(): string {
    return `chat/${this.o.channel}`;
  }

  /** Mine: posted by this participant in this session. */
  mine(m: RoomMessage): boolean {
    return this.you !== undefined && m.id === this.you;
  }

  rename(name: string): void {
    if (this.posted) throw new ChatError("the name is fixed once you have posted");
    this.name = checkName(name);
  }

  /** Posts a message (throws a ChatError if it is empty or too long). */
  post(text: string): PendingPost {
    const payload = encodePost(this.name, text);
    this.queue();
    this.posted = true;
    // Group, track and time are set when it is written.
    const post = this.pending.add(text, Number.POSITIVE_INFINITY, -1, -1);
    this.outbox.push({ payload, post });
    this.flush();
    return post;
  }

  /** Asks the relay to remove room message `seq` (only the channel's streamer may). */
  remove(seq: number): void {
    this.moderate(encodeRemove(this.name, seq), `remove message ${seq}`);
  }

  /** Asks the relay to mute participant `id` (only the channel's streamer may). */
  mute(id: string): void {
    this.moderate(encodeMute(this.name, id), `mute ${id}`);
  }

  close(): void {
    this.running = false;
    clearInterval(this.timer);
    clearTimeout(this.flushing);
    this.session?.close(0, "left the chat");
  }

  private queue(): void {
    if (this.outbox.length >= OUTBOX_SIZE) throw new ChatError("too many messages waiting for the relay");
  }

  private moderate(payload: Uint8Array, what: string): void {
    this.queue();
    this.outbox.push({ payload, what });
    this.flush();
  }

  /** Writes the outbox once the relay reads our track (else tries again in 50 ms). */
  private flush(): void {
    clearTimeout(this.flushing);
    this.flushing = undefined;
    if (this.outbox.length === 0 || !this.running) return;
    if (this.messages.subscriberCount === 0) {
      this.flushing = setTimeout(() => this.flush(), 50);
      return;
    }
    for (const q of this.outbox.splice(0)) {
      const group = this.messages.newGroup();
      this.messages.write({ payload: q.payload });
      if (q.post) Object.assign(q.post, { group, epoch: this.epoch, at: performance.now() });
      if (q.what) this.moderation.set(`${this.epoch}/${group}`, q.what);
      if (this.moderation.size > MODERATION_KEPT)
        this.moderation.delete(this.moderation.keys().next().value as string);
    }
  }

  private changed(): void {
    this.onchange?.();
  }

  private checkPending(): void {
    for (const p of this.pending.overdue(performance.now())) this.onundelivered?.(p);
  }

  /** A message of ours is in the room: its pending post is delivered, its role tells whether we moderate. */
  private ours(m: RoomMessage): void {
    if (m.role === "streamer") this.streamer = true;
    const delivered = this.pending.confirm(m);
    if (!delivered) return;
    this.accepted = true;
    this.ondelivered?.(delivered);
  }

  private receive(payload: Uint8Array): void {
    const e = decodeRoomEntry(payload);
    if (!e) return;
    if (!isRemoval(e) && !this.log.knows(e.seq) && this.mine(e)) this.ours(e);
    if (this.log.add(e)) this.changed();
  }

  private notice(payload: Uint8Array, epoch: number): void {
    const n = decodeNotice(payload);
    if (!n || epoch !== this.epoch) return;
    if ("you" in n) {
      if (this.you !== undefined) return;
      this.you = n.you;
      this.status = `in ${this.namespace} as ${n.you}`;
      // Messages of ours that arrived before our id.
      for (const m of this.log.messages) if (this.mine(m)) this.ours(m);
      this.changed();
      return;
    }
    const p = n.post === null ? undefined : this.pending.refuse(epoch, n.post);
    if (p) {
      // Nothing accepted, nothing in flight: the relay has not pinned a name, so it may change.
      if (!this.accepted && this.pending.size === 0) this.posted = false;
      this.onundelivered?.(p, n.refused);
      this.changed();
      return;
    }
    const key = `${epoch}/${n.post}`;
    const what = this.moderation.get(key);
    this.moderation.delete(key);
    this.onrefused?.(n.refused, what);
  }

  private async run(): Promise<void> {
    let backoff = 250;
    while (this.running) {
      const epoch = this.epoch;
      const track = this.messages;
      this.you = undefined;
      try {
        const opts: Parameters<typeof Session.connect>[1] = {};
        if (this.o.fingerprintUrl) opts.fingerprintUrl = this.o.fingerprintUrl;
        if (this.o.token) opts.token = this.o.token;
        const session = await Session.connect(this.o.relay, opts);
        this.session = session;
        session.ongoaway = () => session.close(0, "going away");
        const room = await session.subscribe(this.namespace, "room", { priority: 1 });
        this.history(session, room).catch(() => {});
        const users = `${this.namespace}/users/${newParticipantId()}`;
        await session.publishNamespace(users, (n) => (n === "messages" ? track : undefined));
        this.status = `in ${this.namespace}`;
        this.listen(session, users, epoch).catch((e) => {
          if (epoch !== this.epoch || this.you !== undefined) return;
          this.status = `in ${this.namespace}, but the relay gave no participant id: ${errorText(e)}`;
          this.changed();
        });
        backoff = 250;
        this.changed();
        for (let g = await room.nextGroup(); g; g = await room.nextGroup()) {
          const o = await g.next();
          if (o && o.payload.length > 0) this.receive(o.payload);
        }
        await Promise.race([session.closed, sleep(100)]);
      } catch (e) {
        this.status = `chat unavailable: ${errorText(e)}`;
      }
      this.session?.close();
      this.session = undefined;
      // A new session, a new track: what the old one held must not be read again.
      this.messages.end();
      this.messages = new TrackPublisher("messages", Priority.CHAT);
      this.epoch++;
      this.you = undefined;
      if (!this.running) return;
      if (!this.status.startsWith("chat unavailable")) this.status = "reconnecting…";
      this.changed();
      await sleep(backoff);
      backoff = Math.min(backoff * 2, 5000);
    }
  }

  /** The relay's notices to us: SUBSCRIBE (retried while the relay does not know the namespace yet). */
  private async listen(session: Session, users: string, epoch: number): Promise<void> {
    let sub: Subscription | undefined;
    for (let attempt = 0; !sub; attempt++) {
      try {
        sub = await session.subscribe(users, "notices", { priority: 0 });
      } catch (e) {
        const missing = e instanceof RequestError && e.code === RequestErrorCode.DOES_NOT_EXIST;
        if (!missing || attempt >= NOTICE_RETRIES || epoch !== this.epoch) throw e;
        await sleep(100 * 2 ** attempt);
      }
    }
    const first = sub.largest?.group;
    if (first !== undefined && first > 0) this.earlierNotices(session, sub, first, epoch).catch(() => {});
    for (let g = await sub.nextGroup(); g; g = await sub.nextGroup()) {
      const o = await g.next();
      if (o) this.notice(o.payload, epoch);
    }
  }

  /** Notices written before our subscription started (our id among them), by a joining FETCH. */
  private async earlierNotices(
    session: Session,
    sub: Subscription,
    first: number,
    epoch: number,
  ): Promise<void> {
    const f = await session.fetch({ joining: sub, start: Math.min(first, NOTICE_HISTORY) }, { priority: 0 });
    for (let e = await f.next(); e; e = await f.next())
      if ("payload" in e && e.groupId < first) this.notice(e.payload, epoch);
  }

  /** The last HISTORY_GROUPS messages before the subscription started (nothing to fetch in a new room). */
  private async history(session: Session, room: Subscription): Promise<void> {
    if (!room.largest) return;
    const f = await session.fetch({ joining: room, start: HISTORY_GROUPS }, { priority: 2 });
    for (let e = await f.next(); e; e = await f.next()) if ("payload" in e) this.receive(e.payload);
  }
}
