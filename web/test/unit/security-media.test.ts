// A player that survives hostile media: timestamps far in the past or future or jumping (LOC and CMAF), absurd
// coded sizes, oversized init and description data, codec strings the browser refuses. Each is fed to the pure
// module that decides (playout.ts, loc.ts, cmaf.ts, playback.ts's decoderConfig) and the outcome is checked: an
// error to show, and a playout clock that re-anchors instead of chasing the jump.

import assert from "node:assert/strict";
import { test } from "node:test";
import type { CatalogTrack } from "../../src/player/catalog.ts";
import { CmafError, parseFragment, parseInit } from "../../src/player/cmaf.ts";
import { BroadcastError, decoderConfig } from "../../src/player/decoder-config.ts";
import {
  CODEC_STRING,
  checkDecoderInput,
  checkSupport,
  drawableSize,
  LocError,
  MAX_CONFIG_BYTES,
  readLoc,
} from "../../src/player/loc.ts";
import {
  AHEAD_MS,
  LATE_RUN_MS,
  MAX_DELAY_MS,
  PlayoutDelay,
  SNAP_MS,
  Timeline,
} from "../../src/player/playout.ts";
import { Properties } from "../../src/wire/index.ts";

const YEAR_MS = 365 * 86_400_000;
const T0 = 1_790_000_000_000; // a wall-clock time, ms

// ---- the playout clock ----

test("the delay never rises past its bound, whatever the arrival floor says", () => {
  const p = new PlayoutDelay(50);
  for (const base of [5 * 60_000, YEAR_MS, Number.POSITIVE_INFINITY, Number.NaN])
    assert.ok(p.tick(base) <= MAX_DELAY_MS, `base ${base}: delay ${p.delayMs}`);
  // A target above the bound is the viewer's choice and holds.
  const slow = new PlayoutDelay(6000);
  assert.equal(slow.tick(5 * 60_000), 6000);
});

test("a delay far above its goal drops to it at once, not 5 ms per tick", () => {
  const p = new PlayoutDelay(50);
  p.tick(3000);
  assert.equal(p.delayMs, 3000 + 20);
  // The floor is back to 10 ms: the delay is 2.9 s above its goal, more than SNAP_MS.
  assert.ok(3000 - 50 > SNAP_MS);
  assert.equal(p.tick(10), 50);
});

test("timeline: an honest publisher's timestamps are used as they are", () => {
  const tl = new Timeline();
  for (let i = 0; i < 300; i++) {
    const ts = (T0 + i * 33) * 1000;
    const m = tl.map(ts, T0 + i * 33 + 5 + (i % 7));
    assert.deepEqual(m, { ts, jumpMs: 0 });
  }
});

test("timeline: joining mid-group (frames 10 s old in a burst) and a 5 s stall do not re-anchor", () => {
  const tl = new Timeline();
  // The relay hands over a 10 s group at once: 300 frames within 300 ms, then live frames.
  for (let i = 0; i < 300; i++) {
    const ts = (T0 - 10_000 + i * 33) * 1000;
    assert.equal(tl.map(ts, T0 + i)?.jumpMs, 0);
  }
  // A network stall of 5 s: 0.5 s of frames 5 s late, then live again.
  for (let i = 0; i < 15; i++) assert.equal(tl.map((T0 + i * 33) * 1000, T0 + 5000 + i * 33)?.jumpMs, 0);
  assert.equal(tl.map((T0 + 5500) * 1000, T0 + 5510)?.ts, (T0 + 5500) * 1000);
});

