/**
 * WGSL tiled matrix product `C = α · A · B`, batched over `workgroup_id.z`: each 16×16
 * workgroup computes a 64×64 tile of C with a 4×4 register block per invocation, staging 64×16
 * slabs of A and 16×64 slabs of B through workgroup memory (8 KiB) so every global load is
 * shared by 64 invocations. A is read through strides, so Aᵀ costs nothing extra to express
 * (the backward pass's dk = dSᵀ·Q); B and C are row-major. Out-of-range rows, columns and
 * inner indices load as 0. It is the one kernel with workgroup memory inside a loop, which
 * Mesa's software adapter takes ~15 s of CPU to compile on first use (its shader cache keeps
 * the result).
 *
 * @module
 */

/** Uniform words of {@link MATMUL_WGSL}, in order. */
export const MATMUL_PARAM_NAMES: readonly string[] = [
  "m",
  "n",
  "k",
  "a_off",
  "a_row",
  "a_col",
  "a_batch",
  "b_off",
  "b_batch",
  "c_off",
  "c_batch",
  "alpha",
];

/** The tiled matmul kernel; bindings: params, A, B, C. */
export const MATMUL_WGSL: string = /* wgsl */ `
struct Params {
  m: u32, n: u32, k: u32, a_off: u32,
  a_row: u32, a_col: u32, a_batch: u32, b_off: u32,
  b_batch: u32, c_off: u32, c_batch: u32, alpha: f32,
}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
var<workgroup> ta: array<f32, 1024>; // [16 inner][64 rows]
var<workgroup> tb: array<f32, 1024>; // [16 inner][64 columns]

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let row0 = wid.y * 64u;
  let col0 = wid.x * 64u;
  let t = lid.y * 16u + lid.x;
  let a_base = P.a_off + wid.z * P.a_batch;
  let b_base = P.b_off + wid.z * P.b_batch;
  var c0 = vec4<f32>(0.0);
  var c1 = vec4<f32>(0.0);
  var c2 = vec4<f32>(0.0);
  var c3 = vec4<f32>(0.0);
  for (var k0 = 0u; k0 < P.k; k0 += 16u) {
    for (var e = 0u; e < 4u; e++) {
      let flat = t + 256u * e;
      let ar = flat / 16u;
      let ak = flat % 16u;
      var av = 0.0;
      if (row0 + ar < P.m && k0 + ak < P.k) {
        av = a[a_base + (row0 + ar) * P.a_row + (k0 + ak) * P.a_col];
      }
      ta[ak * 64u + ar] = av;
      let bk = flat / 64u;
      let bc = flat % 64u;
      var bv = 0.0;
      if (k0 + bk < P.k && col0 + bc < P.n) { bv = b[b_base + (k0 + bk) * P.n + col0 + bc]; }
      tb[flat] = bv;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < 16u; kk++) {
      let o = kk * 64u;
      let av = vec4<f32>(ta[o + lid.y], ta[o + lid.y + 16u], ta[o + lid.y + 32u], ta[o + lid.y + 48u]);
      c0 = fma(av, vec4<f32>(tb[o + lid.x]), c0);
      c1 = fma(av, vec4<f32>(tb[o + lid.x + 16u]), c1);
      c2 = fma(av, vec4<f32>(tb[o + lid.x + 32u]), c2);
      c3 = fma(av, vec4<f32>(tb[o + lid.x + 48u]), c3);
    }
    workgroupBarrier();
  }
  let c_base = P.c_off + wid.z * P.c_batch;
  let cols = array<vec4<f32>, 4>(c0, c1, c2, c3);
  for (var j = 0u; j < 4u; j++) {
    let col = col0 + lid.x + 16u * j;
    if (col >= P.n) { continue; }
    let v = cols[j] * P.alpha;
    for (var i = 0u; i < 4u; i++) {
      let row = row0 + lid.y + 16u * i;
      if (row < P.m) { c[c_base + row * P.n + col] = v[i]; }
    }
  }
}
`;
