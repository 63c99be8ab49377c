/**
 * WGSL shared by the attention kernels (forward accumulation and backward): the uniform block,
 * and `score_block`, which gives one invocation the 4×4 block of raw scores q·kᵀ of one head for
 * any four rows and four columns (the accumulation and dS kernels take rows `row0 + ty + 16·i`
 * and columns `col0 + tx + 16·j` of a 64×64 tile run by a 16×16 workgroup; the statistics pass
 * walks its tile four consecutive columns at a time).
 * No per-head score map is ever written to memory.
 *
 * Why registers and not workgroup-memory tiles: each q and k element loaded feeds four
 * multiply-adds from registers, the head dimension is short (40–160 in Stable Diffusion), and a
 * 64-row slab of q or k (≤ 40 KiB) stays in a GPU's L1 cache. Mesa's software adapter, which the
 * parity tests run on, also takes minutes to compile any shader that touches workgroup memory
 * inside a loop that is not unrolled (measured: 70 s for one such kernel, against 0.2 s for
 * this form), so the attention kernels use no workgroup memory at all.
 *
 * @module
 */

/** Rows (and columns) of scores one workgroup covers. */
export const TILE = 64;

/** WGSL declaration of the uniform block every attention kernel reads (16 u32 words). */
export const ATTENTION_PARAMS_WGSL: string = /* wgsl */ `
struct Params {
  nq: u32, nk: u32, d: u32, heads: u32,
  scale: f32, weight: f32, lh: u32, lw: u32,
  dy: u32, dx: u32, out_h: u32, out_w: u32,
  out_cols: u32, is_self: u32, head0: u32, col_tiles: u32,
}
@group(0) @binding(0) var<uniform> P: Params;
const TILE: u32 = 64u;
const NEG_BIG: f32 = -3.0e38;
const LANES: vec4<u32> = vec4<u32>(0u, 16u, 32u, 48u);
`;

/**
 * Declarations of `q` and `k` at bindings 1 and 2 plus `score_block(h, rows, cols)`
 * (`rows`, `cols` already clamped into range); `vec4` loads four head-dimension values at a time
 * and needs `d % 4 == 0`.
 */
export function scoreBlockWgsl(vec4: boolean): string {
  if (vec4) {
    return /* wgsl */ `
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> k: array<vec4<f32>>;

// s[j][i] = q[h, rows[i]] · k[h, cols[j]]
fn score_block(h: u32, rows: vec4<u32>, cols: vec4<u32>) -> mat4x4<f32> {
  let d4 = P.d / 4u;
  let qr = (vec4<u32>(h * P.nq) + rows) * d4;
  let kr = (vec4<u32>(h * P.nk) + cols) * d4;
  var s = mat4x4<f32>();
  for (var c = 0u; c < d4; c++) {
    let a0 = q[qr.x + c];
    let a1 = q[qr.y + c];
    let a2 = q[qr.z + c];
    let a3 = q[qr.w + c];
    let b0 = k[kr.x + c];
    let b1 = k[kr.y + c];
    let b2 = k[kr.z + c];
    let b3 = k[kr.w + c];
    s[0] += vec4<f32>(dot(a0, b0), dot(a1, b0), dot(a2, b0), dot(a3, b0));
    s[1] += vec4<f32>(dot(a0, b1), dot(a1, b1), dot(a2, b1), dot(a3, b1));
    s[2] += vec4<f32>(dot(a0, b2), dot(a1, b2), dot(a2, b2), dot(a3, b2));
    s[3] += vec4<f32>(dot(a0, b3), dot(a1, b3), dot(a2, b3), dot(a3, b3));
  }
  return s;
}
`;
  }
  return /* wgsl */ `
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;

// s[j][i] = q[h, rows[i]] · k[h, cols[j]]
fn score_block(h: u32, rows: vec4<u32>, cols: vec4<u32>) -> mat4x4<f32> {
  let qr = (vec4<u32>(h * P.nq) + rows) * P.d;
  let kr = (vec4<u32>(h * P.nk) + cols) * P.d;
  var s = mat4x4<f32>();
  for (var c = 0u; c < P.d; c++) {
    let a = vec4<f32>(q[qr.x + c], q[qr.y + c], q[qr.z + c], q[qr.w + c]);
    s[0] += a * k[kr.x + c];
    s[1] += a * k[kr.y + c];
    s[2] += a * k[kr.z + c];
    s[3] += a * k[kr.w + c];
  }
  return s;
}
`;
}
