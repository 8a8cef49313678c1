// StreamReader: values split across any chunking decode exactly as when whole; a large value arriving in many
// chunks is decoded in a few attempts (the decoder's "need n more bytes" is honoured), not one failed parse and
// one copy of the whole buffer per chunk.

import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { StreamReader } from "../../src/client/stream.ts";
import { DecodeError, Reader, Writer } from "../../src/wire/index.ts";

/** A stream that delivers `chunks` one read at a time. */
function streamOf(chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream<Uint8Array>({
    pull(c) {
      if (i < chunks.length) c.enqueue(chunks[i++] as Uint8Array);
      else c.close();
    },
  });
}

/** A length-prefixed value: varint length, then the bytes. */
const lengthPrefixed = (d: Uint8Array) => {
  const r = new Reader(d);
  const n = r.varint();
  const value = r.bytes(n);
  return { value, used: r.pos };
};

function encode(values: Uint8Array[]): Uint8Array {
  const w = new Writer();
  for (const v of values) w.varint(v.length).bytes(v);
  return w.finish();
}

/** Splits `bytes` at the given cut points. */
function split(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let at = 0;
  for (const p of [...points, bytes.length]) {
    out.push(bytes.subarray(at, p));
    at = p;
  }
  return out;
}

async function readAll(reader: StreamReader): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for (let v = await reader.decode(lengthPrefixed); v; v = await reader.decode(lengthPrefixed)) out.push(v);
  return out;
}

test("a 100 KB value in 100 chunks takes a few decode attempts", async () => {
  const big = new Uint8Array(100_000).map((_, i) => i % 251);
  const bytes = encode([big, new Uint8Array([1, 2, 3])]);
  const chunks = split(
    bytes,
    Array.from({ length: 99 }, (_, i) => (i + 1) * 1000),
  );
  const reader = new StreamReader(streamOf(chunks));
  const values = await readAll(reader);
  assert.deepEqual(values, [big, new Uint8Array([1, 2, 3])]);
  // The length is known after the first chunk; the next attempt is when the whole value is there.
  assert.ok(reader.attempts <= 4, `${reader.attempts} decode attempts`);
});

test("any chunking decodes like the whole stream", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 8 }),
      fc.array(fc.nat(), { maxLength: 20 }),
      async (values, cuts) => {
        const bytes = encode(values);
        const reader = new StreamReader(streamOf(split(bytes, cuts)));
        assert.deepEqual(await readAll(reader), values);
        assert.equal(await reader.atEnd(), true);
      },
    ),
    { numRuns: 300 },
  );
});

test("a stream that ends inside a value is an error", async () => {
  const bytes = encode([new Uint8Array(50)]);
  const reader = new StreamReader(streamOf([bytes.subarray(0, 20)]));
  await assert.rejects(reader.decode(lengthPrefixed), DecodeError);
});
