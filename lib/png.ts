/**
 * A small PNG encoder (8-bit RGB or RGBA, no filtering) over the platform's zlib
 * `CompressionStream`, so examples and benchmarks can write pictures without a dependency.
 *
 * @module
 */
import { check } from "./errors.ts";

const CRC_TABLE: Uint32Array = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

async function deflate(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as BlobPart]).stream().pipeThrough(
    new CompressionStream("deflate"),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/**
 * Encodes interleaved 8-bit pixels (`channels` 3 = RGB, 4 = RGBA) as PNG bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { viz } from "@attnkit/attnkit";
 * const png = await viz.encodePng(new Uint8Array([255, 0, 0, 0, 0, 255]), 2, 1); // red, blue
 * assert.deepEqual(Array.from(png.subarray(1, 4)), [80, 78, 71]); // "PNG" signature
 * ```
 */
export async function encodePng(
  pixels: Uint8Array,
  width: number,
  height: number,
  channels: 3 | 4 = 3,
): Promise<Uint8Array> {
  check(
    pixels.length === width * height * channels,
    "pixels",
    `expected ${width}×${height}×${channels} = ${
      width * height * channels
    } bytes, got ${pixels.length}`,
  );
  const raw = new Uint8Array(height * (1 + width * channels));
  for (let y = 0; y < height; y++) {
    raw.set(
      pixels.subarray(y * width * channels, (y + 1) * width * channels),
      y * (1 + width * channels) + 1,
    );
  }
  const header = new Uint8Array(13);
  const hv = new DataView(header.buffer);
  hv.setUint32(0, width);
  hv.setUint32(4, height);
  header[8] = 8;
  header[9] = channels === 3 ? 2 : 6;
  const parts = [
    new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]),
    chunk("IHDR", header),
    chunk("IDAT", await deflate(raw)),
    chunk("IEND", new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