test("timeline: a timestamp far in the future re-anchors at once", () => {
  const tl = new Timeline();
  tl.map(T0 * 1000, T0 + 10);
  const m = tl.map((T0 + 33 + YEAR_MS) * 1000, T0 + 43);
  assert.equal(m?.ts, (T0 + 43) * 1000, "on time on arrival");
  assert.ok(m && Math.abs(m.jumpMs + YEAR_MS) < 1000, `jump ${m?.jumpMs}`);
  // The following frames stay on the new anchor.
  assert.deepEqual(tl.map((T0 + 66 + YEAR_MS) * 1000, T0 + 76), { ts: (T0 + 76) * 1000, jumpMs: 0 });
  // Slightly ahead (a publisher's clock up to AHEAD_MS fast) is left alone.
  const fast = new Timeline();
  assert.equal(fast.map((T0 + AHEAD_MS - 100) * 1000, T0)?.jumpMs, 0);
});

test("timeline: timestamps far in the past re-anchor after LATE_RUN_MS of them, not on the first", () => {
  const tl = new Timeline();
  const away = 5 * 60_000; // five minutes
  let at = T0;
  let first: number | undefined;
  for (let i = 0; i < 60; i++, at += 33) {
    const m = tl.map((at - away) * 1000, at + 10);
    if (m?.jumpMs && first === undefined) first = at;
  }
  assert.ok(first !== undefined, "re-anchored");
  assert.ok(first - T0 >= LATE_RUN_MS && first - T0 < LATE_RUN_MS + 100, `after ${first - T0} ms`);
  // After it, frames are on time.
  const m = tl.map((at - away) * 1000, at + 10);
  assert.ok(m && Math.abs(m.ts / 1000 - (at + 10)) < 50, "on time");
});

test("timeline: unusable timestamps are refused", () => {
  const tl = new Timeline();
  for (const ts of [Number.NaN, Number.POSITIVE_INFINITY, 2 ** 60, -(2 ** 60)])
    assert.equal(tl.map(ts, T0), undefined, String(ts));
});

/**
 * The worker's clock in miniature: each frame is mapped by the timeline, its arrival delay kept for 3 s, and the
 * delay ticked every 100 ms from the smallest of them. Returns, per frame, when it is due relative to its arrival
 * (ms: negative is late), and the largest delay seen.
 */
function play(frames: { ts: number; at: number }[], target = 50): { wait: number[]; maxDelay: number } {
  const tl = new Timeline();
  const p = new PlayoutDelay(target);
  const window: { at: number; delay: number }[] = [];
  const wait: number[] = [];
  let maxDelay = 0;
  let nextTick = frames[0]?.at ?? 0;
  for (const f of frames) {
    while (nextTick <= f.at) {
      while (window.length > 0 && (window[0] as { at: number }).at < nextTick - 3000) window.shift();
      const base = window.length > 0 ? Math.min(...window.map((w) => w.delay)) : undefined;
      maxDelay = Math.max(maxDelay, p.tick(base));
      nextTick += 100;
    }
    const m = tl.map(f.ts, f.at);
    assert.ok(m);
    if (m.jumpMs !== 0) window.length = 0;
    window.push({ at: f.at, delay: f.at - m.ts / 1000 });
    wait.push(m.ts / 1000 + p.delayMs - f.at);
  }
  return { wait, maxDelay };
}

test("a publisher whose timestamps jump (5 min back, back again, a year ahead, back): playback stays live", () => {
  const frames: { ts: number; at: number }[] = [];
  const shifts = [0, -5 * 60_000, 0, YEAR_MS, 0]; // five 5-second stretches
  for (let i = 0; i < 5 * 150; i++) {
    const at = T0 + i * 33;
    frames.push({ ts: (at - 20 + (shifts[Math.floor(i / 150)] as number)) * 1000, at });
  }
  const { wait, maxDelay } = play(frames);
  assert.ok(maxDelay <= MAX_DELAY_MS, `the delay reached ${maxDelay} ms`);
  // Whatever happened before, 1.5 s into each stretch frames are due within the target of arriving: shown live,
  // neither waiting for a clock far away nor dropped as stale.
  for (let s = 0; s < 5; s++) {
    for (let i = s * 150 + 45; i < (s + 1) * 150; i++) {
      const w = wait[i] as number;
      assert.ok(w > -80 && w < 300, `stretch ${s}, frame ${i}: due ${w.toFixed(0)} ms after arrival`);
    }
  }
});

