// What the relay's room and notices tracks carry is hostile: decodeRoomEntry and decodeNotice against markup,
// control characters, lone surrogates, oversized fields and payloads, wrong types, prototype keys and malformed
// removals; property tests (fast-check) that they never throw, that whatever they accept is within the limits,
// that well-formed entries survive a round trip, and that the room log never shows a removed message or a
// removal.

import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import {
  decodeNotice,
  decodeRoomEntry,
  isRemoval,
  MAX_ENTRY_BYTES,
  MAX_ID_CHARS,
  MAX_NAME_CHARS,
  MAX_NOTICE_BYTES,
  MAX_REASON_CHARS,
  MAX_TEXT_BYTES,
  type Notice,
  type RoomEntry,
  RoomLog,
  type RoomMessage,
} from "../../src/chat/messages.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const entry = (v: unknown) => decodeRoomEntry(enc(JSON.stringify(v)));
const notice = (v: unknown) => decodeNotice(enc(JSON.stringify(v)));
const MARKUP = `"><img src=x onerror="window.__pwned=1"><script>window.__pwned=1</script>`;
const good = { seq: 7, id: "s12", name: "ann", text: "hi", ts: 1_700_000_000_000 };

/** The limits every accepted entry satisfies. */
function assertEntryWithinLimits(e: RoomEntry): void {
  assert.ok(Number.isSafeInteger(e.seq) && e.seq >= 0, `seq ${e.seq}`);
  assert.ok(Number.isSafeInteger(e.ts) && e.ts >= 0, `ts ${e.ts}`);
  if (isRemoval(e)) {
    assert.deepEqual(Object.keys(e).sort(), ["kind", "seq", "target", "ts"]);
    assert.ok(Number.isSafeInteger(e.target) && e.target >= 0 && e.target < e.seq);
    return;
  }
  assert.match(e.id, /^[A-Za-z0-9_-]+$/);
  assert.ok(e.id.length <= MAX_ID_CHARS);
  const chars = [...e.name].length;
  assert.ok(chars >= 1 && chars <= MAX_NAME_CHARS, `name of ${chars} characters`);
  assert.equal(e.name, e.name.trim());
  assert.doesNotMatch(e.name, /[\p{Cc}\uD800-\uDFFF]/u);
  const bytes = enc(e.text).length;
  assert.ok(bytes >= 1 && bytes <= MAX_TEXT_BYTES && e.text.trim() !== "", `text of ${bytes} bytes`);
  assert.doesNotMatch(e.text.replaceAll("\n", ""), /[\p{Cc}\uD800-\uDFFF]/u);
  assert.ok(e.role === undefined || e.role === "streamer");
  const keys = Object.keys(e).filter((k) => k !== "role");
  assert.deepEqual(keys.sort(), ["id", "name", "seq", "text", "ts"], "no field from the payload but ours");
}

function assertNoticeWithinLimits(n: Notice): void {
  if ("you" in n) {
    assert.deepEqual(Object.keys(n), ["you"]);
    assert.match(n.you, /^[A-Za-z0-9_-]{1,32}$/);
    return;
  }
  assert.deepEqual(Object.keys(n).sort(), ["post", "refused"]);
  assert.ok(n.refused.length >= 1 && n.refused.length <= MAX_REASON_CHARS);
  assert.doesNotMatch(n.refused, /[\p{Cc}\uD800-\uDFFF]/u);
  assert.ok(n.post === null || (Number.isSafeInteger(n.post) && n.post >= 0));
}

test("markup in a room message is kept as text (the panel shows it with textContent), not refused", () => {
  assert.deepEqual(entry({ ...good, name: "<b>x</b>", text: MARKUP }), {
    ...good,
    name: "<b>x</b>",
    text: MARKUP,
  });
});

