// The chat's messages and their rules, free of I/O: participant ids and names, what a participant posts, what
// the room track carries, the room's log (ordered by sequence number, deduplicated), and posts waiting to appear.

import { text as decodeText, utf8 } from "../wire/index.ts";

/** Longest message text, UTF-8 bytes (the relay refuses longer ones). */
export const MAX_TEXT_BYTES = 500;
/** Display names are 1-32 characters. */
export const MAX_NAME_CHARS = 32;
/** Groups fetched for a late joiner's history. */
export const HISTORY_GROUPS = 50;
/** Messages kept on screen (the relay keeps 100). */
export const LOG_SIZE = 100;
/** A post not seen in the room after this long was not delivered (rate-limited or refused). */
export const DELIVERY_TIMEOUT_MS = 2000;

/** A room message as the relay writes it. */
export interface RoomMessage {
  seq: number;
  /** The poster's participant id. */
  id: string;
  name: string;
  text: string;
  /** When the relay accepted it, Unix ms. */
  ts: number;
}

export class ChatError extends Error {
  override name = "ChatError";
}

/** A random participant id: 8 lowercase hex characters. */
export function newParticipantId(): string {
  const b = new Uint8Array(4);
  crypto.getRandomValues(b);
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
}

export function defaultName(id: string): string {
  return `viewer-${id}`;
}

/** A usable display name (trimmed), or a ChatError saying why not. */
export function checkName(name: string): string {
  const n = name.trim();
  const chars = [...n].length;
  if (chars < 1 || chars > MAX_NAME_CHARS) throw new ChatError(`a name is 1-${MAX_NAME_CHARS} characters`);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  if (/[\u0000-\u001f\u007f]/.test(n)) throw new ChatError("a name cannot contain control characters");
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

/** A room object's message, or undefined if it is not one. */
export function decodeRoomMessage(payload: Uint8Array): RoomMessage | undefined {
  let v: unknown;
  try {
    v = JSON.parse(decodeText(payload));
  } catch {
    return undefined;
  }
  if (!v || typeof v !== "object") return undefined;
  const m = v as Record<string, unknown>;
  const { seq, id, name, text, ts } = m;
  if (typeof seq !== "number" || !Number.isSafeInteger(seq) || seq < 0) return undefined;
  if (typeof id !== "string" || typeof name !== "string" || typeof text !== "string") return undefined;
  return { seq, id, name, text, ts: typeof ts === "number" ? ts : 0 };
}

/** The room as shown: messages in sequence order, each once, the newest LOG_SIZE. */
export class RoomLog {
  readonly messages: RoomMessage[] = [];
  private readonly seen = new Set<number>();

  constructor(private readonly size = LOG_SIZE) {}

  /** Adds a message in its place; false if it was already there (or older than everything kept). */
  add(m: RoomMessage): boolean {
    if (this.seen.has(m.seq)) return false;
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
}

/** Our posts not yet seen in the room: matched in order by text; overdue ones were not delivered. */
export class PendingPosts {
  private readonly list: PendingPost[] = [];

  add(text: string, at: number): PendingPost {
    const p = { text: cleanText(text), at };
    this.list.push(p);
    return p;
  }

  /** A room message of ours arrived: the oldest pending post with its text is delivered. */
  confirm(m: RoomMessage): PendingPost | undefined {
    const i = this.list.findIndex((p) => p.text === m.text);
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
