// Latency modes in Chromium against `moq-relay --demo`: a fixed delay of seconds plays every frame at that delay
// (chunks wait encoded until they are due; decoded frames are kept for at most 60), and real-time plays below the
// default fixed 50 ms.

import assert from "node:assert/strict";
import { test } from "node:test";
import type { Page } from "playwright-core";
import { num, playerStats, relayQuery, stage, until } from "./harness.ts";

const env = stage();

/** The publish-to-display latencies of the frames shown after the first `skip`, once `n` more were. */
async function latencies(page: Page, skip: number, n: number): Promise<number[]> {
  return until(
    `${skip + n} frames`,
    async () => {
      const log = await page.evaluate(
        () => (document.querySelector("moq-player") as unknown as { latencyLog: number[] }).latencyLog,
      );
      return log.length >= skip + n ? log.slice(skip, skip + n).sort((a, b) => a - b) : undefined;
    },
    15_000,
  );
}

test("a fixed 3 s delay shows every frame 3 s after it was published", async () => {
  const page = env.browser.page;
  await page.goto(`${env.site.url}/watch.html?name=demo/clip&${relayQuery(env.relay)}&latency=3000`);
  const sorted = await latencies(page, 10, 60);
  const p50 = sorted[30] as number;
  assert.ok(p50 >= 2990 && p50 <= 3100, `p50 ${p50} ms at a 3000 ms delay`);
  const s = await playerStats(page);
  assert.equal(s.delayMs, 3000);
  // Two seconds of frames shown in a row at 30 fps: none of them dropped for want of room.
  assert.ok(num(s.fps) >= 25, `fps ${s.fps}`);
  assert.deepEqual(env.browser.errors, []);
});

test("real-time sits below the default fixed 50 ms", async () => {
  const page = env.browser.page;
  await page.goto(`${env.site.url}/watch.html?name=demo/clip&${relayQuery(env.relay)}&latency=realtime`);
  const sorted = await latencies(page, 30, 60);
  const p50 = sorted[30] as number;
  assert.ok(p50 < 50, `p50 ${p50} ms in real-time`);
  assert.deepEqual((await playerStats(page)).latencyMode, { kind: "realtime" });
  assert.deepEqual(env.browser.errors, []);
});
