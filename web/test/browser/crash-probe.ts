// Manual probe, not part of the suite: which server-side session ends crash Chromium's page process?
//   node --import tsx test/browser/crash-probe.ts sigterm|ignore-goaway|sigkill|violation|violation-uni
// Observed with Chromium 148: sigterm, ignore-goaway (relay closes with GOAWAY_TIMEOUT) and sigkill survive;
// the violation modes (relay closes with PROTOCOL_VIOLATION while subgroup streams are being read) crash.
import { freePort, openBrowser, Relay, serveDist, until } from "./harness.ts";

/** What the probe keeps on the page's window. */
interface Probe {
  s: { wt: WebTransport; ongoaway?: unknown; closed: Promise<unknown> };
  count: number;
  closedInfo?: unknown;
}

const mode = process.argv[2] ?? "sigterm";
const relay = new Relay(await freePort());
await relay.start();
const site = await serveDist(() => relay.port);
const b = await openBrowser();
await b.page.goto(`${site.url}/test.html`);
await b.page.evaluate(
  async ({ url, mode }) => {
    const moq = await import("/moq.js");
    const s = await moq.Session.connect(url, { fingerprintUrl: "/relay/certificate.sha256" });
    (window as unknown as Probe).s = s as unknown as Probe["s"];
    if (mode === "ignore-goaway") s.ongoaway = () => {};
    const v = await s.subscribe("demo/clip", "video0");
    (window as unknown as Probe).count = 0;
    (async () => {
      for (;;) {
        const g = await v.nextGroup();
        if (!g) break;
        while (await g.next()) (window as unknown as Probe).count++;
      }
    })();
    s.closed.then((c: unknown) => {
      (window as unknown as Probe).closedInfo = c;
    });
  },
  { url: relay.url, mode },
);
await until("objects", () => b.page.evaluate(() => (window as unknown as Probe).count > 10));
if (mode.startsWith("violation")) {
  await b.page.evaluate(async (mode) => {
    const wt = (window as unknown as Probe).s.wt as WebTransport;
    if (mode === "violation-uni") {
      const u = await wt.createUnidirectionalStream();
      const w = u.getWriter();
      await w.write(new Uint8Array([0x3f, 0, 0]));
      return;
    }
    const bidi = await wt.createBidirectionalStream();
    if (mode === "violation-read")
      bidi.readable
        .getReader()
        .read()
        .catch(() => {});
    if (mode === "violation-cancel") bidi.readable.cancel().catch(() => {});
    const w = bidi.writable.getWriter();
    await w.write(new Uint8Array([0x3f, 0, 0]));
    if (mode === "violation-close") await w.close();
  }, mode);
} else {
  await relay.stop(mode === "sigkill" ? "SIGKILL" : "SIGTERM");
}
const t0 = Date.now();
try {
  await until("session closed", () => b.page.evaluate(() => (window as unknown as Probe).closedInfo), 40_000);
  console.log(
    mode,
    "closed after",
    Date.now() - t0,
    "ms",
    JSON.stringify(await b.page.evaluate(() => (window as unknown as Probe).closedInfo)),
  );
} catch (e) {
  console.log(mode, "error", String(e).slice(0, 200));
}
await new Promise((r) => setTimeout(r, 1500));
console.log(mode, "crashed:", b.crashed());
await b.close();
await site.close();
await relay.stop("SIGKILL");
