// The MoQT client in Chromium against a real relay: setup at both drafts, the catalog, media objects, namespaces,
// track status, fetch, and a session that survives the relay going away.

import assert from "node:assert/strict";
import { test } from "node:test";
import { stage, until } from "./harness.ts";

const env = stage({ open: "/test.html" });

for (const version of [19, 18] as const) {
  test(`draft-${version}: setup, catalog and video objects`, async () => {
    const out = await env.browser.page.evaluate(
      async ({ url, version }) => {
        const moq = await import("/moq.js");
        const s = await moq.Session.connect(url, {
          versions: [version],
          fingerprintUrl: "/relay/certificate.sha256",
        });
        const cat = await s.subscribe("demo/clip", "catalog");
        const g = await cat.nextGroup();
        const o = await g?.next();
        const catalog = JSON.parse(new TextDecoder().decode(o?.payload));
        const video = await s.subscribe("demo/clip", "video0");
        const vg = await video.nextGroup();
        const objects = [];
        for (let i = 0; i < 5; i++) {
          const x = await vg?.next();
          if (!x) break;
          objects.push({
            id: x.objectId,
            len: x.payload.length,
            ts: x.properties.getInt(0x10),
            pub: x.properties.getInt(0x3a10),
          });
        }
        video.cancel();
        cat.cancel();
        const v = s.version;
        s.close();
        return {
          v,
          tracks: catalog.tracks.map((t: { name: string }) => t.name),
          objects,
          group: vg?.groupId,
        };
      },
      { url: env.relay.url, version },
    );
    assert.equal(out.v, version);
    assert.deepEqual(out.tracks.sort(), ["audio0", "video0"]);
    assert.equal(out.objects.length, 5);
    assert.equal(out.objects[0]?.id, 0, "a subscription starts at the group's first object");
    assert.ok(out.objects.every((o: { ts?: number; pub?: number }) => o.ts && o.pub));
    assert.deepEqual(env.browser.errors, []);
  });
}

test("namespaces, track status, fetch and refusals", async () => {
  const out = await env.browser.page.evaluate(async (url) => {
    const moq = await import("/moq.js");
    const s = await moq.Session.connect(url, { fingerprintUrl: "/relay/certificate.sha256" });
    const watch = await s.subscribeNamespace("");
    const first = await watch.next();
    const status = await s.trackStatus("demo/clip", "video0");
    let missing = "";
    try {
      await s.subscribe("no/such", "catalog");
    } catch (e) {
      missing = String(e);
    }
    // A joining fetch of the current group and the one before it.
    const video = await s.subscribe("demo/clip", "video0");
    const f = await s.fetch({ joining: video, start: 1 });
    const entries = [];
    for (;;) {
      const e = await f.next();
      if (!e) break;
      entries.push(
        "endOfRange" in e ? { end: true } : { g: e.groupId, o: e.objectId, len: e.payload.length },
      );
    }
    video.cancel();
    watch.cancel();
    s.close();
    return {
      first: first && { active: first.active, ns: moq.wire.namespaceToPath(first.namespace) },
      status,
      missing,
      entries,
      end: f.endLocation,
    };
  }, env.relay.url);
  assert.deepEqual(out.first, { active: true, ns: "demo/clip" });
  assert.ok(out.status.largest && out.status.largest.group > 0, "TRACK_STATUS gives the largest location");
  assert.match(out.missing, /DOES_NOT_EXIST/);
  assert.ok(out.entries.length > 0, "the joining fetch returned objects");
  const objects = out.entries.filter((e: { end?: boolean }) => !e.end) as {
    g: number;
    o: number;
    len: number;
  }[];
  assert.ok(objects.every((e) => e.len > 0));
  assert.equal(objects[0]?.o, 0, "a fetched group starts at its first object");
  assert.deepEqual(env.browser.errors, []);
});

test("PUBLISH_NAMESPACE: announced, listed, and the relay's SUBSCRIBE refused", async () => {
  const out = await env.browser.page.evaluate(async (url) => {
    const moq = await import("/moq.js");
    const opts = { fingerprintUrl: "/relay/certificate.sha256" };
    const publisher = await moq.Session.connect(url, opts);
    const announced = await publisher.publishNamespace("test/web");
    const viewer = await moq.Session.connect(url, opts);
    const watch = await viewer.subscribeNamespace("test");
    const seen = await watch.next();
    let refused = "";
    try {
      await viewer.subscribe("test/web", "video");
    } catch (e) {
      refused = String(e);
    }
    announced.cancel();
    const gone = await watch.next();
    publisher.close();
    viewer.close();
    return {
      seen: seen && { active: seen.active, ns: moq.wire.namespaceToPath(seen.namespace) },
      gone: gone && { active: gone.active, ns: moq.wire.namespaceToPath(gone.namespace) },
      refused,
    };
  }, env.relay.url);
  assert.deepEqual(out.seen, { active: true, ns: "test/web" });
  assert.match(
    out.refused,
    /DOES_NOT_EXIST/,
    "the relay forwarded the SUBSCRIBE and our publisher refused it",
  );
  assert.deepEqual(out.gone, { active: false, ns: "test/web" });
  assert.deepEqual(env.browser.errors, []);
});

test("the index page lists the demo and plays it on click", async () => {
  const q = `url=${encodeURIComponent(env.relay.url)}&fingerprint-url=/relay/certificate.sha256`;
  await env.browser.page.goto(`${env.site.url}/index.html?${q}`);
  await env.browser.page.getByRole("link", { name: "demo/clip" }).click();
  await until("frames", () =>
    env.browser.page.evaluate(
      () =>
        ((document.querySelector("moq-player") as unknown as { stats: { framesRendered?: number } }).stats
          .framesRendered ?? 0) > 10,
    ),
  );
  assert.match(env.browser.page.url(), /\/watch\?name=demo%2Fclip/);
  assert.deepEqual(env.browser.errors, []);
  await env.browser.page.goto(`${env.site.url}/test.html`);
});
