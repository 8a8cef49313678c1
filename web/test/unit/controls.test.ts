// The player's control decisions (controls.ts): the keyboard shortcuts, volume steps, when "behind live" and
// "buffering" show.

import assert from "node:assert/strict";
import { test } from "node:test";
import {
  BEHIND_HIDE_MS,
  BEHIND_SHOW_MS,
  BUFFERING_MS,
  behindLive,
  behindText,
  buffering,
  keyAction,
  stepVolume,
} from "../../src/player/controls.ts";

test("keys: the shortcuts, case-insensitive", () => {
  const table: [string, string | undefined][] = [
    [" ", "toggle-play"],
    ["k", "toggle-play"],
    ["K", "toggle-play"],
    ["m", "toggle-mute"],
    ["M", "toggle-mute"],
    ["f", "fullscreen"],
    ["ArrowUp", "volume-up"],
    ["ArrowDown", "volume-down"],
    ["l", "go-live"],
    ["End", "go-live"],
    ["i", "toggle-stats"],
    ["I", "toggle-stats"],
    ["x", undefined],
    ["Enter", undefined],
    ["ArrowLeft", undefined],
    ["Tab", undefined],
  ];
  for (const [key, action] of table) assert.equal(keyAction({ key }), action, key);
});

test("keys: with a modifier they belong to the browser", () => {
  for (const mod of ["ctrlKey", "metaKey", "altKey"] as const) {
    for (const key of [" ", "k", "m", "f", "l", "ArrowUp"])
      assert.equal(keyAction({ key, [mod]: true }), undefined);
  }
});

test("keys: a focused button or slider keeps space and the arrows; letters still work", () => {
  for (const key of [" ", "ArrowUp", "ArrowDown"]) assert.equal(keyAction({ key }, true), undefined, key);
  assert.equal(keyAction({ key: "m" }, true), "toggle-mute");
  assert.equal(keyAction({ key: "k" }, true), "toggle-play");
  assert.equal(keyAction({ key: "End" }, true), "go-live");
});

test("volume: steps of 0.1, clamped to [0, 1], no drift", () => {
  assert.equal(stepVolume(1, 1), 1);
  assert.equal(stepVolume(0, -1), 0);
  assert.equal(stepVolume(0.5, 1), 0.6);
  assert.equal(stepVolume(0.5, -1), 0.4);
  let v = 0;
  for (let i = 0; i < 10; i++) v = stepVolume(v, 1);
  assert.equal(v, 1);
  for (let i = 0; i < 3; i++) v = stepVolume(v, -1);
  assert.equal(v, 0.7);
  assert.equal(stepVolume(Number.NaN, -1), 0.9, "a bad value counts as full volume");
  assert.equal(stepVolume(0.33, 1), 0.4, "onto the grid");
});

test("behind live: shows well above the target, hides only once back near it", () => {
  const target = 100;
  assert.equal(behindLive(false, undefined, target), false, "nothing drawn: nothing to say");
  assert.equal(behindLive(false, target + BEHIND_SHOW_MS, target), false);
  assert.equal(behindLive(false, target + BEHIND_SHOW_MS + 1, target), true);
  // Hysteresis: between the two thresholds it keeps what it showed.
  const between = target + (BEHIND_SHOW_MS + BEHIND_HIDE_MS) / 2;
  assert.equal(behindLive(true, between, target), true);
  assert.equal(behindLive(false, between, target), false);
  assert.equal(behindLive(true, target + BEHIND_HIDE_MS, target), false);
  assert.equal(behindLive(true, Number.NaN, target), false);
  // A high target is not "behind".
  assert.equal(behindLive(false, 1500, 1000), false);
  assert.equal(behindText(2500, 100), "Behind live by 2.4 s");
  assert.equal(behindText(50, 100), "Behind live by 0.0 s");
});

test("buffering: only while playing with video wanted, after a second without a frame", () => {
  const on = { playing: true, videoWanted: true, sinceFrameMs: BUFFERING_MS };
  assert.equal(buffering(on), true);
  assert.equal(buffering({ ...on, sinceFrameMs: BUFFERING_MS - 1 }), false);
  assert.equal(buffering({ ...on, playing: false }), false, "paused or connecting");
  assert.equal(buffering({ ...on, videoWanted: false }), false, "hidden or out of view");
});
