/**
 * K-means for ISAC's instance clustering (Section 5.1): k-means++ seeding, then Lloyd iterations
 * until the assignment stops changing. Everything random comes from one `seededRng(seed)`
 * generator (lib/random.ts), and ties are broken by fixed rules (a point keeps its current
 * cluster when another is equally near, otherwise the lowest index wins), so a seed fixes the
 * result.
 *
 * - Seeding: the first centre is a uniformly drawn point; each next centre is drawn with
 *   probability proportional to its squared distance to the nearest chosen centre. If every
 *   point coincides with a chosen centre, the lowest-index point not yet chosen is taken.
 * - Empty clusters: after an update step, an empty cluster takes the point farthest from its own
 *   centroid among clusters that have at least two members (lowest index on ties), and both
 *   centroids are recomputed; so with k ≤ F no cluster ends empty.
 * - Distances and centroids are accumulated in float64.
 *
 * @module
 */
import { check } from "../errors.ts";
import { checkSeed, seededRng } from "../random.ts";
import { expectFinite, expectShape, tensor } from "../tensor.ts";
import type { Tensor } from "../tensor.ts";

/** Options of {@link kmeans}. */
export interface KMeansOptions {
  /** Seed (a safe integer) of the generator used for k-means++ seeding (default 0). */
  seed?: number;
  /** Most Lloyd iterations (default 100). */
  maxIter?: number;
}

/** What {@link kmeans} found. */
export interface KMeansResult {
  /** Cluster of each row of the features, in `0 … k − 1`. */
  assign: Int32Array;
  /** `[k, D]` cluster means. */
  centroids: Tensor;
  /** Lloyd assignment passes run (the last one changed nothing unless `maxIter` stopped it). */
  iterations: number;
}

/**
 * Validates K-means arguments (shared with the GPU kernel) and returns
 * `[rows, dims, seed, maxIter]` with the defaults applied.
 */
export function checkKmeansArgs(
  features: Tensor,
  k: number,
  opts: KMeansOptions,
): [number, number, number, number] {
  expectShape(features, [-1, -1], "features", "[F, D]");
  expectFinite(features, "features");
  const [n, dim] = features.shape;
  check(
    Number.isInteger(k) && k >= 1 && k <= n,
    "k",
    () => `expected an integer in 1 … ${n} (the number of feature rows), got ${k}`,
  );
  const seed = opts.seed ?? 0;
  const maxIter = opts.maxIter ?? 100;
  checkSeed(seed, "opts.seed");
  check(
    Number.isInteger(maxIter) && maxIter >= 1,
    "opts.maxIter",
    () => `expected a positive integer, got ${maxIter}`,
  );
  return [n, dim, seed, maxIter];
}

/**
 * Clusters the rows of `features` `[F, D]` into `k` groups (1 ≤ k ≤ F); deterministic for a seed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { kmeans, tensor } from "@attnkit/attnkit";
 * // Four 2-D points in two clear groups: near (0, 0) and near (10, 10).
 * const features = tensor([4, 2], [0, 0, 10, 10, 0.5, 0, 10, 9.5]);
 * const { assign, centroids } = kmeans(features, 2, { seed: 0 });
 * assert.equal(assign[0], assign[2]);
 * assert.equal(assign[1], assign[3]);
 * assert.notEqual(assign[0], assign[1]);
 * assert.deepEqual(Array.from(centroids.data.subarray(2 * assign[0], 2 * assign[0] + 2)), [0.25, 0]);
 * ```
 */
export function kmeans(features: Tensor, k: number, opts: KMeansOptions = {}): KMeansResult {
  const [n, dim, seed, maxIter] = checkKmeansArgs(features, k, opts);
  const x = features.data;
  const cent = seedCentres(x, n, dim, k, seed);
  const assign = new Int32Array(n).fill(-1);
  const dist = new Float64Array(n);
  const counts = new Int32Array(k);
  let iterations = 0;
  for (;;) {
    iterations++;
    let changed = false;
    for (let i = 0; i < n; i++) {
      // A point keeps its cluster on a tie, so a cluster refilled from duplicates stays filled.
      let best = assign[i] < 0 ? 0 : assign[i];
      let bestD = assign[i] < 0 ? Infinity : sqDist(x, i * dim, cent, best * dim, dim);
      for (let c = 0; c < k; c++) {
        const dc = sqDist(x, i * dim, cent, c * dim, dim);
        if (dc < bestD) {
          bestD = dc;
          best = c;
        }
      }
      dist[i] = bestD;
      if (assign[i] !== best) {
        assign[i] = best;
        changed = true;
      }
    }
    if (!changed) break;
    updateCentres(x, n, dim, k, assign, cent, counts);
    fillEmpty(x, n, dim, k, assign, cent, counts, dist);
    if (iterations >= maxIter) break;
  }
  return { assign, centroids: tensor([k, dim], Float32Array.from(cent)), iterations };
}

