// Joining at the live edge: 20 fresh tabs open the watch page of `moq-relay --demo` (30 fps, a keyframe every
// second) with a 50 ms target. The first frame each one shows must be within target + 33 ms (one frame) of live,
// publish to display, and frames 10 to 20 must not be far above it: the player starts at the edge, with no
// catch-up phase that starts late and works its way down (the joined group's backlog is decoded, not shown).

import assert from "node:assert/strict";
import { test } from "node:test";
import type { Page } from "playwright-core";
import { relayQuery, stage, until } from "./harness.ts";

const env = stage();

const TARGET_MS = 50;
const FRAME_MS = 33;
const JOINS = 20;

interface Join {
  first: number;
  /** The median of frames 10 to 20. */
  settled: number;
  startupMs: number;
}

/** The player's latencyLog (every shown frame's publish-to-display latency, oldest first) and its start-up time. */
const log = (page: Page) =>
  page.evaluate(() => {
    const p = document.querySelector("moq-player") as unknown as {
      latencyLog: number[];
      stats: { startupMs?: number };
    };
    return { latencies: [...p.latencyLog], startupMs: p.stats.startupMs ?? Number.NaN };
  });

async function join(): Promise<Join> {
  const page = await env.browser.context.newPage();
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(`console: ${m.text()}`);
  });
  try {
    await page.goto(
      `${env.site.url}/watch.html?name=demo/clip&${relayQuery(env.relay)}&latency=${TARGET_MS}&stats=0`,
    );
    const l = await until(
      "20 frames",
      async () => {
        const l = await log(page);
        return l.latencies.length >= 20 ? l : undefined;
      },
      5_000,
    );
    assert.deepEqual(errors, []);
    const settled = l.latencies.slice(10, 20).sort((a, b) => a - b);
    return {
      first: Math.round(l.latencies[0] ?? Number.NaN),
      settled: Math.round(settled[5] ?? Number.NaN),
      startupMs: Math.round(l.startupMs),
    };
  } finally {
    await page.close();
  }
}

test(`${JOINS} joins: the first frame within target + ${FRAME_MS} ms of live, no catch-up`, async () => {
  const joins: Join[] = [];
  for (let i = 0; i < JOINS; i++) joins.push(await join());
  console.log(
    JSON.stringify({
      test: "join edge",
      targetMs: TARGET_MS,
      firstMs: joins.map((j) => j.first),
      settledMs: joins.map((j) => j.settled),
      startupMs: joins.map((j) => j.startupMs),
    }),
  );
  const bound = TARGET_MS + FRAME_MS;
  const late = joins.filter((j) => !(j.first <= bound));
  assert.equal(late.length, 0, `first frames above ${bound} ms: ${late.map((j) => j.first).join(", ")}`);
  const rising = joins.filter((j) => !(j.settled <= Math.max(j.first, TARGET_MS) + FRAME_MS));
  assert.equal(
    rising.length,
    0,
    `frames 10-20 above the first frame's + ${FRAME_MS} ms: ${rising.map((j) => `${j.first}→${j.settled}`).join(", ")}`,
  );
  assert.deepEqual(env.browser.errors, []);
});
