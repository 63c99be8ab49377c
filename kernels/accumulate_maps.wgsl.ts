/**
 * WGSL for ISAC Eq. 1–2: the head- and layer-mean of softmax(q·kᵀ/√d), nearest-upsampled to
 * the largest map size and added into one output buffer that stays on the device across layers.
 * Per tap:
 *
 * 1. `statsPartialWgsl` — for each (head, row, 64-column tile) the row max, Σexp and
 *    (backward only) Σ exp·g over that tile: the tiles of a row run in parallel;
 * 2. `STATS_COMBINE_WGSL` — per (head, row) the online-softmax merge of its tiles into
 *    (max, 1/Σexp, Σ p·g, 0);
 * 3. `accumulateWgsl` — per 64×64 tile, Σ_heads p (scores recomputed, never stored), times
 *    1/(total heads · δy·δx) for self maps (so upsampled rows still sum to 1) or 1/(total heads)
 *    for cross maps, added into every upsampled output position of each (row, column) pair.
 *    Within one tap every output position has exactly one source pair, so the plain
 *    read-add-write is race free; taps are successive dispatches.
 *
 * @module
 */
import { ATTENTION_PARAMS_WGSL, scoreBlockWgsl } from "./attention_tile.wgsl.ts";

/** Invocations per workgroup of the statistics pass; each owns four rows 64 apart. */
export const STATS_ROWS_PER_GROUP = 256;

/**
 * Per-tile statistics [heads, nq, col_tiles] × (max, Σexp, Σexp·g, 0): each invocation owns
 * four rows and walks the tile's 64 columns four at a time with an online softmax, so no
 * reduction across invocations (and no workgroup memory) is needed.
 */
export function statsPartialWgsl(vec4: boolean, withGrad: boolean): string {
  return /* wgsl */ `
${ATTENTION_PARAMS_WGSL}
${scoreBlockWgsl(vec4)}
@group(0) @binding(3) var<storage, read_write> partial: array<vec4<f32>>;
${withGrad ? "@group(0) @binding(4) var<storage, read> g: array<f32>;" : ""}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let h = wid.z;
  let rows_raw = vec4<u32>(wid.y * 256u + lid.x) + vec4<u32>(0u, 64u, 128u, 192u);
  let rows = min(rows_raw, vec4<u32>(P.nq - 1u));
  let col0 = wid.x * TILE;
  let neg = vec4<f32>(NEG_BIG);
  let zero = vec4<f32>(0.0);
  var m = neg;
  var l = zero;
  var u = zero;
  for (var cb = 0u; cb < TILE; cb += 4u) {
    if (col0 + cb >= P.nk) { break; }
    let cols_raw = vec4<u32>(col0 + cb) + vec4<u32>(0u, 1u, 2u, 3u);
    let ok = cols_raw < vec4<u32>(P.nk);
    let cols = min(cols_raw, vec4<u32>(P.nk - 1u));
    let s = score_block(h, rows, cols);
    let v0 = select(neg, s[0] * P.scale, ok.x);
    let v1 = select(neg, s[1] * P.scale, ok.y);
    let v2 = select(neg, s[2] * P.scale, ok.z);
    let v3 = select(neg, s[3] * P.scale, ok.w);
    let mx = max(m, max(max(v0, v1), max(v2, v3)));
    let rescale = exp(m - mx);
    let e0 = select(zero, exp(v0 - mx), ok.x);
    let e1 = select(zero, exp(v1 - mx), ok.y);
    let e2 = select(zero, exp(v2 - mx), ok.z);
    let e3 = select(zero, exp(v3 - mx), ok.w);
    l = l * rescale + e0 + e1 + e2 + e3;
    ${
    withGrad
      ? `let gr = rows * P.nk;
    u = u * rescale
      + e0 * vec4<f32>(g[gr.x + cols.x], g[gr.y + cols.x], g[gr.z + cols.x], g[gr.w + cols.x])
      + e1 * vec4<f32>(g[gr.x + cols.y], g[gr.y + cols.y], g[gr.z + cols.y], g[gr.w + cols.y])
      + e2 * vec4<f32>(g[gr.x + cols.z], g[gr.y + cols.z], g[gr.z + cols.z], g[gr.w + cols.z])
      + e3 * vec4<f32>(g[gr.x + cols.w], g[gr.y + cols.w], g[gr.z + cols.w], g[gr.w + cols.w]);`
      : ""
  }
    m = mx;
  }
  for (var i = 0u; i < 4u; i++) {
    if (rows_raw[i] < P.nq) {
      partial[(h * P.nq + rows_raw[i]) * P.col_tiles + wid.x] = vec4<f32>(m[i], l[i], u[i], 0.0);
    }
  }
}
`;
}

