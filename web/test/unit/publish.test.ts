// Serving a published track (client/publish.ts) over in-memory streams: SUBSCRIBE_OK with the largest location,
// the newest group replayed from its start, live objects on the same stream, one stream per group with FIN at
// the group's end, PUBLISH_DONE when the track ends, and every data stream stopped when the subscriber leaves.

import assert from "node:assert/strict";
import { test } from "node:test";
import {
  answerRequest,
  DYNAMIC_GROUPS,
  type PublishTransport,
  TrackPublisher,
} from "../../src/client/publish.ts";
import { RequestStream } from "../../src/client/requests.ts";
import { StreamReader, StreamWriter } from "../../src/client/stream.ts";
import {
  type ControlMessage,
  concat,
  decodeControl,
  decodeSubgroupHeader,
  encodeControl,
  Properties,
  Reader,
  type SubgroupHeader,
  SubgroupReader,
  text,
  utf8,
} from "../../src/wire/index.ts";
import { FakeError } from "./fake-error.ts";

const V = 19;
const tick = () => new Promise((r) => setTimeout(r, 5));

(globalThis as Record<string, unknown>).WebTransportError = FakeError;

/** A writable that records its bytes, FIN and reset code; a slow one takes 50 ms per write (backpressure). */
function sink(slow = false) {
  const s = { chunks: [] as Uint8Array[], fin: false, reset: undefined as number | undefined };
  const writable = new WritableStream<Uint8Array>({
    write: (c) => {
      s.chunks.push(c);
      if (slow) return new Promise<void>((r) => setTimeout(r, 50));
    },
    close: () => {
      s.fin = true;
    },
    abort: (e: FakeError) => {
      s.reset = e?.streamErrorCode ?? -1;
    },
  });
  return { s, writable, bytes: () => concat(s.chunks) };
}

/** The relay's side of one SUBSCRIBE: its request stream, and the data streams we open towards it. */
function relaySide(slow = false) {
  const response = sink();
  let push!: (b: Uint8Array) => void;
  let fail!: (e: unknown) => void;
  const readable = new ReadableStream<Uint8Array>({
    start: (c) => {
      push = (b) => c.enqueue(b);
      fail = (e) => c.error(e);
    },
  });
  const stream = new RequestStream(
    new StreamReader(readable),
    new StreamWriter(response.writable),
    V,
    () => {},
  );
  const uni: ReturnType<typeof sink>[] = [];
  const transport: PublishTransport = {
    version: V,
    openUni: async () => {
      const u = sink(slow);
      uni.push(u);
      return u.writable;
    },
  };
  const messages = () => {
    const out: ControlMessage[] = [];
    let b = response.bytes();
    while (b.length > 0) {
      const { msg, used } = decodeControl(b, V);
      out.push(msg);
      b = b.subarray(used);
    }
    return out;
  };
  return { stream, transport, uni, messages, response, push, fail };
}

/** A data stream's header and object payloads. */
function objects(bytes: Uint8Array): { header: SubgroupHeader; payloads: string[]; ids: number[] } {
  const r = new Reader(bytes);
  const header = decodeSubgroupHeader(r.varint(), r);
  const reader = new SubgroupReader(header);
  let rest = bytes.subarray(r.pos);
  const payloads: string[] = [];
  const ids: number[] = [];
  while (rest.length > 0) {
    const { object, used } = reader.read(rest);
    payloads.push(text(object.payload));
    ids.push(object.objectId);
    rest = rest.subarray(used);
  }
  return { header, payloads, ids };
}

const obj = (s: string) => ({ payload: utf8.encode(s), properties: new Properties().setInt(0x10, 7) });

test("a subscriber gets SUBSCRIBE_OK, the newest group from its start, then live objects", async () => {
  const track = new TrackPublisher("video0", 128);
  track.newGroup(5);
  track.write(obj("a"));
  track.newGroup(6);
  track.write(obj("b"));
  track.write(obj("c"));
  const relay = relaySide();
  const served = track.serve(relay.stream, 9n, relay.transport);
  await tick();
  const [ok] = relay.messages();
  assert.equal(ok?.type, "SUBSCRIBE_OK");
  assert.equal(ok?.type === "SUBSCRIBE_OK" && ok.trackAlias, 9n);
  assert.deepEqual(ok?.type === "SUBSCRIBE_OK" && ok.params.largestObject, { group: 6, object: 1 });
  assert.equal(track.subscriberCount, 1);
  track.write(obj("d"));
  await tick();
  assert.equal(relay.uni.length, 1, "group 5 is not replayed: only the newest group");
  const first = objects(relay.uni[0]?.bytes() as Uint8Array);
  assert.equal(first.header.groupId, 6);
  assert.equal(first.header.trackAlias, 9n);
  assert.equal(first.header.publisherPriority, 128);
  assert.deepEqual(first.payloads, ["b", "c", "d"]);
  assert.deepEqual(first.ids, [0, 1, 2]);
  // A new group: the old stream ends with FIN, the new one starts at object 0.
  track.newGroup();
  track.write(obj("e"));
  await tick();
  assert.equal(relay.uni[0]?.s.fin, true);
  const second = objects(relay.uni[1]?.bytes() as Uint8Array);
  assert.equal(second.header.groupId, 7);
  assert.deepEqual(second.payloads, ["e"]);
  // The end: PUBLISH_DONE (TRACK_ENDED, two streams), FIN on the request stream.
  track.end();
  await tick();
  const done = relay.messages()[1];
  assert.equal(done?.type, "PUBLISH_DONE");
  assert.equal(done?.type === "PUBLISH_DONE" && done.status, 2n);
  assert.equal(done?.type === "PUBLISH_DONE" && done.streamCount, 2n);
  assert.equal(relay.response.s.fin, true);
  assert.equal(relay.uni[1]?.s.fin, true);
  assert.throws(() => track.write(obj("late")), /ended/);
  relay.push(new Uint8Array(0));
  relay.fail(new FakeError("gone"));
  await served;
});

