// CPU per viewer: the browser player against a plain <video> and hls.js playing the same stream, in one run. Each
// arm runs in a fresh headless Chromium; the CPU time of its processes is read from /proc over a fixed window once
// the page plays, in total and per process type. Prints a JSON line per arm and round, then a summary with the
// medians and their ratios.
//   npm run bench:cpu     (MOQ_BENCH_ROUNDS=3, MOQ_BENCH_SECONDS=30, MOQ_BENCH_SETTLE=2, MOQ_BENCH_ARMS=a,b,…;
//                          MOQ_WEB_DIR: the pages the relay serves, default web/dist;
//                          MOQ_BENCH_TRACE=arm,…: also trace those arms, see below;
//                          MOQ_BENCH_SOURCE=eval: the evaluation's 1280x720 30 fps clip instead of the demo)
//
// Source: the relay's demo (demo/clip, 640x360 30 fps H.264 and Opus); or with MOQ_BENCH_SOURCE=eval the clip of
// the MoQ-vs-HLS evaluation (eval-clip: 1280x720 30 fps H.264 baseline 2.5 Mb/s and Opus, `cargo build -p
// moq-eval` first), looped by ffmpeg (-c copy, real time) into moq-pub as bench/eval720.
//
// Arms (the default is all but hls.js-unmuted):
//   moq-watch              the relay's /watch?name=demo/clip page, muted (its default)
//   moq-watch-unmuted      the same after a click on "unmute"
//   moq-hidden             the same, muted, with the page reporting itself hidden (a background tab)
//   moq-watch-canvas       moq-watch drawing to a canvas (renderer=canvas) instead of through a <video>
//   video-element          a <video> looping an fMP4 of the same broadcast (recorded with moq-sub), muted
//   video-element-unmuted  the same, unmuted: what moq-watch-unmuted compares with
//   hls.js                 hls.js (web/node_modules/hls.js) playing the same fMP4 repackaged by ffmpeg (-c copy) as a
//                          VOD HLS playlist of 1 s fMP4 segments, muted, with `loop` on its <video>
//   hls.js-unmuted         the same, unmuted (only when asked for in MOQ_BENCH_ARMS)
//   blank                  about:blank: the browser's own cost with nothing playing
// Every player is laid out at the same size (the result's `size`, CSS px).
//
// Per process type (`byProcess`, cores): each process of the browser's tree is classified by its command line:
// no --type= is the browser, then renderer, gpu (--type=gpu-process), network (the utility process running
// network.mojom.NetworkService), other utility processes by their --utility-sub-type, and other (the zygotes). The
// tree is sampled every second. Processes that exit in the window count through their parent's reaped-children
// time, as in the total; that time is put on the type of the children seen exiting ("exited" if none was seen or they were of several types).
// Chromium's crashpad handlers are reparented to init and are counted in no arm.
//
// Trace (opt-in): MOQ_BENCH_TRACE=moq-watch,hls.js records a Chromium trace (CDP Tracing) of the arm's page for
// MOQ_BENCH_TRACE_SECONDS (default 5) right after its first measured window (so the tracing's own cost stays out of
// the CPU figures), writes it to /tmp/moq-cpu-trace-<arm>-<time>.json (open in Perfetto or DevTools) and prints a
// {"trace": …} line: per process/thread the time in top-level events (wall and thread CPU, ms), and the renderer's
// top event names by self time. MOQ_BENCH_TRACE_CATEGORIES replaces the default categories (comma separated).
//
// A default run takes about 14 minutes: 8 arms × 3 rounds × (30 s + 2 s settle + ~2-4 s to start and close each
// browser), after 25 s of recording.

import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import {
  createReadStream,
  createWriteStream,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
} from "node:fs";
import http from "node:http";
import { createRequire } from "node:module";
import { loadavg, tmpdir } from "node:os";
import path from "node:path";
import type { Page } from "playwright-core";
import { binary, DIST, freePort, listen, num, openBrowser, playerStats, Relay, until } from "./harness.ts";

