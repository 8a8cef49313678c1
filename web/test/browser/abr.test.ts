// The automatic rendition choice on moq-pub's two renditions (640x360, 320x180): told that its throughput is
// low (the `throughput-cap` attribute caps the measured estimate), the player steps down by itself; with the cap
// lifted, the measured loopback throughput takes it back up after the hold.

import assert from "node:assert/strict";
import { test } from "node:test";
import type { Page } from "playwright-core";
import { hasFfmpeg, num, playerStats, stage, until } from "./harness.ts";

const env = stage({ args: [], publish: [["test/auto", "loc"]] });

const cap = (page: Page, kbps: number | undefined) =>
  page.evaluate((v) => {
    const p = document.querySelector("moq-player") as HTMLElement;
    if (v === undefined) p.removeAttribute("throughput-cap");
    else p.setAttribute("throughput-cap", String(v));
  }, kbps);

test("steps down when throughput is short and back up when it returns", {
  skip: !hasFfmpeg && "no ffmpeg",
}, async () => {
  const q = `name=test/auto&url=${encodeURIComponent(env.relay.url)}&fingerprint-url=/relay/certificate.sha256&stats=1`;
  await env.browser.page.goto(`${env.site.url}/watch.html?${q}`);
  const start = await until(
    "the large rendition with a throughput estimate",
    async () => {
      const s = await playerStats(env.browser.page);
      return num(s.framesRendered) > 30 && s.width === 640 && num(s.throughputKbps) > 0 ? s : undefined;
    },
    15_000,
  ).catch(async (e) => {
    console.log(JSON.stringify(await playerStats(env.browser.page)), env.publishers[0]?.log.slice(-2000));
    throw e;
  });
  const overlay = await env.browser.page.locator("moq-player .overlay").textContent();
  assert.match(overlay ?? "", /throughput \d+ kb\/s/);

  await cap(env.browser.page, 100);
  const down = await until(
    "the small rendition, chosen automatically",
    async () => {
      const s = await playerStats(env.browser.page);
      return s.width === 320 && /^180p/.test(String(s.rendition)) ? s : undefined;
    },
    10_000,
  );
  assert.ok(num(down.throughputKbps) <= 100, `estimate ${down.throughputKbps}`);
  const menu = env.browser.page.locator("moq-player select.renditions");
  assert.equal(await menu.inputValue(), "", "still automatic");

  await cap(env.browser.page, undefined);
  const rendered = num((await playerStats(env.browser.page)).framesRendered);
  const up = await until(
    "the large rendition again",
    async () => {
      const s = await playerStats(env.browser.page);
      return s.width === 640 ? s : undefined;
    },
    15_000,
  );
  assert.ok(num(up.framesRendered) > rendered, "frames kept coming");
  assert.equal(up.decodeErrors, 0);
  console.log(
    JSON.stringify({
      test: "abr",
      measuredKbps: Math.round(num(start.throughputKbps)),
      afterUpKbps: Math.round(num(up.throughputKbps)),
      groupsSkipped: up.groupsSkipped,
      framesDropped: up.framesDropped,
    }),
  );
  assert.deepEqual(env.browser.errors, []);
});
