// CMAF parsing on hand-built boxes: the init segment's timescale and avcC, a fragment's sample, time and sync flag.

import assert from "node:assert/strict";
import { test } from "node:test";
import { CmafError, parseFragment, parseInit } from "../../src/player/cmaf.ts";

const u32 = (v: number) => [(v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];
const text = (s: string) => [...s].map((c) => c.charCodeAt(0));

function box(type: string, ...parts: number[][]): number[] {
  const body = parts.flat();
  return [...u32(8 + body.length), ...text(type), ...body];
}

const full = (v: number, flags: number) => [v, (flags >> 16) & 255, (flags >> 8) & 255, flags & 255];

function init(timescale: number): Uint8Array {
  const avcC = box("avcC", [1, 0x42, 0xc0, 0x1e, 0xff, 0xe1]);
  const avc1 = box("avc1", new Array(78).fill(0), avcC);
  const stsd = box("stsd", full(0, 0), u32(1), avc1);
  const mdhd = box("mdhd", full(0, 0), u32(0), u32(0), u32(timescale), u32(0), [0, 0, 0, 0]);
  const mdia = box("mdia", mdhd, box("minf", box("stbl", stsd)));
  return Uint8Array.from([...box("ftyp", text("iso6")), ...box("moov", box("trak", mdia))]);
}

function fragment(decodeTime: number, cto: number, flags: number, sample: number[]): Uint8Array {
  const tfhd = box("tfhd", full(0, 0x020000), u32(1));
  const tfdt = box("tfdt", full(0, 0), u32(decodeTime));
  // trun with data offset, sample size, flags and composition offset; the offset is patched below.
  const trunFlags = 0x01 | 0x200 | 0x400 | 0x800;
  let trun = box("trun", full(0, trunFlags), u32(1), u32(0), u32(sample.length), u32(flags), u32(cto));
  const moofLen = 8 + 8 + tfhd.length + tfdt.length + trun.length;
  trun = box("trun", full(0, trunFlags), u32(1), u32(moofLen + 8), u32(sample.length), u32(flags), u32(cto));
  const moof = box("moof", box("traf", tfhd, tfdt, trun));
  return Uint8Array.from([...moof, ...box("mdat", sample)]);
}

test("init segment: timescale and avcC", () => {
  const i = parseInit(init(15360));
  assert.equal(i.timescale, 15360);
  assert.equal(i.format, "avc1");
  assert.deepEqual([...(i.description ?? [])], [1, 0x42, 0xc0, 0x1e, 0xff, 0xe1]);
});

test("fragment: the sample, its presentation time and sync flag", () => {
  const key = parseFragment(fragment(3000, 512, 0x02000000, [9, 8, 7]));
  assert.deepEqual([...key.data], [9, 8, 7]);
  assert.equal(key.pts, 3512);
  assert.equal(key.key, true);
  const delta = parseFragment(fragment(3512, 0, 0x01010000, [1]));
  assert.equal(delta.key, false);
});

test("malformed CMAF is a CmafError", () => {
  assert.throws(() => parseInit(Uint8Array.from(box("ftyp", text("iso6")))), CmafError);
  assert.throws(() => parseFragment(Uint8Array.from(box("mdat", [1]))), CmafError);
  const f = fragment(0, 0, 0, [1, 2, 3]);
  assert.throws(() => parseFragment(f.subarray(0, f.length - 2)), CmafError);
  const overrun = Uint8Array.from([...u32(100), ...text("moof")]);
  assert.throws(() => parseFragment(overrun), CmafError);
});

test("byte flips and cuts never throw anything but CmafError", () => {
  for (const bytes of [init(90000), fragment(3000, 512, 0x02000000, [9, 8, 7])]) {
    for (let i = 0; i < bytes.length; i++) {
      for (const x of [0, 0xff, (bytes[i] as number) ^ 0x10]) {
        const m = bytes.slice();
        m[i] = x;
        for (const f of [parseInit, parseFragment]) {
          try {
            f(m);
            f(m.subarray(0, i));
          } catch (e) {
            assert.ok(e instanceof CmafError, String(e));
          }
        }
      }
    }
  }
});
