// What <moq-player>'s controls do: play/pause (back to the live edge), rewind, volume, full screen,
// picture-in-picture, the keyboard shortcuts, and the buffering and "behind live" indicators. The decisions are in
// controls.ts.

import { errorText } from "../client/session.ts";
import {
  behindLive,
  behindText,
  buffering,
  buildControls,
  type ControlsUi,
  el,
  keyAction,
  REWIND_STEP_S,
  rewoundText,
  show,
  stepVolume,
} from "./controls.ts";
import type { ToWorker } from "./protocol.ts";
import type { PlayerStats } from "./stats.ts";

/** What the controls need from the player. */
export interface ControlsHost {
  readonly element: HTMLElement;
  /** Where frames show: a <video> (the browser's video path) or the canvas fallback. */
  screen(): HTMLVideoElement | HTMLCanvasElement | undefined;
  readonly stats: PlayerStats;
  /** The latency the viewer's mode aims at, ms (latency-mode.ts `aimMs`): "behind live" counts from it. */
  targetLatency(): number;
  send(m: ToWorker): void;
  unmuted(): boolean;
  toggleMute(): void;
  /** Starts or stops the sound output (not the subscription). */
  sound(on: boolean): void;
  /** The player's demand changed (paused or not): subscribe or cancel tracks. */
  demandChanged(): void;
  /** Whether video is wanted now (seen and not paused). */
  videoWanted(): boolean;
  /** Subscribes video again, from the relay's current group. */
  resubscribeVideo(): void;
  /** Plays from `seconds` further back, from the relay's cache (rewind.ts). */
  rewind(seconds: number): void;
  /** Ends a rewind (back to the live edge); false when not rewound. */
  leaveRewind(): boolean;
}

export class PlayerControls {
  readonly ui: ControlsUi = buildControls();
  paused = false;
  private gain: GainNode | undefined;
  /** The framesRendered count last seen and when it changed (for the buffering indicator). */
  private lastRendered = 0;
  private lastFrameAt = performance.now();
  private pipVideo: HTMLVideoElement | undefined;
  private messageTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly onFullscreen = () => this.render();

  constructor(private readonly host: ControlsHost) {
    const ui = this.ui;
    ui.play.addEventListener("click", () => this.togglePlay());
    ui.unmute.addEventListener("click", () => host.toggleMute());
    ui.mute.addEventListener("click", () => host.toggleMute());
    ui.volume.addEventListener("input", () => this.setVolume(Number(ui.volume.value)));
    ui.goLive.addEventListener("click", () => this.goLive());
    ui.rewind.addEventListener("click", () => host.rewind(REWIND_STEP_S));
    ui.fullscreen.addEventListener("click", () => this.toggleFullscreen());
    ui.pip.addEventListener("click", () => this.togglePictureInPicture());
    ui.pip.hidden = !("requestPictureInPicture" in HTMLVideoElement.prototype);
    host.element.addEventListener("keydown", (e) => this.onKey(e));
  }

  connected(): void {
    const e = this.host.element;
    // Focusable, so that the shortcuts work once the viewer clicks or tabs to the player.
    if (!e.hasAttribute("tabindex")) e.tabIndex = 0;
    if (!e.hasAttribute("role")) e.setAttribute("role", "region");
    if (!e.hasAttribute("aria-label")) e.setAttribute("aria-label", "Video player");
    document.addEventListener("fullscreenchange", this.onFullscreen);
    this.render();
  }

  disconnected(): void {
    document.removeEventListener("fullscreenchange", this.onFullscreen);
    clearTimeout(this.messageTimer);
    this.pipVideo?.remove();
    this.pipVideo = undefined;
  }

  /** The audio output's gain node, created with the current volume, between the worklet and the speakers. */
  gainNode(ctx: AudioContext): GainNode {
    this.gain = new GainNode(ctx, { gain: this.host.stats.volume });
    return this.gain;
  }

  togglePlay(): void {
    if (this.paused) this.play();
    else this.pause();
  }

  pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.host.sound(false);
    this.host.demandChanged();
    this.render();
  }

  /** Plays again from the live edge: the delay back to its target, tracks subscribed from the current group. */
  play(): void {
    if (!this.paused) return;
    this.paused = false;
    this.lastFrameAt = performance.now();
    this.host.send({ type: "live" });
    if (this.host.unmuted()) this.host.sound(true);
    this.host.demandChanged();
    this.render();
  }

  /** Jumps to the live edge (a paused player plays; a rewound one stops fetching). */
  goLive(): void {
    if (this.paused) {
      this.play();
      return;
    }
    if (this.host.leaveRewind()) {
      this.host.stats.behindLive = false;
      this.render();
      return;
    }
    this.host.send({ type: "live" });
    if (this.host.videoWanted()) this.host.resubscribeVideo();
    this.host.stats.behindLive = false;
    this.render();
  }

  setVolume(v: number): void {
    const s = this.host.stats;
    s.volume = Math.min(1, Math.max(0, Number.isFinite(v) ? v : 1));
    if (this.gain) this.gain.gain.value = s.volume;
    this.ui.volume.value = String(s.volume);
    this.ui.volume.setAttribute("aria-valuetext", `${Math.round(s.volume * 100)}%`);
  }

  /** Full screen for the element (its controls included), or back. */
  toggleFullscreen(): void {
    const e = this.host.element;
    const done = document.fullscreenElement === e ? document.exitFullscreen() : e.requestFullscreen();
    done.catch((err) => this.showMessage(`Full screen refused: ${errorText(err)}`));
  }

  /**
   * Picture-in-picture: the player's <video> itself, or with the canvas fallback the canvas captured into a hidden
   * <video> that the browser floats. A refusal (no support, no user gesture, a headless browser) shows as a message.
   */
  togglePictureInPicture(): void {
    if (document.pictureInPictureElement) {
      document.exitPictureInPicture().catch(() => {});
      return;
    }
    (async () => {
      const screen = this.host.screen();
      if (screen instanceof HTMLVideoElement) {
        await screen.requestPictureInPicture();
        return;
      }
      if (!screen) throw new Error("nothing to show yet");
      if (!this.pipVideo) {
        const v = el("video", "pip");
        v.muted = true;
        v.tabIndex = -1;
        v.setAttribute("aria-hidden", "true");
        v.srcObject = screen.captureStream();
        this.host.element.shadowRoot?.append(v);
        this.pipVideo = v;
      }
      await this.pipVideo.play();
      await this.pipVideo.requestPictureInPicture();
    })().catch((e) => this.showMessage(`Picture in picture unavailable: ${errorText(e)}`));
  }

  /** A short message over the video (a refused request), gone after 4 s. */
  showMessage(text: string): void {
    const m = this.ui.message;
    m.textContent = text;
    m.hidden = false;
    clearTimeout(this.messageTimer);
    this.messageTimer = setTimeout(() => {
      m.hidden = true;
    }, 4000);
  }

  private onKey(e: KeyboardEvent): void {
    const origin = e.composedPath()[0];
    const onControl =
      origin instanceof HTMLElement &&
      origin !== this.host.element &&
      origin.matches("button, input, select");
    const action = keyAction(e, onControl);
    if (!action) return;
    e.preventDefault();
    if (action === "toggle-play") this.togglePlay();
    else if (action === "toggle-mute") this.host.toggleMute();
    else if (action === "fullscreen") this.toggleFullscreen();
    else if (action === "go-live") this.goLive();
    else if (action === "toggle-stats") this.host.element.toggleAttribute("stats");
    else if (action === "rewind") this.host.rewind(REWIND_STEP_S);
    else this.setVolume(stepVolume(this.host.stats.volume, action === "volume-up" ? 1 : -1));
  }

  /** Every tick: the buffering indicator (no frame lately while playing) and the "behind live" one. */
  tick(t: number): void {
    const s = this.host.stats;
    const rendered = s.framesRendered ?? 0;
    if (rendered !== this.lastRendered || this.paused) {
      this.lastRendered = rendered;
      this.lastFrameAt = t;
    }
    s.buffering = buffering({
      playing: s.state === "playing" && !this.paused,
      videoWanted: this.host.videoWanted(),
      sinceFrameMs: t - this.lastFrameAt,
    });
    // Rewound, it shows whatever the latency: "Go live" is the way back.
    s.behindLive =
      !this.paused &&
      (s.rewindS > 0 || (!s.buffering && behindLive(s.behindLive, s.latencyMs, this.host.targetLatency())));
    this.render();
  }

  /** The controls' labels and visibility, from the player's state. */
  render(): void {
    const { ui, host } = this;
    const s = host.stats;
    s.paused = this.paused;
    show(ui.play, true, this.paused ? "Play" : "Pause");
    show(ui.unmute, !(host.unmuted() || host.element.hasAttribute("no-audio")));
    show(ui.mute, host.unmuted());
    show(ui.behind, s.behindLive);
    if (s.behindLive)
      show(
        ui.behindText,
        true,
        s.rewindS > 0 ? rewoundText(s.rewindS) : behindText(s.latencyMs ?? 0, host.targetLatency()),
      );
    show(ui.buffering, s.buffering);
    show(
      ui.fullscreen,
      true,
      document.fullscreenElement === host.element ? "Exit full screen" : "Full screen",
    );
  }
}