const ALL = [
  "moq-watch",
  "moq-watch-unmuted",
  "moq-hidden",
  "moq-watch-canvas",
  "video-element",
  "video-element-unmuted",
  "hls.js",
  "hls.js-unmuted",
  "blank",
];
const DEFAULT = ALL.filter((a) => a !== "hls.js-unmuted");
const rounds = Number(process.env.MOQ_BENCH_ROUNDS ?? 3);
const seconds = Number(process.env.MOQ_BENCH_SECONDS ?? 30);
const settle = Number(process.env.MOQ_BENCH_SETTLE ?? 2);
const arms = (process.env.MOQ_BENCH_ARMS ?? DEFAULT.join(",")).split(",").filter((a) => a);
for (const a of arms) if (!ALL.includes(a)) throw new Error(`unknown arm ${a}; arms: ${ALL.join(", ")}`);
const traced = new Set((process.env.MOQ_BENCH_TRACE ?? "").split(",").filter((a) => a));
for (const a of traced)
  if (!arms.includes(a)) throw new Error(`MOQ_BENCH_TRACE: ${a} is not among the arms run`);
const traceSeconds = Number(process.env.MOQ_BENCH_TRACE_SECONDS ?? 5);
const TICK = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim());
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Arms that play the recorded clip in a <video id="v"> of the bench's own page. */
const element = (arm: string) => arm.startsWith("video") || arm.startsWith("hls");

interface Proc {
  ppid: number;
  /** Start time since boot (clock ticks): with the pid, names the process even if its pid is reused. */
  start: string;
  /** utime + stime, clock ticks. */
  own: number;
  /** cutime + cstime: the CPU of the children it has reaped, clock ticks. */
  reaped: number;
}

