// The /studio page: a form to go live (`?channel=`, `&title=`, `&source=pattern|camera|screen`,
// `&codec=h264|vp9|av1`, `&url=`, `&fingerprint-url=` prefill it; `&size=640x360` sets the pattern's or the
// camera's size, default 1280x720), the preview, the LIVE badge, per-rendition statistics, and the channel's
// chat. The token comes from `#token=` (erased from the address bar at once) or the form; it goes to a relay on
// another origin than the page only when the streamer ticks the box naming that origin.

import { mountChat } from "../chat/ui.ts";
import { errorText } from "../client/session.ts";
import { consentBox, originOf, sameOrigin, takePageToken } from "../client/token.ts";
import type { VideoCodecChoice } from "./protocol.ts";
import { type SourceChoice, Studio } from "./studio.ts";

// First: the token leaves the address bar before any session starts.
const pageToken = takePageToken();
const params = new URLSearchParams(location.search);
const relay = params.get("url") ?? location.origin;
const fingerprintUrl = params.get("fingerprint-url") ?? undefined;
const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

const form = $<HTMLFormElement>("setup");
const channel = $<HTMLInputElement>("channel");
const title = $<HTMLInputElement>("title-input");
const token = $<HTMLInputElement>("token");
const source = $<HTMLSelectElement>("source");
const codec = $<HTMLSelectElement>("codec");
const goLive = $<HTMLButtonElement>("go-live");
const stopButton = $<HTMLButtonElement>("stop");
const keyframe = $<HTMLButtonElement>("keyframe");
const status = $("status");
const error = $("error");
const live = $("live");
const statsBody = $("stats").querySelector("tbody") as HTMLElement;
const watchLink = $("watch-link");
const chat = $("chat");

channel.value = params.get("channel") ?? `studio-${Math.random().toString(16).slice(2, 8)}`;
title.value = params.get("title") ?? "";
token.value = pageToken ?? "";

/** For a relay on another origin: the streamer's consent to send the token there (unchecked by default). */
const consent = sameOrigin(relay) ? undefined : consentBox(originOf(relay));
if (consent) (token.closest("label") ?? token).after(consent.element);
source.value = params.get("source") ?? "pattern";
codec.value = params.get("codec") ?? "h264";

/** Offers only the codecs this browser can encode. */
async function checkCodecs(): Promise<void> {
  const strings: Record<VideoCodecChoice, string> = {
    h264: "avc1.42e01f",
    vp9: "vp09.00.40.08",
    av1: "av01.0.05M.08",
  };
  for (const option of codec.options) {
    const c = strings[option.value as VideoCodecChoice];
    const ok = await VideoEncoder.isConfigSupported({ codec: c, width: 1280, height: 720 })
      .then((s) => s.supported === true)
      .catch(() => false);
    option.disabled = !ok;
    if (!ok) option.textContent += " (not supported here)";
  }
}
checkCodecs().catch(() => {});

let studio: Studio | undefined;

function showError(message: string | undefined): void {
  error.hidden = !message;
  error.textContent = message ?? "";
}

function cell(row: HTMLTableRowElement, text: string): void {
  const td = document.createElement("td");
  td.textContent = text;
  row.append(td);
}

