// GOAWAY, make before break: the player opens its next session and subscribes there while the old one still
// plays, and closes the old one only when the new one delivers video.

import assert from "node:assert/strict";
import { test } from "node:test";
import type { Page } from "playwright-core";
import {
  errorsBesidesReconnecting,
  num,
  playerStats,
  playingAgain,
  type Stats,
  stage,
  until,
} from "./harness.ts";

const env = stage({ args: ["--demo"], drain: "5s" });

async function watch(page: Page): Promise<void> {
  const q = `name=demo/clip&url=${encodeURIComponent(env.relay.url)}&fingerprint-url=/relay/certificate.sha256`;
  await page.goto(`${env.site.url}/watch.html?${q}`);
  await until("video", async () => num((await playerStats(page)).framesRendered) > 30);
}

test("moves to a new session without a reconnect", async () => {
  await watch(env.browser.page);
  const before = await playerStats(env.browser.page);
  // What a GOAWAY to the same relay does, without stopping it.
  const moved = await env.browser.page.evaluate(() =>
    (document.querySelector("moq-player") as unknown as { moveSession(): Promise<boolean> }).moveSession(),
  );
  assert.equal(moved, true);
  // The longest time without a new frame around the move (logged, not asserted: a loaded machine varies).
  let longestGapMs = 0;
  let last = { at: Date.now(), frames: num(before.framesRendered) };
  const s = await until("frames from the new session", async () => {
    const s = await playerStats(env.browser.page);
    const now = Date.now();
    if (num(s.framesRendered) > last.frames) last = { at: now, frames: num(s.framesRendered) };
    longestGapMs = Math.max(longestGapMs, now - last.at);
    return num(s.framesRendered) > num(before.framesRendered) + 60 ? s : undefined;
  });
  console.log(
    JSON.stringify({ test: "move", longestGapMs, dropped: num(s.framesDropped) - num(before.framesDropped) }),
  );
  assert.equal(s.handover, "done");
  assert.equal(s.handoversDone, 1);
  assert.equal(s.reconnects, before.reconnects, "no reconnect");
  assert.equal(s.state, "playing");
  assert.equal(s.decodeErrors, 0);
  assert.ok(/session accepted[\s\S]*session accepted/.test(env.relay.log), "the relay saw a second session");
  assert.deepEqual(env.browser.errors, []);
});

test("on a relay's GOAWAY, tries the new session while the old one still plays", async () => {
  await watch(env.browser.page);
  const started = num((await playerStats(env.browser.page)).handoversStarted);
  const stopping = env.relay.stop("SIGTERM");
  const during = await until("a handover under way", async () => {
    const s = await playerStats(env.browser.page);
    return num(s.handoversStarted) > started ? s : undefined;
  });
  const log: Stats[] = [during];
  const settled = await until(
    "the handover settles",
    async () => {
      const s = await playerStats(env.browser.page);
      log.push(s);
      return s.handover !== "connecting" ? s : undefined;
    },
    8_000,
  );
  await stopping;
  const lastConnecting = log.filter((x) => x.handover === "connecting").pop() ?? during;
  const framesWhileConnecting = num(lastConnecting.framesRendered) - num(during.framesRendered);
  assert.ok(framesWhileConnecting > 0, "the old session kept playing while the new one was tried");
  console.log(
    JSON.stringify({
      test: "goaway",
      handover: settled.handover,
      framesWhileConnecting,
    }),
  );
  await env.relay.start();
  await playingAgain(env.browser.page);
  assert.ok(!env.browser.crashed(), "the tab is alive");
  assert.deepEqual(errorsBesidesReconnecting(env.browser.errors), []);
});
