// Fast start with NEW_GROUP_REQUEST: the studio publishes its video with DYNAMIC_GROUPS = 1 and a keyframe only
// every 10 s; the player's SUBSCRIBEs carry NEW_GROUP_REQUEST 0, which the relay forwards, and the studio starts
// a new group at once, so a rendition switch (which starts at the next group) does not wait for the next
// scheduled keyframe.

import assert from "node:assert/strict";
import { test } from "node:test";
import type { Page } from "playwright-core";
import { goLive, num, playerStats, relayQuery, stage, until } from "./harness.ts";

const env = stage({ args: [] });

const studioStats = (page: Page) =>
  page.evaluate(() => {
    const s = (
      globalThis as unknown as { moqStudio: { forcedKeyframes: number; stats: { video: object[] } } }
    ).moqStudio;
    return { forced: s.forcedKeyframes, video: s.stats.video as { frames?: number }[] };
  });

async function watch(page: Page, channel: string): Promise<void> {
  await page.goto(
    `${env.site.url}/watch.html?name=live/${channel}&${relayQuery(env.relay)}&chat=0&no-audio=1`,
  );
}

test("joining and switching renditions get a group started for them", async () => {
  const studio = await goLive(
    env.browser.context,
    env.site.url,
    env.relay,
    "slow-keys",
    "Slow keys",
    "&keyint=10",
  );
  const forcedAtStart = (await studioStats(studio)).forced;
  await watch(env.browser.page, "slow-keys");
  const joined = await until(
    "the viewer's first frames",
    async () => {
      const s = await playerStats(env.browser.page);
      return num(s.framesRendered) > 10 && s.width === 1280 ? s : undefined;
    },
    15_000,
  );
  const forcedAtJoin = (await studioStats(studio)).forced;
  assert.ok(forcedAtJoin > forcedAtStart, "the viewer's SUBSCRIBE asked the studio for a new group");
  // A switch subscribes with Next Group Start: without a forced group it would wait for the next scheduled
  // keyframe, up to 10 s away (the last one was forced at the join, about a second ago).
  const t0 = Date.now();
  await env.browser.page.locator("moq-player select.renditions").selectOption("video1");
  const switched = await until(
    "the 360p rendition",
    async () => {
      const s = await playerStats(env.browser.page);
      return s.width === 640 ? s : undefined;
    },
    8_000,
  );
  const switchMs = Date.now() - t0;
  const forced = (await studioStats(studio)).forced;
  console.log(
    JSON.stringify({ test: "fast start", startupMs: Math.round(num(joined.startupMs)), switchMs, forced }),
  );
  assert.ok(forced > forcedAtJoin, "the switch's SUBSCRIBE asked for a new group too");
  assert.ok(switchMs < 4000, `switched after ${switchMs} ms`);
  assert.equal(switched.decodeErrors, 0);
  await studio.close();
  assert.deepEqual(env.browser.errors, []);
});
