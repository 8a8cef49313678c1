// GOAWAY, make before break: a new session subscribes while the old one keeps playing, and takes the old one's
// place in the worker when it delivers its first object; the old session closes then. If the new one has not
// delivered before the GOAWAY's deadline, both are given up and the player reconnects.

import type { Session } from "../client/session.ts";
import type { Playback } from "./playback.ts";
import type { ToWorker } from "./protocol.ts";
import type { PlayerStats } from "./stats.ts";

/** One session and the playback on it. */
export interface Attachment {
  session: Session;
  playback: Playback;
  ended: Promise<void>;
  moved: Promise<Attachment>;
  /** The attachment that took over (set as the handover happens). */
  next?: Attachment;
  /** Hands over to a new session at `uri` (once; later calls get the first one's result). */
  move: (uri: string, timeoutMs: number) => Promise<boolean>;
}

/** What the handover needs of the player element. */
export interface HandoverHost {
  readonly stats: PlayerStats;
  running(): boolean;
  /** The relay URL the player connects to, and a new one (a GOAWAY's URI). */
  url(): string;
  setUrl(url: string): void;
  connect(url: string, signal?: AbortSignal): Promise<Session>;
  /** Plays over `session`, its worker messages going to `post`. */
  attach(session: Session, post: (m: ToWorker, t?: Transferable[]) => void): Attachment;
  send(m: ToWorker, t?: Transferable[]): void;
}

/**
 * Moves playback from `old` to a new session at `uri`. `timeoutMs` is the GOAWAY's (0: none given); `moved` is
 * told the new attachment. Returns whether the move was made (false: the player reconnects).
 */
export async function handover(
  host: HandoverHost,
  old: Attachment,
  uri: string,
  timeoutMs: number,
  moved: (a: Attachment) => void,
): Promise<boolean> {
  if (uri !== host.url()) host.setUrl(uri);
  host.stats.handover = "connecting";
  host.stats.handoversStarted++;
  // The new session starts at the live edge: so does the old one, rather than two positions meeting.
  old.playback.live();
  // Leave before the relay has to close us: give up (and reconnect the old way) a little before its deadline.
  const budget = Math.max(500, (timeoutMs > 0 ? timeoutMs : 5000) - 300);
  let next: Attachment | undefined;
  const attempt = new AbortController();
  const tried = (async () => {
    const session = await host.connect(uri, attempt.signal);
    if (!host.running() || old.session.isClosed) {
      session.close(0, "");
      return false;
    }
    const held: [ToWorker, Transferable[]][] = [];
    let live = false;
    let delivered: () => void = () => {};
    const first = new Promise<void>((r) => {
      delivered = r;
    });
    next = host.attach(session, (m, t = []) => {
      if (live) return host.send(m, t);
      if (old.session.isClosed) {
        // Too late: the old session is gone and the player is reconnecting; this one is not wanted.
        next?.playback.close();
        next?.session.close(0, "");
        return;
      }
      // Video paused (hidden): the first audio chunk proves the new session delivers.
      if (m.type === "chunk" && (m.kind === "video" || next?.playback.videoPaused)) {
        // The new session delivers: stop the old playback, then hand its place in the worker to the new one.
        live = true;
        old.next = next;
        old.playback.close();
        for (const [hm, ht] of held.splice(0)) host.send(hm, ht);
        host.send(m, t);
        delivered();
        return;
      }
      held.push([m, t]);
      if (held.length > 600) held.shift();
    });
    await Promise.race([first, next.ended]);
    return live;
  })();
  const timeout = new Promise<false>((r) => setTimeout(() => r(false), budget));
  const ok = await Promise.race([tried, timeout]).catch(() => false);
  if (!ok || !next) {
    host.stats.handover = "failed";
    attempt.abort();
    (next as Attachment | undefined)?.playback.close();
    (next as Attachment | undefined)?.session.close(0, "handover failed");
    old.session.close(0, "going away");
    return false;
  }
  host.stats.handover = "done";
  host.stats.handoversDone++;
  host.stats.version = next.session.version;
  host.stats.transport = next.session.transport;
  host.stats.relay = next.session.describe();
  moved(next);
  old.session.close(0, "moved to a new session");
  return true;
}
