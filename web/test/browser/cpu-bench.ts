// CPU per viewer: the browser player against a plain <video> playing the same stream, in one run. Each arm runs in
// a fresh headless Chromium; the CPU time of all its processes is read from /proc over a fixed window once the page
// plays. Prints a JSON line per arm and round, then a summary with the medians and their ratios.
//   npm run bench:cpu     (MOQ_BENCH_ROUNDS=3, MOQ_BENCH_SECONDS=20, MOQ_BENCH_SETTLE=2, MOQ_BENCH_ARMS=a,b,…;
//                          MOQ_WEB_DIR: the pages the relay serves, default web/dist)
//
// Arms:
//   moq-watch              the relay's /watch?name=demo/clip page, muted (its default)
//   moq-watch-unmuted      the same after a click on "unmute"
//   moq-hidden             the same, muted, with the page reporting itself hidden (a background tab)
//   video-element          a <video> looping an fMP4 of the same broadcast (recorded with moq-sub), muted
//   video-element-unmuted  the same, unmuted: what moq-watch-unmuted compares with
//   blank                  about:blank: the browser's own cost with nothing playing

import { execFileSync, spawn } from "node:child_process";
import {
  createReadStream,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
} from "node:fs";
import http from "node:http";
import { loadavg, tmpdir } from "node:os";
import path from "node:path";
import type { Page } from "playwright-core";
import { binary, DIST, freePort, listen, num, openBrowser, playerStats, Relay, until } from "./harness.ts";

const ALL = [
  "moq-watch",
  "moq-watch-unmuted",
  "moq-hidden",
  "video-element",
  "video-element-unmuted",
  "blank",
];
const rounds = Number(process.env.MOQ_BENCH_ROUNDS ?? 3);
const seconds = Number(process.env.MOQ_BENCH_SECONDS ?? 20);
const settle = Number(process.env.MOQ_BENCH_SETTLE ?? 2);
const arms = (process.env.MOQ_BENCH_ARMS ?? ALL.join(",")).split(",").filter((a) => a);
for (const a of arms) if (!ALL.includes(a)) throw new Error(`unknown arm ${a}; arms: ${ALL.join(", ")}`);
const TICK = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim());
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Proc {
  ppid: number;
  /** utime + stime + cutime + cstime, clock ticks. */
  ticks: number;
}

/** Every process on the machine: its parent and CPU ticks (its own and those of its children it has reaped). */
function processes(): Map<number, Proc> {
  const all = new Map<number, Proc>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // Fields after the command name, which may hold spaces: state is field 3, ppid 4, utime..cstime 14..17.
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      all.set(Number(entry), {
        ppid: Number(f[1]),
        ticks: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]),
      });
    } catch {
      // Exited while listing.
    }
  }
  return all;
}

/** The Chromium this process launched (playwright spawns it directly; Debian's wrapper execs the binary). */
function browserPid(): number {
  const pids = [...processes()].filter(([pid, p]) => {
    if (p.ppid !== process.pid) return false;
    try {
      return path.basename(readlinkSync(`/proc/${pid}/exe`)).startsWith("chromium");
    } catch {
      return false;
    }
  });
  if (pids.length !== 1) throw new Error(`expected one Chromium child, found ${pids.length}`);
  return pids[0]?.[0] as number;
}

/** CPU ticks summed over `root` and all its descendants, and how many processes that is. */
function treeTicks(root: number): { ticks: number; count: number } {
  const all = processes();
  const children = new Map<number, number[]>();
  for (const [pid, p] of all) children.set(p.ppid, [...(children.get(p.ppid) ?? []), pid]);
  let ticks = 0;
  let count = 0;
  const stack = [root];
  while (stack.length) {
    const pid = stack.pop() as number;
    const p = all.get(pid);
    if (!p) continue;
    ticks += p.ticks;
    count++;
    stack.push(...(children.get(pid) ?? []));
  }
  return { ticks, count };
}

