/**
 * The finite-number check shared by pure functions that take user numbers (sampler steps, mask
 * overlaps, K-means features): a NaN or ±Infinity anywhere is an {@link AttnkitError} naming the
 * argument and the first bad index, instead of a result silently full of NaN.
 *
 * @module
 */
import { AttnkitError } from "./errors.ts";

/**
 * Throws an {@link AttnkitError} naming `argument` unless every value is a finite number.
 * One pass over the values (O(n), no allocation).
 *
 * @example
 * ```ts
 * import { expectFiniteValues } from "./finite.ts";
 * expectFiniteValues(Float32Array.of(0, 1, 2), "x"); // passes
 * ```
 */
export function expectFiniteValues(values: ArrayLike<number>, argument: string): void {
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) {
      throw new AttnkitError(
        argument,
        `expected finite numbers, got ${values[i]} at index ${i} of ${values.length}`,
      );
    }
  }
}
