// What the player subscribes (demand.ts): video only while seen, audio only while allowed and unmuted.

import assert from "node:assert/strict";
import { test } from "node:test";
import { wanted } from "../../src/player/demand.ts";

const base = { audioAllowed: true, unmuted: false, pageHidden: false, inView: true };

test("demand: a fresh, visible, muted player wants video and no audio", () => {
  assert.deepEqual(wanted(base), { video: true, audio: false });
});

test("demand: unmuting wants audio, unless no-audio is set", () => {
  assert.deepEqual(wanted({ ...base, unmuted: true }), { video: true, audio: true });
  assert.deepEqual(wanted({ ...base, unmuted: true, audioAllowed: false }), { video: true, audio: false });
});

test("demand: a hidden page or an element out of view wants no video, audio stays if unmuted", () => {
  for (const seen of [
    { pageHidden: true, inView: true },
    { pageHidden: false, inView: false },
    { pageHidden: true, inView: false },
  ]) {
    assert.deepEqual(wanted({ ...base, ...seen }), { video: false, audio: false });
    assert.deepEqual(wanted({ ...base, ...seen, unmuted: true }), { video: false, audio: true });
  }
});

test("demand: every combination follows the rules; paused wants nothing", () => {
  for (let i = 0; i < 32; i++) {
    const d = {
      audioAllowed: !!(i & 1),
      unmuted: !!(i & 2),
      pageHidden: !!(i & 4),
      inView: !!(i & 8),
      paused: !!(i & 16),
    };
    const w = wanted(d);
    assert.equal(w.video, !d.paused && !d.pageHidden && d.inView, JSON.stringify(d));
    assert.equal(w.audio, !d.paused && d.audioAllowed && d.unmuted, JSON.stringify(d));
  }
});
