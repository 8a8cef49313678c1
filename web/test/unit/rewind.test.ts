// Rewind's decisions (rewind.ts): which group a rewind starts from, where the next FETCH range starts, when an
// object is posted; and a feed and its locate against a scripted relay: paced by due time, two ranges held at
// most, a short answer clamped, a caught-up range asked again.

import assert from "node:assert/strict";
import { test } from "node:test";
import { RequestError } from "../../src/client/requests.ts";
import { keyAction } from "../../src/player/controls.ts";
import {
  closeEnough,
  DEFAULT_GROUP_US,
  delayFor,
  Feed,
  type FetchObject,
  GroupClock,
  holdMs,
  LEAD_MS,
  locate,
  MAX_RANGE_GROUPS,
  nextStart,
  type Range,
  RETRY_MS,
  type RewindHost,
  rangeGroups,
  rewindPoint,
  START_MS,
} from "../../src/player/rewind.ts";
import { type FetchEntry, type Location, Properties, RequestErrorCode } from "../../src/wire/index.ts";

const S = 1_000_000;

test("clock: groups seen give the duration; others are extrapolated", () => {
  const c = new GroupClock();
  assert.equal(c.groupAt(5 * S, "nearest"), undefined, "nothing seen: no guess");
  assert.equal(c.durationUs, DEFAULT_GROUP_US);
  c.observe(100, 1000 * S);
  assert.equal(c.groupAt(990 * S, "nearest"), 90, "one group seen: the default duration");
  c.observe(110, 1020 * S);
  assert.equal(c.durationUs, 2 * S);
  assert.equal(c.startOf(105), 1010 * S);
  assert.equal(c.startOf(90), 980 * S, "older than seen: extrapolated back");
  assert.equal(c.groupAt(1000 * S, "nearest"), 100);
  assert.equal(c.groupAt(1001.2 * S, "nearest"), 101);
  assert.equal(c.groupAt(1001.2 * S, "before"), 100);
  assert.equal(c.groupAt(1002 * S, "before"), 101, "a point at a group's start is in that group");
  assert.equal(c.groupAt(-1e12, "nearest"), 0, "never below group 0");
});

test("clock: hostile observations are ignored or bounded", () => {
  const c = new GroupClock();
  c.observe(Number.NaN, 1);
  c.observe(-1, 1);
  c.observe(1, Number.POSITIVE_INFINITY);
  assert.equal(c.size, 0);
  // A duration of a microsecond (or of hours) is not believed.
  c.observe(1, 0);
  c.observe(2, 1);
  assert.equal(c.durationUs, DEFAULT_GROUP_US);
  for (let g = 0; g < 1000; g++) c.observe(g, g * S);
  assert.ok(c.size <= 128, `remembers ${c.size}`);
  assert.equal(c.groupAt(999 * S, "nearest"), 999);
});

test("rewind point, delay and closeness", () => {
  assert.equal(rewindPoint(10_000, 100, 4), (10_000 - 100 - 4000) * 1000);
  assert.equal(delayFor(6000 * 1000, 10_000), 4000 + START_MS);
  assert.ok(closeEnough(10 * S, 10.5 * S, S, "nearest"));
  assert.ok(!closeEnough(10 * S, 11 * S, S, "nearest"));
  assert.ok(closeEnough(10 * S, 11 * S, S, "before"), "a group starting a second before");
  assert.ok(!closeEnough(11.5 * S, 11 * S, S, "before"), "not one starting after the point");
});

test("ranges: about two seconds of whole groups, within bounds", () => {
  assert.equal(rangeGroups(S), 2);
  assert.equal(rangeGroups(5 * S), 1);
  assert.equal(rangeGroups(100_000), MAX_RANGE_GROUPS);
  assert.equal(rangeGroups(0), MAX_RANGE_GROUPS);
});

