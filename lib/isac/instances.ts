/**
 * ISAC Phase 1 structures (Section 5.1, Eq. 5-6): the clustering features of the foreground
 * pixels and the soft instance masks `SA_fg · K`.
 *
 * - Features: row f is `SA[I_f, I]` (the normalised self-attention of foreground pixel I_f to all
 *   foreground pixels) followed by its normalised image coordinates x, y in [−1, 1] (x along the
 *   width, y along the height; 0 on an axis of size 1), one scalar each as in the paper.
 * - Masks: `SA_fg · K̄` where K̄ is the one-hot assignment with each column divided by its cluster
 *   size, so mask i is the mean self-attention row of cluster i's pixels and stays in [0, 1]
 *   (the paper's plain `SA_fg · K` sums, which grows with cluster size). An empty cluster gives a
 *   zero mask.
 *
 * @module
 */
import { AttnkitError, check } from "../errors.ts";
import { expectShape, tensor } from "../tensor.ts";
import type { Tensor } from "../tensor.ts";

/** Options of {@link instanceFeatures}. */
export interface InstanceFeatureOptions {
  /** Multiplier on the two coordinate columns (default 1, the paper's plain concatenation). */
  coordWeight?: number;
}

/** Checks that `fg` is an ascending list of distinct pixel indices below `hw`. */
export function checkForeground(fg: Int32Array, hw: number): void {
  for (let i = 0; i < fg.length; i++) {
    const p = fg[i];
    if (!(p >= 0 && p < hw && (i === 0 || p > fg[i - 1]))) {
      throw new AttnkitError(
        "fg",
        `expected ascending distinct pixel indices in 0 … ${hw - 1}, got ${p} at position ${i}`,
      );
    }
  }
}

function checkSelf(selfNorm: Tensor): number {
  expectShape(selfNorm, [-1, -1], "selfNorm", "[HW, HW]");
  const hw = selfNorm.shape[0];
  check(
    selfNorm.shape[1] === hw,
    "selfNorm",
    () => `expected a square [HW, HW] map, got [${selfNorm.shape}]`,
  );
  return hw;
}

/**
 * Clustering features `[F, F + 2]`: rows of `selfNorm[I, I]` for the foreground pixels `fg`, each
 * followed by that pixel's (x, y) in [−1, 1]² on the `size = [H, W]` grid.
 */
export function instanceFeatures(
  selfNorm: Tensor,
  fg: Int32Array,
  size: readonly [number, number],
  opts: InstanceFeatureOptions = {},
): Tensor {
  const hw = checkSelf(selfNorm);
  check(
    size[0] * size[1] === hw,
    "size",
    () => `expected [H, W] with H·W = ${hw} (the rows of selfNorm), got [${size}]`,
  );
  checkForeground(fg, hw);
  return foregroundFeatures(selfNorm.data, hw, fg, size, 0, 1, opts.coordWeight ?? 1);
}

/**
 * The features of {@link instanceFeatures} built from the raw self map with the min-max
 * normalisation `(v − lo) · inv` folded in, so the `[HW, HW]` normalised map is never stored.
 */
export function foregroundFeatures(
  self: Float32Array,
  hw: number,
  fg: Int32Array,
  size: readonly [number, number],
  lo: number,
  inv: number,
  coordWeight: number,
): Tensor {
  const f = fg.length;
  const stride = f + 2;
  const out = new Float32Array(f * stride);
  const [h, w] = size;
  for (let a = 0; a < f; a++) {
    const row = fg[a] * hw;
    const o = a * stride;
    for (let b = 0; b < f; b++) out[o + b] = (self[row + fg[b]] - lo) * inv;
    const y = Math.floor(fg[a] / w);
    const x = fg[a] - y * w;
    out[o + f] = coordWeight * (w > 1 ? (2 * x) / (w - 1) - 1 : 0);
    out[o + f + 1] = coordWeight * (h > 1 ? (2 * y) / (h - 1) - 1 : 0);
  }
  return tensor([f, stride], out);
}

function checkAssign(assign: Int32Array, f: number, n: number): void {
  check(Number.isInteger(n) && n >= 1, "n", `expected a positive integer, got ${n}`);
  check(
    assign.length === f,
    "assign",
    () => `expected one cluster per foreground pixel (${f}), got ${assign.length}`,
  );
  for (let i = 0; i < f; i++) {
    check(
      assign[i] >= 0 && assign[i] < n,
      "assign",
      () => `expected clusters in 0 … ${n - 1}, got ${assign[i]} at position ${i}`,
    );
  }
}

/** Soft instance masks `[F, N]`: `selfNorm[I, I] · K̄`, K̄ the assignment with columns averaged. */
export function instanceMasks(
  selfNorm: Tensor,
  fg: Int32Array,
  assign: Int32Array,
  n: number,
): Tensor {
  const hw = checkSelf(selfNorm);
  checkForeground(fg, hw);
  checkAssign(assign, fg.length, n);
  const f = fg.length;
  const block = new Float32Array(f * f);
  const s = selfNorm.data;
  for (let a = 0; a < f; a++) {
    for (let b = 0; b < f; b++) block[a * f + b] = s[fg[a] * hw + fg[b]];
  }
  return tensor([f, n], Float32Array.from(masksOf(block, f, f, assign, n)));
}

/** Cluster sizes of an assignment. */
export function clusterSizes(assign: Int32Array, n: number): Int32Array {
  const sizes = new Int32Array(n);
  for (const c of assign) sizes[c]++;
  return sizes;
}

/**
 * `block[:, :F] · K̄` as float64 `[F, n]` (with `sum`, `block[:, :F] · K`, the paper's plain sum), where `block` holds F rows of `stride` values whose
 * first F are the foreground self-attention (the feature matrix qualifies, stride F + 2).
 */
export function masksOf(
  block: ArrayLike<number>,
  stride: number,
  f: number,
  assign: Int32Array,
  n: number,
  sum = false,
): Float64Array {
  const sizes = clusterSizes(assign, n);
  const out = new Float64Array(f * n);
  for (let a = 0; a < f; a++) {
    const row = a * stride;
    const o = a * n;
    for (let b = 0; b < f; b++) out[o + assign[b]] += block[row + b];
    if (!sum) { for (let c = 0; c < n; c++) if (sizes[c] > 0) out[o + c] /= sizes[c]; }
  }
  return out;
}
