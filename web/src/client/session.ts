// A MoQT client session over WebTransport (draft-19 / -18).
//
// Streams: each side opens one unidirectional control stream that starts with SETUP; every request gets its own
// bidirectional stream (draft-19 §3.3); objects arrive on unidirectional subgroup and fetch streams, and in
// datagrams. A session ends when either side closes the WebTransport session.
//
// Chromium closes the page's process when the server closes a WebTransport session while the page has a read
// pending on a server-opened unidirectional stream. So this client closes the session itself whenever the server
// says it is going (GOAWAY) and whenever it sees a protocol error, and keeps no read pending longer than it must.

import {
  type ControlMessage,
  DecodeError,
  decodeControl,
  encodeControl,
  type Location,
  type Namespace,
  namespaceFromPath,
  namespaceToPath,
  type Parameters,
  type Properties,
  Reader,
  RequestErrorCode,
  SessionCode,
  type SetupOptions,
  streamKind,
  text,
  utf8,
  VERSIONS,
  type Version,
  versionOf,
} from "../wire/index.ts";
import { openTransport, type TransportChoice, type TransportKind } from "./connect.ts";
import { DataRouter } from "./incoming.ts";
import { answerRequest, type PublishTransport, type TrackPublisher } from "./publish.ts";
import { FetchResponse, NamespaceWatch, RequestError, RequestStream, Subscription } from "./requests.ts";
import { errorText, resolve } from "./resolve.ts";
import { StreamReader, StreamWriter } from "./stream.ts";
import { rememberedToken } from "./token.ts";

export { errorText, resolve };

export const IMPLEMENTATION = "moq-web/0.1";
const SETUP_TIMEOUT_MS = 10_000;

/** AUTHORIZATION TOKEN Alias Type USE_VALUE, and Token Type 0 (negotiated out of band: a JWT). */
const USE_VALUE = 3;
const TOKEN_TYPE_JWT = 0;

/** The client's Setup Options: our implementation and, with a token, one AUTHORIZATION TOKEN (USE_VALUE). */
export function setupOptions(token?: string): SetupOptions {
  const options: SetupOptions = { implementation: IMPLEMENTATION };
  if (token)
    options.authTokens = [{ aliasType: USE_VALUE, tokenType: TOKEN_TYPE_JWT, value: utf8.encode(token) }];
  return options;
}

export interface ConnectOptions {
  /** SHA-256 of the server certificate (hex), for a self-signed one. `http://` URLs fetch it themselves. */
  fingerprint?: string;
  /** Where to fetch that hash instead (default: `/certificate.sha256` of an `http://` relay URL). */
  fingerprintUrl?: string;
  /** Versions to offer, preferred first. */
  versions?: Version[];
  /**
   * A JWT for a relay that requires one, sent in SETUP as an AUTHORIZATION TOKEN option (Alias Type USE_VALUE,
   * Token Type 0, the JWT's UTF-8 bytes), never in a URL. Default: the one remembered for the URL's origin
   * (token.ts), if any.
   */
  token?: string;
  /**
   * Fallback for a relay that reads tokens only from the URL: also send the token as `?jwt=` on the WebTransport
   * URL. Off by default: URLs end up in logs.
   */
  tokenInUrl?: boolean;
  /** WebTransport, a WebSocket (QMux), or both racing (the default; see connect.ts). */
  transport?: TransportChoice;
  /** How long WebTransport has before the WebSocket starts (default 500 ms). */
  webSocketHeadStartMs?: number;
  signal?: AbortSignal;
}

/** The tracks of a published namespace, by name. */
export type TrackLookup = (name: string) => TrackPublisher | undefined;

export interface CloseInfo {
  code: number;
  reason: string;
  /** Whether the peer (or the network) ended the session rather than this client. */
  remote: boolean;
}

export interface SubscribeOptions {
  /** SUBSCRIBER_PRIORITY: lower is more important. */
  priority?: number;
  /** GROUP_ORDER 1 ascending, 2 descending. */
  groupOrder?: 1 | 2;
  /** Location filter; absent: from the start of the current group (the relay's unfiltered behaviour). */
  filter?: Parameters["locationFilter"];
  /** NEW_GROUP_REQUEST: 0 (or the largest group we have) asks a DYNAMIC_GROUPS publisher for a new group. */
  newGroupRequest?: number;
}

export class Session {
  readonly closed: Promise<CloseInfo>;
  /** Called once when the server sends GOAWAY on the control stream, with the URI to use (or the same one). */
  ongoaway: ((uri: string, timeoutMs: number) => void) | undefined;
  /** The peer's MOQT_IMPLEMENTATION, once known. */
  peerImplementation: string | undefined;

