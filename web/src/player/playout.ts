// The playout clock. `Timeline` maps a track kind's timestamps onto the viewer's wall clock: LOC timestamps are the
// publisher's wall clock, used as they are, until a publisher's timestamps stop making sense (far in the future,
// or persistently far in the past: a jump or a wrong clock); then the timeline is re-anchored so that frames are
// on time again. `PlayoutDelay` is how far behind that clock frames are shown: it follows the viewer's target, but
// never below what delivery needs (the smallest recent arrival delay plus a margin), rises while shown frames keep
// coming too late, and is bounded, so that it never chases a timestamp jump. The worker calls `tick` every 100 ms
// and `stale` for each frame it drops as too late.

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
/** The delay never rises above this (or the target, if larger), ms: more than the timeline lets a floor reach. */
export const MAX_DELAY_MS = JUMP_MS + LATE_MAX_MS + 500;
/** A delay this far above its goal drops to it at once (a discontinuity passed), ms. */
export const SNAP_MS = 1000;

export class PlayoutDelay {
  delayMs: number;
  private lateBoostMs = 0;

  constructor(public targetMs: number) {
    this.delayMs = targetMs;
  }

  /** A new target from the viewer, or a jump to the live edge: the delay jumps to it. */
  reset(targetMs: number): void {
    this.targetMs = this.delayMs = targetMs;
    this.lateBoostMs = 0;
  }

  /**
   * A frame was dropped because it was due too long ago. `playing`: this track has shown a frame already. Before
   * that, late frames are the backlog of the group joined mid-way and say nothing about delivery or decoding.
   */
  stale(playing: boolean): void {
    if (playing) this.lateBoostMs = Math.min(this.lateBoostMs + LATE_STEP_MS, LATE_MAX_MS);
  }

  /** One control tick. `base`: the smallest recent arrival delay (undefined: nothing arrived lately). */
  tick(base: number | undefined): number {
    this.lateBoostMs = Math.max(0, this.lateBoostMs - LATE_DECAY_MS);
    const needed =
      base === undefined || !Number.isFinite(base) ? this.targetMs : base + MARGIN_MS + this.lateBoostMs;
    const goal = Math.max(this.targetMs, Math.min(needed, MAX_DELAY_MS));
    if (this.delayMs < goal || this.delayMs - goal > SNAP_MS) this.delayMs = goal;
    else this.delayMs -= Math.min(this.delayMs - goal, CATCH_UP_MS);
    return this.delayMs;
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
    if (late > JUMP_MS) {
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
