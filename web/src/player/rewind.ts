// Short rewind: the last minute from the relay's cache (standalone FETCH), and back to live.
//
// While rewound the live subscriptions are cancelled. Each track is fetched in ranges of a few groups, starting
// at the group that begins nearest the point asked for; the worker's delay becomes D, the delay that puts that
// group's first frame on screen now, and every later object goes to the worker only once it is due within
// LEAD_MS. A range's FETCH covers at most about RANGE_MS of media and the next one is asked for only once the
// current one has arrived, so the player holds at most two ranges per track, however far back it plays. When a
// range ends (it covers up to the relay's largest location when asked), the next one starts where it ended: the
// playback carries on D behind live until the viewer goes live again.
//
// Where a group starts is learned from the groups seen (live or fetched, `GroupClock`) and extrapolated by the
// observed group duration; a guess that lands too far from the point asked for is corrected once the first
// object of the fetched group shows its timestamp. A relay that holds less than asked for answers with the
// oldest groups it has (after an End of Range entry): the rewind is clamped to that, and says so.

import { RequestError } from "../client/requests.ts";
import { type FetchEntry, type Location, RequestErrorCode } from "../wire/index.ts";

/** An object is posted to the worker once it is due within this much, ms. */
export const LEAD_MS = 500;
/** The first fetched frame is shown this long after it arrives (its decoder starts meanwhile), ms. */
export const START_MS = 300;
/** How much media one FETCH covers, ms (whole groups: at least one, at most MAX_RANGE_GROUPS). */
export const RANGE_MS = 2000;
export const MAX_RANGE_GROUPS = 8;
/** The group duration assumed until two groups of a track have been seen, µs. */
export const DEFAULT_GROUP_US = 1_000_000;
/** A rewind goes back at most this far, s (the relay's cache is the real bound). */
export const MAX_REWIND_S = 3600;
/** After the relay said the next range does not exist yet (caught up with live), ask again after this long, ms. */
export const RETRY_MS = 250;
/** Guesses of the starting group before the closest one found is taken. */
const LOCATE_TRIES = 3;
/** Groups a GroupClock remembers (the newest). */
const CLOCK_GROUPS = 128;
/** Group durations outside this are not believed, µs. */
const MIN_GROUP_US = 10_000;
const MAX_GROUP_US = 60_000_000;

/** Which group a point in time should start from: the nearest start, or the last one at or before it. */
export type Snap = "nearest" | "before";

/** Where a track's groups start (the timestamp of object 0, µs), as seen, and extrapolated for the others. */
export class GroupClock {
  /** [group id, first timestamp µs], ascending by group id. */
  private seen: [number, number][] = [];

  observe(group: number, tsUs: number): void {
    if (!Number.isSafeInteger(group) || group < 0 || !Number.isFinite(tsUs)) return;
    const s = this.seen;
    let i = s.length;
    while (i > 0 && (s[i - 1] as [number, number])[0] > group) i--;
    if (i > 0 && (s[i - 1] as [number, number])[0] === group) s[i - 1] = [group, tsUs];
    else s.splice(i, 0, [group, tsUs]);
    if (s.length > CLOCK_GROUPS) s.shift();
  }

  get size(): number {
    return this.seen.length;
  }

  /** The typical group duration, µs: over the span of the groups seen, or DEFAULT_GROUP_US. */
  get durationUs(): number {
    const first = this.seen[0];
    const last = this.seen[this.seen.length - 1];
    if (!first || !last || last[0] === first[0]) return DEFAULT_GROUP_US;
    const d = (last[1] - first[1]) / (last[0] - first[0]);
    return d >= MIN_GROUP_US && d <= MAX_GROUP_US ? d : DEFAULT_GROUP_US;
  }

  /** The seen group whose start is nearest `tsUs`. */
  private nearest(tsUs: number): [number, number] | undefined {
    let best: [number, number] | undefined;
    for (const g of this.seen) if (!best || Math.abs(g[1] - tsUs) < Math.abs(best[1] - tsUs)) best = g;
    return best;
  }

