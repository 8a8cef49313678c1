// From a relay URL to what WebTransport needs: the https:// URL and, for a self-signed relay, its certificate hash.

import { fromHex } from "../wire/index.ts";

/**
 * Resolves a relay URL to the WebTransport URL and certificate hash. `http://host:port/` means a development
 * relay with a self-signed certificate: its hash is fetched from `/certificate.sha256` there (or from
 * `fingerprintUrl`, for pages served from another origin) and the session goes to `https://host:port/`.
 */
export async function resolve(
  url: string,
  fingerprint?: string,
  fingerprintUrl?: string,
): Promise<{ url: string; hash?: Uint8Array }> {
  const u = new URL(url, globalThis.location?.href);
  if (u.protocol === "http:") u.protocol = "https:";
  if (!fingerprint && (fingerprintUrl || new URL(url, globalThis.location?.href).protocol === "http:")) {
    // A given fingerprintUrl is relative to the page; the default one to the relay.
    const from = fingerprintUrl
      ? new URL(fingerprintUrl, globalThis.location?.href)
      : new URL("/certificate.sha256", new URL(url, globalThis.location?.href));
    const res = await fetch(from).catch((e) => {
      throw new Error(`relay unreachable: cannot fetch ${from} (${errorText(e)})`);
    });
    if (!res.ok) throw new Error(`relay unreachable: ${from} answered ${res.status}`);
    fingerprint = (await res.text()).trim();
  }
  if (!fingerprint) return { url: u.href };
  return { url: u.href, hash: fromHex(fingerprint) };
}

export function errorText(e: unknown): string {
  if (e instanceof Error) return e.message || e.name;
  return String(e);
}
