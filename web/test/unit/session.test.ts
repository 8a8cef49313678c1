// The client Session against a scripted in-memory WebTransport: stream usage, request IDs, subscriptions and
// their data streams, refusals, GOAWAY, and how it reacts to a misbehaving relay.

import assert from "node:assert/strict";
import { test } from "node:test";
import { RequestError } from "../../src/client/requests.ts";
import { Session } from "../../src/client/session.ts";
import {
  type ControlMessage,
  decodeControl,
  encodeControl,
  encodeSubgroupHeader,
  Properties,
  SubgroupWriter,
  type Version,
  Writer,
} from "../../src/wire/index.ts";
import { FakeError } from "./fake-error.ts";

/** A readable the test feeds. */
function source<T>() {
  let ctrl!: ReadableStreamDefaultController<T>;
  const readable = new ReadableStream<T>({
    start: (c) => {
      ctrl = c;
    },
  });
  return { readable, push: (x: T) => ctrl.enqueue(x), end: () => ctrl.close() };
}

/** A writable the test inspects: decoded messages, FIN, reset code. */
function sink(version: Version) {
  const s = {
    bytes: new Uint8Array(0),
    fin: false,
    reset: undefined as number | undefined,
    messages: [] as ControlMessage[],
  };
  const writable = new WritableStream<Uint8Array>({
    write: (c) => {
      const all = new Uint8Array(s.bytes.length + c.length);
      all.set(s.bytes);
      all.set(c, s.bytes.length);
      s.bytes = all;
      for (;;) {
        try {
          const { msg, used } = decodeControl(s.bytes, version);
          s.messages.push(msg);
          s.bytes = s.bytes.subarray(used);
        } catch {
          break;
        }
      }
    },
    close: () => {
      s.fin = true;
    },
    abort: (e: FakeError) => {
      s.reset = e?.streamErrorCode ?? -1;
    },
  });
  return {
    ...s,
    writable,
    get state() {
      return s;
    },
  };
}

class FakeTransport {
  static last: FakeTransport;
  protocol: string;
  ready = Promise.resolve();
  closed: Promise<{ closeCode: number; reason: string }>;
  closedBy: { closeCode: number; reason: string } | undefined;
  private resolveClosed!: (v: { closeCode: number; reason: string }) => void;
  uni = source<ReadableStream<Uint8Array>>();
  bidi = source<{ readable: ReadableStream<Uint8Array>; writable: WritableStream<Uint8Array> }>();
  datagramSource = source<Uint8Array>();
  control: ReturnType<typeof sink> | undefined;
  requests: { out: ReturnType<typeof sink>; answer: ReturnType<typeof source<Uint8Array>> }[] = [];
  readonly version: Version;

  constructor(_url: string, options: { protocols?: string[] }) {
    this.protocol = options.protocols?.[0] ?? "";
    this.version = this.protocol === "moqt-18" ? 18 : 19;
    this.closed = new Promise((r) => {
      this.resolveClosed = r;
    });
    FakeTransport.last = this;
  }

  get incomingUnidirectionalStreams() {
    return this.uni.readable;
  }
  get incomingBidirectionalStreams() {
    return this.bidi.readable;
  }
  get datagrams() {
    return { readable: this.datagramSource.readable };
  }
  async createUnidirectionalStream() {
    this.control = sink(this.version);
    return this.control.writable;
  }
  async createBidirectionalStream() {
    const out = sink(this.version);
    const answer = source<Uint8Array>();
    this.requests.push({ out, answer });
    return { readable: answer.readable, writable: out.writable };
  }
  close(info: { closeCode: number; reason: string }) {
    this.closedBy ??= info;
    this.resolveClosed(info);
  }

  /** The relay's side: its control stream with SETUP. */
  serverControl = source<Uint8Array>();
  setup() {
    this.uni.push(this.serverControl.readable);
    this.serverControl.push(
      encodeControl({ type: "SETUP", options: { implementation: "fake" } }, this.version),
    );
  }
  send(m: ControlMessage) {
    this.serverControl.push(encodeControl(m, this.version));
  }
  answer(i: number, m: ControlMessage) {
    this.requests[i]?.answer.push(encodeControl(m, this.version));
  }
  /** A server-opened subgroup stream with `objects` payloads. */
  subgroup(alias: bigint, group: number, objects: string[]) {
    const s = source<Uint8Array>();
    const header = {
      trackAlias: alias,
      groupId: group,
      subgroupMode: 0 as const,
      publisherPriority: 1,
      hasProperties: false,
      endOfGroup: false,
      firstObject: true,
    };
    const w = new Writer();
    encodeSubgroupHeader(w, header);
    const sw = new SubgroupWriter(header);
    objects.forEach(
      (o, i) =>
        void sw.object(w, {
          objectId: i,
          properties: new Properties(),
          status: 0,
          payload: new TextEncoder().encode(o),
        }),
    );
    this.uni.push(s.readable);
    s.push(w.finish());
    s.end();
  }
}

const g = globalThis as Record<string, unknown>;
g.WebTransport = FakeTransport;
g.WebTransportError = FakeError;

const tick = () => new Promise((r) => setTimeout(r, 5));

async function connect(version: Version = 19): Promise<{ s: Session; t: FakeTransport }> {
  const pending = Session.connect("https://relay.test/", { fingerprint: "00", versions: [version] });
  await tick();
  const t = FakeTransport.last;
  assert.equal(
    t.control?.state.messages[0]?.type,
    "SETUP",
    "the client's SETUP goes first, on its control stream",
  );
  t.setup();
  return { s: await pending, t };
}

