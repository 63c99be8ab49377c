/**
 * Command-line flag parsing shared by the examples and benchmarks: numbers from `parseArgs`
 * strings, with an {@link AttnkitError} naming the flag when a value does not fit.
 *
 * @module
 */
import { AttnkitError } from "./errors.ts";

/** An integer flag ≥ `min` (`dflt` when absent). */
export function intArg(name: string, v: string | undefined, dflt: number, min = 0): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    throw new AttnkitError(`--${name}`, `must be an integer ≥ ${min}, got "${v}"`);
  }
  return n;
}
