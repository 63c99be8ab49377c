/**
 * Argument checks shared by the step functions: every tensor a step reads must be as long as the
 * latent it updates, and coefficients must be finite.
 *
 * @module
 */
import { AttnkitError, check } from "../errors.ts";

/** Throws an {@link AttnkitError} naming `argument` unless `a` has the latent's length. */
export function expectSameLength(x: Float32Array, a: Float32Array, argument: string): void {
  check(
    a instanceof Float32Array && a.length === x.length,
    argument,
    () => `expected a Float32Array of ${x.length} values (the latent's size), got ${describe(a)}`,
  );
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
