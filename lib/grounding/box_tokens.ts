/**
 * Which latent positions a box covers, the two ways the grounding methods rasterise it.
 *
 * InstanceAssemble ({@link boxTokenIndices}, methods spec §6, `bbox_to_mask` and
 * `get_layout_idxslist`): on the W×H token grid, x1 = int(x1·W), x2 = int(x2·W) (truncation),
 * x2 = x1 + 1 when they are equal (same for y), and the indices are the row-major flattened
 * positions of `mask[y1:y2, x1:x2]`. As in the reference, the corners are read from the box's
 * dense points (fourier.ts `densePoints`: the first and the last grid point) and multiplied in
 * float32. Both matter at cell edges: the last dense point of x2 = 0.8 is 0.79999995, so on a
 * 10-wide grid x2 = 7, not 8; and float32(0.7)·10 rounds to 7.0 in float32 (6.99999988 in
 * float64).
 * Slices are clipped to the grid as Python's are, so a box truncated onto the right or bottom
 * edge gives no index.
 *
 * DEIG ({@link instanceMask}, §7, `get_attmask_w_box` and `_downsample_masks_robust`): the box is
 * rasterised on a 512×512 canvas as `[round(y1·512) : round(y2·512), round(x1·512) : round(x2·512)]`
 * (NumPy's round, half to even), then brought to res×res:
 * - ratio = ⌊512 / res⌋; when ratio > 1: max-pool with kernel = stride = ratio, then, if that
 *   does not give res×res, a nearest resize (PyTorch's legacy `nearest`: source ⌊i·(in/out)⌋ in
 *   float32); then, only when res ≤ 16, a dilation (max-pool, stride 1, padding k/2) with
 *   k = 5 for res ≤ 8 and k = 3 for 8 < res ≤ 16;
 * - when ratio ≤ 1 (res > 256): a nearest resize only.
 * This follows DEIG's code: layers at 32×32 and 64×64 are not dilated (the spec's "k=3 (res 16)"
 * is the 16×16 case only). `kernel` overrides the dilation size at any resolution (1 = none).
 * Every step acts on rows and columns separately for a rectangle, so the mask is computed as the
 * outer product of two 1-D masks rather than on a 512×512 canvas.
 *
 * @module
 */
import { roundHalfEven } from "../samplers/timesteps.ts";
import { check } from "../errors.ts";
import { type Box, checkBox } from "../losses/box.ts";
import { densePoints } from "./fourier.ts";

const f32 = Math.fround;

function checkSide(v: number, argument: string): void {
  check(Number.isInteger(v) && v >= 1, argument, `expected a positive integer, got ${v}`);
}

/** `[lo, hi)` of one axis as InstanceAssemble computes it (float32 truncation, one-cell minimum). */
function truncSpan(a: number, b: number, size: number): [number, number] {
  const lo = Math.trunc(f32(a * size));
  let hi = Math.trunc(f32(b * size));
  if (hi === lo) hi = lo + 1;
  return [Math.min(lo, size), Math.min(hi, size)];
}

/**
 * InstanceAssemble's token indices of a box on a `gridW`×`gridH` grid (row-major, ascending).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { grounding } from "@attnkit/attnkit";
 * // The top-left quarter of a 4 × 4 token grid: rows 0–1, columns 0–1.
 * const idx = grounding.boxTokenIndices([0, 0, 0.5, 0.5], 4, 4);
 * assert.deepEqual(Array.from(idx), [0, 1, 4, 5]);
 * ```
 */
export function boxTokenIndices(box: Box, gridW: number, gridH: number): Int32Array {
  checkSide(gridW, "gridW");
  checkSide(gridH, "gridH");
  const p = densePoints(box);
  const [x0, x1] = truncSpan(p[0], p[p.length - 2], gridW);
  const [y0, y1] = truncSpan(p[1], p[p.length - 1], gridH);
  const w = Math.max(0, x1 - x0), h = Math.max(0, y1 - y0);
  const out = new Int32Array(w * h);
  let at = 0;
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) out[at++] = y * gridW + x;
  return out;
}

/** Options of {@link instanceMask}. */
export interface InstanceMaskOptions {
  /** Side of the canvas the box is first rasterised on (DEIG: 512). */
  canvas?: number;
  /** Odd dilation kernel replacing DEIG's rule (5 at res ≤ 8, 3 at res ≤ 16, else none); 1 = none. */
  kernel?: number;
}

/** PyTorch's legacy nearest resize of a 1-D mask. */
function nearest(m: Uint8Array, out: number): Uint8Array {
  const n = m.length;
  if (n === out) return m;
  const r = new Uint8Array(out);
  const scale = f32(n / out);
  for (let i = 0; i < out; i++) {
    const src = out === 2 * n ? i >> 1 : Math.min(Math.floor(f32(i * scale)), n - 1);
    r[i] = m[src];
  }
  return r;
}

/** One axis of DEIG's mask: raster on the canvas, pool, resize, dilate. */
function axisMask(a: number, b: number, res: number, canvas: number, kernel?: number): Uint8Array {
  let m: Uint8Array = new Uint8Array(canvas);
  const lo = Math.min(roundHalfEven(a * canvas), canvas);
  const hi = Math.min(roundHalfEven(b * canvas), canvas);
  if (hi > lo) m.fill(1, lo, hi);
  const ratio = Math.floor(canvas / res);
  let k = kernel ?? 1;
  if (ratio > 1) {
    const pooled = new Uint8Array(Math.floor(canvas / ratio));
    for (let j = 0; j < pooled.length; j++) {
      for (let i = j * ratio; i < (j + 1) * ratio; i++) if (m[i]) pooled[j] = 1;
    }
    m = nearest(pooled, res);
    if (kernel === undefined && res <= 16) k = res <= 8 ? 5 : 3;
  } else {
    m = nearest(m, res);
  }
  if (k === 1) return m;
  const half = k >> 1;
  const out = new Uint8Array(res);
  for (let i = 0; i < res; i++) {
    for (let j = Math.max(0, i - half); j <= Math.min(res - 1, i + half); j++) {
      if (m[j]) {
        out[i] = 1;
        break;
      }
    }
  }
  return out;
}

/** DEIG's instance mask of a box at res×res (1 = inside), row-major; see the module doc. */
export function instanceMask(box: Box, res: number, opts: InstanceMaskOptions = {}): Uint8Array {
  checkBox(box, "box");
  checkSide(res, "res");
  const canvas = opts.canvas ?? 512;
  checkSide(canvas, "canvas");
  if (opts.kernel !== undefined) {
    check(
      Number.isInteger(opts.kernel) && opts.kernel >= 1 && opts.kernel % 2 === 1,
      "kernel",
      `expected an odd positive integer, got ${opts.kernel}`,
    );
  }
  const mx = axisMask(box[0], box[2], res, canvas, opts.kernel);
  const my = axisMask(box[1], box[3], res, canvas, opts.kernel);
  const out = new Uint8Array(res * res);
  for (let y = 0; y < res; y++) {
    if (!my[y]) continue;
    for (let x = 0; x < res; x++) out[y * res + x] = mx[x];
  }
  return out;
}
