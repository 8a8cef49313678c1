// The transport race's edges that need no network: an abort while WebTransport connects closes it and rejects
// with the abort's reason; an abort before the call makes nothing; a failed WebTransport is named in the error.

import assert from "node:assert/strict";
import { afterEach, test } from "node:test";
import { openTransport } from "../../src/client/connect.ts";

const FINGERPRINT = "00".repeat(32);
const made: FakeWebTransport[] = [];

class FakeWebTransport {
  static fail: Error | undefined;
  closedWith: unknown;
  readonly ready: Promise<void>;
  readonly closed: Promise<unknown>;
  private reject!: (e: unknown) => void;
  constructor(readonly url: string) {
    made.push(this);
    this.ready = new Promise<void>((_, reject) => {
      this.reject = reject;
      if (FakeWebTransport.fail) reject(FakeWebTransport.fail);
    });
    this.closed = this.ready.then(() => ({}));
  }
  close(info: unknown): void {
    this.closedWith = info;
    this.reject(new Error("closed"));
  }
}

const global = globalThis as { WebTransport?: unknown };
const original = global.WebTransport;
global.WebTransport = FakeWebTransport;
afterEach(() => {
  made.length = 0;
  FakeWebTransport.fail = undefined;
});
process.on("exit", () => {
  global.WebTransport = original;
});

const options = (signal?: AbortSignal) => ({
  versions: [19 as const],
  fingerprint: FINGERPRINT,
  transport: "webtransport" as const,
  ...(signal ? { signal } : {}),
});

test("an abort while WebTransport connects closes it and rejects with the reason", async () => {
  const controller = new AbortController();
  const opening = openTransport("https://relay.example/", options(controller.signal));
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(made.length, 1, "WebTransport was started");
  controller.abort(new Error("page left"));
  await assert.rejects(opening, /page left/);
  assert.deepEqual(made[0]?.closedWith, { closeCode: 0, reason: "aborted" });
});

test("an abort before the call starts nothing", async () => {
  const controller = new AbortController();
  controller.abort(new Error("too late"));
  await assert.rejects(openTransport("https://relay.example/", options(controller.signal)), /too late/);
  assert.equal(made.length, 0);
});

test("a failed WebTransport is named in the error", async () => {
  FakeWebTransport.fail = new Error("handshake refused");
  await assert.rejects(
    openTransport("https://relay.example/", options()),
    /relay unreachable at .*handshake refused/,
  );
});