  private nextRequestId = 0;
  private goingAway = false;
  private closeInfo: CloseInfo | undefined;
  private control: StreamWriter | undefined;
  private readonly data = new DataRouter((e) => this.fail(e));
  /** Namespaces this client publishes (by path), and where their tracks are. */
  private published = new Map<string, TrackLookup>();
  private nextAlias = 1n;
  private resolveSetup!: () => void;
  private rejectSetup!: (e: Error) => void;
  private readonly setupDone: Promise<void>;

  private constructor(
    private readonly wt: WebTransport,
    readonly version: Version,
    readonly url: string,
    /** What carries the session: WebTransport, or QMux over a WebSocket. */
    readonly transport: TransportKind,
  ) {
    this.setupDone = new Promise((resolve, reject) => {
      this.resolveSetup = resolve;
      this.rejectSetup = reject;
    });
    this.setupDone.catch(() => {});
    this.closed = wt.closed.then(
      (info) => this.ended({ code: info.closeCode ?? 0, reason: info.reason ?? "", remote: true }),
      (e) => this.ended({ code: SessionCode.INTERNAL_ERROR, reason: errorText(e), remote: true }),
    );
  }

  /** Connects, exchanges SETUP, and returns the established session. */
  static async connect(url: string, opts: ConnectOptions = {}): Promise<Session> {
    const token = opts.token ?? rememberedToken(url);
    const versions = opts.versions ?? [...VERSIONS];
    // Encoded once before connecting: a token too long for SETUP fails here, not after the handshake.
    const setup: ControlMessage = { type: "SETUP", options: setupOptions(token) };
    encodeControl(setup, versions[0] ?? 19);
    const { wt, protocol, kind } = await openTransport(url, {
      versions,
      fingerprint: opts.fingerprint,
      fingerprintUrl: opts.fingerprintUrl,
      urlToken: opts.tokenInUrl ? token : undefined,
      transport: opts.transport,
      headStartMs: opts.webSocketHeadStartMs,
      signal: opts.signal,
    });
    const abort = () => wt.close({ closeCode: SessionCode.NO_ERROR, reason: "aborted" });
    opts.signal?.addEventListener("abort", abort, { once: true });
    // Browsers without protocol negotiation report ""; then only the first offered version can work.
    const version = versionOf(protocol) ?? (protocol ? undefined : versions[0]);
    if (version === undefined) {
      wt.close({ closeCode: SessionCode.VERSION_NEGOTIATION_FAILED, reason: "no common version" });
      throw new Error(`relay chose ${protocol}, which this client does not speak`);
    }
    const s = new Session(wt, version, url, kind);
    await s.start(setup);
    opts.signal?.removeEventListener("abort", abort);
    return s;
  }

