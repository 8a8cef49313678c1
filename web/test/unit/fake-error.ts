// The WebTransportError that node lacks: what the unit tests' fake transports fail streams with.

export class FakeError extends Error {
  override name = "WebTransportError";
  streamErrorCode: number | null;
  constructor(message = "", options: { streamErrorCode?: number } = {}) {
    super(message);
    this.streamErrorCode = options.streamErrorCode ?? null;
  }
}
