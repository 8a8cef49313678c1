// Opening the transport under a MoQT session: WebTransport where the browser has a working one, else (or when it
// is slow to answer) MoQT over a WebSocket carrying QMux (draft-ietf-quic-qmux, through @moq/qmux), which the
// relay serves on its HTTP port. The two race: WebTransport starts at once, the WebSocket after a head start
// (or at once when WebTransport fails first), and the first to be ready wins; the other is closed.

import QMuxSession from "@moq/qmux";
import { protocolOf, type Version } from "../wire/index.ts";
import { errorText, resolve } from "./resolve.ts";

/** What carries a session. */
export type TransportKind = "webtransport" | "websocket";

/** Which transports to try: both (racing), or only one. */
export type TransportChoice = "auto" | TransportKind;

/** How long WebTransport has to itself before the WebSocket starts (what moq-dev's player uses too). */
export const WEBSOCKET_HEAD_START_MS = 500;

export interface Opened {
  wt: WebTransport;
  /** The negotiated protocol ("moqt-19"), or "" where the browser does not report one. */
  protocol: string;
  kind: TransportKind;
}

export interface OpenOptions {
  versions: Version[];
  fingerprint?: string | undefined;
  fingerprintUrl?: string | undefined;
  /** Sent as `?jwt=` on the URL too (see ConnectOptions.tokenInUrl). */
  urlToken?: string | undefined;
  transport?: TransportChoice | undefined;
  headStartMs?: number | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * Why this browser's WebTransport cannot carry a MoQT session, or undefined if it can. Firefox before 153 lets a
 * server open at most two streams (bug 2046262), and MoQT sends every group on its own.
 */
export function webTransportUnusable(ua: string = globalThis.navigator?.userAgent ?? ""): string | undefined {
  if (typeof WebTransport !== "function") return "this browser has no WebTransport";
  const firefox = /Firefox\/(\d+)/.exec(ua);
  if (firefox && Number(firefox[1]) < 153) return "Firefox before 153 takes only two streams from a server";
  return undefined;
}

function withToken(url: string, token: string | undefined): string {
  if (!token) return url;
  const u = new URL(url);
  u.searchParams.set("jwt", token);
  return u.href;
}

/** Something an attempt made that an abort (or losing the race) must close. */
type Closable = { close(info?: { closeCode?: number; reason?: string }): void };

async function openWebTransport(url: string, o: OpenOptions, made: (c: Closable) => void): Promise<Opened> {
  const target = await resolve(url, o.fingerprint, o.fingerprintUrl);
  const options: WebTransportOptions = {
    protocols: o.versions.map(protocolOf),
    congestionControl: "low-latency",
  };
  if (target.hash)
    options.serverCertificateHashes = [{ algorithm: "sha-256", value: target.hash as BufferSource }];
  const wt = new WebTransport(withToken(target.url, o.urlToken), options);
  made(wt);
  // A failed attempt rejects `closed` too; losing a race is not an error anyone waits for.
  wt.closed.catch(() => {});
  await wt.ready;
  return { wt, protocol: (wt as WebTransport & { protocol?: string }).protocol ?? "", kind: "webtransport" };
}

/** The QMux wire versions offered under each MoQT protocol, newest first (what the relay accepts). */
const QMUX_VERSIONS = ["qmux-02", "qmux-01", "qmux-00"];

/**
 * A plain WebSocket to `url`'s host on the same port (`http:` → `ws:`, `https:` → `wss:`), offering
 * `qmux-VV.moqt-NN` for every version. A WebSocket, not Chromium's WebSocketStream (which @moq/qmux prefers when
 * given a URL): measured on loopback, the stream's reads held frames back, 440 ms at the median against 53 ms
 * (docs/web.md).
 */
async function openWebSocket(url: string, o: OpenOptions, made: (c: Closable) => void): Promise<Opened> {
  const target = new URL(withToken(new URL(url, globalThis.location?.href).href, o.urlToken));
  target.protocol = target.protocol === "https:" || target.protocol === "wss:" ? "wss:" : "ws:";
  const offered = o.versions.flatMap((v) => QMUX_VERSIONS.map((q) => `${q}.${protocolOf(v)}`));
  const socket = new WebSocket(target.href, offered);
  socket.binaryType = "arraybuffer";
  // The DOM typing of send() is wider than the library's WebSocketLike; the object is the one it wraps.
  const session = new QMuxSession(socket as unknown as ConstructorParameters<typeof QMuxSession>[0]);
  made(session);
  await session.ready;
  // A proxy that drops the subprotocol leaves the socket without one, and the library would then speak an
  // older framing: refuse rather than garble the session.
  if (!offered.includes(socket.protocol)) {
    session.close({ closeCode: 0, reason: "no subprotocol" });
    throw new Error(`the relay's WebSocket chose ${socket.protocol || "no subprotocol"}`);
  }
  return { wt: session, protocol: session.protocol, kind: "websocket" };
}

function closeQuietly(c: Closable, reason: string): void {
  try {
    c.close({ closeCode: 0, reason });
  } catch {
    // Already closed.
  }
}

function aborted(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error("aborted");
}

/** Opens the transport to the relay at `url` (`http(s)://`), racing WebTransport against a WebSocket. */
export async function openTransport(url: string, o: OpenOptions): Promise<Opened> {
  const signal = o.signal;
  if (signal?.aborted) throw aborted(signal);
  const choice = o.transport ?? "auto";
  const unusable = choice === "websocket" ? "not chosen" : webTransportUnusable();
  if (choice === "webtransport" && unusable) throw new Error(`relay unreachable at ${url}: ${unusable}`);
  // Everything the attempts made, so that an abort can close what is still connecting.
  const made: Closable[] = [];
  const track = (c: Closable) => {
    made.push(c);
  };
  let settled = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const errors: string[] = [];
  const attempts: Promise<Opened>[] = [];
  const webTransport = unusable ? undefined : openWebTransport(url, o, track);
  if (webTransport) attempts.push(webTransport);
  if (choice !== "webtransport") {
    // The WebSocket waits out WebTransport's head start, unless WebTransport fails (or is unusable) first.
    const headStart = webTransport
      ? Promise.race([
          new Promise<void>((r) => {
            timer = setTimeout(r, o.headStartMs ?? WEBSOCKET_HEAD_START_MS);
          }),
          webTransport.then(
            () => new Promise<void>(() => {}),
            () => undefined,
          ),
        ])
      : Promise.resolve();
    attempts.push(
      headStart.then(() => {
        if (settled) throw new Error("WebTransport won");
        return openWebSocket(url, o, track);
      }),
    );
  }
  const labelled = attempts.map((a, i) =>
    a.catch((e) => {
      errors[i] = errorText(e);
      throw e;
    }),
  );
  let onAbort: (() => void) | undefined;
  const abortion = new Promise<never>((_, reject) => {
    onAbort = () => {
      settled = true;
      clearTimeout(timer);
      for (const c of made) closeQuietly(c, "aborted");
      reject(aborted(signal as AbortSignal));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
  abortion.catch(() => {});
  let winner: Opened;
  try {
    winner = await Promise.race([Promise.any(labelled), abortion]);
  } catch (e) {
    if (signal?.aborted) throw aborted(signal);
    const why = errors.filter((x) => x && x !== "WebTransport won").join("; ");
    throw new Error(`relay unreachable at ${url}: ${why || unusable || errorText(e)}`);
  } finally {
    settled = true;
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener("abort", onAbort);
  }
  const won = winner;
  for (const a of attempts)
    a.then(
      (other) => other !== won && closeQuietly(other.wt, "another transport won"),
      () => {},
    );
  return won;
}
