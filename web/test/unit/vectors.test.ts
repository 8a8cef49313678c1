// Byte-for-byte agreement with moq-wire: every vector of test/vectors.json (written by
// moq-wire/tests/export_vectors.rs) decodes to moq-wire's value and re-encodes to the same bytes.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import {
  type ControlMessage,
  decodeControl,
  decodeDatagram,
  decodeSubgroupHeader,
  encodeControl,
  encodeDatagram,
  FetchReader,
  FetchWriter,
  fromHex,
  isShort,
  type ObjectDatagram,
  Properties,
  Reader,
  SubgroupReader,
  SubgroupWriter,
  streamKind,
  toHex,
  type Version,
  Writer,
} from "../../src/wire/index.ts";
import { normalize } from "./normalize.ts";

interface Vector {
  name: string;
  kind: "varint" | "control" | "subgroup" | "fetch" | "datagram";
  versions: Version[];
  hex: string;
  expect: Record<string, unknown>;
}

const file = JSON.parse(readFileSync(new URL("../vectors.json", import.meta.url), "utf8")) as {
  vectors: Vector[];
};

function decodeStream(kind: "subgroup" | "fetch", bytes: Uint8Array): unknown {
  const r = new Reader(bytes);
  const type = r.varint();
  assert.equal(streamKind(type), kind);
  let at = 0;
  if (kind === "subgroup") {
    const header = decodeSubgroupHeader(type, r);
    at = r.pos;
    const reader = new SubgroupReader(header);
    const objects = [];
    while (at < bytes.length) {
      const { object, used } = reader.read(bytes.subarray(at));
      objects.push(object);
      at += used;
    }
    return { streamType: type, header, objects };
  }
  const requestId = r.varint();
  at = r.pos;
  const reader = new FetchReader(1);
  const entries = [];
  while (at < bytes.length) {
    const { entry, used } = reader.read(bytes.subarray(at));
    entries.push(entry);
    at += used;
  }
  return { requestId, groupOrder: 1, entries };
}

function fromJsonProps(list: { key: number; int?: number | string; bytes?: string }[]): Properties {
  const p = new Properties();
  for (const x of list) {
    if (x.bytes !== undefined) p.setBytes(BigInt(x.key), fromHex(x.bytes));
    else p.setInt(BigInt(x.key), BigInt(x.int as number));
  }
  return p;
}

for (const v of file.vectors) {
  test(`${v.kind}: ${v.name}`, () => {
    const bytes = fromHex(v.hex);
    for (const version of v.versions) {
      if (v.expect.error) {
        assert.throws(
          () => {
            if (v.kind === "control") decodeControl(bytes, version);
            else if (v.kind === "datagram") decodeDatagram(bytes);
            else decodeStream(v.kind as "subgroup" | "fetch", bytes);
          },
          (e: unknown) => !isShort(e) && e instanceof Error,
        );
        continue;
      }
      switch (v.kind) {
        case "varint": {
          const r = new Reader(bytes);
          assert.equal(r.varintBig().toString(), v.expect.value);
          assert.ok(r.done);
          assert.equal(
            toHex(new Writer().varint(BigInt(v.expect.value as string)).finish()),
            v.expect.minimal,
          );
          break;
        }
        case "control": {
          const { msg, used } = decodeControl(bytes, version);
          assert.equal(used, bytes.length);
          assert.deepEqual(normalize(msg), v.expect);
          assert.equal(toHex(encodeControl(msg as ControlMessage, version)), v.hex);
          // Every strict prefix is short, never malformed.
          for (let cut = 0; cut < bytes.length; cut++) {
            assert.throws(() => decodeControl(bytes.subarray(0, cut), version), isShort, `prefix ${cut}`);
          }
          break;
        }
        case "subgroup": {
          const decoded = decodeStream("subgroup", bytes) as {
            header: import("../../src/wire/index.ts").SubgroupHeader;
            objects: import("../../src/wire/index.ts").SubgroupObject[];
          };
          assert.deepEqual(normalize(decoded), v.expect);
          const w = new Writer();
          const sw = new SubgroupWriter(decoded.header);
          sw.header_(w);
          for (const o of decoded.objects) sw.object(w, o);
          assert.equal(toHex(w.finish()), v.hex);
          break;
        }
        case "fetch": {
          const decoded = decodeStream("fetch", bytes) as {
            requestId: number;
            entries: import("../../src/wire/index.ts").FetchEntry[];
          };
          assert.deepEqual(normalize(decoded), v.expect);
          const w = new Writer().varint(0x05).varint(decoded.requestId);
          const fw = new FetchWriter(1);
          for (const e of decoded.entries) fw.entry(w, e);
          assert.equal(toHex(w.finish()), v.hex);
          break;
        }
        case "datagram": {
          const d = decodeDatagram(bytes) as ObjectDatagram;
          assert.deepEqual(normalize(d), v.expect);
          assert.equal(toHex(encodeDatagram(d)), v.hex);
          // And from the expected JSON alone.
          const e = v.expect as Record<string, unknown>;
          const built: ObjectDatagram = {
            trackAlias: BigInt(e.trackAlias as number),
            groupId: e.groupId as number,
            objectId: e.objectId as number,
            properties: fromJsonProps(e.properties as []),
            endOfGroup: e.endOfGroup as boolean,
          };
          if (e.publisherPriority !== undefined) built.publisherPriority = e.publisherPriority as number;
          if (e.status !== undefined) built.status = e.status as 0;
          if (e.payload !== undefined) built.payload = fromHex(e.payload as string);
          assert.equal(toHex(encodeDatagram(built)), v.hex);
          break;
        }
      }
    }
  });
}

test("the vector file covers every kind", () => {
  const kinds = new Set(file.vectors.map((v) => v.kind));
  assert.deepEqual([...kinds].sort(), ["control", "datagram", "fetch", "subgroup", "varint"]);
  assert.ok(file.vectors.length > 60);
});
