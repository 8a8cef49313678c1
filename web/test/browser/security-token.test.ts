// Tokens out of URLs, against a relay with `--auth-key`: the studio and the watch page take the token from the
// fragment, erase it from the address bar, and send it only in SETUP (AUTHORIZATION TOKEN, USE_VALUE). Every URL
// the pages request, every request header, and every WebTransport URL (a wrapper installed before the page's
// scripts) is recorded: the token is in none of them, yet the relay accepts it (the studio goes live, the watch
// page plays and joins the chat, where the same page without the token is refused). A studio whose relay is on
// another origin sends nothing until the streamer ticks the box naming that origin; a `?token=` is not read.

import assert from "node:assert/strict";
import { test } from "node:test";
import type { Page } from "playwright-core";
import { num, playerStats, relayQuery, signingKey, stage, until } from "./harness.ts";

const key = signingKey();
const token = (claims: { publish?: string[]; subscribe?: string[] }) => key.token(claims);
const env = stage({ args: ["--auth-key", key.file] });

interface Recorded {
  page: Page;
  /** Every request: its URL (without the fragment, which is never sent) and its headers. */
  requests: { url: string; headers: string }[];
  /** The URLs WebTransport sessions were opened to. */
  transports: () => Promise<string[]>;
}

/** A new tab that records what it requests. */
async function recordedPage(): Promise<Recorded> {
  const page = await env.browser.context.newPage();
  const requests: Recorded["requests"] = [];
  page.on("request", (r) => {
    requests.push({ url: r.url().split("#")[0] as string, headers: JSON.stringify(r.headers()) });
  });
  await page.addInitScript(() => {
    const w = window as unknown as { WebTransport: typeof WebTransport; moqTransportUrls: string[] };
    const Original = w.WebTransport;
    w.moqTransportUrls = [];
    w.WebTransport = class extends Original {
      constructor(url: string | URL, options?: WebTransportOptions) {
        w.moqTransportUrls.push(String(url));
        super(url, options);
      }
    };
  });
  const transports = () =>
    page.evaluate(() => (window as unknown as { moqTransportUrls: string[] }).moqTransportUrls.slice());
  return { page, requests, transports };
}

/** The token is in no URL, no header, no WebTransport URL, and no longer in the address bar. */
async function assertNowhere(r: Recorded, jwt: string, opened = true): Promise<void> {
  const signature = jwt.split(".")[2] as string;
  assert.ok(r.requests.length > 0);
  for (const q of r.requests) {
    assert.ok(!q.url.includes(signature), `token in a request URL: ${q.url}`);
    assert.ok(!q.headers.includes(signature), `token in the headers of ${q.url}`);
  }
  const transports = await r.transports();
  if (opened) assert.ok(transports.length > 0, "a WebTransport session was opened");
  for (const u of transports) assert.ok(!u.includes(signature), `token in a WebTransport URL: ${u}`);
  const href = await r.page.evaluate(() => location.href);
  assert.ok(!href.includes(signature), `token still in the address bar: ${href}`);
}

test("studio: the token from #token= goes live through SETUP, in no URL, gone from the address bar", async () => {
  const jwt = token({ publish: ["live/tok", "chat/tok/users"], subscribe: ["chat/tok"] });
  const r = await recordedPage();
  // Served by the relay itself: the relay is the page's own origin.
  await r.page.goto(`${env.relay.url}studio?channel=tok&size=320x180#token=${jwt}&keep=1`);
  assert.equal(await r.page.evaluate(() => location.hash), "#keep=1", "the rest of the fragment stays");
  assert.equal(await r.page.locator("#token").inputValue(), jwt);
  assert.equal(await r.page.locator("#token-consent").count(), 0, "no question for the page's own relay");
  await r.page.locator("#go-live").click();
  await r.page.locator("#live:not([hidden])").waitFor({ timeout: 10_000 });
  await r.page.locator("#chat .chat-status", { hasText: "in chat/tok as" }).waitFor({ timeout: 10_000 });
  await assertNowhere(r, jwt);
});

test("watch: the token from #token= plays and joins the chat through SETUP; without it, refused", async () => {
  // The same channel is live (previous test's tab); a viewer's token: subscribe everything, post in its chat.
  const jwt = token({ publish: ["chat/tok/users"], subscribe: [""] });
  const r = await recordedPage();
  await r.page.goto(`${env.relay.url}watch?name=live/tok#token=${jwt}`);
  await until(
    "frames",
    async () => {
      const s = await playerStats(r.page);
      return num(s.framesRendered) > 30 ? s : undefined;
    },
    15_000,
  );
  await r.page.locator("#chat .chat-status", { hasText: "in chat/tok as" }).waitFor({ timeout: 10_000 });
  await assertNowhere(r, jwt);

  const anonymous = await env.browser.context.newPage();
  await anonymous.goto(`${env.relay.url}watch?name=live/tok`);
  await until(
    "the refusal",
    async () => /UNAUTHORIZED/.test(String((await playerStats(anonymous)).error)),
    10_000,
  );
  assert.equal(num((await playerStats(anonymous)).framesRendered), 0);
  await anonymous.close();
  await r.page.close();
});

test("studio with a relay on another origin: nothing is sent until the box naming it is ticked", async () => {
  const jwt = token({ publish: ["live/far", "chat/far/users"], subscribe: ["chat/far"] });
  const r = await recordedPage();
  await r.page.goto(`${env.site.url}/studio?${relayQuery(env.relay)}&channel=far&size=320x180#token=${jwt}`);
  const box = r.page.locator("#token-consent");
  assert.equal(await box.isVisible(), true);
  assert.equal(await box.isChecked(), false, "unchecked by default");
  const origin = new URL(env.relay.url).origin;
  assert.match(
    (await r.page.locator(".token-consent").textContent()) ?? "",
    new RegExp(`Send my token to ${origin}`),
  );
  await r.page.locator("#go-live").click();
  const error = r.page.locator("#error:not([hidden])");
  await error.waitFor({ timeout: 5000 });
  assert.match((await error.textContent()) ?? "", new RegExp(`token would go to ${origin}`));
  assert.deepEqual(await r.transports(), [], "no session was opened");
  assert.equal(await r.page.locator("body").getAttribute("data-state"), "offline");
  await box.check();
  await r.page.locator("#go-live").click();
  await r.page.locator("#live:not([hidden])").waitFor({ timeout: 10_000 });
  await assertNowhere(r, jwt);
  await r.page.close();
});

test("a ?token= in the query is not read, and is erased", async () => {
  const jwt = token({ publish: ["live/query"] });
  const page = await env.browser.context.newPage();
  await page.goto(`${env.relay.url}studio?channel=query&size=320x180&token=${jwt}`);
  assert.equal(await page.locator("#token").inputValue(), "");
  assert.ok(!(await page.evaluate(() => location.href)).includes(jwt));
  await page.locator("#go-live").click();
  await page.locator("#error:not([hidden])", { hasText: "UNAUTHORIZED" }).waitFor({ timeout: 8000 });
  await page.close();
});
