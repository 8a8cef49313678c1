// Bad input from the peer never throws anything but the codec's own errors: random bytes, and every vector with
// each byte changed and each prefix cut, into every decoder.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import {
  DecodeError,
  decodeControl,
  decodeDatagram,
  decodeSubgroupHeader,
  FetchReader,
  fromHex,
  Reader,
  ShortError,
  SubgroupReader,
} from "../../src/wire/index.ts";

const vectors = (
  JSON.parse(readFileSync(new URL("../vectors.json", import.meta.url), "utf8")) as {
    vectors: { hex: string }[];
  }
).vectors;

function decodeAll(bytes: Uint8Array): void {
  for (const f of [
    () => decodeControl(bytes, 19),
    () => decodeControl(bytes, 18),
    () => decodeDatagram(bytes),
    () => {
      const r = new Reader(bytes);
      const h = decodeSubgroupHeader(r.varint(), r);
      const sr = new SubgroupReader(h);
      let at = r.pos;
      while (at < bytes.length) at += sr.read(bytes.subarray(at)).used;
    },
    () => {
      const fr = new FetchReader(1);
      let at = 0;
      while (at < bytes.length) at += fr.read(bytes.subarray(at)).used;
    },
  ]) {
    try {
      f();
    } catch (e) {
      if (!(e instanceof DecodeError || e instanceof ShortError)) throw e;
    }
  }
}

test("random input", () => {
  let seed = 1;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed;
  };
  for (let i = 0; i < 20_000; i++) {
    const bytes = new Uint8Array(rand() % 48);
    for (let j = 0; j < bytes.length; j++) bytes[j] = rand() & 0xff;
    assert.doesNotThrow(() => decodeAll(bytes));
  }
});

test("mutated and truncated vectors", () => {
  for (const v of vectors) {
    const bytes = fromHex(v.hex);
    for (let i = 0; i < bytes.length; i++) {
      for (const x of [0x00, 0xff, (bytes[i] as number) ^ 0x01, (bytes[i] as number) ^ 0x80]) {
        const m = bytes.slice();
        m[i] = x;
        assert.doesNotThrow(() => decodeAll(m));
      }
      assert.doesNotThrow(() => decodeAll(bytes.subarray(0, i)));
    }
  }
});
