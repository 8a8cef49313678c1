// Latency per engine and transport, side by side in one run: a Chromium studio goes live with the stamped test
// pattern, and each viewer (Chromium over WebTransport, Chromium over a WebSocket, Firefox, WebKitGTK) watches it
// in turn for MOQ_BENCH_SECONDS (20) on loopback. Prints JSON: publish-to-display (the object's publish time to
// the frame handed to the screen) and glass-to-glass (the pattern's burnt-in capture time to the frame drawn),
// p50/p95 per viewer, with each page's clock error (`timeOrigin + now()` against `Date.now()`), which the
// cross-browser glass-to-glass figures include.
//   npm run bench:engines

import { freePort, goLive, openBrowser, Relay, relayQuery, serveDist, until } from "./browser/harness.ts";
import { launchFirefox, startPulse } from "./firefox/harness.ts";
import { launchWebKit, webkitMissing } from "./webkit/driver.ts";

const seconds = Number(process.env.MOQ_BENCH_SECONDS ?? 20);
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))];
};

/** A page in some engine: navigate, and evaluate an expression (a string: no bundler helpers in the page). */
interface Viewer {
  goto(url: string): Promise<void>;
  eval<T>(expression: string): Promise<T>;
}

const STATE = `({ stamps: document.querySelector("moq-player").stampLog.length,
  publish: document.querySelector("moq-player").latencyLog.length,
  rendered: document.querySelector("moq-player").stats.framesRendered ?? 0,
  transport: document.querySelector("moq-player").stats.transport,
  clockErrorMs: Date.now() - (performance.timeOrigin + performance.now()) })`;
const LOGS = (from: { stamps: number; publish: number }) =>
  `({ g2g: document.querySelector("moq-player").stampLog.slice(${from.stamps}),
      publish: document.querySelector("moq-player").latencyLog.slice(${from.publish}) })`;

type State = { stamps: number; publish: number; rendered: number; transport: string; clockErrorMs: number };

async function measure(name: string, viewer: Viewer, url: string) {
  await viewer.goto(url);
  await until(`${name}: 60 frames`, async () => (await viewer.eval<State>(STATE)).rendered >= 60, 20_000);
  const from = await viewer.eval<State>(STATE);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const logs = await viewer.eval<{ g2g: number[]; publish: number[] }>(LOGS(from));
  const end = await viewer.eval<State>(STATE);
  return {
    viewer: name,
    transport: end.transport,
    frames: logs.publish.length,
    publishToDisplayP50Ms: pct(logs.publish, 50),
    publishToDisplayP95Ms: pct(logs.publish, 95),
    glassToGlassP50Ms: pct(logs.g2g, 50),
    glassToGlassP95Ms: pct(logs.g2g, 95),
    clockErrorMs: end.clockErrorMs,
  };
}

const relay = new Relay(await freePort());
await relay.start();
const site = await serveDist(() => relay.port);
const chromium = await openBrowser();
const pulse = await startPulse();
const results = [];
try {
  const studio = await goLive(chromium.context, site.url, relay, "bench", "Engine bench", "&size=1280x720");
  const watch = (transport: string) =>
    `${site.url}/watch?name=live/bench&${relayQuery(relay)}&chat=0${transport ? `&transport=${transport}` : ""}`;
  const page = await chromium.context.newPage();
  const chromiumViewer: Viewer = {
    goto: async (url) => void (await page.goto(url)),
    eval: (e) => page.evaluate(e),
  };
  results.push(await measure("chromium", chromiumViewer, watch("webtransport")));
  results.push(await measure("chromium", chromiumViewer, watch("websocket")));
  await page.close();
  const firefox = await launchFirefox(pulse);
  try {
    const ff = await firefox.newPage();
    const viewer: Viewer = {
      goto: async (url) => void (await ff.goto(url)),
      eval: <T>(e: string) => ff.evaluate(e) as Promise<T>,
    };
    results.push(await measure(`firefox ${await firefox.version()}`, viewer, watch("")));
  } finally {
    await firefox.close();
  }
  if (webkitMissing) {
    results.push({ viewer: "webkitgtk", skipped: webkitMissing });
  } else {
    const webkit = await launchWebKit();
    try {
      const viewer: Viewer = {
        goto: (url) => webkit.driver.get(url),
        eval: <T>(e: string) => webkit.driver.executeScript(`return ${e}`) as Promise<T>,
      };
      results.push(await measure("webkitgtk", viewer, watch("")));
    } finally {
      await webkit.quit();
    }
  }
  await studio.close();
} finally {
  await chromium.close();
  await site.close();
  await relay.stop("SIGKILL");
  pulse?.stop();
}
console.log(
  JSON.stringify(
    {
      source: "Chromium studio, stamped test pattern 1280x720 @ 30 fps (H.264, 720p + 360p, Opus), loopback",
      relay: "MOQ_BIN_DIR's moq-relay (target/debug if unset)",
      seconds,
      results,
    },
    null,
    1,
  ),
);
