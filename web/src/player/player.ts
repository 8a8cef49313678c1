// <moq-player url="http://relay:4443/" broadcast="demo/clip"> — a live player for MoQT broadcasts.
//
// Attributes: url (relay; default: this page's origin), broadcast (namespace), latency-mode (realtime, fixed or range;
// default fixed) with target-latency (fixed, ms, default 50) or latency-min / latency-max (range, ms),
// renderer ("canvas" to draw to a canvas instead of the <video> path; video-output.ts),
// fingerprint / fingerprint-url (certificate hash, or where to fetch it), versions ("19,18"), no-audio, stats
// (show the overlay), frame-log (fill `frameLog` from the stamp of every drawn frame). Reconnects by itself when the
// relay goes away. Subscribes video only while seen and audio only while unmuted, nothing while paused (demand.ts).
// The controls and keyboard shortcuts are in controls.ts. This file is the element's lifecycle and public API
// (connect and reconnect, the worker, latency modes, rewind, the stats tick); the handover (handover.ts), the
// sound (audio-output.ts), the silence watchdog (watchdog.ts) and the pure rules live in their own modules.

import { assetUrl, moduleWorker } from "../assets.ts";
import { errorText, Session } from "../client/session.ts";
import type { Version } from "../wire/index.ts";
import { AudioOutput } from "./audio-output.ts";
import { renditionLabel } from "./catalog.ts";
import { el, STYLE } from "./controls.ts";
import { type Wants, wanted } from "./demand.ts";
import { type Attachment, type HandoverHost, handover } from "./handover.ts";
import { aimMs, DEFAULT_TARGET_MS, modeAttributes, modeFromAttributes, parseDelay } from "./latency-mode.ts";
import { BroadcastError, Playback } from "./playback.ts";
import { PlayerControls } from "./player-controls.ts";
import { type LatencyMode, startMs } from "./playout.ts";
import type { FromWorker, ToWorker } from "./protocol.ts";
import { RewindStopped, type Rewound } from "./rewind.ts";
import { overlayText, type PlayerStats } from "./stats.ts";
import { videoOutput } from "./video-output.ts";
import { SilenceWatchdog } from "./watchdog.ts";

export { DEFAULT_TARGET_MS } from "./latency-mode.ts";
export type { PlayerStats } from "./stats.ts";

/**
 * Why this browser cannot play a MoQT stream (what it lacks, and where to watch instead), or undefined. Without
 * WebTransport the player falls back to a WebSocket; without WebCodecs it has no way to decode.
 */
export function unsupportedReason(): string | undefined {
  const missing: string[] = [];
  if (typeof VideoDecoder !== "function") missing.push("video decoding (WebCodecs)");
  if (typeof WebSocket !== "function" && typeof WebTransport !== "function")
    missing.push("WebTransport or WebSocket");
  if (missing.length === 0) return undefined;
  return `This browser cannot play live streams: it has no ${missing.join(" and no ")}. Watch in a current Chrome, Edge, Firefox or Safari.`;
}

export class MoqPlayer extends HTMLElement {
  static observedAttributes = [
    "target-latency",
    "latency-mode",
    "latency-min",
    "latency-max",
    "stats",
    "throughput-cap",
    "frame-log",
  ];

  /**
   * A token for a relay that requires one, sent in SETUP (never in a URL). A property, not an attribute, so that
   * it never shows in the page's markup; set it before `src`.
   */
  token: string | undefined;

  /** The latest statistics (also sent as a "stats" event every 250 ms). */
  stats: PlayerStats = {
    state: "idle",
    groupsSkipped: 0,
    bitrateKbps: 0,
    audioSamplesPlayed: 0,
    audioUnderruns: 0,
    audioSkipped: 0,
    audioState: "muted",
    reconnects: 0,
    handoversStarted: 0,
    handoversDone: 0,
    videoObjects: 0,
    audioObjects: 0,
    videoPaused: false,
    paused: false,
    buffering: false,
    behindLive: false,
    volume: 1,
    rewindS: 0,
  };

