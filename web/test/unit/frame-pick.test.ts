// Picking the frame to show: the newest due one, never one that is not after the frame on screen (a rendition
// switch queues the new decoder's frames beside the old one's, from the same moments).

import assert from "node:assert/strict";
import { test } from "node:test";
import { pickFrame, RESTART_US } from "../../src/player/frame-pick.ts";

const MS = 1000;
const STALE = 80 * MS;

test("the newest due frame is shown; those it passes over are dropped", () => {
  assert.deepEqual(pickFrame([0, 33 * MS, 66 * MS, 100 * MS], 70 * MS, undefined, STALE), {
    skip: 2,
    next: "show",
  });
  assert.deepEqual(pickFrame([100 * MS], 70 * MS, 66 * MS, STALE), { skip: 0, next: "wait" });
  assert.deepEqual(pickFrame([], 70 * MS, 66 * MS, STALE), { skip: 0, next: "none" });
  assert.deepEqual(pickFrame([0], 100 * MS, undefined, STALE), { skip: 0, next: "stale" });
});

test("after a rendition switch, the new rendition's frames up to the one on screen are not shown again", () => {
  // Frame 295 (at 295 × 33 ms) is on screen from the old rendition; the new one's group started at 290.
  const shown = 295 * 33 * MS;
  const queue = [290, 291, 292, 293, 294, 295, 296].map((f) => f * 33 * MS);
  // Clock still on frame 295: nothing new to show (before the fix, 295 was drawn a second time).
  assert.deepEqual(pickFrame(queue, shown + 10 * MS, shown, STALE), { skip: 6, next: "wait" });
  // Clock at 296: 296 is shown.
  assert.deepEqual(pickFrame(queue, shown + 33 * MS, shown, STALE), { skip: 6, next: "show" });
});

test("a timeline that restarts far behind the frame on screen plays on", () => {
  const shown = 10 * RESTART_US;
  assert.deepEqual(pickFrame([0, 33 * MS], 10 * MS, shown, STALE), { skip: 0, next: "show" });
});

test("joining: only a frame within three quarters of a frame interval of the clock is the first shown", () => {
  const joining = { frameUs: 40 * MS, newestUs: 500 * MS };
  // Frame 300 is 50 ms late (more than a frame) and 500 is still being decoded: dropped unseen.
  assert.deepEqual(pickFrame([300 * MS], 350 * MS, undefined, STALE, joining), { skip: 0, next: "stale" });
  // 20 ms late, within 30 ms (3/4 of 40): shown.
  assert.deepEqual(pickFrame([330 * MS], 350 * MS, undefined, STALE, joining), { skip: 0, next: "show" });
  // 35 ms late: not shown, even as the newest frame in the decoder (the worker raises the delay instead).
  assert.deepEqual(pickFrame([500 * MS], 535 * MS, undefined, STALE, joining), { skip: 0, next: "stale" });
  // Once playing, the same frame would be shown (within the 80 ms staleness).
  assert.deepEqual(pickFrame([500 * MS], 535 * MS, 466 * MS, STALE), { skip: 0, next: "show" });
  // Without the joining rule, the same late backlog frame would have been shown (the bug: starting 50-130 ms late).
  assert.deepEqual(pickFrame([300 * MS], 350 * MS, undefined, STALE), { skip: 0, next: "show" });
});
