// The player in WebKit, the engine of Safari: Debian's WebKitGTK (MiniBrowser) driven by its WebKitWebDriver over
// classic WebDriver (selenium-webdriver), on a virtual X display (its MiniBrowser has no headless mode). WebKitGTK
// has no WebTransport, so the player goes over the WebSocket; it decodes H.264 through GStreamer (gst-libav).
// Skipped where webkit2gtk-driver or Xvfb is not installed (.ci/run installs them).

import assert from "node:assert/strict";
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { after, before, test } from "node:test";
import { Builder, type WebDriver } from "selenium-webdriver";
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

const MINIBROWSER = process.env.WEBKIT_MINIBROWSER ?? "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser";
const installed = (cmd: string) => {
  try {
    execFileSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
};
const skip =
  installed("WebKitWebDriver") && installed("xvfb-run") && existsSync(MINIBROWSER)
    ? false
    : "webkit2gtk-driver or xvfb is not installed";

let relay: Relay;
let site: Site;
let driverProc: ChildProcess | undefined;
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
  const port = await freePort();
  driverProc = spawn("xvfb-run", ["-a", "WebKitWebDriver", `--port=${port}`], {
    stdio: "ignore",
    detached: true,
  });
  await until("WebKitWebDriver", async () => {
    const r = await fetch(`http://127.0.0.1:${port}/status`).catch(() => undefined);
    return r?.ok;
  });
  driver = await new Builder()
    .usingServer(`http://127.0.0.1:${port}`)
    .withCapabilities({
      browserName: "MiniBrowser",
      "webkitgtk:browserOptions": { binary: MINIBROWSER, args: ["--automation"] },
    })
    .build();
});

after(async () => {
  await driver?.quit().catch(() => {});
  if (driverProc?.pid) {
    try {
      process.kill(-driverProc.pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
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
