/**
 * A WGSL fragment shared by the attention kernels: one 64×64 tile of raw scores q·kᵀ for one
 * head, computed by a 16×16 workgroup with each invocation holding a 4×4 register block
 * (rows `ty + 16·i`, columns `tx + 16·j`), streaming the head dimension through workgroup
 * memory 16 values at a time. Per-head score maps are never written to memory.
 *
 * The including shader must declare `P` (a uniform with `nq`, `nk`, `d`: u32), and the storage
 * arrays `q` ([heads, nq, d]) and `k` ([heads, nk, d]). Out-of-range rows and columns score 0;
 * callers mask them.
 *
 * @module
 */

/** Rows (and columns) of scores one workgroup computes. */
export const TILE = 64;

/** Invocations along each axis of the 2-D workgroups that run {@link SCORES_TILE_WGSL}. */
export const TILE_THREADS = 16;

/** WGSL source of `score_tile(qBase, kBase, row0, col0, tx, ty) -> array<f32, 16>`. */
export const SCORES_TILE_WGSL: string = /* wgsl */ `
const TILE: u32 = 64u;
const KC: u32 = 16u;
const NEG_BIG: f32 = -3.0e38;
var<workgroup> tile_q: array<f32, 1024>; // [KC][TILE], head-dimension major
var<workgroup> tile_k: array<f32, 1024>;

// acc[i * 4 + j] = q[row0 + ty + 16 i] · k[col0 + tx + 16 j] for one head (bases in elements).
fn score_tile(q_base: u32, k_base: u32, row0: u32, col0: u32, tx: u32, ty: u32) -> array<f32, 16> {
  var acc: array<f32, 16>;
  let t = ty * 16u + tx;
  for (var k0 = 0u; k0 < P.d; k0 += KC) {
    for (var e = 0u; e < 4u; e++) {
      let flat = t + 256u * e;
      let r = flat / KC;
      let kk = flat % KC;
      var qv = 0.0;
      var kv = 0.0;
      if (k0 + kk < P.d) {
        if (row0 + r < P.nq) { qv = q[q_base + (row0 + r) * P.d + k0 + kk]; }
        if (col0 + r < P.nk) { kv = k[k_base + (col0 + r) * P.d + k0 + kk]; }
      }
      tile_q[kk * TILE + r] = qv;
      tile_k[kk * TILE + r] = kv;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < KC; kk++) {
      var a: array<f32, 4>;
      var b: array<f32, 4>;
      for (var i = 0u; i < 4u; i++) {
        a[i] = tile_q[kk * TILE + ty + 16u * i];
        b[i] = tile_k[kk * TILE + tx + 16u * i];
      }
      for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
          acc[i * 4u + j] = fma(a[i], b[j], acc[i * 4u + j]);
        }
      }
    }
    workgroupBarrier();
  }
  return acc;
}
`;
