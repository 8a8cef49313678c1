// The studio's limiter on keyframes forced for viewers' NEW_GROUP_REQUESTs: at most one per interval, and a
// request inside the interval deferred to its end, not dropped.

import assert from "node:assert/strict";
import { mock, test } from "node:test";
import { KeyframeLimiter } from "../../src/studio/keyframes.ts";

test("a request inside the interval is served when it ends, and requests meanwhile share it", () => {
  mock.timers.enable({ apis: ["setTimeout"] });
  try {
    let now = 1000;
    const forcedAt: number[] = [];
    const limiter = new KeyframeLimiter(
      () => forcedAt.push(now),
      500,
      () => now,
    );
    limiter.request();
    assert.deepEqual(forcedAt, [1000], "the first request forces a keyframe at once");
    now = 1300;
    limiter.request();
    now = 1400;
    limiter.request();
    assert.deepEqual(forcedAt, [1000], "none inside the interval");
    now = 1500;
    mock.timers.tick(200);
    assert.deepEqual(forcedAt, [1000, 1500], "one for both requests once the interval ends");
    assert.equal(limiter.forced, 2);
  } finally {
    mock.timers.reset();
  }
});

test("stop drops a deferred request", () => {
  mock.timers.enable({ apis: ["setTimeout"] });
  try {
    let now = 0;
    let forced = 0;
    const limiter = new KeyframeLimiter(
      () => forced++,
      500,
      () => now,
    );
    limiter.request();
    now = 100;
    limiter.request();
    limiter.stop();
    now = 600;
    mock.timers.tick(500);
    assert.equal(forced, 1);
  } finally {
    mock.timers.reset();
  }
});
