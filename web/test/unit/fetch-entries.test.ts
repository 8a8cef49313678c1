// FETCH entries moq-relay sends that are not among the golden vectors: End of Range up to "the rest of a group".

import assert from "node:assert/strict";
import { test } from "node:test";
import { FetchReader, FetchWriter, LAST_OBJECT, Writer } from "../../src/wire/index.ts";

test("an End of Unknown Range to the largest object id reads and writes back byte for byte", () => {
  // Flags 0x10C (End of Unknown Range), group 4, object 2^62 - 1: what the relay sends for history it never held.
  const bytes = new Writer()
    .varint(0x10c)
    .varint(4)
    .varint((1n << 62n) - 1n)
    .finish();
  const { entry, used } = new FetchReader().read(bytes);
  assert.equal(used, bytes.length);
  assert.deepEqual(entry, { endOfRange: true, unknown: true, end: { group: 4, object: LAST_OBJECT } });
  const w = new Writer();
  new FetchWriter().entry(w, entry);
  assert.deepEqual(w.finish(), bytes);
});
