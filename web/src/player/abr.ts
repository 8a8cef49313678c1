// Automatic rendition choice: a delivery-throughput estimate from video object arrivals, and the decision to step
// down or up from it and from dropped/late frames. Pure: every time is passed in (ms), so tests use a fake clock.

/** Throughput is judged over this much history, ms. */
export const WINDOW_MS = 2000;
/** A rendition fits when its bitrate is at most this share of the estimate. */
export const SAFETY = 0.8;
/** Stepping up needs this much more room than staying: estimate x SAFETY >= UP_MARGIN x the higher bitrate. */
export const UP_MARGIN = 1.2;
/** ...held without interruption (and without trouble) for this long, ms. */
export const UP_HOLD_MS = 6000;
/** Nothing is judged this long after a start or switch (catching up to the live edge drops frames), ms. */
export const SETTLE_MS = 3000;
/** Each object is busy for at least this long, so on-time objects give a high but finite estimate, ms. */
const MIN_BUSY_MS = 1;
/** Fewer objects than this in the window give no estimate. */
const MIN_OBJECTS = 10;

interface Sample {
  at: number;
  bytes: number;
  busy: number;
  /** Arrival minus the time the publisher had it (its timestamp), ms: the delivery delay. */
  delay: number;
}

/**
 * Delivery throughput of one track, in bits per second. An object that arrives later than the smallest delivery
 * delay of the window was queued somewhere: the link was busy with it from when it was ready (its timestamp plus
 * that smallest delay) or from the previous arrival, whichever is later, until it arrived. Objects that arrive on
 * time count only MIN_BUSY_MS, so the idle gaps between frames of a live stream are not counted as transfer time
 * (bytes / wall time would only ever measure the media's own bitrate). Estimate: bytes / busy time over WINDOW_MS.
 */
export class ThroughputMeter {
  private samples: Sample[] = [];
  private lastArrival: number | undefined;

  /** A video object of `bytes` arrived at `arrival` (ms, wall clock); the publisher stamped it `ready` (ms). */
  add(bytes: number, arrival: number, ready: number): void {
    const delay = arrival - ready;
    this.trim(arrival);
    let base = delay;
    for (const s of this.samples) base = Math.min(base, s.delay);
    const start = Math.max(this.lastArrival ?? -Infinity, ready + base);
    const busy = Math.max(MIN_BUSY_MS, arrival - start);
    this.samples.push({ at: arrival, bytes, busy, delay });
    this.lastArrival = arrival;
  }

  /** The estimate at `now`, bits per second, or undefined without enough recent objects. */
  estimate(now: number): number | undefined {
    this.trim(now);
    if (this.samples.length < MIN_OBJECTS) return undefined;
    let bytes = 0;
    let busy = 0;
    for (const s of this.samples) {
      bytes += s.bytes;
      busy += s.busy;
    }
    return (bytes * 8 * 1000) / busy;
  }

  /** Forget everything (a new rendition or a discontinuity). */
  reset(): void {
    this.samples = [];
    this.lastArrival = undefined;
  }

  private trim(now: number): void {
    let i = 0;
    while (i < this.samples.length && (this.samples[i] as Sample).at < now - WINDOW_MS) i++;
    if (i > 0) this.samples.splice(0, i);
  }
}

export interface Rendition {
  name: string;
  width?: number;
  height?: number;
  framerate?: number;
  bitrate?: number;
}

/**
 * The bitrate a rendition needs, bits per second: the catalog's, else 0.1 bit per pixel per frame (a rough H.264
 * figure for live encoding; 640x360 at 30 fps is 691 kb/s).
 */
export function neededBitrate(r: Rendition): number {
  if (r.bitrate && r.bitrate > 0) return r.bitrate;
  return Math.max(1, (r.width ?? 640) * (r.height ?? 360) * (r.framerate ?? 30) * 0.1);
}

export interface AbrInput {
  /** Renditions, largest first. */
  renditions: Rendition[];
  /** The index of the one playing. */
  current: number;
  /** Delivery throughput, bits per second, if known. */
  estimate: number | undefined;
  /** Groups were skipped or several frames dropped since the last call. */
  troubled: boolean;
  now: number;
}

/**
 * The decision, with its memory: when the last switch was, and since when there has been room for the next
 * rendition up. Down at once (to the largest rendition that fits, or one step for trouble); up one step after
 * UP_HOLD_MS of continuous room and no trouble.
 */
export class AbrPolicy {
  private switchedAt = -Infinity;
  private roomSince: number | undefined;

  /** A switch happened (or playback started) at `now`. */
  switched(now: number): void {
    this.switchedAt = now;
    this.roomSince = undefined;
  }

  /** The index to play, or undefined to stay. */
  decide(i: AbrInput): number | undefined {
    const { renditions: list, current: at, estimate, now } = i;
    if (at < 0 || at >= list.length || now - this.switchedAt < SETTLE_MS) return undefined;
    const usable = estimate === undefined ? undefined : estimate * SAFETY;
    const cur = list[at] as Rendition;
    if (usable !== undefined && usable < neededBitrate(cur) && at < list.length - 1) {
      this.roomSince = undefined;
      let to = list.length - 1;
      for (let k = at + 1; k < list.length; k++) {
        if (neededBitrate(list[k] as Rendition) <= usable) {
          to = k;
          break;
        }
      }
      return to;
    }
    if (i.troubled) {
      this.roomSince = undefined;
      return at < list.length - 1 ? at + 1 : undefined;
    }
    if (at === 0) return undefined;
    // Without an estimate the room is judged by calm alone (no trouble for the whole hold).
    const up = list[at - 1] as Rendition;
    const room = usable === undefined || usable >= UP_MARGIN * neededBitrate(up);
    if (!room) {
      this.roomSince = undefined;
      return undefined;
    }
    this.roomSince ??= now;
    const hold = usable === undefined ? 2.5 * UP_HOLD_MS : UP_HOLD_MS;
    return now - this.roomSince >= hold ? at - 1 : undefined;
  }
}
