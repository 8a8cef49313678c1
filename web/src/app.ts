// The pages served with the player: index.html lists the live broadcasts (SUBSCRIBE_NAMESPACE), watch.html
// plays one (`?name=demo/clip`, optional `&url=`, `&latency=`, `&stats=0`, `&versions=18`, `&fingerprint-url=`).

import { errorText, Session } from "./client/session.ts";
import "./player/player.ts";
import { namespaceToPath } from "./wire/index.ts";

const params = new URLSearchParams(location.search);
const relay = params.get("url") ?? location.origin;

function watchLink(name: string): string {
  const q = new URLSearchParams({ name });
  for (const k of ["url", "fingerprint-url"]) {
    const v = params.get(k);
    if (v) q.set(k, v);
  }
  return `watch.html?${q}`;
}

async function listBroadcasts(list: HTMLElement, status: HTMLElement): Promise<void> {
  for (;;) {
    try {
      const fingerprintUrl = params.get("fingerprint-url");
      const session = await Session.connect(relay, fingerprintUrl ? { fingerprintUrl } : {});
      status.textContent = `connected to ${session.describe()}`;
      const watch = await session.subscribeNamespace("");
      const items = new Map<string, HTMLElement>();
      for (;;) {
        const e = await watch.next();
        if (!e) break;
        const name = namespaceToPath(e.namespace);
        if (e.active && !items.has(name)) {
          const li = document.createElement("li");
          const a = document.createElement("a");
          a.href = watchLink(name);
          a.textContent = name;
          li.append(a);
          list.append(li);
          items.set(name, li);
        } else if (!e.active) {
          items.get(name)?.remove();
          items.delete(name);
        }
      }
      session.close();
    } catch (e) {
      status.textContent = `${errorText(e)} — retrying`;
    }
    await new Promise((r) => setTimeout(r, 2000));
  }
}

const list = document.querySelector<HTMLElement>("#broadcasts");
const status = document.querySelector<HTMLElement>("#status");
if (list && status) listBroadcasts(list, status);

const player = document.querySelector("moq-player");
if (player) {
  const name = params.get("name");
  if (name) player.setAttribute("broadcast", name);
  if (params.get("url")) player.setAttribute("url", relay);
  const latency = params.get("latency");
  if (latency) player.setAttribute("target-latency", latency);
  if (params.get("stats") !== "0") player.setAttribute("stats", "");
  for (const a of ["fingerprint-url", "versions"]) {
    const v = params.get(a);
    if (v) player.setAttribute(a, v);
  }
  const title = document.querySelector("#title");
  if (title && name) title.textContent = name;
}