  /** When group `group` starts (µs): as seen, or extrapolated from the nearest seen one; undefined: none seen. */
  startOf(group: number): number | undefined {
    let best: [number, number] | undefined;
    for (const g of this.seen) if (!best || Math.abs(g[0] - group) < Math.abs(best[0] - group)) best = g;
    return best && best[1] + (group - best[0]) * this.durationUs;
  }

  /** The group to start from for the point `tsUs` (see Snap); undefined when no group has been seen. */
  groupAt(tsUs: number, snap: Snap): number | undefined {
    const near = this.nearest(tsUs);
    if (!near || !Number.isFinite(tsUs)) return undefined;
    const k = (tsUs - near[1]) / this.durationUs;
    const steps = snap === "nearest" ? Math.round(k) : Math.floor(k + 1e-6);
    return Math.max(0, near[0] + steps);
  }
}

/** The publisher's time shown `seconds` before what is shown now, µs (`delayMs`: the delay in force). */
export function rewindPoint(nowMs: number, delayMs: number, seconds: number): number {
  return (nowMs - delayMs - seconds * 1000) * 1000;
}

/**
 * How far a group starting at `startUs` is from the point `pointUs` for `snap`, µs (smaller is better): for
 * "before", a start after the point (by more than a quarter group) is worse than any start before it.
 */
export function distance(startUs: number, pointUs: number, durationUs: number, snap: Snap): number {
  if (snap === "nearest" || startUs <= pointUs + durationUs / 4) return Math.abs(startUs - pointUs);
  return MAX_GROUP_US * 100 + startUs - pointUs;
}

/** Whether a group starting at `startUs` is close enough to the point `pointUs` (see Snap). */
export function closeEnough(startUs: number, pointUs: number, durationUs: number, snap: Snap): boolean {
  return distance(startUs, pointUs, durationUs, snap) <= durationUs * (snap === "nearest" ? 0.75 : 1.5);
}

/** Groups per FETCH for a track whose groups last `durationUs`. */
export function rangeGroups(durationUs: number): number {
  const n = Math.ceil((RANGE_MS * 1000) / Math.max(durationUs, MIN_GROUP_US));
  return Math.min(MAX_RANGE_GROUPS, Math.max(1, n));
}

/**
 * Where the next range starts after a FETCH answered `end` (its FETCH_OK End Location, "plus 1": object 0 means
 * the whole of that group). A relay's end that does not move forward is not followed: the next range then starts
 * after the last group asked for.
 */
export function nextStart(start: Location, end: Location | undefined, askedLastGroup: number): Location {
  const after = { group: askedLastGroup + 1, object: 0 };
  if (!end) return after;
  const next = end.object === 0 ? { group: end.group + 1, object: 0 } : end;
  const forward = next.group > start.group || (next.group === start.group && next.object > start.object);
  return forward && next.group <= after.group ? next : after;
}

/** How long to hold an object with timestamp `tsUs` before posting it, ms: until it is due within LEAD_MS. */
export function holdMs(tsUs: number, delayMs: number, nowMs: number, leadMs = LEAD_MS): number {
  return Math.max(0, tsUs / 1000 + delayMs - nowMs - leadMs);
}

/** The delay that shows a frame with timestamp `tsUs` START_MS from `nowMs`, ms. */
export function delayFor(tsUs: number, nowMs: number): number {
  return nowMs + START_MS - tsUs / 1000;
}

export type FetchObject = Exclude<FetchEntry, { endOfRange: true }>;

/** A FETCH in progress, as the rewind uses it. */
export interface Range {
  next(): Promise<FetchEntry | undefined>;
  cancel(): void;
  readonly endLocation: Location | undefined;
  /** All of its data has arrived. */
  readonly complete: boolean;
}

/** An object ready for the worker: its timestamp, and what posts it. */
export interface Converted {
  timestampUs: number;
  send(discontinuity: boolean): void;
}

