// The relay ending a session with an error while the page reads its streams (a protocol violation by the page,
// here on purpose) must end the session in the page with the draft's code, not crash the tab. The relay resets
// its unidirectional streams first and closes the session a moment later.

import assert from "node:assert/strict";
import { test } from "node:test";
import { stage, until } from "./harness.ts";

const env = stage();

/** What the test keeps on the page's window. */
interface Watching {
  count: number;
  sessionEnd?: string;
  wt: WebTransport;
}

for (const round of [1, 2, 3]) {
  test(`a session closed with PROTOCOL_VIOLATION mid-stream leaves the tab alive (round ${round})`, async () => {
    await env.browser.page.goto(`${env.site.url}/test.html`);
    await env.browser.page.evaluate(
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
      { url: env.relay.url },
    );
    await until("video objects", () =>
      env.browser.page.evaluate(() => (window as unknown as Watching).count > 10),
    );
    // A request stream that opens with an unknown message type: the relay must close with PROTOCOL_VIOLATION.
    await env.browser.page.evaluate(async () => {
      const bidi = await (window as unknown as Watching).wt.createBidirectionalStream();
      const writer = bidi.writable.getWriter();
      await writer.write(new Uint8Array([0x3f, 0, 0]));
    });
    const closed = await until("session closed", () =>
      env.browser.page.evaluate(() => (window as unknown as Watching).sessionEnd),
    );
    assert.ok(!env.browser.crashed(), "the tab crashed");
    // The page can still run script afterwards.
    assert.equal(await env.browser.page.evaluate(() => 1 + 1), 2);
    assert.match(closed, /3|protocol/i, `closed with ${closed}`);
  });
}
