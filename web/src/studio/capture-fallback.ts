// Camera and microphone frames without MediaStreamTrackProcessor (Firefox, Safari): the standard fallback. Video
// frames are taken from a playing <video> of the camera once per frame interval; audio comes from an AudioWorklet
// on the microphone's track, as f32-planar AudioData.

/** A stream of frames and what releases everything behind it (also done when the reader cancels). */
export interface Capture<F> {
  stream: ReadableStream<F>;
  close(): void;
}

/** How long a blob URL a worker starts from stays valid (the worker has loaded it well before). */
const BLOB_URL_LIFETIME_MS = 30_000;

/** A stream of the frames `video` shows, at most `fps` a second, stamped with the page's clock (µs). */
export function videoFrames(video: HTMLVideoElement, fps: number): Capture<VideoFrame> {
  // Ticks from a worker: a page's own timers (and requestVideoFrameCallback) all but stop while its tab is in the
  // background, and a streamer who switches tabs must stay live.
  const script = URL.createObjectURL(
    new Blob([`setInterval(() => postMessage(0), ${1000 / fps});`], { type: "text/javascript" }),
  );
  const ticker = new Worker(script);
  setTimeout(() => URL.revokeObjectURL(script), BLOB_URL_LIFETIME_MS);
  // A guard against bursts of late ticks, not a pacer: the ticks pace.
  const minGapMs = 500 / fps;
  let lastAt = -Infinity;
  let controller: ReadableStreamDefaultController<VideoFrame> | undefined;
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    ticker.terminate();
    try {
      controller?.close();
    } catch {
      // Already closed or cancelled.
    }
  };
  const take = () => {
    const c = controller;
    const now = performance.now();
    // Only while someone reads (no queue of stale frames), a frame has data, and the rate allows.
    if (closed || !c || (c.desiredSize ?? 0) <= 0 || video.readyState < 2 || now - lastAt < minGapMs) return;
    lastAt = now;
    let shown: VideoFrame | undefined;
    try {
      // Some engines stamp a frame from a <video> with the media time whatever the init says: stamp a second view
      // of it (no copy) with the page's clock.
      shown = new VideoFrame(video);
      c.enqueue(new VideoFrame(shown, { timestamp: Math.round(now * 1000) }));
    } catch {
      // The video has no frame yet (a size of 0): wait for the next one.
    } finally {
      shown?.close();
    }
  };
  ticker.onmessage = take;
  const stream = new ReadableStream<VideoFrame>(
    {
      start(c) {
        controller = c;
      },
      cancel: close,
    },
    { highWaterMark: 2 },
  );
  return { stream, close };
}

/** The microphone's samples as AudioData, through an AudioWorklet at `worklet`. */
export async function audioFrames(track: MediaStreamTrack, worklet: URL): Promise<Capture<AudioData>> {
  const context = new AudioContext();
  try {
    await context.audioWorklet.addModule(worklet);
  } catch (e) {
    context.close().catch(() => {});
    throw e;
  }
  const source = context.createMediaStreamSource(new MediaStream([track]));
  const node = new AudioWorkletNode(context, "moq-capture");
  // A silent path to the destination keeps the graph (and so the worklet) running everywhere.
  const mute = context.createGain();
  mute.gain.value = 0;
  source.connect(node).connect(mute).connect(context.destination);
  // Not awaited: where the page may not yet start audio, the graph starts once it may (and samples flow then).
  context.resume().catch(() => {});
  let controller: ReadableStreamDefaultController<AudioData> | undefined;
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    node.port.onmessage = null;
    context.close().catch(() => {});
    try {
      controller?.close();
    } catch {
      // Already closed or cancelled.
    }
  };
  // Stamped from the page's clock when the first samples arrive (the graph may start late), then by count.
  let startUs: number | undefined;
  let frames = 0;
  node.port.onmessage = (e: MessageEvent<Float32Array[]>) => {
    const planes = e.data;
    const length = planes[0]?.length ?? 0;
    if (length === 0 || !controller) return;
    startUs ??= performance.now() * 1000 - (length / context.sampleRate) * 1e6;
    const timestamp = Math.round(startUs + (frames / context.sampleRate) * 1e6);
    frames += length;
    // A reader that fell behind loses samples rather than growing a queue without end.
    if ((controller.desiredSize ?? 0) <= 0) return;
    const data = new Float32Array(length * planes.length);
    planes.forEach((p, i) => {
      data.set(p, i * length);
    });
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
  const stream = new ReadableStream<AudioData>(
    {
      start(c) {
        controller = c;
      },
      cancel: close,
    },
    // A quarter second of 128-sample quanta.
    { highWaterMark: 96 },
  );
  return { stream, close };
}
