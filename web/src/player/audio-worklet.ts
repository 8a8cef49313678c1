// AudioWorklet processor: plays PCM from the shared ring (see ring.ts), or from its own ring fed over a
// MessagePort when the page is not cross-origin isolated, and counts what it plays.

import { AudioRing, type RingLayout } from "./ring.ts";

declare const registerProcessor: (name: string, ctor: unknown) => void;
declare class AudioWorkletProcessor {
  readonly port: MessagePort;
}

class MoqAudioProcessor extends AudioWorkletProcessor {
  private ring: AudioRing | undefined;
  private played = 0;
  private lastReport = 0;

  constructor() {
    super();
    this.port.onmessage = (
      e: MessageEvent<{ ring?: RingLayout; feed?: MessagePort; sampleRate?: number }>,
    ) => {
      if (e.data.ring) this.ring = new AudioRing(e.data.ring);
      if (e.data.feed) this.feedFrom(e.data.feed, e.data.sampleRate ?? 48000);
    };
  }

  /** Without shared memory: a private ring, written from the worker's messages, the clock sent back. */
  private feed: MessagePort | undefined;

  private feedFrom(port: MessagePort, sampleRate: number): void {
    const ring = AudioRing.create(2, 2, sampleRate, false);
    ring.running = true;
    this.ring = ring;
    this.feed = port;
    port.onmessage = (
      e: MessageEvent<{
        pts?: number;
        planes?: Float32Array[];
        delayMs?: number;
        outputLatencyMs?: number;
        flush?: boolean;
      }>,
    ) => {
      const m = e.data;
      if (m.flush) ring.flush();
      if (m.planes && m.pts !== undefined) ring.write(m.pts, m.planes);
      if (m.delayMs !== undefined) ring.delayMs = m.delayMs;
      if (m.outputLatencyMs !== undefined) ring.outputLatencyMs = m.outputLatencyMs;
    };
  }

  private lastClock = 0;

  process(_inputs: Float32Array[][], outputs: Float32Array[][]): boolean {
    const out = outputs[0];
    if (!out || out.length === 0) return true;
    const ring = this.ring;
    if (!ring) {
      for (const o of out) o.fill(0);
      return true;
    }
    const now = Date.now();
    this.played += ring.read(out, now);
    if (this.feed && now - this.lastClock >= 10) {
      this.lastClock = now;
      this.feed.postMessage({ clock: ring.clockSample, buffered: ring.buffered });
    }
    if (now - this.lastReport > 250) {
      this.lastReport = now;
      this.port.postMessage({ played: this.played, underruns: ring.underruns, skipped: ring.skipped });
    }
    return true;
  }
}

registerProcessor("moq-audio", MoqAudioProcessor);
