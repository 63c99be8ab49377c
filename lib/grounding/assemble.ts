/**
 * InstanceAssemble's assembling step and its grounding schedule (methods spec §6, SD3
 * `LayoutJointTransformerBlock.forward` and `generate`).
 *
 * Each instance j has run its own attention on the image tokens of its box
 * (box_tokens.ts `boxTokenIndices`), giving one D-channel row per index. The rows are scatter-added
 * into the `[HW, D]` image grid, each position divided by the number of boxes covering it (a
 * position no box covers has count 0, divided by 1, so stays 0), and the average is added to the
 * hidden states through the block's gate: `h + gate·avg` (gate_msa, per channel, or a scalar).
 * The reference divides `gate·sum` by the count; the same number up to rounding.
 *
 * The layout branch is on for the first `int(ratio·steps)` denoising steps only
 * ({@link groundingScale}): `generate` sets layout_scale to 0 at step i == int(0.3·len(timesteps))
 * and it stays 0 from there on.
 *
 * @module
 */
import { check } from "../errors.ts";
import { expectFinite, expectShape, type Tensor, tensor } from "../tensor.ts";

function checkOutputs(
  outputs: readonly Tensor[],
  indices: readonly Int32Array[],
  hw: number,
  d: number,
): void {
  check(Array.isArray(outputs), "outputs", "expected an array of [n_j, D] tensors");
  check(Array.isArray(indices), "indices", "expected an array of Int32Array index lists");
  check(
    outputs.length === indices.length,
    "indices",
    () => `expected one index list per output (${outputs.length}), got ${indices.length}`,
  );
  indices.forEach((idx, j) => {
    check(
      idx instanceof Int32Array,
      `indices[${j}]`,
      "expected an Int32Array (e.g. from boxTokenIndices)",
    );
    for (let r = 0; r < idx.length; r++) {
      if (idx[r] < 0 || idx[r] >= hw) {
        check(false, `indices[${j}]`, `index ${idx[r]} at ${r} is outside 0 … ${hw - 1}`);
      }
    }
    expectShape(outputs[j], [idx.length, d], `outputs[${j}]`, "one row per index, D channels");
    expectFinite(outputs[j], `outputs[${j}]`);
  });
}

/**
 * Scatter-add of per-instance rows into `[HW, D]`, divided by the covering count (0 stays 0).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { grounding, tensor } from "@attnkit/attnkit";
 * // Two instances over HW = 3 tokens (D = 1): the first covers tokens 0, 1; the second token 1.
 * const avg = grounding.averageInstances(
 *   [tensor([2, 1], [2, 4]), tensor([1, 1], [6])],
 *   [Int32Array.from([0, 1]), Int32Array.from([1])],
 *   [3, 1],
 * );
 * assert.deepEqual(Array.from(avg.data), [2, 5, 0]); // token 1: (4 + 6) / 2; token 2: uncovered
 * ```
 */
export function averageInstances(
  outputs: readonly Tensor[],
  indices: readonly Int32Array[],
  shape: readonly [number, number],
): Tensor {
  const [hw, d] = shape;
  check(
    Number.isInteger(hw) && hw >= 1 && Number.isInteger(d) && d >= 1,
    "shape",
    `expected [HW, D] of positive integers, got [${shape}]`,
  );
  checkOutputs(outputs, indices, hw, d);
  const sum = new Float64Array(hw * d);
  const count = new Uint32Array(hw);
  indices.forEach((idx, j) => {
    const src = outputs[j].data;
    for (let r = 0; r < idx.length; r++) {
      const p = idx[r];
      count[p]++;
      for (let c = 0; c < d; c++) sum[p * d + c] += src[r * d + c];
    }
  });
  const out = new Float32Array(hw * d);
  for (let p = 0; p < hw; p++) {
    const n = count[p] || 1;
    for (let c = 0; c < d; c++) out[p * d + c] = sum[p * d + c] / n;
  }
  return tensor([hw, d], out);
}

/**
 * `h + gate·avg` with avg from {@link averageInstances}; `gate` is a scalar or D channels.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { grounding, tensor } from "@attnkit/attnkit";
 * const h = tensor([3, 1], [1, 1, 1]);
 * const out = grounding.assembleInstances(
 *   h,
 *   [tensor([2, 1], [2, 4]), tensor([1, 1], [6])],
 *   [Int32Array.from([0, 1]), Int32Array.from([1])],
 *   0.5,
 * );
 * assert.deepEqual(Array.from(out.data), [2, 3.5, 1]); // 1 + 0.5 · [2, 5, 0]
 * ```
 */
export function assembleInstances(
  h: Tensor,
  outputs: readonly Tensor[],
  indices: readonly Int32Array[],
  gate: number | ArrayLike<number>,
): Tensor {
  expectShape(h, [-1, -1], "h", "[HW, D]");
  expectFinite(h, "h");
  const [hw, d] = h.shape;
  let g: Float64Array;
  if (typeof gate === "number") {
    check(Number.isFinite(gate), "gate", `expected a finite number, got ${gate}`);
    g = new Float64Array(d).fill(gate);
  } else {
    check(
      gate !== null && typeof gate === "object" && gate.length === d,
      "gate",
      () => `expected a number or ${d} per-channel values`,
    );
    g = Float64Array.from(gate);
    check(g.every(Number.isFinite), "gate", "expected finite values");
  }
  const avg = averageInstances(outputs, indices, [hw, d]).data;
  const out = new Float32Array(hw * d);
  for (let p = 0; p < hw; p++) {
    for (let c = 0; c < d; c++) out[p * d + c] = h.data[p * d + c] + g[c] * avg[p * d + c];
  }
  return tensor([hw, d], out);
}

/**
 * InstanceAssemble's layout scale at step `stepIndex` (0-based): `layoutScale` before int(ratio·steps), else 0.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { grounding } from "@attnkit/attnkit";
 * // Ratio 0.3 of 10 steps: grounding on steps 0, 1, 2 only.
 * assert.deepEqual([0, 2, 3, 9].map((i) => grounding.groundingScale(i, 10)), [1, 1, 0, 0]);
 * ```
 */
export function groundingScale(
  stepIndex: number,
  totalSteps: number,
  ratio = 0.3,
  layoutScale = 1,
): number {
  check(
    Number.isInteger(totalSteps) && totalSteps >= 1,
    "totalSteps",
    `expected a positive integer, got ${totalSteps}`,
  );
  check(
    Number.isInteger(stepIndex) && stepIndex >= 0 && stepIndex < totalSteps,
    "stepIndex",
    `expected an integer in 0 … ${totalSteps - 1}, got ${stepIndex}`,
  );
  check(
    Number.isFinite(ratio) && ratio >= 0 && ratio <= 1,
    "ratio",
    `expected a number in [0, 1], got ${ratio}`,
  );
  check(
    Number.isFinite(layoutScale),
    "layoutScale",
    `expected a finite number, got ${layoutScale}`,
  );
  return stepIndex < Math.trunc(ratio * totalSteps) ? layoutScale : 0;
}
