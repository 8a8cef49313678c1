// The player in Chromium against `moq-relay --demo`: it plays at both drafts, audio reaches the worklet after a
// click, it keeps the live edge after a stall, and it survives the relay going away and coming back.

import assert from "node:assert/strict";
import { test } from "node:test";
import type { Page } from "playwright-core";
import {
  errorsBesidesReconnecting,
  num,
  playerStats,
  playingAgain,
  serveDist,
  stage,
  until,
} from "./harness.ts";

const env = stage();

async function watch(page: Page, extra = ""): Promise<void> {
  const q = `name=demo/clip&url=${encodeURIComponent(env.relay.url)}&fingerprint-url=/relay/certificate.sha256${extra}`;
  await page.goto(`${env.site.url}/watch.html?${q}`);
}

for (const version of [19, 18]) {
  test(`plays the demo at draft-${version}`, async () => {
    const t0 = Date.now();
    await watch(env.browser.page, `&versions=${version}`);
    const s = await until(
      "60 rendered frames",
      async () => {
        const s = await playerStats(env.browser.page);
        return num(s.framesRendered) >= 60 ? s : undefined;
      },
      15_000,
    );
    assert.equal(s.version, version);
    // WebTransport wins the race when the browser has it (the WebSocket waits out its head start).
    assert.equal(s.transport, process.env.MOQ_BROWSER_NO_WEBTRANSPORT ? "websocket" : "webtransport");
    assert.equal(s.state, "playing");
    assert.equal(s.width, 640);
    assert.equal(s.height, 360);
    assert.equal(s.decodeErrors, 0);
    assert.ok(
      typeof s.latencyP50Ms === "number" && s.latencyP50Ms > 0 && s.latencyP50Ms < 2000,
      `latency ${s.latencyP50Ms}`,
    );
    console.log(
      JSON.stringify({
        test: `draft-${version}`,
        startupToSixtyFramesMs: Date.now() - t0,
        latencyP50Ms: s.latencyP50Ms,
        fps: s.fps,
        dropped: s.framesDropped,
      }),
    );
    assert.deepEqual(env.browser.errors, []);
  });
}

test("audio reaches the worklet after a click", async () => {
  await watch(env.browser.page);
  await until("video", async () => num((await playerStats(env.browser.page)).framesRendered) > 10);
  const before = await playerStats(env.browser.page);
  assert.equal(before.audioState, "muted");
  assert.equal(before.audioSamplesPlayed, 0);
  await env.browser.page.locator("moq-player .unmute").click();
  const s = await until("a second of audio", async () => {
    const s = await playerStats(env.browser.page);
    return num(s.audioSamplesPlayed) > 48_000 ? s : undefined;
  });
  assert.equal(s.audioState, "running");
  assert.equal(s.audioClock, true, "video follows the audio clock");
  assert.ok(await env.browser.page.locator("moq-player .unmute").isHidden());
  assert.deepEqual(env.browser.errors, []);
});

test("audio without cross-origin isolation goes over a MessagePort", async () => {
  const plain = await serveDist(() => env.relay.port, false);
  try {
    const q = `name=demo/clip&url=${encodeURIComponent(env.relay.url)}&fingerprint-url=/relay/certificate.sha256`;
    await env.browser.page.goto(`${plain.url}/watch.html?${q}`);
    assert.equal(await env.browser.page.evaluate(() => crossOriginIsolated), false);
    await until("video", async () => num((await playerStats(env.browser.page)).framesRendered) > 10);
    await env.browser.page.locator("moq-player .unmute").click();
    const s = await until("a second of audio", async () => {
      const s = await playerStats(env.browser.page);
      return num(s.audioSamplesPlayed) > 48_000 ? s : undefined;
    });
    assert.equal(s.audioShared, false);
    assert.equal(s.audioClock, true, "video follows the audio clock");
    assert.deepEqual(env.browser.errors, []);
  } finally {
    await env.browser.page.goto(`${env.site.url}/test.html`);
    await plain.close();
  }
});

test("returns to the live edge after a 2 s stall", async () => {
  await watch(env.browser.page, "&latency=100");
  await until("video", async () => num((await playerStats(env.browser.page)).framesRendered) > 30);
  const before = await playerStats(env.browser.page);
  // Block the page's main thread (where the transport reads) for 2 s: objects pile up in the network.
  await env.browser.page.evaluate(() => {
    const end = Date.now() + 2000;
    while (Date.now() < end) {
      // busy
    }
  });
  const skippedBefore = num(before.groupsSkipped) + num(before.framesDropped);
  const s = await until(
    "stale media skipped and latency back near the target",
    async () => {
      const s = await playerStats(env.browser.page);
      const skipped = num(s.groupsSkipped) + num(s.framesDropped) - skippedBefore;
      const fresh = num(s.framesRendered) > num(before.framesRendered) + 30;
      return skipped >= 10 && fresh && num(s.latencyMs) < 400 ? s : undefined;
    },
    8_000,
  );
  console.log(
    JSON.stringify({
      test: "stall",
      groupsSkipped: s.groupsSkipped,
      framesDropped: s.framesDropped,
      latencyMs: s.latencyMs,
    }),
  );
  assert.deepEqual(env.browser.errors, []);
});

