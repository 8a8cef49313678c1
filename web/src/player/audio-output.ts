// The player's sound: an AudioContext with the moq-audio worklet (audio-worklet.ts), fed by the decoder worker.
// With cross-origin isolation the worker and the worklet share a ring buffer (ring.ts); without, PCM and the
// audio clock travel over a MessagePort between them. Browsers start audio only from a user gesture.

import type { ToWorker } from "./protocol.ts";
import { AudioRing } from "./ring.ts";
import type { PlayerStats } from "./stats.ts";

export class AudioOutput {
  /**
   * The shared ring, made before the worker starts (it is part of the worker's init). Cross-origin isolation is
   * not enough: WebKitGTK is isolated and still has no SharedArrayBuffer.
   */
  readonly ring: AudioRing | undefined =
    globalThis.crossOriginIsolated && typeof SharedArrayBuffer === "function"
      ? AudioRing.create(2, 2, 48000)
      : undefined;
  private ctx: AudioContext | undefined;

  constructor(
    private readonly stats: PlayerStats,
    /** Where the worklet's script is. */
    private readonly assets: () => string,
    /** The volume control's gain node, between the worklet and the speakers. */
    private readonly gainNode: (ctx: AudioContext) => GainNode,
    private readonly send: (m: ToWorker, transfer: Transferable[]) => void,
  ) {}

  /** The context's state ("running", "suspended", …), or undefined before the first start. */
  get state(): AudioContextState | undefined {
    return this.ctx?.state;
  }

  /** Makes the context and the worklet (once), then plays. Call from a user gesture. */
  async start(): Promise<void> {
    if (!this.ctx) await this.create();
    const ctx = this.ctx as AudioContext;
    await ctx.resume();
    if (this.ring) this.ring.running = true;
    this.stats.audioState = ctx.state;
    this.stats.audioShared = this.ring !== undefined;
  }

  /** Makes the context and the worklet without playing (a start while paused). */
  async prepare(): Promise<void> {
    if (!this.ctx) await this.create();
  }

  /** Starts or stops the sound output; `stillWanted` is asked again once the context has resumed. */
  sound(on: boolean, stillWanted: () => boolean): void {
    if (!on) {
      if (this.ring) this.ring.running = false;
      this.ctx?.suspend().catch(() => {});
      return;
    }
    this.ctx
      ?.resume()
      .then(() => {
        if (this.ring && stillWanted()) this.ring.running = true;
      })
      .catch(() => {});
  }

  close(): void {
    this.ctx?.close().catch(() => {});
  }

  private async create(): Promise<void> {
    const sampleRate = this.ring?.layout.sampleRate ?? 48000;
    const ctx = new AudioContext({ sampleRate, latencyHint: "interactive" });
    this.ctx = ctx;
    await ctx.audioWorklet.addModule(new URL("audio-worklet.js", this.assets()));
    const node = new AudioWorkletNode(ctx, "moq-audio", { outputChannelCount: [2] });
    node.port.onmessage = (e: MessageEvent<{ played: number; underruns: number; skipped: number }>) => {
      this.stats.audioSamplesPlayed = e.data.played;
      this.stats.audioUnderruns = e.data.underruns;
      this.stats.audioSkipped = e.data.skipped;
    };
    node.connect(this.gainNode(ctx)).connect(ctx.destination);
    await ctx.resume();
    const outputLatencyMs = ((ctx.outputLatency || 0) + (ctx.baseLatency || 0)) * 1000;
    if (this.ring) {
      node.port.postMessage({ ring: this.ring.layout });
      this.ring.outputLatencyMs = outputLatencyMs;
      this.ring.running = true;
    } else {
      const channel = new MessageChannel();
      node.port.postMessage({ feed: channel.port1, sampleRate }, [channel.port1]);
      this.send({ type: "audio-port", port: channel.port2, outputLatencyMs }, [channel.port2]);
    }
  }
}
