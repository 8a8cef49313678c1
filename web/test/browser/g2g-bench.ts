// Glass-to-glass latency on loopback: /studio's stamped test pattern (1280x720 at 30 fps, H.264, plus its 360p
// rendition and Opus) -> moq-relay -> <moq-player> on a second tab, which reads the stamp back from each drawn
// frame. Prints JSON: glass-to-glass p50/p95/p99 over 30 s per target latency, with where the time goes.
//   npm run bench:g2g                (MOQ_BENCH_SECONDS=10 for a shorter run; MOQ_BENCH_TARGETS=0,50)

import { freePort, goLive, openBrowser, Relay, relayQuery, serveDist, until } from "./harness.ts";

const seconds = Number(process.env.MOQ_BENCH_SECONDS ?? 30);
const targets = (process.env.MOQ_BENCH_TARGETS ?? "0,50").split(",").map(Number);
const relay = new Relay(await freePort(), []);
await relay.start();
const site = await serveDist(() => relay.port);
const b = await openBrowser();
const pct = (xs: number[], p: number) =>
  Number(xs[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))]?.toFixed(1));
const median = (xs: number[]) =>
  pct(
    [...xs].sort((a, c) => a - c),
    50,
  );
const results = [];
try {
  const studio = await goLive(b.context, site.url, relay, "bench", "glass-to-glass bench");
  for (const target of targets) {
    await b.page.goto(`${site.url}/watch?name=live/bench&${relayQuery(relay)}&latency=${target}&chat=0`);
    // 720p throughout: the automatic choice would step down on a loaded machine.
    await b.page.locator("moq-player select.renditions option[value=video0]").waitFor({ state: "attached" });
    await b.page.locator("moq-player select.renditions").selectOption("video0");
    await until(
      "stamped frames",
      () =>
        b.page.evaluate(
          () =>
            (document.querySelector("moq-player") as unknown as { stampLog: number[] }).stampLog.length > 30,
        ),
      15_000,
    );
    // Let the playout delay settle (it falls by 5 ms per 100 ms), then record.
    await new Promise((r) => setTimeout(r, 3000));
    const player = () =>
      b.page.evaluate(() => {
        const p = document.querySelector("moq-player") as unknown as {
          stampLog: number[];
          latencyLog: number[];
          stats: Record<string, number>;
        };
        return { stamps: p.stampLog.length, publish: p.latencyLog.length, stats: { ...p.stats } };
      });
    const from = await player();
    const samples = {
      delay: [] as number[],
      base: [] as number[],
      encode: [] as number[],
      fps: [] as number[],
    };
    const end = Date.now() + seconds * 1000;
    while (Date.now() < end) {
      await new Promise((r) => setTimeout(r, 500));
      const { stats } = await player();
      samples.delay.push(stats.delayMs ?? 0);
      samples.base.push(stats.baseMs ?? 0);
      samples.fps.push(stats.fps ?? 0);
      const s = (await studio.evaluate(
        () =>
          (globalThis as unknown as { moqStudio: { stats: { video: { encodeMs: number }[] } } }).moqStudio
            .stats,
      )) as { video: { encodeMs: number }[] };
      samples.encode.push(s.video[0]?.encodeMs ?? 0);
    }
    const out = await b.page.evaluate(
      ({ stamps, publish }) => {
        const p = document.querySelector("moq-player") as unknown as {
          stampLog: number[];
          latencyLog: number[];
          stats: Record<string, number>;
        };
        return { g2g: p.stampLog.slice(stamps), publish: p.latencyLog.slice(publish), stats: p.stats };
      },
      { stamps: from.stamps, publish: from.publish },
    );
    const g2g = [...out.g2g].sort((a, c) => a - c);
    const publish = [...out.publish].sort((a, c) => a - c);
    results.push({
      targetLatencyMs: target,
      seconds,
      frames: g2g.length,
      glassToGlassP50Ms: pct(g2g, 50),
      glassToGlassP95Ms: pct(g2g, 95),
      glassToGlassP99Ms: pct(g2g, 99),
      publishToDisplayP50Ms: pct(publish, 50),
      breakdownMedianMs: {
        captureToEncoded: median(samples.encode),
        captureToArrivalFloor: median(samples.base),
        playoutDelay: median(samples.delay),
      },
      fpsMedian: median(samples.fps),
      stampErrors: out.stats.stampErrors,
      framesDropped: out.stats.framesDropped,
      width: out.stats.width,
      height: out.stats.height,
    });
  }
  await studio.locator("#stop").click();
} finally {
  await b.close();
  await site.close();
  await relay.stop("SIGKILL");
}
console.log(
  JSON.stringify(
    {
      chromium: "headless, loopback, two tabs of one browser",
      source: "studio test pattern 1280x720 @ 30 fps, H.264 + 360p + Opus",
      relay: "MOQ_BIN_DIR's moq-relay (target/debug if unset)",
      results,
    },
    null,
    1,
  ),
);
