// What <moq-player> reports about itself (its `stats`), and the overlay's text.

import type { TransportKind } from "../client/connect.ts";
import type { Version } from "../wire/index.ts";
import { modeText } from "./latency-mode.ts";
import type { LatencyMode } from "./playout.ts";
import type { WorkerStats } from "./protocol.ts";

export interface PlayerStats
  extends Partial<Omit<WorkerStats, "type" | "recent" | "stampRecent" | "frameRecent">> {
  state: string;
  /** From the element's start (or restart) to its first frame, ms. */
  startupMs?: number;
  error?: string;
  version?: Version;
  /** What carries the session: WebTransport, or QMux over a WebSocket. */
  transport?: TransportKind;
  relay?: string;
  rendition?: string;
  groupsSkipped: number;
  bitrateKbps: number;
  /** The video delivery throughput estimate the automatic choice uses (capped by `throughput-cap`), kb/s. */
  throughputKbps?: number;
  rttMs?: number;
  audioSamplesPlayed: number;
  audioUnderruns: number;
  audioSkipped: number;
  audioState: string;
  /** Audio goes through a shared ring (cross-origin isolated page) rather than messages. */
  audioShared?: boolean;
  reconnects: number;
  /** GOAWAY handovers (make before break): the latest one's state, and how many started and completed. */
  handover?: "connecting" | "done" | "failed";
  handoversStarted: number;
  handoversDone: number;
  /** Objects received since the element started (every session), per kind. */
  videoObjects: number;
  audioObjects: number;
  /** Video is not subscribed: the page is hidden, the element is out of view or the viewer paused. */
  videoPaused: boolean;
  /** The viewer paused (the play/pause control). */
  paused: boolean;
  /** Playing, yet no frame drawn for a while (the buffering indicator shows). */
  buffering: boolean;
  /** The "behind live" indicator shows. */
  behindLive: boolean;
  /** The volume (audio gain), 0 to 1. */
  volume: number;
  /** How far behind live the viewer has rewound (played from the relay's cache), s; 0 at live. */
  rewindS: number;
  /** The viewer's latency mode (the latency attributes). */
  latencyMode?: LatencyMode;
  /** Where frames show: "video" (the browser's video path) or "canvas". */
  renderer?: "video" | "canvas";
}

const ms = (v: number | undefined) => (v === undefined ? "–" : `${Math.round(v)} ms`);
const mode = (m: LatencyMode | undefined) => (m === undefined ? "" : ` (${modeText(m)})`);

export function overlayText(s: PlayerStats): string {
  return [
    `${s.state}${s.version ? `  draft-${s.version}` : ""}${s.transport ? `  ${s.transport}` : ""}${s.rttMs !== undefined ? `  rtt ${s.rttMs.toFixed(1)} ms` : ""}`,
    `latency ${ms(s.latencyMs)} (p50 ${ms(s.latencyP50Ms)})  glass ${ms(s.glassMs)}`,
    ...(s.stampMs !== undefined ? [`glass-to-glass ${ms(s.stampMs)} (p50 ${ms(s.stampP50Ms)}, stamp)`] : []),
    `delay ${ms(s.delayMs)}${mode(s.latencyMode)}  base ${ms(s.baseMs)}  audio buf ${ms(s.audioBufferedMs)}`,
    `${s.rendition ?? "–"}  ${s.width ?? 0}x${s.height ?? 0}  ${s.fps ?? 0} fps  ${Math.round(s.bitrateKbps)} kb/s`,
    `throughput ${s.throughputKbps === undefined ? "–" : `${Math.round(s.throughputKbps)} kb/s`}`,
    `decoded ${s.framesDecoded ?? 0}  dropped ${s.framesDropped ?? 0}  groups skipped ${s.groupsSkipped}`,
    `audio ${s.audioState}  played ${s.audioSamplesPlayed}  underruns ${s.audioUnderruns}`,
  ].join("\n");
}
