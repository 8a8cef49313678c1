// Test harness: a real moq-relay on free loopback ports, a static server for dist/ with COOP/COEP headers, and
// Debian's Chromium through playwright-core. Every wait is for a condition, with a deadline.

import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import dgram from "node:dgram";
import { createReadStream, existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before } from "node:test";
import { fileURLToPath } from "node:url";
import { type BrowserContext, chromium, type Page } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
export const WEB = path.resolve(here, "../..");
export const DIST = path.join(WEB, "dist");
const REPO = path.resolve(WEB, "..");

/** A workspace binary: $MOQ_BIN_DIR/name, else target/debug or target/release of the checkout. */
export function binary(name: string): string {
  const dir = process.env.MOQ_BIN_DIR;
  if (dir) return path.join(dir, name);
  for (const p of [`target/debug/${name}`, `target/release/${name}`]) {
    const full = path.join(REPO, p);
    if (existsSync(full)) return full;
  }
  throw new Error(`no ${name} binary: run \`cargo build -p ${name}\` or set MOQ_BIN_DIR`);
}

export function relayBinary(): string {
  return binary("moq-relay");
}

/**
 * ffmpeg's test source piped into moq-pub: two H.264 renditions (640x360 and 320x180, a keyframe every second)
 * and Opus, as one broadcast.
 */
export class Publisher {
  private proc: ChildProcess | undefined;
  log = "";

  constructor(
    readonly relayUrl: string,
    readonly namespace: string,
    private readonly packaging: "loc" | "cmaf" = "loc",
  ) {}

  start(): void {
    const x264 =
      "-c:v libx264 -preset ultrafast -tune zerolatency -pix_fmt yuv420p -profile:v baseline -bf 0 -g 30 -keyint_min 30 -sc_threshold 0";
    const ffmpeg = [
      "ffmpeg -hide_banner -loglevel error -re",
      "-f lavfi -i testsrc=size=640x360:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000",
      '-filter_complex "[0:v]split=2[hi][x];[x]scale=320:180[lo]" -map "[hi]" -map "[lo]" -map 1:a',
      `${x264} -b:v 600k -c:a libopus -b:a 48k`,
      "-f mp4 -movflags cmaf+frag_every_frame+empty_moov+default_base_moof+skip_trailer -",
    ].join(" ");
    const pub = `${binary("moq-pub")} ${this.relayUrl} --namespace ${this.namespace} --packaging ${this.packaging}`;
    const proc = spawn("sh", ["-c", `${ffmpeg} | ${pub}`], {
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    this.proc = proc;
    proc.stdout?.on("data", (b: Buffer) => (this.log += b.toString()));
    proc.stderr?.on("data", (b: Buffer) => (this.log += b.toString()));
  }

  stop(): void {
    const p = this.proc;
    if (p?.pid && p.exitCode === null) {
      try {
        process.kill(-p.pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
  }
}

/** A port free for both UDP (MoQT) and TCP (HTTP) on 127.0.0.1, so one URL serves both. */
export async function freePort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const tcp = net.createServer();
    const port = await new Promise<number>((resolve, reject) => {
      tcp.once("error", reject);
      tcp.listen(0, "127.0.0.1", () => resolve((tcp.address() as net.AddressInfo).port));
    });
    const udp = dgram.createSocket("udp4");
    const ok = await new Promise<boolean>((resolve) => {
      udp.once("error", () => resolve(false));
      udp.bind(port, "127.0.0.1", () => resolve(true));
    });
    await new Promise<void>((r) => tcp.close(() => r()));
    if (ok) {
      await new Promise<void>((r) => udp.close(() => r()));
      return port;
    }
    udp.close();
  }
  throw new Error("no free port");
}

export async function until<T>(
  what: string,
  f: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await f();
      if (v !== undefined && v !== false) return v as T;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${last}` : ""}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A moq-relay child process serving `--demo` on `port` (UDP and TCP). */
export class Relay {
  private proc: ChildProcess | undefined;
  log = "";

  constructor(
    readonly port: number,
    private readonly args: string[] = ["--demo"],
    /** How long a SIGTERM'd relay waits for its sessions to leave after GOAWAY. */
    private readonly drain = "1s",
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}/`;
  }

  async start(): Promise<void> {
    const addr = `127.0.0.1:${this.port}`;
    const proc = spawn(
      relayBinary(),
      // --web-dir: the pages just built (or $MOQ_WEB_DIR), not the ones compiled into the binary.
      // --overload-lag 0s: Chromium loads the machine enough that the relay's timers run late; overload control
      // would then skip groups.
      [
        "--bind",
        addr,
        "--http-bind",
        addr,
        "--drain-timeout",
        this.drain,
        "--web-dir",
        process.env.MOQ_WEB_DIR ?? DIST,
        "--overload-lag",
        "0s",
        ...this.args,
      ],
      {
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? "info", NO_COLOR: "1" },
      },
    );
    this.proc = proc;
    const add = (b: Buffer) => {
      this.log += b.toString();
    };
    proc.stdout?.on("data", add);
    proc.stderr?.on("data", add);
    await until("the relay's /health", async () => {
      if (proc.exitCode !== null) throw new Error(`relay exited ${proc.exitCode}: ${this.log}`);
      const r = await fetch(`http://${addr}/health`).catch(() => undefined);
      return r?.ok;
    });
  }

  /** Freezes (SIGSTOP) or thaws (SIGCONT) the relay process: a network stall as the player sees it. */
  pause(on: boolean): void {
    this.proc?.kill(on ? "SIGSTOP" : "SIGCONT");
  }

  /** Stops the relay: SIGTERM (GOAWAY, drain, close) or SIGKILL (vanishes). */
  async stop(signal: "SIGTERM" | "SIGKILL" = "SIGTERM"): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise<void>((r) => p.once("exit", () => r()));
    p.kill(signal);
    await Promise.race([exited, new Promise((r) => setTimeout(r, 8000))]);
    if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
  }
}

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript",
  ".map": "application/json",
  ".css": "text/css",
};

