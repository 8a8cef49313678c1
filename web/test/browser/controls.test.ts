// The player's controls in Chromium against `moq-relay --demo`: pause subscribes nothing and play returns to the
// live edge; the keyboard shortcuts; full screen; picture-in-picture on the player's <video>; every control on a
// 360 px wide screen; and axe-core finding no serious or critical accessibility violation on the three pages.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { test } from "node:test";
import type { Page } from "playwright-core";
import { num, playerStats, stage, until } from "./harness.ts";

const env = stage();
const require = createRequire(import.meta.url);

const relayQuery = () => `url=${encodeURIComponent(env.relay.url)}&fingerprint-url=/relay/certificate.sha256`;

async function watch(page: Page, extra = ""): Promise<void> {
  await page.goto(`${env.site.url}/watch.html?name=demo/clip&${relayQuery()}${extra}`);
  await until("video", async () => num((await playerStats(page)).framesRendered) > 30);
}

/** The length of the player's latencyLog and its latest entry. */
const latencies = (page: Page) =>
  page.evaluate(() => {
    const log = (document.querySelector("moq-player") as unknown as { latencyLog: number[] }).latencyLog;
    return { n: log.length, last: log[log.length - 1] };
  });

test("pause subscribes nothing and draws nothing; play returns to the live edge within 1 s", async () => {
  const page = env.browser.page;
  const target = 100;
  const margin = 100;
  await watch(page, `&latency=${target}`);
  await page.locator("moq-player .play").click();
  await until("paused", async () => {
    const s = await playerStats(page);
    return s.paused === true && s.videoPaused === true;
  });
  assert.equal(await page.locator("moq-player .play").textContent(), "Play");
  // Objects in flight may land; after that, nothing for a second and a half (45 frames of the 30 fps demo).
  const settled = await until("in-flight objects landed", async () => {
    const a = await playerStats(page);
    await new Promise((r) => setTimeout(r, 300));
    const b = await playerStats(page);
    return a.videoObjects === b.videoObjects && a.framesRendered === b.framesRendered ? b : undefined;
  });
  await new Promise((r) => setTimeout(r, 1500));
  const still = await playerStats(page);
  assert.equal(still.videoObjects, settled.videoObjects, "no video objects while paused");
  assert.equal(still.framesRendered, settled.framesRendered, "no frame drawn while paused");
  assert.equal(still.buffering, false, "paused is not buffering");
  const before = await latencies(page);
  const t0 = Date.now();
  await page.locator("moq-player .play").click();
  const back = await until(
    `a frame within ${target} + ${margin} ms of live`,
    async () => {
      const l = await latencies(page);
      return l.n > before.n && l.last !== undefined && l.last < target + margin ? l : undefined;
    },
    3_000,
  );
  const backAfterMs = Date.now() - t0;
  console.log(JSON.stringify({ test: "pause/play", backAfterMs, latencyMs: back.last }));
  // Had it resumed where it stopped, the first frames would be seconds late.
  const first = await page.evaluate(
    (n) => (document.querySelector("moq-player") as unknown as { latencyLog: number[] }).latencyLog[n],
    before.n,
  );
  assert.ok(first !== undefined && first < 1000, `the first frame after play is live (${first} ms)`);
  assert.ok(backAfterMs <= 1000, `back at the live edge after ${backAfterMs} ms`);
  const s = await playerStats(page);
  assert.equal(s.paused, false);
  assert.equal(s.reconnects, still.reconnects, "the same session");
  assert.deepEqual(env.browser.errors, []);
});

test("keyboard: m toggles mute, k pauses and plays, arrows set the volume, l goes live", async () => {
  const page = env.browser.page;
  await watch(page);
  await page.locator("moq-player").focus();
  await page.keyboard.press("m");
  await until("audio", async () => num((await playerStats(page)).audioSamplesPlayed) > 4800);
  assert.ok(await page.locator("moq-player .mute").isVisible(), "the Mute button shows");
  await page.keyboard.press("m");
  await until("muted", async () => (await playerStats(page)).audioState === "muted");
  assert.ok(await page.locator("moq-player .unmute").isVisible());
  await page.keyboard.press("ArrowDown");
  await page.keyboard.press("ArrowDown");
  assert.equal((await playerStats(page)).volume, 0.8);
  assert.equal(await page.locator("moq-player .volume").inputValue(), "0.8");
  await page.keyboard.press("ArrowUp");
  assert.equal((await playerStats(page)).volume, 0.9);
  await page.keyboard.press("k");
  await until("paused", async () => (await playerStats(page)).paused === true);
  await page.keyboard.press("l");
  await until("playing again", async () => (await playerStats(page)).paused === false);
  const rendered = num((await playerStats(page)).framesRendered);
  await until("frames again", async () => num((await playerStats(page)).framesRendered) > rendered + 10);
  // Space on the focused player (not on a button) pauses too.
  await page.keyboard.press(" ");
  await until("paused by space", async () => (await playerStats(page)).paused === true);
  assert.deepEqual(env.browser.errors, []);
});

