// Buffered reading and writing of WebTransport streams with the wire codec's "short means read more" rule.

import { concat, DecodeError, isShort, Reader } from "../wire/index.ts";

/**
 * A WebTransportError carrying a stream error code. The spec's constructor is (message, options); Chromium up to
 * at least 148 takes one init dictionary instead.
 */
export function streamError(code: number): unknown {
  try {
    const e = new WebTransportError("cancelled", { streamErrorCode: code });
    if (e.streamErrorCode === code) return e;
  } catch {
    // Older signature below.
  }
  try {
    const Ctor = WebTransportError as unknown as new (init: object) => WebTransportError;
    return new Ctor({ streamErrorCode: code, message: "cancelled" });
  } catch {
    // No WebTransport here (a WebSocket session): an error shaped like one.
    return Object.assign(new Error("cancelled"), { name: "WebTransportError", streamErrorCode: code });
  }
}

/**
 * Reads whole values from a byte stream, keeping what is left over for the next call. Chunks are kept as they
 * arrive and joined once a decoder can use them: a decoder that says how many more bytes it needs (ShortError)
 * is not called again before they are here, so a large object costs one copy and a few decode attempts, not a
 * copy and a failed parse per chunk.
 */
export class StreamReader {
  private chunks: Uint8Array[] = [];
  private length = 0;
  /** Bytes that must be buffered before the next decode attempt can succeed. */
  private need = 0;
  private reader: ReadableStreamDefaultReader<Uint8Array>;
  private ended = false;
  /** Decode attempts so far (for tests and diagnostics). */
  attempts = 0;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.reader = stream.getReader();
  }

  /** Reads more bytes; false at the end of the stream. Throws if the stream was reset. */
  private async fill(): Promise<boolean> {
    if (this.ended) return false;
    const { value, done } = await this.reader.read();
    if (done) {
      this.ended = true;
      return false;
    }
    if (value.length > 0) {
      this.chunks.push(value);
      this.length += value.length;
    }
    return true;
  }

  /** Everything buffered, as one array (joined at most once per decode attempt). */
  private buffered(): Uint8Array {
    if (this.chunks.length > 1) this.chunks = [concat(this.chunks)];
    return this.chunks[0] ?? new Uint8Array(0);
  }

  /** Drops the first `used` bytes of the (joined) buffer. */
  private consume(buf: Uint8Array, used: number): void {
    const rest = buf.subarray(used);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.length = rest.length;
    this.need = 0;
  }

  /** Whether the stream ended with no bytes left over. */
  async atEnd(): Promise<boolean> {
    while (this.length === 0) if (!(await this.fill())) return true;
    return false;
  }

  /**
   * Decodes one value with `f`, which returns the value and the bytes it used, or throws ShortError. Returns
   * undefined at a clean end of stream; a stream ending inside a value is a protocol violation.
   */
  async decode<T>(f: (data: Uint8Array) => { value: T; used: number }): Promise<T | undefined> {
    for (;;) {
      if (this.length > 0 && this.length >= this.need) {
        const buf = this.buffered();
        this.attempts++;
        try {
          const { value, used } = f(buf);
          this.consume(buf, used);
          return value;
        } catch (e) {
          if (!isShort(e)) throw e;
          this.need = buf.length + Math.max(1, e.needed);
        }
      }
      if (!(await this.fill())) {
        if (this.length === 0) return undefined;
        throw new DecodeError("stream ended inside a message");
      }
    }
  }

  /** Reads one varint (e.g. a stream type). */
  varint(): Promise<number | undefined> {
    return this.decode((d) => {
      const r = new Reader(d);
      return { value: r.varint(), used: r.pos };
    });
  }

  /** Stops reading: sends STOP_SENDING with `code`. Never throws. */
  cancel(code = 0): void {
    this.ended = true;
    this.reader.cancel(streamError(code)).catch(() => {});
  }

  release(): void {
    this.reader.releaseLock();
  }
}

/** Writes messages to a send stream, one at a time. */
export class StreamWriter {
  private writer: WritableStreamDefaultWriter<Uint8Array>;
  private closed = false;

  constructor(stream: WritableStream<Uint8Array>) {
    this.writer = stream.getWriter();
  }

  async write(bytes: Uint8Array): Promise<void> {
    if (this.closed) throw new Error("stream closed");
    await this.writer.write(bytes);
  }

  /** FIN. Never throws. */
  async finish(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.writer.close().catch(() => {});
  }

  /** RESET_STREAM with `code`. Never throws. */
  reset(code = 0): void {
    if (this.closed) return;
    this.closed = true;
    this.writer.abort(streamError(code)).catch(() => {});
  }
}
