/**
 * The cross-attention preprocessing of Attend-and-Excite and the step-selection (GSN) losses:
 * per pixel, a softmax at temperature τ over the text tokens without the start token, then one
 * map per target (a multi-token target is the mean of its tokens' maps, as GSN's
 * `attention_maps_per_position`), then the A&E Gaussian smoothing. Returns the maps and the exact
 * backward to the raw cross map.
 *
 * Which columns enter the softmax: 1 … `last` − 1. The default `last = L` keeps every token after
 * the start token. The SD 1.4 reference code uses `last = L − 1` (all but the final padding
 * column, a quirk); `normalize_eot` (SD 2.1) uses the index of the end token. Pass `last` for
 * either; columns from `last` on get no gradient.
 *
 * @module
 */
import { check } from "../errors.ts";
import { expectFinite, expectShape, tensor } from "../tensor.ts";
import type { Tensor } from "../tensor.ts";
import { tokenSoftmax, tokenSoftmaxBackward } from "../attention/normalise.ts";
import { GAUSSIAN_DEFAULTS, gaussianKernel1d, smooth2d, smooth2dBackward } from "./gaussian.ts";
import type { TokenColumns } from "./types.ts";

/** Options of the token-map preprocessing; defaults are A&E's. */
export interface TokenMapOptions {
  /** Target token columns of the cross map; an array entry is one multi-token target. */
  tokens: readonly TokenColumns[];
  /** Softmax temperature multiplier (default 100, i.e. temperature 1/100). */
  tau?: number;
  /** Exclusive end of the softmax columns (default L; see the module doc). */
  last?: number;
  /** Apply the Gaussian smoothing (default true). */
  smooth?: boolean;
  /** Smoothing kernel size (default 3). */
  kernelSize?: number;
  /** Smoothing σ (default 0.5; the effective std is √2·σ, see gaussian.ts). */
  sigma?: number;
}

/** One map per target and the way back to the cross map. */
export interface TokenMaps {
  /** `maps[e]`: the processed `[H·W]` map of target e. */
  maps: Float64Array[];
  /** Gradient with respect to the raw cross map `[HW, L]`, given cotangents on `maps`. */
  backward(dMaps: readonly (Float64Array | null)[]): Tensor;
}

/** The token columns of each target, checked against `1 … last − 1`. */
export function targetColumns(
  tokens: readonly TokenColumns[],
  last: number,
  argument = "tokens",
): number[][] {
  check(Array.isArray(tokens) && tokens.length > 0, argument, "expected at least one target");
  return tokens.map((t, i) => {
    const cols = typeof t === "number" ? [t] : [...t];
    check(
      cols.length > 0 && cols.every((c) => Number.isInteger(c) && c >= 1 && c < last),
      `${argument}[${i}]`,
      () =>
        `expected token columns in 1 … ${last - 1} (column 0 is the start token), got ${
          JSON.stringify(t)
        }`,
    );
    return cols;
  });
}

/** Checks `[H, W]` and the cross map's shape; returns `[H, W, L]`. */
export function checkCross(
  cross: Tensor,
  size: readonly [number, number],
): [number, number, number] {
  check(
    Array.isArray(size) && size.length === 2 && size.every((v) => Number.isInteger(v) && v > 0),
    "maps.size",
    () => `expected [H, W] of positive integers, got ${JSON.stringify(size)}`,
  );
  expectShape(cross, [size[0] * size[1], -1], "maps.cross", `[HW, L] with [H, W] = [${size}]`);
  expectFinite(cross, "maps.cross");
  return [size[0], size[1], cross.shape[1]];
}

/** A&E's token maps of `cross` `[HW, L]` at spatial size `size`; see the module doc. */
export function tokenMaps(
  cross: Tensor,
  size: readonly [number, number],
  opts: TokenMapOptions,
): TokenMaps {
  const [h, w, l] = checkCross(cross, size);
  const hw = h * w;
  const tau = opts.tau ?? 100;
  check(Number.isFinite(tau) && tau > 0, "tau", `expected a positive number, got ${tau}`);
  const last = opts.last ?? l;
  check(
    Number.isInteger(last) && last >= 2 && last <= l,
    "last",
    `expected an integer in 2 … ${l} (the softmax needs a token after the start token), got ${last}`,
  );
  const groups = targetColumns(opts.tokens, last);
  const doSmooth = opts.smooth ?? true;
  const kernel = doSmooth
    ? gaussianKernel1d(
      opts.kernelSize ?? GAUSSIAN_DEFAULTS.size,
      opts.sigma ?? GAUSSIAN_DEFAULTS.sigma,
    )
    : null;
  // The softmax runs on the columns 0 … last − 1 (column 0 is dropped inside tokenSoftmax).
  const sliced = last === l ? cross : sliceColumns(cross, hw, l, last);
  const soft = tokenSoftmax(sliced, tau).data;
  const maps = groups.map((cols) => {
    const m = new Float64Array(hw);
    for (let p = 0; p < hw; p++) {
      let s = 0;
      for (const c of cols) s += soft[p * last + c];
      m[p] = s / cols.length;
    }
    return kernel ? smooth2d(m, h, w, kernel) : m;
  });
  return {
    maps,
    backward(dMaps) {
      check(
        dMaps.length === groups.length,
        "dMaps",
        `expected ${groups.length} cotangents, got ${dMaps.length}`,
      );
      const dSoft = new Float32Array(hw * last);
      let any = false;
      dMaps.forEach((g, e) => {
        if (!g) return;
        any = true;
        const dm = kernel ? smooth2dBackward(g, h, w, kernel) : g;
        const cols = groups[e];
        const share = 1 / cols.length;
        for (let p = 0; p < hw; p++) {
          for (const c of cols) dSoft[p * last + c] += dm[p] * share;
        }
      });
      const out = new Float32Array(hw * l);
      if (!any) return tensor([hw, l], out);
      const dSliced = tokenSoftmaxBackward(sliced, tensor([hw, last], dSoft), tau).data;
      for (let p = 0; p < hw; p++) {
        for (let c = 0; c < last; c++) out[p * l + c] = dSliced[p * last + c];
      }
      return tensor([hw, l], out);
    },
  };
}

function sliceColumns(t: Tensor, rows: number, cols: number, keep: number): Tensor {
  const out = new Float32Array(rows * keep);
  for (let r = 0; r < rows; r++) out.set(t.data.subarray(r * cols, r * cols + keep), r * keep);
  return tensor([rows, keep], out);
}
