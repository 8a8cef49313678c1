// Byte reader and writer with the draft-17+ leading-ones varint (draft-19 §1.4.1): the number of leading 1 bits
// of the first byte is the length minus one (1 to 9 bytes); the other bits hold the value, big-endian.

import { DecodeError, EncodeError, ShortError } from "./errors.ts";

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const U64_MAX = (1n << 64n) - 1n;

/** The encoded length announced by a first byte. */
export function varintLenFromFirst(first: number): number {
  let n = 0;
  while (n < 8 && first & (0x80 >> n)) n++;
  return n + 1;
}

/** The length of the minimal encoding of `value`. */
export function varintLen(value: number | bigint): number {
  const v = BigInt(value);
  if (v < 0n || v > U64_MAX) throw new EncodeError(`varint out of range: ${v}`);
  if (v >= 1n << 56n) return 9;
  let len = 1;
  while (v >= 1n << BigInt(7 * len)) len++;
  return len;
}

/**
 * Reads from a byte array. An unbounded reader (a stream's receive buffer) throws {@link ShortError} when the
 * data ends early; a bounded one (a length-delimited body) throws {@link DecodeError} instead, since nothing more
 * can arrive for it.
 */
export class Reader {
  pos = 0;

  constructor(
    readonly data: Uint8Array,
    readonly bounded = false,
    private readonly what = "message",
  ) {}

  get remaining(): number {
    return this.data.length - this.pos;
  }

  get done(): boolean {
    return this.pos >= this.data.length;
  }

  private need(n: number): void {
    if (this.remaining < n) {
      if (this.bounded) throw new DecodeError(`${this.what} truncated`);
      throw new ShortError(n - this.remaining);
    }
  }

  u8(): number {
    this.need(1);
    return this.data[this.pos++] as number;
  }

  /** A varint as a bigint: every 64-bit value. Nothing is consumed when short. */
  varintBig(): bigint {
    this.need(1);
    const first = this.data[this.pos] as number;
    const len = varintLenFromFirst(first);
    this.need(len);
    let v = len === 9 ? 0n : BigInt(first & (0x7f >> (len - 1)));
    for (let i = 1; i < len; i++) v = (v << 8n) | BigInt(this.data[this.pos + i] as number);
    this.pos += len;
    return v;
  }

  /** A varint as a number; values above 2^53 - 1 are refused (use {@link varintBig} where they are legal). */
  varint(): number {
    this.need(1);
    const first = this.data[this.pos] as number;
    const len = varintLenFromFirst(first);
    if (len === 1) {
      this.pos++;
      return first;
    }
    if (len >= 8) {
      const start = this.pos;
      const v = this.varintBig();
      if (v > MAX_SAFE) {
        this.pos = start;
        throw new DecodeError(`integer ${v} too large for this client`);
      }
      return Number(v);
    }
    this.need(len);
    // At most 49 bits: exact in a double.
    let v = first & (0x7f >> (len - 1));
    for (let i = 1; i < len; i++) v = v * 256 + (this.data[this.pos + i] as number);
    this.pos += len;
    return v;
  }

  bytes(n: number): Uint8Array {
    this.need(n);
    const out = this.data.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** A varint length (at most `max`) and that many bytes. */
  lenBytes(max: number, what: string): Uint8Array {
    const len = this.varint();
    if (len > max) throw new DecodeError(`${what} length ${len} over ${max}`);
    return this.bytes(len);
  }

  /** The rest of the data. */
  rest(): Uint8Array {
    return this.bytes(this.remaining);
  }

  /** A bounded reader over the next `n` bytes (which must be present). */
  sub(n: number, what: string): Reader {
    return new Reader(this.bytes(n), true, what);
  }
}

/** Appends bytes to a growing buffer. */
export class Writer {
  private buf: Uint8Array;
  len = 0;

  constructor(capacity = 64) {
    this.buf = new Uint8Array(capacity);
  }

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  u8(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 255) throw new EncodeError(`byte out of range: ${v}`);
    this.reserve(1);
    this.buf[this.len++] = v;
    return this;
  }

  u16(v: number): this {
    this.reserve(2);
    this.buf[this.len++] = v >> 8;
    this.buf[this.len++] = v & 0xff;
    return this;
  }

  /** Writes the minimal encoding. */
  varint(value: number | bigint): this {
    if (typeof value === "number" && (!Number.isSafeInteger(value) || value < 0)) {
      throw new EncodeError(`varint out of range: ${value}`);
    }
    const len = varintLen(value);
    this.reserve(len);
    if (typeof value === "number" && len <= 7) {
      let v = value;
      for (let i = len - 1; i >= 0; i--) {
        this.buf[this.len + i] = v % 256;
        v = Math.floor(v / 256);
      }
      if (len > 1) (this.buf[this.len] as number) |= (0xff00 >> (len - 1)) & 0xff;
      this.len += len;
      return this;
    }
    let v = BigInt(value);
    for (let i = len - 1; i >= (len === 9 ? 1 : 0); i--) {
      this.buf[this.len + i] = Number(v & 0xffn);
      v >>= 8n;
    }
    if (len === 9) this.buf[this.len] = 0xff;
    else (this.buf[this.len] as number) |= (0xff00 >> (len - 1)) & 0xff;
    this.len += len;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.reserve(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
    return this;
  }

  lenBytes(b: Uint8Array, max: number, what: string): this {
    if (b.length > max) throw new EncodeError(`${what} longer than ${max}`);
    return this.varint(b.length).bytes(b);
  }

  /** Writes `f`'s output prefixed by its varint length. */
  lenPrefixed(f: (w: Writer) => void, max: number, what: string): this {
    const inner = new Writer();
    f(inner);
    return this.lenBytes(inner.finish(), max, what);
  }

  /** Overwrites two bytes at `at` (a reserved u16 length). */
  patchU16(at: number, v: number): void {
    this.buf[at] = v >> 8;
    this.buf[at + 1] = v & 0xff;
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

export const utf8 = new TextEncoder();
const utf8d = new TextDecoder("utf-8", { fatal: false });

export function text(b: Uint8Array): string {
  return utf8d.decode(b);
}

export function toHex(b: Uint8Array): string {
  let s = "";
  for (const x of b) s += x.toString(16).padStart(2, "0");
  return s;
}

export function fromHex(h: string): Uint8Array {
  const s = h.replace(/\s+/g, "");
  if (s.length % 2 || /[^0-9a-fA-F]/.test(s)) throw new Error(`bad hex: ${h}`);
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function concat(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
