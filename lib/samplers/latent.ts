/**
 * Argument checks shared by the step functions: every tensor a step reads must be as long as the
 * latent it updates and hold finite numbers, and coefficients must be finite.
 *
 * @module
 */
import { AttnkitError, check } from "../errors.ts";
import { expectFiniteValues } from "../finite.ts";

/** Throws an {@link AttnkitError} naming `argument` unless `x` is a Float32Array of finite values. */
export function expectLatent(x: Float32Array, argument = "x"): void {
  check(x instanceof Float32Array, argument, () => `expected a Float32Array, got ${describe(x)}`);
  expectFiniteValues(x, argument);
}

/**
 * Throws an {@link AttnkitError} naming `argument` unless `a` has the latent's length and finite
 * values; `x` itself is checked the same way (named "x").
 */
export function expectSameLength(x: Float32Array, a: Float32Array, argument: string): void {
  expectLatent(x, "x");
  check(
    a instanceof Float32Array && a.length === x.length,
    argument,
    () => `expected a Float32Array of ${x.length} values (the latent's size), got ${describe(a)}`,
  );
  expectFiniteValues(a, argument);
}

/** Throws an {@link AttnkitError} naming `argument` unless `v` is a finite number in [lo, hi]. */
export function expectIn(v: number, lo: number, hi: number, argument: string): void {
  if (!(Number.isFinite(v) && v >= lo && v <= hi)) {
    throw new AttnkitError(argument, `expected a number in [${lo}, ${hi}], got ${v}`);
  }
}

function describe(a: unknown): string {
  if (a instanceof Float32Array) return `${a.length} values`;
  if (a === undefined || a === null) return String(a);
  return (a as object).constructor?.name ?? typeof a;
}
