/**
 * ISAC Eq. 3, self-to-cross class propagation: `CA_prop = SA · CA`. Each pixel's token scores
 * become the self-attention-weighted average of the scores of the pixels it attends to, which
 * fills in object regions the raw cross map only touches in places.
 *
 * @module
 */
import { AttnkitError } from "../errors.ts";
import { expectFinite, expectShape, tensor } from "../tensor.ts";
import type { Tensor } from "../tensor.ts";

function checkPair(self: Tensor, cross: Tensor): [number, number] {
  expectShape(self, [-1, -1], "self", "[HW, HW]");
  const n = self.shape[0];
  if (self.shape[1] !== n) {
    throw new AttnkitError("self", `expected a square [HW, HW] map, got [${self.shape}]`);
  }
  expectShape(cross, [n, -1], "cross", `[HW, L] with HW = ${n} from self`);
  expectFinite(self, "self");
  expectFinite(cross, "cross");
  return [n, cross.shape[1]];
}

/** `self · cross`: `[HW, HW] × [HW, L] → [HW, L]` (Eq. 3). */
export function propagate(self: Tensor, cross: Tensor): Tensor {
  const [n, l] = checkPair(self, cross);
  const cols = Array.from({ length: l }, (_, j) => j);
  const out = propagateColumns(self.data, cross.data, n, l, cols);
  return tensor([n, l], Float32Array.from(out));
}

/**
 * Selected columns of `self · cross` as a float64 `[n, cols.length]` array (column c of the result
 * is column `cols[c]` of the product). ISAC only needs the target tokens' columns, which saves
 * most of the `n² · L` work at Stable Diffusion scale.
 */
export function propagateColumns(
  self: Float32Array,
  cross: Float32Array,
  n: number,
  l: number,
  cols: readonly number[],
): Float64Array {
  const k = cols.length;
  const out = new Float64Array(n * k);
  // Gather the wanted columns contiguously so the inner loop runs over k values per source pixel.
  const picked = new Float64Array(n * k);
  for (let m = 0; m < n; m++) {
    for (let c = 0; c < k; c++) picked[m * k + c] = cross[m * l + cols[c]];
  }
  for (let i = 0; i < n; i++) {
    const row = i * n;
    const o = i * k;
    for (let m = 0; m < n; m++) {
      const s = self[row + m];
      if (s === 0) continue;
      const p = m * k;
      for (let c = 0; c < k; c++) out[o + c] += s * picked[p + c];
    }
  }
  return out;
}

/**
 * The VJP of {@link propagate} for the cotangent `g` `[HW, L]`:
 * `dself = g · crossᵀ`, `dcross = selfᵀ · g`.
 */
export function propagateBackward(
  self: Tensor,
  cross: Tensor,
  g: Tensor,
): { dself: Tensor; dcross: Tensor } {
  const [n, l] = checkPair(self, cross);
  expectShape(g, [n, l], "g", "[HW, L], the shape of the product");
  const s = self.data;
  const c = cross.data;
  const gd = g.data;
  const dself = new Float32Array(n * n);
  const dcross = new Float64Array(n * l);
  for (let i = 0; i < n; i++) {
    for (let m = 0; m < n; m++) {
      let acc = 0;
      for (let j = 0; j < l; j++) acc += gd[i * l + j] * c[m * l + j];
      dself[i * n + m] = acc;
      const sv = s[i * n + m];
      if (sv === 0) continue;
      for (let j = 0; j < l; j++) dcross[m * l + j] += sv * gd[i * l + j];
    }
  }
  return { dself: tensor([n, n], dself), dcross: tensor([n, l], Float32Array.from(dcross)) };
}