  /** Every publish-to-display latency (ms), oldest first, up to 100 000 (for measurements). */
  readonly latencyLog: number[] = [];
  /** Every glass-to-glass latency read from stamped frames (ms), oldest first, up to 100 000. */
  readonly stampLog: number[] = [];
  /**
   * With the `frame-log` attribute: every drawn video frame as [the frame number read from its stamp, when it was
   * drawn (ms since the Unix epoch)], oldest first, up to 200 000. A reader may take entries out (splice).
   */
  readonly frameLog: [number, number][] = [];
  private startedAt = performance.now();
  /** Connections to the page so far: a start deferred from an earlier one is dropped. */
  private starts = 0;
  private worker: Worker | undefined;
  private session: Session | undefined;
  private playback: Playback | undefined;
  private running = false;
  private delayMs = DEFAULT_TARGET_MS;
  private lastBytes = 0;
  private lastStatsAt = 0;
  private lastTrouble = { dropped: 0, skipped: 0 };
  private timer: ReturnType<typeof setInterval> | undefined;
  private readonly watchdog = new SilenceWatchdog();
  private ticks = 0;
  private menuKey = "";
  /** What the tracks depend on (demand.ts): the viewer's unmute, the page's visibility, the element in view. */
  private unmuted = false;
  private inView = true;
  private observer: IntersectionObserver | undefined;
  private readonly onVisibility = () => this.demandChanged();
  /** The playback whose objects were last counted, and its counts then. */
  private counted: { p: Playback | undefined; video: number; audio: number } = {
    p: undefined,
    video: 0,
    audio: 0,
  };
  private readonly controls: PlayerControls;
  private readonly audio: AudioOutput;
  /** Where frames show (made per worker: a canvas can be handed to a worker once). */
  private screen: HTMLVideoElement | HTMLCanvasElement | undefined;
  private readonly ui: PlayerControls["ui"] & {
    overlay: HTMLElement;
    state: HTMLElement;
  };

  constructor() {
    super();
    const root = this.attachShadow({ mode: "open" });
    // A constructed stylesheet: pages served with `style-src 'self'` refuse an inline <style>.
    root.adoptedStyleSheets = [playerSheet()];
    this.controls = new PlayerControls({
      element: this,
      screen: () => this.screen,
      stats: this.stats,
      targetLatency: () => aimMs(this.latencyMode, this.delayMs),
      send: (m) => this.send(m),
      unmuted: () => this.unmuted,
      toggleMute: () => this.toggleMute(),
      sound: (on) => this.sound(on),
      demandChanged: () => this.demandChanged(),
      videoWanted: () => this.wants().video,
      resubscribeVideo: () => {
        const w = this.wants();
        this.playback?.want({ video: false, audio: w.audio });
        this.playback?.want(w);
      },
      rewind: (seconds) => {
        this.rewind(seconds).catch(() => {});
      },
      leaveRewind: () => this.leaveRewind(),
    });
    this.audio = new AudioOutput(
      this.stats,
      () => assetUrl(".", this.getAttribute("assets")).href,
      (ctx) => this.controls.gainNode(ctx),
      (m, t) => this.send(m, t),
    );
    this.ui = { ...this.controls.ui, overlay: el("div", "overlay"), state: el("div", "state") };
    this.ui.renditions.append(option("", "auto"));
    this.ui.overlay.hidden = true;
    const ui = this.ui;
    root.append(ui.state, ui.overlay, ui.buffering, ui.message, ui.bar);
    this.ui.renditions.addEventListener("change", () =>
      this.playback?.choose(this.ui.renditions.value || undefined),
    );
    this.ui.latency.addEventListener("input", () =>
      this.setAttribute("target-latency", this.ui.latency.value),
    );
    this.ui.latencyMode.addEventListener("change", () =>
      this.setAttribute("latency-mode", this.ui.latencyMode.value),
    );
  }