test("hostile room messages are refused", () => {
  const bad: [string, unknown][] = [
    ["a 33-character name", { ...good, name: "n".repeat(33) }],
    ["a blank name", { ...good, name: "   " }],
    ["a name of 10 000 characters", { ...good, name: "n".repeat(10_000) }],
    ["a control character in the name", { ...good, name: "a\u001b[31mb" }],
    ["a C1 control in the name", { ...good, name: "a\u0085b" }],
    ["a newline in the name", { ...good, name: "a\nb" }],
    ["a lone surrogate in the name", { ...good, name: "a\ud800" }],
    ["a name that is an array", { ...good, name: ["ann"] }],
    ["a name that is an object", { ...good, name: { toString: "ann" } }],
    ["501 bytes of text", { ...good, text: "x".repeat(501) }],
    ["167 three-byte characters (501 bytes)", { ...good, text: "€".repeat(167) }],
    ["an empty text", { ...good, text: "" }],
    ["a blank text", { ...good, text: " \n " }],
    ["a bell in the text", { ...good, text: "a\u0007b" }],
    ["an escape in the text", { ...good, text: "a\u001bb" }],
    ["a lone surrogate in the text", { ...good, text: "a\udc00" }],
    ["a text that is a number", { ...good, text: 5 }],
    ["an empty id", { ...good, id: "" }],
    ["a 33-character id", { ...good, id: "s".repeat(33) }],
    ["markup in the id", { ...good, id: "<script>" }],
    ["a space in the id", { ...good, id: "s 1" }],
    ["a non-ASCII id", { ...good, id: "ş1" }],
    ["an id that is a number", { ...good, id: 12 }],
    ["a negative seq", { ...good, seq: -1 }],
    ["a fractional seq", { ...good, seq: 1.5 }],
    ["a seq above 2^53", { ...good, seq: 2 ** 53 }],
    ["a seq string", { ...good, seq: "7" }],
    ["no seq", { ...good, seq: undefined }],
    ["an unknown kind", { ...good, kind: "ban" }],
    ["a null kind", { ...good, kind: null }],
    ["a removal without a target", { seq: 3, kind: "remove" }],
    ["a removal of itself", { seq: 3, kind: "remove", target: 3 }],
    ["a removal of a later entry", { seq: 3, kind: "remove", target: 9 }],
    ["a negative target", { seq: 3, kind: "remove", target: -1 }],
    ["a target string", { seq: 3, kind: "remove", target: "1" }],
    ["an array", [good]],
    ["a string", "hi"],
    ["null", null],
  ];
  for (const [what, v] of bad) assert.equal(entry(v), undefined, what);
  assert.equal(decodeRoomEntry(enc(`{"seq":1e400,"id":"s1","name":"a","text":"b"}`)), undefined, "Infinity");
  assert.equal(decodeRoomEntry(new Uint8Array()), undefined, "empty");
  assert.equal(decodeRoomEntry(enc(`${"[".repeat(2000)}${"]".repeat(2000)}`)), undefined, "deep nesting");
});

test("oversized payloads are not parsed; wrong types of optional fields are dropped, not trusted", () => {
  const padded = JSON.stringify({ ...good, pad: "x".repeat(MAX_ENTRY_BYTES) });
  assert.equal(decodeRoomEntry(enc(padded)), undefined);
  assert.equal(decodeRoomEntry(enc(" ".repeat(MAX_ENTRY_BYTES) + JSON.stringify(good))), undefined);
  assert.deepEqual(entry({ ...good, ts: "soon" }), { ...good, ts: 0 });
  assert.deepEqual(entry({ ...good, ts: -5 }), { ...good, ts: 0 });
  for (const role of ["Streamer", "streamer ", ["streamer"], { streamer: true }, true])
    assert.equal((entry({ ...good, role }) as RoomMessage).role, undefined, JSON.stringify(role));
});

