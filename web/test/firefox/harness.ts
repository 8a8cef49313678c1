// Firefox for the browser tests: Debian's firefox-esr, headless, driven over WebDriver BiDi by puppeteer-core
// (no browser download, no geckodriver: Firefox's own remote agent speaks BiDi). Fake camera and microphone.
// The relay, the site and the waits are the Chromium harness's.

import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before } from "node:test";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { freePort, Relay, type Site, serveDist, until } from "../browser/harness.ts";

export const FIREFOX = process.env.FIREFOX ?? "/usr/bin/firefox-esr";

/** Firefox's major version, or undefined when it is not installed. */
export const firefoxVersion: number | undefined = (() => {
  if (!existsSync(FIREFOX)) return undefined;
  try {
    const out = execFileSync(FIREFOX, ["--version"], { encoding: "utf8" });
    return Number(/(\d+)\./.exec(out)?.[1]);
  } catch {
    return undefined;
  }
})();

/**
 * A PulseAudio server with a null sink, for Firefox's audio graphs: without an audio device an AudioContext never
 * runs in Firefox (Chromium fakes one). `undefined` where pulseaudio is not installed.
 */
export async function startPulse(): Promise<{ server: string; stop(): void } | undefined> {
  try {
    execFileSync("pulseaudio", ["--version"], { stdio: "ignore" });
  } catch {
    return undefined;
  }
  const dir = mkdtempSync(path.join(tmpdir(), "moq-pulse-"));
  const socket = path.join(dir, "native");
  const proc: ChildProcess = spawn(
    "pulseaudio",
    [
      "--daemonize=no",
      "-n",
      "--use-pid-file=no",
      "--exit-idle-time=-1",
      "--load=module-null-sink sink_name=null",
      `--load=module-native-protocol-unix socket=${socket} auth-anonymous=1`,
    ],
    { stdio: "ignore", env: { ...process.env, HOME: dir, XDG_RUNTIME_DIR: dir } },
  );
  await until("pulseaudio's socket", () => existsSync(socket));
  return {
    server: `unix:${socket}`,
    stop() {
      proc.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Headless Firefox with the fake camera and microphone, its audio through `pulse` if given. */
export function launchFirefox(pulse?: { server: string }): Promise<Browser> {
  return puppeteer.launch({
    browser: "firefox",
    executablePath: FIREFOX,
    headless: true,
    env: { ...process.env, ...(pulse ? { PULSE_SERVER: pulse.server } : {}) },
    extraPrefsFirefox: {
      "media.navigator.streams.fake": true,
      "media.navigator.permission.disabled": true,
      "media.autoplay.default": 0,
      "media.autoplay.block-webaudio": false,
    },
  });
}

export interface FirefoxStage {
  relay: Relay;
  site: Site;
  browser: Browser;
  /** Console errors and uncaught page errors, of every page opened through `open`. */
  errors: string[];
  open(path: string): Promise<Page>;
}

/** Registers the file's hooks: a relay with `args` on a free port, the site, and headless Firefox. */
export function firefoxStage(args: string[] = ["--demo"]): FirefoxStage {
  const s = { errors: [] as string[] } as FirefoxStage;
  let pulse: Awaited<ReturnType<typeof startPulse>>;
  before(async () => {
    pulse = await startPulse();
    s.relay = new Relay(await freePort(), args);
    await s.relay.start();
    s.site = await serveDist(() => s.relay.port);
    s.browser = await launchFirefox(pulse);
    s.open = async (path: string) => {
      const page = await s.browser.newPage();
      page.on("console", (m) => {
        if (process.env.MOQ_TEST_VERBOSE) console.log(`[firefox] ${m.text()}`);
        if (m.type() === "error") s.errors.push(`console: ${m.text()}`);
      });
      page.on("pageerror", (e) => s.errors.push(`pageerror: ${e instanceof Error ? e.message : String(e)}`));
      await page.goto(`${s.site.url}${path}`);
      return page;
    };
  });
  after(async () => {
    await s.browser?.close().catch(() => {});
    await s.site?.close();
    await s.relay?.stop("SIGKILL");
    pulse?.stop();
  });
  return s;
}
