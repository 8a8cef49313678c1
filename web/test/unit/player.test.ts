// The player's pure parts: the MSF catalog, LOC properties, the audio ring buffer and the queue.

import assert from "node:assert/strict";
import { test } from "node:test";
import { Queue } from "../../src/client/queue.ts";
import {
  audioTrack,
  CatalogError,
  parseCatalog,
  renditionLabel,
  videoTracks,
} from "../../src/player/catalog.ts";
import { readLoc } from "../../src/player/loc.ts";
import { AudioRing } from "../../src/player/ring.ts";
import { Properties } from "../../src/wire/index.ts";

const enc = (s: string) => new TextEncoder().encode(s);

// What moq-sub --catalog prints for the demo (docs/media.md).
const DEMO = `{"version":"draft-01","generatedAt":1795563535412,"tracks":[
  {"name":"video0","packaging":"loc","isLive":true,"role":"video","codec":"avc1.42c01e","width":640,"height":360,
   "framerate":30.0,"bitrate":400000,"renderGroup":1,"initRef":"init-video0"},
  {"name":"audio0","packaging":"loc","isLive":true,"role":"audio","codec":"opus","bitrate":48000,
   "samplerate":48000,"channelConfig":"1","renderGroup":1,"initRef":"init-audio0"}],
 "initDataList":[
  {"id":"init-video0","type":"inline","data":"AULAHv/hABlnQsAe2gKAv+XARAAAAwAEAAADAPI8WLqAAQAEaM48gA=="},
  {"id":"init-audio0","type":"inline","data":"T3B1c0hlYWQBATgBgLsAAAAAAA=="}]}`;

test("catalog: the demo's", () => {
  const c = parseCatalog(enc(DEMO));
  assert.equal(c.complete, false);
  const [v] = videoTracks(c);
  assert.equal(v?.name, "video0");
  assert.equal(v?.codec, "avc1.42c01e");
  assert.equal(v?.init?.[0], 0x01, "avcC configurationVersion");
  assert.equal(v?.init?.length, 40);
  assert.equal(renditionLabel(v as NonNullable<typeof v>), "360p (400 kb/s)");
  const a = audioTrack(c);
  assert.equal(a?.samplerate, 48000);
  assert.equal(a?.channelConfig, "1");
  assert.equal(new TextDecoder().decode(a?.init?.subarray(0, 8)), "OpusHead");
});

test("catalog: renditions largest first, legacy initData, end of broadcast", () => {
  const c = parseCatalog(
    enc(`{"version":1,"isComplete":true,"tracks":[
      {"name":"lo","role":"video","codec":"avc1.42e01e","width":320,"height":180,"initData":"AAEC"},
      {"name":"hi","role":"video","codec":"avc1.42e01f","width":1280,"height":720,"extra":{"x":1}},
      {"name":"bad"}]}`),
  );
  assert.deepEqual(
    videoTracks(c).map((t) => t.name),
    ["hi", "lo"],
  );
  assert.deepEqual([...(videoTracks(c)[1]?.init ?? [])], [0, 1, 2]);
  assert.equal(c.complete, true);
});

test("catalog: malformed input is a clear error", () => {
  assert.throws(() => parseCatalog(enc("{")), CatalogError);
  assert.throws(() => parseCatalog(enc("[1]")), CatalogError);
  assert.throws(
    () => parseCatalog(enc('{"tracks":[],"initDataList":[{"id":"x","data":"%%%"}]}')),
    CatalogError,
  );
  assert.throws(() => parseCatalog(enc('{"deltaUpdate":[]}')), /delta/);
  assert.deepEqual(parseCatalog(enc('{"tracks":7}')).tracks, []);
});

test("LOC properties", () => {
  const p = new Properties()
    .setBytes(0x09, new Uint8Array([0xe0]))
    .setInt(0x10, 1_795_563_535_412_000)
    .setInt(0x3a10, 1_795_563_535_412_900);
  assert.deepEqual(readLoc(p), {
    timestamp: 1_795_563_535_412_000,
    keyframe: true,
    config: undefined,
    publishTime: 1_795_563_535_412_900,
  });
  assert.equal(
    readLoc(new Properties().setBytes(0x09, new Uint8Array([0xc0])).setInt(0x10, 5))?.keyframe,
    false,
  );
  assert.equal(readLoc(new Properties().setInt(0x10, 90).setInt(0x08, 90_000))?.timestamp, 1000, "TIMESCALE");
  assert.equal(readLoc(new Properties()), undefined);
});

function ring(): AudioRing {
  const r = AudioRing.create(1, 1, 1000); // 1000 Hz: one frame per ms keeps the arithmetic readable
  r.running = true;
  r.delayMs = 100;
  return r;
}

test("audio ring: plays what is due, with its timestamp as the clock", () => {
  const r = ring();
  const pcm = Float32Array.from({ length: 50 }, (_, i) => i);
  assert.ok(r.write(1_000_000, [pcm])); // 50 frames from t = 1 s
  const out = [new Float32Array(10)];
  // At wall 1100 ms the frame of 1000 ms is due.
  assert.equal(r.read(out, 1100), 10);
  assert.deepEqual([...(out[0] as Float32Array)], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.equal(r.clock(1100), 1_000_000);
  assert.equal(r.clock(1105), 1_005_000);
  assert.equal(r.buffered, 40);
});

test("audio ring: a flush drops what was written before it, not what comes after", () => {
  const r = ring();
  const reader = new AudioRing(r.layout);
  // Live audio due in 2 s: after a rewind it would block the ring (early audio waits with silence).
  r.write(3_000_000, [new Float32Array(200).fill(1)]);
  r.flush();
  r.write(1_000_000, [new Float32Array(50).fill(2)]);
  const out = [new Float32Array(10)];
  assert.equal(reader.read(out, 1100), 10);
  assert.deepEqual([...(out[0] as Float32Array)], Array(10).fill(2));
  assert.equal(reader.buffered, 40);
});

test("audio ring: skips late audio, waits for early audio, counts underruns", () => {
  const r = ring();
  r.write(1_000_000, [new Float32Array(500).fill(1)]);
  const out = [new Float32Array(10)];
  // 300 ms late: skip to what is due now (frame 300), never play the stale part.
  assert.equal(r.read(out, 1400), 10);
  assert.ok(r.skipped >= 290 && r.skipped <= 300, `skipped ${r.skipped}`);
  // Early: silence until due.
  const early = ring();
  early.write(2_000_000, [new Float32Array(10).fill(1)]);
  assert.equal(early.read(out, 1100), 0);
  assert.deepEqual([...(out[0] as Float32Array)], new Array(10).fill(0));
  // Empty while running: an underrun.
  const empty = ring();
  empty.read(out, 0);
  assert.equal(empty.underruns, 1);
});

test("queue: bounded, oldest dropped, drained on close", async () => {
  const dropped: number[] = [];
  const q = new Queue<number>(2, (x) => dropped.push(x));
  q.push(1);
  q.push(2);
  q.push(3);
  assert.deepEqual(dropped, [1]);
  assert.equal(await q.next(), 2);
  assert.equal(await q.next(), 3);
  const waiting = q.next();
  q.push(4);
  assert.equal(await waiting, 4, "a waiting consumer gets the next push");
  q.close();
  assert.equal(await q.next(), undefined);
  q.push(5);
  assert.deepEqual(dropped, [1, 5]);
});
