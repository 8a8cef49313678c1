// The chat's messages and their rules, free of I/O: names, what a participant posts, what the room and notices
// tracks carry (decoded as hostile input: types and lengths checked, unknown fields ignored), the room's log
// (ordered by sequence number, deduplicated, removals applied), and posts waiting to appear.

import { text as decodeText, utf8 } from "../wire/index.ts";

/** Longest message text, UTF-8 bytes (the relay refuses longer ones). */
export const MAX_TEXT_BYTES = 500;
/** Display names are 1-32 characters. */
export const MAX_NAME_CHARS = 32;
/** Relay-assigned participant ids (`s<n>`): 1-32 of `A-Za-z0-9_-` (the relay takes 1-32 ASCII in a mute). */
export const MAX_ID_CHARS = 32;
/** Longest refusal reason shown from a notice. */
export const MAX_REASON_CHARS = 200;
/** Room objects larger than this are not parsed (a message with its JSON escaping fits in well under half). */
export const MAX_ENTRY_BYTES = 4096;
/** Notice objects larger than this are not parsed. */
export const MAX_NOTICE_BYTES = 1024;
/** Groups fetched for a late joiner's history. */
export const HISTORY_GROUPS = 50;
/** Messages kept on screen (the relay keeps 100). */
export const LOG_SIZE = 100;
/** A post neither seen in the room nor refused by a notice after this long is taken as not delivered. */
export const DELIVERY_TIMEOUT_MS = 2000;

/** A room message as the relay writes it. */
export interface RoomMessage {
  seq: number;
  /** The poster's participant id, given by the relay. */
  id: string;
  name: string;
  text: string;
  /** When the relay accepted it, Unix ms (0 if absent). */
  ts: number;
  /** Set for the channel's streamer. */
  role?: "streamer";
}

/** A room entry that removes an earlier message (the streamer's moderation). */
export interface RoomRemoval {
  seq: number;
  kind: "remove";
  target: number;
  ts: number;
}

export type RoomEntry = RoomMessage | RoomRemoval;

export const isRemoval = (e: RoomEntry): e is RoomRemoval => "kind" in e && e.kind === "remove";

/** What the relay tells one participant on its `notices` track. */
export type Notice = { you: string } | { refused: string; post: number | null };

export class ChatError extends Error {
  override name = "ChatError";
}

/** A random id: 8 lowercase hex characters (the participant namespace's `<pid>`, default names). */
export function newParticipantId(): string {
  const b = new Uint8Array(4);
  crypto.getRandomValues(b);
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
}

export function defaultName(id: string): string {
  return `viewer-${id}`;
}

/** Control characters (Unicode Cc, what the relay's `char::is_control` is). */
const CONTROL = /\p{Cc}/u;
/** A lone surrogate (JSON can carry one as `\ud800`; it is no character). */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/** A usable display name (trimmed), or a ChatError saying why not. */
export function checkName(name: string): string {
  const n = name.trim();
  const chars = [...n].length;
  if (chars < 1 || chars > MAX_NAME_CHARS) throw new ChatError(`a name is 1-${MAX_NAME_CHARS} characters`);
  if (CONTROL.test(n)) throw new ChatError("a name cannot contain control characters");
  if (LONE_SURROGATE.test(n)) throw new ChatError("a name must be valid Unicode");
  return n;
}

/** Message text as the relay keeps it: trimmed, control characters other than newlines removed. */
export function cleanText(text: string): string {
  return text.trim().replace(/\p{Cc}/gu, (c) => (c === "\n" ? c : ""));
}

/** The object a participant posts: UTF-8 JSON `{"name", "text"}`. */
export function encodePost(name: string, text: string): Uint8Array {
  const n = checkName(name);
  const t = cleanText(text);
  if (t.length === 0) throw new ChatError("the message is empty");
  const bytes = utf8.encode(t).length;
  if (bytes > MAX_TEXT_BYTES)
    throw new ChatError(`the message is ${bytes} bytes; at most ${MAX_TEXT_BYTES} are allowed`);
  return utf8.encode(JSON.stringify({ name: n, text: t }));
}

/** The streamer's request to remove room message `seq`: `{"name", "mod": "remove", "seq"}`. */
export function encodeRemove(name: string, seq: number): Uint8Array {
  if (!isSeq(seq)) throw new ChatError("not a message number");
  return utf8.encode(JSON.stringify({ name: checkName(name), mod: "remove", seq }));
}

/** The streamer's request to mute participant `id`: `{"name", "mod": "mute", "id"}`. */
export function encodeMute(name: string, id: string): Uint8Array {
  if (!isId(id)) throw new ChatError("not a participant id");
  return utf8.encode(JSON.stringify({ name: checkName(name), mod: "mute", id }));
}

const isSeq = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

const isId = (v: unknown): v is string =>
  typeof v === "string" && v.length >= 1 && v.length <= MAX_ID_CHARS && /^[A-Za-z0-9_-]+$/.test(v);

/** A display name from the relay: trimmed, 1-32 characters, no control characters. */
function nameFrom(v: unknown): string | undefined {
  if (typeof v !== "string" || v.length > 4 * MAX_NAME_CHARS) return undefined;
  try {
    return checkName(v);
  } catch {
    return undefined;
  }
}

/** A message text from the relay: 1-500 UTF-8 bytes, not blank, no control characters but newlines. */
function textFrom(v: unknown): string | undefined {
  if (typeof v !== "string" || v.length > MAX_TEXT_BYTES || v.trim().length === 0) return undefined;
  if (CONTROL.test(v.replaceAll("\n", "")) || LONE_SURROGATE.test(v)) return undefined;
  if (utf8.encode(v).length > MAX_TEXT_BYTES) return undefined;
  return v;
}