  /** The fixed mode's delay (`target-latency`), ms. */
  get targetLatency(): number {
    return parseDelay(this.getAttribute("target-latency")) ?? DEFAULT_TARGET_MS;
  }

  /** The latency mode the attributes ask for (latency-mode.ts); setting it sets them. */
  get latencyMode(): LatencyMode {
    return modeFromAttributes((name) => this.getAttribute(name));
  }

  set latencyMode(mode: LatencyMode) {
    for (const [name, value] of modeAttributes(mode)) this.setAttribute(name, value);
  }

  /** The latency attributes changed, or the worker started: the menu, the slider, the stats and the worker follow. */
  private latencyChanged(): void {
    const mode = this.latencyMode;
    const ui = this.ui;
    ui.latencyMode.value = mode.kind;
    ui.latency.value = String(this.targetLatency);
    ui.latency.hidden = mode.kind !== "fixed";
    ui.latencyValue.textContent =
      mode.kind === "fixed" ? `${mode.ms} ms` : mode.kind === "range" ? `${mode.minMs}–${mode.maxMs} ms` : "";
    this.stats.latencyMode = mode;
    // Rewound, the delay is the rewind's; the mode applies again at the live edge.
    if (!this.playback?.rewound) this.send({ type: "target", ms: startMs(mode), mode });
  }

  attributeChangedCallback(name: string): void {
    if (name === "target-latency" || name.startsWith("latency-")) this.latencyChanged();
    if (name === "stats") this.ui.overlay.hidden = !this.hasAttribute("stats");
    if (name === "throughput-cap" && this.playback) this.playback.capBps = this.throughputCap;
    if (name === "frame-log") this.send({ type: "frame-log", enabled: this.hasAttribute("frame-log") });
  }

  /** The `throughput-cap` attribute (kb/s) as bits per second: the estimate never exceeds it. */
  get throughputCap(): number | undefined {
    const v = Number(this.getAttribute("throughput-cap") ?? Number.NaN);
    return Number.isFinite(v) && v > 0 ? v * 1000 : undefined;
  }

  connectedCallback(): void {
    if (this.running) return;
    this.running = true;
    this.controls.connected();
    this.ui.overlay.hidden = !this.hasAttribute("stats");
    this.latencyChanged();
    this.timer = setInterval(() => this.tick(), 250);
    document.addEventListener("visibilitychange", this.onVisibility);
    if (typeof IntersectionObserver === "function") {
      this.observer = new IntersectionObserver((entries) => {
        const last = entries[entries.length - 1];
        if (!last) return;
        this.inView = last.isIntersecting;
        this.demandChanged();
      });
      this.observer.observe(this);
    }
    this.stats.videoPaused = !this.wants().video;
    // Start after the current task, so a page script can still set attributes after the element upgrades.
    const start = ++this.starts;
    setTimeout(() => {
      if (!this.running || start !== this.starts) return;
      // A browser that cannot play says so in words, rather than staying black.
      const unsupported = unsupportedReason();
      if (unsupported) {
        this.stats.error = unsupported;
        this.setState("unsupported", unsupported);
        return;
      }
      this.startWorker();
      this.loop().catch((e) => this.setError(errorText(e)));
    }, 0);
  }

  disconnectedCallback(): void {
    this.running = false;
    clearInterval(this.timer);
    document.removeEventListener("visibilitychange", this.onVisibility);
    this.controls.disconnected();
    this.observer?.disconnect();
    this.observer = undefined;
    this.playback?.close();
    this.session?.close(0, "player removed");
    this.worker?.terminate();
    this.worker = undefined;
    this.screen?.remove();
    this.screen = undefined;
    this.audio.close();
  }

