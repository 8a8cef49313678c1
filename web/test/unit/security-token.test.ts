// Tokens out of URLs: the client's SETUP carries the JWT as an AUTHORIZATION TOKEN Setup Option (draft-19 and -18
// §setup-auth-token: Option Type 0x03; Token {Alias Type 0x3 USE_VALUE, Token Type 0, Token Value}), checked
// byte for byte against the drafts' layout; the WebTransport URL carries no token unless `tokenInUrl` asks for it;
// pages take the token from the fragment only, and a remembered token goes to its own origin only.

import assert from "node:assert/strict";
import { test } from "node:test";
import { IMPLEMENTATION, Session, setupOptions } from "../../src/client/session.ts";
import {
  originOf,
  rememberedToken,
  rememberToken,
  sameOrigin,
  splitFragmentToken,
  withoutQueryToken,
} from "../../src/client/token.ts";
import { decodeControl, encodeControl, type Version } from "../../src/wire/index.ts";

const JWT = "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjF9.c2ln";
const ascii = (s: string) => [...s].map((c) => c.charCodeAt(0));

/** SETUP as the drafts lay it out, written out by hand (not with the codec under test). */
function expectedSetup(token: string): number[] {
  const tokenValue = [0x03, 0x00, ...ascii(token)]; // Alias Type USE_VALUE, Token Type 0, Token Value
  assert.ok(tokenValue.length < 128 && IMPLEMENTATION.length < 128, "one-byte lengths below");
  const body = [
    0x03, // Delta Type: 3, AUTHORIZATION TOKEN (odd: a Length and bytes follow)
    tokenValue.length,
    ...tokenValue,
    0x04, // Delta Type: 7 - 3, MOQT_IMPLEMENTATION
    IMPLEMENTATION.length,
    ...ascii(IMPLEMENTATION),
  ];
  // Type 0x2F00 as a two-byte vi64 (leading bits 10), then Length (16).
  return [0xaf, 0x00, body.length >> 8, body.length & 0xff, ...body];
}

/** SETUP with MOQT_IMPLEMENTATION only: Delta Type 7, Length, the name. */
const NO_TOKEN_SETUP = [
  0xaf,
  0x00,
  0x00,
  2 + IMPLEMENTATION.length,
  0x07,
  IMPLEMENTATION.length,
  ...ascii(IMPLEMENTATION),
];

for (const version of [19, 18] as const) {
  test(`draft-${version}: SETUP carries the JWT as an AUTHORIZATION TOKEN option, USE_VALUE, type 0`, () => {
    const bytes = encodeControl({ type: "SETUP", options: setupOptions(JWT) }, version);
    assert.deepEqual([...bytes], expectedSetup(JWT));
    const { msg } = decodeControl(bytes, version);
    assert.equal(msg.type, "SETUP");
    const tokens = msg.type === "SETUP" ? msg.options.authTokens : undefined;
    assert.equal(tokens?.length, 1);
    assert.equal(tokens?.[0]?.aliasType, 3);
    assert.equal(tokens?.[0]?.tokenType, 0);
    assert.equal(new TextDecoder().decode(tokens?.[0]?.value), JWT);
  });

  test(`draft-${version}: without a token, SETUP has no AUTHORIZATION TOKEN option`, () => {
    const bytes = encodeControl({ type: "SETUP", options: setupOptions() }, version);
    assert.deepEqual([...bytes], NO_TOKEN_SETUP);
  });
}

// ---- the session against a fake WebTransport that records its URL and the control stream's bytes ----

class RecordingTransport {
  static made: RecordingTransport[] = [];
  readonly ready = Promise.resolve();
  readonly closed = new Promise<{ closeCode: number; reason: string }>(() => {});
  readonly protocol: string;
  sent: number[] = [];
  private server!: ReadableStreamDefaultController<ReadableStream<Uint8Array>>;
  readonly incomingUnidirectionalStreams = new ReadableStream<ReadableStream<Uint8Array>>({
    start: (c) => {
      this.server = c;
    },
  });
  readonly incomingBidirectionalStreams = new ReadableStream();
  readonly datagrams = { readable: new ReadableStream<Uint8Array>() };

  constructor(
    readonly url: string,
    options: { protocols?: string[] },
  ) {
    this.protocol = options.protocols?.[0] ?? "";
    RecordingTransport.made.push(this);
  }

  async createUnidirectionalStream() {
    return new WritableStream<Uint8Array>({
      write: (chunk) => {
        this.sent.push(...chunk);
      },
    });
  }

