// A relay that vanished (killed, network gone) sends no close; the browser would notice only at its idle timeout.
// After SILENCE_MS without an object, a TRACK_STATUS probe must be answered within SILENCE_MS, or the session is
// closed here and the player reconnects.

import type { Session } from "../client/session.ts";
import type { Playback } from "./playback.ts";

/** Silence after which the player asks the relay whether it is still there, and how long it waits, ms. */
export const SILENCE_MS = 2000;

export class SilenceWatchdog {
  private lastObjects = 0;
  private lastObjectAt = performance.now();
  private probing = false;

  /**
   * Called every tick (`t`: performance.now()) with the current playback and session. `current` says, when a
   * probe times out, whether `session` is still the player's (else it is left alone).
   */
  check(
    t: number,
    p: Playback | undefined,
    session: Session | undefined,
    current: () => Session | undefined,
  ): void {
    if (!p || !session) {
      this.lastObjectAt = t;
      return;
    }
    const objects = p.stats.videoObjects + p.stats.audioObjects;
    if (objects !== this.lastObjects) {
      this.lastObjects = objects;
      this.lastObjectAt = t;
      return;
    }
    if (this.probing || t - this.lastObjectAt < SILENCE_MS) return;
    this.probing = true;
    const timeout = new Promise<"timeout">((r) => setTimeout(() => r("timeout"), SILENCE_MS));
    Promise.race([session.trackStatus(p.broadcast, "catalog").then(() => "ok" as const), timeout])
      .catch(() => "ok" as const)
      .then((result) => {
        this.probing = false;
        this.lastObjectAt = performance.now();
        if (result === "timeout" && current() === session) session.close(0, "relay not responding");
      });
  }
}