  /** The tracks to subscribe now. */
  private wants(): Wants {
    return wanted({
      audioAllowed: !this.hasAttribute("no-audio"),
      unmuted: this.unmuted,
      pageHidden: document.visibilityState === "hidden",
      inView: this.inView,
      paused: this.controls.paused,
    });
  }

  /** Subscribes or cancels tracks when the page's visibility, the element's view or the mute changes. */
  private demandChanged(): void {
    const w = this.wants();
    this.stats.videoPaused = !w.video;
    this.playback?.want(w);
  }

  private send(m: ToWorker, transfer: Transferable[] = []): void {
    this.worker?.postMessage(m, transfer);
  }

  private startWorker(): void {
    this.worker = moduleWorker(assetUrl("decoder-worker.js", this.getAttribute("assets")));
    this.worker.onmessage = (e: MessageEvent<FromWorker>) => this.onWorker(e.data);
    this.worker.onerror = (e) => this.setError(`decoder worker: ${e.message}`);
    const init: ToWorker = { type: "init", targetMs: startMs(this.latencyMode) };
    const output = videoOutput(this.getAttribute("renderer"));
    this.screen = output.screen;
    this.shadowRoot?.prepend(output.screen);
    if (output.frames) init.frames = output.frames;
    else init.canvas = (output.screen as HTMLCanvasElement).transferControlToOffscreen();
    this.stats.renderer = output.frames ? "video" : "canvas";
    if (this.audio.ring) init.ring = this.audio.ring.layout;
    const handed = init.frames ?? init.canvas;
    this.send(init, handed ? [handed] : []);
    this.send({ type: "frame-log", enabled: this.hasAttribute("frame-log") });
    this.latencyChanged();
  }

  private onWorker(m: FromWorker): void {
    if (m.type === "stats") {
      const { type: _, recent, stampRecent, frameRecent, ...rest } = m;
      Object.assign(this.stats, rest);
      for (const [log, add] of [
        [this.latencyLog, recent],
        [this.stampLog, stampRecent],
      ] as const) {
        log.push(...add);
        if (log.length > 100_000) log.splice(0, log.length - 100_000);
      }
      for (const e of frameRecent) this.frameLog.push(e);
      if (this.frameLog.length > 200_000) this.frameLog.splice(0, this.frameLog.length - 200_000);
      this.delayMs = m.delayMs;
    } else if (m.type === "error") {
      this.setError(m.message);
    } else if (m.type === "first-frame") {
      this.ui.state.textContent = "";
      this.stats.startupMs ??= performance.now() - this.startedAt;
    }
  }

  /** Starts audio (from a user gesture: the button or a key); audio-output.ts. */
  async unmute(): Promise<void> {
    if (this.controls.paused) {
      await this.audio.prepare();
      this.unmuted = true;
      this.controls.render();
      return;
    }
    await this.audio.start();
    this.unmuted = true;
    this.controls.render();
    // Audio is subscribed only now, at the live edge; once it plays it is the clock video follows.
    this.demandChanged();
  }

  /** Stops audio and cancels its subscription; video follows the wall clock again. */
  mute(): void {
    this.unmuted = false;
    this.sound(false);
    this.stats.audioState = "muted";
    this.controls.render();
    this.demandChanged();
  }

  /** Starts or stops the sound output (while unmuted; the subscription follows the demand). */
  private sound(on: boolean): void {
    this.audio.sound(on, () => this.unmuted && !this.controls.paused);
  }

  /** Mutes, or unmutes (which must come from a user gesture: a click or a key). */
  toggleMute(): void {
    if (this.unmuted) this.mute();
    else this.unmute().catch((e) => this.setError(`audio: ${errorText(e)}`));
  }

  /** Whether the viewer has paused. */
  get paused(): boolean {
    return this.controls.paused;
  }

  /** Stops showing frames and playing sound; nothing is subscribed until `play()`. */
  pause(): void {
    this.controls.pause();
  }

  /** Plays again, from the live edge (not from where it paused). */
  play(): void {
    this.controls.play();
  }

