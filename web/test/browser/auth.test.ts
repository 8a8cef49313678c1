// Publishing from /studio into a relay that requires a token (`--auth-key`): without a token, or with one for
// another channel, the page shows the refusal; with a valid JWT (HS256, `publish: ["live/secure"]`) it goes live.
// The token is given as `#token=` and, the relay being on another origin than the pages, sent once the box
// allowing it is ticked (security-token.test.ts covers where it travels).

import assert from "node:assert/strict";
import { test } from "node:test";
import type { Page } from "playwright-core";
import { relayQuery, signingKey, stage } from "./harness.ts";

const key = signingKey();
const token = (claims: { publish?: string[]; subscribe?: string[] }) => key.token(claims);
const env = stage({ args: ["--auth-key", key.file] });

async function tryToGoLive(channel: string, jwt?: string): Promise<Page> {
  const page = await env.browser.context.newPage();
  const t = jwt ? `#token=${encodeURIComponent(jwt)}` : "";
  await page.goto(`${env.site.url}/studio?${relayQuery(env.relay)}&channel=${channel}&size=320x180${t}`);
  if (jwt) await page.locator("#token-consent").check();
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