test("skips forward after the relay freezes for 2 s", async () => {
  const target = 100;
  await watch(env.browser.page, `&latency=${target}`);
  await until("video", async () => num((await playerStats(env.browser.page)).framesRendered) > 30);
  const before = await playerStats(env.browser.page);
  // The relay stops forwarding for 2 s (the stimulus, not an assertion); the publisher's media queues behind it.
  env.relay.pause(true);
  await new Promise((r) => setTimeout(r, 2000));
  env.relay.pause(false);
  const s = await until(
    "skipped forward and latency back under target + 150 ms",
    async () => {
      const s = await playerStats(env.browser.page);
      // Skipping forward is either whole groups left unread, or the decoder's backlog dropped at the next
      // keyframe (which of the two depends on how much of the backlog had arrived when the relay resumed).
      const skipped =
        num(s.groupsSkipped) > num(before.groupsSkipped) ||
        num(s.framesDropped) > num(before.framesDropped) + 30;
      const fresh = num(s.framesRendered) > num(before.framesRendered) + 30;
      return skipped && fresh && num(s.latencyMs) < target + 150 ? s : undefined;
    },
    8_000,
  ).catch(async (e) => {
    console.log(JSON.stringify(await playerStats(env.browser.page)));
    throw e;
  });
  assert.equal(s.reconnects, before.reconnects, "the same session carried on");
  console.log(
    JSON.stringify({
      test: "relay freeze",
      groupsSkipped: num(s.groupsSkipped) - num(before.groupsSkipped),
      framesDropped: num(s.framesDropped) - num(before.framesDropped),
      latencyMs: s.latencyMs,
    }),
  );
  assert.deepEqual(env.browser.errors, []);
});

for (const signal of ["SIGTERM", "SIGKILL"] as const) {
  test(`survives the relay stopping (${signal}) and reconnects when it returns`, async () => {
    await watch(env.browser.page);
    await until("video", async () => num((await playerStats(env.browser.page)).framesRendered) > 30);
    const reconnects = num((await playerStats(env.browser.page)).reconnects);
    await env.relay.stop(signal);
    await until("the player notices", async () => (await playerStats(env.browser.page)).state !== "playing");
    await env.relay.start();
    const s = await playingAgain(env.browser.page);
    assert.ok(!env.browser.crashed(), "the tab is alive");
    assert.ok(num(s.reconnects) > reconnects);
    // A relay that vanished makes the browser log failed connection attempts (one that reaches the restarted
    // relay with the old one's certificate hash fails its handshake); nothing else may be logged.
    assert.deepEqual(errorsBesidesReconnecting(env.browser.errors), []);
    env.browser.errors.length = 0;
  });
}

test("a browser without WebTransport plays over a WebSocket, and one without WebCodecs is told why", async () => {
  const q = `name=demo/clip&url=${encodeURIComponent(env.relay.url)}&fingerprint-url=/relay/certificate.sha256`;
  const page = await env.browser.context.newPage();
  try {
    await page.addInitScript(() => {
      delete (window as { WebTransport?: unknown }).WebTransport;
    });
    await page.goto(`${env.site.url}/watch.html?${q}`);
    const s = await until("video over a WebSocket", async () => {
      const s = await playerStats(page);
      return num(s.framesRendered) > 10 ? s : undefined;
    });
    assert.equal(s.transport, "websocket");
    assert.match(String(s.relay), /over a WebSocket/);
  } finally {
    await page.close();
  }
  const bare = await env.browser.context.newPage();
  try {
    await bare.addInitScript(() => {
      delete (window as { VideoDecoder?: unknown }).VideoDecoder;
    });
    await bare.goto(`${env.site.url}/watch.html?${q}`);
    const s = await until("the unsupported state", async () => {
      const s = await playerStats(bare);
      return s.state === "unsupported" ? s : undefined;
    });
    assert.match(String(s.error), /no video decoding \(WebCodecs\)/);
    const shown = await bare.evaluate(
      () => document.querySelector("moq-player")?.shadowRoot?.textContent ?? "",
    );
    assert.match(shown, /cannot play live streams/);
  } finally {
    await bare.close();
  }
});
