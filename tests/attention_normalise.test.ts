/** Eq. 12 and Eq. 13 on hand-computed values, and their VJPs against finite differences. */
import assert from "node:assert/strict";
import {
  minMax,
  minMaxBackward,
  tokenSoftmax,
  tokenSoftmaxBackward,
} from "../lib/attention/normalise.ts";
import { AttnkitError } from "../lib/errors.ts";
import { mulberry32 } from "../lib/random.ts";
import { tensor } from "../lib/tensor.ts";
import type { Tensor } from "../lib/tensor.ts";

const close = (a: number, b: number, tol: number, what = "") =>
  assert.ok(Math.abs(a - b) <= tol, `${what} ${a} vs ${b}`);

Deno.test("minMax (Eq. 13) on hand-computed values", () => {
  const y = minMax(tensor([2, 2], [2, 4, 6, 10]));
  assert.deepEqual(y.shape, [2, 2]);
  assert.deepEqual([...y.data], [0, 0.25, 0.5, 1]);
  const neg = minMax(tensor([3], [-3, 1, -1]));
  assert.deepEqual([...neg.data], [0, 1, 0.5]);
  assert.deepEqual([...minMax(tensor([3], [7, 7, 7])).data], [0, 0, 0]);
  assert.throws(
    () => minMax(tensor([2], [1, NaN])),
    (e: unknown) => e instanceof AttnkitError && e.argument === "t",
  );
});

/**
 * Central differences of J(t) = Σ g ⊙ minMax(t) for float32 t. The realised step (t+h) − (t−h) is
 * taken from the stored float32 values; J is summed in float64. With values in [0, 4] and h = 1e-3
 * the float32 rounding of minMax's outputs (≤ 6e-8 each, 12 of them) over 2h gives ≤ 4e-4 error,
 * and J is piecewise rational with curvature ~1/range², so truncation is ~1e-6.
 */
function fdMinMax(t: Tensor, g: Tensor, i: number, h: number): number {
  const J = (x: Tensor) => minMax(x).data.reduce((s, v, j) => s + v * g.data[j], 0);
  const v = t.data[i];
  const up = t.data.slice();
  up[i] = v + h;
  const down = t.data.slice();
  down[i] = v - h;
  return (J(tensor(t.shape, up)) - J(tensor(t.shape, down))) / (up[i] - down[i]);
}

Deno.test("minMaxBackward matches finite differences, including through the argmin and argmax", () => {
  const rng = mulberry32(4);
  const t = tensor([3, 4], Array.from({ length: 12 }, () => 4 * rng()));
  const g = tensor([3, 4], Array.from({ length: 12 }, () => 2 * rng() - 1));
  const got = minMaxBackward(t, g);
  let lo = 0;
  let hi = 0;
  t.data.forEach((v, i) => {
    if (v < t.data[lo]) lo = i;
    if (v > t.data[hi]) hi = i;
  });
  for (let i = 0; i < 12; i++) close(got.data[i], fdMinMax(t, g, i, 1e-3), 1e-3, `entry ${i}`);
  // The extremes carry the extra terms; make sure they really differ from g / range.
  const range = t.data[hi] - t.data[lo];
  assert.ok(Math.abs(got.data[lo] - g.data[lo] / range) > 1e-2);
  assert.ok(Math.abs(got.data[hi] - g.data[hi] / range) > 1e-2);
  // Scale invariance: Σ_i dJ/dt_i = 0 and Σ_i t_i dJ/dt_i = 0 (J is unchanged by t → a·t + b).
  close(got.data.reduce((s, v) => s + v, 0), 0, 1e-5, "shift");
  close(got.data.reduce((s, v, i) => s + v * t.data[i], 0), 0, 1e-5, "scale");
  assert.throws(
    () => minMaxBackward(t, tensor([12])),
    (e: unknown) => e instanceof AttnkitError && e.argument === "g",
  );
});

Deno.test("tokenSoftmax (Eq. 12) on hand-computed values", () => {
  // Row 0: τ·[0.01, 0.02] = [1, 2] → [e/(e + e²), e²/(e + e²)] = [1/(1+e), e/(1+e)].
  // Row 1: equal token scores split evenly whatever the start token holds.
  const y = tokenSoftmax(tensor([2, 3], [0.5, 0.01, 0.02, 0.9, 0.3, 0.3]));
  const e = Math.E;
  close(y.data[0], 0, 0);
  close(y.data[1], 1 / (1 + e), 1e-6);
  close(y.data[2], e / (1 + e), 1e-6);
  assert.deepEqual([...y.data.slice(3)], [0, 0.5, 0.5]);
  // τ = 1 and three tokens: softmax([0, ln 2, ln 3]) = [1, 2, 3] / 6.
  const z = tokenSoftmax(tensor([1, 4], [5, 0, Math.LN2, Math.log(3)]), 1);
  [0, 1 / 6, 2 / 6, 3 / 6].forEach((v, i) => close(z.data[i], v, 1e-6));
  assert.throws(
    () => tokenSoftmax(tensor([2, 1])),
    (e: unknown) => e instanceof AttnkitError && e.argument === "cross",
  );
});

Deno.test("tokenSoftmaxBackward matches finite differences", () => {
  const rng = mulberry32(8);
  const x = tensor([2, 5], Array.from({ length: 10 }, () => rng()));
  const g = tensor([2, 5], Array.from({ length: 10 }, () => 2 * rng() - 1));
  const tau = 3;
  const got = tokenSoftmaxBackward(x, g, tau);
  const J = (d: Float32Array) =>
    tokenSoftmax(tensor([2, 5], d), tau).data.reduce((s, v, j) => s + v * g.data[j], 0);
  for (let i = 0; i < 10; i++) {
    const up = x.data.slice();
    up[i] += 1e-3;
    const down = x.data.slice();
    down[i] -= 1e-3;
    close(got.data[i], (J(up) - J(down)) / (up[i] - down[i]), 2e-4, `entry ${i}`);
  }
  assert.equal(got.data[0], 0);
  assert.equal(got.data[5], 0);
});
