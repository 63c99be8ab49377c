/**
 * ISAC Eq. 1-2 on the CPU: the self- and cross-attention maps of every head of every hooked layer,
 * upsampled to the largest layer size and averaged, computed straight from the taps' Q and K.
 *
 * Layout choices (the paper leaves them open):
 * - Softmax rows are produced one block of rows at a time and added into the output at once; no
 *   per-head `Nq × Nk` map is ever held, so memory is the output plus a few rows of scratch.
 * - The divisor is the total number of heads over all taps of that kind (Eq. 1-2: 1 / Σ_l h_l).
 * - Upsampling is nearest neighbour by the integer factors `δy = H / h`, `δx = W / w` (the paper
 *   has one δ; we allow the two axes to differ). Cross maps are upsampled on their rows (pixels)
 *   only. Self maps are upsampled on rows and on columns; a column upsampled δy·δx times would
 *   multiply each row's mass by δy·δx, so the upsampled columns are divided by δy·δx and every
 *   row of the accumulated self map still sums to 1 (a distribution over the `H·W` key pixels).
 *   Without that division, coarse layers would outweigh fine ones by δ².
 *
 * @module
 */
import { tensor } from "../tensor.ts";
import { planTaps } from "./plan.ts";
import { headData, ROW_BLOCK, softmaxBlock } from "./softmax_rows.ts";
import type { AttentionMaps, AttentionTap } from "./types.ts";

/**
 * Accumulates the taps into one self map `[HW, HW]` and one cross map `[HW, L]` at the largest
 * size `[H, W]` (Eq. 1-2). A kind with no taps gives a `[HW, 0]` map. Throws an `AttnkitError`
 * naming `taps[i]` for shapes that do not fit, sizes that do not divide `[H, W]`, NaN or Inf.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { maps, tensor } from "@attnkit/attnkit";
 * // One layer of a 2 × 2 latent (HW = 4), one head, d = 2; cross keys for L = 3 text tokens.
 * const q = tensor([1, 4, 2], [1, 0, 0, 1, 1, 1, 0, 0]);
 * const text = tensor([1, 3, 2], [0, 0, 1, 0, 0, 1]);
 * const m = maps.accumulateMaps([
 *   { kind: "self", q, k: q, size: [2, 2] },
 *   { kind: "cross", q, k: text, size: [2, 2] },
 * ]);
 * assert.deepEqual([m.self.shape, m.cross.shape], [[4, 4], [4, 3]]);
 * // Each row is a softmax over keys, averaged over heads and layers: it sums to 1.
 * const row0 = m.cross.data.subarray(0, 3).reduce((a, b) => a + b, 0);
 * assert.ok(Math.abs(row0 - 1) < 1e-6);
 * ```
 */
export function accumulateMaps(taps: readonly AttentionTap[]): AttentionMaps {
  const plan = planTaps(taps);
  const hw = plan.hw;
  const selfCols = plan.selfHeads > 0 ? hw : 0;
  const self = new Float32Array(hw * selfCols);
  const cross = new Float32Array(hw * plan.textLength);
  let maxNk = 1;
  for (const tap of taps) maxNk = Math.max(maxNk, tap.k.shape[1]);
  const probs = new Float64Array(ROW_BLOCK * maxNk);
  const inv = new Float64Array(ROW_BLOCK);
  const headSum = new Float64Array(ROW_BLOCK * maxNk);
  const row = new Float64Array(Math.max(hw, plan.textLength));
  for (const tap of taps) {
    const isSelf = tap.kind === "self";
    addTap(tap, plan.size, isSelf ? self : cross, isSelf ? selfCols : plan.textLength, {
      heads: isSelf ? plan.selfHeads : plan.crossHeads,
      probs,
      inv,
      headSum,
      row,
    });
  }
  return {
    self: tensor([hw, selfCols], self),
    cross: tensor([hw, plan.textLength], cross),
    size: [plan.size[0], plan.size[1]],
  };
}

interface Scratch {
  heads: number;
  probs: Float64Array;
  inv: Float64Array;
  headSum: Float64Array;
  row: Float64Array;
}

/** For self taps, the layer key index every output column reads (nearest neighbour). */
export function columnSource(
  size: readonly [number, number],
  big: readonly [number, number],
): Int32Array {
  const [h, w] = size;
  const [bigH, bigW] = big;
  const dy = bigH / h;
  const dx = bigW / w;
  const map = new Int32Array(bigH * bigW);
  for (let y = 0; y < bigH; y++) {
    const src = Math.floor(y / dy) * w;
    for (let x = 0; x < bigW; x++) map[y * bigW + x] = src + Math.floor(x / dx);
  }
  return map;
}

function addTap(
  tap: AttentionTap,
  big: readonly [number, number],
  out: Float32Array,
  outCols: number,
  s: Scratch,
): void {
  const [h, w] = tap.size;
  const [bigH, bigW] = big;
  const dy = bigH / h;
  const dx = bigW / w;
  const t = headData(tap.q, tap.k);
  const { heads, nq, nk } = t;
  const isSelf = tap.kind === "self";
  const spread = isSelf ? dy * dx : 1;
  const norm = 1 / (s.heads * spread);
  const cols = isSelf && spread > 1 ? columnSource(tap.size, big) : null;
  const { probs, inv, headSum, row } = s;
  for (let row0 = 0; row0 < nq; row0 += ROW_BLOCK) {
    const count = Math.min(ROW_BLOCK, nq - row0);
    headSum.fill(0, 0, count * nk);
    for (let head = 0; head < heads; head++) {
      softmaxBlock(t, head, row0, count, probs, inv);
      for (let r = 0; r < count; r++) {
        const z = inv[r];
        const end = (r + 1) * nk;
        for (let j = r * nk; j < end; j++) headSum[j] += probs[j] * z;
      }
    }
    for (let r = 0; r < count; r++) {
      const src = r * nk;
      if (cols) {
        for (let c = 0; c < outCols; c++) row[c] = headSum[src + cols[c]] * norm;
      } else {
        for (let c = 0; c < outCols; c++) row[c] = headSum[src + c] * norm;
      }
      const p = row0 + r;
      const y = Math.floor(p / w);
      const x = p - y * w;
      for (let a = 0; a < dy; a++) {
        for (let b = 0; b < dx; b++) {
          const base = ((y * dy + a) * bigW + x * dx + b) * outCols;
          for (let c = 0; c < outCols; c++) out[base + c] += row[c];
        }
      }
    }
  }
}
