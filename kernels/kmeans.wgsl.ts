/**
 * WGSL for the two Lloyd steps of ISAC's K-means (the loop and k-means++ seeding stay on the
 * host, as in `lib/isac/kmeans.ts`):
 *
 * - `KMEANS_ASSIGN_WGSL` — one invocation per point: squared distance to every centroid, the
 *   nearest one wins, a point keeps its current cluster on a tie and otherwise the lowest index
 *   wins (the reference's rules); it writes the cluster, the distance, and counts changed points
 *   with an atomic so the host reads back one word to test convergence.
 * - `KMEANS_UPDATE_WGSL` — one invocation per (cluster, dimension): the mean over the points
 *   assigned to the cluster (0 for an empty cluster, which the host then refills), plus the
 *   cluster's size. A fixed summation order keeps it deterministic (no float atomics in WGSL).
 *
 * @module
 */

const HEADER = /* wgsl */ `
struct Params { n: u32, dim: u32, k: u32, pad0: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
`;

/** Bindings: params, x [n, dim], centroids [k, dim], assign [n] (i32), dist [n], changed. */
export const KMEANS_ASSIGN_WGSL: string = /* wgsl */ `
${HEADER}
@group(0) @binding(2) var<storage, read> cent: array<f32>;
@group(0) @binding(3) var<storage, read_write> assign: array<i32>;
@group(0) @binding(4) var<storage, read_write> dist: array<f32>;
@group(0) @binding(5) var<storage, read_write> changed: atomic<u32>;

fn sq_dist(i: u32, c: u32) -> f32 {
  var s = 0.0;
  let xo = i * P.dim;
  let co = c * P.dim;
  for (var j = 0u; j < P.dim; j++) {
    let t = x[xo + j] - cent[co + j];
    s = fma(t, t, s);
  }
  return s;
}

@compute @workgroup_size(64)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  let i = (wid.y * nwg.x + wid.x) * 64u + li;
  if (i >= P.n) { return; }
  let prev = assign[i];
  var best = 0u;
  var best_d = bitcast<f32>(0x7f800000u);
  if (prev >= 0) {
    best = u32(prev);
    best_d = sq_dist(i, best);
  }
  for (var c = 0u; c < P.k; c++) {
    let d = sq_dist(i, c);
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  dist[i] = best_d;
  if (i32(best) != prev) {
    assign[i] = i32(best);
    atomicAdd(&changed, 1u);
  }
}
`;

/** Bindings: params, x [n, dim], assign [n], centroids out [k, dim], counts out [k] (u32). */
export const KMEANS_UPDATE_WGSL: string = /* wgsl */ `
${HEADER}
@group(0) @binding(2) var<storage, read> assign: array<i32>;
@group(0) @binding(3) var<storage, read_write> cent: array<f32>;
@group(0) @binding(4) var<storage, read_write> counts: array<u32>;

@compute @workgroup_size(64)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  let t = (wid.y * nwg.x + wid.x) * 64u + li;
  if (t >= P.k * P.dim) { return; }
  let c = i32(t / P.dim);
  let j = t % P.dim;
  var sum = 0.0;
  var count = 0u;
  for (var i = 0u; i < P.n; i++) {
    if (assign[i] == c) {
      sum += x[i * P.dim + j];
      count += 1u;
    }
  }
  cent[t] = select(0.0, sum / f32(count), count > 0u);
  if (j == 0u) { counts[c] = count; }
}
`;
