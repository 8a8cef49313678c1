// A hostile publisher gets no markup or script into a viewer's page, and the pages run under the relay's
// Content-Security-Policy. Every page here is the relay's own response, headers and all (moq-relay/src/headers.rs),
// through a proxy that adds /hls/ for the hls.js page; an init script records every securitypolicyviolation and every <img>, <script>,
// <iframe>, <svg>, <style>... or on…= attribute added to the document or to a shadow root, except the page's own
// head and scripts.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import type net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import type { Page } from "playwright-core";
import { goLive, hasFfmpeg, num, playerStats, relayQuery, stage, until } from "./harness.ts";

const env = stage();

/** Markup that runs script if it ever becomes HTML (no `/`: it also serves as a namespace part). */
const M = `x"><img src=x onerror="window.__pwned=1"><svg onload="window.__pwned=1">`;
const SCRIPT = '<script>window.__pwned=1</script><iframe srcdoc="<b>x</b>"></iframe>';
const CHANNEL = "com.moq-web.channel";

/** A catalog with markup in every string field; what is not a valid field is dropped, the rest is text. */
const hostileCatalog = JSON.stringify({
  version: M,
  generatedAt: M,
  [CHANNEL]: { title: `title ${M}`, stamp: M, startedAt: M },
  tracks: [
    {
      name: `video0${M}`,
      label: `label ${M}`,
      role: "video",
      packaging: "loc",
      codec: "avc1.42e01f",
      width: 640,
      height: 360,
      bitrate: 400_000,
    },
    {
      name: `video1${M}`,
      role: "video",
      packaging: "loc",
      codec: "avc1.42e01e",
      width: 320,
      namespace: `live/${M}`,
    },
    {
      name: `audio0${M}`,
      role: "audio",
      packaging: "loc",
      codec: "opus",
      samplerate: 48_000,
      channelConfig: "2",
    },
    { name: "codec", role: "video", codec: `avc1${M}`, width: 1280, height: 720 },
    { name: "role", role: M, codec: "avc1.42e01f", width: 1280, height: 720 },
    { name: "packaging", packaging: M, codec: "avc1.42e01f", width: 1280, height: 720 },
    { name: "init", codec: "avc1.42e01f", width: 1280, height: 720, initRef: M, initData: M },
    { name: M + SCRIPT, codec: "opus", channelConfig: M, samplerate: 48_000 },
  ],
  initDataList: [{ id: M, type: M, data: M }],
});

/** Installed before any page script: records CSP violations and markup added after the page's own. */
function watchPage() {
  const w = window as unknown as { __csp: string[]; __added: string[] };
  w.__csp = [];
  w.__added = [];
  document.addEventListener("securitypolicyviolation", (e) =>
    w.__csp.push(`${e.effectiveDirective}: ${e.blockedURI} (${e.sourceFile}:${e.lineNumber})`),
  );
  const forbidden =
    /^(img|image|script|iframe|frame|object|embed|svg|math|style|link|base|meta|template|portal)$/;
  const observer = new MutationObserver((records) => {
    for (const r of records) {
      if (r.type === "attributes" && /^on/i.test(r.attributeName ?? ""))
        w.__added.push(`[${r.attributeName}]`);
      for (const n of r.addedNodes) {
        if (!(n instanceof Element)) continue;
        for (const el of [n, ...n.querySelectorAll("*")]) {
          // The page's own head and scripts (parsed, not made from a string).
          const own =
            document.readyState === "loading" &&
            ((el.localName === "script" && /^[a-z-]+\.js$/.test(el.getAttribute("src") ?? "")) ||
              el.localName === "link" ||
              el.localName === "meta");
          if (forbidden.test(el.localName) && !own) w.__added.push(el.localName);
          for (const a of el.attributes)
            if (/^on/i.test(a.name)) w.__added.push(`${el.localName}[${a.name}]`);
        }
      }
    }
  });
  const options = { childList: true, subtree: true, attributes: true };
  observer.observe(document, options);
  const attach = Element.prototype.attachShadow;
  Element.prototype.attachShadow = function (init: ShadowRootInit) {
    const root = attach.call(this, init);
    observer.observe(root, options);
    return root;
  };
}

