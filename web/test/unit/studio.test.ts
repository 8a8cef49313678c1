// The studio's packaging: the glass-to-glass stamp's bits, the simulcast ladder, and a LiveBroadcast's catalog
// and LOC objects read back by the player's own parsers and by the channel list (what the studio publishes is
// what they read).

import assert from "node:assert/strict";
import { test } from "node:test";
import { describeChannel } from "../../src/channels.ts";
import type { TrackPublisher } from "../../src/client/publish.ts";
import { readBits, stampBits } from "../../src/media/stamp.ts";
import { parseCatalog, videoTracks } from "../../src/player/catalog.ts";
import { readLoc } from "../../src/player/loc.ts";
import { LiveBroadcast, opusHead } from "../../src/studio/broadcast.ts";
import { codecString, renditionsFor } from "../../src/studio/protocol.ts";
import { type Location, Properties, text } from "../../src/wire/index.ts";

test("the stamp's 64 bits carry the capture time and frame number, checked", () => {
  const now = 1_764_633_600_123;
  const bits = stampBits({ timeMs: now, frame: 70_000 });
  assert.equal(bits.length, 64);
  assert.deepEqual(readBits(bits, now + 80), { timeMs: now, frame: 70_000 % 65_536 });
  for (let i = 0; i < 64; i++) {
    const flipped = [...bits];
    flipped[i] = !flipped[i];
    const r = readBits(flipped, now);
    assert.ok(r === undefined || r.timeMs !== now || r.frame !== 4464, `bit ${i} flip goes unnoticed`);
  }
  // The time is sent modulo 2^40 ms (34 years) and resolved against the reader's clock.
  const wrap = 2 ** 40;
  const late = Math.ceil(now / wrap) * wrap + 5;
  assert.equal(readBits(stampBits({ timeMs: late, frame: 1 }), late + 100)?.timeMs, late);
  assert.equal(readBits(stampBits({ timeMs: late - 10, frame: 1 }), late + 100)?.timeMs, late - 10);
  assert.equal(readBits(bits.slice(1), now), undefined);
});

test("simulcast renditions are never larger than the source", () => {
  assert.deepEqual(
    renditionsFor(1920, 1080).map((r) => `${r.track} ${r.width}x${r.height}`),
    ["video0 1920x1080", "video1 1280x720", "video2 640x360"],
  );
  assert.deepEqual(
    renditionsFor(1280, 720).map((r) => `${r.width}x${r.height}`),
    ["1280x720", "640x360"],
  );
  assert.deepEqual(
    renditionsFor(320, 180).map((r) => `${r.width}x${r.height}`),
    ["320x180"],
  );
  assert.equal(codecString("h264", 720), "avc1.42e01f");
  assert.equal(codecString("h264", 1080), "avc1.42e028");
});

test("a LiveBroadcast's catalog and LOC objects are what the player reads", () => {
  const b = new LiveBroadcast("live/alice", { title: "Alice", startedAt: 1, stamp: true }, [
    "video0",
    "audio0",
  ]);
  assert.equal(b.catalog.largest, undefined, "no catalog before every encoder has its configuration");
  b.configure({
    track: "video0",
    kind: "video",
    codec: "avc1.42e01f",
    description: new Uint8Array([1, 66, 224, 31]),
    width: 1280,
    height: 720,
    framerate: 30,
    bitrate: 2_500_000,
  });
  b.configure({
    track: "audio0",
    kind: "audio",
    codec: "opus",
    bitrate: 64_000,
    samplerate: 48_000,
    channels: 2,
  });
  assert.equal(largest(b.catalog).object, 0);
  const json = JSON.parse(text(currentPayload(b.catalog)));
  assert.equal(json["com.moq-web.channel"].title, "Alice");
  const c = parseCatalog(currentPayload(b.catalog));
  assert.equal(c.stamped, true);
  const [video] = videoTracks(c);
  assert.deepEqual(
    { name: video?.name, codec: video?.codec, w: video?.width, h: video?.height, p: video?.packaging },
    { name: "video0", codec: "avc1.42e01f", w: 1280, h: 720, p: "loc" },
  );
  assert.deepEqual(video?.init, new Uint8Array([1, 66, 224, 31]));
  const audio = c.tracks.find((t) => t.role === "audio");
  assert.deepEqual(audio?.init, opusHead(2, 48_000));
  assert.equal(audio?.channelConfig, "2");
  assert.deepEqual(describeChannel(currentPayload(b.catalog)), {
    title: "Alice",
    details: "720p · H.264 · audio",
    complete: false,
  });

  // Video waits for a keyframe; each keyframe starts a group, and audio follows at its next packet.
  const video0 = b.lookup("video0") as TrackPublisher;
  const audio0 = b.lookup("audio0") as TrackPublisher;
  b.write("video0", new Uint8Array([9]), 1_000_000, false);
  assert.equal(video0.largest, undefined);
  b.write("audio0", new Uint8Array([1]), 1_000_000, true);
  b.write("video0", new Uint8Array([2]), 1_033_000, true);
  b.write("video0", new Uint8Array([3]), 1_066_000, false);
  b.write("audio0", new Uint8Array([4]), 1_070_000, true);
  const g = largest(video0).group;
  assert.deepEqual(video0.largest, { group: g, object: 1 });
  b.write("video0", new Uint8Array([5]), 2_000_000, true);
  assert.deepEqual(video0.largest, { group: g + 1, object: 0 });
  assert.equal(largest(audio0).object, 0, "audio started a group after the keyframe");
  const key = currentObject(video0);
  const loc = readLoc(key.properties);
  assert.equal(loc?.timestamp, 2_000_000);
  assert.equal(loc?.keyframe, true);
  assert.deepEqual(loc?.config, new Uint8Array([1, 66, 224, 31]));
  assert.ok((loc?.publishTime ?? 0) > 1_700_000_000_000_000);

  b.finish();
  assert.equal(parseCatalog(currentPayload(b.catalog)).complete, true);
  assert.equal(describeChannel(currentPayload(b.catalog)).complete, true);
  assert.equal(video0.ended && audio0.ended && b.catalog.ended, true);
});

function largest(t: TrackPublisher): Location {
  if (!t.largest) throw new Error(`${t.name} is empty`);
  return t.largest;
}

function currentObject(t: TrackPublisher) {
  const o = t.newest;
  if (!o) throw new Error(`${t.name} has no object`);
  return { payload: o.payload, properties: o.properties ?? new Properties() };
}

function currentPayload(t: TrackPublisher): Uint8Array {
  return currentObject(t).payload;
}
