// The player works only when needed (against `moq-relay --demo`): no audio objects while muted, none again after
// muting; no video objects while the page is hidden or the element is out of view, audio going on meanwhile, and
// video back at the live edge when it is seen again.

import assert from "node:assert/strict";
import { test } from "node:test";
import type { Page } from "playwright-core";
import { num, playerStats, stage, until } from "./harness.ts";

const env = stage();

async function watch(page: Page): Promise<void> {
  const q = `name=demo/clip&url=${encodeURIComponent(env.relay.url)}&fingerprint-url=/relay/certificate.sha256`;
  await page.goto(`${env.site.url}/watch.html?${q}`);
}

/** Waits until `stat` has grown by `by` from its value now; returns the stats then. */
async function grown(page: Page, stat: string, by: number, timeoutMs = 8_000) {
  const from = num((await playerStats(page))[stat]);
  return until(
    `${stat} + ${by}`,
    async () => {
      const s = await playerStats(page);
      return num(s[stat]) >= from + by ? s : undefined;
    },
    timeoutMs,
  );
}

/** Makes the page report itself hidden (or visible again), as a background tab would. */
function setHidden(page: Page, hidden: boolean): Promise<void> {
  // A string: the test's compiler would wrap a function's inner getter in a helper the page does not have.
  const stub = hidden
    ? `Object.defineProperty(document, "visibilityState", { configurable: true, value: "hidden" })`
    : "delete document.visibilityState";
  return page.evaluate(`${stub}; document.dispatchEvent(new Event("visibilitychange"))`);
}

test("muted: no audio objects while video plays; unmute subscribes, mute cancels", async () => {
  const page = env.browser.page;
  await watch(page);
  await until("video", async () => num((await playerStats(page)).framesRendered) > 10);
  // Two more seconds of video (60 frames at 30 fps) without a single audio object.
  const muted = await grown(page, "framesRendered", 60);
  assert.equal(muted.audioObjects, 0);
  assert.equal(muted.audioSamplesWritten, 0, "nothing decoded");
  assert.ok(num(muted.videoObjects) > 60);
  await page.locator("moq-player .unmute").click();
  const playing = await until("audio objects and played samples", async () => {
    const s = await playerStats(page);
    return num(s.audioObjects) > 20 && num(s.audioSamplesPlayed) > 24_000 && s.audioClock ? s : undefined;
  });
  assert.equal(playing.audioState, "running");
  await page.locator("moq-player .mute").click();
  // Objects already in flight may land; after half a second nothing more comes while video goes on.
  const settled = await grown(page, "framesRendered", 15);
  const after = await grown(page, "framesRendered", 45);
  assert.equal(after.audioObjects, settled.audioObjects, "no audio objects after muting");
  assert.equal(after.audioState, "muted");
  assert.equal(after.audioClock, false, "video follows the wall clock again");
  assert.ok(await page.locator("moq-player .unmute").isVisible());
  assert.deepEqual(env.browser.errors, []);
});

test("hidden page: no video objects, audio goes on, video returns at the live edge", async () => {
  const page = env.browser.page;
  await watch(page);
  await until("video", async () => num((await playerStats(page)).framesRendered) > 30);
  await page.locator("moq-player .unmute").click();
  await until("audio", async () => num((await playerStats(page)).audioSamplesPlayed) > 0);
  await setHidden(page, true);
  await until("video paused", async () => (await playerStats(page)).videoPaused === true);
  // Let objects in flight land, then a second or so of audio (20 ms Opus frames) with no video at all.
  const settled = await grown(page, "audioObjects", 15);
  const hidden = await grown(page, "audioObjects", 50);
  assert.equal(hidden.videoObjects, settled.videoObjects, "no video objects while hidden");
  assert.equal(hidden.framesRendered, settled.framesRendered, "nothing drawn while hidden");
  assert.ok(num(hidden.audioSamplesPlayed) > num(settled.audioSamplesPlayed), "audio plays while hidden");
  const shown = Date.now();
  await setHidden(page, false);
  const back = await until(
    "video again at the live edge",
    async () => {
      const s = await playerStats(page);
      return s.videoPaused === false &&
        num(s.framesRendered) > num(hidden.framesRendered) + 30 &&
        num(s.latencyMs) < 500
        ? s
        : undefined;
    },
    8_000,
  );
  console.log(JSON.stringify({ test: "hidden", backAfterMs: Date.now() - shown, latencyMs: back.latencyMs }));
  assert.equal(back.decodeErrors, 0);
  assert.equal(back.reconnects, hidden.reconnects, "the same session");
  assert.deepEqual(env.browser.errors, []);
});

test("out of view: no video objects until scrolled back, audio goes on", async () => {
  const page = env.browser.page;
  await watch(page);
  await until("video", async () => num((await playerStats(page)).framesRendered) > 30);
  await page.locator("moq-player .unmute").click();
  await until("audio", async () => num((await playerStats(page)).audioSamplesPlayed) > 0);
  const move = (px: number) =>
    page.evaluate((px) => {
      (document.querySelector("moq-player") as HTMLElement).style.transform = `translateY(${px}px)`;
    }, px);
  await move(-100_000);
  await until("video paused", async () => (await playerStats(page)).videoPaused === true);
  const settled = await grown(page, "audioObjects", 15);
  const away = await grown(page, "audioObjects", 50);
  assert.equal(away.videoObjects, settled.videoObjects, "no video objects out of view");
  await move(0);
  await until(
    "video again",
    async () => {
      const s = await playerStats(page);
      return s.videoPaused === false && num(s.framesRendered) > num(away.framesRendered) + 30 ? s : undefined;
    },
    8_000,
  );
  assert.deepEqual(env.browser.errors, []);
});