test("full screen: the button and f enter and leave it", async () => {
  const page = env.browser.page;
  await watch(page);
  const isFull = () =>
    page.evaluate(() => document.fullscreenElement === document.querySelector("moq-player"));
  await page.locator("moq-player .fullscreen").click();
  await until("full screen", isFull, 5_000);
  // The label follows the fullscreenchange event, which may come after fullscreenElement is set.
  const label = () => page.locator("moq-player .fullscreen").textContent();
  await until("the button says so", async () => (await label()) === "Exit full screen", 5_000);
  await page.locator("moq-player").focus();
  await page.keyboard.press("f");
  await until("left full screen", async () => !(await isFull()), 5_000);
  await page.keyboard.press("f");
  await until("full screen by key", isFull, 5_000);
  await page.evaluate(() => document.exitFullscreen());
  await until("left", async () => !(await isFull()), 5_000);
  assert.deepEqual(env.browser.errors, []);
});

test("picture-in-picture: the button opens it on the player's own <video>", async () => {
  const page = env.browser.page;
  await watch(page);
  await page.locator("moq-player .pip").click();
  const outcome = await until(
    "picture-in-picture or a message",
    () =>
      page.evaluate(() => {
        if (document.pictureInPictureElement) return "open";
        const m = document.querySelector("moq-player")?.shadowRoot?.querySelector(".message") as HTMLElement;
        return m && !m.hidden && m.textContent ? `refused: ${m.textContent}` : undefined;
      }),
    5_000,
  );
  console.log(JSON.stringify({ test: "pip", outcome }));
  // Chromium renders through a <video> (MediaStreamTrackGenerator), which the browser floats as it is.
  assert.equal((await playerStats(page)).renderer, "video");
  assert.equal(outcome, "open");
  await page.evaluate(() => document.exitPictureInPicture());
  await until("closed", () => page.evaluate(() => document.pictureInPictureElement === null || undefined));
  assert.deepEqual(env.browser.errors, []);
});

test("360 px wide: every control shows, inside the player, with no horizontal overflow", async () => {
  const page = env.browser.page;
  await page.setViewportSize({ width: 360, height: 740 });
  try {
    await watch(page);
    const player = await page.locator("moq-player").boundingBox();
    assert.ok(player);
    const controls = [
      ".play",
      ".unmute",
      ".volume",
      ".latency-mode",
      ".latency",
      ".renditions",
      ".pip",
      ".fullscreen",
    ];
    for (const c of controls) {
      const box = await page.locator(`moq-player ${c}`).boundingBox();
      assert.ok(box && box.width > 0 && box.height > 0, `${c} shows`);
      assert.ok(
        box.x >= player.x && box.x + box.width <= player.x + player.width + 0.5,
        `${c} within the width`,
      );
      assert.ok(
        box.y >= player.y && box.y + box.height <= player.y + player.height + 0.5,
        `${c} within the height`,
      );
    }
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `overflows by ${overflow} px`);
  } finally {
    await page.setViewportSize({ width: 1280, height: 720 });
  }
});

test("axe-core: no serious or critical violation on /, /watch and /studio", async () => {
  const page = env.browser.page;
  const axe = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
  const pages: [string, string][] = [
    ["/", `/?${relayQuery()}`],
    ["/watch", `/watch?name=demo/clip&${relayQuery()}`],
    ["/studio", `/studio?${relayQuery()}`],
  ];
  const found: string[] = [];
  for (const [name, path] of pages) {
    await page.goto(`${env.site.url}${path}`);
    if (name === "/watch") {
      await until("video", async () => num((await playerStats(page)).framesRendered) > 10);
    }
    await page.addScriptTag({ content: axe });
    const violations = (await page.evaluate(async () => {
      const r = await (window as unknown as { axe: { run(): Promise<{ violations: unknown[] }> } }).axe.run();
      return r.violations;
    })) as { id: string; impact: string; nodes: { target: unknown }[] }[];
    for (const v of violations) {
      if (v.impact === "serious" || v.impact === "critical") {
        found.push(`${name}: ${v.id} (${v.impact}) at ${JSON.stringify(v.nodes.map((n) => n.target))}`);
      }
    }
  }
  assert.deepEqual(found, []);
});