/** What a rewind needs from the playback. */
export interface RewindHost {
  /** A standalone FETCH of `track` from `start` to `end` (End Location "plus 1"). */
  fetch(track: string, start: Location, end: Location): Promise<Range>;
  /** The track's largest location (TRACK_STATUS), if any. */
  largest(track: string): Promise<Location | undefined>;
  /** Where `track`'s groups start, as seen so far (live and fetched). */
  clock(track: string): GroupClock;
  /** Sends the decoder configuration for `track` (before its first object). */
  configure(kind: "video" | "audio", track: string): void;
  /** An object of `track` made ready for the worker; undefined when it is not usable media. */
  convert(kind: "video" | "audio", track: string, o: FetchObject): Converted | undefined;
  /** Wall clock, ms since the Unix epoch. */
  now(): number;
}

/** The first object of a range located near a point, and the range to read on from. */
interface Located {
  range: Range;
  start: Location;
  askedLast: number;
  first: Converted;
  tsUs: number;
  /** The relay held less than asked for (it answered with later groups). */
  clamped: boolean;
}

/** A rewind stopped (by the viewer, or a newer rewind) before it started. */
export class RewindStopped extends Error {
  override name = "RewindStopped";
}

/** One track played from the relay's cache: ranges fetched in turn, objects posted when due. */
export class Feed {
  private stopped = false;
  private ranges = new Set<Range>();
  private wakes = new Set<() => void>();
  /** Resolves when stopped; rejects with the error when the playback ended by itself (the relay, the session). */
  readonly done: Promise<void>;

  constructor(
    private readonly host: RewindHost,
    readonly kind: "video" | "audio",
    readonly track: string,
    private readonly delayMs: () => number,
    located: Located,
  ) {
    this.done = this.run(located);
  }

  stop(): void {
    this.stopped = true;
    for (const r of this.ranges) r.cancel();
    for (const w of this.wakes) w();
  }

  private sleep(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(t);
        this.wakes.delete(wake);
        resolve();
      };
      const t = setTimeout(wake, ms);
      this.wakes.add(wake);
    });
  }

  /** The next range from `start`, asked again while the relay says it does not exist yet (caught up). */
  private async fetchFrom(start: Location): Promise<{ range: Range; start: Location; askedLast: number }> {
    const n = rangeGroups(this.host.clock(this.track).durationUs);
    const askedLast = start.group + n - 1;
    for (;;) {
      if (this.stopped) throw new RewindStopped();
      try {
        const range = await this.host.fetch(this.track, start, { group: askedLast, object: 0 });
        if (this.stopped) range.cancel();
        else this.ranges.add(range);
        return { range, start, askedLast };
      } catch (e) {
        if (!(e instanceof RequestError && e.code === RequestErrorCode.INVALID_RANGE)) throw e;
        await this.sleep(RETRY_MS);
      }
    }
  }

  private async run(first: Located): Promise<void> {
    const host = this.host;
    this.ranges.add(first.range);
    let cur: { range: Range; start: Location; askedLast: number } = first;
    let ahead: Promise<{ range: Range; start: Location; askedLast: number }> | undefined;
    let pending: Converted | undefined = first.first;
    let discontinuity = true;
    let received = true;
    try {
      for (;;) {
        const e = pending ? undefined : await cur.range.next();
        if (this.stopped) return;
        // The next range is asked for once this one has fully arrived: at most two are held.
        if (!ahead && cur.range.complete) {
          ahead = this.fetchFrom(nextStart(cur.start, cur.range.endLocation, cur.askedLast));
          ahead.catch(() => {});
        }
        if (!e && !pending) {
          this.ranges.delete(cur.range);
          // A range without objects (a relay answering nothing): not asked again at once.
          if (!received) await this.sleep(RETRY_MS);
          received = false;
          cur = await (ahead ?? this.fetchFrom(nextStart(cur.start, cur.range.endLocation, cur.askedLast)));
          ahead = undefined;
          continue;
        }
        if (e && "endOfRange" in e) {
          // Objects missing (the relay's cache no longer holds them): the decoder restarts at a keyframe.
          discontinuity = true;
          continue;
        }
        if (e && e.groupId > cur.askedLast) {
          // More than was asked for: the range ends here.
          cur.range.cancel();
          continue;
        }
        received = true;
        let c = pending;
        pending = undefined;
        if (e) {
          c = host.convert(this.kind, this.track, e);
          if (c && e.objectId === 0) host.clock(this.track).observe(e.groupId, c.timestampUs);
        }
        if (!c) continue;
        const ts = c.timestampUs;
        const wait = holdMs(ts, this.delayMs(), host.now());
        if (wait > 0) await this.sleep(wait);
        if (this.stopped) return;
        // Audio already due is of no use; video is posted anyway (its decoder needs the group's frames).
        if (this.kind === "audio" && ts / 1000 + this.delayMs() < host.now()) continue;
        c.send(discontinuity);
        discontinuity = false;
      }
    } catch (e) {
      if (e instanceof RewindStopped || this.stopped) return;
      throw e;
    } finally {
      for (const r of this.ranges) r.cancel();
      this.ranges.clear();
    }
  }
}