  /** The relay's control stream with its SETUP. */
  answer(version: Version) {
    const setup = encodeControl({ type: "SETUP", options: { implementation: "relay" } }, version);
    this.server.enqueue(
      new ReadableStream({
        start: (c) => {
          c.enqueue(setup);
        },
      }),
    );
  }

  close() {}
}

(globalThis as Record<string, unknown>).WebTransport = RecordingTransport;

async function connectWith(
  version: Version,
  opts: Parameters<typeof Session.connect>[1],
  url = "https://relay.test:4443/",
): Promise<RecordingTransport> {
  const before = RecordingTransport.made.length;
  const pending = Session.connect(url, { fingerprint: "00", versions: [version], ...opts });
  for (let i = 0; i < 100 && RecordingTransport.made.length === before; i++)
    await new Promise((r) => setTimeout(r, 1));
  const t = RecordingTransport.made[RecordingTransport.made.length - 1] as RecordingTransport;
  t.answer(version);
  (await pending).close();
  return t;
}

for (const version of [19, 18] as const) {
  test(`draft-${version}: the token goes in SETUP, never in the WebTransport URL`, async () => {
    const t = await connectWith(version, { token: JWT });
    assert.equal(t.url, "https://relay.test:4443/");
    assert.ok(!t.url.includes(JWT));
    assert.deepEqual(t.sent.slice(0, expectedSetup(JWT).length), expectedSetup(JWT));
  });
}

test("tokenInUrl (the fallback, off by default) adds ?jwt= as well", async () => {
  const t = await connectWith(19, { token: JWT, tokenInUrl: true });
  assert.equal(new URL(t.url).searchParams.get("jwt"), JWT);
  assert.deepEqual(t.sent.slice(0, expectedSetup(JWT).length), expectedSetup(JWT));
});

test("a token too long for SETUP fails before any connection", async () => {
  const before = RecordingTransport.made.length;
  await assert.rejects(
    Session.connect("https://relay.test/", { fingerprint: "00", token: "x".repeat(70_000) }),
  );
  assert.equal(RecordingTransport.made.length, before, "no WebTransport was opened");
});

test("a remembered token goes to its own origin only", async () => {
  rememberToken("https://relay.test:4443/", JWT);
  assert.equal(rememberedToken("https://relay.test:4443/other?x=1"), JWT);
  assert.equal(rememberedToken("https://relay.test:4444/"), undefined, "another port is another origin");
  assert.equal(rememberedToken("https://evil.test:4443/"), undefined);
  const same = await connectWith(19, {});
  assert.deepEqual(same.sent.slice(0, expectedSetup(JWT).length), expectedSetup(JWT));
  const other = await connectWith(19, {}, "https://evil.test:4443/");
  assert.deepEqual(other.sent, NO_TOKEN_SETUP, "another origin: no token");
  rememberToken("https://relay.test:4443/", undefined);
  assert.equal(rememberedToken("https://relay.test:4443/"), undefined);
});

// ---- pages: the fragment, not the query ----

test("the token is taken out of the fragment, other fragment parts kept", () => {
  assert.deepEqual(splitFragmentToken(`https://a.test/watch?name=live/x#token=${JWT}`), {
    token: JWT,
    href: "https://a.test/watch?name=live/x",
  });
  assert.deepEqual(splitFragmentToken(`https://a.test/studio#chat&token=${JWT}&t=5`), {
    token: JWT,
    href: "https://a.test/studio#chat&t=5",
  });
  assert.deepEqual(splitFragmentToken("https://a.test/studio#token=a%2Eb"), {
    token: "a.b",
    href: "https://a.test/studio",
  });
  assert.deepEqual(splitFragmentToken("https://a.test/#section"), { href: "https://a.test/#section" });
  assert.deepEqual(splitFragmentToken("https://a.test/?token=q"), { href: "https://a.test/?token=q" });
});

test("a ?token= in the query is not a token: it is only erased", () => {
  assert.equal(
    withoutQueryToken("https://a.test/studio?token=q&channel=c#x"),
    "https://a.test/studio?channel=c#x",
  );
  assert.equal(withoutQueryToken("https://a.test/studio?channel=c"), undefined);
});

test("which relays are on the page's origin", () => {
  assert.equal(sameOrigin("/", "http://127.0.0.1:4443/studio"), true);
  assert.equal(sameOrigin("http://127.0.0.1:4443/", "http://127.0.0.1:4443/studio"), true);
  assert.equal(sameOrigin("http://127.0.0.1:4444/", "http://127.0.0.1:4443/studio"), false);
  assert.equal(sameOrigin("https://127.0.0.1:4443/", "http://127.0.0.1:4443/studio"), false);
  assert.equal(originOf("https://relay.example:4443/x?y"), "https://relay.example:4443");
});