  private async start(setup: ControlMessage): Promise<void> {
    const uni = await this.wt.createUnidirectionalStream();
    this.control = new StreamWriter(uni);
    await this.control.write(encodeControl(setup, this.version));
    this.acceptUni().catch((e) => this.fail(e));
    this.acceptBidi().catch((e) => this.fail(e));
    this.data.readDatagrams(this.wt.datagrams.readable, () => !!this.closeInfo).catch((e) => this.fail(e));
    const timer = setTimeout(() => this.rejectSetup(new Error("no SETUP from the relay")), SETUP_TIMEOUT_MS);
    try {
      await Promise.race([this.setupDone, this.closed.then((c) => Promise.reject(new Error(c.reason)))]);
    } catch (e) {
      this.close(SessionCode.CONTROL_MESSAGE_TIMEOUT, "setup failed");
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  get isClosed(): boolean {
    return this.closeInfo !== undefined;
  }

  /** Closes the session (CLOSE_WEBTRANSPORT_SESSION). Never throws. */
  close(code: number = SessionCode.NO_ERROR, reason = ""): void {
    if (this.closeInfo) return;
    this.ended({ code, reason, remote: false });
    try {
      this.wt.close({ closeCode: code, reason });
    } catch {
      // Already closed.
    }
  }

  private ended(info: CloseInfo): CloseInfo {
    if (!this.closeInfo) {
      this.closeInfo = info;
      this.rejectSetup(new Error(info.reason || "session closed"));
      this.data.endAll(info.reason);
    }
    return this.closeInfo;
  }

  /** A protocol error from the peer: close with the draft's code (the page, not the server, ends it). */
  private fail(e: unknown): void {
    if (this.closeInfo) return;
    // A read that failed because the transport ended is not the peer's fault: `closed` reports how it ended.
    if (e instanceof Error && e.name === "WebTransportError") return;
    const code = e instanceof DecodeError ? e.code : SessionCode.PROTOCOL_VIOLATION;
    console.warn(`moq: closing session: ${errorText(e)}`);
    this.close(code, errorText(e).slice(0, 100));
  }

  // ---- incoming streams ----

  private async acceptUni(): Promise<void> {
    const reader = this.wt.incomingUnidirectionalStreams.getReader() as ReadableStreamDefaultReader<
      ReadableStream<Uint8Array>
    >;
    for (;;) {
      const { value, done } = await reader.read();
      if (done || this.closeInfo) return;
      this.handleUni(new StreamReader(value)).catch((e) => this.fail(e));
    }
  }

  private sawControl = false;

  private async handleUni(stream: StreamReader): Promise<void> {
    let type: number | undefined;
    try {
      type = await stream.decode((d) => ({ value: new Reader(d).varint(), used: 0 }));
    } catch (e) {
      if (e instanceof DecodeError) throw e;
      return; // reset before its type: nothing to do
    }
    if (type === undefined) return;
    const kind = streamKind(type);
    if (kind === "control") {
      if (this.sawControl) throw new DecodeError("a second control stream");
      this.sawControl = true;
      await this.readControl(stream);
    } else if (kind === "subgroup") {
      await this.data.readSubgroup(stream);
    } else if (kind === "fetch") {
      await this.data.readFetch(stream);
    } else {
      stream.cancel(0);
    }
  }

  private async readControl(stream: StreamReader): Promise<void> {
    try {
      await this.readControlMessages(stream);
    } catch (e) {
      if (!(e instanceof Error && e.name === "WebTransportError")) throw e;
      // Reset, or the session is ending: if it is still open shortly after, the relay broke its control stream.
      setTimeout(() => {
        if (!this.closeInfo) this.close(SessionCode.PROTOCOL_VIOLATION, "control stream reset");
      }, 100);
    }
  }

  private async readControlMessages(stream: StreamReader): Promise<void> {
    let setup = false;
    let goaway = false;
    for (;;) {
      const m = await stream.decode((d) => {
        const { msg, used } = decodeControl(d, this.version);
        return { value: msg, used };
      });
      if (!m) {
        if (this.closeInfo) return;
        throw new DecodeError("the relay closed its control stream");
      }
      if (this.closeInfo) return;
      if (!setup) {
        if (m.type !== "SETUP") throw new DecodeError(`${m.type} before SETUP`);
        setup = true;
        this.peerImplementation = m.options.implementation;
        this.resolveSetup();
        continue;
      }
      if (m.type !== "GOAWAY") throw new DecodeError(`${m.type} on the control stream`);
      if (goaway) throw new DecodeError("a second GOAWAY");
      goaway = true;
      this.goaway(m);
    }
  }

  private goaway(m: Extract<ControlMessage, { type: "GOAWAY" }>): void {
    this.goingAway = true;
    const uri = m.newSessionUri.length > 0 ? text(m.newSessionUri) : this.url;
    const handler = this.ongoaway;
    this.ongoaway = undefined;
    // Leave before the server has to close us (see the note at the top of this file).
    if (handler) handler(uri, m.timeout);
    else this.close(SessionCode.NO_ERROR, "going away");
  }

  private async acceptBidi(): Promise<void> {
    const reader =
      this.wt.incomingBidirectionalStreams.getReader() as ReadableStreamDefaultReader<WebTransportBidirectionalStream>;
    for (;;) {
      const { value, done } = await reader.read();
      if (done || this.closeInfo) return;
      this.answerPeerRequest(value).catch((e) => this.fail(e));
    }
  }

  /**
   * The relay's requests: SUBSCRIBE and TRACK_STATUS for tracks we publish are answered, everything else is
   * refused (PUBLISH with UNINTERESTED, other track requests with DOES_NOT_EXIST).
   */
  private async answerPeerRequest(bidi: WebTransportBidirectionalStream): Promise<void> {
    const stream = new RequestStream(
      new StreamReader(bidi.readable),
      new StreamWriter(bidi.writable),
      this.version,
      () => {},
    );
    const m = await stream.next();
    if (!m) return;
    const track =
      m.type === "SUBSCRIBE" || m.type === "TRACK_STATUS"
        ? this.published.get(namespaceToPath(m.namespace))?.(text(m.name))
        : undefined;
    await answerRequest(stream, m, track, this.publishTransport, () => this.nextAlias++);
  }

  private get publishTransport(): PublishTransport {
    return {
      version: this.version,
      openUni: (sendOrder) =>
        this.wt.createUnidirectionalStream({ sendOrder } as WebTransportSendStreamOptions),
    };
  }

  // ---- requests ----

  /** Opens a request stream and sends `m`; `opened` runs before `m` goes out (to register for its answer). */
  private async openRequest(m: ControlMessage, opened?: (s: RequestStream) => void): Promise<RequestStream> {
    if (this.closeInfo) throw new RequestError(RequestErrorCode.INTERNAL_ERROR, "session closed");
    if (this.goingAway) throw new RequestError(RequestErrorCode.GOING_AWAY, "the relay is going away");
    const bidi = await this.wt.createBidirectionalStream();
    const stream = new RequestStream(
      new StreamReader(bidi.readable),
      new StreamWriter(bidi.writable),
      this.version,
      () => {},
    );
    opened?.(stream);
    await stream.writer.write(encodeControl(m, this.version));
    return stream;
  }

  private requestId(): number {
    const id = this.nextRequestId;
    this.nextRequestId += 2;
    return id;
  }

  /** The first response; a REQUEST_ERROR becomes a RequestError, FIN before a response too. */
  private async response(stream: RequestStream, what: string): Promise<ControlMessage> {
    const m = await stream.next();
    if (!m)
      throw new RequestError(RequestErrorCode.INTERNAL_ERROR, `${what}: stream ended without a response`);
    if (m.type === "REQUEST_ERROR") {
      stream.cancel();
      throw new RequestError(Number(m.code), m.reason, m.retryInterval);
    }
    return m;
  }

  /** Subscribes to a track. Resolves once SUBSCRIBE_OK arrives. */
  async subscribe(
    namespace: Namespace | string,
    name: string,
    opts: SubscribeOptions = {},
  ): Promise<Subscription> {
    const ns = typeof namespace === "string" ? namespaceFromPath(namespace) : namespace;
    const requestId = this.requestId();
    const params: Parameters = { forward: true };
    if (opts.priority !== undefined) params.subscriberPriority = opts.priority;
    if (opts.filter) params.locationFilter = opts.filter;
    if (opts.groupOrder) params.groupOrder = opts.groupOrder;
    if (opts.newGroupRequest !== undefined) params.newGroupRequest = opts.newGroupRequest;
    const stream = await this.openRequest({
      type: "SUBSCRIBE",
      requestId,
      namespace: ns,
      name: utf8.encode(name),
      params,
    });
    const m = await this.response(stream, "SUBSCRIBE");
    if (m.type !== "SUBSCRIBE_OK") throw this.violation(`${m.type} in answer to SUBSCRIBE`);
    if (this.data.subscriptions.has(m.trackAlias)) {
      const e = new DecodeError(
        `track alias ${m.trackAlias} already in use`,
        SessionCode.DUPLICATE_TRACK_ALIAS,
      );
      this.fail(e);
      throw e;
    }
    const alias = m.trackAlias;
    const sub = new Subscription(
      requestId,
      ns,
      name,
      alias,
      m.params.largestObject,
      m.trackProperties,
      stream,
      () => {
        if (this.data.subscriptions.get(alias) === sub) this.data.subscriptions.delete(alias);
      },
    );
    this.data.add(alias, sub);
    sub.run().catch(() => {});
    return sub;
  }

  /** Asks for a track's status (largest location and properties) without subscribing. */
  async trackStatus(
    namespace: Namespace | string,
    name: string,
  ): Promise<{ largest?: Location; properties: Properties }> {
    const ns = typeof namespace === "string" ? namespaceFromPath(namespace) : namespace;
    const stream = await this.openRequest({
      type: "TRACK_STATUS",
      requestId: this.requestId(),
      namespace: ns,
      name: utf8.encode(name),
      params: {},
    });
    await stream.writer.finish();
    const m = await this.response(stream, "TRACK_STATUS");
    if (m.type !== "REQUEST_OK") throw this.violation(`${m.type} in answer to TRACK_STATUS`);
    stream.reader.cancel(0);
    return m.params.largestObject
      ? { largest: m.params.largestObject, properties: m.trackProperties }
      : { properties: m.trackProperties };
  }

  /**
   * Fetches past objects: a standalone range (`start` to `end`, End Location "plus 1" as the draft encodes it), or
   * a joining fetch of `joining` starting `start` groups before (relative) or at group `start` (absolute).
   */
  async fetch(
    req:
      | { namespace: Namespace | string; name: string; start: Location; end: Location }
      | { joining: Subscription; start: number; absolute?: boolean },
    opts: { priority?: number; groupOrder?: 1 | 2 } = {},
  ): Promise<FetchResponse> {
    const requestId = this.requestId();
    const params: Parameters = {};
    if (opts.priority !== undefined) params.subscriberPriority = opts.priority;
    if (opts.groupOrder) params.groupOrder = opts.groupOrder;
    const m: ControlMessage =
      "joining" in req
        ? {
            type: "FETCH",
            requestId,
            fetchType: req.absolute ? 3 : 2,
            joiningRequestId: req.joining.requestId,
            joiningStart: req.start,
            params,
          }
        : {
            type: "FETCH",
            requestId,
            fetchType: 1,
            namespace: typeof req.namespace === "string" ? namespaceFromPath(req.namespace) : req.namespace,
            name: utf8.encode(req.name),
            start: req.start,
            end: req.end,
            params,
          };
    // Registered before the FETCH goes out: its data stream can arrive before our write completes.
    let f: FetchResponse | undefined;
    const stream = await this.openRequest(m, (s) => {
      f = new FetchResponse(requestId, opts.groupOrder ?? 1, s);
      this.data.fetches.set(requestId, f);
    }).catch((e) => {
      this.data.fetches.delete(requestId);
      throw e;
    });
    if (!f) throw new RequestError(RequestErrorCode.INTERNAL_ERROR, "FETCH: no request stream");
    try {
      await stream.writer.finish();
      const ok = await this.response(stream, "FETCH");
      if (ok.type !== "FETCH_OK") throw this.violation(`${ok.type} in answer to FETCH`);
      f.endLocation = ok.endLocation;
      f.endOfTrack = ok.endOfTrack;
    } catch (e) {
      this.data.fetches.delete(requestId);
      f.entries.close();
      throw e;
    }
    return f;
  }

  /** Watches the namespaces under `prefix` (SUBSCRIBE_NAMESPACE). */
  async subscribeNamespace(prefix: Namespace | string): Promise<NamespaceWatch> {
    const ns = typeof prefix === "string" ? namespaceFromPath(prefix) : prefix;
    const stream = await this.openRequest({
      type: "SUBSCRIBE_NAMESPACE",
      requestId: this.requestId(),
      prefix: ns,
      params: {},
    });
    const m = await this.response(stream, "SUBSCRIBE_NAMESPACE");
    if (m.type !== "REQUEST_OK") throw this.violation(`${m.type} in answer to SUBSCRIBE_NAMESPACE`);
    const watch = new NamespaceWatch(ns, stream);
    watch.run().catch((e) => this.fail(e));
    return watch;
  }

  /**
   * Announces a namespace (PUBLISH_NAMESPACE) and serves its tracks from `tracks`: the relay's SUBSCRIBEs for
   * them are answered (see publish.ts). `cancel` withdraws it.
   */
  async publishNamespace(
    namespace: Namespace | string,
    tracks: TrackLookup = () => undefined,
  ): Promise<{ cancel(): void }> {
    const ns = typeof namespace === "string" ? namespaceFromPath(namespace) : namespace;
    const key = namespaceToPath(ns);
    // Registered first: the relay may subscribe as soon as it has read the request.
    this.published.set(key, tracks);
    const forget = () => {
      if (this.published.get(key) === tracks) this.published.delete(key);
    };
    try {
      const stream = await this.openRequest({
        type: "PUBLISH_NAMESPACE",
        requestId: this.requestId(),
        namespace: ns,
        params: {},
      });
      const m = await this.response(stream, "PUBLISH_NAMESPACE");
      if (m.type !== "REQUEST_OK") throw this.violation(`${m.type} in answer to PUBLISH_NAMESPACE`);
      return {
        cancel: () => {
          forget();
          stream.cancel();
        },
      };
    } catch (e) {
      forget();
      throw e;
    }
  }

  private violation(why: string): Error {
    const e = new DecodeError(why);
    this.fail(e);
    return e;
  }

  /** The smoothed round-trip time in ms, where the browser reports it. */
  async rtt(): Promise<number | undefined> {
    try {
      const getStats = (this.wt as WebTransport & { getStats?: () => Promise<{ smoothedRtt?: number }> })
        .getStats;
      const s = await getStats?.call(this.wt);
      return typeof s?.smoothedRtt === "number" ? s.smoothedRtt : undefined;
    } catch {
      return undefined;
    }
  }

  describe(): string {
    return `${this.url} (draft-${this.version} over ${this.transport === "websocket" ? "a WebSocket" : "WebTransport"}${this.peerImplementation ? `, ${this.peerImplementation}` : ""})`;
  }
}
