// The glass-to-glass stamp: a 16 x 4 grid of black and white blocks in a frame's top-left corner carrying the
// capture wall-clock time (ms, modulo 2^40) and the frame number (modulo 2^16), plus an 8-bit check. A block is
// 1/80 of the frame's width, so the stamp scales with every rendition and survives lossy coding.

const COLUMNS = 16;
const ROWS = 4;
const BITS = COLUMNS * ROWS;
const TIME_BITS = 40;
const FRAME_BITS = 16;

export interface Stamp {
  /** Capture time, ms since the Unix epoch. */
  timeMs: number;
  frame: number;
}

/** The block size in pixels for a frame `width` pixels wide. */
export function blockSize(width: number): number {
  return Math.max(2, Math.round(width / 80));
}

/** The stamp's size in pixels for a frame `width` pixels wide. */
export function stampSize(width: number): { width: number; height: number } {
  const b = blockSize(width);
  return { width: COLUMNS * b, height: ROWS * b };
}

/** Bytes of the 56-bit payload, most significant first. */
function payloadBytes(time: number, frame: number): number[] {
  const out: number[] = [];
  let t = time;
  for (let i = 0; i < 5; i++) {
    out.unshift(t % 256);
    t = Math.floor(t / 256);
  }
  out.push(frame >> 8, frame & 0xff);
  return out;
}

function check(bytes: number[]): number {
  return (bytes.reduce((a, b) => a + b, 0) ^ 0xa5) & 0xff;
}

/** The 64 bits of a stamp, most significant first. */
export function stampBits(s: Stamp): boolean[] {
  const time = s.timeMs % 2 ** TIME_BITS;
  const frame = s.frame % 2 ** FRAME_BITS;
  const bytes = payloadBytes(time, frame);
  bytes.push(check(bytes));
  const bits: boolean[] = [];
  for (const b of bytes) for (let i = 7; i >= 0; i--) bits.push(((b >> i) & 1) === 1);
  return bits;
}

/** Reads 64 bits back; undefined when the check fails. `nowMs` resolves the time's wrap. */
export function readBits(bits: boolean[], nowMs: number): Stamp | undefined {
  if (bits.length !== BITS) return undefined;
  const bytes: number[] = [];
  for (let i = 0; i < 8; i++) {
    let b = 0;
    for (let j = 0; j < 8; j++) b = (b << 1) | (bits[i * 8 + j] ? 1 : 0);
    bytes.push(b);
  }
  const sum = bytes.pop() as number;
  if (check(bytes) !== sum) return undefined;
  let time = 0;
  for (let i = 0; i < 5; i++) time = time * 256 + (bytes[i] as number);
  const frame = ((bytes[5] as number) << 8) | (bytes[6] as number);
  const wrap = 2 ** TIME_BITS;
  let full = time + Math.floor(nowMs / wrap) * wrap;
  if (full > nowMs + wrap / 2) full -= wrap;
  return { timeMs: full, frame };
}

type Context2D = OffscreenCanvasRenderingContext2D | CanvasRenderingContext2D;

/** Draws the stamp into the top-left corner of a frame `width` pixels wide. */
export function drawStamp(ctx: Context2D, width: number, s: Stamp): void {
  const b = blockSize(width);
  const bits = stampBits(s);
  for (let i = 0; i < BITS; i++) {
    ctx.fillStyle = bits[i] ? "#fff" : "#000";
    ctx.fillRect((i % COLUMNS) * b, Math.floor(i / COLUMNS) * b, b, b);
  }
}

/**
 * Reads the 64 bits back from the stamp's corner scaled to 4 px per block (`COLUMNS * 4` x `ROWS * 4` RGBA
 * pixels, row-major): each block's centre pixel, white when its luma is at least half.
 */
export function sampleBits(rgba: ArrayLike<number>): boolean[] {
  const bits: boolean[] = [];
  for (let r = 0; r < ROWS; r++) {
    for (let c = 0; c < COLUMNS; c++) {
      const at = ((r * 4 + 2) * COLUMNS * 4 + c * 4 + 2) * 4;
      const luma = 0.299 * (rgba[at] ?? 0) + 0.587 * (rgba[at + 1] ?? 0) + 0.114 * (rgba[at + 2] ?? 0);
      bits.push(luma >= 128);
    }
  }
  return bits;
}

/**
 * The size of what `source` shows, and the factors from those pixels to drawImage's source coordinates (a
 * VideoFrame's coded size may differ from its display size; a <video> draws in its intrinsic size).
 */
export function sourceSize(
  source: CanvasImageSource,
): { width: number; height: number; sx: number; sy: number } | undefined {
  if ("displayWidth" in source) {
    const { displayWidth: width, displayHeight: height } = source;
    return { width, height, sx: source.codedWidth / width, sy: source.codedHeight / height };
  }
  if ("videoWidth" in source) return { width: source.videoWidth, height: source.videoHeight, sx: 1, sy: 1 };
  const { width, height } = source as { width: unknown; height: unknown };
  return typeof width === "number" && typeof height === "number"
    ? { width, height, sx: 1, sy: 1 }
    : undefined;
}

/**
 * Reads stamps from decoded frames, or from anything drawable (a <video> in its requestVideoFrameCallback, a
 * canvas): the corner is drawn at 4 px per block and each block's centre sampled.
 */
export class StampReader {
  private readonly canvas = new OffscreenCanvas(COLUMNS * 4, ROWS * 4);
  private readonly ctx = this.canvas.getContext("2d", { willReadFrequently: true });

  read(source: CanvasImageSource, nowMs: number): Stamp | undefined {
    const ctx = this.ctx;
    const size = sourceSize(source);
    if (!ctx || !size || size.width === 0) return undefined;
    const { width, height } = stampSize(size.width);
    if (height > size.height) return undefined;
    ctx.drawImage(source, 0, 0, width * size.sx, height * size.sy, 0, 0, COLUMNS * 4, ROWS * 4);
    return readBits(sampleBits(ctx.getImageData(0, 0, COLUMNS * 4, ROWS * 4).data), nowMs);
  }
}
