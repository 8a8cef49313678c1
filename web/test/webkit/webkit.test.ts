// The player in WebKit, the engine of Safari: Debian's WebKitGTK (MiniBrowser) driven by its WebKitWebDriver over
// classic WebDriver (selenium-webdriver), on a virtual X display (its MiniBrowser has no headless mode). WebKitGTK
// has no WebTransport, so the player goes over the WebSocket; it decodes H.264 through GStreamer (gst-libav).
// Skipped where webkit2gtk-driver or Xvfb is not installed (.ci/run installs them).

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { WebDriver } from "selenium-webdriver";
import {
  freePort,
  hasFfmpeg,
  num,
  Publisher,
  Relay,
  relayQuery,
  type Site,
  type Stats,
  serveDist,
  until,
} from "../browser/harness.ts";
import { launchWebKit, type WebKit, webkitMissing } from "./driver.ts";

const skip = webkitMissing ?? false;

let relay: Relay;
let site: Site;
let webkit: WebKit | undefined;
let driver: WebDriver;
let publisher: Publisher | undefined;

before(async () => {
  if (skip) return;
  relay = new Relay(await freePort(), ["--demo"]);
  await relay.start();
  site = await serveDist(() => relay.port);
  if (hasFfmpeg) {
    publisher = new Publisher(relay.url, "live/wk");
    publisher.start();
  }
  webkit = await launchWebKit();
  driver = webkit.driver;
});

after(async () => {
  await webkit?.quit();
  publisher?.stop();
  await site?.close();
  await relay?.stop("SIGKILL");
});

const stats = async () =>
  (await driver.executeScript(`return { ...document.querySelector("moq-player").stats }`)) as Stats;

test("WebKit plays the demo over a WebSocket, and joins the chat", { skip }, async () => {
  await driver.get(`${site.url}/watch?name=demo/clip&${relayQuery(relay)}`);
  const s = await until(
    "60 frames in WebKit",
    async () => {
      const s = await stats();
      return num(s.framesRendered) >= 60 ? s : undefined;
    },
    15_000,
  );
  assert.equal(s.transport, "websocket", "WebKitGTK has no WebTransport");
  assert.equal(s.decodeErrors, 0);
  assert.equal(s.width, 640);
  assert.ok(num(s.latencyP50Ms) > 0 && num(s.latencyP50Ms) < 2000, `latency ${s.latencyP50Ms}`);
  console.log(JSON.stringify({ test: "webkit-demo", transport: s.transport, latencyP50Ms: s.latencyP50Ms }));
});

test("WebKit watches a live channel and chats", { skip: skip || (!hasFfmpeg && "no ffmpeg") }, async () => {
  await driver.get(`${site.url}/watch?name=live/wk&${relayQuery(relay)}`);
  await until(
    "30 frames of live/wk in WebKit",
    async () => num((await stats()).framesRendered) >= 30,
    15_000,
  );
  const status = () =>
    driver.executeScript(`return document.querySelector("#chat .chat-status")?.textContent`);
  await until("joined the chat in WebKit", async () => /in chat\/wk as s\d+$/.test(String(await status())));
  await driver.executeScript(`
    document.querySelector("#chat input[name=text]").value = "hi from <i>webkit</i>";
    document.querySelector("#chat button[type=submit]").click();`);
  const shown = await until("the message back from the room", async () => {
    const t = await driver.executeScript(
      `return document.querySelector("#chat ol.messages li .text")?.textContent`,
    );
    return typeof t === "string" && t.length > 0 ? t : undefined;
  });
  assert.equal(shown, "hi from <i>webkit</i>");
});