test("next range: after the End Location (plus 1), never backwards", () => {
  const at = (group: number, object: number): Location => ({ group, object });
  assert.deepEqual(nextStart(at(10, 0), at(11, 0), 11), at(12, 0), "whole groups: the one after");
  assert.deepEqual(nextStart(at(10, 0), at(11, 7), 11), at(11, 7), "cut at the largest: its next object");
  assert.deepEqual(nextStart(at(10, 0), undefined, 11), at(12, 0));
  assert.deepEqual(nextStart(at(10, 5), at(10, 5), 11), at(12, 0), "no progress: past what was asked for");
  assert.deepEqual(nextStart(at(10, 0), at(3, 0), 11), at(12, 0), "backwards: ignored");
  assert.deepEqual(nextStart(at(10, 0), at(900, 0), 11), at(12, 0), "beyond what was asked for: ignored");
});

test("pacing: held until due within the lead", () => {
  // Due at 10 s (timestamp 6 s + delay 4 s).
  assert.equal(holdMs(6000 * 1000, 4000, 9000), 1000 - LEAD_MS);
  assert.equal(holdMs(6000 * 1000, 4000, 9600), 0);
  assert.equal(holdMs(6000 * 1000, 4000, 20_000), 0, "late: at once");
});

test("keys: j rewinds; the other shortcuts are unchanged", () => {
  assert.equal(keyAction({ key: "j" }), "rewind");
  assert.equal(keyAction({ key: "J" }), "rewind");
  assert.equal(keyAction({ key: "j", ctrlKey: true }), undefined);
  assert.equal(keyAction({ key: "l" }), "go-live");
});

// A scripted relay: group g starts at `t0 + g * 100 ms`; objects 0..2 of each group 33 ms apart.
const GROUP_MS = 100;

interface Script {
  /** The groups the relay holds, and its largest group. */
  oldest: number;
  largest: number;
  /** FETCHes asked: [start, end]. */
  asked: [Location, Location][];
  /** Entries read from ranges, and objects posted with the time they were posted. */
  reads: number;
  posts: { group: number; object: number; at: number; discontinuity: boolean; extra: boolean }[];
  clock: GroupClock;
}

function relay(t0: number, oldest: number, largest: number): { host: RewindHost; s: Script } {
  const s: Script = { oldest, largest, asked: [], reads: 0, posts: [], clock: new GroupClock() };
  const ts = (g: number, o: number) => (t0 + g * GROUP_MS + o * 33) * 1000;
  const host: RewindHost = {
    fetch: async (_track, start, end) => {
      s.asked.push([start, end]);
      if (start.group > s.largest)
        throw new RequestError(RequestErrorCode.INVALID_RANGE, "after the largest");
      const entries: FetchEntry[] = [];
      if (start.group < s.oldest)
        entries.push({ endOfRange: true, unknown: true, end: { group: s.oldest - 1, object: 0 } });
      const last = Math.min(end.group, s.largest);
      for (let g = Math.max(start.group, s.oldest); g <= last; g++)
        for (let o = g === start.group ? start.object : 0; o < 3; o++)
          entries.push({
            groupId: g,
            objectId: o,
            publisherPriority: 0,
            properties: new Properties(),
            payload: new Uint8Array([g, o]),
          });
      const range: Range = {
        next: async () => {
          const e = entries.shift();
          if (e) s.reads++;
          return e;
        },
        cancel: () => {
          entries.length = 0;
        },
        endLocation: end.group >= s.largest ? { group: s.largest, object: 3 } : end,
        complete: true,
      };
      return range;
    },
    largest: async () => ({ group: s.largest, object: 2 }),
    clock: () => s.clock,
    configure: () => {},
    convert: (_kind, _track, o: FetchObject) => ({
      timestampUs: ts(o.groupId, o.objectId),
      send: (discontinuity) =>
        s.posts.push({
          group: o.groupId,
          object: o.objectId,
          at: Date.now(),
          discontinuity,
          extra: o.payload[0] === 255,
        }),
    }),
    now: () => Date.now(),
  };
  return { host, s };
}

