// Publishing from /studio into a relay that requires a token (`--auth-key`): without a token, or with one for
// another channel, the page shows the refusal; with a valid JWT (HS256, `publish: ["live/secure"]`) it goes live.

import assert from "node:assert/strict";
import { createHmac, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import type { Page } from "playwright-core";
import { relayQuery, stage } from "./harness.ts";

const dir = mkdtempSync(path.join(tmpdir(), "moq-auth-"));
const key = randomBytes(32);

/** A JWT as moq-relay's auth.rs checks it: HS256, `publish` / `subscribe` prefixes, `exp`. */
function token(claims: { publish?: string[]; subscribe?: string[] }): string {
  const part = (v: object) => Buffer.from(JSON.stringify(v)).toString("base64url");
  const body = `${part({ alg: "HS256", typ: "JWT" })}.${part({ ...claims, exp: Math.floor(Date.now() / 1000) + 600 })}`;
  return `${body}.${createHmac("sha256", key).update(body).digest("base64url")}`;
}

const keyFile = path.join(dir, "key.hex");
writeFileSync(keyFile, key.toString("hex"));
const env = stage({ args: ["--auth-key", keyFile] });

after(async () => {
  rmSync(dir, { recursive: true, force: true });
});

async function tryToGoLive(channel: string, jwt?: string): Promise<Page> {
  const page = await env.browser.context.newPage();
  const t = jwt ? `&token=${encodeURIComponent(jwt)}` : "";
  await page.goto(`${env.site.url}/studio?${relayQuery(env.relay)}&channel=${channel}&size=320x180${t}`);
  await page.locator("#go-live").click();
  return page;
}

test("a studio without a valid token is refused with a visible error", async () => {
  for (const jwt of [undefined, token({ publish: ["live/other"] }), `${token({ publish: ["live"] })}x`]) {
    const page = await tryToGoLive("secure", jwt);
    const error = page.locator("#error:not([hidden])");
    await error.waitFor({ timeout: 8_000 });
    assert.match(
      (await error.textContent()) ?? "",
      /refused to let this token publish live\/secure: UNAUTHORIZED/,
    );
    assert.equal(await page.locator("body").getAttribute("data-state"), "refused");
    assert.equal(await page.locator("#live").isHidden(), true);
    await page.close();
  }
});

test("a studio with a valid token goes live", async () => {
  const page = await tryToGoLive("secure", token({ publish: ["live/secure", "chat"], subscribe: [""] }));
  await page.locator("#live:not([hidden])").waitFor({ timeout: 8_000 });
  assert.equal(await page.locator("#error").isHidden(), true);
  await page.close();
});
