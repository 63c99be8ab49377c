/**
 * Sample size for a paired comparison: how many prompts a benchmark needs so that a given mean
 * paired difference is resolved (two-sided test at level α with the given power), from the
 * standard deviation of the per-prompt differences measured on a validation draw.
 *
 * @module
 */
import { check } from "../errors.ts";

/**
 * The standard normal quantile Φ⁻¹(p) (Acklam's rational approximation, relative error below
 * 1.2e-9 on (0, 1): ample for sample sizes).
 *
 * @example
 * ```ts
 * normalQuantile(0.975); // 1.95996398…
 * ```
 */
export function normalQuantile(p: number): number {
  check(p > 0 && p < 1, "p", `must be in (0, 1), got ${p}`);
  const a = [
    -39.69683028665376,
    220.9460984245205,
    -275.9285104469687,
    138.357751867269,
    -30.66479806614716,
    2.506628277459239,
  ];
  const b = [
    -54.47609879822406,
    161.5858368580409,
    -155.6989798598866,
    66.80131188771972,
    -13.28068155288572,
  ];
  const c = [
    -0.007784894002430293,
    -0.3223964580411365,
    -2.400758277161838,
    -2.549732539343734,
    4.374664141464968,
    2.938163982698783,
  ];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const lo = 0.02425;
  let x: number;
  if (p < lo) {
    const q = Math.sqrt(-2 * Math.log(p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
      ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else if (p <= 1 - lo) {
    const q = p - 0.5;
    const r = q * q;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
      (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  } else {
    const q = Math.sqrt(-2 * Math.log(1 - p));
    x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
      ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  return x;
}

/**
 * Clusters (prompts) needed to detect a mean paired difference `delta` when the per-prompt
 * differences have standard deviation `sd`: ⌈((z_{1−α/2} + z_{power}) · sd / delta)²⌉ (normal
 * approximation). Defaults α = 0.05, power 0.8.
 *
 * @example
 * ```ts
 * pairedSampleSize(0.3, 0.05); // 283
 * ```
 */
export function pairedSampleSize(
  sd: number,
  delta: number,
  opts: { alpha?: number; power?: number } = {},
): number {
  const alpha = opts.alpha ?? 0.05;
  const power = opts.power ?? 0.8;
  check(sd >= 0 && Number.isFinite(sd), "sd", `must be a finite number ≥ 0, got ${sd}`);
  check(delta > 0 && Number.isFinite(delta), "delta", `must be a positive number, got ${delta}`);
  const z = normalQuantile(1 - alpha / 2) + normalQuantile(power);
  return Math.ceil(((z * sd) / delta) ** 2);
}

/**
 * Sample standard deviation (n − 1 denominator; NaN below 2 values).
 *
 * @example
 * ```ts
 * sampleSd([1, 2, 3, 4]); // 1.2909944487358056
 * ```
 */
export function sampleSd(xs: readonly number[]): number {
  const n = xs.length;
  if (n < 2) return NaN;
  const m = xs.reduce((a, b) => a + b, 0) / n;
  return Math.sqrt(xs.reduce((s, x) => s + (x - m) ** 2, 0) / (n - 1));
}