test("locate: a guess from the groups seen, corrected by the first object's time", async () => {
  const t0 = Date.now() - 10_000;
  const { host, s } = relay(t0, 0, 100);
  // Seen: group 90 at its real time, but the clock believes 1 s groups (one observation): a wrong first guess.
  s.clock.observe(90, (t0 + 90 * GROUP_MS) * 1000);
  const point = (t0 + 50 * GROUP_MS) * 1000;
  const at = await locate(host, "video", "v", point, "nearest", () => true);
  assert.equal(at.clamped, false);
  assert.ok(
    Math.abs(at.tsUs - point) <= GROUP_MS * 750,
    `started ${(at.tsUs - point) / 1000} ms from the point`,
  );
  assert.ok(s.asked.length >= 2, "a second guess");
  at.range.cancel();
});

test("locate: older than held starts at the oldest group, clamped", async () => {
  const t0 = Date.now() - 10_000;
  const { host, s } = relay(t0, 40, 100);
  s.clock.observe(90, (t0 + 90 * GROUP_MS) * 1000);
  s.clock.observe(100, (t0 + 100 * GROUP_MS) * 1000);
  const at = await locate(host, "video", "v", (t0 + 10 * GROUP_MS) * 1000, "nearest", () => true);
  assert.equal(at.clamped, true);
  assert.equal(at.tsUs, (t0 + 40 * GROUP_MS) * 1000, "the oldest group held");
  at.range.cancel();
});

test("locate: the relay has nothing: its refusal", async () => {
  const { host, s } = relay(Date.now(), 0, 10);
  s.largest = -1;
  await assert.rejects(
    locate(host, "video", "v", Date.now() * 1000, "nearest", () => true),
    RequestError,
  );
});

test("feed: objects posted when due within the lead, ranges fetched in turn, none read ahead", async () => {
  // Group 0 starts now - START_MS: with delay 0 ... every object is posted LEAD_MS before it is due.
  const now = Date.now();
  const t0 = now - 5000;
  const { host, s } = relay(t0, 0, 1000);
  const point = (t0 + 20 * GROUP_MS) * 1000;
  const at = await locate(host, "video", "v", point, "nearest", () => true);
  const delayMs = delayFor(at.tsUs, Date.now());
  const readBefore = s.reads;
  const askedBefore = s.asked.length;
  const feed = new Feed(host, "video", "v", () => delayMs, at);
  // Ten groups (about a second): objects from group 20 on, each posted LEAD_MS before its due time.
  const deadline = Date.now() + 3000;
  while (s.posts.length < 30 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  feed.stop();
  await feed.done;
  assert.ok(s.posts.length >= 30, `${s.posts.length} objects posted`);
  const first = s.posts[0];
  assert.deepEqual([first?.group, first?.object, first?.discontinuity], [20, 0, true]);
  for (const [i, p] of s.posts.entries()) {
    const due = t0 + p.group * GROUP_MS + p.object * 33 + delayMs;
    if (i > 0) assert.equal(p.discontinuity, false);
    // Never early by more than the lead (and a timer's slack), and not held past it.
    assert.ok(due - p.at <= LEAD_MS + 30, `object ${p.group}/${p.object} posted ${due - p.at} ms before due`);
  }
  // Held too long: posted less than the lead before due, although it was not due that soon when the feed began.
  const began = first?.at ?? 0;
  const dueOf = (p: { group: number; object: number }) => t0 + p.group * GROUP_MS + p.object * 33 + delayMs;
  const lateOnes = s.posts.filter((p) => dueOf(p) - began > LEAD_MS && dueOf(p) - p.at < LEAD_MS - 60);
  assert.ok(lateOnes.length <= 2, `${lateOnes.length} objects held too long`);
  // Read ahead at most one object beyond those posted (the first was read by locate).
  const read = s.reads - readBefore;
  assert.ok(read <= s.posts.length, `${read} read for ${s.posts.length} posted`);
  // The located range, then each one after the previous, of whole groups.
  const asked: [Location, Location][] = [
    [at.start, { group: at.askedLast, object: 0 }],
    ...s.asked.slice(askedBefore),
  ];
  // Posted groups' ranges, and at most one asked ahead.
  const n = rangeGroups(s.clock.durationUs);
  const groupsPosted = new Set(s.posts.map((p) => p.group)).size;
  assert.ok(asked.length >= 2 && asked.length <= Math.ceil(groupsPosted / n) + 2, `${asked.length} ranges`);
  for (let i = 1; i < asked.length; i++) {
    const [start, end] = asked[i] as [Location, Location];
    const [, prevEnd] = asked[i - 1] as [Location, Location];
    assert.deepEqual(start, { group: prevEnd.group + 1, object: 0 }, "each range after the previous one");
    assert.equal(end.group - start.group + 1, n);
  }
});

test("feed: caught up with the relay, the next range is asked again until it exists", async () => {
  const now = Date.now();
  const t0 = now - 2000;
  // Groups up to 19 exist (up to 100 ms ago); the feed plays 1.9 s behind.
  const { host, s } = relay(t0, 0, 19);
  const at = await locate(host, "video", "v", (t0 + 18 * GROUP_MS) * 1000, "nearest", () => true);
  const delayMs = delayFor(at.tsUs, Date.now());
  const feed = new Feed(host, "video", "v", () => delayMs, at);
  await new Promise((r) => setTimeout(r, RETRY_MS * 2 + 50));
  const refused = s.asked.filter(([a]) => a.group > 19).length;
  assert.ok(refused >= 1, "asked past the largest, refused");
  s.largest = 22;
  const deadline = Date.now() + 2000;
  while (!s.posts.some((p) => p.group === 22) && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 20));
  feed.stop();
  await feed.done;
  assert.ok(
    s.posts.some((p) => p.group === 22),
    "carries on once the relay has more",
  );
  // Asked again at most every RETRY_MS.
  assert.ok(refused <= 4, `${refused} refusals in ${RETRY_MS * 2} ms`);
});

