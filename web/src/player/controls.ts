// The player's controls: the pure decisions (keyboard shortcuts, volume steps, "behind live", buffering), the
// control bar's DOM (built with createElement and textContent only) and the element's stylesheet.

/** What a key press asks the player to do. */
export type KeyAction =
  | "toggle-play"
  | "toggle-mute"
  | "fullscreen"
  | "volume-up"
  | "volume-down"
  | "go-live"
  | "rewind"
  | "toggle-stats";

export interface KeyPress {
  key: string;
  ctrlKey?: boolean;
  metaKey?: boolean;
  altKey?: boolean;
}

/**
 * The shortcut for a key pressed while the player has focus. `onControl`: the key went to one of the player's own
 * buttons, sliders or menus, which keep space, Enter and the arrows for themselves.
 */
export function keyAction(e: KeyPress, onControl = false): KeyAction | undefined {
  if (e.ctrlKey || e.metaKey || e.altKey) return undefined;
  const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
  if (onControl && (key === " " || key.startsWith("Arrow"))) return undefined;
  switch (key) {
    case " ":
    case "k":
      return "toggle-play";
    case "m":
      return "toggle-mute";
    case "f":
      return "fullscreen";
    case "ArrowUp":
      return "volume-up";
    case "ArrowDown":
      return "volume-down";
    case "l":
    case "End":
      return "go-live";
    case "j":
      return "rewind";
    case "i":
      return "toggle-stats";
    default:
      return undefined;
  }
}

/** One rewind press (the button, or j) goes back this far, s. */
export const REWIND_STEP_S = 10;

/** One arrow press changes the volume by this much (of 1). */
export const VOLUME_STEP = 0.1;

/** The volume one step up (`dir` 1) or down (-1), within [0, 1], rounded to the step. */
export function stepVolume(volume: number, dir: 1 | -1): number {
  const v = Number.isFinite(volume) ? volume : 1;
  const next = Math.round((v + dir * VOLUME_STEP) / VOLUME_STEP) * VOLUME_STEP;
  return Math.min(1, Math.max(0, Number(next.toFixed(2))));
}

/** The "behind live" indicator shows once the latency is this far above the target, ms… */
export const BEHIND_SHOW_MS = 1000;
/** …and hides again once it is back within this much of it (hysteresis, so that it does not flicker). */
export const BEHIND_HIDE_MS = 300;

/**
 * Whether to show "behind live": `shown` is whether it shows now, `latencyMs` the latest publish-to-display
 * latency (undefined: nothing drawn lately), `targetMs` the viewer's target.
 */
export function behindLive(shown: boolean, latencyMs: number | undefined, targetMs: number): boolean {
  if (latencyMs === undefined || !Number.isFinite(latencyMs)) return false;
  const over = latencyMs - targetMs;
  return shown ? over > BEHIND_HIDE_MS : over > BEHIND_SHOW_MS;
}

/** "Behind live by 2.4 s". */
export function behindText(latencyMs: number, targetMs: number): string {
  return `Behind live by ${(Math.max(0, latencyMs - targetMs) / 1000).toFixed(1)} s`;
}

/** The "behind live" text while rewound by `rewindS` seconds. */
export function rewoundText(rewindS: number): string {
  return `Behind live by ${Math.max(0, rewindS).toFixed(1)} s (rewound)`;
}

/** A playing player that has drawn no frame for this long shows "Buffering", ms. */
export const BUFFERING_MS = 1000;

/** Whether to show the buffering indicator. */
export function buffering(s: {
  /** Connected and not paused by the viewer. */
  playing: boolean;
  /** Video is subscribed (the page and the element are seen). */
  videoWanted: boolean;
  /** Since the last drawn frame (or since playing began), ms. */
  sinceFrameMs: number;
}): boolean {
  return s.playing && s.videoWanted && s.sinceFrameMs >= BUFFERING_MS;
}

/** The control bar's elements. */
export interface ControlsUi {
  bar: HTMLElement;
  play: HTMLButtonElement;
  unmute: HTMLButtonElement;
  mute: HTMLButtonElement;
  volume: HTMLInputElement;
  behind: HTMLElement;
  behindText: HTMLElement;
  goLive: HTMLButtonElement;
  /** Back REWIND_STEP_S (further on each press), from the relay's cache. */
  rewind: HTMLButtonElement;
  latency: HTMLInputElement;
  latencyValue: HTMLElement;
  /** The latency mode menu: realtime, fixed (the slider sets it), range. */
  latencyMode: HTMLSelectElement;
  renditions: HTMLSelectElement;
  pip: HTMLButtonElement;
  fullscreen: HTMLButtonElement;
  buffering: HTMLElement;
  message: HTMLElement;
}

/**
 * Builds the control bar, in focus order: play, sound, rewind, live, latency, rendition, picture-in-picture,
 * fullscreen.
 */
