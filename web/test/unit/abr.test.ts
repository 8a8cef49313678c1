// The automatic rendition choice: the throughput meter and the decision, on a fake clock.

import assert from "node:assert/strict";
import { test } from "node:test";
import {
  AbrPolicy,
  neededBitrate,
  type Rendition,
  SETTLE_MS,
  ThroughputMeter,
  UP_HOLD_MS,
} from "../../src/player/abr.ts";

/** 30 fps frames of `bytes` each, produced from `t0` for `seconds`, over a link of `linkBps`, with `rtt` ms. */
function feed(m: ThroughputMeter, t0: number, seconds: number, bytes: number, linkBps: number, delay = 5) {
  let linkFree = 0;
  let t = t0;
  for (let i = 0; i < seconds * 30; i++) {
    t = t0 + (i * 1000) / 30;
    const start = Math.max(t + delay, linkFree);
    linkFree = start + (bytes * 8 * 1000) / linkBps;
    m.add(bytes, linkFree, t);
  }
  return linkFree;
}

test("meter: a congested link is measured at its rate", () => {
  const m = new ThroughputMeter();
  // 600 kb/s of media (2500 B x 30 fps) over a 400 kb/s link: every frame queues behind the previous.
  const end = feed(m, 0, 4, 2500, 400_000);
  const e = m.estimate(end) ?? 0;
  assert.ok(Math.abs(e - 400_000) < 20_000, `estimate ${e}`);
});

test("meter: a fast link is not mistaken for the media's bitrate", () => {
  const m = new ThroughputMeter();
  // 600 kb/s of media over a 20 Mb/s link: frames arrive on time, the gaps between them are idle.
  const end = feed(m, 0, 4, 2500, 20_000_000);
  const e = m.estimate(end) ?? 0;
  assert.ok(e > 5_000_000, `estimate ${e}`);
});

test("meter: nothing recent, no estimate; reset forgets", () => {
  const m = new ThroughputMeter();
  assert.equal(m.estimate(0), undefined);
  const end = feed(m, 0, 1, 2500, 1_000_000);
  assert.notEqual(m.estimate(end), undefined);
  assert.equal(m.estimate(end + 5000), undefined, "the window has passed");
  feed(m, 10_000, 1, 2500, 1_000_000);
  m.reset();
  assert.equal(m.estimate(11_000), undefined);
});

test("meter: a burst after a stall counts the stall as busy time", () => {
  const m = new ThroughputMeter();
  let t = feed(m, 0, 2, 2500, 20_000_000);
  // Ten frames held back for a second, then delivered together.
  for (let i = 0; i < 10; i++) m.add(2500, t + 1000 + i * 0.1, t + (i * 1000) / 30);
  t += 1001;
  const e = m.estimate(t) ?? 0;
  assert.ok(e < 1_000_000, `estimate ${e}`);
});

const TWO: Rendition[] = [
  { name: "hi", width: 640, height: 360, bitrate: 600_000 },
  { name: "lo", width: 320, height: 180, bitrate: 150_000 },
];

test("bitrate: the catalog's, else by pixels", () => {
  assert.equal(neededBitrate(TWO[0] as Rendition), 600_000);
  assert.equal(neededBitrate({ name: "x", width: 640, height: 360 }), 691_200);
  assert.equal(neededBitrate({ name: "x", width: 320, height: 180, framerate: 15 }), 86_400);
});

test("policy: settles, steps down at once, up only after sustained room", () => {
  const p = new AbrPolicy();
  p.switched(0);
  const at = (now: number, current: number, estimate: number | undefined, troubled = false) =>
    p.decide({ renditions: TWO, current, estimate, troubled, now });
  assert.equal(at(SETTLE_MS - 1, 0, 100_000), undefined, "nothing judged while settling");
  assert.equal(at(SETTLE_MS, 0, 700_000), 1, "700 x 0.8 = 560 kb/s does not carry 600 kb/s");
  assert.equal(at(SETTLE_MS, 0, 800_000), undefined, "640 kb/s does");
  p.switched(10_000);
  const t = 10_000 + SETTLE_MS;
  assert.equal(at(t, 1, 5_000_000), undefined, "room starts now");
  assert.equal(at(t + UP_HOLD_MS - 1, 1, 5_000_000), undefined);
  assert.equal(at(t + UP_HOLD_MS / 2, 1, 700_000), undefined, "560 < 1.2 x 600: the room is gone");
  assert.equal(at(t + UP_HOLD_MS, 1, 5_000_000), undefined, "the hold restarted");
  assert.equal(at(t + 2 * UP_HOLD_MS - 1, 1, 5_000_000), undefined);
  assert.equal(at(t + 2 * UP_HOLD_MS, 1, 5_000_000), 0);
});

test("policy: trouble steps down one and restarts the hold; the lowest stays", () => {
  const three: Rendition[] = [
    { name: "a", bitrate: 3_000_000 },
    { name: "b", bitrate: 1_000_000 },
    { name: "c", bitrate: 300_000 },
  ];
  const p = new AbrPolicy();
  const at = (now: number, current: number, estimate: number | undefined, troubled = false) =>
    p.decide({ renditions: three, current, estimate, troubled, now });
  assert.equal(at(0, 0, 10_000_000, true), 1);
  assert.equal(at(0, 0, 500_000), 2, "down to the largest that fits, skipping b");
  assert.equal(at(0, 2, 100_000), undefined, "nothing lower");
  assert.equal(at(0, 2, 100_000, true), undefined);
  // Without an estimate, calm alone lifts it, after a longer hold.
  assert.equal(at(1000, 1, undefined), undefined);
  assert.equal(at(1000 + UP_HOLD_MS, 1, undefined), undefined);
  assert.equal(at(1000 + 2.5 * UP_HOLD_MS, 1, undefined), 0);
});
