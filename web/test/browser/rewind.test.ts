// Rewind in Chromium against `moq-relay --demo`: the player plays the past from the relay's cache (FETCH), as far
// back as asked (presses add up), keeps drawing frames that old, and returns to the live edge; asking for more than
// the relay holds rewinds to what it holds, and says so.

import assert from "node:assert/strict";
import { test } from "node:test";
import type { Page } from "playwright-core";
import { num, playerStats, type Stats, stage, until } from "./harness.ts";

const env = stage();

const relayQuery = () => `url=${encodeURIComponent(env.relay.url)}&fingerprint-url=/relay/certificate.sha256`;
const TARGET_MS = 100;
const MARGIN_MS = 150;

async function watch(page: Page): Promise<void> {
  if (page.url().includes("/watch.html")) return;
  await page.goto(`${env.site.url}/watch.html?name=demo/clip&${relayQuery()}&latency=${TARGET_MS}`);
  await until("video", async () => num((await playerStats(page)).framesRendered) > 30);
}

/**
 * Waits until the relay holds at least `groups` groups of the player's video track: from its oldest held group
 * (a FETCH from group 0 answers with it) to its largest (TRACK_STATUS), asked over a session of the page's own.
 */
async function held(page: Page, groups: number, timeoutMs: number): Promise<number> {
  const track = String((await playerStats(page)).videoTrack ?? "video0");
  return page.evaluate(
    async ({ url, track, groups, timeoutMs }) => {
      const moq = await import("/moq.js");
      const s = await moq.Session.connect(url, { fingerprintUrl: "/relay/certificate.sha256" });
      try {
        const f = await s.fetch({
          namespace: "demo/clip",
          name: track,
          start: { group: 0, object: 0 },
          end: { group: 0, object: 0 },
        });
        const e = await f.next();
        f.cancel();
        // Group 0 itself, or an End of Range up to the group before the oldest held.
        const oldest = !e ? 0 : "endOfRange" in e ? e.end.group + 1 : e.groupId;
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          const largest = (await s.trackStatus("demo/clip", track)).largest?.group ?? -1;
          const n = largest - oldest + 1;
          if (n >= groups) return n;
          if (Date.now() > deadline) throw new Error(`the relay holds ${n} groups, not ${groups}`);
          await new Promise((r) => setTimeout(r, 250));
        }
      } finally {
        s.close();
      }
    },
    { url: env.relay.url, track, groups, timeoutMs },
  );
}

/** The player's stats every 250 ms for `ms`. */
async function sample(page: Page, ms: number): Promise<Stats[]> {
  const out: Stats[] = [];
  const end = Date.now() + ms;
  while (Date.now() < end) {
    out.push(await playerStats(page));
    await new Promise((r) => setTimeout(r, 250));
  }
  return out;
}

/** Frames keep being drawn about `behindMs` old (capture to display), within 1.5 s. */
async function playsBehind(page: Page, behindMs: number): Promise<void> {
  const first = await until(
    `frames ${behindMs} ms old`,
    async () => {
      const s = await playerStats(page);
      return Math.abs(num(s.glassMs) - behindMs) <= 1500 ? s : undefined;
    },
    5_000,
  );
  const seen = await sample(page, 2500);
  const last = seen[seen.length - 1] as Stats;
  const rendered = num(last.framesRendered) - num(first.framesRendered);
  console.log(
    JSON.stringify({
      behindMs,
      rendered,
      glass: seen.map((s) => Math.round(num(s.glassMs))),
      rewindS: last.rewindS,
    }),
  );
  assert.ok(rendered >= 45, `frames drawn while rewound: ${rendered} in 2.5 s`);
  for (const s of seen)
    assert.ok(
      Math.abs(num(s.glassMs) - behindMs) <= 1500,
      `a frame ${s.glassMs} ms old, not about ${behindMs}`,
    );
}

/** The length of the player's latencyLog and its latest entry. */
const latencies = (page: Page) =>
  page.evaluate(() => {
    const log = (document.querySelector("moq-player") as unknown as { latencyLog: number[] }).latencyLog;
    return { n: log.length, last: log[log.length - 1] };
  });

