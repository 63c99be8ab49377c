/**
 * Classifier-free guidance (Ho & Salimans 2022): out = uncond + scale · (cond − uncond).
 *
 * @module
 */
import { check } from "../errors.ts";
import { expectIn, expectLatent, expectSameLength } from "./latent.ts";

/**
 * Combines the unconditional and conditional model outputs with guidance `scale`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { samplers } from "@attnkit/attnkit";
 * // uncond + scale · (cond − uncond), elementwise.
 * const out = samplers.cfg(Float32Array.from([1, 2]), Float32Array.from([2, 2]), 7.5);
 * assert.deepEqual(Array.from(out), [8.5, 2]);
 * ```
 */
export function cfg(uncond: Float32Array, cond: Float32Array, scale: number): Float32Array {
  check(uncond instanceof Float32Array, "uncond", "expected a Float32Array");
  expectLatent(uncond, "uncond");
  expectSameLength(uncond, cond, "cond");
  expectIn(scale, -Infinity, Infinity, "scale");
  return uncond.map((u, i) => u + scale * (cond[i] - u));
}
