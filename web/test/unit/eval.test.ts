// The evaluation's viewers: the stamp's pixel reading, the hls.js configuration per mode, and eval-watch's options
// and frames.csv.

import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import Hls from "hls.js";
import {
  CSV_HEADER,
  csvRows,
  FrameSink,
  kindOf,
  watchOptions,
  withFrameLog,
} from "../../scripts/eval-watch-lib.ts";
import { hlsConfig, MODES, parseMode } from "../../src/eval/hls-config.ts";
import { readBits, sampleBits, sourceSize, stampBits } from "../../src/media/stamp.ts";

/**
 * The stamp's corner as the reader's canvas holds it (16 x 4 blocks at 4 px per block, RGBA), after lossy coding:
 * each block is near black or near white, tinted, and its edge pixels are smeared toward the neighbour.
 */
function corner(bits: boolean[]): Uint8ClampedArray {
  const w = 16 * 4;
  const px = new Uint8ClampedArray(w * 16 * 4);
  for (let y = 0; y < 16; y++) {
    for (let x = 0; x < w; x++) {
      const i = Math.floor(y / 4) * 16 + Math.floor(x / 4);
      const edge = x % 4 === 0 || y % 4 === 0;
      const v = bits[i] ? (edge ? 170 : 225) : edge ? 90 : 25;
      const at = (y * w + x) * 4;
      px.set([v + 10, v - 8, v + 4, 255], at);
    }
  }
  return px;
}

test("the stamp reads back from pixels: frame number and check", () => {
  for (const frame of [0, 1, 255, 256, 17_999, 65_535]) {
    const bits = stampBits({ timeMs: Math.round((frame * 1000) / 30), frame });
    const read = readBits(sampleBits(corner(bits)), Date.now());
    assert.equal(read?.frame, frame);
  }
  // One block read wrong fails the check rather than giving a wrong frame number.
  const bits = stampBits({ timeMs: 1_795_563_535_412, frame: 1234 });
  bits[60] = !bits[60];
  assert.equal(readBits(sampleBits(corner(bits)), 1_795_563_535_412), undefined);
  // A frame without a stamp (all grey) reads as nothing.
  assert.equal(readBits(sampleBits(new Uint8ClampedArray(64 * 16 * 4).fill(128)), Date.now()), undefined);
});

test("the stamp's source size: a VideoFrame, a <video>, a canvas", () => {
  const frame = { displayWidth: 1280, displayHeight: 720, codedWidth: 1280, codedHeight: 736 };
  assert.deepEqual(sourceSize(frame as unknown as VideoFrame), {
    width: 1280,
    height: 720,
    sx: 1,
    sy: 736 / 720,
  });
  const video = { videoWidth: 640, videoHeight: 360, width: 300, height: 150 };
  assert.deepEqual(sourceSize(video as unknown as HTMLVideoElement), {
    width: 640,
    height: 360,
    sx: 1,
    sy: 1,
  });
  const canvas = { width: 320, height: 180 };
  assert.deepEqual(sourceSize(canvas as unknown as OffscreenCanvas), {
    width: 320,
    height: 180,
    sx: 1,
    sy: 1,
  });
  assert.equal(sourceSize({ width: {} } as unknown as SVGImageElement), undefined);
});

