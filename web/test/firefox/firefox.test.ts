// The Chromium scenarios in Firefox (Debian's firefox-esr): watch the demo, go live from the studio with the fake
// camera and microphone (no MediaStreamTrackProcessor there: capture-fallback.ts), find the channel in the list,
// and chat. Firefox before 153 cannot take MoQT's streams over WebTransport, so the client takes the WebSocket.
// Skipped where firefox-esr is not installed (.ci/run installs it).

import assert from "node:assert/strict";
import { test } from "node:test";
import type { Page } from "puppeteer-core";
import { num, relayQuery, type Stats, until } from "../browser/harness.ts";
import { firefoxStage, firefoxVersion } from "./harness.ts";

const skip = firefoxVersion === undefined ? "firefox-esr is not installed" : false;
const env = firefoxStage(["--demo", "--chat-address-burst", "100"]);
const expectedTransport = (firefoxVersion ?? 0) < 153 ? "websocket" : "webtransport";

// Strings, not functions: tsx's helpers would not exist in the page.
const stats = (page: Page) =>
  page.evaluate(`({ ...document.querySelector("moq-player").stats })`) as Promise<Stats>;
const text = (page: Page, selector: string) =>
  page.evaluate(`document.querySelector(${JSON.stringify(selector)})?.textContent ?? ""`) as Promise<string>;

/** Waits until the page's player has rendered `frames` frames. */
function playing(page: Page, frames: number): Promise<Stats> {
  return until(
    `${frames} frames in Firefox`,
    async () => {
      const s = await stats(page);
      return num(s.framesRendered) >= frames ? s : undefined;
    },
    15_000,
  );
}

async function goLive(channel: string, title: string): Promise<Page> {
  const q = `${relayQuery(env.relay)}&channel=${channel}&title=${encodeURIComponent(title)}&source=camera&size=640x360`;
  const studio = await env.open(`/studio?${q}`);
  await studio.click("#go-live");
  await studio.waitForSelector("#live:not([hidden])", { timeout: 10_000 });
  return studio;
}

test("Firefox plays the demo", { skip }, async () => {
  const page = await env.open(`/watch?name=demo/clip&${relayQuery(env.relay)}`);
  const s = await playing(page, 60);
  assert.equal(s.transport, expectedTransport);
  assert.equal(s.decodeErrors, 0);
  assert.equal(s.width, 640);
  assert.ok(num(s.latencyP50Ms) > 0 && num(s.latencyP50Ms) < 2000, `latency ${s.latencyP50Ms}`);
  console.log(JSON.stringify({ test: "firefox-demo", transport: s.transport, latencyP50Ms: s.latencyP50Ms }));
  await page.close();
  assert.deepEqual(env.errors, []);
});

test("Firefox goes live from the studio's camera and microphone; the list shows it; Firefox plays it", {
  skip,
}, async () => {
  const studio = await goLive("fox", "Fox cam");
  const list = await env.open(`/?${relayQuery(env.relay)}`);
  const t0 = Date.now();
  await until(
    "the channel listed with its title",
    async () => {
      return (await text(list, `li.channel[data-name="live/fox"] .title`)) === "Fox cam";
    },
    30_000,
  );
  console.log("title after", Date.now() - t0, await studio.evaluate(`document.body.innerText`));
  await list.close();
  const viewer = await env.open(`/watch?name=live/fox&${relayQuery(env.relay)}`);
  const s = await playing(viewer, 30);
  await viewer.click("moq-player >>> .unmute");
  await until("the microphone's audio played in Firefox", async () => {
    return num((await stats(viewer)).audioSamplesPlayed) > 24_000;
  });
  assert.equal(s.decodeErrors, 0);
  assert.equal(s.width, 640);
  await viewer.close();
  await studio.click("#stop");
  await studio.close();
  assert.deepEqual(env.errors, []);
});

test("Firefox chats with the streamer", { skip }, async () => {
  const studio = await goLive("den", "Den");
  const joined = (page: Page) =>
    until("joined the chat", async () =>
      /in chat\/den as s\d+$/.test(await text(page, "#chat .chat-status")),
    );
  await joined(studio);
  const viewer = await env.open(`/watch?name=live/den&${relayQuery(env.relay)}`);
  await joined(viewer);
  await viewer.locator("#chat input[name=name]").fill("fox");
  await viewer.locator("#chat input[name=text]").fill("hello <b>den</b>");
  await viewer.click("#chat button[type=submit]");
  for (const page of [studio, viewer])
    await until(
      "the message",
      async () => (await text(page, "#chat ol.messages li .text")) === "hello <b>den</b>",
    );
  assert.equal(await text(studio, "#chat ol.messages li .who"), "fox");
  await viewer.close();
  await studio.close();
  assert.deepEqual(env.errors, []);
});
