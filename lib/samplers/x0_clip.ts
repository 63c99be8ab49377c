/**
 * What DDPM and DDIM may do to x̂₀ before using it: clip it to [−r, r] (diffusers' `clip_sample`,
 * `clip_sample_range`), or dynamic thresholding (Saharia et al. 2022, Imagen §2.3; diffusers'
 * `thresholding`): per batch item, s = the `ratio` quantile of |x̂₀| clamped to [1, maxValue],
 * then x̂₀ ← clamp(x̂₀, −s, s) / s. Thresholding wins when both are set, as in diffusers.
 *
 * @module
 */
import { check } from "../errors.ts";

/** Dynamic-thresholding settings (diffusers' `dynamic_thresholding_ratio`, `sample_max_value`). */
export interface Thresholding {
  /** Quantile of |x̂₀| taken per item, in [0, 1] (diffusers' default 0.995). */
  readonly ratio: number;
  /** Upper bound on the threshold s (diffusers' `sample_max_value`, default 1). */
  readonly maxValue: number;
  /** Values per batch item (C·h·w); default: the whole latent is one item. */
  readonly itemSize?: number;
}

/** How x̂₀ is bounded before a DDPM/DDIM step; `{}` leaves it alone. */
export interface X0Bounds {
  /** Clip x̂₀ to [−clipSample, clipSample]. */
  readonly clipSample?: number;
  /** Dynamic thresholding (takes precedence over `clipSample`). */
  readonly thresholding?: Thresholding;
}

/** The q-quantile of `values` with linear interpolation (torch.quantile's default). */
function quantile(values: Float64Array, q: number): number {
  const sorted = values.slice().sort();
  const pos = q * (sorted.length - 1);
  const lo = Math.floor(pos), hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/**
 * x̂₀ bounded as `b` says; returns `x0` itself when `b` asks for nothing, else a new array.
 *
 * @example
 * ```ts
 * boundX0(Float32Array.from([2, -3, 0.5]), { clipSample: 1 }); // [1, -1, 0.5]
 * ```
 */
export function boundX0(x0: Float32Array, b: X0Bounds): Float32Array {
  const t = b.thresholding;
  if (t) {
    const size = t.itemSize ?? x0.length;
    check(
      Number.isInteger(size) && size >= 1 && x0.length % size === 0,
      "itemSize",
      `thresholding needs the latent (${x0.length} values) to be whole items of itemSize, got ${size}`,
    );
    const out = new Float32Array(x0.length);
    for (let start = 0; start < x0.length; start += size) {
      const item = x0.subarray(start, start + size);
      const abs = Float64Array.from(item, Math.abs);
      const s = Math.min(Math.max(quantile(abs, t.ratio), 1), t.maxValue);
      for (let i = 0; i < size; i++) out[start + i] = Math.min(s, Math.max(-s, item[i])) / s;
    }
    return out;
  }
  const r = b.clipSample;
  if (r === undefined) return x0;
  return x0.map((v) => Math.min(r, Math.max(-r, v)));
}