  /**
   * Jumps to the live edge: the delay drops to the target, video is subscribed again from the current group (a
   * rewind ends).
   */
  goLive(): void {
    this.controls.goLive();
  }

  /** The worker's delay at the live edge before the rewind, ms (`stats.rewindS` counts from it). */
  private liveDelayMs = 0;

  /**
   * Plays from `seconds` further back (from what is shown now), out of the relay's cache: its depth is the relay's
   * `--cache-groups` groups. Resolves once the rewound playback has started; a refusal shows as a message and
   * the player stays (or goes back) live. `goLive` returns to the live edge.
   */
  async rewind(seconds: number): Promise<void> {
    const p = this.playback;
    if (!p || !Number.isFinite(seconds) || seconds <= 0) return;
    if (this.controls.paused) this.controls.play();
    if (!p.rewound) this.liveDelayMs = this.delayMs;
    try {
      await p.rewind(seconds);
    } catch (e) {
      if (e instanceof RewindStopped || p !== this.playback) return;
      this.controls.showMessage(`Rewind unavailable: ${errorText(e)}`);
    }
  }

  /** Ends a rewind: back to the live edge. False when not rewound. */
  private leaveRewind(): boolean {
    const p = this.playback;
    if (!p?.rewound) return false;
    p.live();
    return true;
  }

  /** A rewind set the delay (`r`) or ended (undefined): the worker's target and `stats.rewindS` follow. */
  private rewound(r: Rewound | undefined): void {
    if (r) {
      this.stats.rewindS = Math.max(0, Math.round((r.delayMs - this.liveDelayMs) / 100) / 10);
      // A fixed delay: the first fetched frame shows now, and everything after it as far behind.
      this.send({ type: "target", ms: r.delayMs });
      this.send({ type: "live" });
      if (r.clamped)
        this.controls.showMessage(`Rewound ${this.stats.rewindS.toFixed(0)} s: the relay holds no more`);
    } else {
      this.stats.rewindS = 0;
      this.latencyChanged();
      this.send({ type: "live" });
    }
    this.stats.behindLive = this.stats.rewindS > 0;
    this.controls.render();
  }

  /** The audio gain, 0 to 1 (kept while muted). */
  get volume(): number {
    return this.stats.volume;
  }

  set volume(v: number) {
    this.controls.setVolume(v);
  }

  toggleFullscreen(): void {
    this.controls.toggleFullscreen();
  }

  togglePictureInPicture(): void {
    this.controls.togglePictureInPicture();
  }

  private setState(state: string, text = ""): void {
    this.stats.state = state;
    this.ui.state.textContent = text;
    this.dispatchEvent(new CustomEvent("statechange", { detail: state }));
  }

  private setError(message: string): void {
    this.stats.error = message;
    this.ui.state.textContent = message;
    console.warn(`moq player: ${message}`);
  }

  private connect(url: string, signal?: AbortSignal): Promise<Session> {
    const versions = (this.getAttribute("versions") ?? "19,18").split(",").map(Number) as Version[];
    const opts: Parameters<typeof Session.connect>[1] = { versions };
    const fp = this.getAttribute("fingerprint");
    const fpUrl = this.getAttribute("fingerprint-url");
    if (fp) opts.fingerprint = fp;
    if (fpUrl) opts.fingerprintUrl = fpUrl;
    if (signal) opts.signal = signal;
    if (this.token) opts.token = this.token;
    const transport = this.getAttribute("transport");
    if (transport === "webtransport" || transport === "websocket") opts.transport = transport;
    return Session.connect(url, opts);
  }

