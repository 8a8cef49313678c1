// AudioWorklet processor: hands the microphone's samples to the page, one render quantum at a time, for browsers
// without MediaStreamTrackProcessor (capture-fallback.ts).

declare const registerProcessor: (name: string, ctor: unknown) => void;
declare class AudioWorkletProcessor {
  readonly port: MessagePort;
}

class MoqCaptureProcessor extends AudioWorkletProcessor {
  process(inputs: Float32Array[][]): boolean {
    const input = inputs[0];
    if (input && input.length > 0 && (input[0]?.length ?? 0) > 0) {
      const planes = input.map((channel) => channel.slice());
      this.port.postMessage(
        planes,
        planes.map((p) => p.buffer),
      );
    }
    return true;
  }
}

registerProcessor("moq-capture", MoqCaptureProcessor);
