// The chat's rules (chat/messages.ts): ids and names, what a participant posts, what the room carries, the room
// log's order, deduplication and removals, and posts refused or never seen. Hostile input and property tests
// are in security-chat.test.ts.

import assert from "node:assert/strict";
import { test } from "node:test";
import {
  ChatError,
  checkName,
  cleanText,
  DELIVERY_TIMEOUT_MS,
  decodeNotice,
  decodeRoomEntry,
  defaultName,
  encodeMute,
  encodePost,
  encodeRemove,
  newParticipantId,
  PendingPosts,
  RoomLog,
  type RoomMessage,
} from "../../src/chat/messages.ts";
import { text, utf8 } from "../../src/wire/index.ts";

const msg = (seq: number, id = "s1", t = `m${seq}`): RoomMessage => ({
  seq,
  id,
  name: "n",
  text: t,
  ts: 1,
});

test("namespace ids are 8 random lowercase hex characters; the default name follows", () => {
  const ids = new Set<string>();
  for (let i = 0; i < 100; i++) {
    const id = newParticipantId();
    assert.match(id, /^[0-9a-f]{8}$/);
    ids.add(id);
  }
  assert.ok(ids.size > 95, "random");
  assert.equal(defaultName("0123abcd"), "viewer-0123abcd");
});

test("names are 1-32 characters, trimmed, without control characters", () => {
  assert.equal(checkName("  ann "), "ann");
  assert.equal(checkName("é".repeat(32)), "é".repeat(32));
  assert.equal(checkName("😀".repeat(32)), "😀".repeat(32), "characters, not UTF-16 units");
  for (const bad of ["", "   ", "x".repeat(33), "a\u0007b", "a\nb", "a\u0085b", "a\ud800"])
    assert.throws(() => checkName(bad), ChatError);
});

test("a post is JSON {name, text}; text is trimmed, cleaned, and at most 500 bytes", () => {
  assert.deepEqual(JSON.parse(text(encodePost("ann", "  hi <b>there</b> "))), {
    name: "ann",
    text: "hi <b>there</b>",
  });
  assert.equal(cleanText("a\u0000b\nc\u001b"), "ab\nc");
  assert.ok(encodePost("ann", "x".repeat(500)));
  assert.throws(() => encodePost("ann", "x".repeat(501)), /501 bytes; at most 500/);
  // 167 three-byte characters are 501 bytes.
  assert.throws(() => encodePost("ann", "€".repeat(167)), /501 bytes/);
  assert.ok(encodePost("ann", "€".repeat(166)));
  assert.throws(() => encodePost("ann", "   "), /empty/);
  assert.throws(() => encodePost("", "hi"), ChatError);
});

test("moderation requests are JSON {name, mod, seq|id}", () => {
  assert.deepEqual(JSON.parse(text(encodeRemove(" streamer-tv ", 4))), {
    name: "streamer-tv",
    mod: "remove",
    seq: 4,
  });
  assert.deepEqual(JSON.parse(text(encodeMute("streamer-tv", "s12"))), {
    name: "streamer-tv",
    mod: "mute",
    id: "s12",
  });
  assert.throws(() => encodeRemove("s", -1), ChatError);
  assert.throws(() => encodeRemove("s", 1.5), ChatError);
  assert.throws(() => encodeMute("s", ""), ChatError);
  assert.throws(() => encodeMute("s", "s 1"), ChatError);
  assert.throws(() => encodeMute("s", "x".repeat(33)), ChatError);
});

test("room entries decode only when well formed: messages (with the streamer's role) and removals", () => {
  const good = { seq: 3, id: "s12", name: "ann", text: "hi", ts: 1700000000000 };
  const decode = (v: unknown) => decodeRoomEntry(utf8.encode(JSON.stringify(v)));
  assert.deepEqual(decode(good), good);
  assert.deepEqual(decode({ ...good, ts: undefined })?.ts, 0);
  assert.deepEqual(decode({ ...good, role: "streamer" }), { ...good, role: "streamer" });
  assert.deepEqual(decode({ ...good, role: "admin", extra: [1] }), good, "unknown role and fields ignored");
  assert.deepEqual(decode({ seq: 5, kind: "remove", target: 3, ts: 9 }), {
    seq: 5,
    kind: "remove",
    target: 3,
    ts: 9,
  });
  for (const bad of [
    "not json",
    "[]",
    "null",
    JSON.stringify({ ...good, seq: -1 }),
    JSON.stringify({ ...good, seq: 1.5 }),
    JSON.stringify({ ...good, seq: "3" }),
    JSON.stringify({ ...good, text: 5 }),
    JSON.stringify({ ...good, name: undefined }),
    JSON.stringify({ ...good, id: null }),
    JSON.stringify({ ...good, kind: "remove" }),
    JSON.stringify({ ...good, kind: "ban" }),
    JSON.stringify({ seq: 5, kind: "remove", target: 5 }),
    JSON.stringify({ seq: 5, kind: "remove", target: "3" }),
  ])
    assert.equal(decodeRoomEntry(utf8.encode(bad)), undefined, bad);
});

