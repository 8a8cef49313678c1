// The relay's chat rules as the pages show them, against a relay with `--auth-key` (the streamer is the token
// that may publish `live/<channel>`; viewers' tokens may only post in the chat): a post over the session's rate
// is marked with the relay's reason from its notices track; a viewer taking a "streamer…" name is told the name
// is reserved; the streamer in the studio removes a viewer's message (gone from every page) and mutes the viewer
// (whose next post is marked "muted"). Pages are served by the relay itself, so tokens go in SETUP without a
// consent box. Every page is on 127.0.0.1: the address's chat limit is raised so the session's is what shows.

import assert from "node:assert/strict";
import { test } from "node:test";
import type { Page } from "playwright-core";
import { signingKey, stage, until } from "./harness.ts";

const key = signingKey();
const token = (claims: { publish?: string[]; subscribe?: string[] }) => key.token(claims);
const env = stage({ args: ["--auth-key", key.file, "--chat-address-burst", "100"] });

const JOINED = /as s\d+$/;

/** A viewer's watch page on `channel`, its chat joined (the relay told it its id) under `name`. */
async function viewer(channel: string, name: string): Promise<Page> {
  const jwt = token({ publish: [`chat/${channel}/users`], subscribe: [""] });
  const page = await env.browser.context.newPage();
  await page.goto(`${env.relay.url}watch?name=live/${channel}#token=${jwt}`);
  await page.locator("#chat .chat-status", { hasText: JOINED }).waitFor({ timeout: 8_000 });
  await page.locator("#chat input[name=name]").fill(name);
  return page;
}

/** Submits each text through the chat's form, all in one task: faster than any rate. */
const say = (page: Page, ...texts: string[]) =>
  page.evaluate((texts) => {
    const form = document.querySelector("#chat form.post-form") as HTMLFormElement;
    const input = form.querySelector("input[name=text]") as HTMLInputElement;
    for (const t of texts) {
      input.value = t;
      form.requestSubmit();
    }
  }, texts);

/** The room's messages as a page shows them. */
const shown = (page: Page) =>
  page.locator("#chat ol.messages li .text").evaluateAll((els) => els.map((e) => e.textContent ?? ""));

/** The page's refused posts: "text — not delivered: reason". */
const failed = (page: Page) =>
  page.locator("#chat ol.outbox li.failed .text").evaluateAll((els) => els.map((e) => e.textContent ?? ""));

test("a viewer posting faster than the relay's rate sees the relay's reason on each refused post", async () => {
  const page = await viewer("fast", "flash");
  const texts = Array.from({ length: 8 }, (_, i) => `fast ${i}`);
  const started = Date.now();
  await say(page, ...texts);
  await until("three refusals", async () => ((await failed(page)).length === 3 ? true : undefined), 8_000);
  const refusedAfter = Date.now() - started;
  // The burst (5) goes through. Each post is a group on its own stream, so the relay may judge them out of
  // order: which three it refuses varies, but the page marks exactly the groups its notices name.
  const reason = " — not delivered: rate limit: wait a moment";
  const refused = await failed(page);
  for (const f of refused) assert.ok(f.endsWith(reason), f);
  await until(
    "the burst in the room",
    async () => ((await shown(page)).length === 5 ? true : undefined),
    8_000,
  );
  const inRoom = await shown(page);
  const marked = refused.map((f) => f.slice(0, -reason.length));
  assert.deepEqual([...inRoom, ...marked].sort(), texts, "each post either in the room or marked refused");
  assert.equal(await page.locator("#chat ol.outbox li").count(), 3, "delivered posts left the outbox");
  assert.equal(
    await page.locator("#chat .chat-error").textContent(),
    "Not delivered: rate limit: wait a moment",
  );
  console.log(
    JSON.stringify({ test: "chat rate refusal", sent: 8, refused: 3, refusedAfterMs: refusedAfter }),
  );
  await page.close();
});

test("a viewer naming itself streamer-x is told the name is reserved, and may take another", async () => {
  const page = await viewer("names", "streamer-x");
  await say(page, "I am the streamer");
  await page
    .locator("#chat ol.outbox li.failed", { hasText: "the name is reserved for the channel's streamer" })
    .waitFor({ timeout: 5_000 });
  assert.deepEqual(await shown(page), [], "nothing in the room");
  // Nothing was accepted, so the relay pinned no name: the field is open again.
  const name = page.locator("#chat input[name=name]");
  await until("the name field open", async () => ((await name.isEnabled()) ? true : undefined), 3_000);
  await name.fill("x");
  await say(page, "as x");
  await until("the message as x", async () => ((await shown(page)).includes("as x") ? true : undefined));
  assert.equal(await page.locator("#chat ol.messages li .who").textContent(), "x");
  await page.close();
});

test("the streamer removes a viewer's message from every page and mutes the viewer", async () => {
  const channel = "mod";
  const jwt = token({
    publish: [`live/${channel}`, `chat/${channel}/users`],
    subscribe: [`chat/${channel}`],
  });
  const studio = await env.browser.context.newPage();
  await studio.goto(`${env.relay.url}studio?channel=${channel}&size=320x180#token=${jwt}`);
  await studio.locator("#go-live").click();
  await studio.locator("#live:not([hidden])").waitFor({ timeout: 10_000 });
  await studio.locator("#chat .chat-status", { hasText: JOINED }).waitFor({ timeout: 8_000 });
  const [troll, other] = [await viewer(channel, "troll"), await viewer(channel, "other")];

  await say(troll, "spam spam", "hello");
  await until(
    "the viewer's messages",
    async () => ((await shown(studio)).length === 2 ? true : undefined),
    8_000,
  );
  await say(studio, "welcome");
  for (const p of [studio, troll, other])
    await until("three messages", async () => ((await shown(p)).length === 3 ? true : undefined), 8_000);
  // The streamer's message has its badge everywhere; viewers get no moderation buttons.
  for (const p of [troll, other]) {
    const mine = p.locator("#chat ol.messages li", { hasText: "welcome" });
    assert.equal(await mine.locator(".badge").textContent(), "streamer");
    assert.equal(await p.locator("#chat ol.messages button").count(), 0);
  }
  const spam = studio.locator("#chat ol.messages li", { hasText: "spam spam" });
  assert.equal(
    await studio.locator("#chat ol.messages li", { hasText: "welcome" }).locator("button").count(),
    0,
  );

  await spam.locator("button.mod-remove").click();
  for (const p of [studio, troll, other])
    await until("the message removed", async () =>
      (await shown(p)).join("|") === "hello|welcome" ? true : undefined,
    );

  await studio.locator("#chat ol.messages li", { hasText: "hello" }).locator("button.mod-mute").click();
  // The relay reads the streamer's posts in order: once this is in the room, the mute is in force.
  await say(studio, "after the mute");
  await until("the streamer's next message", async () =>
    (await shown(troll)).includes("after the mute") ? true : undefined,
  );
  await say(troll, "can you hear me");
  await troll
    .locator("#chat ol.outbox li.failed", { hasText: "muted by the channel's moderator" })
    .waitFor({ timeout: 5_000 });
  assert.ok(!(await shown(other)).includes("can you hear me"));
  // Another viewer is not muted.
  await say(other, "still talking");
  await until("the other viewer's message", async () =>
    (await shown(studio)).includes("still talking") ? true : undefined,
  );
  assert.equal(await studio.locator("#chat .chat-error").textContent(), "", "no refusal for the streamer");
  for (const p of [studio, troll, other]) await p.close();
});
