// Embedding from another origin: a page on a second origin loads moq.js and moq-studio.js from the relay (which
// serves them with CORS), and its <moq-player> plays the demo while its <moq-studio> goes live, the workers and
// worklets coming from the relay too (started through same-origin blobs).

import assert from "node:assert/strict";
import http from "node:http";
import { test } from "node:test";
import { listen, num, playerStats, stage, until } from "./harness.ts";

const env = stage();

/** A page of another origin (its own port) that embeds the player and the studio from the relay. */
function embedding(relay: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>embed</title></head><body>
<moq-player url="${relay}" broadcast="demo/clip" assets="${relay}"></moq-player>
<moq-studio url="${relay}" channel="embedded" title="Embedded" source="pattern" size="320x180" assets="${relay}">
</moq-studio>
<script type="module" src="${relay}moq.js"></script>
<script type="module" src="${relay}moq-studio.js"></script>
</body></html>`;
}

test("a page on another origin embeds the player and the studio from the relay", async () => {
  const relay = env.relay.url;
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(embedding(relay));
  });
  const other = await listen(server);
  const page = await env.browser.context.newPage();
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  try {
    await page.goto(`${other.url.replace("127.0.0.1", "localhost")}/`);
    assert.notEqual(new URL(page.url()).origin, new URL(relay).origin);
    const s = await until(
      "the embedded player's frames",
      async () => {
        const s = await playerStats(page);
        return num(s.framesRendered) >= 30 ? s : undefined;
      },
      15_000,
    );
    assert.equal(s.decodeErrors, 0);
    assert.equal(s.transport, process.env.MOQ_BROWSER_NO_WEBTRANSPORT ? "websocket" : "webtransport");
    await page.evaluate("document.querySelector('moq-studio').start()");
    const state = await until(
      "the embedded studio live",
      async () => {
        const st = (await page.evaluate("document.querySelector('moq-studio').stats?.state")) as string;
        return st === "live" ? st : undefined;
      },
      15_000,
    );
    assert.equal(state, "live");
    // Its broadcast reaches the relay: a second player, in place of the first (a player out of view pauses its
    // video), plays it.
    await page.evaluate(`(() => {
      const p = document.createElement("moq-player");
      p.id = "second";
      p.setAttribute("url", ${JSON.stringify(relay)});
      p.setAttribute("assets", ${JSON.stringify(relay)});
      p.setAttribute("broadcast", "live/embedded");
      document.querySelector("moq-player").replaceWith(p);
    })()`);
    await until(
      "the studio's broadcast in a second player",
      async () =>
        num(await page.evaluate("document.querySelector('#second').stats.framesRendered ?? 0")) >= 30,
      15_000,
    );
    await page.evaluate("document.querySelector('moq-studio').stop()");
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
    await other.close();
  }
});
