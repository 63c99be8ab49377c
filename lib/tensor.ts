/**
 * The plain tensor every part of attnkit meets at: a shape and a row-major Float32Array.
 * Conversions to GPU buffers or ONNX tensors happen at the edges only.
 *
 * @module
 */
import { AttnkitError, check } from "./errors.ts";

/** A dense row-major float32 tensor on the CPU. */
export interface Tensor {
  /** Sizes of each axis, outermost first. */
  readonly shape: readonly number[];
  /** Row-major values; `data.length` is the product of `shape`. */
  readonly data: Float32Array;
}

/** Number of elements a shape holds. */
export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * Makes a tensor, checking that `data` fits `shape` (zeros when `data` is omitted).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { AttnkitError, tensor } from "@attnkit/attnkit";
 * const t = tensor([2, 3], [1, 2, 3, 4, 5, 6]); // row-major: t[1][0] = data[3]
 * assert.equal(t.data[1 * 3 + 0], 4);
 * assert.deepEqual(tensor([2, 2]).data, new Float32Array(4)); // zeros
 * assert.throws(() => tensor([2, 2], [1, 2, 3]), AttnkitError); // data does not fit the shape
 * ```
 */
export function tensor(shape: readonly number[], data?: Float32Array | readonly number[]): Tensor {
  const n = sizeOf(shape);
  for (const d of shape) {
    check(
      Number.isInteger(d) && d >= 0,
      "shape",
      `axis sizes must be non-negative integers, got [${shape}]`,
    );
  }
  const values = data === undefined
    ? new Float32Array(n)
    : data instanceof Float32Array
    ? data
    : Float32Array.from(data);
  check(values.length === n, "data", `shape [${shape}] needs ${n} values, got ${values.length}`);
  return { shape: [...shape], data: values };
}

/** Throws an {@link AttnkitError} naming `argument` unless `t` has `expected` shape (-1 = any size). */
export function expectShape(
  t: Tensor,
  expected: readonly number[],
  argument: string,
  hint = "",
): void {
  const ok = t.shape.length === expected.length &&
    expected.every((d, i) => d < 0 || d === t.shape[i]);
  if (!ok) {
    const want = expected.map((d) => (d < 0 ? "*" : String(d))).join(", ");
    throw new AttnkitError(
      argument,
      `expected shape [${want}]${hint ? ` (${hint})` : ""}, got [${t.shape.join(", ")}]`,
    );
  }
}

/** Throws an {@link AttnkitError} naming `argument` at the first NaN or Inf in `t`. */
export function expectFinite(t: Tensor, argument: string): void {
  const d = t.data;
  for (let i = 0; i < d.length; i++) {
    if (!Number.isFinite(d[i])) {
      throw new AttnkitError(argument, `contains ${d[i]} at flat index ${i} (shape [${t.shape}])`);
    }
  }
}
