// The home page's list: live channels (`live/<channel>`, with the title and renditions from their catalogs) and
// every other broadcast, from one SUBSCRIBE_NAMESPACE on the whole tree. Chat namespaces (`chat/…`) are not
// broadcasts and are left out. A channel leaves the list on NAMESPACE_DONE or when its catalog says it is
// complete; the list reconnects every 2 s when the relay goes away.

import type { Subscription } from "./client/requests.ts";
import { errorText, Session } from "./client/session.ts";
import { CHANNEL_FIELD, parseCatalog } from "./player/catalog.ts";
import { namespaceToPath, text } from "./wire/index.ts";

export interface ListOptions {
  relay: string;
  fingerprintUrl?: string;
  /** The watch page's link for a broadcast. */
  link: (name: string) => string;
  channels: HTMLElement;
  others: HTMLElement;
  status: HTMLElement;
}

interface Entry {
  item: HTMLElement;
  catalog?: Subscription;
}

/** What a catalog says about a channel, for its card. */
export function describeChannel(payload: Uint8Array): { title?: string; details: string; complete: boolean } {
  const catalog = parseCatalog(payload);
  let title: string | undefined;
  try {
    const root = JSON.parse(text(payload)) as Record<string, unknown>;
    const info = root[CHANNEL_FIELD] as Record<string, unknown> | undefined;
    if (typeof info?.title === "string") title = info.title.slice(0, 100);
  } catch {
    // parseCatalog has already accepted it as JSON.
  }
  const videos = catalog.tracks
    .filter((t) => t.role === "video")
    .sort((a, b) => (b.height ?? 0) - (a.height ?? 0));
  const codec = videos[0]?.codec.split(".")[0];
  const names: Record<string, string> = {
    avc1: "H.264",
    avc3: "H.264",
    vp09: "VP9",
    av01: "AV1",
    vp8: "VP8",
  };
  const parts = [videos.map((v) => `${v.height}p`).join(" · ")];
  if (codec) parts.push(names[codec] ?? codec);
  if (catalog.tracks.some((t) => t.role === "audio")) parts.push("audio");
  const out: { title?: string; details: string; complete: boolean } = {
    details: parts.filter((p) => p).join(" · "),
    complete: catalog.complete,
  };
  if (title) out.title = title;
  return out;
}

export class ChannelList {
  private readonly entries = new Map<string, Entry>();
  private session: Session | undefined;

  constructor(private readonly o: ListOptions) {}

  /** Lists until the page goes away. */
  async run(): Promise<never> {
    for (;;) {
      try {
        const opts = this.o.fingerprintUrl ? { fingerprintUrl: this.o.fingerprintUrl } : {};
        const session = await Session.connect(this.o.relay, opts);
        this.session = session;
        this.o.status.textContent = `connected to ${session.describe()}`;
        const watch = await session.subscribeNamespace("");
        for (;;) {
          const e = await watch.next();
          if (!e) break;
          const name = namespaceToPath(e.namespace);
          if (name.startsWith("chat/")) continue;
          if (e.active) this.add(name);
          else this.remove(name);
        }
        session.close();
      } catch (e) {
        this.o.status.textContent = `${errorText(e)} — retrying`;
      }
      for (const name of [...this.entries.keys()]) this.remove(name);
      await new Promise((r) => setTimeout(r, 2000));
    }
  }

  private add(name: string): void {
    if (this.entries.has(name)) return;
    const channel = name.startsWith("live/");
    const item = document.createElement("li");
    const a = document.createElement("a");
    a.href = this.o.link(name);
    a.className = "name";
    a.textContent = channel ? name.slice("live/".length) : name;
    item.append(a);
    const entry: Entry = { item };
    this.entries.set(name, entry);
    if (channel) {
      item.className = "channel";
      item.dataset.name = name;
      const title = document.createElement("span");
      title.className = "title";
      const details = document.createElement("span");
      details.className = "details";
      a.prepend(title);
      item.append(details);
      this.o.channels.append(item);
      this.followCatalog(name, entry, title, details).catch(() => {});
    } else {
      this.o.others.append(item);
    }
    this.updateEmpty();
  }

  private remove(name: string): void {
    const e = this.entries.get(name);
    if (!e) return;
    e.catalog?.cancel();
    e.item.remove();
    this.entries.delete(name);
    this.updateEmpty();
  }

  private updateEmpty(): void {
    this.o.channels.dataset.count = String(this.o.channels.children.length);
  }

  /** Keeps a channel's card in step with its catalog; a complete catalog removes it. */
  private async followCatalog(name: string, e: Entry, title: HTMLElement, details: HTMLElement) {
    const session = this.session;
    if (!session) return;
    const sub = await session.subscribe(name, "catalog", { priority: 0 });
    if (this.entries.get(name) !== e) {
      sub.cancel();
      return;
    }
    e.catalog = sub;
    for (let g = await sub.nextGroup(); g; g = await sub.nextGroup()) {
      const o = await g.next();
      g.cancel();
      if (!o || o.payload.length === 0) continue;
      try {
        const d = describeChannel(o.payload);
        if (d.complete) {
          this.remove(name);
          return;
        }
        title.textContent = d.title ?? "";
        details.textContent = d.details;
      } catch {
        details.textContent = "(unreadable catalog)";
      }
    }
  }
}