  /**
   * Plays the broadcast over `session`. `post` is where the playback's worker messages go (held back during a
   * handover). `ended` rejects when the playback or the session ends; `moved` resolves with the next attachment
   * when a GOAWAY handed playback over to a new session.
   */
  private attach(session: Session, post: (m: ToWorker, t?: Transferable[]) => void): Attachment {
    const playback = new Playback(
      session,
      this.getAttribute("broadcast") ?? "",
      post,
      () => this.delayMs,
      this.wants(),
    );
    playback.capBps = this.throughputCap;
    playback.onchange = () => this.renderMenu();
    playback.onerror = (message) => this.setError(message);
    playback.onrewind = (r) => {
      if (playback === this.playback) this.rewound(r);
    };
    let moved: (a: Attachment) => void = () => {};
    let moving: Promise<boolean> | undefined;
    const a: Attachment = {
      session,
      playback,
      ended: Promise.race([
        playback.run(),
        session.closed.then((c) => {
          throw new Error(
            c.remote ? `relay closed the session${c.reason ? `: ${c.reason}` : ""}` : "session closed",
          );
        }),
      ]),
      moved: new Promise<Attachment>((r) => {
        moved = r;
      }),
      move: (uri, timeoutMs) => {
        moving ??= handover(this.handoverHost, a, uri, timeoutMs, moved);
        return moving;
      },
    };
    a.ended.catch(() => {});
    // GOAWAY: make before break (handover below), to the new URI if one was given.
    session.ongoaway = (uri, timeoutMs) => {
      a.move(uri, timeoutMs).catch(() => {});
    };
    return a;
  }

  /**
   * Moves playback to a new session, as a GOAWAY does: the new session subscribes while the old one keeps
   * playing, and the old one closes when the new one delivers its first video object. `url` defaults to the
   * current relay. Returns whether the move was made (false: it fell back to a reconnect).
   */
  moveSession(url?: string): Promise<boolean> {
    const a = this.current;
    if (!a) return Promise.resolve(false);
    a.session.ongoaway = undefined;
    return a.move(url ?? a.session.url, 0);
  }

  private current: Attachment | undefined;

  /** What a GOAWAY handover (handover.ts) needs of the element. */
  private readonly handoverHost: HandoverHost = {
    stats: this.stats,
    running: () => this.running,
    url: () => this.getAttribute("url") ?? location.origin,
    setUrl: (url) => this.setAttribute("url", url),
    connect: (url, signal) => this.connect(url, signal),
    attach: (session, post) => this.attach(session, post),
    send: (m, t) => this.send(m, t),
  };

  /** Connect, play, and reconnect with backoff until removed from the page. */
  private async loop(): Promise<void> {
    let backoff = 250;
    while (this.running) {
      const url = this.getAttribute("url") ?? location.origin;
      try {
        this.setState("connecting", `connecting to ${url}`);
        const session = await this.connect(url);
        this.stats.error = undefined;
        this.send({ type: "reset" });
        // A new session plays live: a rewind did not survive the old one.
        if (this.stats.rewindS > 0) this.rewound(undefined);
        let a = this.attach(session, (m, t) => this.send(m, t));
        this.setState("playing", "waiting for video");
        backoff = 250;
        for (;;) {
          this.current = a;
          this.session = a.session;
          this.playback = a.playback;
          a.playback.want(this.wants());
          this.stats.version = a.session.version;
          this.stats.transport = a.session.transport;
          this.stats.relay = a.session.describe();
          // The old playback ends as the new one takes over: that is a move, not an end.
          const next = (await Promise.race([a.ended.then(() => undefined), a.moved])) ?? a.next;
          if (!next) break;
          a.playback.close();
          a = next;
        }
      } catch (e) {
        if (!this.running) return;
        this.setError(e instanceof BroadcastError ? e.message : `${errorText(e)}`);
        // A missing or ended broadcast may (re)appear at any moment: look again soon.
        if (e instanceof BroadcastError) backoff = Math.min(backoff, 1000);
      }
      this.current = undefined;
      this.playback?.close();
      this.playback = undefined;
      this.session?.close(0, "");
      this.session = undefined;
      if (!this.running) return;
      this.stats.reconnects++;
      this.setState("reconnecting", `${this.stats.error ?? "disconnected"} — reconnecting`);
      await new Promise((r) => setTimeout(r, backoff));
      backoff = Math.min(backoff * 2, 5000);
    }
  }

