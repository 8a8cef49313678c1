// The home page's list: live channels (`live/<channel>`, with the title and renditions from their checked
// catalogs) and the demo broadcasts, from two SUBSCRIBE_NAMESPACE requests, for the prefixes `live` and `demo`
// (not the whole tree: chat participants' namespaces stay out of it). At most MAX_ENTRIES are shown; namespaces
// with unprintable or overlong parts are left out; every piece of text goes in with textContent. A channel leaves
// the list on NAMESPACE_DONE or when its catalog says it is complete; the list reconnects every 2 s when the
// relay goes away.

import type { NamespaceWatch, Subscription } from "./client/requests.ts";
import { errorText, Session } from "./client/session.ts";
import { parseCatalog } from "./player/catalog.ts";
import { checkName } from "./player/catalog-check.ts";
import type { Namespace } from "./wire/index.ts";

/** The namespace prefixes listed. */
export const PREFIXES = ["live", "demo"] as const;
/** The most entries the page shows; later ones are counted, not shown. */
export const MAX_ENTRIES = 500;

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

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** A namespace as the `/`-separated name the page shows, or undefined if a part is not a valid name. */
export function listedName(ns: Namespace): string | undefined {
  const parts: string[] = [];
  for (const f of ns) {
    let part: string | undefined;
    try {
      part = checkName(utf8.decode(f));
    } catch {
      return undefined;
    }
    if (part === undefined || part.includes("/")) return undefined;
    parts.push(part);
  }
  return parts.length > 0 ? parts.join("/") : undefined;
}

/** What a catalog says about a channel, for its card. Throws a CatalogError for a refused catalog. */
export function describeChannel(payload: Uint8Array): { title?: string; details: string; complete: boolean } {
  const catalog = parseCatalog(payload);
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
  const parts = [
    videos
      .filter((v) => v.height)
      .map((v) => `${v.height}p`)
      .join(" · "),
  ];
  if (codec) parts.push(Object.hasOwn(names, codec) ? (names[codec] as string) : codec);
  if (catalog.tracks.some((t) => t.role === "audio")) parts.push("audio");
  const out: { title?: string; details: string; complete: boolean } = {
    details: parts.filter((p) => p).join(" · "),
    complete: catalog.complete,
  };
  if (catalog.title) out.title = catalog.title;
  return out;
}

export class ChannelList {
  private readonly entries = new Map<string, Entry>();
  private session: Session | undefined;
  private connected = "";
  /** Broadcasts not shown because the list was full. */
  private unlisted = 0;

  constructor(private readonly o: ListOptions) {}

  /** Lists until the page goes away. */
  async run(): Promise<never> {
    for (;;) {
      try {
        const opts = this.o.fingerprintUrl ? { fingerprintUrl: this.o.fingerprintUrl } : {};
        const session = await Session.connect(this.o.relay, opts);
        this.session = session;
        this.connected = `connected to ${session.describe()}`;
        this.unlisted = 0;
        this.showStatus();
        const asked = await Promise.allSettled(PREFIXES.map((p) => session.subscribeNamespace(p)));
        const watches = asked.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
        const refused = asked.find((r) => r.status === "rejected");
        if (watches.length === 0 && refused) throw refused.reason;
        // Until one of them ends: the session has gone.
        await Promise.race(watches.map((w) => this.follow(w)));
        for (const w of watches) w.cancel();
        session.close();
      } catch (e) {
        this.o.status.textContent = `${errorText(e)} — retrying`;
      }
      for (const name of [...this.entries.keys()]) this.remove(name);
      await new Promise((r) => setTimeout(r, 2000));
    }
  }

  private async follow(watch: NamespaceWatch): Promise<void> {
    for (let e = await watch.next(); e; e = await watch.next()) {
      const name = listedName(e.namespace);
      if (name === undefined) continue;
      if (e.active) this.add(name);
      else this.remove(name);
    }
  }

  private showStatus(): void {
    const more = this.unlisted ? ` (${this.unlisted} more not shown: the list shows ${MAX_ENTRIES})` : "";
    this.o.status.textContent = `${this.connected}${more}`;
  }

  private add(name: string): void {
    if (this.entries.has(name)) return;
    if (this.entries.size >= MAX_ENTRIES) {
      this.unlisted++;
      this.showStatus();
      return;
    }
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
        title.textContent = "";
        details.textContent = "(invalid catalog)";
      }
    }
  }
}
