// WebKitGTK for the browser tests and benches: its MiniBrowser driven by WebKitWebDriver over classic WebDriver
// (selenium-webdriver), on a virtual X display (Debian's MiniBrowser has no headless mode).

import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { Builder, type WebDriver } from "selenium-webdriver";
import { freePort, until } from "../browser/harness.ts";

const MINIBROWSER = process.env.WEBKIT_MINIBROWSER ?? "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser";

function installed(cmd: string): boolean {
  try {
    execFileSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** Why WebKit cannot run here, or undefined when it can. */
export const webkitMissing: string | undefined =
  installed("WebKitWebDriver") && installed("xvfb-run") && existsSync(MINIBROWSER)
    ? undefined
    : "webkit2gtk-driver or xvfb is not installed";

export interface WebKit {
  driver: WebDriver;
  quit(): Promise<void>;
}

/** Starts WebKitWebDriver on a virtual display and opens a MiniBrowser session. */
export async function launchWebKit(): Promise<WebKit> {
  const port = await freePort();
  const proc: ChildProcess = spawn("xvfb-run", ["-a", "WebKitWebDriver", `--port=${port}`], {
    stdio: "ignore",
    detached: true,
  });
  const kill = () => {
    try {
      if (proc.pid) process.kill(-proc.pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  };
  try {
    await until("WebKitWebDriver", async () => {
      const r = await fetch(`http://127.0.0.1:${port}/status`).catch(() => undefined);
      return r?.ok;
    });
    const driver = await new Builder()
      .usingServer(`http://127.0.0.1:${port}`)
      .withCapabilities({
        browserName: "MiniBrowser",
        "webkitgtk:browserOptions": { binary: MINIBROWSER, args: ["--automation"] },
      })
      .build();
    return {
      driver,
      async quit() {
        await driver.quit().catch(() => {});
        kill();
      },
    };
  } catch (e) {
    kill();
    throw e;
  }
}