/** Serves the <video> page, the recorded clip (with byte ranges, as a media element asks) and the pages' CSS. */
async function serveVideo(clip: string): Promise<{ url: string; close(): Promise<void> }> {
  const page = `<!doctype html><html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,">
<link rel="stylesheet" href="style.css"><title>video</title></head>
<body><main><h1>video</h1><div class="columns"><section class="stage">
<video id="v" src="clip.mp4" muted loop playsinline style="display:block;width:100%;aspect-ratio:16/9;background:#000"></video>
</section></div></main>
<script>
const v = document.getElementById("v");
addEventListener("click", () => { v.muted = !location.search.includes("unmuted"); v.play(); });
</script></body></html>`;
  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? "/", "http://x");
    if (u.pathname === "/video.html") {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(page);
    } else if (u.pathname === "/style.css") {
      res
        .writeHead(200, { "content-type": "text/css" })
        .end(readFileSync(path.join(process.env.MOQ_WEB_DIR ?? DIST, "style.css")));
    } else if (u.pathname === "/clip.mp4") {
      const size = statSync(clip).size;
      const range = /bytes=(\d*)-(\d*)/.exec(req.headers.range ?? "");
      const start = range?.[1] ? Number(range[1]) : 0;
      const end = range?.[2] ? Math.min(Number(range[2]), size - 1) : size - 1;
      const headers = {
        "content-type": "video/mp4",
        "accept-ranges": "bytes",
        "content-length": end - start + 1,
      };
      if (range) res.writeHead(206, { ...headers, "content-range": `bytes ${start}-${end}/${size}` });
      else res.writeHead(200, headers);
      createReadStream(clip, { start, end }).pipe(res);
    } else {
      res.writeHead(404).end();
    }
  });
  return listen(server);
}