test("feed: a relay failure ends it with the error; stop ends it quietly", async () => {
  const { host } = relay(Date.now() - 1000, 0, 100);
  const at = await locate(host, "video", "v", (Date.now() - 500) * 1000, "nearest", () => true);
  const failing: RewindHost = {
    ...host,
    fetch: async () => {
      throw new RequestError(RequestErrorCode.INTERNAL_ERROR, "gone");
    },
  };
  const feed = new Feed(failing, "video", "v", () => 0, at);
  await assert.rejects(feed.done, /gone/);
  const quiet = new Feed(
    host,
    "video",
    "v",
    () => 60_000,
    await locate(host, "video", "v", 0, "nearest", () => true),
  );
  quiet.stop();
  await quiet.done;
});

test("feed: objects beyond the range asked for end it; they are not played", async () => {
  const t0 = Date.now() - 1000;
  const { host, s } = relay(t0, 0, 1000);
  // Every range answers its groups, then objects of the group after them (marked 255).
  const generous: RewindHost = {
    ...host,
    fetch: async (track, start, end) => {
      const r = await host.fetch(track, start, end);
      const extra: FetchEntry[] = [0, 1, 2].map((o) => ({
        groupId: end.group + 1,
        objectId: o,
        publisherPriority: 0,
        properties: new Properties(),
        payload: new Uint8Array([255]),
      }));
      return { ...r, next: async () => (await r.next()) ?? extra.shift() };
    },
  };
  const at = await locate(generous, "video", "v", (t0 + 5 * GROUP_MS) * 1000, "nearest", () => true);
  const delayMs = delayFor(at.tsUs, Date.now());
  const feed = new Feed(generous, "video", "v", () => delayMs, at);
  const deadline = Date.now() + 2000;
  while (s.posts.length < 40 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  feed.stop();
  await feed.done;
  assert.ok(s.posts.length >= 40, `${s.posts.length} posted`);
  assert.deepEqual(
    s.posts.filter((p) => p.extra),
    [],
    "nothing from beyond an asked range",
  );
  // Played in order, each object once.
  for (let i = 1; i < s.posts.length; i++) {
    const a = s.posts[i - 1] as { group: number; object: number };
    const b = s.posts[i] as { group: number; object: number };
    assert.equal(
      b.group * 3 + b.object,
      a.group * 3 + a.object + 1,
      `${a.group}/${a.object} then ${b.group}/${b.object}`,
    );
  }
});
