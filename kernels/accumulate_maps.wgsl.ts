/**
 * WGSL for Eq. 1–2 of ISAC: the head- and layer-mean of softmax(q·kᵀ/√d), nearest-upsampled to
 * the largest map size, accumulated into one resident output buffer without materialising any
 * per-head map. Two passes per tap:
 *
 * 1. `rowStatsWgsl` — per (head, row) the softmax max and 1/Σexp, by an online softmax over
 *    64-column tiles (optionally also Σ p·g for the backward pass, rescaled the same way);
 * 2. `ACCUMULATE_WGSL` — per 64×64 tile, Σ_heads p (recomputing scores), scaled by
 *    1/(total heads · δ²) for self maps (so upsampled rows still sum to 1) or 1/(total heads)
 *    for cross maps, added into every upsampled output position of the tile's (row, column)
 *    pairs. Within one tap each output position has exactly one source pair, so plain
 *    read-add-write is race free; taps run as successive dispatches.
 *
 * Stats layout: [heads, nq, 4] = (row max, 1/row sum, row Σ p·g, unused).
 *
 * @module
 */
import { SCORES_TILE_WGSL } from "./scores_tile.wgsl.ts";

/** WGSL declaration of the uniform block every attention kernel reads (16 u32 words). */
export const ATTENTION_PARAMS_WGSL: string = /* wgsl */ `
struct Params {
  nq: u32, nk: u32, d: u32, heads: u32,
  scale: f32, weight: f32, lh: u32, lw: u32,
  dy: u32, dx: u32, out_h: u32, out_w: u32,
  out_cols: u32, is_self: u32, head0: u32, pad0: u32,
}
@group(0) @binding(0) var<uniform> P: Params;
`;

/**
 * Row statistics pass; with `withGrad` it also reads the pooled map gradient `g` [nq, nk] and
 * stores Σ_b p[a,b]·g[a,b] per row (the softmax backward's row term).
 */
export function rowStatsWgsl(withGrad: boolean): string {
  return /* wgsl */ `
${ATTENTION_PARAMS_WGSL}
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read_write> stats: array<f32>;
${withGrad ? "@group(0) @binding(4) var<storage, read> g: array<f32>;" : ""}
${SCORES_TILE_WGSL}
var<workgroup> red_m: array<f32, 1024>; // [TILE rows][16 column lanes]
var<workgroup> red_l: array<f32, 1024>;
var<workgroup> red_u: array<f32, 1024>;

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let h = wid.y;
  let row0 = wid.x * TILE;
  let tx = lid.x;
  let ty = lid.y;
  var m: array<f32, 4>;
  var l: array<f32, 4>;
  var u: array<f32, 4>;
  for (var i = 0u; i < 4u; i++) { m[i] = NEG_BIG; }
  let tiles = (P.nk + TILE - 1u) / TILE;
  for (var ct = 0u; ct < tiles; ct++) {
    let col0 = ct * TILE;
    let s = score_tile(h * P.nq * P.d, h * P.nk * P.d, row0, col0, tx, ty);
    for (var i = 0u; i < 4u; i++) {
      var tmax = NEG_BIG;
      for (var j = 0u; j < 4u; j++) {
        if (col0 + tx + 16u * j < P.nk) { tmax = max(tmax, s[i * 4u + j] * P.scale); }
      }
      let m_new = max(m[i], tmax);
      let rescale = exp(m[i] - m_new);
      var sum = l[i] * rescale;
      var dot = u[i] * rescale;
      let row = min(row0 + ty + 16u * i, P.nq - 1u);
      for (var j = 0u; j < 4u; j++) {
        let col = col0 + tx + 16u * j;
        if (col < P.nk) {
          let e = exp(s[i * 4u + j] * P.scale - m_new);
          sum += e;
          ${withGrad ? "dot += e * g[row * P.nk + col];" : "_ = row;"}
        }
      }
      m[i] = m_new;
      l[i] = sum;
      u[i] = dot;
    }
  }
  for (var i = 0u; i < 4u; i++) {
    let slot = (ty + 16u * i) * 16u + tx;
    red_m[slot] = m[i];
    red_l[slot] = l[i];
    red_u[slot] = u[i];
  }
  workgroupBarrier();
  if (tx == 0u) {
    for (var i = 0u; i < 4u; i++) {
      let r = ty + 16u * i;
      var mm = NEG_BIG;
      for (var c = 0u; c < 16u; c++) { mm = max(mm, red_m[r * 16u + c]); }
      var ll = 0.0;
      var uu = 0.0;
      for (var c = 0u; c < 16u; c++) {
        let w = exp(red_m[r * 16u + c] - mm);
        ll += red_l[r * 16u + c] * w;
        uu += red_u[r * 16u + c] * w;
      }
      if (row0 + r < P.nq) {
        let o = (h * P.nq + row0 + r) * 4u;
        stats[o] = mm;
        stats[o + 1u] = 1.0 / ll;
        stats[o + 2u] = uu / ll;
        stats[o + 3u] = 0.0;
      }
    }
  }
}
`;
}

/** Accumulation pass: adds this tap's share of the mean map into `out` ([H·W, out_cols]). */
export const ACCUMULATE_WGSL: string = /* wgsl */ `
${ATTENTION_PARAMS_WGSL}
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> stats: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
${SCORES_TILE_WGSL}

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let row0 = wid.y * TILE;
  let col0 = wid.x * TILE;
  let tx = lid.x;
  let ty = lid.y;
  var acc: array<f32, 16>;
  for (var h = 0u; h < P.heads; h++) {
    let s = score_tile(h * P.nq * P.d, h * P.nk * P.d, row0, col0, tx, ty);
    for (var i = 0u; i < 4u; i++) {
      let row = min(row0 + ty + 16u * i, P.nq - 1u);
      let o = (h * P.nq + row) * 4u;
      let mx = stats[o];
      let inv = stats[o + 1u];
      for (var j = 0u; j < 4u; j++) {
        acc[i * 4u + j] += exp(s[i * 4u + j] * P.scale - mx) * inv;
      }
    }
  }
  for (var i = 0u; i < 4u; i++) {
    let a = row0 + ty + 16u * i;
    if (a >= P.nq) { continue; }
    let ay = a / P.lw;
    let ax = a % P.lw;
    for (var j = 0u; j < 4u; j++) {
      let b = col0 + tx + 16u * j;
      if (b >= P.nk) { continue; }
      let v = acc[i * 4u + j] * P.weight;
      let by = b / P.lw;
      let bx = b % P.lw;
      for (var uy = 0u; uy < P.dy; uy++) {
        for (var ux = 0u; ux < P.dx; ux++) {
          let orow = (ay * P.dy + uy) * P.out_w + ax * P.dx + ux;
          if (P.is_self == 0u) {
            out[orow * P.out_cols + b] += v;
          } else {
            for (var vy = 0u; vy < P.dy; vy++) {
              for (var vx = 0u; vx < P.dx; vx++) {
                let ocol = (by * P.dy + vy) * P.out_w + bx * P.dx + vx;
                out[orow * P.out_cols + ocol] += v;
              }
            }
          }
        }
      }
    }
  }
}
`;