/** What the page holds now: markup elements and handlers (shadow roots included), violations, `__pwned`. */
function audit(page: Page) {
  return page.evaluate(() => {
    const w = window as unknown as { __csp: string[]; __added: string[]; __pwned?: unknown };
    const found: string[] = [];
    const roots: (Document | ShadowRoot)[] = [document];
    let shadowRoots = 0;
    for (let root = roots.pop(); root; root = roots.pop()) {
      for (const el of root.querySelectorAll("*")) {
        if (el.shadowRoot) {
          roots.push(el.shadowRoot);
          shadowRoots++;
        }
        for (const a of el.attributes) if (/^on/i.test(a.name)) found.push(`${el.localName}[${a.name}]`);
        if (/^(img|image|iframe|frame|object|embed|svg|math|style|base|template|portal)$/.test(el.localName))
          found.push(el.localName);
        if (
          el.localName === "script" &&
          (el.textContent || !/^[a-z-]+\.js$/.test(el.getAttribute("src") ?? ""))
        )
          found.push("script");
      }
    }
    return { found, added: w.__added, csp: w.__csp, pwned: "__pwned" in window, shadowRoots };
  });
}

async function assertClean(page: Page, errors: string[]) {
  const a = await audit(page);
  assert.deepEqual(a.found, [], `${page.url()}: markup in the page`);
  assert.deepEqual(a.added, [], `${page.url()}: markup added`);
  assert.deepEqual(a.csp, [], `${page.url()}: CSP violations`);
  assert.equal(a.pwned, false, `${page.url()}: script ran`);
  assert.deepEqual(
    errors.filter((e) => /Content Security Policy|Refused to/i.test(e)),
    [],
  );
}

/** Where the pages come from: the relay's responses as they are, and /hls/ from `hlsDir`. */
let site: Promise<string> | undefined;
let hlsDir: string | undefined;
let server: http.Server | undefined;
after(() => {
  server?.closeAllConnections();
  server?.close();
});

