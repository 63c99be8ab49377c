/**
 * WGSL for ISAC Eq. 4, column-wise adaptive binarisation `1[m[i, j] > mean_i m[i, j]]`:
 * `COLUMN_MEANS_WGSL` (one workgroup per column: a strided sum then a tree reduction; values
 * are summed relative to the column's first entry, which keeps f32 sums of near-constant
 * columns exact, so a constant column compares equal to its mean and gives all zeros like the
 * float64 reference), then `BINARISE_WGSL`, which packs four 0/1 bytes per u32 so the
 * read-back is already the row-major `Uint8Array`.
 *
 * @module
 */
import { treeLevels } from "./reduce.wgsl.ts";

const HEADER = /* wgsl */ `
struct Params { rows: u32, cols: u32, words: u32, pad0: u32 }
@group(0) @binding(0) var<uniform> P: Params;
`;

/** Column means of a `[rows, cols]` map; bindings: params, m, means. */
export const COLUMN_MEANS_WGSL: string = /* wgsl */ `
${HEADER}
@group(0) @binding(1) var<storage, read> m: array<f32>;
@group(0) @binding(2) var<storage, read_write> means: array<f32>;
var<workgroup> part: array<f32, 256>;

@compute @workgroup_size(256)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  let j = min(wid.y * nwg.x + wid.x, P.cols - 1u);
  let first = m[j];
  var acc = 0.0;
  for (var i = li; i < P.rows; i += 256u) { acc += m[i * P.cols + j] - first; }
  part[li] = acc;
  workgroupBarrier();
${treeLevels((s) => `part[li] += part[li + ${s}];`)}
  if (li == 0u && wid.y * nwg.x + wid.x < P.cols) { means[j] = first + part[0] / f32(P.rows); }
}
`;

/** Packed `m[i, j] > means[j]` bytes; bindings: params, m, means, packed words. */
export const BINARISE_WGSL: string = /* wgsl */ `
${HEADER}
@group(0) @binding(1) var<storage, read> m: array<f32>;
@group(0) @binding(2) var<storage, read> means: array<f32>;
@group(0) @binding(3) var<storage, read_write> bits: array<u32>;

@compute @workgroup_size(256)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  let w = (wid.y * nwg.x + wid.x) * 256u + li;
  if (w >= P.words) { return; }
  let n = P.rows * P.cols;
  var word = 0u;
  for (var e = 0u; e < 4u; e++) {
    let i = w * 4u + e;
    if (i < n && m[i] > means[i % P.cols]) { word = word | (1u << (8u * e)); }
  }
  bits[w] = word;
}
`;
