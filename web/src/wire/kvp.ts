// Key-Value-Pairs (draft-19 §1.4.3): Setup Options, Track Properties and Object Properties. Types are delta
// encoded in ascending order; an even type carries a varint, an odd type a length (≤ 65535) and bytes.

import type { Reader, Writer } from "./buffer.ts";
import { DecodeError, EncodeError, SessionCode } from "./errors.ts";

export const MAX_KVP_VALUE_LEN = 0xffff;
const U64_MAX = (1n << 64n) - 1n;

export type KeyValuePair = { key: bigint; int: bigint } | { key: bigint; bytes: Uint8Array };

/** An ordered list of pairs (wire order; a type may repeat). */
export class Properties {
  readonly pairs: KeyValuePair[] = [];

  static of(...pairs: KeyValuePair[]): Properties {
    const p = new Properties();
    for (const x of pairs) p.push(x);
    return p;
  }

  get size(): number {
    return this.pairs.length;
  }

  /** Adds a pair after any others of the same or lower type. */
  push(pair: KeyValuePair): this {
    const odd = (pair.key & 1n) === 1n;
    if (odd !== "bytes" in pair)
      throw new EncodeError(`property ${pair.key}: odd types carry bytes, even ints`);
    let at = this.pairs.length;
    while (at > 0 && (this.pairs[at - 1] as KeyValuePair).key > pair.key) at--;
    this.pairs.splice(at, 0, pair);
    return this;
  }

  setInt(key: number | bigint, value: number | bigint): this {
    return this.push({ key: BigInt(key), int: BigInt(value) });
  }

  setBytes(key: number | bigint, value: Uint8Array): this {
    return this.push({ key: BigInt(key), bytes: value });
  }

  /** The first varint value of `key`, as a number when it is exact, else undefined. */
  getInt(key: number | bigint): number | undefined {
    const k = BigInt(key);
    for (const p of this.pairs) {
      if (p.key === k && "int" in p)
        return p.int <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(p.int) : undefined;
    }
    return undefined;
  }

  getBytes(key: number | bigint): Uint8Array | undefined {
    const k = BigInt(key);
    for (const p of this.pairs) if (p.key === k && "bytes" in p) return p.bytes;
    return undefined;
  }

  /** Reads pairs until the bounded reader is exhausted. */
  static decodeAll(r: Reader): Properties {
    const p = new Properties();
    let key = 0n;
    while (!r.done) {
      key += r.varintBig();
      if (key > U64_MAX) throw new DecodeError("key-value type overflows");
      if (key % 2n === 0n) {
        p.pairs.push({ key, int: r.varintBig() });
      } else {
        const len = r.varint();
        if (len > MAX_KVP_VALUE_LEN)
          throw new DecodeError(`key-value length ${len}`, SessionCode.PROTOCOL_VIOLATION);
        p.pairs.push({ key, bytes: r.bytes(len) });
      }
    }
    return p;
  }

  /** Reads a `Length (vi64)` then that many bytes of pairs (Object Properties). */
  static decodeBlock(r: Reader): Properties {
    const len = r.varint();
    return Properties.decodeAll(r.sub(len, "properties"));
  }

  encodeAll(w: Writer): void {
    let prev = 0n;
    for (const p of this.pairs) {
      w.varint(p.key - prev);
      if ("int" in p) w.varint(p.int);
      else w.lenBytes(p.bytes, MAX_KVP_VALUE_LEN, "key-value value");
      prev = p.key;
    }
  }

  encodeBlock(w: Writer): void {
    w.lenPrefixed((inner) => this.encodeAll(inner), Number.MAX_SAFE_INTEGER, "properties");
  }
}

/** Reason Phrase (§1.4.4): at most 1024 bytes of UTF-8. */
export const MAX_REASON_LEN = 1024;
