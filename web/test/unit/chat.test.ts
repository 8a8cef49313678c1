// The chat's rules (chat/messages.ts): ids and names, what a participant posts, what the room carries, the room
// log's order and deduplication, and posts that never appear.

import assert from "node:assert/strict";
import { test } from "node:test";
import {
  ChatError,
  checkName,
  cleanText,
  DELIVERY_TIMEOUT_MS,
  decodeRoomMessage,
  defaultName,
  encodePost,
  newParticipantId,
  PendingPosts,
  RoomLog,
  type RoomMessage,
} from "../../src/chat/messages.ts";
import { text, utf8 } from "../../src/wire/index.ts";

const msg = (seq: number, id = "0000000a", t = `m${seq}`): RoomMessage => ({
  seq,
  id,
  name: "n",
  text: t,
  ts: 1,
});

test("participant ids are 8 lowercase hex characters; the default name follows", () => {
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
  for (const bad of ["", "   ", "x".repeat(33), "a\u0007b", "a\nb"])
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

test("room messages decode only when well formed", () => {
  const good = { seq: 3, id: "0123abcd", name: "ann", text: "hi", ts: 1700000000000 };
  assert.deepEqual(decodeRoomMessage(utf8.encode(JSON.stringify(good))), good);
  assert.deepEqual(decodeRoomMessage(utf8.encode(JSON.stringify({ ...good, ts: undefined })))?.ts, 0);
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
  ])
    assert.equal(decodeRoomMessage(utf8.encode(bad)), undefined, bad);
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