/** Records `secs` seconds of the broadcast to `file` with moq-sub. */
async function record(relay: Relay, file: string, secs: number): Promise<void> {
  const args = [relay.url, "--namespace", "demo/clip", "--duration", String(secs), "-o", file];
  const proc = spawn(binary("moq-sub"), args, { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  proc.stderr?.on("data", (b: Buffer) => (log += b.toString()));
  const code = await new Promise<number | null>((r) => proc.once("exit", r));
  if (code !== 0 || statSync(file).size === 0) throw new Error(`moq-sub exited ${code}: ${log}`);
}

/** Frames shown so far and dropped so far, from the player's stats or the video's playback quality. */
async function frames(page: Page, arm: string): Promise<{ shown: number; dropped: number }> {
  if (arm === "blank") return { shown: 0, dropped: 0 };
  if (arm.startsWith("video")) {
    return page.evaluate(() => {
      const q = (document.getElementById("v") as HTMLVideoElement).getVideoPlaybackQuality();
      return { shown: q.totalVideoFrames - q.droppedVideoFrames, dropped: q.droppedVideoFrames };
    });
  }
  const s = await playerStats(page);
  return { shown: num(s.framesRendered), dropped: num(s.framesDropped) };
}

/** Makes the page report itself hidden, as a background tab would (as efficiency.test.ts does). */
function hide(page: Page): Promise<void> {
  // A string: tsx would wrap a function's inner getter in a helper the page does not have.
  return page.evaluate(
    `Object.defineProperty(document, "visibilityState", { configurable: true, value: "hidden" });
     document.dispatchEvent(new Event("visibilitychange"))`,
  );
}

/** Opens the arm's page in `page` and waits until it plays as the arm wants. */
async function start(page: Page, arm: string, relay: Relay, video: string): Promise<string> {
  if (arm === "blank") {
    await page.goto("about:blank");
    return "";
  }
  if (arm.startsWith("video")) {
    await page.goto(`${video}/video.html${arm.endsWith("unmuted") ? "?unmuted" : ""}`);
    await page.mouse.click(5, 5); // the click handler calls play(), as a viewer's click would
    await until(
      "the video playing",
      () =>
        page.evaluate(() => {
          const v = document.getElementById("v") as HTMLVideoElement;
          return !v.paused && v.currentTime > 0 && v.getVideoPlaybackQuality().totalVideoFrames > 10;
        }),
      15_000,
    );
    return page.evaluate(() => {
      const v = document.getElementById("v") as HTMLVideoElement;
      return `${v.clientWidth}x${v.clientHeight}`;
    });
  }
  await page.goto(`${relay.url}watch?name=demo/clip&chat=0`);
  await until("first frames", async () => num((await playerStats(page)).framesRendered) > 10, 15_000);
  if (arm === "moq-watch-unmuted") {
    await page.locator("moq-player .unmute").click();
    await until("audio playing", async () => num((await playerStats(page)).audioSamplesPlayed) > 0);
  } else if (arm === "moq-hidden") {
    await hide(page);
    await until("video paused", async () => (await playerStats(page)).videoPaused === true);
  }
  return page.evaluate(() => {
    const p = document.querySelector("moq-player") as HTMLElement;
    return `${p.clientWidth}x${p.clientHeight}`;
  });
}

interface Result {
  arm: string;
  round: number;
  cpuSeconds: number;
  wallSeconds: number;
  cores: number;
  framesShown: number;
  fps: number;
  framesDropped: number;
  processes: number;
  size: string;
  load1: number;
}

async function measure(arm: string, round: number, relay: Relay, video: string): Promise<Result> {
  const b = await openBrowser();
  try {
    const root = browserPid();
    const size = await start(b.page, arm, relay, video);
    await sleep(settle * 1000);
    const f0 = await frames(b.page, arm);
    const c0 = treeTicks(root);
    const t0 = performance.now();
    await sleep(seconds * 1000);
    const c1 = treeTicks(root);
    const wall = (performance.now() - t0) / 1000;
    const f1 = await frames(b.page, arm);
    if (b.crashed()) throw new Error(`${arm}: the page crashed`);
    const cpu = (c1.ticks - c0.ticks) / TICK;
    const shown = f1.shown - f0.shown;
    return {
      arm,
      round,
      cpuSeconds: round3(cpu),
      wallSeconds: round3(wall),
      cores: round3(cpu / wall),
      framesShown: shown,
      fps: Number((shown / wall).toFixed(1)),
      framesDropped: f1.dropped - f0.dropped,
      processes: c1.count,
      size,
      load1: Number(loadavg()[0]?.toFixed(2)),
    };
  } finally {
    await b.close();
  }
}

const round3 = (x: number) => Number(x.toFixed(3));
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

const relay = new Relay(await freePort());
await relay.start();
const dir = mkdtempSync(path.join(tmpdir(), "moq-cpu-bench-"));
const clip = path.join(dir, "clip.mp4");
let video: Awaited<ReturnType<typeof serveVideo>> | undefined;
const results: Result[] = [];
try {
  if (arms.some((a) => a.startsWith("video"))) {
    await record(relay, clip, 25);
    video = await serveVideo(clip);
  }
  for (let round = 1; round <= rounds; round++) {
    // Interleaved, each round starting one arm later, so that no arm always follows the same one.
    for (let i = 0; i < arms.length; i++) {
      const arm = arms[(i + round - 1) % arms.length] as string;
      try {
        const r = await measure(arm, round, relay, video?.url ?? "");
        results.push(r);
        console.log(JSON.stringify(r));
      } catch (e) {
        // Reported and left out of the medians; the other arms go on.
        console.log(JSON.stringify({ arm, round, error: String(e).split("\n")[0] }));
      }
    }
  }
} finally {
  await video?.close();
  await relay.stop("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
}

const medians: Record<string, { cores: number; fps: number }> = {};
for (const arm of arms) {
  const rs = results.filter((r) => r.arm === arm);
  medians[arm] = { cores: round3(median(rs.map((r) => r.cores))), fps: median(rs.map((r) => r.fps)) };
}
const ratio = (a: string, b: string) => {
  const x = medians[a]?.cores;
  const y = medians[b]?.cores;
  return x !== undefined && y ? Number((x / y).toFixed(2)) : undefined;
};
const increment = (a: string, b: string) => {
  const base = medians.blank?.cores ?? 0;
  const x = medians[a]?.cores;
  const y = medians[b]?.cores;
  return x !== undefined && y !== undefined && y > base
    ? Number(((x - base) / (y - base)).toFixed(2))
    : undefined;
};
console.log(
  JSON.stringify({
    summary: {
      rounds,
      seconds,
      settle,
      cpus: execFileSync("nproc").toString().trim(),
      chromium: "headless, --disable-gpu, loopback",
      relay: `moq-relay --demo (${binary("moq-relay")})`,
      medians,
      ratios: {
        "moq-watch / video-element": ratio("moq-watch", "video-element"),
        "moq-watch-unmuted / video-element-unmuted": ratio("moq-watch-unmuted", "video-element-unmuted"),
        "moq-watch-unmuted / video-element": ratio("moq-watch-unmuted", "video-element"),
        "moq-hidden / video-element": ratio("moq-hidden", "video-element"),
        "moq-hidden / moq-watch": ratio("moq-hidden", "moq-watch"),
      },
      // The same, with the idle browser's cost (the blank arm) taken off both sides.
      overBlank: medians.blank
        ? {
            "moq-watch / video-element": increment("moq-watch", "video-element"),
            "moq-watch-unmuted / video-element-unmuted": increment(
              "moq-watch-unmuted",
              "video-element-unmuted",
            ),
          }
        : undefined,
    },
  }),
);
