// The automatic rendition choice on moq-pub's two renditions (640x360, 320x180): told that its throughput is
// low (the `throughput-cap` attribute caps the measured estimate), the player steps down by itself; with the cap
// lifted, the measured loopback throughput takes it back up after the hold.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { after, before, test } from "node:test";
import type { Page } from "playwright-core";
import { type Browsing, freePort, openBrowser, Publisher, Relay, serveDist, until } from "./harness.ts";

const hasFfmpeg = (() => {
  try {
    execFileSync("ffmpeg", ["-version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

let relay: Relay;
let site: Awaited<ReturnType<typeof serveDist>>;
let b: Browsing;
let pub: Publisher;

before(async () => {
  if (!hasFfmpeg) return;
  relay = new Relay(await freePort(), []);
  await relay.start();
  pub = new Publisher(relay.url, "test/auto");
  pub.start();
  site = await serveDist(() => relay.port);
  b = await openBrowser();
});

after(async () => {
  pub?.stop();
  await b?.close();
  await site?.close();
  await relay?.stop("SIGKILL");
});

type Stats = Record<string, number | string | boolean | undefined>;
const stats = (page: Page) =>
  page.evaluate(() => ({
    ...(document.querySelector("moq-player") as unknown as { stats: object }).stats,
  })) as Promise<Stats>;
const num = (v: unknown) => (typeof v === "number" ? v : 0);
const cap = (page: Page, kbps: number | undefined) =>
  page.evaluate((v) => {
    const p = document.querySelector("moq-player") as HTMLElement;
    if (v === undefined) p.removeAttribute("throughput-cap");
    else p.setAttribute("throughput-cap", String(v));
  }, kbps);

test("steps down when throughput is short and back up when it returns", {
  skip: !hasFfmpeg && "no ffmpeg",
}, async () => {
  const q = `name=test/auto&url=${encodeURIComponent(relay.url)}&fingerprint-url=/relay/certificate.sha256`;
  await b.page.goto(`${site.url}/watch.html?${q}`);
  const start = await until(
    "the large rendition with a throughput estimate",
    async () => {
      const s = await stats(b.page);
      return num(s.framesRendered) > 30 && s.width === 640 && num(s.throughputKbps) > 0 ? s : undefined;
    },
    15_000,
  ).catch(async (e) => {
    console.log(JSON.stringify(await stats(b.page)), pub.log.slice(-2000));
    throw e;
  });
  const overlay = await b.page.locator("moq-player .overlay").textContent();
  assert.match(overlay ?? "", /throughput \d+ kb\/s/);

  await cap(b.page, 100);
  const down = await until(
    "the small rendition, chosen automatically",
    async () => {
      const s = await stats(b.page);
      return s.width === 320 && /^180p/.test(String(s.rendition)) ? s : undefined;
    },
    10_000,
  );
  assert.ok(num(down.throughputKbps) <= 100, `estimate ${down.throughputKbps}`);
  const menu = b.page.locator("moq-player select.renditions");
  assert.equal(await menu.inputValue(), "", "still automatic");

  await cap(b.page, undefined);
  const rendered = num((await stats(b.page)).framesRendered);
  const up = await until(
    "the large rendition again",
    async () => {
      const s = await stats(b.page);
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
  assert.deepEqual(b.errors, []);
});
