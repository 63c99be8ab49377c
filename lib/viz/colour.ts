/**
 * Turning maps into pictures: a perceptual heat map (a viridis-like ramp), a categorical palette
 * for instance clusters, and image tensors to interleaved RGB bytes.
 *
 * @module
 */
import { check } from "../errors.ts";
import type { Tensor } from "../tensor.ts";

const RAMP: readonly (readonly [number, number, number])[] = [
  [68, 1, 84],
  [59, 82, 139],
  [33, 145, 140],
  [94, 201, 98],
  [253, 231, 37],
];

/** Colour of a value in [0, 1] on the heat ramp. */
export function heatColour(v: number): [number, number, number] {
  const x = Math.min(1, Math.max(0, Number.isFinite(v) ? v : 0)) * (RAMP.length - 1);
  const i = Math.min(RAMP.length - 2, Math.floor(x));
  const f = x - i;
  return [0, 1, 2].map((c) => Math.round(RAMP[i][c] * (1 - f) + RAMP[i + 1][c] * f)) as [
    number,
    number,
    number,
  ];
}

/**
 * A heat-map picture of `values` (h × w, row-major), scaled to its own min and max.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { viz } from "@attnkit/attnkit";
 * const rgb = viz.heatmap([0, 0.5, 1, 1], 2, 2); // 2 × 2 values → 2 × 2 RGB pixels
 * assert.equal(rgb.length, 2 * 2 * 3);
 * assert.deepEqual(rgb.subarray(6, 9), rgb.subarray(9, 12)); // equal values, equal colours
 * ```
 */
export function heatmap(values: ArrayLike<number>, h: number, w: number): Uint8Array {
  check(
    values.length === h * w,
    "values",
    `expected ${h}×${w} = ${h * w} values, got ${values.length}`,
  );
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < values.length; i++) {
    lo = Math.min(lo, values[i]);
    hi = Math.max(hi, values[i]);
  }
  const span = hi - lo || 1;
  const out = new Uint8Array(h * w * 3);
  for (let i = 0; i < h * w; i++) out.set(heatColour((values[i] - lo) / span), i * 3);
  return out;
}

/** Distinct colours for clusters 0, 1, 2, … (cycled). */
export const PALETTE: readonly (readonly [number, number, number])[] = [
  [230, 25, 75],
  [60, 180, 75],
  [0, 130, 200],
  [255, 225, 25],
  [145, 30, 180],
  [245, 130, 48],
  [70, 240, 240],
  [240, 50, 230],
  [128, 128, 0],
  [0, 0, 128],
];

/**
 * A picture of instance clusters: pixel `fg[i]` gets cluster `assign[i]`'s colour, others grey.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { viz } from "@attnkit/attnkit";
 * // A 2 × 2 map: foreground pixels 0 and 3, in clusters 0 and 1; pixels 1 and 2 are background.
 * const rgb = viz.clusterImage([0, 3], [0, 1], 2, 2);
 * assert.equal(rgb.length, 2 * 2 * 3);
 * assert.deepEqual(rgb.subarray(3, 6), rgb.subarray(6, 9)); // both background pixels: the same grey
 * assert.notDeepEqual(rgb.subarray(0, 3), rgb.subarray(9, 12)); // two clusters, two colours
 * ```
 */
export function clusterImage(
  fg: ArrayLike<number>,
  assign: ArrayLike<number>,
  h: number,
  w: number,
): Uint8Array {
  check(
    fg.length === assign.length,
    "assign",
    `expected ${fg.length} entries, got ${assign.length}`,
  );
  const out = new Uint8Array(h * w * 3).fill(40);
  for (let i = 0; i < fg.length; i++) out.set(PALETTE[assign[i] % PALETTE.length], fg[i] * 3);
  return out;
}

/**
 * Image `b` of a `[N, 3, H, W]` tensor in [0, 1] as interleaved RGB bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tensor, viz } from "@attnkit/attnkit";
 * // One 1 × 2 image, channel-planar: R = [0, 1], G = [0.5, 0.5], B = [1, 0].
 * const bytes = viz.imageBytes(tensor([1, 3, 1, 2], [0, 1, 0.5, 0.5, 1, 0]));
 * assert.deepEqual(Array.from(bytes), [0, 128, 255, 255, 128, 0]); // RGB RGB
 * ```
 */
export function imageBytes(images: Tensor, b = 0): Uint8Array {
  const [n, c, h, w] = images.shape;
  check(
    images.shape.length === 4 && c === 3,
    "images",
    `expected [N, 3, H, W], got [${images.shape}]`,
  );
  check(Number.isInteger(b) && b >= 0 && b < n, "b", `index ${b} outside batch ${n}`);
  const out = new Uint8Array(h * w * 3);
  const base = b * 3 * h * w;
  for (let p = 0; p < h * w; p++) {
    for (let ch = 0; ch < 3; ch++) {
      out[p * 3 + ch] = Math.round(
        255 * Math.min(1, Math.max(0, images.data[base + ch * h * w + p])),
      );
    }
  }
  return out;
}

/** Nearest-neighbour resize of an RGB picture to `tw` × `th`. */
export function resizeNearest(
  rgb: Uint8Array,
  w: number,
  h: number,
  tw: number,
  th: number,
): Uint8Array {
  const out = new Uint8Array(tw * th * 3);
  for (let y = 0; y < th; y++) {
    const sy = Math.floor((y * h) / th);
    for (let x = 0; x < tw; x++) {
      const s = (sy * w + Math.floor((x * w) / tw)) * 3;
      out.set(rgb.subarray(s, s + 3), (y * tw + x) * 3);
    }
  }
  return out;
}
