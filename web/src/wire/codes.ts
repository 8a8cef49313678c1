// Error and status codes from the draft's registries (draft-19 §14). Unknown codes (GREASE included) mean
// INTERNAL_ERROR and never close a session by themselves.

export const RequestErrorCode = {
  INTERNAL_ERROR: 0x0,
  UNAUTHORIZED: 0x1,
  TIMEOUT: 0x2,
  NOT_SUPPORTED: 0x3,
  MALFORMED_AUTH_TOKEN: 0x4,
  EXPIRED_AUTH_TOKEN: 0x5,
  GOING_AWAY: 0x6,
  EXCESSIVE_LOAD: 0x9,
  DOES_NOT_EXIST: 0x10,
  INVALID_RANGE: 0x11,
  MALFORMED_TRACK: 0x12,
  UNINTERESTED: 0x20,
  PREFIX_OVERLAP: 0x30,
  NAMESPACE_TOO_LARGE: 0x31,
  INVALID_JOINING_REQUEST_ID: 0x32,
  UNSUPPORTED_EXTENSION: 0x33,
  REDIRECT: 0x34,
  CONFLICTING_FILTERS: 0x35,
  INVALID_FILTER: 0x36,
} as const;

export const PublishDoneCode = {
  INTERNAL_ERROR: 0x0,
  UNAUTHORIZED: 0x1,
  TRACK_ENDED: 0x2,
  SUBSCRIPTION_ENDED: 0x3,
  GOING_AWAY: 0x4,
  TOO_FAR_BEHIND: 0x5,
  EXPIRED: 0x6,
  UPDATE_FAILED: 0x8,
  EXCESSIVE_LOAD: 0x9,
  MALFORMED_TRACK: 0x12,
} as const;

export const ResetCode = {
  INTERNAL_ERROR: 0x0,
  CANCELLED: 0x1,
  DELIVERY_TIMEOUT: 0x2,
  SESSION_CLOSED: 0x3,
  GOING_AWAY: 0x4,
} as const;

/** The draft's name for a code of `table`, or UNKNOWN. */
export function codeName(table: Record<string, number>, code: bigint | number): string {
  for (const [name, value] of Object.entries(table)) if (BigInt(value) === BigInt(code)) return name;
  return "UNKNOWN";
}
