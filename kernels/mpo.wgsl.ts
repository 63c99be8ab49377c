/**
 * WGSL for ISAC Eq. 7 over all pairs of N soft masks: one workgroup per pair (i, j) folds a
 * strided share of the pixels into (max a·b, its pixel), then a tree reduction in workgroup
 * memory keeps the larger product and, on ties, the lower pixel, so the result is the CPU
 * reference's "first pixel attaining the maximum". Output per pair: (bitcast value, pixel).
 *
 * @module
 */
import { treeLevels } from "./reduce.wgsl.ts";

/** Bindings: params (pairs, pixels), masks [N, F], pair table [P, 2], results [P] × (value, pixel). */
export const MPO_PAIRS_WGSL: string = /* wgsl */ `
struct Params { pairs: u32, pixels: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> masks: array<f32>;
@group(0) @binding(2) var<storage, read> table: array<vec2<u32>>;
@group(0) @binding(3) var<storage, read_write> result: array<vec2<u32>>;
var<workgroup> best_v: array<f32, 256>;
var<workgroup> best_i: array<u32, 256>;

@compute @workgroup_size(256)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  let pair = wid.y * nwg.x + wid.x;
  let ij = table[min(pair, P.pairs - 1u)];
  let a = ij.x * P.pixels;
  let b = ij.y * P.pixels;
  var v = bitcast<f32>(0xff800000u);
  var idx = 0xffffffffu;
  if (li < P.pixels) {
    v = masks[a + li] * masks[b + li];
    idx = li;
  }
  for (var p = li + 256u; p < P.pixels; p += 256u) {
    let x = masks[a + p] * masks[b + p];
    if (x > v) {
      v = x;
      idx = p;
    }
  }
  best_v[li] = v;
  best_i[li] = idx;
  workgroupBarrier();
${
  treeLevels((s) =>
    `let ov = best_v[li + ${s}]; let oi = best_i[li + ${s}]; ` +
    `if (ov > best_v[li] || (ov == best_v[li] && oi < best_i[li])) { best_v[li] = ov; best_i[li] = oi; }`
  )
}
  if (li == 0u && pair < P.pairs) { result[pair] = vec2<u32>(bitcast<u32>(best_v[0]), best_i[0]); }
}
`;
