// A FETCH response that nobody reads stops reading its stream after MAX_FETCH_BUFFERED entries: a relay sending
// without end fills QUIC's flow control window, not the page's memory.

import assert from "node:assert/strict";
import { test } from "node:test";
import { FetchResponse, MAX_FETCH_BUFFERED, type RequestStream } from "../../src/client/requests.ts";
import { StreamReader } from "../../src/client/stream.ts";
import { FetchWriter, Properties, Writer } from "../../src/wire/index.ts";

test("an unread FETCH stops pulling its stream at the limit, and reads on as entries are taken", async () => {
  const total = MAX_FETCH_BUFFERED + 100;
  const fw = new FetchWriter();
  const chunks = Array.from({ length: total }, (_, i) => {
    const w = new Writer();
    fw.entry(w, {
      groupId: 0,
      subgroupId: 0,
      objectId: i,
      publisherPriority: 128,
      properties: new Properties(),
      payload: new Uint8Array([i & 0xff]),
    });
    return w.finish();
  });
  let pulled = 0;
  const stream = new ReadableStream<Uint8Array>(
    {
      pull(c) {
        const chunk = chunks[pulled];
        if (chunk) {
          pulled++;
          c.enqueue(chunk);
        } else c.close();
      },
    },
    { highWaterMark: 0 },
  );
  const response = new FetchResponse(0, 1, {} as RequestStream);
  const reading = response.readData(new StreamReader(stream));
  for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
  assert.ok(pulled <= MAX_FETCH_BUFFERED + 2, `pulled ${pulled} chunks with nobody reading`);
  assert.ok(pulled >= MAX_FETCH_BUFFERED, `pulled only ${pulled}`);
  let read = 0;
  while (await response.next()) read++;
  await reading;
  assert.equal(read, total);
});