/** Every process on the machine: its parent and CPU ticks (its own and those of its children it has reaped). */
function processes(): Map<number, Proc> {
  const all = new Map<number, Proc>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // Fields after the command name, which may hold spaces: state is field 3, ppid 4, utime..cstime 14..17,
      // starttime 22.
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      all.set(Number(entry), {
        ppid: Number(f[1]),
        start: f[19] ?? "",
        own: Number(f[11]) + Number(f[12]),
        reaped: Number(f[13]) + Number(f[14]),
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

/** A Chromium process's type, from its command line (see the header). */
function processType(pid: number): string {
  let args: string[];
  try {
    // NUL-separated, or space-separated once Chromium has rewritten its process title (no value here has spaces).
    args = readFileSync(`/proc/${pid}/cmdline`, "utf8").split(/[\0 ]/);
  } catch {
    return "other";
  }
  const flag = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const type = flag("type");
  if (type === undefined) return "browser";
  if (type === "renderer") return "renderer";
  if (type === "gpu-process") return "gpu";
  if (type !== "utility") return "other";
  const sub = flag("utility-sub-type") ?? "utility";
  return sub === "network.mojom.NetworkService" ? "network" : sub;
}

interface Seen {
  type: string;
  ppid: number;
  /** Ticks when the window started; 0 for a process started in it. */
  own0: number;
  reaped0: number;
  /** Ticks at the last sample it was alive in. */
  own: number;
  reaped: number;
  alive: boolean;
}

/**
 * CPU of `root` and all its descendants from now until `stop`, sampled every second: the total (as the sum of own
 * and reaped-children ticks over the tree, at the end minus at the start) and the same split by process type.
 */
class TreeCpu {
  private readonly seen = new Map<string, Seen>();
  private readonly timer: NodeJS.Timeout;
  private first = true;

  constructor(private readonly root: number) {
    this.sample();
    this.timer = setInterval(() => this.sample(), 1000);
  }

  private sample(): void {
    const all = processes();
    const children = new Map<number, number[]>();
    for (const [pid, p] of all) children.set(p.ppid, [...(children.get(p.ppid) ?? []), pid]);
    const alive = new Set<string>();
    const stack = [this.root];
    while (stack.length) {
      const pid = stack.pop() as number;
      const p = all.get(pid);
      if (!p) continue;
      stack.push(...(children.get(pid) ?? []));
      const key = `${pid}/${p.start}`;
      alive.add(key);
      const s = this.seen.get(key);
      if (s) {
        s.own = p.own;
        s.reaped = p.reaped;
      } else {
        const [own0, reaped0] = this.first ? [p.own, p.reaped] : [0, 0];
        this.seen.set(key, {
          type: processType(pid),
          ppid: p.ppid,
          own0,
          reaped0,
          own: p.own,
          reaped: p.reaped,
          alive: true,
        });
      }
    }
    for (const [key, s] of this.seen) if (!alive.has(key)) s.alive = false;
    this.first = false;
  }

  /** Ticks over the window: in total, per process type, and how many processes of each type are alive at the end. */
  stop(): { ticks: number; byType: Record<string, number>; count: Record<string, number> } {
    clearInterval(this.timer);
    this.sample();
    const byType: Record<string, number> = {};
    const count: Record<string, number> = {};
    const add = (type: string, ticks: number) => {
      byType[type] = (byType[type] ?? 0) + ticks;
    };
    let ticks = 0;
    const all = [...this.seen].map(([key, s]) => ({ pid: Number(key.split("/")[0]), ...s }));
    for (const s of all) {
      // The total, as the tree sum at the end minus the tree sum at the start.
      if (s.alive) ticks += s.own + s.reaped;
      ticks -= s.own0 + s.reaped0;
      if (!s.alive) continue;
      count[s.type] = (count[s.type] ?? 0) + 1;
      add(s.type, s.own - s.own0);
      // What it reaped in the window: the lifetime CPU of the children that exited, less what of it was before.
      const exited = all.filter((c) => !c.alive && c.ppid === s.pid);
      const reaped = s.reaped - s.reaped0 - exited.reduce((sum, c) => sum + c.own0 + c.reaped0, 0);
      const types = new Set(exited.map((c) => c.type));
      if (reaped) add(types.size === 1 ? ([...types][0] as string) : "exited", reaped);
    }
    return { ticks, byType, count };
  }
}

/** Serves the <video> and hls.js pages, the recorded clip (with byte ranges, as a media element asks), its HLS
 * packaging, hls.js and the pages' CSS. */
async function serveVideo(clip: string, hls: string): Promise<{ url: string; close(): Promise<void> }> {
  // Both pages lay the video out as the player pages do (style.css's stage, 16:9).
  const layout = (title: string, video: string, script: string) => `<!doctype html><html lang="en"><head>
<meta charset="utf-8"><link rel="icon" href="data:,"><link rel="stylesheet" href="style.css"><title>${title}</title>
</head><body><main><h1>${title}</h1><div class="columns"><section class="stage">
<video id="v" ${video} muted loop playsinline style="display:block;width:100%;aspect-ratio:16/9;background:#000"></video>
</section></div></main>${script}
<script>
const v = document.getElementById("v");
addEventListener("click", () => { v.muted = !location.search.includes("unmuted"); v.play(); });
</script></body></html>`;
  const pages: Record<string, string> = {
    "/video.html": layout("video", 'src="clip.mp4"', ""),
    "/hls.html": layout(
      "hls.js",
      "",
      `<script src="hls.min.js"></script>
<script>const hls = new Hls(); hls.loadSource("hls/index.m3u8"); hls.attachMedia(document.getElementById("v"));</script>`,
    ),
  };
  const hlsJs = createRequire(import.meta.url).resolve("hls.js/dist/hls.min.js");
  const types: Record<string, string> = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".mp4": "video/mp4",
    ".m4s": "video/iso.segment",
  };
  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? "/", "http://x");
    const page = pages[u.pathname];
    if (page) {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(page);
    } else if (u.pathname === "/style.css") {
      res
        .writeHead(200, { "content-type": "text/css" })
        .end(readFileSync(path.join(process.env.MOQ_WEB_DIR ?? DIST, "style.css")));
    } else if (u.pathname === "/hls.min.js") {
      res.writeHead(200, { "content-type": "text/javascript" }).end(readFileSync(hlsJs));
    } else if (/^\/hls\/[\w.-]+$/.test(u.pathname)) {
      const file = path.join(hls, path.basename(u.pathname));
      try {
        const body = readFileSync(file);
        res
          .writeHead(200, { "content-type": types[path.extname(file)] ?? "application/octet-stream" })
          .end(body);
      } catch {
        res.writeHead(404).end();
      }
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

/** The broadcast the arms play (MOQ_BENCH_SOURCE). */
const source = process.env.MOQ_BENCH_SOURCE === "eval" ? "bench/eval720" : "demo/clip";

/**
 * With MOQ_BENCH_SOURCE=eval: makes the evaluation's 720p clip in `dir` and publishes it, looped in real time,
 * as `source`. Returns the publishing process (killed at the end of the run).
 */
function publishEvalClip(relay: Relay, dir: string): ChildProcess {
  const clip = path.join(dir, "eval720.mp4");
  execFileSync(binary("eval-clip"), ["--seconds", "20", "--out", clip], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  const ffmpeg = [
    "ffmpeg -hide_banner -loglevel error -re -stream_loop -1",
    `-i ${clip} -map 0 -c copy`,
    "-f mp4 -movflags cmaf+frag_every_frame+empty_moov+default_base_moof+skip_trailer -",
  ].join(" ");
  const pub = `${binary("moq-pub")} ${relay.url} --namespace ${source}`;
  return spawn("sh", ["-c", `${ffmpeg} | ${pub}`], {
    stdio: ["ignore", "ignore", "inherit"],
    detached: true,
  });
}

/** Records `secs` seconds of the broadcast to `file` with moq-sub. */
async function record(relay: Relay, file: string, secs: number): Promise<void> {
  const args = [relay.url, "--namespace", source, "--duration", String(secs), "-o", file];
  const proc = spawn(binary("moq-sub"), args, { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  proc.stderr?.on("data", (b: Buffer) => (log += b.toString()));
  const code = await new Promise<number | null>((r) => proc.once("exit", r));
  if (code !== 0 || statSync(file).size === 0) throw new Error(`moq-sub exited ${code}: ${log}`);
}

/** Repackages the clip, without re-encoding, as a VOD HLS playlist of ~1 s fMP4 segments (cut at keyframes). */
function packageHls(clip: string, dir: string): void {
  mkdirSync(dir);
  execFileSync(
    "ffmpeg",
    [
      ["-hide_banner", "-loglevel", "error", "-i", clip, "-map", "0", "-c", "copy", "-f", "hls"],
      [
        "-hls_time",
        "1",
        "-hls_playlist_type",
        "vod",
        "-hls_segment_type",
        "fmp4",
        "-hls_flags",
        "independent_segments",
      ],
      ["-hls_fmp4_init_filename", "init.mp4", "-hls_segment_filename", path.join(dir, "seg%03d.m4s")],
      [path.join(dir, "index.m3u8")],
    ].flat(),
    { stdio: ["ignore", "ignore", "inherit"] },
  );
}

/** Frames shown so far and dropped so far, from the player's stats or the video's playback quality. */
async function frames(page: Page, arm: string): Promise<{ shown: number; dropped: number }> {
  if (arm === "blank") return { shown: 0, dropped: 0 };
  if (element(arm)) {
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
  if (element(arm)) {
    const file = arm.startsWith("hls") ? "hls.html" : "video.html";
    await page.goto(`${video}/${file}${arm.endsWith("unmuted") ? "?unmuted" : ""}`);
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
  const renderer = arm === "moq-watch-canvas" ? "&renderer=canvas" : "";
  await page.goto(`${relay.url}watch?name=${source}&chat=0${renderer}`);
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

const CATEGORIES = [
  "toplevel",
  "v8",
  "v8.execute",
  "blink",
  "cc",
  "viz",
  "gpu",
  "media",
  "audio",
  "devtools.timeline",
  "disabled-by-default-devtools.timeline",
];

interface TraceEvent {
  ph: string;
  name: string;
  pid: number;
  tid: number;
  ts: number;
  dur?: number;
  tdur?: number;
  args?: { name?: string };
}

/** Records a Chromium trace for `secs` seconds into `file` (CDP Tracing, every process of the browser). */
async function recordTrace(page: Page, secs: number, file: string): Promise<void> {
  const cdp = await page.context().newCDPSession(page);
  const categories = process.env.MOQ_BENCH_TRACE_CATEGORIES?.split(",") ?? CATEGORIES;
  await cdp.send("Tracing.start", {
    transferMode: "ReturnAsStream",
    traceConfig: { recordMode: "recordUntilFull", includedCategories: categories, excludedCategories: ["*"] },
  });
  await sleep(secs * 1000);
  const complete = new Promise<string | undefined>((r) =>
    cdp.once("Tracing.tracingComplete", (e) => r(e.stream)),
  );
  await cdp.send("Tracing.end");
  const handle = await complete;
  if (!handle) throw new Error("the trace came back without a stream");
  const out = createWriteStream(file);
  for (;;) {
    const chunk = await cdp.send("IO.read", { handle, size: 1 << 20 });
    out.write(chunk.base64Encoded ? Buffer.from(chunk.data, "base64") : chunk.data);
    if (chunk.eof) break;
  }
  await new Promise((r) => out.end(r));
  await cdp.send("IO.close", { handle });
  await cdp.detach();
}

/**
 * Where the time goes in a trace: per process and thread name, the time in top-level events (those no other event
 * on the thread encloses), wall and thread CPU; and the renderer's event names by self time (duration less that of
 * the events directly inside).
 */
function summarizeTrace(file: string) {
  const parsed = JSON.parse(readFileSync(file, "utf8")) as TraceEvent[] | { traceEvents: TraceEvent[] };
  const events = Array.isArray(parsed) ? parsed : parsed.traceEvents;
  const processName = new Map<number, string>();
  const threadName = new Map<string, string>();
  for (const e of events) {
    if (e.ph !== "M") continue;
    if (e.name === "process_name") processName.set(e.pid, e.args?.name ?? "?");
    if (e.name === "thread_name") threadName.set(`${e.pid}/${e.tid}`, e.args?.name ?? "?");
  }
  // Durations of complete events and of begin/end pairs, per thread.
  const spans = new Map<string, { name: string; ts: number; dur: number; tdur: number }[]>();
  const open = new Map<string, TraceEvent[]>();
  let first = Number.POSITIVE_INFINITY;
  let last = 0;
  for (const e of events) {
    if (e.ph !== "X" && e.ph !== "B" && e.ph !== "E") continue;
    const key = `${e.pid}/${e.tid}`;
    const list = spans.get(key) ?? [];
    spans.set(key, list);
    first = Math.min(first, e.ts);
    last = Math.max(last, e.ts + (e.dur ?? 0));
    if (e.ph === "X") list.push({ name: e.name, ts: e.ts, dur: e.dur ?? 0, tdur: e.tdur ?? 0 });
    else if (e.ph === "B") open.set(key, [...(open.get(key) ?? []), e]);
    else {
      const b = open.get(key)?.pop();
      if (b) list.push({ name: b.name, ts: b.ts, dur: e.ts - b.ts, tdur: 0 });
    }
  }
  const threads: Record<string, { wallMs: number; cpuMs: number }> = {};
  const self = new Map<string, number>();
  for (const [key, list] of spans) {
    const pname = processName.get(Number(key.split("/")[0])) ?? "?";
    const name = `${pname}/${(threadName.get(key) ?? "?").replace(/\d+$/, "")}`;
    const t = threads[name] ?? { wallMs: 0, cpuMs: 0 };
    threads[name] = t;
    list.sort((a, b) => a.ts - b.ts || b.dur - a.dur);
    const stack: { end: number; name: string; self: number }[] = [];
    const close = (until: number) => {
      while (stack.length && (stack.at(-1)?.end as number) <= until) {
        const s = stack.pop() as { name: string; self: number };
        if (pname === "Renderer") self.set(s.name, (self.get(s.name) ?? 0) + s.self);
      }
    };
    for (const e of list) {
      close(e.ts);
      const parent = stack.at(-1);
      if (parent) parent.self -= e.dur;
      else {
        t.wallMs += e.dur / 1000;
        t.cpuMs += e.tdur / 1000;
      }
      stack.push({ end: e.ts + e.dur, name: e.name, self: e.dur });
    }
    close(Number.POSITIVE_INFINITY);
  }
  const ms = (x: number) => Number(x.toFixed(1));
  return {
    seconds: round3((last - first) / 1e6),
    threads: Object.fromEntries(
      Object.entries(threads)
        .filter(([, t]) => t.wallMs >= 1)
        .sort(([, a], [, b]) => b.wallMs - a.wallMs)
        .map(([n, t]) => [n, { wallMs: ms(t.wallMs), cpuMs: ms(t.cpuMs) }]),
    ),
    rendererSelfMs: Object.fromEntries(
      [...self]
        .sort(([, a], [, b]) => b - a)
        .slice(0, 15)
        .map(([n, x]) => [n, ms(x / 1000)]),
    ),
  };
}

interface Result {
  arm: string;
  round: number;
  cpuSeconds: number;
  wallSeconds: number;
  cores: number;
  /** Cores per process type (see the header); they add up to `cores`. */
  byProcess: Record<string, number>;
  framesShown: number;
  fps: number;
  framesDropped: number;
  /** Processes of each type alive at the end of the window. */
  processes: Record<string, number>;
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
    const cpu = new TreeCpu(root);
    const t0 = performance.now();
    await sleep(seconds * 1000);
    const c = cpu.stop();
    const wall = (performance.now() - t0) / 1000;
    const f1 = await frames(b.page, arm);
    if (b.crashed()) throw new Error(`${arm}: the page crashed`);
    const shown = f1.shown - f0.shown;
    const cores = (ticks: number) => round3(ticks / TICK / wall);
    if (traced.delete(arm)) {
      const file = path.join(tmpdir(), `moq-cpu-trace-${arm}-${Date.now()}.json`);
      await recordTrace(b.page, traceSeconds, file);
      console.log(JSON.stringify({ trace: { arm, round, file, ...summarizeTrace(file) } }));
    }
    return {
      arm,
      round,
      cpuSeconds: round3(c.ticks / TICK),
      wallSeconds: round3(wall),
      cores: cores(c.ticks),
      byProcess: Object.fromEntries(
        Object.entries(c.byType)
          .sort(([, a], [, b]) => b - a)
          .map(([t, ticks]) => [t, cores(ticks)]),
      ),
      framesShown: shown,
      fps: Number((shown / wall).toFixed(1)),
      framesDropped: f1.dropped - f0.dropped,
      processes: c.count,
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
const publisher = source === "demo/clip" ? undefined : publishEvalClip(relay, dir);
try {
  if (publisher) {
    // On the relay once a second of it can be recorded.
    const probe = path.join(dir, "probe.mp4");
    await until(
      `${source} on the relay`,
      () =>
        record(relay, probe, 1).then(
          () => true,
          () => false,
        ),
      30_000,
    );
  }
  if (arms.some(element)) {
    await record(relay, clip, 25);
    if (arms.some((a) => a.startsWith("hls"))) packageHls(clip, path.join(dir, "hls"));
    video = await serveVideo(clip, path.join(dir, "hls"));
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
  // The shell, ffmpeg and moq-pub: their process group.
  if (publisher?.pid) process.kill(-publisher.pid, "SIGKILL");
  await video?.close();
  await relay.stop("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
}

const medians: Record<string, { cores: number; fps: number; byProcess: Record<string, number> }> = {};
for (const arm of arms) {
  const rs = results.filter((r) => r.arm === arm);
  const types = [...new Set(rs.flatMap((r) => Object.keys(r.byProcess)))];
  medians[arm] = {
    cores: round3(median(rs.map((r) => r.cores))),
    fps: median(rs.map((r) => r.fps)),
    byProcess: Object.fromEntries(types.map((t) => [t, round3(median(rs.map((r) => r.byProcess[t] ?? 0)))])),
  };
}
const ratio = (a: string, b: string) => {
  const x = medians[a]?.cores;
  const y = medians[b]?.cores;
  return x !== undefined && y ? Number((x / y).toFixed(2)) : undefined;
};
/** The ratio per process type, for the types that use at least 0.005 cores in `b`. */
const ratioByProcess = (a: string, b: string) => {
  const x = medians[a]?.byProcess;
  const y = medians[b]?.byProcess;
  if (!x || !y) return undefined;
  const types = Object.keys(y).filter((t) => (y[t] as number) >= 0.005);
  return Object.fromEntries(types.map((t) => [t, Number(((x[t] ?? 0) / (y[t] as number)).toFixed(2))]));
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
      source,
      medians,
      ratios: {
        "moq-watch / video-element": ratio("moq-watch", "video-element"),
        "moq-watch-unmuted / video-element-unmuted": ratio("moq-watch-unmuted", "video-element-unmuted"),
        "moq-watch-unmuted / video-element": ratio("moq-watch-unmuted", "video-element"),
        "moq-hidden / video-element": ratio("moq-hidden", "video-element"),
        "moq-hidden / moq-watch": ratio("moq-hidden", "moq-watch"),
        "moq-watch-canvas / video-element": ratio("moq-watch-canvas", "video-element"),
        "moq-watch / moq-watch-canvas": ratio("moq-watch", "moq-watch-canvas"),
        "moq-watch / hls.js": ratio("moq-watch", "hls.js"),
        "moq-watch-unmuted / hls.js-unmuted": ratio("moq-watch-unmuted", "hls.js-unmuted"),
        "moq-watch-unmuted / hls.js": ratio("moq-watch-unmuted", "hls.js"),
        "hls.js / video-element": ratio("hls.js", "video-element"),
      },
      // The same per process type.
      ratiosByProcess: {
        "moq-watch / video-element": ratioByProcess("moq-watch", "video-element"),
        "moq-watch / hls.js": ratioByProcess("moq-watch", "hls.js"),
      },
      // The same, with the idle browser's cost (the blank arm) taken off both sides.
      overBlank: medians.blank
        ? {
            "moq-watch / video-element": increment("moq-watch", "video-element"),
            "moq-watch-unmuted / video-element-unmuted": increment(
              "moq-watch-unmuted",
              "video-element-unmuted",
            ),
            "moq-watch / hls.js": increment("moq-watch", "hls.js"),
          }
        : undefined,
    },
  }),
);
