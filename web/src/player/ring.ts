// An audio ring buffer in a SharedArrayBuffer: the decoder worker writes PCM, the AudioWorklet reads it. Each
// write also records (frame index, presentation time) so the reader knows the timestamp of what it plays, and the
// reader publishes that "audio clock" back for video to follow. A page that is not cross-origin isolated has no
// SharedArrayBuffer: then the worklet keeps a ring of its own, fed over a MessagePort (see audio-worklet.ts).

const I = {
  WRITE: 0,
  READ: 1,
  UNDERRUNS: 2,
  SKIPPED: 3,
  RUNNING: 4,
  MARKS: 5,
  FLUSH_TO: 6,
  FLUSHES: 7,
  LENGTH: 8,
};
const F = { DELAY_MS: 0, CLOCK_PTS: 1, CLOCK_WALL: 2, OUTPUT_LATENCY_MS: 3, LENGTH: 4 };
const MARKS = 64;

export interface RingLayout {
  /** Shared between the worker and the worklet, or a plain buffer the worklet keeps for itself. */
  sab: SharedArrayBuffer | ArrayBuffer;
  capacity: number;
  channels: number;
  sampleRate: number;
}

/** A view of the shared ring; both sides construct one over the same layout. */
export class AudioRing {
  readonly ints: Int32Array;
  readonly floats: Float64Array;
  readonly marks: Float64Array;
  readonly samples: Float32Array;
  /** Reader: the writer's flushes already applied. */
  private flushesSeen: number;

  constructor(readonly layout: RingLayout) {
    const { sab, capacity, channels } = layout;
    this.ints = new Int32Array(sab, 0, I.LENGTH);
    this.flushesSeen = Atomics.load(this.ints, I.FLUSHES);
    this.floats = new Float64Array(sab, 64, F.LENGTH);
    this.marks = new Float64Array(sab, 128, MARKS * 2);
    this.samples = new Float32Array(sab, 128 + MARKS * 16, capacity * channels);
  }

