// Turns decoded values into the JSON shape of test/vectors.json: integers above 2^53 - 1 as strings, bytes as
// hex, Properties as their pair lists, absent fields left out.

import { Properties, toHex } from "../../src/wire/index.ts";

export function normalize(x: unknown): unknown {
  if (typeof x === "bigint") return x <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(x) : x.toString();
  if (x instanceof Uint8Array) return toHex(x);
  if (x instanceof Properties) {
    return x.pairs.map((p) =>
      "int" in p
        ? { key: normalize(p.key), int: normalize(p.int) }
        : { key: normalize(p.key), bytes: toHex(p.bytes) },
    );
  }
  if (Array.isArray(x)) return x.map(normalize);
  if (x && typeof x === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(x)) if (v !== undefined) out[k] = normalize(v);
    return out;
  }
  return x;
}
