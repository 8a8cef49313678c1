// The three hls.js configurations the evaluation compares, chosen by the eval-hls page's `&mode=`.

import type { HlsConfig } from "hls.js";

export const MODES = ["hls", "ll", "ll-tuned"] as const;
export type Mode = (typeof MODES)[number];

/** The `mode` query parameter; undefined when it names no mode. Absent means "hls". */
export function parseMode(value: string | null): Mode | undefined {
  if (value === null || value === "") return "hls";
  return (MODES as readonly string[]).includes(value) ? (value as Mode) : undefined;
}

/**
 * What the page passes to `new Hls()` in `mode`; everything not named keeps hls.js's default.
 *
 * - `hls`: the defaults, but segments only (`lowLatencyMode: false`; hls.js defaults it to true): it plays
 *   the playlist's HOLD-BACK (else 3 target durations) behind the live edge and never speeds up or seeks to catch
 *   up.
 * - `ll`: the defaults with `lowLatencyMode: true`: parts, blocking playlist reloads and preload hints, starting
 *   PART-HOLD-BACK behind the edge; still no catch-up (maxLiveSyncPlaybackRate 1, liveMaxLatencyDuration none).
 * - `ll-tuned`: `ll` chasing the live edge as hard as hls.js allows:
 *   - liveSyncDuration = `partHoldBackS` (default 1 s: three 333 ms parts, what eval-origin's default
 *     `--part-ms 333` advertises as PART-HOLD-BACK): the target latency, set explicitly so it holds;
 *   - liveMaxLatencyDuration = that + 1.5 s: further behind, hls.js seeks to the sync point (default: never);
 *   - maxLiveSyncPlaybackRate 1.5: between the two it plays up to 1.5x faster until back at the target
 *     (default 1: never);
 *   - liveSyncOnStallIncrease 0.1 s: a stall raises the target by 0.1 s instead of 1 s;
 *   - backBufferLength 4 s: keeps 4 s behind the playhead instead of everything.
 */
export function hlsConfig(mode: Mode, partHoldBackS = 1): Partial<HlsConfig> {
  switch (mode) {
    case "hls":
      return { lowLatencyMode: false };
    case "ll":
      return { lowLatencyMode: true };
    case "ll-tuned":
      return {
        lowLatencyMode: true,
        liveSyncDuration: partHoldBackS,
        liveMaxLatencyDuration: partHoldBackS + 1.5,
        maxLiveSyncPlaybackRate: 1.5,
        liveSyncOnStallIncrease: 0.1,
        backBufferLength: 4,
      };
  }
}
