// The pages served with the player: index.html lists the live channels and other broadcasts
// (SUBSCRIBE_NAMESPACE), watch.html plays one (`?name=live/alice`, optional `&url=`, `&latency=` (`realtime`, `2000`
// or `100-500`: player/latency-mode.ts), `&stats=0`, `&versions=18`, `&fingerprint-url=`, `&frames=1`: the player's
// frame log, for measurements) with the channel's chat beside it for `live/…` names. A relay that requires a token
// gets it from `#token=` (never the query: see client/token.ts); a relay on another origin than the page gets it
// only once the viewer ticks the box naming it.

import { ChannelList } from "./channels.ts";
import { mountChat } from "./chat/ui.ts";
import { consentBox, originOf, rememberToken, sameOrigin, takePageToken } from "./client/token.ts";
import { modeAttributes, parseLatencyParam } from "./player/latency-mode.ts";
import "./player/player.ts";

// First: the token leaves the address bar before any session starts.
const pageToken = takePageToken();
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

/** The token for the relay, once allowed: at once for the page's own origin, else after the box is ticked. */
function withToken(use: (token: string | undefined) => void): void {
  if (!pageToken || sameOrigin(relay)) {
    rememberToken(relay, pageToken);
    use(pageToken);
    return;
  }
  use(undefined);
  const { element, checkbox } = consentBox(originOf(relay));
  document.querySelector("main")?.prepend(element);
  checkbox.addEventListener("change", () => {
    const token = checkbox.checked ? pageToken : undefined;
    rememberToken(relay, token);
    use(token);
  });
}

const channels = document.querySelector<HTMLElement>("#channels");
const others = document.querySelector<HTMLElement>("#broadcasts");
const status = document.querySelector<HTMLElement>("#status");
if (channels && others && status) {
  const studio = document.querySelector<HTMLAnchorElement>("#studio-link");
  const q = carried().toString();
  if (studio && q) studio.href = `studio?${q}`;
  withToken(() => {}); // the list's sessions use the remembered token
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
  // An invalid `latency` is ignored: the player keeps its default.
  const latency = parseLatencyParam(params.get("latency"));
  if (latency) for (const [a, v] of modeAttributes(latency)) player.setAttribute(a, v);
  // The statistics overlay is for whoever asks (`?stats=1`, or the i key), not every viewer.
  if (params.get("stats") === "1") player.setAttribute("stats", "");
  if (params.get("frames") === "1") player.setAttribute("frame-log", "");
  for (const a of ["fingerprint-url", "versions", "renderer", "transport"]) {
    const v = params.get(a);
    if (v) player.setAttribute(a, v);
  }
  const title = document.querySelector("#title");
  if (title && name) title.textContent = name;
  const chat = document.querySelector<HTMLElement>("#chat");
  // The player's sessions use the remembered token (client/token.ts); the chat is mounted again with it.
  withToken((token) => {
    if (chat && name?.startsWith("live/") && params.get("chat") !== "0") {
      mountChat(chat, {
        relay,
        channel: name.slice("live/".length),
        ...(fingerprintUrl ? { fingerprintUrl } : {}),
        ...(token ? { token } : {}),
      });
    }
  });
}
