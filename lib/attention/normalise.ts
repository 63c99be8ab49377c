/**
 * The two ways ISAC's appendix C rescales attention maps: element-wise min-max normalisation
 * (Eq. 13, what ISAC uses) and the temperature softmax over text tokens that Attend-and-Excite-style
 * baselines use (Eq. 12), with their vector-Jacobian products.
 *
 * @module
 */
import { check } from "../errors.ts";
import { expectFinite, expectShape, tensor } from "../tensor.ts";
import type { Tensor } from "../tensor.ts";

/** Index of the first smallest and first largest element (ties go to the lowest index). */
export function argMinMax(d: ArrayLike<number>): { lo: number; hi: number } {
  let lo = 0;
  let hi = 0;
  for (let i = 1; i < d.length; i++) {
    if (d[i] < d[lo]) lo = i;
    if (d[i] > d[hi]) hi = i;
  }
  return { lo, hi };
}

/**
 * Eq. 13: `(t − min t) / (max t − min t)` over the whole tensor, same shape. A constant tensor
 * (max = min) has no scale to normalise by and maps to zeros.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { maps, tensor } from "@attnkit/attnkit";
 * assert.deepEqual(Array.from(maps.minMax(tensor([3], [2, 4, 6])).data), [0, 0.5, 1]);
 * assert.deepEqual(Array.from(maps.minMax(tensor([2], [5, 5])).data), [0, 0]); // constant → zeros
 * ```
 */
export function minMax(t: Tensor): Tensor {
  expectFinite(t, "t");
  const d = t.data;
  const out = new Float32Array(d.length);
  if (d.length === 0) return tensor(t.shape, out);
  const { lo, hi } = argMinMax(d);
  const min = d[lo];
  const range = d[hi] - min;
  if (range > 0) {
    const inv = 1 / range;
    for (let i = 0; i < d.length; i++) out[i] = (d[i] - min) * inv;
  }
  return tensor(t.shape, out);
}

/**
 * The VJP of {@link minMax} at `t` for the cotangent `g`: `g / r` on every element, plus the
 * terms through the minimum and maximum, which land on the first argmin and first argmax element
 * (a subgradient where there are ties). With y = (t − m) / r, r = M − m:
 * dt_i = g_i / r, dt_argmin −= Σ g_i (1 − y_i) / r, dt_argmax −= Σ g_i y_i / r.
 * A constant `t` gives zeros, matching the forward.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { maps, tensor } from "@attnkit/attnkit";
 * // Check against a central finite difference of Σ g·minMax(t) (no ties, so it is differentiable).
 * const t = [2, 4, 7], g = tensor([3], [1, -1, 0.5]);
 * const f = (v: number[]) => maps.minMax(tensor([3], v)).data.reduce((s, y, i) => s + y * g.data[i], 0);
 * const grad = maps.minMaxBackward(tensor([3], t), g);
 * const h = 1e-2;
 * for (let j = 0; j < 3; j++) {
 *   const up = t.map((v, i) => i === j ? v + h : v), down = t.map((v, i) => i === j ? v - h : v);
 *   assert.ok(Math.abs(grad.data[j] - (f(up) - f(down)) / (2 * h)) < 1e-3);
 * }
 * ```
 */
export function minMaxBackward(t: Tensor, g: Tensor): Tensor {
  expectShape(g, t.shape, "g", "the shape of t");
  expectFinite(t, "t");
  const d = t.data;
  const gd = g.data;
  const out = new Float32Array(d.length);
  if (d.length === 0) return tensor(t.shape, out);
  const { lo, hi } = argMinMax(d);
  const min = d[lo];
  const range = d[hi] - min;
  if (!(range > 0)) return tensor(t.shape, out);
  const inv = 1 / range;
  let toMin = 0;
  let toMax = 0;
  for (let i = 0; i < d.length; i++) {
    const y = (d[i] - min) * inv;
    out[i] = gd[i] * inv;
    toMin += gd[i] * (1 - y);
    toMax += gd[i] * y;
  }
  out[lo] -= toMin * inv;
  out[hi] -= toMax * inv;
  return tensor(t.shape, out);
}

/**
 * Eq. 12: per pixel row of a `[HW, L]` cross map, softmax of `tau · cross[i, 1:]` over the text
 * tokens 1 … L−1; column 0 (the start-of-text token) is excluded and set to 0, so the shape stays
 * `[HW, L]` and token indices keep their meaning. τ = 100 as in the SD 1.5 baselines.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { maps, tensor } from "@attnkit/attnkit";
 * // One pixel, three tokens: the start token (column 0) is dropped, the rest share the mass.
 * const s = maps.tokenSoftmax(tensor([1, 3], [5, 0.01, 0.02]));
 * assert.equal(s.data[0], 0);
 * assert.ok(Math.abs(s.data[1] + s.data[2] - 1) < 1e-6 && s.data[2] > s.data[1]);
 * ```
 */
export function tokenSoftmax(cross: Tensor, tau = 100): Tensor {
  expectShape(cross, [-1, -1], "cross", "[HW, L]");
  expectFinite(cross, "cross");
  check(Number.isFinite(tau), "tau", `expected a finite temperature, got ${tau}`);
  const [rows, cols] = cross.shape;
  check(cols >= 2, "cross", `expected L ≥ 2 (start token plus at least one token), got ${cols}`);
  const d = cross.data;
  const out = new Float32Array(d.length);
  for (let i = 0; i < rows; i++) {
    const base = i * cols;
    let m = -Infinity;
    for (let j = 1; j < cols; j++) m = Math.max(m, tau * d[base + j]);
    let sum = 0;
    for (let j = 1; j < cols; j++) sum += Math.exp(tau * d[base + j] - m);
    for (let j = 1; j < cols; j++) out[base + j] = Math.exp(tau * d[base + j] - m) / sum;
  }
  return tensor(cross.shape, out);
}

/**
 * The VJP of {@link tokenSoftmax}: `dcross[i, j] = τ · s_j (g_j − Σ_k s_k g_k)` for j ≥ 1, 0 at j = 0.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { maps, tensor } from "@attnkit/attnkit";
 * // Check against a central finite difference of Σ g·tokenSoftmax(cross) at τ = 10.
 * const cross = [0.3, 0.1, 0.2, 0.05], g = tensor([1, 4], [0, 1, -2, 0.5]);
 * const f = (c: number[]) =>
 *   maps.tokenSoftmax(tensor([1, 4], c), 10).data.reduce((s, v, i) => s + v * g.data[i], 0);
 * const grad = maps.tokenSoftmaxBackward(tensor([1, 4], cross), g, 10);
 * const h = 1e-3;
 * for (let j = 0; j < 4; j++) {
 *   const up = cross.map((v, i) => i === j ? v + h : v), down = cross.map((v, i) => i === j ? v - h : v);
 *   assert.ok(Math.abs(grad.data[j] - (f(up) - f(down)) / (2 * h)) < 1e-2);
 * }
 * ```
 */
export function tokenSoftmaxBackward(cross: Tensor, g: Tensor, tau = 100): Tensor {
  expectShape(g, cross.shape, "g", "the shape of cross");
  const s = tokenSoftmax(cross, tau).data;
  const [rows, cols] = cross.shape;
  const gd = g.data;
  const out = new Float32Array(s.length);
  for (let i = 0; i < rows; i++) {
    const base = i * cols;
    let dot = 0;
    for (let j = 1; j < cols; j++) dot += s[base + j] * gd[base + j];
    for (let j = 1; j < cols; j++) out[base + j] = tau * s[base + j] * (gd[base + j] - dot);
  }
  return tensor(cross.shape, out);
}