/** A JSON object (not an array) from at most `max` bytes of UTF-8, or undefined. */
function objectFrom(payload: Uint8Array, max: number): Record<string, unknown> | undefined {
  if (payload.length === 0 || payload.length > max) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(decodeText(payload));
  } catch {
    return undefined;
  }
  return v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

/** A room object's entry (a message or a removal), or undefined if it is neither or breaks a limit. */
export function decodeRoomEntry(payload: Uint8Array): RoomEntry | undefined {
  const m = objectFrom(payload, MAX_ENTRY_BYTES);
  if (!m || !isSeq(m.seq)) return undefined;
  const seq = m.seq;
  const ts = isSeq(m.ts) ? m.ts : 0;
  if (m.kind !== undefined) {
    // A removal refers to an earlier entry; any other kind is not for us.
    if (m.kind !== "remove" || !isSeq(m.target) || m.target >= seq) return undefined;
    return { seq, kind: "remove", target: m.target, ts };
  }
  if (!isId(m.id)) return undefined;
  const name = nameFrom(m.name);
  const text = textFrom(m.text);
  if (name === undefined || text === undefined) return undefined;
  const out: RoomMessage = { seq, id: m.id, name, text, ts };
  if (m.role === "streamer") out.role = "streamer";
  return out;
}

/** A notice from the relay (`{"you"}` or `{"refused", "post"}`), or undefined. */
export function decodeNotice(payload: Uint8Array): Notice | undefined {
  const n = objectFrom(payload, MAX_NOTICE_BYTES);
  if (!n) return undefined;
  const { you, refused, post } = n;
  if (you !== undefined) return refused === undefined && isId(you) ? { you } : undefined;
  if (typeof refused !== "string" || refused.length === 0 || refused.length > MAX_REASON_CHARS)
    return undefined;
  if (CONTROL.test(refused) || LONE_SURROGATE.test(refused)) return undefined;
  if (post !== undefined && post !== null && !isSeq(post)) return undefined;
  return { refused, post: post ?? null };
}

/**
 * The room as shown: messages in sequence order, each once, the newest LOG_SIZE, without removed ones (whether
 * the removal comes before or after its target).
 */
export class RoomLog {
  readonly messages: RoomMessage[] = [];
  private readonly seen = new Set<number>();
  /** Removed seqs, oldest first, at most 4 x size. */
  private readonly removed = new Set<number>();

  constructor(private readonly size = LOG_SIZE) {}

  /** Whether the entry numbered `seq` was shown or removed already. */
  knows(seq: number): boolean {
    return this.seen.has(seq) || this.removed.has(seq);
  }

  /** Applies an entry; true if what is shown changed. */
  add(e: RoomEntry): boolean {
    return isRemoval(e) ? this.remove(e.target) : this.addMessage(e);
  }

  private remove(target: number): boolean {
    if (this.removed.has(target)) return false;
    this.removed.add(target);
    if (this.removed.size > 4 * this.size) this.removed.delete(this.removed.values().next().value as number);
    if (!this.seen.delete(target)) return false;
    const i = this.messages.findIndex((m) => m.seq === target);
    if (i >= 0) this.messages.splice(i, 1);
    return true;
  }

  private addMessage(m: RoomMessage): boolean {
    if (this.knows(m.seq)) return false;
    const list = this.messages;
    if (list.length >= this.size && m.seq < (list[0] as RoomMessage).seq) return false;
    let at = list.length;
    while (at > 0 && (list[at - 1] as RoomMessage).seq > m.seq) at--;
    list.splice(at, 0, m);
    this.seen.add(m.seq);
    while (list.length > this.size) this.seen.delete((list.shift() as RoomMessage).seq);
    return true;
  }
}

export interface PendingPost {
  text: string;
  at: number;
  /** The group of our messages track that carries it. */
  group: number;
  /** Which messages track (one per session) carries it. */
  epoch: number;
}

/**
 * Our posts not yet seen in the room: confirmed in order by text when they appear, refused by group when the
 * relay's notice says so; the rest are overdue after DELIVERY_TIMEOUT_MS.
 */
export class PendingPosts {
  private readonly list: PendingPost[] = [];

  add(text: string, at: number, group = 0, epoch = 0): PendingPost {
    const p = { text: cleanText(text), at, group, epoch };
    this.list.push(p);
    return p;
  }

  /** A room message of ours arrived: the oldest pending post with its text is delivered. */
  confirm(m: RoomMessage): PendingPost | undefined {
    const i = this.list.findIndex((p) => p.text === m.text);
    return i < 0 ? undefined : this.list.splice(i, 1)[0];
  }

  /** The relay refused group `group` of track `epoch`: that post, removed, if it is pending. */
  refuse(epoch: number, group: number): PendingPost | undefined {
    const i = this.list.findIndex((p) => p.epoch === epoch && p.group === group);
    return i < 0 ? undefined : this.list.splice(i, 1)[0];
  }

  /** Posts pending longer than DELIVERY_TIMEOUT_MS at `now`: removed and returned. */
  overdue(now: number): PendingPost[] {
    const out: PendingPost[] = [];
    for (let i = 0; i < this.list.length; ) {
      const p = this.list[i] as PendingPost;
      if (now - p.at >= DELIVERY_TIMEOUT_MS) {
        out.push(p);
        this.list.splice(i, 1);
      } else i++;
    }
    return out;
  }

  get size(): number {
    return this.list.length;
  }
}
