// Measures the player against `moq-relay --demo` on loopback and prints JSON: start-up time to the first frame
// and publish-to-display latency (PUBLISH_TIME to the frame being handed to the screen) p50/p99 over 30 s, per
// draft and renderer. With the <video> renderer it also reads, for every frame the video element composites
// (requestVideoFrameCallback), capture to compositor (presentationTime - the frame's timestamp): what the
// browser's video path adds after the hand-over.
//   npm run bench:latency            (MOQ_BENCH_SECONDS=10 for a shorter run; MOQ_BENCH_RENDERERS=video,canvas)

import { freePort, openBrowser, Relay, serveDist, until } from "./harness.ts";

const seconds = Number(process.env.MOQ_BENCH_SECONDS ?? 30);
const relay = new Relay(await freePort());
await relay.start();
const site = await serveDist(() => relay.port);
const b = await openBrowser();
const results = [];
const renderers = (process.env.MOQ_BENCH_RENDERERS ?? "video,canvas").split(",");
/** Collects capture-to-compositor times of the player's <video> (a string: no bundler helpers in the page). */
const COLLECT = `(() => {
  const p = document.querySelector("moq-player");
  const v = p.shadowRoot.querySelector("video.screen");
  window.presented = [];
  if (!v) return;
  const cb = (_now, m) => {
    window.presented.push(m.presentationTime + performance.timeOrigin - m.mediaTime * 1000);
    v.requestVideoFrameCallback(cb);
  };
  v.requestVideoFrameCallback(cb);
})()`;
const pct = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))];
try {
  for (const [version, target, renderer] of [19, 18].flatMap((v) =>
    [0, 100].flatMap((t) => renderers.map((r) => [v, t, r] as const)),
  )) {
    {
      const q = `name=demo/clip&url=${encodeURIComponent(relay.url)}&fingerprint-url=/relay/certificate.sha256&versions=${version}&latency=${target}&renderer=${renderer}`;
      await b.page.goto(`${site.url}/watch.html?${q}`);
      const startupMs = await until(
        "first frame",
        () =>
          b.page.evaluate(
            () =>
              (document.querySelector("moq-player") as unknown as { stats: { startupMs?: number } }).stats
                .startupMs,
          ),
        15_000,
      );
      // Skip the first second (joining at the group start), then record.
      await new Promise((r) => setTimeout(r, 1000));
      const from = await b.page.evaluate(
        () => (document.querySelector("moq-player") as unknown as { latencyLog: number[] }).latencyLog.length,
      );
      await b.page.evaluate(COLLECT);
      await new Promise((r) => setTimeout(r, seconds * 1000));
      const presented = ((await b.page.evaluate("window.presented")) as number[]).sort((a, b) => a - b);
      const s = await b.page.evaluate((from) => {
        const p = document.querySelector("moq-player") as unknown as {
          latencyLog: number[];
          stats: Record<string, unknown>;
        };
        return { log: p.latencyLog.slice(from), stats: p.stats };
      }, from);
      const sorted = [...s.log].sort((a, b) => a - b);
      results.push({
        draft: version,
        targetLatencyMs: target,
        renderer,
        seconds,
        frames: sorted.length,
        startupMs: Math.round(startupMs),
        latencyP50Ms: Number(pct(sorted, 50)?.toFixed(1)),
        latencyP99Ms: Number(pct(sorted, 99)?.toFixed(1)),
        latencyMaxMs: Number(sorted[sorted.length - 1]?.toFixed(1)),
        ...(presented.length > 0
          ? {
              captureToCompositorP50Ms: Number(pct(presented, 50)?.toFixed(1)),
              captureToCompositorP99Ms: Number(pct(presented, 99)?.toFixed(1)),
            }
          : {}),
        framesDropped: s.stats.framesDropped,
        groupsSkipped: s.stats.groupsSkipped,
      });
    }
  }
} finally {
  await b.close();
  await site.close();
  await relay.stop("SIGKILL");
}
console.log(
  JSON.stringify(
    { chromium: "headless, loopback", relay: "moq-relay --demo (debug build unless MOQ_BIN_DIR)", results },
    null,
    1,
  ),
);