function sqDist(
  a: ArrayLike<number>,
  ao: number,
  b: ArrayLike<number>,
  bo: number,
  dim: number,
): number {
  let s = 0;
  for (let j = 0; j < dim; j++) {
    const t = a[ao + j] - b[bo + j];
    s += t * t;
  }
  return s;
}

/**
 * k-means++ seeding (first centre uniform, then proportional to the squared distance to the
 * nearest chosen centre; the lowest unchosen point when all distances are 0): `[k, dim]` centres.
 */
export function seedCentres(
  x: Float32Array,
  n: number,
  dim: number,
  k: number,
  seed: number,
): Float64Array {
  const rng = seededRng(seed, "seed");
  const cent = new Float64Array(k * dim);
  const chosen = new Uint8Array(n);
  const near = new Float64Array(n).fill(Infinity);
  let pick = Math.min(n - 1, Math.floor(rng() * n));
  for (let c = 0; c < k; c++) {
    if (c > 0) {
      let total = 0;
      for (let i = 0; i < n; i++) total += near[i];
      pick = -1;
      if (total > 0) {
        const r = rng() * total;
        let cum = 0;
        for (let i = 0; i < n; i++) {
          if (near[i] === 0) continue;
          cum += near[i];
          pick = i;
          if (cum > r) break;
        }
      } else {
        pick = chosen.indexOf(0);
      }
    }
    chosen[pick] = 1;
    for (let j = 0; j < dim; j++) cent[c * dim + j] = x[pick * dim + j];
    for (let i = 0; i < n; i++) {
      const d = sqDist(x, i * dim, cent, c * dim, dim);
      if (d < near[i]) near[i] = d;
    }
  }
  return cent;
}

function updateCentres(
  x: Float32Array,
  n: number,
  dim: number,
  k: number,
  assign: Int32Array,
  cent: Float64Array,
  counts: Int32Array,
): void {
  cent.fill(0);
  counts.fill(0);
  for (let i = 0; i < n; i++) {
    const c = assign[i];
    counts[c]++;
    const o = c * dim;
    const xo = i * dim;
    for (let j = 0; j < dim; j++) cent[o + j] += x[xo + j];
  }
  for (let c = 0; c < k; c++) {
    if (counts[c] === 0) continue;
    const inv = 1 / counts[c];
    for (let j = 0; j < dim; j++) cent[c * dim + j] *= inv;
  }
}

function fillEmpty(
  x: Float32Array,
  n: number,
  dim: number,
  k: number,
  assign: Int32Array,
  cent: Float64Array,
  counts: Int32Array,
  dist: Float64Array,
): void {
  for (let c = 0; c < k; c++) {
    if (counts[c] > 0) continue;
    let far = -1;
    for (let i = 0; i < n; i++) {
      if (counts[assign[i]] < 2) continue;
      if (far < 0 || dist[i] > dist[far]) far = i;
    }
    // k ≤ n guarantees some cluster has two members while another is empty.
    assign[far] = c;
    dist[far] = 0;
    updateCentres(x, n, dim, k, assign, cent, counts);
  }
}

/**
 * One Lloyd assignment step on its own (a CPU reference for GPU kernels): the nearest centroid
 * `[k, D]` of every feature row `[F, D]` by squared Euclidean distance, ties to the lowest index.
 */
export function assignNearest(features: Tensor, centroids: Tensor): Int32Array {
  expectShape(features, [-1, -1], "features", "[F, D]");
  const [n, dim] = features.shape;
  expectShape(centroids, [-1, dim], "centroids", `[k, D] with D = ${dim} from features`);
  const k = centroids.shape[0];
  check(k >= 1, "centroids", "expected at least one centroid");
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    let bestD = Infinity;
    for (let c = 0; c < k; c++) {
      const d = sqDist(features.data, i * dim, centroids.data, c * dim, dim);
      if (d < bestD) {
        bestD = d;
        best = c;
      }
    }
    out[i] = best;
  }
  return out;
}

/**
 * One Lloyd update step on its own (a CPU reference for GPU kernels): the mean `[k, D]` of the
 * feature rows assigned to each cluster; an empty cluster's row is all zeros.
 */
export function clusterMeans(features: Tensor, assign: Int32Array, k: number): Tensor {
  expectShape(features, [-1, -1], "features", "[F, D]");
  const [n, dim] = features.shape;
  check(Number.isInteger(k) && k >= 1, "k", `expected a positive integer, got ${k}`);
  check(assign.length === n, "assign", () => `expected ${n} cluster indices, got ${assign.length}`);
  for (let i = 0; i < n; i++) {
    check(
      assign[i] >= 0 && assign[i] < k,
      "assign",
      () => `expected clusters in 0 … ${k - 1}, got ${assign[i]} at position ${i}`,
    );
  }
  const cent = new Float64Array(k * dim);
  updateCentres(features.data, n, dim, k, assign, cent, new Int32Array(k));
  return tensor([k, dim], Float32Array.from(cent));
}