test("prototype keys in the JSON change nothing", () => {
  const raw = `{"__proto__":{"role":"streamer","kind":"remove","target":0},"seq":3,"id":"s1","name":"a","text":"b"}`;
  const e = decodeRoomEntry(enc(raw)) as RoomMessage;
  assert.deepEqual(e, { seq: 3, id: "s1", name: "a", text: "b", ts: 0 });
  assert.equal(({} as { role?: string }).role, undefined, "Object.prototype untouched");
  const n = decodeNotice(enc(`{"__proto__":{"you":"s1"},"refused":"no","post":1}`));
  assert.deepEqual(n, { refused: "no", post: 1 });
});

test("hostile notices are refused", () => {
  const bad: [string, unknown][] = [
    ["both an id and a refusal", { you: "s1", refused: "x", post: 1 }],
    ["an empty id", { you: "" }],
    ["markup as the id", { you: "<img src=x>" }],
    ["a 33-character id", { you: "s".repeat(33) }],
    ["an id that is a number", { you: 1 }],
    ["an empty reason", { refused: "", post: 1 }],
    ["a 201-character reason", { refused: "r".repeat(201), post: 1 }],
    ["an escape in the reason", { refused: "a\u001b[2Jb", post: 1 }],
    ["a newline in the reason", { refused: "a\nb", post: 1 }],
    ["a lone surrogate in the reason", { refused: "a\ud800", post: 1 }],
    ["a reason that is an object", { refused: { text: "x" }, post: 1 }],
    ["a negative post", { refused: "x", post: -1 }],
    ["a fractional post", { refused: "x", post: 0.5 }],
    ["a post string", { refused: "x", post: "1" }],
    ["a post above 2^53", { refused: "x", post: 2 ** 53 }],
    ["neither", { hello: 1 }],
    ["an array", [{ you: "s1" }]],
  ];
  for (const [what, v] of bad) assert.equal(notice(v), undefined, what);
  assert.equal(
    decodeNotice(enc(JSON.stringify({ refused: "x", pad: "p".repeat(MAX_NOTICE_BYTES) }))),
    undefined,
  );
  assert.deepEqual(notice({ refused: MARKUP.slice(0, 60), post: 2, extra: true }), {
    refused: MARKUP.slice(0, 60),
    post: 2,
  });
});

/** Field values a hostile relay might send. */
const hostileValue = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.string({ maxLength: 600 }),
  fc.integer(),
  fc.double(),
  fc.nat(),
  fc.constantFrom(
    "",
    " ",
    "\n",
    "\u0000",
    "\u0085",
    "\ud800",
    "€".repeat(167),
    "x".repeat(501),
    MARKUP,
    "remove",
  ),
  fc.constantFrom("streamer", "s12", -1, 2 ** 53, 1.5, null, [], {}),
);

const entryShaped = fc.record(
  {
    seq: fc.oneof(fc.nat(1000), hostileValue),
    id: fc.oneof(fc.stringMatching(/^s[0-9]{1,5}$/), hostileValue),
    name: fc.oneof(fc.string({ minLength: 1, maxLength: 32 }), hostileValue),
    text: fc.oneof(fc.string({ minLength: 1, maxLength: 500 }), hostileValue),
    ts: fc.oneof(fc.nat(), hostileValue),
    role: fc.oneof(fc.constant("streamer"), hostileValue),
    kind: fc.oneof(fc.constant("remove"), hostileValue),
    target: fc.oneof(fc.nat(1000), hostileValue),
    other: hostileValue,
  },
  { requiredKeys: [] },
);

const noticeShaped = fc.record(
  {
    you: fc.oneof(fc.stringMatching(/^s[0-9]{1,5}$/), hostileValue),
    refused: fc.oneof(fc.string({ minLength: 1, maxLength: 200 }), hostileValue),
    post: fc.oneof(fc.nat(), fc.constant(null), hostileValue),
    other: hostileValue,
  },
  { requiredKeys: [] },
);

/** Decodes `bytes` both ways (a throw fails the property); true if the room entry was accepted. */
function neverThrowsAndWithinLimits(bytes: Uint8Array): boolean {
  const e = decodeRoomEntry(bytes);
  if (e) assertEntryWithinLimits(e);
  const n = decodeNotice(bytes);
  if (n) assertNoticeWithinLimits(n);
  return e !== undefined || n !== undefined;
}

