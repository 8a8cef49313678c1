// The three pages on a phone-sized screen (360x740, touch): no horizontal scrolling, and every control a finger can
// hit (44 CSS px high at least, the WCAG 2.5.5 target size). Screenshots land in test-results/phone-*.png.

import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import type { Page } from "playwright-core";
import { goLive, num, playerStats, relayQuery, stage, until, WEB } from "./harness.ts";

const env = stage();
const SHOTS = path.join(WEB, "test-results");
const MIN_TARGET_PX = 44;
const errors: string[] = [];

async function phone(pathAndQuery: string): Promise<Page> {
  const page = await env.browser.context.newPage();
  await page.setViewportSize({ width: 360, height: 740 });
  page.on("pageerror", (e) => errors.push(`${pathAndQuery}: ${e.message}`));
  await page.goto(`${env.site.url}${pathAndQuery}`);
  return page;
}

/** Controls smaller than a fingertip, and whether the page scrolls sideways. Shadow roots (the player) count. */
const CHECK = `(() => {
  const small = [];
  const visit = (root) => {
    for (const el of root.querySelectorAll("button, input, select, textarea, a")) {
      const r = el.getBoundingClientRect();
      if (r.width === 0 || r.height === 0 || el.closest("[hidden]")) continue;
      if (r.height < ${MIN_TARGET_PX}) small.push(el.tagName.toLowerCase() + (el.className ? "." + el.className : "") + " " + Math.round(r.height) + "px: " + (el.textContent || el.getAttribute("name") || "").trim().slice(0, 20));
    }
    for (const el of root.querySelectorAll("*")) if (el.shadowRoot) visit(el.shadowRoot);
  };
  visit(document);
  return { small, scrollWidth: document.documentElement.scrollWidth, width: innerWidth };
})()`;

async function check(page: Page, name: string): Promise<void> {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `phone-${name}.png`), fullPage: true });
  const r = (await page.evaluate(CHECK)) as { small: string[]; scrollWidth: number; width: number };
  assert.ok(r.scrollWidth <= r.width, `${name}: scrolls sideways (${r.scrollWidth} > ${r.width})`);
  assert.deepEqual(r.small, [], `${name}: controls under ${MIN_TARGET_PX} px`);
}

test("the channel list, the watch page with its chat, and the studio fit a 360x740 phone", async () => {
  const studio = await goLive(
    env.browser.context,
    env.site.url,
    env.relay,
    "phone",
    "On a phone",
    "&size=320x180",
  );
  const list = await phone(`/?${relayQuery(env.relay)}`);
  await list.locator(`li.channel[data-name="live/phone"] .title`).waitFor({ timeout: 8_000 });
  await check(list, "channels");
  await list.close();
  const watch = await phone(`/watch?name=live/phone&${relayQuery(env.relay)}`);
  await until("frames on the phone", async () => num((await playerStats(watch)).framesRendered) >= 10);

  await watch
    .locator("#chat .chat-status", { hasText: /in chat\/phone as s\d+$/ })
    .waitFor({ timeout: 8_000 });
  await check(watch, "watch");
  await watch.close();
  const studioPhone = await phone(`/studio?${relayQuery(env.relay)}&channel=phone2&title=Phone`);
  await check(studioPhone, "studio");
  await studioPhone.close();
  await studio.close();
  assert.deepEqual(errors, []);
});