/**
 * Finds the range of `track` whose first group starts close to the point `pointUs` (see Snap): a guess from the
 * groups seen, corrected by what the relay answers. Throws the relay's RequestError when it has nothing.
 */
export async function locate(
  host: RewindHost,
  kind: "video" | "audio",
  track: string,
  pointUs: number,
  snap: Snap,
  alive: () => boolean,
): Promise<Located> {
  const clock = host.clock(track);
  let group = clock.groupAt(pointUs, snap);
  if (group === undefined) {
    // No group of this track seen yet: count back from its newest by the assumed duration.
    const largest = await host.largest(track);
    if (!largest) throw new RequestError(RequestErrorCode.INVALID_RANGE, `${track} is empty`);
    const back = Math.ceil((host.now() * 1000 - pointUs) / clock.durationUs);
    group = Math.max(0, largest.group - back);
  }
  const tried = new Set<number>();
  let best: Located | undefined;
  /** The relay's oldest group, once it said it holds nothing before it. */
  let oldest: number | undefined;
  for (let i = 0; i < LOCATE_TRIES && !tried.has(group); i++) {
    tried.add(group);
    const start = { group, object: 0 };
    const askedLast = group + rangeGroups(clock.durationUs) - 1;
    let range: Range;
    try {
      range = await host.fetch(track, start, { group: askedLast, object: 0 });
    } catch (e) {
      // Past the newest group (a guess too far ahead): start from the newest.
      if (!(e instanceof RequestError && e.code === RequestErrorCode.INVALID_RANGE) || best) throw e;
      const largest = await host.largest(track);
      if (!largest || largest.group >= group) throw e;
      group = largest.group;
      continue;
    }
    let first: FetchObject | undefined;
    for (;;) {
      const e = await range.next();
      if (!e) break;
      if ("endOfRange" in e) {
        if (e.unknown) oldest = Math.max(oldest ?? 0, e.end.group + 1);
        continue;
      }
      first = e;
      break;
    }
    const converted = first && host.convert(kind, track, first);
    if (!first || !converted || !alive()) {
      range.cancel();
      if (!alive()) break;
      // The range asked for is older than anything held: from the oldest group held, then.
      if (oldest !== undefined && oldest > group) group = oldest;
      continue;
    }
    const tsUs = converted.timestampUs;
    if (first.objectId === 0) clock.observe(first.groupId, tsUs);
    // Later than asked for, from the oldest group held: the relay holds no more.
    const clamped = oldest !== undefined && first.groupId <= oldest && tsUs - pointUs > clock.durationUs / 2;
    const found: Located = { range, start, askedLast, first: converted, tsUs, clamped };
    const d = clock.durationUs;
    if (!best || distance(tsUs, pointUs, d, snap) < distance(best.tsUs, pointUs, d, snap)) {
      best?.range.cancel();
      best = found;
    } else range.cancel();
    if (clamped || closeEnough(tsUs, pointUs, clock.durationUs, snap)) break;
    const next = clock.groupAt(pointUs, snap);
    if (next === undefined) break;
    group = next;
  }
  if (!alive()) {
    best?.range.cancel();
    throw new RewindStopped();
  }
  if (!best) throw new RequestError(RequestErrorCode.INVALID_RANGE, `${track}: nothing held there`);
  return best;
}

