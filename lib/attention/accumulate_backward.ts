/**
 * The vector-Jacobian product of {@link accumulateMaps}: given d(scalar)/d(maps), the gradient with
 * respect to every tap's Q and K. Each step is the adjoint of the forward one:
 * - head mean: each head receives the map cotangent times 1 / Σ heads of its kind;
 * - nearest upsampling: the adjoint sums the cotangent over each δy × δx block (rows, and for self
 *   maps also columns), with the same 1 / (δy·δx) the forward put on self columns;
 * - softmax: ds_j = a_j (g_j − Σ_i a_i g_i), row by row, recomputing a from Q and K;
 * - logits q·k / √d: dq = ds·K / √d, dk = dsᵀ·Q / √d.
 * Like the forward pass it never holds a per-head map: rows are recomputed in blocks of four.
 *
 * @module
 */
import { expectFinite, expectShape, tensor } from "../tensor.ts";
import type { Tensor } from "../tensor.ts";
import { columnSource } from "./accumulate.ts";
import { planTaps } from "./plan.ts";
import { headData, ROW_BLOCK, softmaxBlock } from "./softmax_rows.ts";
import type { AttentionMapsGrad, AttentionTap, TapGrad } from "./types.ts";

/**
 * Gradients of a scalar with respect to each tap's `q` and `k`, given its gradient `grad` with
 * respect to `accumulateMaps(taps)`; one {@link TapGrad} per tap, in order. A missing `grad.self`
 * or `grad.cross` counts as zero. Throws an `AttnkitError` for taps or gradients of the wrong shape.
 */
export function accumulateMapsBackward(
  taps: readonly AttentionTap[],
  grad: AttentionMapsGrad,
): TapGrad[] {
  const plan = planTaps(taps);
  const hw = plan.hw;
  const selfCols = plan.selfHeads > 0 ? hw : 0;
  if (grad.self) {
    expectShape(grad.self, [hw, selfCols], "grad.self", "the shape of maps.self");
    expectFinite(grad.self, "grad.self");
  }
  if (grad.cross) {
    expectShape(grad.cross, [hw, plan.textLength], "grad.cross", "the shape of maps.cross");
    expectFinite(grad.cross, "grad.cross");
  }
  let maxNk = 1;
  for (const tap of taps) maxNk = Math.max(maxNk, tap.k.shape[1]);
  const probs = new Float64Array(ROW_BLOCK * maxNk);
  const inv = new Float64Array(ROW_BLOCK);
  const pooledCache = new Map<string, Float64Array | Float32Array>();
  return taps.map((tap) => {
    const isSelf = tap.kind === "self";
    const g = isSelf ? grad.self : grad.cross;
    if (!g) return { dq: tensor(tap.q.shape), dk: tensor(tap.k.shape) };
    const [h, w] = tap.size;
    const spread = (plan.size[0] / h) * (plan.size[1] / w);
    const key = `${tap.kind}:${h}x${w}`;
    let pooled = pooledCache.get(key);
    if (!pooled) {
      pooled = poolGrad(g, tap, plan.size, isSelf);
      pooledCache.set(key, pooled);
    }
    const coef = 1 / ((isSelf ? plan.selfHeads : plan.crossHeads) * (isSelf ? spread : 1));
    return tapBackward(tap, pooled, coef, probs, inv);
  });
}

/**
 * The adjoint of nearest upsampling: sums the `[HW, cols]` cotangent over each layer pixel's
 * δy × δx block of rows (and, for self maps, of columns), giving a `[h·w, Nk]` array.
 */
function poolGrad(
  g: Tensor,
  tap: AttentionTap,
  big: readonly [number, number],
  isSelf: boolean,
): Float64Array | Float32Array {
  const [h, w] = tap.size;
  const [bigH, bigW] = big;
  if (h === bigH && w === bigW) return g.data;
  const nq = h * w;
  const nk = tap.k.shape[1];
  const hw = bigH * bigW;
  const outCols = g.shape[1];
  const cols = isSelf ? columnSource(tap.size, big) : null;
  const rows = columnSource(tap.size, big);
  const pooled = new Float64Array(nq * nk);
  const gd = g.data;
  for (let bigP = 0; bigP < hw; bigP++) {
    const dst = rows[bigP] * nk;
    const src = bigP * outCols;
    if (cols) {
      for (let c = 0; c < outCols; c++) pooled[dst + cols[c]] += gd[src + c];
    } else {
      for (let c = 0; c < outCols; c++) pooled[dst + c] += gd[src + c];
    }
  }
  return pooled;
}

