// The viewer's latency mode (playout.ts) as text: the watch page's `?latency=` (`realtime`, `2000`, `100-500`), the
// element's attributes (`latency-mode`, `target-latency`, `latency-min`, `latency-max`), and its label. Pure, so
// that it runs in node; anything invalid falls back to a default rather than throwing.

import type { LatencyMode } from "./playout.ts";

/** The default target latency (publish to display), ms: low, with room for LAN jitter. */
export const DEFAULT_TARGET_MS = 50;
/** A range whose `latency-min` or `latency-max` is missing or invalid takes this one's, ms. */
export const DEFAULT_RANGE = { minMs: 0, maxMs: 1000 } as const;
/** The largest delay a page or an attribute may ask for, ms (a minute). */
export const MAX_REQUEST_MS = 60_000;

/** A delay from text: a number of ms in [0, MAX_REQUEST_MS], else undefined. */
export function parseDelay(s: string | null | undefined): number | undefined {
  if (s === null || s === undefined || s.trim() === "") return undefined;
  const v = Number(s);
  return Number.isFinite(v) && v >= 0 && v <= MAX_REQUEST_MS ? v : undefined;
}

/** The watch page's `latency` parameter: `realtime`, `2000` (fixed) or `100-500` (a range); else undefined. */
export function parseLatencyParam(s: string | null): LatencyMode | undefined {
  if (s === null) return undefined;
  const t = s.trim().toLowerCase();
  if (t === "realtime" || t === "real-time") return { kind: "realtime" };
  const range = /^([^-]+)-([^-]+)$/.exec(t);
  if (range) {
    const minMs = parseDelay(range[1]);
    const maxMs = parseDelay(range[2]);
    if (minMs === undefined || maxMs === undefined || minMs > maxMs) return undefined;
    return { kind: "range", minMs, maxMs };
  }
  const ms = parseDelay(t);
  return ms === undefined ? undefined : { kind: "fixed", ms };
}

/** The element's attributes that ask for `mode`, `latency-mode` last (so that it switches once the values are set). */
export function modeAttributes(mode: LatencyMode): [string, string][] {
  if (mode.kind === "fixed")
    return [
      ["target-latency", String(mode.ms)],
      ["latency-mode", "fixed"],
    ];
  if (mode.kind === "range")
    return [
      ["latency-min", String(mode.minMs)],
      ["latency-max", String(mode.maxMs)],
      ["latency-mode", "range"],
    ];
  return [["latency-mode", "realtime"]];
}

/**
 * The mode the element's attributes ask for (`get` reads one). No or an unknown `latency-mode` is fixed; a
 * missing or invalid value takes its default; a range's max below its min is raised to it.
 */
export function modeFromAttributes(get: (name: string) => string | null): LatencyMode {
  const kind = get("latency-mode")?.trim().toLowerCase();
  if (kind === "realtime" || kind === "real-time") return { kind: "realtime" };
  if (kind === "range") {
    const minMs = parseDelay(get("latency-min")) ?? DEFAULT_RANGE.minMs;
    const maxMs = parseDelay(get("latency-max")) ?? DEFAULT_RANGE.maxMs;
    return { kind: "range", minMs, maxMs: Math.max(minMs, maxMs) };
  }
  return { kind: "fixed", ms: parseDelay(get("target-latency")) ?? DEFAULT_TARGET_MS };
}

/** The mode in words: "real-time", "fixed 50 ms", "range 100–500 ms". */
export function modeText(mode: LatencyMode): string {
  if (mode.kind === "fixed") return `fixed ${mode.ms} ms`;
  if (mode.kind === "range") return `range ${mode.minMs}–${mode.maxMs} ms`;
  return "real-time";
}

/**
 * The latency the viewer expects in `mode` while the playout delay is `delayMs`, ms: "behind live" counts from it.
 * Fixed: its delay; range: its max; real-time: the delay in force (what delivery needs).
 */
export function aimMs(mode: LatencyMode, delayMs: number): number {
  if (mode.kind === "fixed") return mode.ms;
  return mode.kind === "range" ? mode.maxMs : delayMs;
}
