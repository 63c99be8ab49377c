/**
 * Percentile bootstrap intervals over clusters (benchmark prompts): resample the clusters with
 * replacement, recompute the statistic, and take the 2.5th and 97.5th percentiles of the
 * replicates (numpy's default linear interpolation). Resampling prompts, not images, because the
 * images of one prompt (its seeds, its candidates) are not independent of each other.
 *
 * The resampling is seeded (mulberry32), so an interval is a pure function of its input: a merged
 * set of benchmark shards gives the same report as one run, bit for bit.
 *
 * @module
 */
import { check } from "../errors.ts";
import { mulberry32 } from "../random.ts";

/** Options of {@link bootstrapCi}. */
export interface BootstrapOptions {
  /** Replicates (default 2000). */
  reps?: number;
  /** Seed of the resampling (default 1). */
  seed?: number;
  /** Coverage of the interval (default 0.95). */
  level?: number;
}

/** A point estimate with its interval. */
export interface Interval {
  /** The statistic on the whole sample. */
  value: number;
  /** Lower end of the interval. */
  lo: number;
  /** Upper end of the interval. */
  hi: number;
  /** Number of clusters. */
  n: number;
}

/**
 * The q-quantile (0 ≤ q ≤ 1) of `sorted` (ascending) by linear interpolation between closest
 * ranks (numpy.percentile's default, Hyndman–Fan type 7). NaN for an empty array.
 *
 * @example
 * ```ts
 * quantileSorted([1, 2, 3, 4], 0.5); // 2.5
 * ```
 */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const h = (n - 1) * q;
  const i = Math.floor(h);
  return i + 1 < n ? sorted[i] + (h - i) * (sorted[i + 1] - sorted[i]) : sorted[n - 1];
}

/**
 * Percentile bootstrap interval of `stat` over `clusters`: `reps` resamples of `clusters.length`
 * clusters drawn with replacement (index `floor(u · n)`, u from mulberry32(seed), one draw per
 * slot, replicate after replicate). Replicates where `stat` is NaN (e.g. an AUC of a resample
 * with one class only) are dropped. Throws an AttnkitError for no clusters or bad options.
 *
 * @example
 * ```ts
 * const perPrompt = [0.5, 1, 0, 1, 0.5];
 * const ci = bootstrapCi(perPrompt, (xs) => xs.reduce((a, b) => a + b, 0) / xs.length);
 * // ci.value = 0.6; ci.lo, ci.hi bracket it
 * ```
 */
export function bootstrapCi<T>(
  clusters: readonly T[],
  stat: (sample: readonly T[]) => number,
  opts: BootstrapOptions = {},
): Interval {
  const reps = opts.reps ?? 2000;
  const level = opts.level ?? 0.95;
  check(clusters.length > 0, "clusters", "expected at least one cluster");
  check(Number.isInteger(reps) && reps >= 1, "reps", `must be a positive integer, got ${reps}`);
  check(level > 0 && level < 1, "level", `must be in (0, 1), got ${level}`);
  const n = clusters.length;
  const rng = mulberry32(opts.seed ?? 1);
  const values: number[] = [];
  const sample = new Array<T>(n);
  for (let r = 0; r < reps; r++) {
    for (let i = 0; i < n; i++) sample[i] = clusters[Math.floor(rng() * n)];
    const v = stat(sample);
    if (!Number.isNaN(v)) values.push(v);
  }
  values.sort((a, b) => a - b);
  const a = (1 - level) / 2;
  return {
    value: stat(clusters),
    lo: quantileSorted(values, a),
    hi: quantileSorted(values, 1 - a),
    n,
  };
}

/**
 * Mean of a list (NaN for an empty one).
 *
 * @example
 * ```ts
 * mean([1, 2, 3]); // 2
 * ```
 */
export function mean(xs: readonly number[]): number {
  let s = 0;
  for (const x of xs) s += x;
  return xs.length ? s / xs.length : NaN;
}

/**
 * Interval of the mean of per-cluster values (e.g. per-prompt accuracy, or per-prompt paired
 * difference method − base).
 *
 * @example
 * ```ts
 * const ci = meanCi([0.2, 0.4, 0.4, 1]);
 * ```
 */
export function meanCi(values: readonly number[], opts: BootstrapOptions = {}): Interval {
  return bootstrapCi(values, mean, opts);
}
