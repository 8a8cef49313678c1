// Which decoded video frame to show now. The queue holds frames sorted by timestamp, possibly from two renditions
// (after a switch the old one's frames stay until the new decoder has output): a frame is never shown when it is
// not later than the one on screen, so the picture neither repeats nor steps back. Before the first frame of a
// join, the joined group's backlog is decoded but not shown: only a frame within three quarters of a frame interval
// of the clock is, so playback starts at the live edge rather than catching up to it. The newest frame sent to the
// decoder being that late too says the delay is too small (the worker raises it), not that it should be shown.

/** While joining, a frame may be this share of a frame interval behind the clock and still be the first shown. */
export const JOIN_LATE_SHARE = 0.75;

/** A frame this far or further behind the one on screen belongs to a restarted timeline and is shown, µs. */
export const RESTART_US = 1_000_000;

export interface Pick {
  /** Frames at the queue's head to drop: passed over by a later due frame, or not after the one on screen. */
  skip: number;
  /** The frame after those: due and shown, due but too late (dropped as stale), not due yet, or none queued. */
  next: "show" | "stale" | "wait" | "none";
}

/** While joining (nothing shown yet): the frame interval, and the newest timestamp sent to the decoder, µs. */
export interface Joining {
  frameUs: number;
  newestUs: number;
}

/**
 * `queue`: the queued frames' timestamps (µs, ascending); `clockUs`: the media time being shown now;
 * `shownUs`: the timestamp of the frame on screen (undefined: none yet); `staleUs`: how late a frame may be;
 * `joining`: set until the first frame is shown.
 */
export function pickFrame(
  queue: readonly number[],
  clockUs: number,
  shownUs: number | undefined,
  staleUs: number,
  joining?: Joining,
): Pick {
  let skip = 0;
  const behindShown = (ts: number) => shownUs !== undefined && ts <= shownUs && shownUs - ts < RESTART_US;
  while (skip < queue.length) {
    const ts = queue[skip] as number;
    const nextTs = queue[skip + 1];
    if (behindShown(ts) || (nextTs !== undefined && nextTs <= clockUs)) skip++;
    else break;
  }
  const head = queue[skip];
  if (head === undefined) return { skip, next: "none" };
  if (head > clockUs) return { skip, next: "wait" };
  // Joining: not the live edge yet (the backlog, or a delay too small for the newest frame).
  if (joining && head < clockUs - joining.frameUs * JOIN_LATE_SHARE) return { skip, next: "stale" };
  return { skip, next: head < clockUs - staleUs ? "stale" : "show" };
}