test("hls.js config per mode, as hls.js resolves it", () => {
  assert.equal(parseMode(null), "hls");
  assert.equal(parseMode("ll"), "ll");
  assert.equal(parseMode("ll-tuned"), "ll-tuned");
  assert.equal(parseMode("fast"), undefined);
  const resolved = Object.fromEntries(
    MODES.map((m) => {
      const hls = new Hls(hlsConfig(m));
      const c = hls.config;
      hls.destroy();
      return [m, c];
    }),
  );
  assert.equal(resolved.hls?.lowLatencyMode, false);
  assert.equal(resolved.hls?.maxLiveSyncPlaybackRate, 1);
  assert.equal(resolved.ll?.lowLatencyMode, true);
  assert.equal(resolved.ll?.liveSyncDuration, undefined, "ll targets the playlist's PART-HOLD-BACK");
  assert.equal(resolved.ll?.maxLiveSyncPlaybackRate, 1);
  const tuned = resolved["ll-tuned"];
  assert.equal(tuned?.lowLatencyMode, true);
  assert.equal(tuned?.liveSyncDuration, 1);
  assert.equal(tuned?.liveMaxLatencyDuration, 2.5);
  assert.ok((tuned?.maxLiveSyncPlaybackRate ?? 1) > 1);
  assert.equal(tuned?.backBufferLength, 4);
  assert.equal(hlsConfig("ll-tuned", 0.6).liveSyncDuration, 0.6);
});

test("eval-watch options", () => {
  const o = watchOptions(
    ["--url", "https://10.99.0.1:8443/watch?name=eval/clip", "--seconds", "600", "--out", "/tmp/x"],
    { CHROMIUM: "/opt/netns-chromium" },
  );
  assert.equal(o.kind, "moq");
  assert.equal(new URL(o.url).searchParams.get("frames"), "1", "the watch page gets frames=1");
  assert.equal(o.seconds, 600);
  assert.equal(o.chromium, "/opt/netns-chromium");
  const h = watchOptions([
    "--url",
    "https://10.99.0.1:8443/eval-hls.html?src=/ll/live.m3u8&mode=ll",
    "--seconds",
    "1.5",
    "--out",
    "d",
    "--chromium",
    "/usr/local/bin/c",
  ]);
  assert.equal(h.kind, "hls");
  assert.equal(h.url, "https://10.99.0.1:8443/eval-hls.html?src=/ll/live.m3u8&mode=ll", "left as given");
  assert.equal(h.chromium, "/usr/local/bin/c");
  assert.equal(
    watchOptions(["--url", "http://a/x", "--seconds", "1", "--out", "d"]).chromium,
    "/usr/bin/chromium",
  );
  assert.equal(kindOf(new URL("https://h/eval-hls?src=x")), "hls");
  assert.equal(kindOf(new URL("https://h/watch.html?name=eval-hls")), "moq");
  assert.equal(withFrameLog(new URL("https://h/watch?frames=1&a=b")).search, "?frames=1&a=b");
  for (const bad of [
    ["--seconds", "5", "--out", "d"],
    ["--url", "/eval-hls.html", "--seconds", "5", "--out", "d"],
    ["--url", "http://a/", "--seconds", "0", "--out", "d"],
    ["--url", "http://a/", "--seconds", "5"],
    ["--url", "http://a/", "--seconds", "5", "--out", "d", "--kind", "dash"],
    ["--url", "http://a/", "--seconds", "5", "--out", "d", "--verbose"],
  ])
    assert.throws(() => watchOptions(bad), /usage: eval-watch/, bad.join(" "));
});

test("frames.csv: the header, then each drained batch in order, 3 decimals", () => {
  assert.equal(csvRows([[7, 1_795_563_535_412.0625]]), "7,1795563535412.063\n");
  const dir = mkdtempSync(path.join(tmpdir(), "eval-watch-test-"));
  try {
    const sink = new FrameSink(path.join(dir, "frames.csv"));
    assert.equal(readFileSync(sink.file, "utf8"), CSV_HEADER);
    sink.add([
      [0, 1000],
      [1, 1033.333333],
    ]);
    sink.add([]);
    sink.add([[3, 1100.5]]);
    assert.equal(
      readFileSync(sink.file, "utf8"),
      "frame,display_unix_ms\n0,1000.000\n1,1033.333\n3,1100.500\n",
    );
    assert.equal(sink.count, 3);
    assert.equal(sink.firstUnixMs, 1000);
    assert.equal(sink.lastFrame, 3);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
