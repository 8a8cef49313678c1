// The hold for encoded chunks: nothing waits at short delays; at long ones chunks go to the decoder in arrival
// order shortly before they are due; bounded.

import assert from "node:assert/strict";
import { test } from "node:test";
import { ChunkHold, LOOKAHEAD_MS, MAX_HELD_CHUNKS } from "../../src/player/chunk-hold.ts";

const chunk = (ms: number, kind: "video" | "audio" = "video", bytes = 10) => ({
  kind,
  timestamp: ms * 1000,
  data: new ArrayBuffer(bytes),
});

test("at a short delay a chunk passes straight through", () => {
  const hold = new ChunkHold();
  const c = chunk(1000);
  assert.deepEqual(hold.push(c, 1010, 50), [c]);
  assert.equal(hold.size, 0);
});

test("at a 10 s delay chunks wait, encoded, and leave in arrival order when due within the lookahead", () => {
  const hold = new ChunkHold();
  const delay = 10_000;
  const chunks = [chunk(1000), chunk(1020, "audio"), chunk(1033), chunk(1066)];
  for (const c of chunks) assert.deepEqual(hold.push(c, 1100, delay), []);
  assert.equal(hold.size, 4);
  assert.equal(hold.nextReleaseMs(delay), 1000 + delay - LOOKAHEAD_MS);
  assert.deepEqual(hold.release(1000 + delay - LOOKAHEAD_MS - 1, delay), []);
  assert.deepEqual(hold.release(1033 + delay - LOOKAHEAD_MS, delay), chunks.slice(0, 3));
  // A chunk due soon does not overtake one still held.
  const soon = chunk(2000);
  assert.deepEqual(hold.push(soon, 1066 + delay - LOOKAHEAD_MS - 5, delay), []);
  assert.deepEqual(hold.release(2000 + delay, delay), [chunks[3], soon]);
  assert.equal(hold.nextReleaseMs(delay), undefined);
});

test("the delay dropping (back to live) releases what is held at once", () => {
  const hold = new ChunkHold();
  for (let i = 0; i < 10; i++) hold.push(chunk(1000 + i * 33), 1400, 10_000);
  assert.equal(hold.release(1400, 50).length, 10);
});

test("bounded: the oldest go first, counted", () => {
  const hold = new ChunkHold();
  for (let i = 0; i < MAX_HELD_CHUNKS + 5; i++) hold.push(chunk(1000 + i), 0, 60_000);
  assert.equal(hold.size, MAX_HELD_CHUNKS);
  assert.equal(hold.dropped, 5);
  assert.equal(hold.release(1_000_000, 0)[0]?.timestamp, 1005 * 1000);
});

test("clear drops one kind and keeps the other in order", () => {
  const hold = new ChunkHold();
  const a = chunk(1000, "audio");
  hold.push(chunk(1000), 0, 10_000);
  hold.push(a, 0, 10_000);
  hold.push(chunk(1033), 0, 10_000);
  hold.clear("video");
  assert.deepEqual(hold.release(1_000_000, 0), [a]);
});
