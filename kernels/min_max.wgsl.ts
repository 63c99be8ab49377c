/**
 * WGSL for ISAC's Eq. 13 min-max normalisation over a whole tensor, as three dispatches:
 * `MIN_MAX_PARTIAL_WGSL` (each workgroup folds a grid-strided share of the elements and
 * tree-reduces it in workgroup memory), `MIN_MAX_FINAL_WGSL` (one workgroup reduces the
 * partials), `MIN_MAX_APPLY_WGSL` (`(x − min) / (max − min)`, or 0 everywhere for a constant
 * tensor, like the CPU reference).
 *
 * @module
 */
import { treeLevels } from "./reduce.wgsl.ts";

const HEADER = /* wgsl */ `
struct Params { n: u32, groups: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> P: Params;
`;

const TREE = /* wgsl */ `
  lo[li] = acc_lo;
  hi[li] = acc_hi;
  workgroupBarrier();
${treeLevels((s) => `lo[li] = min(lo[li], lo[li + ${s}]); hi[li] = max(hi[li], hi[li + ${s}]);`)}
`;

/** Per-workgroup (min, max) of a grid-strided share of `x`; bindings: params, x, partials. */
export const MIN_MAX_PARTIAL_WGSL: string = /* wgsl */ `
${HEADER}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> partial: array<vec2<f32>>;
var<workgroup> lo: array<f32, 256>;
var<workgroup> hi: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  var acc_lo = 3.4e38;
  var acc_hi = -3.4e38;
  for (var i = wid.x * 256u + li; i < P.n; i += P.groups * 256u) {
    acc_lo = min(acc_lo, x[i]);
    acc_hi = max(acc_hi, x[i]);
  }
${TREE}
  if (li == 0u) { partial[wid.x] = vec2<f32>(lo[0], hi[0]); }
}
`;

/** (min, max) of the partials, by one workgroup; bindings: params, partials, result. */
export const MIN_MAX_FINAL_WGSL: string = /* wgsl */ `
${HEADER}
@group(0) @binding(1) var<storage, read> partial: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read_write> result: array<vec2<f32>>;
var<workgroup> lo: array<f32, 256>;
var<workgroup> hi: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) li: u32) {
  var acc_lo = 3.4e38;
  var acc_hi = -3.4e38;
  for (var i = li; i < P.groups; i += 256u) {
    acc_lo = min(acc_lo, partial[i].x);
    acc_hi = max(acc_hi, partial[i].y);
  }
${TREE}
  if (li == 0u) { result[0] = vec2<f32>(lo[0], hi[0]); }
}
`;

/** `(x − min) / (max − min)` (0 when max = min); bindings: params, x, (min, max), out. */
export const MIN_MAX_APPLY_WGSL: string = /* wgsl */ `
${HEADER}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> range: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let r = range[0];
  let span = r.y - r.x;
  for (var i = wid.x * 256u + li; i < P.n; i += P.groups * 256u) {
    out[i] = select(0.0, (x[i] - r.x) / span, span > 0.0);
  }
}
`;
