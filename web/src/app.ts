// The pages served with the player: index.html lists the live channels and other broadcasts
// (SUBSCRIBE_NAMESPACE), watch.html plays one (`?name=live/alice`, optional `&url=`, `&latency=`, `&stats=0`,
// `&versions=18`, `&fingerprint-url=`, `&frames=1`: the player's frame log, for measurements) with the channel's chat
// beside it for `live/…` names.

import { ChannelList } from "./channels.ts";
import { mountChat } from "./chat/ui.ts";
import "./player/player.ts";

const params = new URLSearchParams(location.search);
const relay = params.get("url") ?? location.origin;
const fingerprintUrl = params.get("fingerprint-url") ?? undefined;

/** The relay parameters every page passes on to the next. */
function carried(extra: Record<string, string> = {}): URLSearchParams {
  const q = new URLSearchParams(extra);
  for (const k of ["url", "fingerprint-url"]) {
    const v = params.get(k);
    if (v) q.set(k, v);
  }
  return q;
}

const watchLink = (name: string) => `watch?${carried({ name })}`;

const channels = document.querySelector<HTMLElement>("#channels");
const others = document.querySelector<HTMLElement>("#broadcasts");
const status = document.querySelector<HTMLElement>("#status");
if (channels && others && status) {
  const studio = document.querySelector<HTMLAnchorElement>("#studio-link");
  const q = carried().toString();
  if (studio && q) studio.href = `studio?${q}`;
  const list = new ChannelList({
    relay,
    link: watchLink,
    channels,
    others,
    status,
    ...(fingerprintUrl ? { fingerprintUrl } : {}),
  });
  list.run();
}

const player = document.querySelector("moq-player");
if (player) {
  const name = params.get("name");
  if (name) player.setAttribute("broadcast", name);
  if (params.get("url")) player.setAttribute("url", relay);
  const latency = params.get("latency");
  if (latency) player.setAttribute("target-latency", latency);
  if (params.get("stats") !== "0") player.setAttribute("stats", "");
  if (params.get("frames") === "1") player.setAttribute("frame-log", "");
  for (const a of ["fingerprint-url", "versions"]) {
    const v = params.get(a);
    if (v) player.setAttribute(a, v);
  }
  const title = document.querySelector("#title");
  if (title && name) title.textContent = name;
  const chat = document.querySelector<HTMLElement>("#chat");
  if (chat && name?.startsWith("live/") && params.get("chat") !== "0") {
    mountChat(chat, {
      relay,
      channel: name.slice("live/".length),
      ...(fingerprintUrl ? { fingerprintUrl } : {}),
      ...(params.get("token") ? { token: params.get("token") as string } : {}),
    });
  }
}
