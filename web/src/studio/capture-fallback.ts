// Camera and microphone frames without MediaStreamTrackProcessor (Firefox, Safari): the standard fallback. Video
// frames are taken from a playing <video> of the camera once per frame interval; audio comes from an AudioWorklet
// on the microphone's track, as f32-planar AudioData.

/** A stream of the frames `video` shows, at most `fps` a second, stamped with the page's clock (µs). */
export function videoFrames(video: HTMLVideoElement, fps: number): ReadableStream<VideoFrame> {
  let stopped = false;
  let ticker: Worker | undefined;
  // A guard against bursts of late ticks, not a pacer: the ticks pace.
  const minGapMs = 500 / fps;
  let lastAt = -Infinity;
  return new ReadableStream<VideoFrame>(
    {
      start(controller) {
        const take = () => {
          if (stopped) return;
          const now = performance.now();
          // Only while someone reads (no queue of stale frames), a frame has data, and the rate allows.
          if ((controller.desiredSize ?? 0) > 0 && video.readyState >= 2 && now - lastAt >= minGapMs) {
            lastAt = now;
            try {
              // Some engines stamp a frame from a <video> with the media time whatever the init says: stamp a
              // second view of it (no copy) with the page's clock.
              const shown = new VideoFrame(video);
              controller.enqueue(new VideoFrame(shown, { timestamp: Math.round(now * 1000) }));
              shown.close();
            } catch {
              // The video has no frame yet (a size of 0): wait for the next one.
            }
          }
        };
        // Ticks from a worker: a page's own timers (and requestVideoFrameCallback) all but stop while its tab
        // is in the background, and a streamer who switches tabs must stay live.
        ticker = new Worker(
          URL.createObjectURL(
            new Blob([`setInterval(() => postMessage(0), ${1000 / fps});`], { type: "text/javascript" }),
          ),
        );
        ticker.onmessage = take;
      },
      cancel() {
        stopped = true;
        ticker?.terminate();
      },
    },
    { highWaterMark: 2 },
  );
}

/** The microphone's samples as AudioData, through an AudioWorklet; `close` releases the audio graph. */
export async function audioFrames(
  track: MediaStreamTrack,
  worklet: URL,
): Promise<{ stream: ReadableStream<AudioData>; close(): void }> {
  const context = new AudioContext();
  await context.audioWorklet.addModule(worklet);
  const source = context.createMediaStreamSource(new MediaStream([track]));
  const node = new AudioWorkletNode(context, "moq-capture");
  // A silent path to the destination keeps the graph (and so the worklet) running everywhere.
  const mute = context.createGain();
  mute.gain.value = 0;
  source.connect(node).connect(mute).connect(context.destination);
  // Not awaited: where the page may not yet start audio, the graph starts once it may (and samples flow then).
  context.resume().catch(() => {});
  const startUs = performance.now() * 1000;
  let frames = 0;
  const stream = new ReadableStream<AudioData>({
    start(controller) {
      node.port.onmessage = (e: MessageEvent<Float32Array[]>) => {
        const planes = e.data;
        const length = planes[0]?.length ?? 0;
        if (length === 0) return;
        const data = new Float32Array(length * planes.length);
        planes.forEach((p, i) => {
          data.set(p, i * length);
        });
        const timestamp = Math.round(startUs + (frames / context.sampleRate) * 1e6);
        frames += length;
        controller.enqueue(
          new AudioData({
            format: "f32-planar",
            sampleRate: context.sampleRate,
            numberOfFrames: length,
            numberOfChannels: planes.length,
            timestamp,
            data,
          }),
        );
      };
    },
    cancel() {
      node.port.onmessage = null;
    },
  });
  return {
    stream,
    close() {
      node.port.onmessage = null;
      context.close().catch(() => {});
    },
  };
}
