// The evaluation's browser viewers: with `frames=1` the player logs the stamp's frame number of every drawn frame
// (the studio's stream is stamped), and scripts/eval-watch.ts writes frames.csv and viewer.json from the watch
// page and from eval-hls.html (hls.js playing a short stamped HLS stream that ffmpeg makes here).

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createReadStream, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import http from "node:http";
import type net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { stampBits } from "../../src/media/stamp.ts";
import { DIST, goLive, hasFfmpeg, num, playerStats, relayQuery, stage, until, WEB } from "./harness.ts";

const env = stage();
const work = mkdtempSync(path.join(tmpdir(), "moq-eval-test-"));
after(() => rmSync(work, { recursive: true, force: true }));

type Log = [number, number][];
const frameLog = () =>
  env.browser.page.evaluate(() =>
    (document.querySelector("moq-player") as unknown as { frameLog: [number, number][] }).frameLog.slice(),
  );

/**
 * Each logged frame is later than the one before, in time and in frame number. With `repeats`, a frame number may
 * repeat the one before (the video presented the same picture again: the analysis counts such rows as duplicates);
 * returns how many rows did.
 */
function assertIncreasing(log: Log, repeats = false): number {
  let repeated = 0;
  for (let i = 1; i < log.length; i++) {
    const [f0, t0] = log[i - 1] as [number, number];
    const [f1, t1] = log[i] as [number, number];
    if (repeats && f1 === f0) repeated++;
    assert.ok(
      (f1 > f0 || (repeats && f1 === f0)) && t1 > t0,
      `entry ${i}: #${f0} at ${t0} then #${f1} at ${t1}`,
    );
  }
  return repeated;
}

/** Runs eval-watch to its end (it measures for `seconds`); its exit code, stderr, and what it wrote. */
async function evalWatch(url: string, seconds: number, extra: string[] = []) {
  const out = mkdtempSync(path.join(work, "out-"));
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      "scripts/eval-watch.ts",
      "--url",
      url,
      "--seconds",
      `${seconds}`,
      "--out",
      out,
      ...extra,
    ],
    { cwd: WEB, stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  const csv = existsSync(path.join(out, "frames.csv"))
    ? readFileSync(path.join(out, "frames.csv"), "utf8")
    : "";
  const [header, ...rows] = csv.trimEnd().split("\n");
  const frames = rows.map((r) => r.split(",").map(Number) as [number, number]);
  const viewer = JSON.parse(readFileSync(path.join(out, "viewer.json"), "utf8"));
  return { code, stderr, header, rows, frames, viewer };
}

test("frames=1: the player logs every drawn frame's stamp, only when asked", async () => {
  await goLive(env.browser.context, env.site.url, env.relay, "evalframes", "frame log");
  const watch = `${env.site.url}/watch?name=live/evalframes&${relayQuery(env.relay)}&chat=0`;
  await env.browser.page.goto(watch);
  await until("30 frames drawn", async () => num((await playerStats(env.browser.page)).framesRendered) >= 30);
  assert.deepEqual(await frameLog(), [], "no frame log without frames=1");

  await env.browser.page.goto(`${watch}&frames=1`);
  const t0 = Date.now();
  const log = await until(
    "60 logged frames",
    async () => {
      const l = await frameLog();
      return l.length >= 60 ? l : undefined;
    },
    15_000,
  );
  assertIncreasing(log);
  const steps = log.slice(1).map(([f], i) => f - (log[i] as [number, number])[0]);
  assert.equal(
    [...steps].sort((a, b) => a - b)[Math.floor(steps.length / 2)],
    1,
    "mostly consecutive frames",
  );
  const [, last] = log[log.length - 1] as [number, number];
  assert.ok(last > t0 - 1000 && last < Date.now() + 100, "display times are Unix ms");
  // The page may take entries out; new ones keep coming.
  await env.browser.page.evaluate(() => {
    (document.querySelector("moq-player") as unknown as { frameLog: unknown[] }).frameLog.splice(0);
  });
  const more = await until("more frames", async () => {
    const l = await frameLog();
    return l.length >= 10 ? l : undefined;
  });
  assert.ok((more[0] as [number, number])[0] > (log[log.length - 1] as [number, number])[0]);
  assert.deepEqual(env.browser.errors, []);
});

test("eval-watch: frames.csv and viewer.json from the watch page", async () => {
  // The studio of the test above is still live.
  const url = `${env.site.url}/watch?name=live/evalframes&${relayQuery(env.relay)}&chat=0`;
  // 8 s: the watcher launches its own Chromium first (about 3 s on a busy 2-core machine).
  const r = await evalWatch(url, 8);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.header, "frame,display_unix_ms");
  assert.ok(r.frames.length >= 30, `${r.frames.length} frames`);
  assert.match(r.rows[0] ?? "", /^\d+,\d+\.\d{3}$/);
  assertIncreasing(r.frames);
  assert.equal(r.viewer.kind, "moq");
  assert.equal(r.viewer.frames_logged, r.frames.length);
  assert.ok(r.viewer.start_unix_ms < (r.frames[0] as [number, number])[1]);
  assert.equal(r.viewer.player.state, "playing");
  assert.deepEqual(r.viewer.errors, []);
});