/** Softmax and logit VJPs of one tap, given its pooled map cotangent `[nq, nk]` times `coef`. */
function tapBackward(
  tap: AttentionTap,
  pooled: Float64Array | Float32Array,
  coef: number,
  probs: Float64Array,
  inv: Float64Array,
): TapGrad {
  const t = headData(tap.q, tap.k);
  const { heads, nq, nk, d, q: qd, k: kd } = t;
  // t.q already carries 1/√d, so dk = Σ ds · t.q needs no further scale while dq = ds · K / √d.
  const scale = 1 / Math.sqrt(d);
  const dq = new Float32Array(qd.length);
  const dk = new Float32Array(kd.length);
  const kT = new Float64Array(nk * d);
  const dkT = new Float64Array(nk * d);
  const o1 = nk;
  const o2 = 2 * nk;
  const o3 = 3 * nk;
  for (let head = 0; head < heads; head++) {
    const kBase = head * nk * d;
    for (let j = 0; j < nk; j++) {
      for (let c = 0; c < d; c++) kT[c * nk + j] = kd[kBase + j * d + c];
    }
    dkT.fill(0);
    for (let row0 = 0; row0 < nq; row0 += ROW_BLOCK) {
      const count = Math.min(ROW_BLOCK, nq - row0);
      softmaxBlock(t, head, row0, count, probs, inv);
      // Turn probabilities into logit cotangents in place; padding rows get 0 so they add nothing.
      for (let r = 0; r < ROW_BLOCK; r++) {
        const o = r * nk;
        if (r >= count) {
          probs.fill(0, o, o + nk);
          continue;
        }
        const z = inv[r];
        const gBase = (row0 + r) * nk;
        let dot = 0;
        for (let j = 0; j < nk; j++) {
          const a = probs[o + j] * z;
          probs[o + j] = a;
          dot += a * pooled[gBase + j];
        }
        for (let j = 0; j < nk; j++) {
          probs[o + j] = probs[o + j] * (pooled[gBase + j] - dot) * coef;
        }
      }
      // dq_r = ds_r · K / √d and dkᵀ += Σ_r q_r ⊗ ds_r, with K transposed so both run over
      // contiguous key indices and the four rows' q values and sums stay in registers.
      const qBase = (head * nq + row0) * d;
      const q0 = qBase;
      const q1 = qBase + Math.min(1, count - 1) * d;
      const q2 = qBase + Math.min(2, count - 1) * d;
      const q3 = qBase + Math.min(3, count - 1) * d;
      for (let c = 0; c < d; c++) {
        const w0 = qd[q0 + c];
        const w1 = qd[q1 + c];
        const w2 = qd[q2 + c];
        const w3 = qd[q3 + c];
        const kc = c * nk;
        let a0 = 0;
        let a1 = 0;
        let a2 = 0;
        let a3 = 0;
        for (let j = 0; j < nk; j++) {
          const x = kT[kc + j];
          const s0 = probs[j];
          const s1 = probs[o1 + j];
          const s2 = probs[o2 + j];
          const s3 = probs[o3 + j];
          a0 += s0 * x;
          a1 += s1 * x;
          a2 += s2 * x;
          a3 += s3 * x;
          dkT[kc + j] += s0 * w0 + s1 * w1 + s2 * w2 + s3 * w3;
        }
        dq[q0 + c] = a0 * scale;
        if (count > 1) dq[q1 + c] = a1 * scale;
        if (count > 2) dq[q2 + c] = a2 * scale;
        if (count > 3) dq[q3 + c] = a3 * scale;
      }
    }
    for (let j = 0; j < nk; j++) {
      for (let c = 0; c < d; c++) dk[kBase + j * d + c] = dkT[c * nk + j];
    }
  }
  return { dq: tensor(tap.q.shape, dq), dk: tensor(tap.k.shape, dk) };
}