// A proxy rather than page.route: a page that Playwright fulfils has no address, and Chromium's local network
// access checks then refuse its WebTransport to 127.0.0.1.
function ready(): Promise<string> {
  site ??= (async () => {
    await env.browser.context.addInitScript(watchPage);
    const s = http.createServer((req, res) => {
      const pathname = new URL(req.url ?? "/", "http://x").pathname;
      if (pathname.startsWith("/hls/") && hlsDir) {
        const file = path.join(hlsDir, path.basename(pathname));
        const type = file.endsWith(".m3u8") ? "application/vnd.apple.mpegurl" : "video/mp2t";
        res.writeHead(200, { "content-type": type }).end(readFileSync(file));
        return;
      }
      // `/relay/…` (relayQuery's fingerprint URL) is the relay's own path.
      fetch(new URL((req.url ?? "/").replace(/^\/relay\//, "/"), env.relay.url))
        .then(async (r) => {
          const body = Buffer.from(await r.arrayBuffer());
          const headers: Record<string, string> = {};
          for (const [k, v] of r.headers)
            if (!/^(connection|keep-alive|transfer-encoding|content-length)$/.test(k)) headers[k] = v;
          assert.ok(headers["content-security-policy"], `the relay sent ${pathname} without a CSP`);
          res.writeHead(r.status, headers).end(body);
        })
        .catch(() => res.writeHead(502).end());
    });
    server = s;
    await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
    return `http://127.0.0.1:${(s.address() as net.AddressInfo).port}`;
  })();
  return site;
}

/** A new tab on `path` of the site; its console errors and page errors are collected. */
async function open(path: string): Promise<{ page: Page; errors: string[] }> {
  const page = await env.browser.context.newPage();
  const errors: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error" || /Refused to/.test(m.text())) errors.push(m.text());
  });
  page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
  await page.goto(`${await ready()}${path}`);
  return { page, errors };
}

let publisher: Promise<Page> | undefined;
/** Publishes `catalog` (JSON) as the only object of the `catalog` track of `namespace` (its parts), from test.html. */
async function publish(parts: string[], catalog: string): Promise<void> {
  publisher ??= open("/test.html").then(({ page }) => page);
  const page = await publisher;
  await page.evaluate(
    async ({ url, parts, catalog }) => {
      const moq = await import("/moq.js");
      const g = globalThis as unknown as { pub?: ReturnType<typeof moq.Session.connect> };
      g.pub ??= moq.Session.connect(url, { fingerprintUrl: "/relay/certificate.sha256" });
      const session = await g.pub;
      const track = new moq.TrackPublisher("catalog", moq.Priority.CATALOG);
      track.write({ payload: new TextEncoder().encode(catalog) });
      const ns = parts.map((p) => new TextEncoder().encode(p));
      await session.publishNamespace(ns, (name: string) => (name === "catalog" ? track : undefined));
    },
    { url: env.relay.url, parts, catalog },
  );
}

const q = () => relayQuery(env.relay);

test("a hostile catalog and namespace reach the list and the player only as text", async () => {
  await ready();
  await publish(["live", "xss"], hostileCatalog);
  await publish(["live", M], JSON.stringify({ tracks: [], [CHANNEL]: { title: SCRIPT } }));

  const index = await open(`/?${q()}`);
  const cards = () =>
    index.page.evaluate(() =>
      [...document.querySelectorAll<HTMLElement>("li.channel")].map((li) => ({
        name: li.dataset.name,
        title: li.querySelector(".title")?.textContent,
        details: li.querySelector(".details")?.textContent,
      })),
    );
  await until("both channels with their titles", async () => {
    const c = await cards();
    return c.some((x) => x.name === "live/xss" && x.title === `title ${M}`) &&
      c.some((x) => x.name === `live/${M}` && x.title === SCRIPT)
      ? c
      : undefined;
  });
  const xss = (await cards()).find((x) => x.name === "live/xss");
  assert.equal(xss?.details, "360p · H.264 · audio");
  await assertClean(index.page, index.errors);

  const watch = await open(`/watch?name=live/xss&${q()}`);
  const menu = () =>
    watch.page.evaluate(() =>
      [
        ...(document
          .querySelector("moq-player")
          ?.shadowRoot?.querySelectorAll<HTMLOptionElement>("select.renditions option") ?? []),
      ].map((o) => [o.value, o.textContent]),
    );
  const options = await until("the menu with the hostile renditions", async () => {
    const m = await menu();
    return m.length === 3 ? m : undefined;
  });
  await assertClean(watch.page, watch.errors);
  assert.deepEqual(options, [
    ["", "auto"],
    [`video0${M}`, `label ${M}`],
    [`video1${M}`, `video1${M}`],
  ]);
  // The chat of live/xss: a name and a message full of markup are shown as typed.
  const name = '<img src=x onerror="__pwned=1">';
  await watch.page.locator(".name-form input").fill(name);
  await watch.page.locator(".post-form input").fill(M + SCRIPT);
  await watch.page.locator(".post-form button").click();
  await until("the message in the room", () =>
    watch.page.evaluate(
      ([who, text]) =>
        [...document.querySelectorAll(".messages li")].some(
          (li) =>
            li.querySelector(".who")?.textContent === who && li.querySelector(".text")?.textContent === text,
        ),
      [name, M + SCRIPT],
    ),
  );
  assert.equal((await audit(watch.page)).shadowRoots, 1, "the player's shadow root is searched too");
  await assertClean(watch.page, watch.errors);
  await index.page.close();
  await watch.page.close();
});

test("an invalid catalog shows a clear message instead of playing", async () => {
  await ready();
  const tracks = Array.from({ length: 65 }, (_, i) => ({ name: `v${i}`, codec: "avc1.42e01f", width: 64 }));
  await publish(["live", "toomany"], JSON.stringify({ tracks, [CHANNEL]: { title: "Too many" } }));
  const watch = await open(`/watch?name=live/toomany&${q()}&chat=0`);
  const state = await until("the message", async () => {
    const t = await watch.page.evaluate(
      () => document.querySelector("moq-player")?.shadowRoot?.querySelector(".state")?.textContent,
    );
    return t?.includes("invalid catalog") ? t : undefined;
  });
  assert.match(state, /^invalid catalog: more than 64 tracks \(65\)/);
  assert.equal(num((await playerStats(watch.page)).framesRendered), 0);
  const index = await open(`/?${q()}`);
  await index.page
    .locator("li.channel", { hasText: "toomany" })
    .locator(".details", { hasText: "(invalid catalog)" })
    .waitFor({ timeout: 10_000 });
  await assertClean(watch.page, watch.errors);
  await assertClean(index.page, index.errors);
  await watch.page.close();
  await index.page.close();
});

test("under the CSP: the studio goes live with a hostile title, the list and the player show it as text", async () => {
  await ready();
  const viewer = await open(`/watch?name=live/xss2&${q()}`);
  await viewer.page.locator(".post-form input").fill(M + SCRIPT);
  await viewer.page.locator(".post-form button").click();
  await viewer.page.locator(".messages li .text").waitFor({ timeout: 10_000 });

  const errors: string[] = [];
  env.browser.context.once("page", (p) =>
    p.on("console", (m) => m.type() === "error" && errors.push(m.text())),
  );
  const studio = await goLive(env.browser.context, await ready(), env.relay, "xss2", `studio ${M}`);
  // The studio's chat shows the room's history: the hostile message, as text.
  await until("the history in the studio", () =>
    studio.evaluate(
      (text) => [...document.querySelectorAll(".messages li .text")].some((e) => e.textContent === text),
      M + SCRIPT,
    ),
  );
  // The viewer plays the studio's stream (workers, WebCodecs, WebTransport) and its audio (the worklet).
  await until("frames", async () => num((await playerStats(viewer.page)).framesRendered) > 30, 15_000);
  await viewer.page.locator("moq-player").locator("button.unmute").click();
  await until("audio", async () => num((await playerStats(viewer.page)).audioSamplesPlayed) > 4800);
  const index = await open(`/?${q()}`);
  await index.page
    .locator('li.channel[data-name="live/xss2"] .title', { hasText: `studio ${M}` })
    .waitFor({ timeout: 10_000 });
  for (const [page, errs] of [
    [viewer.page, viewer.errors],
    [studio, errors],
    [index.page, index.errors],
  ] as const)
    await assertClean(page, errs);
  await studio.close();
  await viewer.page.close();
  await index.page.close();
});

test("under the CSP: eval-hls.html plays with hls.js", {
  skip: !hasFfmpeg && "no ffmpeg",
}, async () => {
  await ready();
  const dir = mkdtempSync(path.join(tmpdir(), "moq-csp-hls-"));
  try {
    const args =
      "-hide_banner -loglevel error -f lavfi -i testsrc=size=320x180:rate=30:duration=3 -c:v libx264 -preset ultrafast -g 30 -pix_fmt yuv420p -f hls -hls_time 1 -hls_playlist_type vod";
    execFileSync("ffmpeg", [...args.split(" "), path.join(dir, "index.m3u8")]);
    hlsDir = dir;
    const hls = await open("/eval-hls.html?src=/hls/index.m3u8&mode=hls");
    await until("hls.js playing", () =>
      hls.page.evaluate(() => (document.querySelector("video")?.currentTime ?? 0) > 0.5),
    );
    // MediaSource through a blob: URL (media-src blob:); hls.js's ES module build transmuxes without a worker.
    assert.match(await hls.page.evaluate(() => document.querySelector("video")?.src ?? ""), /^blob:/);
    await assertClean(hls.page, hls.errors);
    await hls.page.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