test("notices decode: our id, or a refusal with the post's group (or null)", () => {
  const decode = (v: unknown) => decodeNotice(utf8.encode(JSON.stringify(v)));
  assert.deepEqual(decode({ you: "s12" }), { you: "s12" });
  assert.deepEqual(decode({ refused: "rate limit: wait a moment", post: 3 }), {
    refused: "rate limit: wait a moment",
    post: 3,
  });
  assert.deepEqual(decode({ refused: "one chat participant per session and room", post: null }), {
    refused: "one chat participant per session and room",
    post: null,
  });
  assert.deepEqual(decode({ refused: "x" }), { refused: "x", post: null });
  for (const bad of [{}, { you: "" }, { you: 12 }, { refused: "x", post: -1 }, { refused: "", post: 1 }])
    assert.equal(decode(bad), undefined, JSON.stringify(bad));
});

test("the room log orders by seq and keeps each message once", () => {
  const log = new RoomLog();
  for (const s of [5, 3, 4, 9, 0]) assert.equal(log.add(msg(s)), true);
  assert.equal(log.add(msg(4)), false, "a duplicate (the subscription and the fetch overlap)");
  assert.deepEqual(
    log.messages.map((m) => m.seq),
    [0, 3, 4, 5, 9],
  );
});

test("the room log hides removed messages, whether the removal comes first or last, and never shows a removal", () => {
  const log = new RoomLog();
  for (const s of [0, 1, 2]) log.add(msg(s));
  assert.equal(log.add({ seq: 3, kind: "remove", target: 1, ts: 0 }), true);
  assert.equal(
    log.add({ seq: 3, kind: "remove", target: 1, ts: 0 }),
    false,
    "again (fetch and subscription)",
  );
  assert.equal(
    log.add({ seq: 6, kind: "remove", target: 5, ts: 0 }),
    false,
    "before its target: nothing shown changes",
  );
  assert.equal(log.add(msg(5)), false, "the target, after its removal");
  assert.equal(log.add(msg(1)), false, "a removed message delivered again");
  assert.equal(log.add(msg(4)), true);
  assert.deepEqual(
    log.messages.map((m) => m.seq),
    [0, 2, 4],
  );
  assert.ok(log.knows(1) && log.knows(5) && !log.knows(7));
});

test("the room log keeps the newest messages", () => {
  const log = new RoomLog(3);
  for (const s of [1, 2, 3, 4]) log.add(msg(s));
  assert.deepEqual(
    log.messages.map((m) => m.seq),
    [2, 3, 4],
  );
  assert.equal(log.add(msg(0)), false, "older than everything kept");
  assert.equal(log.add(msg(1)), false);
  assert.equal(log.add(msg(5)), true);
  assert.deepEqual(
    log.messages.map((m) => m.seq),
    [3, 4, 5],
  );
});

test("pending posts: refused by group on the current track only", () => {
  const p = new PendingPosts();
  const old = p.add("a", 0, 0, 0);
  const a = p.add("a", 0, 0, 1);
  const b = p.add("b", 0, 1, 1);
  assert.equal(p.refuse(1, 1), b);
  assert.equal(p.refuse(1, 1), undefined, "once");
  assert.equal(p.refuse(1, 0), a, "the group of this track, not the old track's group 0");
  assert.equal(p.refuse(2, 0), undefined);
  assert.equal(p.size, 1);
  assert.ok(old);
});

test("pending posts: confirmed in order by text; overdue after the delivery timeout", () => {
  const p = new PendingPosts();
  const a = p.add(" hi ", 0);
  const b = p.add("hi", 10);
  p.add("other", 20);
  assert.equal(p.confirm(msg(0, "x", "hi")), a, "the oldest with that text");
  assert.equal(p.confirm(msg(1, "x", "nope")), undefined);
  assert.deepEqual(p.overdue(DELIVERY_TIMEOUT_MS - 1), []);
  assert.deepEqual(
    p.overdue(DELIVERY_TIMEOUT_MS + 10).map((x) => x.text),
    ["hi"],
  );
  assert.equal(p.size, 1);
  assert.ok(b);
});