function render(): void {
  const s = studio?.stats;
  const state = s?.state ?? "offline";
  document.body.dataset.state = state;
  live.hidden = state !== "live";
  const labels: Record<string, string> = {
    offline: "offline",
    starting: "starting the camera and encoders…",
    connecting: `connecting to ${relay}…`,
    live: `live in ${studio?.namespace} (${s?.subscribers ?? 0} track subscriptions)`,
    reconnecting: `connection lost — reconnecting (${s?.reconnects ?? 0})…`,
    refused: "refused by the relay",
  };
  status.textContent = labels[state] ?? state;
  showError(s?.error);
  const running = state !== "offline" && state !== "refused";
  goLive.disabled = running;
  stopButton.disabled = !running;
  keyframe.disabled = !running;
  for (const input of [channel, source, codec, token]) input.disabled = running;
  if (consent) consent.checkbox.disabled = running;
  statsBody.replaceChildren();
  for (const r of s?.video ?? []) {
    const row = document.createElement("tr");
    cell(row, r.track);
    cell(row, `${r.width}x${r.height}`);
    cell(row, String(r.fps));
    cell(row, String(Math.round(r.kbps)));
    cell(row, String(r.queue));
    cell(row, String(r.dropped));
    statsBody.append(row);
  }
  if (s && s.audioKbps > 0) {
    const row = document.createElement("tr");
    for (const t of ["audio0", "opus 48 kHz", "", String(Math.round(s.audioKbps)), "", ""]) cell(row, t);
    statsBody.append(row);
  }
}

/** A fresh preview canvas: a canvas can hand its drawing to a worker only once. */
function freshPreview(): HTMLCanvasElement {
  const old = $<HTMLCanvasElement>("preview");
  const canvas = document.createElement("canvas");
  canvas.id = "preview";
  canvas.width = old.width;
  canvas.height = old.height;
  old.replaceWith(canvas);
  return canvas;
}

form.addEventListener("submit", (e) => {
  e.preventDefault();
  if (studio && studio.stats.state !== "offline" && studio.stats.state !== "refused") return;
  const jwt = token.value.trim();
  if (jwt && consent && !consent.checkbox.checked) {
    showError(
      `The token would go to ${originOf(relay)}, another site than this page: tick the box to send it there, or clear the token.`,
    );
    return;
  }
  const choice = source.value as SourceChoice;
  const camera = $<HTMLVideoElement>("camera");
  const preview = freshPreview();
  preview.hidden = choice !== "pattern";
  camera.hidden = choice === "pattern";
  const opts: ConstructorParameters<typeof Studio>[0] = {
    relay,
    channel: channel.value.trim(),
    title: title.value.trim(),
    source: choice,
    codec: codec.value as VideoCodecChoice,
    preview,
    video: camera,
  };
  // &keyint=10: a keyframe every 10 s (default 2); viewers joining ask for one sooner (NEW_GROUP_REQUEST).
  const keyint = Number(params.get("keyint"));
  if (Number.isFinite(keyint) && keyint > 0) opts.keyframeIntervalMs = Math.min(keyint, 60) * 1000;
  const size = /^(\d{2,4})x(\d{2,4})$/.exec(params.get("size") ?? "");
  if (size) {
    opts.width = Number(size[1]);
    opts.height = Number(size[2]);
  }
  if (fingerprintUrl) opts.fingerprintUrl = fingerprintUrl;
  if (jwt) opts.token = jwt;
  const s = new Studio(opts);
  studio = s;
  (globalThis as { moqStudio?: Studio }).moqStudio = s;
  s.onchange = render;
  s.start().catch((err) => {
    s.stats.error = errorText(err);
    s.stop();
  });
  const q = new URLSearchParams({ name: s.namespace });
  if (params.get("url")) q.set("url", relay);
  if (fingerprintUrl) q.set("fingerprint-url", fingerprintUrl);
  const a = document.createElement("a");
  a.href = `watch?${q}`;
  a.target = "_blank";
  a.textContent = `Watch ${s.namespace}`;
  watchLink.replaceChildren(a);
  watchLink.hidden = false;
  mountChat(chat, {
    relay,
    channel: s.opts.channel,
    ...(fingerprintUrl ? { fingerprintUrl } : {}),
    ...(opts.token ? { token: opts.token } : {}),
    name: `streamer-${s.opts.channel}`.slice(0, 32),
    moderate: true,
  });
  render();
});

stopButton.addEventListener("click", () => studio?.stop().then(render));
keyframe.addEventListener("click", () => studio?.requestKeyframe());
title.addEventListener("change", () => studio?.broadcast?.retitle(title.value.trim() || channel.value));
addEventListener("pagehide", () => studio?.close());
render();
