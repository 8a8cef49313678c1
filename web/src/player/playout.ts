// The playout clock. `Timeline` maps a track kind's timestamps onto the viewer's wall clock: LOC timestamps are the
// publisher's wall clock, used as they are, until a publisher's timestamps stop making sense (far in the future,
// or persistently far in the past beyond the delay the viewer asked for: a jump or a wrong clock); then the
// timeline is re-anchored so that frames are on time again. `PlayoutDelay` is how far behind that clock frames are
// shown. What delivery needs is the smallest recent arrival delay plus a margin, raised while shown frames keep
// coming too late, and bounded, so that it never chases a timestamp jump; the viewer's `LatencyMode` says how the
// delay follows it. The worker calls `tick` every 100 ms and `stale` for each frame it drops as too late.

/**
 * The latency the viewer asked for. Real-time: what delivery needs, nothing more. Fixed: `ms`, higher only while
 * delivery cannot make it. Range: what delivery needs within [minMs, maxMs]; past maxMs late frames are dropped
 * rather than the delay raised.
 */
export type LatencyMode =
  | { kind: "realtime" }
  | { kind: "fixed"; ms: number }
  | { kind: "range"; minMs: number; maxMs: number };

/** Decode + render margin on top of the smallest arrival delay, ms. */
export const MARGIN_MS = 20;
/** How far the delay moves down per tick when above its goal: a 5% catch-up at 100 ms ticks. */
export const CATCH_UP_MS = 5;
/** What each frame dropped as late adds to the delay, the cap, and the decay per tick, ms. */
export const LATE_STEP_MS = 10;
export const LATE_MAX_MS = 500;
export const LATE_DECAY_MS = 1;
/**
 * A timestamp this far from where the timeline expects it is a discontinuity, ms: a frame due this far in the
 * future re-anchors at once, frames this late re-anchor once they have been for LATE_RUN_MS.
 */
export const JUMP_MS = 3000;
/** How long every frame must arrive more than JUMP_MS late before the timeline re-anchors, ms. */
export const LATE_RUN_MS = 1000;
/** A frame may claim to be from this far in the future (the publisher's clock ahead of ours), ms. */
export const AHEAD_MS = 1000;
/**
 * What delivery needs is capped at this, ms: more than the timeline lets a floor reach. A fixed delay or a range's
 * minimum may be larger.
 */
export const MAX_DELAY_MS = JUMP_MS + LATE_MAX_MS + 500;
/** A delay this far above its goal drops to it at once (a discontinuity passed), ms. */
export const SNAP_MS = 1000;

/** Where a mode's delay starts, at the start and after a jump to the live edge: its lowest, ms. */
export function startMs(mode: LatencyMode): number {
  if (mode.kind === "fixed") return mode.ms;
  return mode.kind === "range" ? mode.minMs : MARGIN_MS;
}

/** The largest delay a mode asks for (real-time asks for none), ms. */
export function requestedMs(mode: LatencyMode): number {
  if (mode.kind === "fixed") return mode.ms;
  return mode.kind === "range" ? mode.maxMs : 0;
}

export class PlayoutDelay {
  delayMs: number;
  /** The viewer's mode; the delay moves to it from the next tick on. */
  mode: LatencyMode;
  private lateBoostMs = 0;

  /** Starts with a fixed delay of `targetMs`. */
  constructor(targetMs: number) {
    this.mode = { kind: "fixed", ms: targetMs };
    this.delayMs = targetMs;
  }

  /** Where the delay starts after a jump to the live edge (`startMs` of the mode), ms. */
  get targetMs(): number {
    return startMs(this.mode);
  }

  /** The largest delay the mode asks for (`requestedMs`), ms. */
  get requestedMs(): number {
    return requestedMs(this.mode);
  }

  /** A start, or a jump to the live edge: the delay jumps to `delayMs`, the mode stays. */
  reset(delayMs: number): void {
    this.delayMs = delayMs;
    this.lateBoostMs = 0;
  }

