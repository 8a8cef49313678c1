// The chat room of a channel, against the relay's room (moq-relay/src/chat/): the streamer and three viewers
// see each other's messages in the same order, a late joiner sees the history, and a flooding sender is cut to
// its burst and told why (the relay's notice), while the others' messages still arrive. Every page is on
// 127.0.0.1, so the address's chat limit is raised: this file tests the session's.

import assert from "node:assert/strict";
import { test } from "node:test";
import type { Page } from "playwright-core";
import { goLive, relayQuery, stage, until } from "./harness.ts";

const env = stage({ args: ["--chat-address-burst", "100"] });

/** A viewer's watch page, its chat joined (the relay has told it its id) under `name`. */
async function viewer(name: string): Promise<Page> {
  const page = await env.browser.context.newPage();
  await page.goto(`${env.site.url}/watch?name=live/room&${relayQuery(env.relay)}`);
  await page.locator("#chat .chat-status", { hasText: /in chat\/room as s\d+$/ }).waitFor({ timeout: 8_000 });
  await page.locator("#chat input[name=name]").fill(name);
  return page;
}

async function say(page: Page, text: string): Promise<void> {
  await page.locator("#chat input[name=text]").fill(text);
  await page.locator("#chat button[type=submit]").click();
}

/** The room as a page shows it: "seq name: text". */
const shown = (page: Page) =>
  page
    .locator("#chat ol.messages li")
    .evaluateAll((items) =>
      items.map(
        (li) =>
          `${(li as HTMLElement).dataset.seq} ${li.querySelector(".who")?.textContent}: ${li.querySelector(".text")?.textContent}`,
      ),
    );

const texts = (lines: string[]) => lines.map((l) => l.slice(l.indexOf(" ") + 1));

test("three viewers and the streamer see every message in one order; a late joiner sees the history; a flood is cut", async () => {
  const studio = await goLive(
    env.browser.context,
    env.site.url,
    env.relay,
    "room",
    "Chat room",
    "&size=320x180",
  );
  await studio
    .locator("#chat .chat-status", { hasText: /in chat\/room as s\d+$/ })
    .waitFor({ timeout: 8_000 });
  const viewers = [await viewer("ann"), await viewer("ben"), await viewer("cat")];
  const everyone = [studio, ...viewers];
  await say(studio, "welcome <b>all</b>");
  for (const [i, v] of viewers.entries()) await say(v, `hello from ${["ann", "ben", "cat"][i]}`);
  const expected = [
    "streamer-room: welcome <b>all</b>",
    "ann: hello from ann",
    "ben: hello from ben",
    "cat: hello from cat",
  ];
  for (const page of everyone) {
    await until(
      "all four messages",
      async () => ((await shown(page)).length === 4 ? true : undefined),
      8_000,
    );
  }
  const orders = await Promise.all(everyone.map(shown));
  for (const o of orders) assert.deepEqual(o, orders[0], "every participant sees one order");
  assert.deepEqual([...texts(orders[0] ?? [])].sort(), [...expected].sort());
  const seqs = (orders[0] ?? []).map((l) => Number(l.split(" ")[0]));
  assert.deepEqual(
    seqs,
    [...seqs].sort((x, y) => x - y),
    "in sequence order",
  );
  // Text, never markup.
  assert.equal(await studio.locator("#chat ol.messages b").count(), 0);

  const late = await env.browser.context.newPage();
  await late.goto(`${env.site.url}/watch?name=live/room&${relayQuery(env.relay)}`);
  await until("the history", async () => ((await shown(late)).length === 4 ? true : undefined), 8_000);
  assert.deepEqual(await shown(late), orders[0]);

  // ann floods: 12 messages at once. The relay lets her bucket through: the burst (5) less what her hello took
  // unless it has refilled since (1 a second), maybe one more as it refills.
  const flooder = viewers[0] as Page;
  await flooder.evaluate(() => {
    const chat = (globalThis as unknown as { moqChat: { post(t: string): void } }).moqChat;
    for (let i = 0; i < 12; i++) chat.post(`flood ${i}`);
  });
  await say(viewers[1] as Page, "still here");
  await until("ben's message after the flood", async () =>
    (await shown(late)).some((l) => l.endsWith("ben: still here")) ? true : undefined,
  );
  await flooder
    .locator("#chat .chat-error", { hasText: "Not delivered: rate limit: wait a moment" })
    .waitFor({ timeout: 5_000 });
  const floods = (await shown(late)).filter((l) => l.includes("ann: flood"));
  assert.ok(floods.length >= 4 && floods.length <= 7, `flood messages in the room: ${floods.length}`);
  console.log(JSON.stringify({ test: "chat", participants: 5, floodSent: 12, floodAccepted: floods.length }));
  for (const p of [...everyone, late]) await p.close();
  assert.deepEqual(env.browser.errors, []);
});

test("an oversized message is refused in the page", async () => {
  const page = await viewer("dan");
  await say(page, "x".repeat(501));
  await page.locator("#chat .chat-error", { hasText: "at most 500" }).waitFor({ timeout: 2_000 });
  await page.close();
});