export function buildControls(): ControlsUi {
  const play = button("play", "Pause");
  const unmute = button("unmute", "Click to unmute");
  const mute = button("mute", "Mute");
  mute.hidden = true;
  const volume = el("input", "volume");
  Object.assign(volume, { type: "range", min: "0", max: "1", step: String(VOLUME_STEP), value: "1" });
  volume.setAttribute("aria-label", "Volume");
  const behind = el("span", "behind");
  behind.hidden = true;
  const behindText = el("span", "behind-text");
  behindText.setAttribute("role", "status");
  const goLive = button("go-live", "Go live");
  const rewind = button("rewind", `−${REWIND_STEP_S} s`);
  // The accessible name contains the visible text (WCAG 2.5.3, label in name).
  rewind.setAttribute("aria-label", `Rewind −${REWIND_STEP_S} s`);
  rewind.title = `Rewind ${REWIND_STEP_S} s (j)`;
  behind.append(behindText, goLive);
  const latency = el("input", "latency");
  Object.assign(latency, { type: "range", min: "0", max: "2000", step: "10" });
  latency.setAttribute("aria-label", "Target latency");
  const latencyValue = el("span", "lv");
  const latencyMode = el("select", "latency-mode");
  latencyMode.title = "latency mode";
  latencyMode.setAttribute("aria-label", "Latency mode");
  const modes = [
    ["realtime", "Real-time"],
    ["fixed", "Fixed"],
    ["range", "Range"],
  ] as const;
  for (const [value, text] of modes) {
    const o = el("option", "", text);
    o.value = value;
    latencyMode.append(o);
  }
  const latencyLabel = el("label", "latency-label", "latency ");
  latencyLabel.append(latencyMode, latency, latencyValue);
  const renditions = el("select", "renditions");
  renditions.title = "rendition";
  renditions.setAttribute("aria-label", "Rendition");
  const pip = button("pip", "PiP");
  pip.title = "Picture in picture";
  const fullscreen = button("fullscreen", "Full screen");
  const bar = el("div", "bar");
  bar.setAttribute("role", "toolbar");
  bar.setAttribute("aria-label", "Player controls");
  bar.append(
    play,
    unmute,
    mute,
    volume,
    rewind,
    behind,
    el("span", "grow"),
    latencyLabel,
    renditions,
    pip,
    fullscreen,
  );
  const bufferingEl = el("div", "buffering", "Buffering…");
  bufferingEl.setAttribute("role", "status");
  bufferingEl.hidden = true;
  const message = el("div", "message");
  message.setAttribute("role", "alert");
  message.hidden = true;
  return {
    bar,
    play,
    unmute,
    mute,
    volume,
    behind,
    behindText,
    goLive,
    rewind,
    latency,
    latencyValue,
    latencyMode,
    renditions,
    pip,
    fullscreen,
    buffering: bufferingEl,
    message,
  };
}

/** A button whose label is its text (the label follows when the text changes). */
function button(cls: string, text: string): HTMLButtonElement {
  const b = el("button", cls, text);
  b.type = "button";
  return b;
}

/**
 * Sets an element's text and visibility only when they change: writing the same text again still replaces the
 * text node, which costs a layout, a paint and a composite of the whole player every time.
 */
export function show(e: HTMLElement, visible: boolean, text?: string): void {
  if (e.hidden === visible) e.hidden = !visible;
  if (text !== undefined && e.textContent !== text) e.textContent = text;
}

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  cls = "",
  text = "",
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text) e.textContent = text;
  return e;
}

export const STYLE = `
:host { display: block; position: relative; background: #000; color: #eee; font: 13px system-ui, sans-serif;
  aspect-ratio: 16 / 9; overflow: hidden; }
:host(:focus-visible) { outline: 3px solid #8cf; outline-offset: -3px; }
canvas, video.screen { width: 100%; height: 100%; object-fit: contain; display: block; }
video.pip { position: absolute; width: 1px; height: 1px; opacity: 0; pointer-events: none; }
.overlay { position: absolute; top: 8px; left: 8px; background: rgba(0,0,0,.65); padding: 6px 8px;
  border-radius: 4px; white-space: pre; font: 12px ui-monospace, monospace; pointer-events: none;
  max-width: calc(100% - 32px); overflow: hidden; }
.state { position: absolute; inset: 0; display: flex; align-items: center; justify-content: center;
  text-align: center; padding: 1em; pointer-events: none; }
.state:empty { display: none; }
.buffering, .message { position: absolute; left: 50%; top: 40%; transform: translate(-50%, -50%);
  background: rgba(0,0,0,.7); padding: 6px 12px; border-radius: 4px; pointer-events: none; }
.message { top: 20%; color: #fcc; }
.bar { position: absolute; left: 0; right: 0; bottom: 0; display: flex; flex-wrap: wrap; gap: 6px 8px;
  align-items: center; padding: 6px 8px; background: linear-gradient(transparent, rgba(0,0,0,.8)); }
button, select, input { font: inherit; min-width: 0; }
button { background: #333; color: #fff; border: 1px solid #777; border-radius: 4px; padding: 3px 8px;
  cursor: pointer; }
button.unmute, button.go-live { background: #c22; border-color: #c22; }
button:focus-visible, select:focus-visible, input:focus-visible { outline: 2px solid #8cf; outline-offset: 2px; }
[hidden] { display: none !important; }
.grow { flex: 1; }
label { display: flex; gap: 4px; align-items: center; }
input.volume { width: 72px; }
input.latency { width: 90px; }
.behind { display: flex; gap: 6px; align-items: center; }
@media (max-width: 480px) { input.latency { width: 60px; } .lv { display: none; } }
/* Phones: the bar moves under the picture (every control still there) and its controls grow to fingertip
   size (44 px). */
@media (max-width: 480px) {
  :host { aspect-ratio: auto; }
  canvas, video.screen { height: auto; aspect-ratio: 16 / 9; }
  .bar { position: static; background: #111; }
  button, select { min-height: 44px; }
  input.volume, input.latency { height: 44px; }
}
`;
