// The pure parts of eval-watch.ts: its options, which player a page is, and frames.csv.

import { appendFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";

export type Kind = "moq" | "hls";

export interface WatchOptions {
  url: string;
  seconds: number;
  out: string;
  chromium: string;
  kind: Kind;
}

export const USAGE =
  "usage: eval-watch --url <page url> --seconds N --out <dir> [--chromium <path>] [--kind moq|hls]\n" +
  "  --url      a watch page (?name=…; frames=1 is added if missing) or eval-hls.html?src=…&mode=…\n" +
  "  --seconds  how long to measure after opening the page\n" +
  "  --out      where frames.csv and viewer.json go (created)\n" +
  "  --chromium the browser to run (default $CHROMIUM, else /usr/bin/chromium)\n" +
  "  --kind     the player, when the page's name does not tell (eval-hls: hls, else moq)";

/** The options from `argv` (without node and the script); throws with the usage on a bad one. */
export function watchOptions(argv: string[], env: Record<string, string | undefined> = {}): WatchOptions {
  const bad = (why: string) => new Error(`${why}\n${USAGE}`);
  let values: Partial<Record<"url" | "seconds" | "out" | "chromium" | "kind", string>>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        url: { type: "string" },
        seconds: { type: "string" },
        out: { type: "string" },
        chromium: { type: "string" },
        kind: { type: "string" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    throw bad(e instanceof Error ? e.message : String(e));
  }
  if (!values.url) throw bad("--url is required");
  let url: URL;
  try {
    url = new URL(values.url);
  } catch {
    throw bad(`--url ${values.url} is not an absolute URL`);
  }
  const seconds = Number(values.seconds);
  if (!values.seconds || !Number.isFinite(seconds) || seconds <= 0)
    throw bad("--seconds must be a positive number");
  if (!values.out) throw bad("--out is required");
  if (values.kind !== undefined && values.kind !== "moq" && values.kind !== "hls")
    throw bad(`--kind ${values.kind}: moq or hls`);
  const kind = (values.kind as Kind | undefined) ?? kindOf(url);
  return {
    url: kind === "moq" ? withFrameLog(url).href : url.href,
    seconds,
    out: values.out,
    chromium: values.chromium ?? env.CHROMIUM ?? "/usr/bin/chromium",
    kind,
  };
}

/** The eval-hls page is hls.js; any other page is taken for the MoQ player's watch page. */
export function kindOf(url: URL): Kind {
  return /(^|\/)eval-hls(\.html)?$/.test(url.pathname) ? "hls" : "moq";
}

/** The watch page's URL with the player's frame log on (`frames=1`). */
export function withFrameLog(url: URL): URL {
  const u = new URL(url);
  u.searchParams.set("frames", "1");
  return u;
}

export const CSV_HEADER = "frame,display_unix_ms\n";

/** frames.csv rows: the frame number and the display time (ms since the Unix epoch, 3 decimals). */
export function csvRows(frames: [number, number][]): string {
  let s = "";
  for (const [frame, at] of frames) s += `${frame},${at.toFixed(3)}\n`;
  return s;
}

/** frames.csv, written as the log is drained from the page: the header at once, each batch as it comes. */
export class FrameSink {
  count = 0;
  firstUnixMs: number | undefined;
  lastUnixMs: number | undefined;
  lastFrame: number | undefined;

  constructor(readonly file: string) {
    writeFileSync(file, CSV_HEADER);
  }

  add(frames: [number, number][]): void {
    if (frames.length === 0) return;
    appendFileSync(this.file, csvRows(frames));
    this.count += frames.length;
    this.firstUnixMs ??= frames[0]?.[1];
    const last = frames[frames.length - 1];
    this.lastFrame = last?.[0];
    this.lastUnixMs = last?.[1];
  }
}
