// <moq-studio>: going live as an element, for pages that embed the studio rather than link to /studio.
//
//   <moq-studio url="https://relay.example/" channel="alice" title="Alice live" source="camera"></moq-studio>
//   studio.token = jwt; await studio.start(); … await studio.stop();
//
// Attributes: url (the relay), channel, title, source (camera, screen or pattern; default camera), codec (h264,
// vp9, av1), size (WxH of the test pattern), fingerprint-url, assets (where studio-worker.js and
// capture-worklet.js are). It shows the camera (or the pattern) and one status line, and fires "change" whenever
// its `stats` change.

import { errorText } from "../client/resolve.ts";
import type { VideoCodecChoice } from "./protocol.ts";
import { type SourceChoice, Studio, type StudioOptions, type StudioStats } from "./studio.ts";

const SOURCES: SourceChoice[] = ["camera", "screen", "pattern"];
const CODECS: VideoCodecChoice[] = ["h264", "vp9", "av1"];

export class MoqStudio extends HTMLElement {
  /** A token for a relay that requires one, sent in SETUP (never in markup or a URL). Set before `start`. */
  token: string | undefined;
  private studio: Studio | undefined;
  private readonly root: ShadowRoot;
  private readonly status: HTMLElement;
  private readonly camera: HTMLVideoElement;
  private preview: HTMLCanvasElement;

  constructor() {
    super();
    this.root = this.attachShadow({ mode: "open" });
    const style = document.createElement("style");
    style.textContent = `:host { display: block; }
      video, canvas { width: 100%; height: auto; background: #000; display: block; }
      [hidden] { display: none !important; }
      .status { font: 14px system-ui, sans-serif; padding: 4px 0; }`;
    this.camera = document.createElement("video");
    this.camera.muted = true;
    this.camera.playsInline = true;
    this.preview = document.createElement("canvas");
    this.status = document.createElement("div");
    this.status.className = "status";
    this.status.setAttribute("role", "status");
    this.status.textContent = "offline";
    this.root.append(style, this.camera, this.preview, this.status);
  }

  /** The studio's statistics (state, renditions, errors), once started. */
  get stats(): StudioStats | undefined {
    return this.studio?.stats;
  }

  /** The namespace it publishes (`live/<channel>`). */
  get namespace(): string | undefined {
    return this.studio?.namespace;
  }

  /** Captures, encodes and goes live; resolves once capture and the encoders run (not when the relay answers). */
  async start(): Promise<void> {
    if (this.studio && this.studio.stats.state !== "offline" && this.studio.stats.state !== "refused") return;
    const relay = this.getAttribute("url");
    if (!relay) throw new Error("<moq-studio> needs a url attribute (the relay)");
    const sourceAttr = this.getAttribute("source") as SourceChoice | null;
    const codecAttr = this.getAttribute("codec") as VideoCodecChoice | null;
    const source = sourceAttr && SOURCES.includes(sourceAttr) ? sourceAttr : "camera";
    const fresh = document.createElement("canvas");
    this.preview.replaceWith(fresh);
    this.preview = fresh;
    this.preview.hidden = source !== "pattern";
    this.camera.hidden = source === "pattern";
    const opts: StudioOptions = {
      relay,
      channel: this.getAttribute("channel") ?? "",
      title: this.getAttribute("title") ?? "",
      source,
      codec: codecAttr && CODECS.includes(codecAttr) ? codecAttr : "h264",
      preview: this.preview,
      video: this.camera,
    };
    const size = /^(\d{2,4})x(\d{2,4})$/.exec(this.getAttribute("size") ?? "");
    if (size) {
      opts.width = Number(size[1]);
      opts.height = Number(size[2]);
    }
    const fingerprintUrl = this.getAttribute("fingerprint-url");
    if (fingerprintUrl) opts.fingerprintUrl = fingerprintUrl;
    const assets = this.getAttribute("assets");
    if (assets) opts.assets = assets;
    if (this.token) opts.token = this.token;
    const studio = new Studio(opts);
    this.studio = studio;
    studio.onchange = () => this.changed();
    try {
      await studio.start();
    } catch (e) {
      studio.stats.error = errorText(e);
      await studio.stop();
      this.changed();
      throw e;
    }
  }

  /** Stops capture and leaves the relay. */
  async stop(): Promise<void> {
    await this.studio?.stop();
    this.changed();
  }

  disconnectedCallback(): void {
    this.studio?.close();
  }

  private changed(): void {
    const s = this.studio?.stats;
    const state = s?.state ?? "offline";
    this.status.textContent = s?.error ? `${state}: ${s.error}` : state;
    this.dispatchEvent(new CustomEvent("change", { detail: s }));
  }
}

if (!customElements.get("moq-studio")) customElements.define("moq-studio", MoqStudio);
