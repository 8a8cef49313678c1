// A catalog track's decoder configuration, checked before anything is subscribed: LOC carries it in the catalog,
// CMAF in its init segment; and the worker message that configures a decoder with it.

import type { CatalogTrack } from "./catalog.ts";
import { parseInit } from "./cmaf.ts";
import { checkDecoderInput } from "./loc.ts";
import type { ToWorker } from "./protocol.ts";

/** The broadcast cannot be played (missing, ended, or a track the player refuses). */
export class BroadcastError extends Error {
  override name = "BroadcastError";
}

export interface DecoderSetup {
  description?: Uint8Array;
  timescale?: number;
  width?: number;
  height?: number;
}

/**
 * The decoder configuration of a catalog track: LOC carries it directly, CMAF in its init segment. A track
 * outside the decoder limits (loc.ts) is a BroadcastError, before anything is subscribed.
 */
export function decoderConfig(track: CatalogTrack, kind: "video" | "audio"): DecoderSetup {
  let out: DecoderSetup = {};
  if (track.packaging !== "cmaf") {
    if (track.init) out.description = track.init;
  } else {
    if (!track.init) throw new BroadcastError(`${track.name}: a CMAF track without an init segment`);
    let init: ReturnType<typeof parseInit>;
    try {
      init = parseInit(track.init);
    } catch (e) {
      throw new BroadcastError(`${track.name}: ${e instanceof Error ? e.message : e}`);
    }
    const timescale = track.timescale ?? init.timescale;
    if (!Number.isInteger(timescale) || timescale < 1)
      throw new BroadcastError(`${track.name}: timescale ${timescale}`);
    out = { timescale };
    if (init.description) out.description = init.description;
    if (init.width && init.height) [out.width, out.height] = [init.width, init.height];
  }
  if (track.width !== undefined || track.height !== undefined)
    [out.width, out.height] = [track.width, track.height];
  const problem = checkDecoderInput(kind, {
    codec: track.codec,
    description: out.description,
    ...(kind === "video"
      ? { width: out.width, height: out.height }
      : { sampleRate: track.samplerate ?? 48000, channels: audioChannels(track) }),
  });
  if (problem) throw new BroadcastError(`${track.name}: ${problem}`);
  return out;
}

/** The worker's decoder configuration message for a track. */
export function configMessage(kind: "video" | "audio", track: CatalogTrack, decoder: DecoderSetup): ToWorker {
  if (kind === "video") {
    const m: ToWorker = { type: "video-config", track: track.name, codec: track.codec };
    if (decoder.description) m.description = decoder.description;
    if (decoder.width !== undefined) m.width = decoder.width;
    if (decoder.height !== undefined) m.height = decoder.height;
    return m;
  }
  const m: ToWorker = {
    type: "audio-config",
    track: track.name,
    codec: track.codec,
    sampleRate: track.samplerate ?? 48000,
    channels: audioChannels(track),
  };
  if (decoder.description) m.description = decoder.description;
  return m;
}

/** An audio track's channel count (catalog `channelConfig`; 2 when absent). */
const audioChannels = (track: CatalogTrack) => Number.parseInt(track.channelConfig ?? "2", 10) || 2;