test("eval-watch: no frame logged is a failure", async () => {
  const r = await evalWatch(`${env.site.url}/test.html`, 1, ["--kind", "moq"]);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.frames.length, 0);
  assert.equal(r.viewer.frames_logged, 0);
});

/** 3 s of 640x360 at 30 fps, frame n stamped with frame n, as a VOD HLS stream of fMP4 segments in `dir`. */
async function stampedHls(dir: string): Promise<void> {
  const [w, h, n] = [640, 360, 90];
  const ffmpeg = spawn(
    "ffmpeg",
    [
      ...["-hide_banner", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", `${w}x${h}`],
      ...[
        "-r",
        "30",
        "-i",
        "-",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-crf",
        "18",
        "-g",
        "30",
        "-bf",
        "0",
      ],
      ...["-f", "hls", "-hls_time", "1", "-hls_playlist_type", "vod", "-hls_segment_type", "fmp4"],
      ...["-hls_segment_filename", path.join(dir, "seg%d.m4s"), path.join(dir, "index.m3u8")],
    ],
    { stdio: ["pipe", "ignore", "pipe"] },
  );
  let stderr = "";
  ffmpeg.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
  const block = 8; // blockSize(640)
  for (let f = 0; f < n; f++) {
    const frame = Buffer.alloc((w * h * 3) / 2, 128);
    frame.fill(90, 0, w * h);
    for (let y = h / 2; y < h / 2 + 40; y++)
      frame.fill(200, y * w + ((f * 6) % (w - 40)), y * w + ((f * 6) % (w - 40)) + 40);
    stampBits({ timeMs: Math.round((f * 1000) / 30), frame: f }).forEach((bit, i) => {
      const [x0, y0] = [(i % 16) * block, Math.floor(i / 16) * block];
      for (let y = y0; y < y0 + block; y++) frame.fill(bit ? 235 : 16, y * w + x0, y * w + x0 + block);
    });
    if (!ffmpeg.stdin.write(frame)) await new Promise((r) => ffmpeg.stdin.once("drain", r));
  }
  ffmpeg.stdin.end();
  const code = await new Promise((r) => ffmpeg.once("exit", r));
  assert.equal(code, 0, `ffmpeg: ${stderr}`);
}

/** dist/ and /hls/ (from `dir`), cross-origin isolated as eval-origin serves them. */
async function serveHls(dir: string): Promise<{ url: string; close(): void }> {
  const types: Record<string, string> = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript",
    ".m3u8": "application/vnd.apple.mpegurl",
    ".m4s": "video/iso.segment",
    ".mp4": "video/mp4",
  };
  const server = http.createServer((req, res) => {
    const p = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    const [root, rel] = p.startsWith("/hls/") ? [dir, p.slice(5)] : [DIST, p];
    const file = path.normalize(path.join(root, rel));
    if (!file.startsWith(root) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, {
      "content-type": types[path.extname(file)] ?? "application/octet-stream",
      "cross-origin-opener-policy": "same-origin",
      "cross-origin-embedder-policy": "require-corp",
    });
    createReadStream(file).pipe(res);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

test("eval-watch: hls.js on eval-hls.html logs every shown frame", {
  skip: !hasFfmpeg && "no ffmpeg",
}, async () => {
  const dir = mkdtempSync(path.join(work, "hls-"));
  await stampedHls(dir);
  const site = await serveHls(dir);
  try {
    const r = await evalWatch(`${site.url}/eval-hls.html?src=/hls/index.m3u8&mode=ll-tuned`, 5);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.header, "frame,display_unix_ms");
    // hls.js may show a picture twice (a nudge over a gap, a rate change); the CI run of b06b934 saw one repeat.
    const repeated = assertIncreasing(r.frames, true);
    assert.ok(repeated <= 3, `${repeated} repeated frames`);
    // Every frame of the video is logged, or presented without a callback, or dropped by the video (both counted;
    // a busy machine makes some): at least half are logged, and all 90 are accounted for.
    const logged = r.frames.length - repeated;
    const { missed_callbacks: missed, video } = r.viewer.player;
    assert.ok(logged >= 45, `${logged} of 90 frames`);
    assert.ok(
      logged + missed + video.dropped_frames >= video.total_frames - 1 && video.total_frames >= 88,
      `${logged} logged, ${missed} missed, ${video.dropped_frames} dropped of ${video.total_frames}`,
    );
    assert.ok((r.frames[0] as [number, number])[0] <= 5, `starts at #${r.frames[0]?.[0]}`);
    assert.equal(r.viewer.kind, "hls");
    assert.deepEqual(r.viewer.errors, []);
    assert.equal(r.viewer.player.config.maxLiveSyncPlaybackRate, 1.5);
    assert.equal(r.viewer.player.unreadable, 0);
    assert.ok(Array.isArray(r.viewer.player.latency) && Array.isArray(r.viewer.player.stalls));
    console.log(
      JSON.stringify({
        test: "eval-hls",
        frames: r.frames.length,
        repeated,
        missed: r.viewer.player.missed_callbacks,
        video: r.viewer.player.video,
      }),
    );
  } finally {
    site.close();
  }
});