  /**
   * A frame was dropped because it was due too long ago. `newest`: it was the newest frame sent to the decoder, so
   * delivery and decoding need more delay. Older ones are a backlog being worked through (a join mid-group, a
   * burst after a stall) and say nothing about that.
   */
  stale(newest: boolean): void {
    if (newest) this.lateBoostMs = Math.min(this.lateBoostMs + LATE_STEP_MS, LATE_MAX_MS);
  }

  /** One control tick. `base`: the smallest recent arrival delay (undefined: nothing arrived lately). */
  tick(base: number | undefined): number {
    this.lateBoostMs = Math.max(0, this.lateBoostMs - LATE_DECAY_MS);
    const needed =
      base === undefined || !Number.isFinite(base)
        ? undefined
        : Math.min(base + MARGIN_MS + this.lateBoostMs, MAX_DELAY_MS);
    const goal = this.goal(needed);
    if (this.delayMs < goal || this.delayMs - goal > SNAP_MS) this.delayMs = goal;
    else this.delayMs -= Math.min(this.delayMs - goal, CATCH_UP_MS);
    return this.delayMs;
  }

  /** The delay the mode wants when delivery needs `needed` ms (undefined: unknown, so a fixed delay, else hold). */
  private goal(needed: number | undefined): number {
    const m = this.mode;
    if (m.kind === "fixed") return Math.max(m.ms, needed ?? m.ms);
    const follow = needed ?? this.delayMs;
    return m.kind === "range" ? Math.min(Math.max(follow, m.minMs), m.maxMs) : follow;
  }
}

/** What `Timeline.map` made of a timestamp. */
export interface Mapped {
  /** The timestamp on the playout timeline, µs. */
  ts: number;
  /** The shift applied since the previous frame when this frame re-anchored the timeline, ms; else 0. */
  jumpMs: number;
}

/**
 * One track kind's timeline (video, or audio): raw timestamp + offset = the viewer's wall clock at which the
 * frame was current. The offset is 0 while the publisher's clock agrees with ours; it changes only at a
 * discontinuity, which maps the frame to "current on arrival". Frames seconds old are not one by themselves:
 * joining mid-group starts with them, and a stalled network delivers them; only a run of LATE_RUN_MS is.
 */
export class Timeline {
  /**
   * The delay the viewer asked for (`requestedMs`), ms: a frame is late by what it arrives after its timestamp
   * beyond this, so that frames old only because the viewer wants them old (a large fixed delay) stay on the
   * timeline.
   */
  allowanceMs = 0;
  private offsetUs = 0;
  /** The arrival time of the first of an unbroken run of frames more than JUMP_MS late, ms. */
  private lateSince: number | undefined;

  /** Maps `ts` (µs) of a frame that arrived at `arrivalMs` (wall clock); undefined for an unusable timestamp. */
  map(ts: number, arrivalMs: number): Mapped | undefined {
    if (!Number.isFinite(ts) || Math.abs(ts) > Number.MAX_SAFE_INTEGER || !Number.isFinite(arrivalMs))
      return undefined;
    const mapped = Math.round(ts + this.offsetUs);
    const late = arrivalMs - mapped / 1000;
    let reanchor = late < -AHEAD_MS;
    if (late - this.allowanceMs > JUMP_MS) {
      this.lateSince ??= arrivalMs;
      reanchor = arrivalMs - this.lateSince >= LATE_RUN_MS;
    } else {
      this.lateSince = undefined;
    }
    if (!reanchor) return { ts: mapped, jumpMs: 0 };
    this.lateSince = undefined;
    const before = this.offsetUs;
    this.offsetUs = Math.round(arrivalMs * 1000 - ts);
    return { ts: Math.round(arrivalMs * 1000), jumpMs: (this.offsetUs - before) / 1000 };
  }

  /** Forgets the anchor (a new session). */
  reset(): void {
    this.offsetUs = 0;
    this.lateSince = undefined;
  }
}