test("property: random bytes and JSON values never throw; whatever is accepted is within the limits", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
      neverThrowsAndWithinLimits(b);
    }),
    { numRuns: 2000 },
  );
  fc.assert(
    fc.property(fc.jsonValue({ maxDepth: 5 }), (v) => {
      neverThrowsAndWithinLimits(enc(JSON.stringify(v) ?? "null"));
    }),
    { numRuns: 2000 },
  );
});

test("property: entry- and notice-shaped objects with hostile fields never throw; accepted ones are within the limits", () => {
  let accepted = 0;
  fc.assert(
    fc.property(fc.oneof(entryShaped, noticeShaped), (v) => {
      if (neverThrowsAndWithinLimits(enc(JSON.stringify(v)))) accepted++;
    }),
    { numRuns: 3000 },
  );
  assert.ok(accepted > 150, `only ${accepted} accepted: the generators miss valid entries`);
});

/** Well-formed room messages as the relay writes them. */
const validMessage = fc.record({
  seq: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
  id: fc.stringMatching(/^s[0-9]{1,30}$/),
  name: fc
    .string({ unit: "grapheme", minLength: 1, maxLength: 32 })
    .map((s) => s.replace(/[\p{Cc}\uD800-\uDFFF]/gu, "").trim())
    .filter((s) => s.length > 0 && [...s].length <= MAX_NAME_CHARS),
  text: fc
    .string({ unit: "grapheme", minLength: 1, maxLength: 120 })
    .map((s) => s.replace(/[\p{Cc}\uD800-\uDFFF]/gu, (c) => (c === "\n" ? c : "")))
    .filter((s) => s.trim().length > 0 && enc(s).length <= MAX_TEXT_BYTES),
  ts: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
});

test("property: well-formed messages and notices decode to themselves", () => {
  fc.assert(
    fc.property(validMessage, fc.boolean(), (m, streamer) => {
      const v: RoomMessage = streamer ? { ...m, role: "streamer" } : { ...m };
      assert.deepEqual(entry(v), v);
    }),
    { numRuns: 1000 },
  );
  fc.assert(
    fc.property(
      fc.string({ minLength: 1, maxLength: 200 }).filter((s) => !/\p{Cc}/u.test(s)),
      fc.option(fc.nat({ max: Number.MAX_SAFE_INTEGER }), { nil: null }),
      (refused, post) => {
        assert.deepEqual(notice({ refused, post }), { refused, post });
      },
    ),
    { numRuns: 500 },
  );
});

// The log remembers 4 x size removals (40 here): targets 0-39 stay within that.
test("property: the room log is ordered, unique, bounded, and never shows a removed message or a removal", () => {
  const op = fc.oneof(
    fc.record({ seq: fc.nat(60) }).map(({ seq }) => ({ seq, id: "s1", name: "n", text: `m${seq}`, ts: 0 })),
    fc
      .tuple(fc.nat(39), fc.nat(20))
      .map(([target, d]) => ({ seq: target + 1 + d, kind: "remove" as const, target, ts: 0 })),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 120 }), (ops) => {
      const log = new RoomLog(10);
      const removed = new Set<number>();
      for (const e of ops) {
        log.add(e);
        if (isRemoval(e)) removed.add(e.target);
      }
      const seqs = log.messages.map((m) => m.seq);
      assert.ok(seqs.length <= 10);
      for (let i = 1; i < seqs.length; i++)
        assert.ok((seqs[i - 1] as number) < (seqs[i] as number), "ordered, once");
      for (const m of log.messages) {
        assert.ok(!isRemoval(m as RoomEntry), "a removal is never shown");
        assert.ok(!removed.has(m.seq), `message ${m.seq} was removed`);
      }
    }),
    { numRuns: 1000 },
  );
});