/** Merges the per-tile statistics into [heads, nq] × (max, 1/Σexp, Σ p·g, 0). */
export const STATS_COMBINE_WGSL: string = /* wgsl */ `
${ATTENTION_PARAMS_WGSL}
@group(0) @binding(1) var<storage, read> partial: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> stats: array<vec4<f32>>;

@compute @workgroup_size(256)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  let i = (wid.y * nwg.x + wid.x) * 256u + li;
  if (i >= P.heads * P.nq) { return; }
  let base = i * P.col_tiles;
  var m = NEG_BIG;
  for (var t = 0u; t < P.col_tiles; t++) { m = max(m, partial[base + t].x); }
  var l = 0.0;
  var u = 0.0;
  for (var t = 0u; t < P.col_tiles; t++) {
    let p = partial[base + t];
    let w = exp(p.x - m);
    l += p.y * w;
    u += p.z * w;
  }
  stats[i] = vec4<f32>(m, 1.0 / l, u / l, 0.0);
}
`;

/** Adds one tap's share of the mean map into `out` ([H·W, out_cols]). */
export function accumulateWgsl(vec4: boolean): string {
  return /* wgsl */ `
${ATTENTION_PARAMS_WGSL}
${scoreBlockWgsl(vec4)}
@group(0) @binding(3) var<storage, read> stats: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let row0 = wid.y * TILE;
  let col0 = wid.x * TILE;
  let rows_raw = vec4<u32>(row0 + lid.y) + LANES;
  let cols_raw = vec4<u32>(col0 + lid.x) + LANES;
  let rows = min(rows_raw, vec4<u32>(P.nq - 1u));
  let cols = min(cols_raw, vec4<u32>(P.nk - 1u));
  var acc = mat4x4<f32>();
  for (var h = 0u; h < P.heads; h++) {
    let s = score_block(h, rows, cols);
    let sr = vec4<u32>(h * P.nq) + rows;
    let st0 = stats[sr.x];
    let st1 = stats[sr.y];
    let st2 = stats[sr.z];
    let st3 = stats[sr.w];
    let m = vec4<f32>(st0.x, st1.x, st2.x, st3.x);
    let inv = vec4<f32>(st0.y, st1.y, st2.y, st3.y);
    acc[0] += exp(s[0] * P.scale - m) * inv;
    acc[1] += exp(s[1] * P.scale - m) * inv;
    acc[2] += exp(s[2] * P.scale - m) * inv;
    acc[3] += exp(s[3] * P.scale - m) * inv;
  }
  for (var i = 0u; i < 4u; i++) {
    let a = rows_raw[i];
    if (a >= P.nq) { continue; }
    let ay = a / P.lw;
    let ax = a % P.lw;
    for (var j = 0u; j < 4u; j++) {
      let b = cols_raw[j];
      if (b >= P.nk) { continue; }
      let v = acc[j][i] * P.weight;
      let by = b / P.lw;
      let bx = b % P.lw;
      for (var uy = 0u; uy < P.dy; uy++) {
        for (var ux = 0u; ux < P.dx; ux++) {
          let orow = ((ay * P.dy + uy) * P.out_w + ax * P.dx + ux) * P.out_cols;
          if (P.is_self == 0u) {
            out[orow + b] += v;
          } else {
            for (var vy = 0u; vy < P.dy; vy++) {
              let ocol = orow + (by * P.dy + vy) * P.out_w + bx * P.dx;
              for (var vx = 0u; vx < P.dx; vx++) { out[ocol + vx] += v; }
            }
          }
        }
      }
    }
  }
}
`;
}