/** Serves dist/ like the relay does: cross-origin isolated (unless told otherwise). */
export async function serveDist(
  relayPort?: () => number,
  isolated = true,
): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? "/", "http://x");
    // The relay's certificate hash, same-origin for the page (the relay sends no CORS headers).
    if (u.pathname === "/relay/certificate.sha256" && relayPort) {
      fetch(`http://127.0.0.1:${relayPort()}/certificate.sha256`)
        .then(async (r) => res.writeHead(r.status, { "content-type": "text/plain" }).end(await r.text()))
        .catch(() => res.writeHead(502).end());
      return;
    }
    let file = path.normalize(path.join(DIST, decodeURIComponent(u.pathname)));
    if (!file.startsWith(DIST)) {
      res.writeHead(403).end();
      return;
    }
    if (existsSync(file) && statSync(file).isDirectory()) file = path.join(file, "index.html");
    if (!existsSync(file) && existsSync(`${file}.html`)) file = `${file}.html`;
    if (!existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    const headers: Record<string, string> = {
      "content-type": TYPES[path.extname(file)] ?? "application/octet-stream",
      "cache-control": "no-store",
    };
    if (isolated) {
      headers["cross-origin-opener-policy"] = "same-origin";
      headers["cross-origin-embedder-policy"] = "require-corp";
    }
    res.writeHead(200, headers);
    createReadStream(file).pipe(res);
  });
  return listen(server);
}