  static create(seconds: number, channels: number, sampleRate: number, shared = true): AudioRing {
    const capacity = Math.ceil(seconds * sampleRate);
    const bytes = 128 + MARKS * 16 + capacity * channels * 4;
    const sab = shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes);
    return new AudioRing({ sab, capacity, channels, sampleRate });
  }

  /** Frames written but not yet read. */
  get buffered(): number {
    return (Atomics.load(this.ints, I.WRITE) - Atomics.load(this.ints, I.READ)) | 0;
  }

  get running(): boolean {
    return Atomics.load(this.ints, I.RUNNING) === 1;
  }

  set running(v: boolean) {
    Atomics.store(this.ints, I.RUNNING, v ? 1 : 0);
  }

  get underruns(): number {
    return Atomics.load(this.ints, I.UNDERRUNS);
  }

  get skipped(): number {
    return Atomics.load(this.ints, I.SKIPPED);
  }

  /** Playout delay (ms after the media timestamp) that the reader aims for; set by the writer side. */
  get delayMs(): number {
    return this.floats[F.DELAY_MS] as number;
  }

  set delayMs(v: number) {
    this.floats[F.DELAY_MS] = v;
  }

  set outputLatencyMs(v: number) {
    this.floats[F.OUTPUT_LATENCY_MS] = v;
  }

  get outputLatencyMs(): number {
    return this.floats[F.OUTPUT_LATENCY_MS] as number;
  }

  /** The presentation time (µs) being heard at wall time `nowMs`, or undefined if audio is not playing. */
  clock(nowMs: number): number | undefined {
    return clockAt(this.floats[F.CLOCK_PTS] as number, this.floats[F.CLOCK_WALL] as number, nowMs);
  }

  /** The last published clock sample: the timestamp (µs) heard at wall time `wall` (ms). */
  get clockSample(): { pts: number; wall: number } {
    return { pts: this.floats[F.CLOCK_PTS] as number, wall: this.floats[F.CLOCK_WALL] as number };
  }

  /** Writer: appends planar PCM starting at presentation time `pts` (µs). Returns false if it did not fit. */
  write(pts: number, planes: Float32Array[]): boolean {
    const { capacity, channels } = this.layout;
    const n = planes[0]?.length ?? 0;
    if (n === 0) return true;
    if (capacity - this.buffered < n) return false;
    const w = Atomics.load(this.ints, I.WRITE);
    const m = Atomics.load(this.ints, I.MARKS);
    this.marks[(m % MARKS) * 2] = w;
    this.marks[(m % MARKS) * 2 + 1] = pts;
    Atomics.store(this.ints, I.MARKS, m + 1);
    for (let i = 0; i < n; i++) {
      const at = (((w + i) >>> 0) % capacity) * channels;
      for (let c = 0; c < channels; c++)
        this.samples[at + c] = (planes[c] ?? (planes[0] as Float32Array))[i] as number;
    }
    Atomics.store(this.ints, I.WRITE, (w + n) | 0);
    return true;
  }

  /**
   * Writer: nothing written so far is to be played (a jump in the timeline: a rewind, or back to live). The reader
   * skips it at its next read; what is written after this call plays. The clock stops until then.
   */
  flush(): void {
    Atomics.store(this.ints, I.FLUSH_TO, Atomics.load(this.ints, I.WRITE));
    Atomics.add(this.ints, I.FLUSHES, 1);
    this.floats[F.CLOCK_WALL] = 0;
  }

  /** The presentation time (µs) of frame index `r`, from the latest mark at or before it. */
  ptsAt(r: number): number | undefined {
    const m = Atomics.load(this.ints, I.MARKS);
    for (let k = m - 1; k >= Math.max(0, m - MARKS); k--) {
      const idx = this.marks[(k % MARKS) * 2] as number;
      const ahead = (r - idx) | 0;
      if (ahead >= 0)
        return (this.marks[(k % MARKS) * 2 + 1] as number) + (ahead * 1e6) / this.layout.sampleRate;
    }
    return undefined;
  }

  /**
   * Reader: fills `out` (one array per output channel) with the frames due now. Frames older than the target by
   * more than `lateMs` are skipped; if the next frame is early, silence is played until it is due. Returns the
   * number of frames played.
   */
  read(out: Float32Array[], nowMs: number, lateMs = 40, earlyMs = 5): number {
    const { capacity, channels, sampleRate } = this.layout;
    const frames = out[0]?.length ?? 0;
    let r = Atomics.load(this.ints, I.READ);
    const flushes = Atomics.load(this.ints, I.FLUSHES);
    if (flushes !== this.flushesSeen) {
      this.flushesSeen = flushes;
      const to = Atomics.load(this.ints, I.FLUSH_TO);
      if (((to - r) | 0) > 0) {
        r = to;
        Atomics.store(this.ints, I.READ, r);
      }
    }
    let available = this.buffered;
    const silence = () => {
      for (const o of out) o.fill(0);
    };
    if (available <= 0) {
      if (this.running) Atomics.add(this.ints, I.UNDERRUNS, 1);
      silence();
      return 0;
    }
    const due = (nowMs + this.outputLatencyMs - this.delayMs) * 1000;
    let pts = this.ptsAt(r);
    if (pts !== undefined && pts < due - lateMs * 1000) {
      const skip = Math.min(available, Math.ceil(((due - pts) / 1e6) * sampleRate));
      r = (r + skip) | 0;
      available -= skip;
      Atomics.add(this.ints, I.SKIPPED, skip);
      Atomics.store(this.ints, I.READ, r);
      pts = this.ptsAt(r);
      if (available <= 0) {
        silence();
        return 0;
      }
    }
    if (pts !== undefined && pts > due + earlyMs * 1000) {
      silence();
      return 0;
    }
    const n = Math.min(frames, available);
    for (let i = 0; i < n; i++) {
      const at = (((r + i) >>> 0) % capacity) * channels;
      for (let c = 0; c < out.length; c++)
        (out[c] as Float32Array)[i] = this.samples[at + Math.min(c, channels - 1)] as number;
    }
    for (const o of out) o.fill(0, n);
    if (n < frames) Atomics.add(this.ints, I.UNDERRUNS, 1);
    Atomics.store(this.ints, I.READ, (r + n) | 0);
    if (pts !== undefined) {
      this.floats[F.CLOCK_PTS] = pts;
      this.floats[F.CLOCK_WALL] = nowMs + this.outputLatencyMs;
    }
    return n;
  }
}

/** Extrapolates a clock sample to `nowMs`; undefined when the sample is missing or stale (audio stopped). */
export function clockAt(pts: number, wall: number, nowMs: number): number | undefined {
  if (!wall || nowMs - wall > 200) return undefined;
  return pts + (nowMs - wall) * 1000;
}
