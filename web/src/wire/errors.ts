// Decoding errors. "Short" means: wait for more bytes. Everything else is final and carries the session
// termination code the draft asks for.

/** Session termination codes (draft-19 §3.4) the client uses. */
export const SessionCode = {
  NO_ERROR: 0x0,
  INTERNAL_ERROR: 0x1,
  PROTOCOL_VIOLATION: 0x3,
  INVALID_REQUEST_ID: 0x4,
  DUPLICATE_TRACK_ALIAS: 0x5,
  KEY_VALUE_FORMATTING_ERROR: 0x6,
  GOAWAY_TIMEOUT: 0x10,
  CONTROL_MESSAGE_TIMEOUT: 0x11,
  VERSION_NEGOTIATION_FAILED: 0x15,
} as const;

/** The input ends before the value does: read at least `needed` more bytes and try again. */
export class ShortError extends Error {
  constructor(readonly needed: number) {
    super(`need ${needed} more bytes`);
    this.name = "ShortError";
  }
}

/** The input is malformed; the session closes with `code`. */
export class DecodeError extends Error {
  constructor(
    message: string,
    readonly code: number = SessionCode.PROTOCOL_VIOLATION,
  ) {
    super(message);
    this.name = "DecodeError";
  }
}

/** A value that cannot be encoded (out of range, not allowed in this message or version). */
export class EncodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "EncodeError";
  }
}

export function isShort(e: unknown): e is ShortError {
  return e instanceof ShortError;
}
