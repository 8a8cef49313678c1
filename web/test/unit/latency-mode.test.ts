// The latency mode as text: the watch page's `?latency=` forms, invalid ones ignored; the element's attributes
// with their defaults; and the latency "behind live" counts from in each mode.

import assert from "node:assert/strict";
import { test } from "node:test";
import {
  aimMs,
  DEFAULT_RANGE,
  DEFAULT_TARGET_MS,
  MAX_REQUEST_MS,
  modeAttributes,
  modeFromAttributes,
  modeText,
  parseLatencyParam,
} from "../../src/player/latency-mode.ts";
import type { LatencyMode } from "../../src/player/playout.ts";

test("?latency=: realtime, a fixed delay, a range", () => {
  assert.deepEqual(parseLatencyParam("realtime"), { kind: "realtime" });
  assert.deepEqual(parseLatencyParam("Real-Time"), { kind: "realtime" });
  assert.deepEqual(parseLatencyParam("2000"), { kind: "fixed", ms: 2000 });
  assert.deepEqual(parseLatencyParam(" 0 "), { kind: "fixed", ms: 0 });
  assert.deepEqual(parseLatencyParam("100-500"), { kind: "range", minMs: 100, maxMs: 500 });
  assert.deepEqual(parseLatencyParam("250-250"), { kind: "range", minMs: 250, maxMs: 250 });
  assert.deepEqual(parseLatencyParam(String(MAX_REQUEST_MS)), { kind: "fixed", ms: MAX_REQUEST_MS });
});

test("?latency=: anything else is undefined (the player keeps its default), never an exception", () => {
  const invalid = [
    null,
    "",
    " ",
    "fast",
    "-5",
    "500-100",
    "100-",
    "-100-500",
    "100-500-900",
    "1e9",
    String(MAX_REQUEST_MS + 1),
    "NaN",
    "Infinity",
    "100-x",
    "x-500",
  ];
  for (const s of invalid) assert.equal(parseLatencyParam(s), undefined, JSON.stringify(s));
});

test("the attributes a mode sets read back as that mode", () => {
  const modes: LatencyMode[] = [
    { kind: "realtime" },
    { kind: "fixed", ms: 2000 },
    { kind: "range", minMs: 100, maxMs: 500 },
  ];
  for (const mode of modes) {
    const attrs = new Map(modeAttributes(mode));
    assert.equal([...attrs.keys()].at(-1), "latency-mode", "the mode is set last");
    assert.deepEqual(
      modeFromAttributes((n) => attrs.get(n) ?? null),
      mode,
    );
  }
});

test("attributes: missing or invalid values take their defaults", () => {
  const from = (attrs: Record<string, string>) => modeFromAttributes((n) => attrs[n] ?? null);
  assert.deepEqual(from({}), { kind: "fixed", ms: DEFAULT_TARGET_MS });
  assert.deepEqual(from({ "target-latency": "300" }), { kind: "fixed", ms: 300 });
  assert.deepEqual(from({ "latency-mode": "bogus", "target-latency": "300" }), { kind: "fixed", ms: 300 });
  assert.deepEqual(from({ "target-latency": "-1" }), { kind: "fixed", ms: DEFAULT_TARGET_MS });
  assert.deepEqual(from({ "target-latency": "soon" }), { kind: "fixed", ms: DEFAULT_TARGET_MS });
  assert.deepEqual(from({ "latency-mode": "range" }), { kind: "range", ...DEFAULT_RANGE });
  assert.deepEqual(from({ "latency-mode": "range", "latency-min": "200", "latency-max": "x" }), {
    kind: "range",
    minMs: 200,
    maxMs: DEFAULT_RANGE.maxMs,
  });
  // A max below the min is raised to it.
  assert.deepEqual(from({ "latency-mode": "range", "latency-min": "800", "latency-max": "300" }), {
    kind: "range",
    minMs: 800,
    maxMs: 800,
  });
  assert.deepEqual(from({ "latency-mode": "realtime", "target-latency": "300" }), { kind: "realtime" });
});

test("behind live counts from the fixed delay, the range's max, or the delay in force in real-time", () => {
  assert.equal(aimMs({ kind: "fixed", ms: 2000 }, 120), 2000);
  assert.equal(aimMs({ kind: "range", minMs: 100, maxMs: 500 }, 120), 500);
  assert.equal(aimMs({ kind: "realtime" }, 120), 120);
  assert.equal(modeText({ kind: "realtime" }), "real-time");
  assert.equal(modeText({ kind: "fixed", ms: 50 }), "fixed 50 ms");
  assert.equal(modeText({ kind: "range", minMs: 100, maxMs: 500 }), "range 100–500 ms");
});
