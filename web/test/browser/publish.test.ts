// The player on a broadcast published by ffmpeg through moq-pub: two renditions, switched by hand without a
// decode error or a stall.

import assert from "node:assert/strict";
import { test } from "node:test";
import { hasFfmpeg, num, playerStats, stage, until } from "./harness.ts";

const env = stage({
  args: [],
  publish: [
    ["test/abr", "loc"],
    ["test/cmaf", "cmaf"],
  ],
});

test("plays moq-pub's two renditions and switches between them", {
  skip: !hasFfmpeg && "no ffmpeg",
}, async () => {
  const q = `name=test/abr&url=${encodeURIComponent(env.relay.url)}&fingerprint-url=/relay/certificate.sha256`;
  await env.browser.page.goto(`${env.site.url}/watch.html?${q}`);
  const first = await until(
    "the large rendition",
    async () => {
      const s = await playerStats(env.browser.page);
      return num(s.framesRendered) > 30 && s.width === 640 ? s : undefined;
    },
    15_000,
  ).catch(async (e) => {
    console.log(JSON.stringify(await playerStats(env.browser.page)), env.publishers[0]?.log.slice(-2000));
    throw e;
  });
  const menu = env.browser.page.locator("moq-player select.renditions");
  const labels = await menu.locator("option").allTextContents();
  assert.equal(labels.length, 3, `menu: ${labels}`);
  assert.equal(labels[0], "auto");
  assert.match(labels[1] ?? "", /^360p/);
  assert.match(labels[2] ?? "", /^180p/);
  await menu.selectOption("video1");
  // The switch waits for video1's next group (its next keyframe, about 1 s) through a debug relay and moq-pub
  // that share the machine with ffmpeg and Chromium: allow for a loaded CI machine.
  const switched = await until(
    "the small rendition",
    async () => {
      const s = await playerStats(env.browser.page);
      return s.width === 320 && s.videoTrack === "video1" ? s : undefined;
    },
    15_000,
  ).catch(async (e) => {
    console.log(JSON.stringify(await playerStats(env.browser.page)), env.publishers[0]?.log.slice(-2000));
    throw e;
  });
  // No stall: frames keep coming right after the switch.
  await until(
    "frames after the switch",
    async () => num((await playerStats(env.browser.page)).framesRendered) > num(switched.framesRendered) + 30,
    3_000,
  );
  const s = await playerStats(env.browser.page);
  assert.equal(s.decodeErrors, 0);
  assert.equal(s.height, 180);
  console.log(
    JSON.stringify({
      test: "rendition switch",
      before: `${first.width}x${first.height}`,
      after: `${s.width}x${s.height}`,
      dropped: s.framesDropped,
    }),
  );
  assert.deepEqual(env.browser.errors, []);
});

test("plays moq-pub's CMAF packaging", { skip: !hasFfmpeg && "no ffmpeg" }, async () => {
  const q = `name=test/cmaf&url=${encodeURIComponent(env.relay.url)}&fingerprint-url=/relay/certificate.sha256`;
  await env.browser.page.goto(`${env.site.url}/watch.html?${q}`);
  const s = await until(
    "60 CMAF frames",
    async () => {
      const s = await playerStats(env.browser.page);
      return num(s.framesRendered) > 60 ? s : undefined;
    },
    15_000,
  );
  await env.browser.page.locator("moq-player .unmute").click();
  const a = await until("CMAF audio", async () => {
    const a = await playerStats(env.browser.page);
    return num(a.audioSamplesPlayed) > 24_000 ? a : undefined;
  });
  assert.equal(s.decodeErrors, 0);
  assert.equal(s.width, 640);
  assert.ok(num(s.latencyP50Ms) > 0 && num(s.latencyP50Ms) < 2000);
  console.log(
    JSON.stringify({
      test: "cmaf",
      latencyP50Ms: s.latencyP50Ms,
      fps: s.fps,
      audioSamplesPlayed: a.audioSamplesPlayed,
    }),
  );
  assert.deepEqual(env.browser.errors, []);
});