/** The state a rewound playback reports. */
export interface Rewound {
  /** The worker's delay: how far behind the publisher's clock frames are shown, ms. */
  delayMs: number;
  /** The relay held less than asked for. */
  clamped: boolean;
}

/**
 * A rewound playback: video (or, without video, audio) leads and sets the delay; audio follows at it. `stop`
 * ends it; `done` rejects when a feed failed (the relay refused, the session went).
 */
export class Rewind {
  private feeds: { video?: Feed | undefined; audio?: Feed | undefined } = {};
  /** Bumped when a kind's feed is replaced or dropped: a `follow` still locating gives up. */
  private gens = { video: 0, audio: 0 };
  private tracks: { video?: string | undefined; audio?: string | undefined } = {};
  private stopped = false;
  private failed: (e: unknown) => void = () => {};
  readonly failure: Promise<never>;
  delayMs = 0;

  constructor(private readonly host: RewindHost) {
    this.failure = new Promise<never>((_, reject) => {
      this.failed = reject;
    });
    this.failure.catch(() => {});
  }

  private alive = () => !this.stopped;

  /**
   * Starts at the point `pointUs`: the leading track from the group starting nearest it, the delay set from its
   * first object (`ondelay` is called before anything is posted), then the following track.
   */
  async start(
    pointUs: number,
    tracks: { video?: string; audio?: string },
    ondelay: (r: Rewound) => void,
  ): Promise<Rewound> {
    const kind = tracks.video ? "video" : "audio";
    const track = tracks.video ?? tracks.audio;
    if (!track) throw new Error("nothing to rewind");
    const at = await locate(this.host, kind, track, pointUs, "nearest", this.alive);
    this.delayMs = delayFor(at.tsUs, this.host.now());
    const state = { delayMs: this.delayMs, clamped: at.clamped };
    ondelay(state);
    this.host.configure(kind, track);
    this.tracks[kind] = track;
    this.feeds[kind] = this.watch(new Feed(this.host, kind, track, () => this.delayMs, at));
    // Audio starts from the group at or before the first frame's time (its objects already due are skipped).
    if (tracks.video && tracks.audio) this.follow("audio", tracks.audio, at.tsUs).catch((e) => this.fail(e));
    return state;
  }

  /** Plays `track` as `kind` from the current point on (a rendition change, or audio unmuted). */
  async follow(kind: "video" | "audio", track: string, pointUs?: number): Promise<void> {
    this.drop(kind);
    const gen = this.gens[kind];
    this.tracks[kind] = track;
    // Video restarts at a group start: the one nearest what is about to be shown (frames not after the one on
    // screen are skipped by the worker); audio at the group holding the current point.
    const point = pointUs ?? (this.host.now() - this.delayMs + (kind === "video" ? LEAD_MS : 0)) * 1000;
    const at = await locate(
      this.host,
      kind,
      track,
      point,
      kind === "video" ? "nearest" : "before",
      this.alive,
    );
    if (this.stopped || gen !== this.gens[kind]) {
      at.range.cancel();
      return;
    }
    this.host.configure(kind, track);
    this.feeds[kind] = this.watch(new Feed(this.host, kind, track, () => this.delayMs, at));
  }

  /** Stops one kind (audio muted). */
  drop(kind: "video" | "audio"): void {
    this.gens[kind]++;
    this.feeds[kind]?.stop();
    this.feeds[kind] = undefined;
    this.tracks[kind] = undefined;
  }

  /** The track played (or being located) as `kind`. */
  track(kind: "video" | "audio"): string | undefined {
    return this.tracks[kind];
  }

  private fail(e: unknown): void {
    if (!this.stopped && !(e instanceof RewindStopped)) this.failed(e);
  }

  private watch(f: Feed): Feed {
    f.done.catch((e) => this.fail(e));
    return f;
  }

  stop(): void {
    this.stopped = true;
    this.feeds.video?.stop();
    this.feeds.audio?.stop();
    this.feeds = {};
  }
}
