/**
 * WGSL for the backward of the attention-map accumulation (the adjoint of each forward step, as
 * in `lib/attention/accumulate_backward.ts`):
 *
 * 1. `POOL_GRAD_WGSL` — the adjoint of nearest upsampling: per layer pair (a, b), the sum of
 *    the map cotangent over the δy×δx block of output rows (and, for self maps, of columns);
 * 2. row statistics with Σ p·g (`statsPartialWgsl(…, true)` + `STATS_COMBINE_WGSL` of the
 *    forward), which is the softmax backward's row term;
 * 3. `dsWgsl` — the logit cotangent dS = p ⊙ (g − Σ p·g) · weight / √d for a batch of heads,
 *    written to a scratch buffer (one batch of heads at a time, so memory stays bounded);
 * 4. then two tiled products (`matmul.wgsl.ts`): dq = dS·K and dk = dSᵀ·Q.
 *
 * @module
 */
import { ATTENTION_PARAMS_WGSL, scoreBlockWgsl } from "./attention_tile.wgsl.ts";

/** Pools the `[H·W, out_cols]` map cotangent into the layer's `[nq, nk]` pairs. */
export const POOL_GRAD_WGSL: string = /* wgsl */ `
${ATTENTION_PARAMS_WGSL}
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> pooled: array<f32>;

@compute @workgroup_size(256)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  let i = (wid.y * nwg.x + wid.x) * 256u + li;
  if (i >= P.nq * P.nk) { return; }
  let a = i / P.nk;
  let b = i % P.nk;
  let ay = a / P.lw;
  let ax = a % P.lw;
  let by = b / P.lw;
  let bx = b % P.lw;
  var s = 0.0;
  for (var uy = 0u; uy < P.dy; uy++) {
    for (var ux = 0u; ux < P.dx; ux++) {
      let orow = ((ay * P.dy + uy) * P.out_w + ax * P.dx + ux) * P.out_cols;
      if (P.is_self == 0u) {
        s += grad[orow + b];
      } else {
        for (var vy = 0u; vy < P.dy; vy++) {
          let ocol = orow + (by * P.dy + vy) * P.out_w + bx * P.dx;
          for (var vx = 0u; vx < P.dx; vx++) { s += grad[ocol + vx]; }
        }
      }
    }
  }
  pooled[i] = s;
}
`;

/** dS for heads `head0 + z`, written to `ds[z, nq, nk]`. */
export function dsWgsl(vec4: boolean): string {
  return /* wgsl */ `
${ATTENTION_PARAMS_WGSL}
${scoreBlockWgsl(vec4)}
@group(0) @binding(3) var<storage, read> stats: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> pooled: array<f32>;
@group(0) @binding(5) var<storage, read_write> ds: array<f32>;

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let h = P.head0 + wid.z;
  let rows_raw = vec4<u32>(wid.y * TILE + lid.y) + LANES;
  let cols_raw = vec4<u32>(wid.x * TILE + lid.x) + LANES;
  let rows = min(rows_raw, vec4<u32>(P.nq - 1u));
  let cols = min(cols_raw, vec4<u32>(P.nk - 1u));
  let s = score_block(h, rows, cols);
  let sr = vec4<u32>(h * P.nq) + rows;
  let st0 = stats[sr.x];
  let st1 = stats[sr.y];
  let st2 = stats[sr.z];
  let st3 = stats[sr.w];
  let m = vec4<f32>(st0.x, st1.x, st2.x, st3.x);
  let inv = vec4<f32>(st0.y, st1.y, st2.y, st3.y);
  let dot = vec4<f32>(st0.z, st1.z, st2.z, st3.z);
  let coef = P.weight * P.scale;
  let gr = rows * P.nk;
  for (var j = 0u; j < 4u; j++) {
    let b = cols_raw[j];
    if (b >= P.nk) { continue; }
    let p = exp(s[j] * P.scale - m) * inv;
    let gv = vec4<f32>(pooled[gr.x + b], pooled[gr.y + b], pooled[gr.z + b], pooled[gr.w + b]);
    let v = p * (gv - dot) * coef;
    for (var i = 0u; i < 4u; i++) {
      let a = rows_raw[i];
      if (a < P.nq) { ds[(wid.z * P.nq + a) * P.nk + b] = v[i]; }
    }
  }
}
`;
}
