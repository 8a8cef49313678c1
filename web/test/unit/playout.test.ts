// The playout delay: joining a group mid-way drops its old frames as late without raising the delay; late frames
// while playing raise it, and it comes back down to the target. The latency modes over a sequence of ticks, and a
// timeline that takes a large fixed delay for what it is, not for a timestamp jump.

import assert from "node:assert/strict";
import { test } from "node:test";
import {
  CATCH_UP_MS,
  LATE_RUN_MS,
  MARGIN_MS,
  MAX_DELAY_MS,
  PlayoutDelay,
  Timeline,
} from "../../src/player/playout.ts";

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
  p.mode = { kind: "fixed", ms: 300 };
  p.reset(300);
  assert.equal(p.delayMs, 300);
  assert.equal(p.tick(undefined), 300);
  // A lower target from the viewer: the delay walks down to it.
  p.mode = { kind: "fixed", ms: 50 };
  assert.equal(p.tick(undefined), 300 - CATCH_UP_MS);
});

test("real-time: the delay follows what delivery needs, down to it, with no target of its own", () => {
  const p = new PlayoutDelay(50);
  p.mode = { kind: "realtime" };
  assert.equal(p.targetMs, MARGIN_MS, "a jump to the live edge starts at the margin alone");
  assert.equal(p.requestedMs, 0);
  // A 5 ms floor needs 25 ms, below the 50 ms it started at: it walks down there and stays.
  assert.equal(p.tick(5), 50 - CATCH_UP_MS);
  assert.equal(ticks(p, 20, 5), 5 + MARGIN_MS);
  // The floor rises: the delay rises with it at once.
  assert.equal(p.tick(300), 300 + MARGIN_MS);
  // The floor falls: the delay walks down to the new need.
  assert.equal(p.tick(100), 300 + MARGIN_MS - CATCH_UP_MS);
  assert.equal(ticks(p, 50, 100), 100 + MARGIN_MS);
  // Nothing arrives: it holds where it is.
  assert.equal(ticks(p, 20, undefined), 100 + MARGIN_MS);
  // Late frames raise it like any other need.
  for (let i = 0; i < 10; i++) p.stale(true);
  assert.equal(p.tick(100), 100 + MARGIN_MS + 100 - 1);
});

test("fixed: the delay holds N over a low floor, rises only while the floor needs more, and returns to N", () => {
  const p = new PlayoutDelay(50);
  p.mode = { kind: "fixed", ms: 400 };
  assert.equal(p.targetMs, 400);
  assert.equal(p.requestedMs, 400);
  assert.equal(p.tick(10), 400, "a higher fixed delay applies at the next tick");
  assert.equal(ticks(p, 50, 10), 400);
  // Delivery cannot make 400 ms: the delay follows the need.
  assert.equal(p.tick(600), 600 + MARGIN_MS);
  assert.equal(ticks(p, 20, 600), 600 + MARGIN_MS);
  // Delivery recovers: the delay walks back down to N, not below it.
  assert.equal(ticks(p, 10, 10), 600 + MARGIN_MS - 10 * CATCH_UP_MS);
  assert.equal(ticks(p, 50, 10), 400);
  assert.equal(ticks(p, 50, 10), 400);
});

test("fixed: a 10 s delay is honoured above the cap on delivery's need, and leaving it snaps back", () => {
  const p = new PlayoutDelay(50);
  p.mode = { kind: "fixed", ms: 10_000 };
  assert.ok(10_000 > MAX_DELAY_MS);
  assert.equal(p.tick(30), 10_000);
  assert.equal(ticks(p, 100, 30), 10_000);
  p.mode = { kind: "fixed", ms: 50 };
  assert.equal(p.tick(30), 50, "more than a second above the goal: straight to it");
});

test("range: follows delivery between min and max, held at min below it and at max above it", () => {
  const p = new PlayoutDelay(50);
  p.mode = { kind: "range", minMs: 100, maxMs: 500 };
  assert.equal(p.targetMs, 100);
  assert.equal(p.requestedMs, 500);
  // A 5 ms floor needs 25 ms: held at min.
  assert.equal(p.tick(5), 100);
  assert.equal(ticks(p, 50, 5), 100);
  // Within the range: it follows.
  assert.equal(p.tick(280), 280 + MARGIN_MS);
  // A 900 ms floor needs 920 ms: held at max, and frames dropped as late do not raise it.
  assert.equal(p.tick(900), 500);
  for (let i = 0; i < 5; i++) p.stale(true);
  assert.equal(ticks(p, 20, 900), 500);
  // The floor falls below min again: back down to min once the late boost has decayed.
  assert.equal(ticks(p, 200, 5), 100);
  // Nothing arrives: it holds, within the range.
  assert.equal(ticks(p, 20, undefined), 100);
});

test("a fixed delay of 10 s does not re-anchor the timeline; a real jump still does", () => {
  const p = new PlayoutDelay(50);
  p.mode = { kind: "fixed", ms: 10_000 };
  const start = 1_700_000_000_000;
  const frameMs = 33;
  // Frames from 10 s ago (what the viewer asked for, say a rewind), for 3 s: never a discontinuity.
  const asked = new Timeline();
  asked.allowanceMs = p.requestedMs;
  const plain = new Timeline();
  let plainJumped = false;
  for (let i = 0; i < 90; i++) {
    const arrival = start + i * frameMs;
    const ts = (arrival - 10_000) * 1000;
    assert.deepEqual(asked.map(ts, arrival), { ts, jumpMs: 0 }, `frame ${i}`);
    if (plain.map(ts, arrival)?.jumpMs !== 0) plainJumped = true;
  }
  assert.ok(plainJumped, "without the allowance the same frames re-anchor");
  // The publisher's timestamps jump an hour back: re-anchored once that has lasted LATE_RUN_MS.
  let jumped: { i: number; jumpMs: number } | undefined;
  for (let i = 0; i < 60 && !jumped; i++) {
    const arrival = start + 3000 + i * frameMs;
    const mapped = asked.map((arrival - 3_600_000) * 1000, arrival);
    if (mapped && mapped.jumpMs !== 0) jumped = { i, jumpMs: mapped.jumpMs };
  }
  assert.deepEqual(jumped, { i: Math.ceil(LATE_RUN_MS / frameMs), jumpMs: 3_600_000 });
});