// ---- LOC and CMAF timestamps ----

test("LOC: a TIMESTAMP beyond 2^53 µs is a LocError, not a silently skipped object", () => {
  assert.throws(() => readLoc(new Properties().setInt(0x10, 2n ** 60n)), LocError);
  // 2^52 at timescale 1 (seconds) is 2^52 * 10^6 µs.
  assert.throws(() => readLoc(new Properties().setInt(0x10, 2 ** 52).setInt(0x08, 1)), LocError);
  // A year ahead is representable: it is for the clock (above) to handle.
  const ts = (T0 + YEAR_MS) * 1000;
  assert.equal(readLoc(new Properties().setInt(0x10, ts))?.timestamp, ts);
});

const u16 = (v: number) => [(v >>> 8) & 255, v & 255];
const u32 = (v: number) => [(v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];
const text = (s: string) => [...s].map((c) => c.charCodeAt(0));
const box = (type: string, ...parts: number[][]) => {
  const body = parts.flat();
  return [...u32(8 + body.length), ...text(type), ...body];
};
const full = (v: number, flags: number) => [v, (flags >> 16) & 255, (flags >> 8) & 255, flags & 255];

/** An init segment with one avc1 entry of `width` x `height`, and `pad` bytes of free box. */
function init(width: number, height: number, pad = 0): Uint8Array {
  const avc1 = box(
    "avc1",
    new Array(24).fill(0),
    u16(width),
    u16(height),
    new Array(50).fill(0),
    box("avcC", [1]),
  );
  const stsd = box("stsd", full(0, 0), u32(1), avc1);
  const mdhd = box("mdhd", full(0, 0), u32(0), u32(0), u32(90_000), u32(0), [0, 0, 0, 0]);
  const moov = box("moov", box("trak", box("mdia", mdhd, box("minf", box("stbl", stsd)))));
  const out = new Uint8Array(moov.length + (pad ? 8 + pad : 0));
  out.set(moov);
  if (pad) out.set([...u32(8 + pad), ...text("free")], moov.length);
  return out;
}

/** A version-1 tfdt fragment (64-bit decode time, high and low words) with one sample. */
function fragment(high: number, low: number): Uint8Array {
  const tfhd = box("tfhd", full(0, 0), u32(1));
  const tfdt = box("tfdt", full(1, 0), u32(high), u32(low));
  const trun = box("trun", full(0, 0x200), u32(1), u32(1));
  return Uint8Array.from([...box("moof", box("traf", tfhd, tfdt, trun)), ...box("mdat", [7])]);
}

test("CMAF: a decode time beyond 2^53 is a CmafError; one a year away parses (for the clock to re-anchor)", () => {
  assert.throws(() => parseFragment(fragment(0x00400000, 0)), CmafError);
  const yearTicks = (YEAR_MS / 1000) * 90_000;
  const f = parseFragment(fragment(Math.floor(yearTicks / 2 ** 32), yearTicks % 2 ** 32));
  assert.equal(f.pts, yearTicks);
});

test("CMAF: an init segment over 1 MiB or a sample entry over 8192 is a CmafError", () => {
  assert.deepEqual([parseInit(init(640, 360)).width, parseInit(init(640, 360)).height], [640, 360]);
  assert.throws(() => parseInit(init(640, 360, MAX_CONFIG_BYTES)), /over 1048576/);
  assert.throws(() => parseInit(init(8193, 360)), /8193x360 is over 8192/);
  assert.throws(() => parseInit(init(640, 65535)), CmafError);
});

// ---- what the decoders are given ----

test("decoder input: coded sizes 0 or over 8192, descriptions over 1 MiB, non-codec strings are refused", () => {
  assert.equal(checkDecoderInput("video", { codec: "avc1.42e01f", width: 1280, height: 720 }), undefined);
  assert.match(checkDecoderInput("video", { codec: "avc1.42e01f", width: 0, height: 720 }) ?? "", /0x720/);
  assert.match(checkDecoderInput("video", { codec: "avc1.42e01f", width: 8193, height: 8 }) ?? "", /1-8192/);
  const big = new Uint8Array(MAX_CONFIG_BYTES + 1);
  assert.match(checkDecoderInput("video", { codec: "avc1.42e01f", description: big }) ?? "", /over 1048576/);
  assert.equal(checkDecoderInput("audio", { codec: "opus", description: new Uint8Array(19) }), undefined);
  for (const codec of ["", "<img src=x onerror=alert(1)>", "avc1 42", "a".repeat(65), "\u202e1cva"])
    assert.match(checkDecoderInput("video", { codec }) ?? "", /not a codec string/, JSON.stringify(codec));
  assert.match(checkDecoderInput("audio", { codec: "opus", sampleRate: 0 }) ?? "", /sample rate/);
  assert.match(checkDecoderInput("audio", { codec: "opus", channels: 255 }) ?? "", /channels/);
  assert.equal(drawableSize(1920, 1080), true);
  assert.equal(drawableSize(0, 1080), false);
  assert.equal(drawableSize(16384, 16384), false);
});

test("isConfigSupported refusing, throwing or never answering: an error naming the codec, markup never echoed", async () => {
  const ok = async () => ({ supported: true });
  assert.equal(await checkSupport("video", { codec: "avc1.42e01f" }, ok), undefined);
  const no = async () => ({ supported: false });
  assert.equal(
    await checkSupport("video", { codec: "hev1.9.9.L999" }, no),
    "this browser cannot decode the video codec hev1.9.9.L999",
  );
  const throws = async () => {
    throw new TypeError("invalid codec");
  };
  assert.match(
    (await checkSupport("audio", { codec: "mp4a.99" }, throws)) ?? "",
    /cannot decode the audio codec/,
  );
  const never = () => new Promise<{ supported: boolean }>(() => {});
  assert.match((await checkSupport("video", { codec: "vp09.00" }, never, 20)) ?? "", /cannot decode/);
  const hostile = "<b>x</b>";
  assert.ok(!CODEC_STRING.test(hostile));
  assert.ok(!((await checkSupport("video", { codec: hostile }, no)) ?? "").includes("<"));
});

test("a catalog track outside the limits is refused before anything is subscribed", () => {
  const video = (t: Partial<CatalogTrack>): CatalogTrack => ({
    name: "video0",
    role: "video",
    packaging: "loc",
    codec: "avc1.42e01f",
    ...t,
  });
  assert.deepEqual(decoderConfig(video({ width: 640, height: 360 }), "video"), { width: 640, height: 360 });
  assert.throws(() => decoderConfig(video({ width: 0, height: 360 }), "video"), BroadcastError);
  assert.throws(() => decoderConfig(video({ width: 9000, height: 360 }), "video"), /9000x360/);
  assert.throws(() => decoderConfig(video({ init: new Uint8Array(MAX_CONFIG_BYTES + 1) }), "video"), /1 MiB/);
  assert.throws(
    () => decoderConfig(video({ packaging: "cmaf", init: init(640, 360, MAX_CONFIG_BYTES) }), "video"),
    BroadcastError,
  );
  assert.throws(
    () => decoderConfig(video({ packaging: "cmaf", init: init(9000, 360) }), "video"),
    BroadcastError,
  );
  const audio: CatalogTrack = {
    name: "audio0",
    role: "audio",
    packaging: "loc",
    codec: "opus",
    samplerate: 0,
  };
  assert.throws(() => decoderConfig(audio, "audio"), /sample rate/);
});
