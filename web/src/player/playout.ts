// The playout delay: how far behind the publisher's clock frames are shown. It follows the viewer's target, but
// never below what delivery needs (the smallest recent arrival delay plus a margin), and rises while shown frames
// keep coming too late. The worker calls `tick` every 100 ms and `stale` for each frame it drops as too late.

/** Decode + render margin on top of the smallest arrival delay, ms. */
export const MARGIN_MS = 20;
/** How far the delay moves down per tick when above its goal: a 5% catch-up at 100 ms ticks. */
export const CATCH_UP_MS = 5;
/** What each frame dropped as late adds to the delay, the cap, and the decay per tick, ms. */
export const LATE_STEP_MS = 10;
export const LATE_MAX_MS = 500;
export const LATE_DECAY_MS = 1;

export class PlayoutDelay {
  delayMs: number;
  private lateBoostMs = 0;

  constructor(public targetMs: number) {
    this.delayMs = targetMs;
  }

  /** A new target from the viewer: the delay jumps to it. */
  reset(targetMs: number): void {
    this.targetMs = this.delayMs = targetMs;
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
    const needed = base === undefined ? this.targetMs : base + MARGIN_MS + this.lateBoostMs;
    const goal = Math.max(this.targetMs, needed);
    if (this.delayMs < goal) this.delayMs = goal;
    else this.delayMs -= Math.min(this.delayMs - goal, CATCH_UP_MS);
    return this.delayMs;
  }
}
