// The playout delay: joining a group mid-way drops its old frames as late without raising the delay; late frames
// while playing raise it, and it comes back down to the target.

import assert from "node:assert/strict";
import { test } from "node:test";
import { CATCH_UP_MS, MARGIN_MS, PlayoutDelay } from "../../src/player/playout.ts";

/** Ticks `n` times with arrival floor `base`; returns the last delay. */
function ticks(p: PlayoutDelay, n: number, base: number | undefined): number {
  let d = p.delayMs;
  for (let i = 0; i < n; i++) d = p.tick(base);
  return d;
}

test("the backlog of a group joined mid-way does not raise the delay", () => {
  const p = new PlayoutDelay(50);
  // Joining 0.8 s into a 1 s group at 30 fps: 24 frames are already past due when they are decoded.
  for (let i = 0; i < 24; i++) p.stale(false);
  // Frames then arrive 10 ms after capture: the delay holds at the target from the first tick on.
  assert.equal(p.tick(10), 50);
  assert.equal(ticks(p, 9, 10), 50);
});

test("late frames while playing raise the delay, which then decays back to the target", () => {
  const p = new PlayoutDelay(50);
  assert.equal(ticks(p, 5, 10), 50);
  for (let i = 0; i < 10; i++) p.stale(true);
  // 10 ms floor + margin + a 100 ms boost (less one tick's decay).
  const raised = p.tick(10);
  assert.equal(raised, 10 + MARGIN_MS + 100 - 1);
  const later = ticks(p, 50, 10);
  assert.ok(later < raised && later > 50, `after 5 s: ${later}`);
  assert.equal(ticks(p, 200, 10), 50);
});

test("the delay never goes below what delivery needs, and catches up at most 5 ms per tick", () => {
  const p = new PlayoutDelay(50);
  assert.equal(p.tick(200), 200 + MARGIN_MS);
  assert.equal(p.tick(10), 200 + MARGIN_MS - CATCH_UP_MS);
  p.reset(300);
  assert.equal(p.delayMs, 300);
  assert.equal(p.tick(undefined), 300);
  // A lower target from the viewer: the delay walks down to it.
  p.targetMs = 50;
  assert.equal(p.tick(undefined), 300 - CATCH_UP_MS);
});