/** Listens on a free loopback port; `close` ends open connections too. */
export async function listen(server: http.Server): Promise<{ url: string; close(): Promise<void> }> {
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

export interface Browsing {
  context: BrowserContext;
  page: Page;
  errors: string[];
  crashed: () => boolean;
  close(): Promise<void>;
}

/** Launches headless Chromium (never a downloaded browser) with an empty profile. */
export async function openBrowser(): Promise<Browsing> {
  const profile = mkdtempSync(path.join(tmpdir(), "moq-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--use-fake-device-for-media-stream",
      "--use-fake-ui-for-media-stream",
      "--autoplay-policy=user-gesture-required",
    ],
  });
  // The WebSocket-fallback suite: Chromium as a browser without WebTransport would be.
  if (process.env.MOQ_BROWSER_NO_WEBTRANSPORT)
    await context.addInitScript(() => {
      delete (globalThis as { WebTransport?: unknown }).WebTransport;
      delete (globalThis as { WebTransportError?: unknown }).WebTransportError;
    });
  const page = context.pages()[0] ?? (await context.newPage());
  const errors: string[] = [];
  let crashed = false;
  page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
  page.on("console", (m) => {
    if (process.env.MOQ_TEST_VERBOSE) console.log(`[page] ${m.text()}`);
    if (m.type() === "error") errors.push(`console: ${m.text()}`);
  });
  page.on("crash", () => {
    crashed = true;
  });
  return {
    context,
    page,
    errors,
    crashed: () => crashed,
    async close() {
      await context.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** The query that points a page served by serveDist at `relay`. */
export function relayQuery(relay: Relay): string {
  return `url=${encodeURIComponent(relay.url)}&fingerprint-url=/relay/certificate.sha256`;
}

/** Opens /studio in a new tab of `context` and goes live on `channel`; resolves once LIVE shows. */
export async function goLive(
  context: BrowserContext,
  site: string,
  relay: Relay,
  channel: string,
  title: string,
  extra = "",
): Promise<Page> {
  const page = await context.newPage();
  const q = `${relayQuery(relay)}&channel=${channel}&title=${encodeURIComponent(title)}${extra}`;
  await page.goto(`${site}/studio?${q}`);
  await page.locator("#go-live").click();
  await page.locator("#live:not([hidden])").waitFor({ timeout: 10_000 });
  return page;
}

export type Site = Awaited<ReturnType<typeof serveDist>>;

/** Whether ffmpeg is on PATH (the tests that publish with moq-pub skip without it). */
export const hasFfmpeg = (() => {
  try {
    execFileSync("ffmpeg", ["-version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

/** What a browser test file runs against; filled in by the `before` hook that `stage` registers. */
export interface Stage {
  relay: Relay;
  site: Site;
  browser: Browsing;
  publishers: Publisher[];
}

/**
 * Registers the file's `before` and `after` hooks: a relay with `args` on a free port, moq-pub publishers of
 * ffmpeg's test source (`publish`: namespace and packaging; none without ffmpeg), the site and Chromium, its
 * first tab on the site's `open` page if given. (A file's own `before` hook may run before this one ends.)
 */
export function stage(
  options: { args?: string[]; drain?: string; publish?: [string, "loc" | "cmaf"][]; open?: string } = {},
): Stage {
  const s = { publishers: [] as Publisher[] } as Stage;
  before(async () => {
    s.relay = new Relay(await freePort(), options.args, options.drain);
    await s.relay.start();
    if (hasFfmpeg) {
      for (const [namespace, packaging] of options.publish ?? []) {
        const pub = new Publisher(s.relay.url, namespace, packaging);
        pub.start();
        s.publishers.push(pub);
      }
    }
    s.site = await serveDist(() => s.relay.port);
    s.browser = await openBrowser();
    if (options.open) await s.browser.page.goto(`${s.site.url}${options.open}`);
  });
  after(async () => {
    for (const pub of s.publishers) pub.stop();
    await s.browser?.close();
    await s.site?.close();
    await s.relay?.stop("SIGKILL");
  });
  return s;
}

export type Stats = Record<string, number | string | boolean | undefined>;

/** The `stats` of the page's `<moq-player>`. */
export const playerStats = (page: Page) =>
  page.evaluate(() => ({
    ...(document.querySelector("moq-player") as unknown as { stats: object }).stats,
  })) as Promise<Stats>;

/** A stat as a number (0 when absent). */
export const num = (v: unknown) => (typeof v === "number" ? v : 0);

/** Waits until the page's player plays again and has rendered 30 frames more than now. */
export async function playingAgain(page: Page, timeoutMs = 15_000): Promise<Stats> {
  const rendered = num((await playerStats(page)).framesRendered);
  return until(
    "playing again",
    async () => {
      const s = await playerStats(page);
      return s.state === "playing" && num(s.framesRendered) > rendered + 30 ? s : undefined;
    },
    timeoutMs,
  );
}

/**
 * The page errors other than those a relay that went away makes the browser log: failed connection attempts, and
 * a handshake with a restarted relay under the old certificate hash.
 */
export function errorsBesidesReconnecting(errors: string[]): string[] {
  const reconnecting =
    /certificate\.sha256|WebTransport|Failed to establish a connection|ERR_CONNECTION_REFUSED|Failed to load resource|502/;
  return errors.filter((e) => !reconnecting.test(e));
}

/** A relay signing key (`--auth-key`), removed after the file's tests. */
export interface SigningKey {
  /** The key file for `--auth-key`. */
  file: string;
  /** A JWT as moq-relay's auth.rs checks it: HS256, `publish` / `subscribe` prefixes, `exp` in 10 minutes. */
  token(claims: { publish?: string[]; subscribe?: string[] }): string;
}

export function signingKey(): SigningKey {
  const dir = mkdtempSync(path.join(tmpdir(), "moq-key-"));
  const key = randomBytes(32);
  const file = path.join(dir, "key.hex");
  writeFileSync(file, key.toString("hex"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const part = (v: object) => Buffer.from(JSON.stringify(v)).toString("base64url");
  return {
    file,
    token(claims) {
      const body = `${part({ alg: "HS256", typ: "JWT" })}.${part({ ...claims, exp: Math.floor(Date.now() / 1000) + 600 })}`;
      return `${body}.${createHmac("sha256", key).update(body).digest("base64url")}`;
    },
  };
}