for (const version of [19, 18] as const) {
  test(`draft-${version}: setup, then each request on its own stream with even, increasing ids`, async () => {
    const { s, t } = await connect(version);
    assert.equal(s.version, version);
    assert.equal(s.peerImplementation, "fake");
    const a = s.subscribe("demo/clip", "video0", { priority: 3 });
    await tick();
    t.answer(0, {
      type: "SUBSCRIBE_OK",
      trackAlias: 7n,
      params: { largestObject: { group: 5, object: 2 } },
      trackProperties: new Properties(),
    });
    const sub = await a;
    const b = s.subscribe("demo/clip", "audio0");
    await tick();
    const [first, second] = t.requests.map((r) => r.out.state.messages[0]);
    assert.equal(first?.type, "SUBSCRIBE");
    assert.equal(first?.type === "SUBSCRIBE" && first.requestId, 0);
    assert.equal(first?.type === "SUBSCRIBE" && first.params.forward, true);
    assert.equal(first?.type === "SUBSCRIBE" && first.params.subscriberPriority, 3);
    assert.equal(second?.type === "SUBSCRIBE" && second.requestId, 2);
    assert.deepEqual(sub.largest, { group: 5, object: 2 });
    t.answer(1, { type: "REQUEST_ERROR", code: 0x10n, retryInterval: 0, reason: "nope" });
    await assert.rejects(
      b,
      (e: unknown) => e instanceof RequestError && /DOES_NOT_EXIST: nope/.test(e.message),
    );
    s.close();
  });
}

test("data streams reach their subscription, even one that beats its SUBSCRIBE_OK", async () => {
  const { s, t } = await connect();
  const pending = s.subscribe("demo/clip", "video0");
  await tick();
  t.subgroup(9n, 100, ["early"]); // before SUBSCRIBE_OK
  await tick();
  t.answer(0, { type: "SUBSCRIBE_OK", trackAlias: 9n, params: {}, trackProperties: new Properties() });
  const sub = await pending;
  t.subgroup(9n, 101, ["a", "b"]);
  const g1 = await sub.nextGroup();
  assert.equal(g1?.groupId, 100);
  assert.equal(new TextDecoder().decode((await g1?.next())?.payload), "early");
  const g2 = await sub.nextGroup();
  assert.deepEqual(
    [(await g2?.next())?.objectId, (await g2?.next())?.objectId, await g2?.next()],
    [0, 1, undefined],
  );
  // PUBLISH_DONE ends it.
  t.answer(0, { type: "PUBLISH_DONE", status: 2n, streamCount: 2n, reason: "bye" });
  assert.deepEqual(await sub.ended, { status: 2, statusName: "TRACK_ENDED", reason: "bye" });
  assert.equal(await sub.nextGroup(), undefined);
  s.close();
});

test("cancel resets the request stream with CANCELLED", async () => {
  const { s, t } = await connect();
  const pending = s.subscribe("demo/clip", "video0");
  await tick();
  t.answer(0, { type: "SUBSCRIBE_OK", trackAlias: 1n, params: {}, trackProperties: new Properties() });
  const sub = await pending;
  sub.cancel();
  await tick();
  assert.equal(t.requests[0]?.out.state.reset, 1);
  assert.equal((await sub.ended).statusName, "CANCELLED");
  s.close();
});

test("GOAWAY: the handler is told, new requests are refused; without a handler the client leaves", async () => {
  const { s, t } = await connect();
  let told = "";
  s.ongoaway = (uri) => {
    told = uri;
  };
  t.send({ type: "GOAWAY", newSessionUri: new TextEncoder().encode("https://other.test/"), timeout: 1000 });
  await tick();
  assert.equal(told, "https://other.test/");
  await assert.rejects(
    s.subscribe("a", "b"),
    (e: unknown) => e instanceof RequestError && /GOING_AWAY/.test(e.message),
  );
  s.close();

  const second = await connect();
  second.t.send({ type: "GOAWAY", newSessionUri: new Uint8Array(), timeout: 0 });
  const info = await second.s.closed;
  assert.deepEqual(info, { code: 0, reason: "going away", remote: false });
});

test("a misbehaving relay: the client closes with the draft's code, and never throws", async () => {
  const { s, t } = await connect();
  t.send({ type: "SUBSCRIBE_OK", trackAlias: 1n, params: {}, trackProperties: new Properties() }); // not on the control stream
  const info = await s.closed;
  assert.equal(info.code, 0x3, "PROTOCOL_VIOLATION");
  assert.equal(info.remote, false, "the page closed it");
  assert.match(t.closedBy?.reason ?? "", /SUBSCRIBE_OK on the control stream/);

  const second = await connect();
  second.t.serverControl.push(new Uint8Array([0x3f, 0x00, 0x00])); // unknown message type
  assert.equal((await second.s.closed).code, 0x3);
});

test("requests the relay opens are refused: PUBLISH with UNINTERESTED", async () => {
  const { s, t } = await connect();
  const answer = sink(19);
  const req = source<Uint8Array>();
  t.bidi.push({ readable: req.readable, writable: answer.writable });
  req.push(
    encodeControl(
      {
        type: "PUBLISH",
        requestId: 1,
        namespace: [new TextEncoder().encode("x")],
        name: new Uint8Array([0x79]),
        trackAlias: 4n,
        params: {},
        trackProperties: new Properties(),
      },
      19,
    ),
  );
  await tick();
  const m = answer.state.messages[0];
  assert.equal(m?.type, "REQUEST_ERROR");
  assert.equal(m?.type === "REQUEST_ERROR" && m.code, 0x20n);
  assert.equal(answer.state.fin, true);
  s.close();
});