/** Clicks "Go live" and waits for a frame within the target + margin; returns how long it took, ms. */
async function backToLive(page: Page, go: () => Promise<void>): Promise<number> {
  const before = await latencies(page);
  const t0 = Date.now();
  await go();
  await until(
    `a frame within ${TARGET_MS} + ${MARGIN_MS} ms of live`,
    async () => {
      const l = await latencies(page);
      return l.n > before.n && l.last !== undefined && l.last < TARGET_MS + MARGIN_MS ? l : undefined;
    },
    3_000,
  );
  return Date.now() - t0;
}

const rewind = (page: Page, seconds: number) =>
  page.evaluate(
    (s) =>
      (document.querySelector("moq-player") as unknown as { rewind(s: number): Promise<void> }).rewind(s),
    seconds,
  );

test("rewind plays the past minute from the relay's cache, presses add up, and Go live returns", async () => {
  const page = env.browser.page;
  await watch(page);
  // 8 s back needs 9 groups of the demo's 1 s groups; one more for the group being written.
  await held(page, 10, 12_000);
  await rewind(page, 4);
  const once = await playerStats(page);
  assert.ok(Math.abs(num(once.rewindS) - 4) <= 0.8, `rewound ${once.rewindS} s, not about 4`);
  await rewind(page, 4);
  const twice = await playerStats(page);
  assert.ok(Math.abs(num(twice.rewindS) - 8) <= 1, `rewound ${twice.rewindS} s, not about 8`);
  assert.equal(twice.behindLive, true, "the behind-live indicator shows");
  await playsBehind(page, num(twice.rewindS) * 1000);
  const text = await page.locator("moq-player .behind-text").textContent();
  assert.match(text ?? "", /Behind live by [78]\.\d s/);
  const backMs = await backToLive(page, () => page.locator("moq-player .go-live").click());
  console.log(JSON.stringify({ test: "rewind/live", backMs }));
  assert.ok(backMs <= 1000, `back at the live edge after ${backMs} ms`);
  const s = await playerStats(page);
  assert.equal(s.rewindS, 0);
  assert.equal(s.reconnects, 0, "the same session");
  await until("the indicator hides", async () => (await playerStats(page)).behindLive === false, 3_000);
  assert.deepEqual(env.browser.errors, []);
});

test("keys: j rewinds 10 s, l goes live", async () => {
  const page = env.browser.page;
  await watch(page);
  await held(page, 12, 10_000);
  await page.locator("moq-player").focus();
  await page.keyboard.press("j");
  const s = await until("rewound", async () => {
    const s = await playerStats(page);
    return num(s.rewindS) > 0 ? s : undefined;
  });
  assert.ok(Math.abs(num(s.rewindS) - 10) <= 1, `rewound ${s.rewindS} s, not about 10`);
  await until(
    "frames 10 s old",
    async () => Math.abs(num((await playerStats(page)).glassMs) - num(s.rewindS) * 1000) <= 1500,
    5_000,
  );
  const backMs = await backToLive(page, () => page.keyboard.press("l"));
  assert.ok(backMs <= 1000, `back at the live edge after ${backMs} ms`);
  assert.deepEqual(env.browser.errors, []);
});

test("more than the relay holds: rewound to its oldest group, and told so", async () => {
  const page = env.browser.page;
  await watch(page);
  const groups = await held(page, 1, 1_000);
  await rewind(page, 600);
  const s = await playerStats(page);
  // The relay holds every group since it started (fewer than its 64): about that many seconds back.
  assert.ok(
    num(s.rewindS) > groups - 3 && num(s.rewindS) < groups + 2,
    `rewound ${s.rewindS} s with ${groups} groups held`,
  );
  const message = page.locator("moq-player .message");
  assert.match((await message.textContent()) ?? "", /the relay holds no more/);
  await until(
    "frames that old",
    async () => num((await playerStats(page)).glassMs) > (groups - 3) * 1000,
    5_000,
  );
  const backMs = await backToLive(page, () => page.locator("moq-player .go-live").click());
  assert.ok(backMs <= 1000, `back at the live edge after ${backMs} ms`);
  assert.deepEqual(env.browser.errors, []);
});
