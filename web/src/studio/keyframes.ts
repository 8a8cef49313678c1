// Keyframes forced for viewers' NEW_GROUP_REQUESTs, at most one per interval: a request that arrives inside the
// interval is served when it ends, never dropped (it asks for a group after the one just forced, so dropping it
// would leave that viewer waiting for the next scheduled keyframe, seconds away).

export class KeyframeLimiter {
  /** Keyframes forced so far. */
  forced = 0;
  private last = Number.NEGATIVE_INFINITY;
  private pending: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly force: () => void,
    private readonly intervalMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** A viewer wants a new group: a keyframe now, or when the interval since the last forced one ends. */
  request(): void {
    const wait = this.last + this.intervalMs - this.now();
    if (wait > 0) {
      this.pending ??= setTimeout(() => {
        this.pending = undefined;
        this.request();
      }, wait);
      return;
    }
    this.last = this.now();
    this.forced++;
    this.force();
  }

  /** Drops a deferred request (the studio stopped). */
  stop(): void {
    clearTimeout(this.pending);
    this.pending = undefined;
  }
}