  /** The rendition menu: "auto" and at most MAX_MENU renditions, rebuilt only when they change. */
  private renderMenu(): void {
    const p = this.playback;
    if (!p) return;
    const sel = this.ui.renditions;
    const shown = p.renditions.slice(0, MAX_MENU);
    const key = JSON.stringify(shown.map((t) => [t.name, renditionLabel(t)]));
    if (this.menuKey !== key) {
      this.menuKey = key;
      sel.replaceChildren(option("", "auto"), ...shown.map((t) => option(t.name, renditionLabel(t))));
    }
    sel.value = p.manual ?? "";
    this.stats.rendition = p.video ? renditionLabel(p.video.track) : undefined;
  }

  /** Every 250 ms: transport stats, automatic rendition choice, the overlay, and a "stats" event. */
  private tick(): void {
    const t = performance.now();
    const p = this.playback;
    if (p) {
      const bytes = p.stats.videoBytes + p.stats.audioBytes;
      if (this.lastStatsAt) this.stats.bitrateKbps = ((bytes - this.lastBytes) * 8) / (t - this.lastStatsAt);
      this.lastBytes = bytes;
      this.stats.groupsSkipped = p.stats.groupsSkipped;
      const dropped = (this.stats.framesDropped ?? 0) - this.lastTrouble.dropped;
      const skipped = p.stats.groupsSkipped - this.lastTrouble.skipped;
      if (t - this.lastStatsAt > 0) p.adapt(skipped > 0 || dropped > 5);
      this.stats.throughputKbps = p.estimateBps === undefined ? undefined : p.estimateBps / 1000;
      this.lastTrouble = { dropped: this.stats.framesDropped ?? 0, skipped: p.stats.groupsSkipped };
      this.stats.rendition = p.video ? renditionLabel(p.video.track) : undefined;
      if (this.counted.p !== p) this.counted = { p, video: 0, audio: 0 };
      this.stats.videoObjects += p.stats.videoObjects - this.counted.video;
      this.stats.audioObjects += p.stats.audioObjects - this.counted.audio;
      this.counted.video = p.stats.videoObjects;
      this.counted.audio = p.stats.audioObjects;
    } else {
      this.lastBytes = 0;
    }
    this.lastStatsAt = t;
    this.watchdog.check(t, this.playback, this.session, () => this.session);
    // WebTransport's getStats is a round trip to the network process: every tick only while the overlay shows.
    if (!this.ui.overlay.hidden || ++this.ticks % RTT_EVERY_TICKS === 0)
      this.session?.rtt().then((rtt) => {
        if (rtt !== undefined) this.stats.rttMs = rtt;
      });
    const audioState = this.audio.state;
    if (audioState && this.unmuted) this.stats.audioState = audioState;
    this.controls.tick(t);
    if (!this.ui.overlay.hidden) this.ui.overlay.textContent = overlayText(this.stats);
    this.dispatchEvent(new CustomEvent("stats", { detail: this.stats }));
  }
}

/** Without the overlay, the RTT is read every this many 250 ms ticks. */
const RTT_EVERY_TICKS = 8;

/** The most renditions the menu lists (the catalog has at most 64 tracks). */
const MAX_MENU = 16;

function option(value: string, text: string): HTMLOptionElement {
  const o = el("option", "", text);
  o.value = value;
  return o;
}

let sheet: CSSStyleSheet | undefined;

/** One stylesheet shared by every player on the page. */
function playerSheet(): CSSStyleSheet {
  if (!sheet) {
    sheet = new CSSStyleSheet();
    sheet.replaceSync(STYLE);
  }
  return sheet;
}

if (!customElements.get("moq-player")) customElements.define("moq-player", MoqPlayer);
