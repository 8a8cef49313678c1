// The relay ending a session with an error while the page reads its streams (a protocol violation by the page,
// here on purpose) must end the session in the page with the draft's code, not crash the tab. The relay resets
// its unidirectional streams first and closes the session a moment later.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { type Browsing, freePort, openBrowser, Relay, serveDist, until } from "./harness.ts";

let relay: Relay;
let site: Awaited<ReturnType<typeof serveDist>>;
let b: Browsing;

before(async () => {
  relay = new Relay(await freePort());
  await relay.start();
  site = await serveDist(() => relay.port);
  b = await openBrowser();
});

after(async () => {
  await b?.close();
  await site?.close();
  await relay?.stop("SIGKILL");
});

/** What the test keeps on the page's window. */
interface Watching {
  count: number;
  sessionEnd?: string;
  wt: WebTransport;
}

for (const round of [1, 2, 3]) {
  test(`a session closed with PROTOCOL_VIOLATION mid-stream leaves the tab alive (round ${round})`, async () => {
    await b.page.goto(`${site.url}/test.html`);
    await b.page.evaluate(
      async ({ url }) => {
        const moq = await import("/moq.js");
        const s = await moq.Session.connect(url, { fingerprintUrl: "/relay/certificate.sha256" });
        const w = window as unknown as Watching;
        w.count = 0;
        w.wt = (s as unknown as { wt: WebTransport }).wt;
        s.closed.then((c: unknown) => {
          w.sessionEnd = JSON.stringify(c);
        });
        const video = await s.subscribe("demo/clip", "video0");
        (async () => {
          for (;;) {
            const g = await video.nextGroup();
            if (!g) break;
            while (await g.next()) w.count++;
          }
        })().catch(() => {});
      },
      { url: relay.url },
    );
    await until("video objects", () => b.page.evaluate(() => (window as unknown as Watching).count > 10));
    // A request stream that opens with an unknown message type: the relay must close with PROTOCOL_VIOLATION.
    await b.page.evaluate(async () => {
      const bidi = await (window as unknown as Watching).wt.createBidirectionalStream();
      const writer = bidi.writable.getWriter();
      await writer.write(new Uint8Array([0x3f, 0, 0]));
    });
    const closed = await until("session closed", () =>
      b.page.evaluate(() => (window as unknown as Watching).sessionEnd),
    );
    assert.ok(!b.crashed(), "the tab crashed");
    // The page can still run script afterwards.
    assert.equal(await b.page.evaluate(() => 1 + 1), 2);
    assert.match(closed, /3|protocol/i, `closed with ${closed}`);
  });
}
