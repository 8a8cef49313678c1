// Going live from /studio (the canvas test pattern): a second page finds the channel in the list with its title,
// plays it (frames decoded, audio played, the glass-to-glass stamp read back), moq-sub reads the same stream,
// and the channel leaves the list after Stop and after the studio's tab closes.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { test } from "node:test";
import type { Page } from "playwright-core";
import { binary, goLive, num, playerStats, relayQuery, stage, until } from "./harness.ts";

const env = stage();

const query = () => relayQuery(env.relay);

const live = (channel: string, title: string, extra = "") =>
  goLive(env.browser.context, env.site.url, env.relay, channel, title, extra);

const channelItem = (page: Page, channel: string) => page.locator(`li.channel[data-name="live/${channel}"]`);

test("a studio goes live; the list shows it; a viewer plays it with audio and the stamp", async () => {
  const studio = await live("alice", "Alice's test pattern");
  const viewer = env.browser.page;
  await viewer.goto(`${env.site.url}/?${query()}`);
  const item = channelItem(viewer, "alice");
  await item.locator(".title", { hasText: "Alice's test pattern" }).waitFor({ timeout: 5_000 });
  assert.match((await item.locator(".details").textContent()) ?? "", /720p · 360p · H\.264 · audio/);
  // The demo is listed too.
  await viewer.getByRole("link", { name: "demo/clip" }).waitFor({ timeout: 5_000 });
  await item.locator("a").click();
  await viewer.waitForURL(/\/watch\?name=live%2Falice/);
  const s = await until(
    "30 frames of the studio's stream",
    async () => {
      const s = await playerStats(viewer);
      return num(s.framesRendered) >= 30 && num(s.stampMs) > 0 ? s : undefined;
    },
    15_000,
  );
  assert.equal(s.decodeErrors, 0);
  assert.equal(s.width, 1280);
  assert.equal(s.height, 720);
  await viewer.locator("moq-player .unmute").click();
  const a = await until("audio played", async () => {
    const a = await playerStats(viewer);
    return num(a.audioSamplesPlayed) > 24_000 ? a : undefined;
  });
  const studioStats = (await studio.evaluate(
    () => (globalThis as unknown as { moqStudio: { stats: object } }).moqStudio.stats,
  )) as {
    video: { track: string; fps: number; kbps: number; dropped: number }[];
  };
  assert.equal(studioStats.video.length, 2);
  console.log(
    JSON.stringify({
      test: "studio to viewer",
      latencyP50Ms: s.latencyP50Ms,
      glassToGlassMs: s.stampMs,
      fps: s.fps,
      audioSamplesPlayed: a.audioSamplesPlayed,
      studio: studioStats.video,
    }),
  );
  // Stop: the channel leaves the list.
  await viewer.goto(`${env.site.url}/?${query()}`);
  await channelItem(viewer, "alice").waitFor({ timeout: 5_000 });
  const t0 = Date.now();
  await studio.locator("#stop").click();
  await channelItem(viewer, "alice").waitFor({ state: "detached", timeout: 5_000 });
  console.log(JSON.stringify({ test: "stop leaves the list", ms: Date.now() - t0 }));
  await studio.close();
  assert.deepEqual(env.browser.errors, []);
});

test("a channel leaves the list when the studio's tab closes", async () => {
  const studio = await live("bob", "Bob");
  await env.browser.page.goto(`${env.site.url}/?${query()}`);
  await channelItem(env.browser.page, "bob")
    .locator(".title", { hasText: "Bob" })
    .waitFor({ timeout: 5_000 });
  const t0 = Date.now();
  await studio.close();
  await channelItem(env.browser.page, "bob").waitFor({ state: "detached", timeout: 8_000 });
  console.log(JSON.stringify({ test: "closed tab leaves the list", ms: Date.now() - t0 }));
});

