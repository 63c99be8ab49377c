/**
 * ISAC Eq. 4: column-wise adaptive binarisation. A pixel belongs to token j's mask when its
 * propagated score is above that token's mean over all pixels.
 *
 * @module
 */
import { expectFinite, expectShape } from "../tensor.ts";
import type { Tensor } from "../tensor.ts";

/** Eq. 4 on a `[rows, cols]` map: `1[m[i, j] > mean_i m[i, j]]`, row-major `[rows · cols]`. */
export function binariseColumns(m: Tensor): Uint8Array {
  expectShape(m, [-1, -1], "m", "[HW, L]");
  expectFinite(m, "m");
  const [rows, cols] = m.shape;
  return binariseColumnsOf(m.data, rows, cols);
}

/** {@link binariseColumns} on a raw row-major array (float32 or float64). */
export function binariseColumnsOf(d: ArrayLike<number>, rows: number, cols: number): Uint8Array {
  const mean = new Float64Array(cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) mean[j] += d[i * cols + j];
  for (let j = 0; j < cols; j++) mean[j] /= rows;
  const out = new Uint8Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) out[i * cols + j] = d[i * cols + j] > mean[j] ? 1 : 0;
  }
  return out;
}
