/**
 * ISAC Eq. 7, maximum pixel-wise overlap: the peak of the element-wise product of two soft masks,
 * the worst-case local collision between them.
 *
 * @module
 */
import { check } from "../errors.ts";
import { expectFiniteValues } from "../finite.ts";

/**
 * `max_p a[p] · b[p]` and the first pixel attaining it (Eq. 7).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mpo } from "@attnkit/attnkit";
 * // Two soft masks over four pixels; they collide most at pixel 2 (0.5 · 0.75).
 * const { value, pixel } = mpo([0, 0.25, 0.5, 1], [1, 0.5, 0.75, 0]);
 * assert.equal(value, 0.375);
 * assert.equal(pixel, 2);
 * ```
 */
export function mpo(a: ArrayLike<number>, b: ArrayLike<number>): { value: number; pixel: number } {
  check(a.length > 0, "a", "expected a non-empty mask");
  check(b.length === a.length, "b", () => `expected ${a.length} values like a, got ${b.length}`);
  expectFiniteValues(a, "a");
  expectFiniteValues(b, "b");
  let pixel = 0;
  let value = a[0] * b[0];
  for (let p = 1; p < a.length; p++) {
    const v = a[p] * b[p];
    if (v > value) {
      value = v;
      pixel = p;
    }
  }
  return { value, pixel };
}
