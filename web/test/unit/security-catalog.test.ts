// The catalog from a publisher is hostile: checkCatalog (the one validating parser) against markup in every
// string field, control characters, huge, negative and non-numeric numbers, deep nesting, 10 000 tracks and
// wrong types; property tests (fast-check) that it never throws and that whatever it accepts is within the
// limits; and the channel list's use of it (titles, namespace parts).

import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { describeChannel, listedName } from "../../src/channels.ts";
import { type Catalog, CatalogError, parseCatalog } from "../../src/player/catalog.ts";
import { type CatalogResult, CHANNEL_FIELD, checkCatalog, LIMITS } from "../../src/player/catalog-check.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const check = (v: unknown) => checkCatalog(enc(JSON.stringify(v)));
const MARKUP = `"><img src=x onerror="window.__pwned=1"><script>window.__pwned=1</script>`;

const video = (extra: Record<string, unknown> = {}) => ({
  name: "video0",
  role: "video",
  packaging: "loc",
  codec: "avc1.42e01f",
  width: 640,
  height: 360,
  framerate: 30,
  bitrate: 400_000,
  ...extra,
});

function accepted(r: CatalogResult): Catalog {
  assert.ok(r.ok, r.ok ? "" : r.error);
  return r.catalog;
}

function refused(r: CatalogResult, why: RegExp): void {
  assert.ok(!r.ok, "accepted");
  assert.match(r.error, /^invalid catalog: /);
  assert.match(r.error, why);
}

/** The limits, checked independently of catalog-check.ts. */
function assertWithinLimits(c: Catalog): void {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it looks for
  const bad = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/;
  const lone = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
  const printable = (s: string) => !bad.test(s) && !lone.test(s);
  const inRange = (v: number | undefined, lo: number, hi: number, integer = true) =>
    v === undefined || (Number.isFinite(v) && v >= lo && v <= hi && (!integer || Number.isInteger(v)));
  assert.ok(c.tracks.length <= 64);
  assert.equal(new Set(c.tracks.map((t) => t.name)).size, c.tracks.length, "unique names");
  for (const t of c.tracks) {
    const bytes = enc(t.name).length;
    assert.ok(bytes >= 1 && bytes <= 256 && printable(t.name), `name ${JSON.stringify(t.name)}`);
    assert.match(t.codec, /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/);
    assert.match(t.role, /^[A-Za-z][A-Za-z0-9_-]{0,31}$/);
    assert.match(t.packaging, /^[A-Za-z][A-Za-z0-9_-]{0,31}$/);
    assert.ok(inRange(t.width, 1, 8192) && inRange(t.height, 1, 8192), "size");
    assert.ok(t.framerate === undefined || (t.framerate > 0 && t.framerate <= 240), "framerate");
    assert.ok(inRange(t.bitrate, 0, 1e9, false), "bitrate");
    assert.ok(inRange(t.samplerate, 1, 384_000), "samplerate");
    assert.ok(t.channelConfig === undefined || inRange(Number(t.channelConfig), 1, 32), "channels");
    assert.ok(inRange(t.timescale, 1, 2 ** 32 - 1) && inRange(t.altGroup, 0, 2 ** 32 - 1), "integers");
    assert.ok((t.init?.length ?? 0) <= 256 * 1024, "init data");
    if (t.label !== undefined) assert.ok([...t.label].length <= 256 && printable(t.label), "label");
    for (const part of t.namespace?.split("/") ?? [])
      assert.ok(part.length > 0 && enc(part).length <= 256 && printable(part), "namespace part");
  }
  if (c.title !== undefined) assert.ok([...c.title].length <= 256 && printable(c.title), "title");
}

