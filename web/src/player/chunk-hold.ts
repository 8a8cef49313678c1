// Encoded chunks held until shortly before they are due. Decoded frames are costly to keep (the worker keeps at
// most 60), so with a delay of seconds (a fixed delay, a rewind) chunks wait here, encoded, and go to the decoders
// in arrival order once they are due within LOOKAHEAD_MS. At the usual delays nothing waits: a chunk due sooner
// than that passes straight through while nothing is held.

/** How long before it is due a chunk goes to its decoder, ms: decoding time with room to spare. */
export const LOOKAHEAD_MS = 500;
/** The most chunks and bytes held (a minute of 30 fps video and 50/s audio is 4 800 chunks). */
export const MAX_HELD_CHUNKS = 8_000;
export const MAX_HELD_BYTES = 64 * 1024 * 1024;

export interface Holdable {
  kind: "video" | "audio";
  /** On the playout timeline, µs. */
  timestamp: number;
  data: ArrayBuffer;
}

export class ChunkHold<T extends Holdable> {
  private chunks: T[] = [];
  private head = 0;
  private bytes = 0;
  /** Chunks dropped because the hold was full. */
  dropped = 0;

  get size(): number {
    return this.chunks.length - this.head;
  }

  /**
   * Takes `chunk` and returns those now due within LOOKAHEAD_MS, in arrival order: `chunk` itself when nothing is
   * held and it is due soon (the usual case); otherwise it waits behind the others.
   */
  push(chunk: T, nowMs: number, delayMs: number): T[] {
    if (this.size === 0 && dueInMs(chunk, nowMs, delayMs) <= LOOKAHEAD_MS) return [chunk];
    this.chunks.push(chunk);
    this.bytes += chunk.data.byteLength;
    while (this.size > MAX_HELD_CHUNKS || (this.bytes > MAX_HELD_BYTES && this.size > 1)) {
      this.take();
      this.dropped++;
    }
    return this.release(nowMs, delayMs);
  }

  /** The held chunks now due within LOOKAHEAD_MS, in arrival order. */
  release(nowMs: number, delayMs: number): T[] {
    const out: T[] = [];
    while (this.size > 0 && dueInMs(this.chunks[this.head] as T, nowMs, delayMs) <= LOOKAHEAD_MS)
      out.push(this.take());
    return out;
  }

  /** When the first held chunk is to be released (ms, wall clock), or undefined when none is held. */
  nextReleaseMs(delayMs: number): number | undefined {
    const c = this.chunks[this.head];
    return c && this.size > 0 ? c.timestamp / 1000 + delayMs - LOOKAHEAD_MS : undefined;
  }

  /** Drops the held chunks of `kind` (or all). */
  clear(kind?: "video" | "audio"): void {
    const kept = kind ? this.chunks.slice(this.head).filter((c) => c.kind !== kind) : [];
    this.chunks = kept;
    this.head = 0;
    this.bytes = kept.reduce((n, c) => n + c.data.byteLength, 0);
  }

  private take(): T {
    const c = this.chunks[this.head++] as T;
    this.bytes -= c.data.byteLength;
    if (this.head > 1024 && this.head * 2 > this.chunks.length) {
      this.chunks = this.chunks.slice(this.head);
      this.head = 0;
    }
    return c;
  }
}

const dueInMs = (c: Holdable, nowMs: number, delayMs: number) => c.timestamp / 1000 + delayMs - nowMs;
