/**
 * Tiles equally sized RGB images into one grid image (with a thin gutter), for sample sheets
 * and method-comparison pictures.
 *
 * @module
 */
import { check } from "../errors.ts";

/**
 * A grid of RGB tiles: `cols` per row, `gap` gutter pixels of `gutter` grey.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { viz } from "@attnkit/attnkit";
 * const tile = new Uint8Array(64 * 64 * 3); // two black 64 × 64 tiles side by side
 * const grid = viz.tileGrid([tile, tile], 64, 64, 2);
 * assert.deepEqual([grid.width, grid.height], [2 * 64 + 3 * 2, 64 + 2 * 2]); // 2-pixel gutters
 * assert.equal(grid.rgb[0], 255); // the gutter is white by default
 * ```
 */
export function tileGrid(
  tiles: readonly Uint8Array[],
  tileW: number,
  tileH: number,
  cols: number,
  gap = 2,
  gutter = 255,
): { rgb: Uint8Array; width: number; height: number } {
  check(tiles.length > 0, "tiles", "need at least one tile");
  for (const [i, t] of tiles.entries()) {
    check(
      t.length === tileW * tileH * 3,
      `tiles[${i}]`,
      `expected ${tileW}×${tileH}×3 bytes, got ${t.length}`,
    );
  }
  const rows = Math.ceil(tiles.length / cols);
  const width = cols * tileW + (cols + 1) * gap;
  const height = rows * tileH + (rows + 1) * gap;
  const rgb = new Uint8Array(width * height * 3).fill(gutter);
  tiles.forEach((t, k) => {
    const ox = gap + (k % cols) * (tileW + gap);
    const oy = gap + Math.floor(k / cols) * (tileH + gap);
    for (let y = 0; y < tileH; y++) {
      rgb.set(t.subarray(y * tileW * 3, (y + 1) * tileW * 3), ((oy + y) * width + ox) * 3);
    }
  });
  return { rgb, width, height };
}

/**
 * Nearest-neighbour enlargement of an RGB image by an integer factor.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { viz } from "@attnkit/attnkit";
 * const big = viz.enlarge(new Uint8Array([1, 2, 3]), 1, 1, 2); // one pixel → 2 × 2
 * assert.deepEqual(Array.from(big), [1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3]);
 * ```
 */
export function enlarge(rgb: Uint8Array, w: number, h: number, factor: number): Uint8Array {
  const out = new Uint8Array(w * h * factor * factor * 3);
  for (let y = 0; y < h * factor; y++) {
    for (let x = 0; x < w * factor; x++) {
      const s = ((Math.floor(y / factor) * w) + Math.floor(x / factor)) * 3;
      const d = (y * w * factor + x) * 3;
      out[d] = rgb[s];
      out[d + 1] = rgb[s + 1];
      out[d + 2] = rgb[s + 2];
    }
  }
  return out;
}