test("markup in every string field: shown only as text, or the field is refused", () => {
  const hostile = {
    version: MARKUP,
    [CHANNEL_FIELD]: { title: `title${MARKUP}`, stamp: MARKUP },
    tracks: [
      // Printable markup is a valid name, label or namespace: the page shows it as text.
      video({ name: `video0${MARKUP}`, label: `label${MARKUP}`, namespace: `live/${MARKUP}` }),
      video({ name: "v-codec", codec: `avc1${MARKUP}` }),
      video({ name: "v-role", role: `video${MARKUP}` }),
      video({ name: "v-packaging", packaging: `loc${MARKUP}` }),
      video({ name: "v-ref", initRef: MARKUP }),
      video({ name: "v-init", initData: MARKUP }),
      video({ name: "v-channels", channelConfig: MARKUP }),
      video({ name: "v-width", width: MARKUP }),
    ],
    initDataList: [{ id: MARKUP, type: MARKUP, data: MARKUP }],
  };
  const r = check(hostile);
  const c = accepted(r);
  assert.deepEqual(
    c.tracks.map((t) => [t.name, t.label, t.namespace]),
    [[`video0${MARKUP}`, `label${MARKUP}`, `live/${MARKUP}`]],
  );
  assert.equal(c.title, `title${MARKUP}`);
  assert.equal(c.stamped, false);
  assert.ok(r.ok && r.warnings.length === 7, JSON.stringify(r.ok && r.warnings));
  // Errors and warnings never repeat what the publisher sent.
  for (const w of r.ok ? r.warnings : []) assert.doesNotMatch(w, /[<>"]/);
  assertWithinLimits(c);
});

test("control characters, bidi overrides and lone surrogates are not printable", () => {
  for (const bad of [
    "a\u0000b",
    "a\nb",
    "a\u007fb",
    "a\u0085b",
    "a\u2028b",
    "a\u202eb",
    "a\u2067b",
    "\ud800",
  ]) {
    const r = check({ tracks: [video(), video({ name: bad })], [CHANNEL_FIELD]: { title: bad } });
    const c = accepted(r);
    assert.deepEqual(
      c.tracks.map((t) => t.name),
      ["video0"],
      JSON.stringify(bad),
    );
    assert.equal(c.title, undefined);
    assert.equal(r.ok && r.warnings.length, 2);
    refused(check({ tracks: [video({ label: bad })] }), /no valid track \(track 0 dropped: label/);
  }
  // Letters of any script and emoji are printable.
  const c = accepted(
    check({ tracks: [video({ name: "видео 📺 ✓" })], [CHANNEL_FIELD]: { title: "Ünïcødé 🎥" } }),
  );
  assert.equal(c.tracks[0]?.name, "видео 📺 ✓");
  assert.equal(c.title, "Ünïcødé 🎥");
});

test("numbers: huge, negative, zero, fractional, NaN-like strings are refused; the limits are inclusive", () => {
  const cases: [string, unknown[], unknown[]][] = [
    ["width", [1, 8192], [0, -1, 8193, 1.5, 1e308, "640", "NaN", null, true, [640], { v: 640 }]],
    ["height", [1, 8192], [0, 8193, -360, "Infinity"]],
    ["framerate", [0.001, 29.97, 240], [0, -30, 240.001, "30", 1e9]],
    ["bitrate", [0, 1e9, 1.5], [-1, 1e9 + 1, "1e3", 1e300]],
    ["samplerate", [1, 48_000, 384_000], [0, 384_001, 44_100.5, "48000"]],
    ["channelConfig", [1, 32, "2", "32"], [0, 33, "0", "33", "2.0", " 2", "stereo", "", -2]],
    ["timescale", [1, 90_000, 2 ** 32 - 1], [0, 2 ** 32, 1.5]],
    ["altGroup", [0, 1, 2 ** 32 - 1], [-1, 2 ** 32, "1"]],
    ["renderGroup", [0, 7], [-7, 0.5]],
  ];
  for (const [field, good, bad] of cases) {
    for (const v of good) {
      const c = accepted(check({ tracks: [video({ [field]: v })] }));
      assert.equal(c.tracks.length, 1, `${field} ${JSON.stringify(v)} refused`);
      assertWithinLimits(c);
    }
    for (const v of bad) {
      const r = check({ tracks: [video(), video({ name: "bad", [field]: v })] });
      assert.deepEqual(
        accepted(r).tracks.map((t) => t.name),
        ["video0"],
        `${field} ${JSON.stringify(v)} accepted`,
      );
      assert.match(r.ok ? (r.warnings[0] ?? "") : "", new RegExp(`track 1 dropped: ${field}`));
    }
  }
  // 1e999 is Infinity once parsed: not a width either.
  const inf = checkCatalog(
    enc(
      `{"tracks":[${JSON.stringify(video())},${JSON.stringify(video({ name: "x" })).replace('"width":640', '"width":1e999')}]}`,
    ),
  );
  assert.equal(accepted(inf).tracks.length, 1);
});

test("sizes: names in UTF-8 bytes, titles and labels in characters, init data decoded", () => {
  const name = (s: string) =>
    accepted(check({ tracks: [video({ name: "base" }), video({ name: s })] })).tracks.length - 1;
  assert.equal(name("n".repeat(256)), 1);
  assert.equal(name("n".repeat(257)), 0);
  assert.equal(name("€".repeat(85)), 1, "255 bytes");
  assert.equal(name("€".repeat(86)), 0, "258 bytes");
  assert.equal(name(""), 0);
  const title = (s: string) => accepted(check({ tracks: [], [CHANNEL_FIELD]: { title: s } })).title;
  assert.equal(title("🎥".repeat(256)), "🎥".repeat(256), "256 characters, 512 UTF-16 units");
  assert.equal(title("t".repeat(257)), undefined);
  assert.equal(title(""), undefined);
  const label = (s: string) => accepted(check({ tracks: [video(), video({ name: "l", label: s })] })).tracks;
  assert.equal(label("l".repeat(256)).length, 2);
  assert.equal(label("l".repeat(257)).length, 1);

  const b64 = (n: number) => Buffer.alloc(n, 7).toString("base64");
  const inline = (n: number) =>
    accepted(check({ tracks: [video(), video({ name: "i", initData: b64(n) })] }));
  assert.equal(inline(256 * 1024).tracks[1]?.init?.length, 256 * 1024);
  assert.equal(inline(256 * 1024 + 1).tracks.length, 1);
  const list = (n: number) =>
    check({ tracks: [video({ initRef: "a" })], initDataList: [{ id: "a", data: b64(n) }] });
  assert.equal(accepted(list(256 * 1024)).tracks[0]?.init?.length, 256 * 1024);
  refused(list(256 * 1024 + 1), /initDataList entry 0 is not base64 of at most 256 KiB/);
  refused(check({ tracks: [], initDataList: [{ id: "a", data: "AA=A" }] }), /initDataList entry 0/);
  assert.deepEqual(
    [...(accepted(check({ tracks: [video({ initData: "AAE" })] })).tracks[0]?.init ?? [])],
    [0, 1],
  );
  refused(checkCatalog(new Uint8Array(LIMITS.catalogBytes + 1).fill(0x20)), /larger than 4 MiB/);
  refused(checkCatalog(new Uint8Array([0x7b, 0xff, 0x7d])), /not UTF-8/);
});

test("deep nesting, 10 000 tracks, too many init entries: refused as a whole", () => {
  const nested = (n: number) => `{"tracks":[],"x":${"[".repeat(n)}${"]".repeat(n)}}`;
  assert.ok(checkCatalog(enc(nested(31))).ok, "32 levels");
  refused(checkCatalog(enc(nested(32))), /nested deeper than 32/);
  refused(checkCatalog(enc(nested(100_000))), /nested deeper than 32/);
  // Brackets inside strings are not nesting.
  assert.ok(checkCatalog(enc(JSON.stringify({ tracks: [], x: "[".repeat(1000), y: '\\"[{' }))).ok);

  const many = (n: number) =>
    check({ tracks: Array.from({ length: n }, (_, i) => video({ name: `v${i}` })) });
  assert.equal(accepted(many(64)).tracks.length, 64);
  refused(many(65), /more than 64 tracks \(65\)/);
  const t0 = performance.now();
  refused(many(10_000), /more than 64 tracks \(10000\)/);
  assert.ok(performance.now() - t0 < 1000, "quickly");
  refused(
    check({ tracks: [], initDataList: Array.from({ length: 129 }, (_, i) => ({ id: `${i}`, data: "" })) }),
    /128/,
  );
});

test("wrong types: refused, dropped or ignored as documented", () => {
  for (const root of [[], "x", 7, null, true]) refused(check(root), /not a JSON object/);
  refused(checkCatalog(enc("{")), /not JSON/);
  refused(check({ deltaUpdate: [] }), /delta/);
  // A root field of the wrong type counts as absent.
  const c = accepted(
    check({ tracks: { 0: video() }, isComplete: "true", initDataList: 5, [CHANNEL_FIELD]: [1] }),
  );
  assert.deepEqual(c, { tracks: [], complete: false, stamped: false });
  // A track of the wrong shape is dropped; if none is left, the catalog is refused.
  const tracks = [
    null,
    7,
    "video0",
    [video()],
    { name: 7, codec: "opus" },
    { name: "a", codec: ["opus"] },
    { name: "b" },
  ];
  const r = check({ tracks: [...tracks, video()] });
  assert.equal(accepted(r).tracks.length, 1);
  assert.equal(r.ok && r.warnings.length, tracks.length);
  refused(check({ tracks }), /no valid track \(track 0 dropped: not an object\)/);
  // Duplicate names: the first wins.
  const d = accepted(check({ tracks: [video({ width: 320 }), video({ width: 1280 })] }));
  assert.deepEqual(
    d.tracks.map((t) => t.width),
    [320],
  );
  // Unknown fields, including __proto__, are ignored.
  const u = checkCatalog(
    enc(
      `{"tracks":[{"name":"v","codec":"vp09.00.31.08","width":1,"__proto__":{"codec":"<x>"},"onerror":"x"}]}`,
    ),
  );
  assert.deepEqual(accepted(u).tracks, [
    { name: "v", codec: "vp09.00.31.08", role: "video", packaging: "loc", width: 1 },
  ]);
});

test("codec strings: what the publishers write passes, anything else does not", () => {
  for (const codec of [
    "avc1.42e01f",
    "avc3.640028",
    "opus",
    "mp4a.40.2",
    "vp09.00.31.08",
    "av01.0.08M.08",
    "hev1.1.6.L93.B0",
    "vp8",
  ])
    assert.equal(accepted(check({ tracks: [video({ codec })] })).tracks.length, 1, codec);
  for (const codec of [
    "",
    ".avc1",
    "avc1 42e01f",
    "avc1,opus",
    "a".repeat(65),
    "avc1.42e01f\n",
    "<b>",
    "vp09.00.31.08;x=1",
    1,
  ])
    refused(check({ tracks: [video({ codec })] }), /no valid track/);
});

test("parseCatalog: a CatalogError with the same message, warnings to the console", () => {
  assert.throws(
    () => parseCatalog(enc("[]")),
    (e) => e instanceof CatalogError && e.message === "invalid catalog: not a JSON object",
  );
  const warned: string[] = [];
  const warn = console.warn;
  console.warn = (m: string) => warned.push(m);
  try {
    parseCatalog(enc(JSON.stringify({ tracks: [video(), video({ name: "x", width: -1 })] })));
  } finally {
    console.warn = warn;
  }
  assert.deepEqual(warned, ["catalog: track 1 dropped: width out of range"]);
});

test("the channel list: titles and namespace parts through the same checks", () => {
  const payload = (v: unknown) => enc(JSON.stringify(v));
  assert.deepEqual(describeChannel(payload({ tracks: [video()], [CHANNEL_FIELD]: { title: MARKUP } })), {
    title: MARKUP,
    details: "360p · H.264",
    complete: false,
  });
  assert.equal(
    describeChannel(payload({ tracks: [video()], [CHANNEL_FIELD]: { title: "a\u0000" } })).title,
    undefined,
  );
  assert.equal(
    describeChannel(payload({ tracks: [video({ codec: "constructor" })] })).details,
    "360p · constructor",
  );
  assert.throws(() => describeChannel(payload({ tracks: [video({ codec: MARKUP })] })), CatalogError);
  const ns = (...parts: (string | Uint8Array)[]) => parts.map((p) => (typeof p === "string" ? enc(p) : p));
  const img = `x"><img src=x onerror="window.__pwned=1">`;
  assert.equal(listedName(ns("live", img)), `live/${img}`);
  assert.equal(listedName(ns("live", "a\u0007")), undefined);
  assert.equal(listedName(ns("live", "x".repeat(257))), undefined);
  assert.equal(listedName(ns("live", new Uint8Array([0xc3]))), undefined, "not UTF-8");
  assert.equal(listedName(ns("live", "a/b")), undefined, "a part with a slash");
  assert.equal(listedName(ns()), undefined);
});

// Property tests: random JSON, catalog-shaped values with hostile fields, random bytes.

const hostileString = fc.oneof(
  fc.string({ unit: "binary", maxLength: 300 }),
  fc.constantFrom(
    MARKUP,
    "a\u0000",
    "\ud800",
    "\u202e",
    "NaN",
    "Infinity",
    "-1",
    "1e999",
    "__proto__",
    "constructor",
  ),
  fc.string({ unit: "grapheme", minLength: 250, maxLength: 270 }),
);
const hostileNumber = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.constantFrom(0, -1, 1, 32, 33, 240, 241, 8192, 8193, 384_000, 384_001, 1e9, 1e9 + 1, 2 ** 53, -0),
);
const anyValue = fc.oneof(
  hostileString,
  hostileNumber,
  fc.jsonValue({ maxDepth: 3 }),
  fc.boolean(),
  fc.constant(null),
);
const fieldValue = (good: fc.Arbitrary<unknown>) =>
  fc.oneof({ weight: 3, arbitrary: good }, { weight: 1, arbitrary: anyValue });
const trackArb = fc.record(
  {
    name: fieldValue(fc.string({ minLength: 1, maxLength: 20 })),
    codec: fieldValue(fc.constantFrom("avc1.42e01f", "opus", "mp4a.40.2", "vp09.00.31.08", "av01.0.08M.08")),
    role: fieldValue(fc.constantFrom("video", "audio")),
    packaging: fieldValue(fc.constantFrom("loc", "cmaf")),
    width: fieldValue(fc.integer({ min: 1, max: 8192 })),
    height: fieldValue(fc.integer({ min: 1, max: 8192 })),
    framerate: fieldValue(fc.double({ min: 0.5, max: 240, noNaN: true })),
    bitrate: fieldValue(fc.integer({ min: 0, max: 1e9 })),
    samplerate: fieldValue(fc.constantFrom(8000, 48_000)),
    channelConfig: fieldValue(fc.constantFrom("1", "2", 6)),
    label: fieldValue(fc.string({ maxLength: 40 })),
    namespace: fieldValue(fc.constantFrom("live/a", "demo/clip")),
    initData: fieldValue(fc.base64String({ maxLength: 64 })),
    initRef: fieldValue(fc.constantFrom("i0", "i1")),
    extra: anyValue,
  },
  { requiredKeys: [] },
);
const catalogArb = fc.record(
  {
    tracks: fc.oneof(
      { weight: 5, arbitrary: fc.array(trackArb, { maxLength: 70 }) },
      { weight: 1, arbitrary: anyValue },
    ),
    initDataList: fc.array(
      fc.record({
        id: fieldValue(fc.constantFrom("i0", "i1")),
        data: fieldValue(fc.base64String({ maxLength: 64 })),
      }),
      {
        maxLength: 3,
      },
    ),
    isComplete: anyValue,
    [CHANNEL_FIELD]: fc.record(
      { title: fieldValue(fc.string({ maxLength: 40 })), stamp: anyValue },
      { requiredKeys: [] },
    ),
  },
  { requiredKeys: [] },
);

function neverThrowsAndWithinLimits(bytes: Uint8Array): boolean {
  const r = checkCatalog(bytes); // a throw fails the property
  if (r.ok) assertWithinLimits(r.catalog);
  else assert.match(r.error, /^invalid catalog: [^<>]*$/);
  return r.ok;
}

test("property: random JSON values never throw; whatever is accepted is within the limits", () => {
  fc.assert(
    fc.property(fc.jsonValue({ maxDepth: 6 }), (v) => {
      neverThrowsAndWithinLimits(enc(JSON.stringify(v) ?? "null"));
    }),
    { numRuns: 2000 },
  );
});

test("property: catalog-shaped values with hostile fields never throw; accepted ones are within the limits", () => {
  let accepts = 0;
  fc.assert(
    fc.property(catalogArb, (v) => {
      if (neverThrowsAndWithinLimits(enc(JSON.stringify(v)))) accepts++;
    }),
    { numRuns: 2000 },
  );
  assert.ok(accepts > 200, `only ${accepts} accepted: the generator misses valid catalogs`);
});

test("property: random bytes never throw", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
      neverThrowsAndWithinLimits(b);
    }),
    { numRuns: 2000 },
  );
});
