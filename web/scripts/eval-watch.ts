// One browser viewer of the evaluation (eval/README.md): opens a page in headless Chromium, measures for
// --seconds, and writes <out>/frames.csv (every frame shown: the frame number from its stamp, when it was shown)
// and <out>/viewer.json (when the viewer started, its errors and the player's statistics).
//   npm run eval:watch -- --url 'https://10.99.0.1:8443/eval-hls.html?src=/ll/live.m3u8&mode=ll' --seconds 60 --out DIR
// The page is the MoQ watch page (its player logs frames with frames=1) or eval-hls.html (hls.js). Every 2 s the
// new log entries are taken out of the page and appended to frames.csv. Exits 1 when no frame was logged, 2 on a
// bad option. SIGTERM or SIGINT ends the measurement early (the files are still written); a second one, or a
// browser that does not close within 10 s, ends at once (Playwright then kills the browser's process group).

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { FrameSink, type Kind, type WatchOptions, watchOptions } from "./eval-watch-lib.ts";

const DRAIN_MS = 2000;
const PROGRESS_MS = 10_000;
const MAX_ERRORS = 1000;

let options: WatchOptions;
try {
  options = watchOptions(process.argv.slice(2), process.env);
} catch (e) {
  console.error(e instanceof Error ? e.message : e);
  process.exit(2);
}

const say = (line: string) => process.stderr.write(`eval-watch: ${line}\n`);

// A signal ends the measurement; a second one, or a close that hangs, ends the process.
let stop: () => void = () => {};
const stopped = new Promise<void>((r) => {
  stop = r;
});
let signalled = false;
for (const sig of ["SIGTERM", "SIGINT"] as const) {
  process.on(sig, () => {
    if (signalled) process.exit(1);
    signalled = true;
    say(`${sig}: ending the measurement`);
    stop();
    setTimeout(() => process.exit(1), 10_000).unref();
  });
}

interface Drained {
  frames: [number, number][];
  errors: string[];
}

/** Takes the frames (and errors) logged since the last call out of the page. */
function drain(page: Page, kind: Kind): Promise<Drained> {
  if (kind === "moq")
    return page.evaluate(() => {
      const p = document.querySelector("moq-player") as unknown as {
        frameLog: [number, number][];
        stats: { error?: string };
      } | null;
      if (!p?.frameLog) return { frames: [], errors: [] };
      return { frames: p.frameLog.splice(0), errors: p.stats.error ? [`player: ${p.stats.error}`] : [] };
    });
  return page.evaluate(() => {
    const log = (globalThis as unknown as { evalLog?: { frames: [number, number][]; errors: string[] } })
      .evalLog;
    return { frames: log?.frames.splice(0) ?? [], errors: log?.errors.splice(0) ?? [] };
  });
}

/** The player's statistics at the end. */
function playerStats(page: Page, kind: Kind): Promise<unknown> {
  if (kind === "moq")
    return page.evaluate(() => {
      const p = document.querySelector("moq-player") as unknown as { stats: object } | null;
      return p ? { ...p.stats } : null;
    });
  return page.evaluate(() => {
    const log = (globalThis as unknown as { evalLog?: { start_unix_ms: number; hls: object } }).evalLog;
    const v = document.querySelector("video");
    const q = v?.getVideoPlaybackQuality();
    return {
      page_start_unix_ms: log?.start_unix_ms,
      ...log?.hls,
      video: q
        ? {
            total_frames: q.totalVideoFrames,
            dropped_frames: q.droppedVideoFrames,
            current_time_s: v?.currentTime,
          }
        : null,
    };
  });
}

async function main(o: WatchOptions): Promise<number> {
  mkdirSync(o.out, { recursive: true });
  const sink = new FrameSink(path.join(o.out, "frames.csv"));
  const errors: string[] = [];
  const error = (e: string) => {
    if (errors.length < MAX_ERRORS && errors[errors.length - 1] !== e) errors.push(e);
  };
  const profile = mkdtempSync(path.join(tmpdir(), "eval-watch-"));
  let context: BrowserContext | undefined;
  let startUnixMs = Date.now();
  let stats: unknown = null;
  let crashed = false;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: o.chromium,
      headless: true,
      ignoreHTTPSErrors: true,
      handleSIGINT: false,
      handleSIGTERM: false,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--autoplay-policy=no-user-gesture-required",
      ],
    });
    const page = context.pages()[0] ?? (await context.newPage());
    page.on("pageerror", (e) => error(`pageerror: ${e.message}`));
    page.on("console", (m) => {
      if (m.type() === "error") error(`console: ${m.text()}`);
    });
    page.on("crash", () => {
      crashed = true;
      error("page crashed");
      stop();
    });
    startUnixMs = Date.now();
    await page.goto(o.url, { waitUntil: "domcontentloaded" });
    // The measurement: a fixed duration from the page's start, drained every DRAIN_MS.
    const end = startUnixMs + o.seconds * 1000;
    let nextProgress = startUnixMs + PROGRESS_MS;
    const pull = async () => {
      const d = await drain(page, o.kind).catch((e) => {
        error(`drain: ${e instanceof Error ? e.message : e}`);
        return { frames: [], errors: [] } as Drained;
      });
      sink.add(d.frames);
      for (const e of d.errors) error(e);
    };
    let done = false;
    stopped.then(() => {
      done = true;
    });
    while (!done && Date.now() < end) {
      await Promise.race([stopped, new Promise((r) => setTimeout(r, Math.min(DRAIN_MS, end - Date.now())))]);
      if (crashed) break;
      await pull();
      if (Date.now() >= nextProgress) {
        nextProgress += PROGRESS_MS;
        const s = Math.round((Date.now() - startUnixMs) / 1000);
        say(`${s} s: ${sink.count} frames (last #${sink.lastFrame ?? "-"}), ${errors.length} errors`);
      }
    }
    if (!crashed) {
      await pull();
      stats = await playerStats(page, o.kind).catch((e) => {
        error(`stats: ${e instanceof Error ? e.message : e}`);
        return null;
      });
    }
  } catch (e) {
    error(`eval-watch: ${e instanceof Error ? e.message : e}`);
  } finally {
    await context?.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
  }
  const viewer = {
    start_unix_ms: startUnixMs,
    end_unix_ms: Date.now(),
    kind: o.kind,
    url: o.url,
    seconds: o.seconds,
    ended_early: signalled || crashed,
    frames_logged: sink.count,
    first_frame_unix_ms: sink.firstUnixMs ?? null,
    errors,
    player: stats,
  };
  writeFileSync(path.join(o.out, "viewer.json"), `${JSON.stringify(viewer, null, 1)}\n`);
  say(`${sink.count} frames, ${errors.length} errors -> ${o.out}`);
  if (sink.count === 0) {
    say(`no frame was logged${errors.length ? `; first error: ${errors[0]}` : ""}`);
    return 1;
  }
  return 0;
}

process.exit(await main(options));
