/** The drafts this codec speaks. Their data planes are byte-identical; control messages differ a little. */
export type Version = 18 | 19;

export const VERSIONS: readonly Version[] = [19, 18];

/** The WebTransport protocol (ALPN) token of a version. */
export function protocolOf(v: Version): string {
  return `moqt-${v}`;
}

/** The version a negotiated protocol token names, if we speak it. */
export function versionOf(protocol: string): Version | undefined {
  if (protocol === "moqt-19") return 19;
  if (protocol === "moqt-18") return 18;
  return undefined;
}