test("a subscriber that leaves has its data streams reset (CANCELLED)", async () => {
  const track = new TrackPublisher("audio0", 64);
  const relay = relaySide();
  const served = track.serve(relay.stream, 1n, relay.transport);
  await tick();
  assert.equal(relay.messages()[0]?.type, "SUBSCRIBE_OK");
  track.write(obj("x"));
  await tick();
  relay.fail(new FakeError("reset", { streamErrorCode: 1 }));
  await served;
  await tick();
  assert.equal(track.subscriberCount, 0);
  assert.equal(relay.uni[0]?.s.reset, 1);
  track.write(obj("y"));
  await tick();
  assert.equal(relay.uni.length, 1, "nothing more is sent");
});

test("live media: a group stream still sending when a newer group starts is reset", async () => {
  const track = new TrackPublisher("video0", 128, 1);
  const relay = relaySide(true);
  track.serve(relay.stream, 2n, relay.transport);
  await tick();
  for (let g = 0; g < 3; g++) {
    track.newGroup(g);
    track.write(obj(`g${g}`));
    await tick();
  }
  assert.equal(relay.uni.length, 3);
  await new Promise((r) => setTimeout(r, 80)); // the reset follows the write in flight
  assert.equal(relay.uni[0]?.s.reset, 2, "group 0: DELIVERY_TIMEOUT once group 2 starts");
  assert.equal(relay.uni[1]?.s.reset, undefined, "group 1 is only one behind");
});

test("requests for tracks we do not publish are refused", async () => {
  for (const [m, code] of [
    [{ type: "SUBSCRIBE", requestId: 1, namespace: [], name: utf8.encode("x"), params: {} }, 0x10n],
    [{ type: "FETCH", requestId: 3, fetchType: 1, params: {} }, 0x10n],
    [{ type: "SUBSCRIBE_NAMESPACE", requestId: 5, prefix: [], params: {} }, 0x3n],
  ] as [ControlMessage, bigint][]) {
    const relay = relaySide();
    await answerRequest(relay.stream, m, undefined, relay.transport, () => 1n);
    const [answer] = relay.messages();
    assert.equal(answer?.type, "REQUEST_ERROR");
    assert.equal(answer?.type === "REQUEST_ERROR" && answer.code, code, m.type);
  }
  // TRACK_STATUS of a published track: REQUEST_OK with its largest location.
  const track = new TrackPublisher("catalog", 0);
  track.write(obj("{}"));
  const relay = relaySide();
  const status: ControlMessage = {
    type: "TRACK_STATUS",
    requestId: 7,
    namespace: [],
    name: utf8.encode("catalog"),
    params: {},
  };
  await answerRequest(relay.stream, status, track, relay.transport, () => 1n);
  const [ok] = relay.messages();
  assert.equal(ok?.type, "REQUEST_OK");
  assert.deepEqual(ok?.type === "REQUEST_OK" && ok.params.largestObject, { group: 0, object: 0 });
});

test("DYNAMIC_GROUPS: SUBSCRIBE_OK says so, and NEW_GROUP_REQUESTs for a newer group are passed on", async () => {
  const track = new TrackPublisher("video0", 128);
  track.dynamicGroups = true;
  const asked: number[] = [];
  track.onnewgroup = () => asked.push(track.largest?.group ?? -1);
  track.newGroup(10);
  track.write(obj("a"));
  const relay = relaySide();
  const served = track.serve(relay.stream, 1n, relay.transport, { newGroupRequest: 0 });
  await tick();
  const [ok] = relay.messages();
  assert.equal(ok?.type === "SUBSCRIBE_OK" && ok.trackProperties.getInt(DYNAMIC_GROUPS), 1);
  assert.deepEqual(asked, [10], "0: a new group, whatever we have");
  const update = (v: number) =>
    relay.push(encodeControl({ type: "REQUEST_UPDATE", requestId: 0, params: { newGroupRequest: v } }, V));
  update(10);
  await tick();
  assert.deepEqual(asked, [10], "group 10 is already there");
  update(11);
  await tick();
  assert.deepEqual(asked, [10, 10], "11 is newer than what we have");
  assert.equal(relay.messages().filter((m) => m.type === "REQUEST_OK").length, 2);
  track.end();
  relay.fail(new FakeError("gone"));
  await served;
});

test("without DYNAMIC_GROUPS a NEW_GROUP_REQUEST is ignored", async () => {
  const track = new TrackPublisher("video0", 128);
  let asked = 0;
  track.onnewgroup = () => asked++;
  track.newGroup(1);
  const relay = relaySide();
  const served = track.serve(relay.stream, 1n, relay.transport, { newGroupRequest: 0 });
  await tick();
  const [ok] = relay.messages();
  assert.equal(ok?.type === "SUBSCRIBE_OK" && ok.trackProperties.size, 0);
  assert.equal(asked, 0);
  track.end();
  relay.fail(new FakeError("gone"));
  await served;
});