test("moq-sub reads the browser's broadcast", async () => {
  // Found first: a missing binary must not leave a studio page running into the next tests.
  const moqSub = binary("moq-sub");
  const studio = await live("carol", "Carol", "&codec=h264");
  const sub = spawn(moqSub, [env.relay.url, "--namespace", "live/carol"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let bytes = 0;
  let log = "";
  sub.stdout.on("data", (d: Buffer) => (bytes += d.length));
  sub.stderr.on("data", (d: Buffer) => (log += d.toString()));
  try {
    await until("100 kB of fMP4 from moq-sub", () => bytes > 100_000, 15_000).catch((e) => {
      console.log(log.slice(-2000));
      throw e;
    });
  } finally {
    sub.kill("SIGKILL");
    await studio.close();
  }
});

test("the studio republishes after the relay restarts; the viewer plays again", async () => {
  const studio = await live("dave", "Dave", "&size=640x360");
  const viewer = env.browser.page;
  await viewer.goto(`${env.site.url}/watch?name=live/dave&${query()}`);
  await until(
    "frames before the restart",
    async () => num((await playerStats(viewer)).framesRendered) > 10,
    10_000,
  );
  await env.relay.stop("SIGKILL");
  await studio.locator("body:not([data-state=live])").waitFor({ timeout: 8_000 });
  await env.relay.start();
  await studio.locator("body[data-state=live]").waitFor({ timeout: 10_000 });
  const before = num((await playerStats(viewer)).framesRendered);
  await until(
    "frames after the restart",
    async () => num((await playerStats(viewer)).framesRendered) > before + 30,
    12_000,
  );
  const s = await playerStats(viewer);
  console.log(
    JSON.stringify({ test: "relay restart", reconnects: s.reconnects, decodeErrors: s.decodeErrors }),
  );
  await studio.close();
  await viewer.goto(`${env.site.url}/test.html`);
});

test("the fake camera and microphone go live and play", async () => {
  const studio = await live("erin", "Erin's camera", "&source=camera&size=640x360");
  const viewer = env.browser.page;
  await viewer.goto(`${env.site.url}/watch?name=live/erin&${query()}`);
  const s = await until(
    "30 camera frames",
    async () => {
      const s = await playerStats(viewer);
      return num(s.framesRendered) >= 30 ? s : undefined;
    },
    15_000,
  );
  assert.equal(s.decodeErrors, 0);
  assert.equal(s.stampMs, undefined, "no stamp in camera frames");
  await viewer.locator("moq-player .unmute").click();
  await until(
    "microphone audio played",
    async () => num((await playerStats(viewer)).audioSamplesPlayed) > 24_000,
  );
  console.log(
    JSON.stringify({ test: "camera", size: `${s.width}x${s.height}`, latencyP50Ms: s.latencyP50Ms }),
  );
  await studio.close();
  await viewer.goto(`${env.site.url}/test.html`);
});

for (const [codec, prefix] of [
  ["vp9", "vp09"],
  ["av1", "av01"],
] as const) {
  test(`the studio publishes ${codec.toUpperCase()} that the player decodes`, async () => {
    const studio = await live(`codec-${codec}`, codec, `&codec=${codec}&size=320x180`);
    const viewer = env.browser.page;
    await viewer.goto(`${env.site.url}/watch?name=live/codec-${codec}&${query()}`);
    const s = await until(
      `20 ${codec} frames`,
      async () => {
        const s = await playerStats(viewer);
        return num(s.framesRendered) >= 20 ? s : undefined;
      },
      15_000,
    );
    assert.equal(s.decodeErrors, 0);
    assert.equal(s.width, 320);
    const codecs = await studio.evaluate(() =>
      (
        globalThis as unknown as {
          moqStudio: { broadcast: { catalogJson(): { tracks: { codec: string }[] } } };
        }
      ).moqStudio.broadcast
        .catalogJson()
        .tracks.map((t) => t.codec),
    );
    assert.ok(
      codecs.some((c) => c.startsWith(prefix)),
      `catalog codecs ${codecs}`,
    );
    await studio.close();
    await viewer.goto(`${env.site.url}/test.html`);
  });
}
