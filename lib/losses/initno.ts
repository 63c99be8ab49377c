/**
 * InitNO's attention losses (Guo et al., "InitNO: Boosting Text-to-Image Diffusion Models via
 * Initial Noise Optimization", CVPR 2024; reference code `xiefan-guo/initno@fa021c4`,
 * `pipeline_sd_initno.py` `fn_compute_loss` / `fn_augmented_compute_losss` /
 * `fn_calc_kld_loss_func`, `utils/attn_utils.py`; methods spec §2), with exact gradients with
 * respect to the accumulated maps:
 *
 * - **cross-attention response** `L_ca = max_s max(0, 1 − M_s[p_s])`: `M_s` the A&E map of target
 *   s (token softmax at τ = 100 over columns 1 … last − 1, then the 3×3 Gaussian smoothing),
 *   `p_s = argmax M_s` (detached; top-K with K = 1).
 * - **self-attention conflict** `L_sa = mean_{i<j} Σ min(S_i, S_j) / (Σ (S_i + S_j) + 1e-6)`:
 *   `S_s` the smoothed self-attention row of pixel `p_s` (a map over the key pixels).
 * - **clean** `L_clean = Σ_s [max bg_s > min fg_s] · max bg_s`: an Otsu threshold on M_s (as
 *   OpenCV computes it on `uint16(255·M_s)`), the 4-connected component of the mask holding
 *   `p_s`, `bg_s = M_s` outside it (0 inside), `fg_s = M_s` inside it (1 outside). The mask is a
 *   constant of the step, as in the reference (computed on detached values).
 * - **alignment** (denoising only) `L_align = Σ_s mean_p |smooth(C'_s) − smooth(C̄_s)|` against
 *   an exponential moving average `C̄ ← 0.9·C̄ + 0.1·C'` of the unsmoothed token-softmax maps
 *   (detached; the first call starts it at C'). The cache goes in and the updated one comes out,
 *   so the function stays pure.
 *
 * Two weightings from the code: {@link INITNO_NOISE_WEIGHTS} for the initial-noise optimisation
 * (`fn_compute_loss`: L_ca + L_sa + L_clean, and L_sa := 0 when L_ca > 0.5) and
 * {@link INITNO_JOINT_WEIGHTS} for the refinement during denoising (`fn_augmented_compute_losss`:
 * L_ca + 0.1·L_clean + 0.1·L_align + L_sa, no gating).
 *
 * Ties take torch's subgradients: `torch.min(a, b)` sends half the gradient to each argument where
 * a = b (two targets peaking at the same pixel give identical S rows); `max` goes to the first
 * maximum. Multi-token targets average their token maps (as the A&E loss here); the reference
 * takes single token indices.
 *
 * Departure: maps are at the A&E resolution of the model (16×16 on SD 1.x at 512², the embedded
 * model's own 16×16 layers; lib/losses/resolution.ts), so `S` rows are `H·W` long.
 *
 * @module
 */
import { check } from "../errors.ts";
import { type Tensor, tensor } from "../tensor.ts";
import type { AttentionMaps } from "../attention/types.ts";
import { argMax } from "./attend_excite.ts";
import { GAUSSIAN_DEFAULTS, gaussianKernel1d, smooth2d, smooth2dBackward } from "./gaussian.ts";
import { type TokenMapOptions, tokenMaps } from "./token_maps.ts";
import type { MapsLossResult } from "./types.ts";

/** Weights of InitNO's four terms. */
export interface InitNoWeights {
  /** Cross-attention response L_ca. */
  readonly crossAttn: number;
  /** Self-attention conflict L_sa. */
  readonly selfAttn: number;
  /** Clean cross-attention L_clean. */
  readonly clean: number;
  /** Alignment with the moving average L_align. */
  readonly align: number;
}

/**
 * `fn_compute_loss`: the initial-noise objective L_ca + L_sa + L_clean.
 *
 * @example
 * ```ts
 * import { INITNO_NOISE_WEIGHTS, initNoLoss } from "@attnkit/attnkit";
 * declare const maps: import("@attnkit/attnkit").AttentionMaps;
 * const r = initNoLoss(maps, { tokens: [5, 9], weights: INITNO_NOISE_WEIGHTS, gateSelfAbove: 0.5 });
 * ```
 */
export const INITNO_NOISE_WEIGHTS: InitNoWeights = {
  crossAttn: 1,
  selfAttn: 1,
  clean: 1,
  align: 0,
};

/**
 * `fn_augmented_compute_losss`: L_ca + L_sa + 0.1·L_clean + 0.1·L_align (refinement).
 *
 * @example
 * ```ts
 * import { INITNO_JOINT_WEIGHTS, initNoLoss } from "@attnkit/attnkit";
 * declare const maps: import("@attnkit/attnkit").AttentionMaps;
 * const first = initNoLoss(maps, { tokens: [5, 9], weights: INITNO_JOINT_WEIGHTS });
 * // The next evaluation carries the moving average of the maps along.
 * const next = initNoLoss(maps, { tokens: [5, 9], weights: INITNO_JOINT_WEIGHTS, cache: first.cache });
 * ```
 */
export const INITNO_JOINT_WEIGHTS: InitNoWeights = {
  crossAttn: 1,
  selfAttn: 1,
  clean: 0.1,
  align: 0.1,
};

/** Options of {@link initNoLoss}; token-map defaults are A&E's except `last` (see below). */
export interface InitNoLossOptions extends TokenMapOptions {
  /** Term weights (default {@link INITNO_NOISE_WEIGHTS}). */
  weights?: InitNoWeights;
  /**
   * L_sa is set to 0 (value and gradient) when L_ca exceeds this (default: never). The noise
   * objective uses 0.5 (`if cross_attn_loss > 0.5: self_attn_loss = 0`).
   */
  gateSelfAbove?: number;
  /** The moving-average cache before this call, one unsmoothed map per target (default: none). */
  cache?: readonly Float64Array[];
  /** The cache's decay α in C̄ ← α·C̄ + (1 − α)·C' (default 0.9). */
  cacheDecay?: number;
}

/** The four unweighted terms. */
export interface InitNoTerms {
  /** L_ca. */
  crossAttn: number;
  /** L_sa (0 when gated). */
  selfAttn: number;
  /** L_clean. */
  clean: number;
  /** L_align. */
  align: number;
  /** Index signature so the terms are checked for NaN by `latentGrad`. */
  [name: string]: number;
}

/** The loss with what it looked at. */
export interface InitNoResult extends MapsLossResult {
  /** Unweighted terms. */
  terms: InitNoTerms;
  /** `M_s[p_s]` per target. */
  peaks: number[];
  /** `p_s` per target (row-major in `maps.size`). */
  pixels: number[];
  /** The component masks of the clean term, one `[H·W]` 0/1 array per target. */
  masks: Uint8Array[];
  /** The updated moving-average cache (pass it to the next call). */
  cache: Float64Array[];
}

/**
 * Otsu's threshold exactly as OpenCV's `threshold(…, THRESH_OTSU)` returns it for InitNO's input:
 * the histogram of `floor(255·x)` (values cast to uint16, so negatives are not expected), the
 * first bin index maximising the between-class variance q1·q2·(μ1 − μ2)², skipping splits with a
 * class weight under FLT_EPSILON. Returns the threshold in bin units (compare `x ≥ t / 255`).
 *
 * @example
 * ```ts
 * import { otsuThreshold } from "@attnkit/attnkit";
 * otsuThreshold([0.1, 0.1, 0.1, 0.9, 0.9, 0.9]); // 25: the dark cluster's bin, floor(0.1·255)
 * ```
 */
export function otsuThreshold(values: ArrayLike<number>): number {
  check(values.length > 0, "values", "expected at least one value");
  const bins = Array.from(values, (v) => Math.min(65535, Math.max(0, Math.trunc(v * 255))));
  const n = Math.max(...bins) + 1;
  const hist = new Float64Array(n);
  for (const b of bins) hist[b]++;
  const scale = 1 / values.length;
  let mu = 0;
  for (let i = 0; i < n; i++) mu += i * hist[i];
  mu *= scale;
  const fltEps = 1.1920928955078125e-7;
  let mu1 = 0, q1 = 0, maxSigma = 0, maxVal = 0;
  for (let i = 0; i < n; i++) {
    const p = hist[i] * scale;
    mu1 *= q1;
    q1 += p;
    const q2 = 1 - q1;
    if (Math.min(q1, q2) < fltEps || Math.max(q1, q2) > 1 - fltEps) continue;
    mu1 = (mu1 + i * p) / q1;
    const mu2 = (mu - q1 * mu1) / q2;
    const sigma = q1 * q2 * (mu1 - mu2) * (mu1 - mu2);
    if (sigma > maxSigma) {
      maxSigma = sigma;
      maxVal = i;
    }
  }
  return maxVal;
}

/**
 * InitNO's clean mask of a `[h, w]` map: pixels with `x ≥ t/255` (`t` the Otsu threshold), kept
 * only in the 4-connected component that holds `pixel` (`fn_get_otsu_mask`, `fn_clean_mask`).
 * Note the reference's comparison: pixels in the threshold's own bin count as foreground.
 *
 * @example
 * ```ts
 * import { cleanMask } from "@attnkit/attnkit";
 * // 2×3: the peak's blob is kept with the faint 0.02 below it (0.02 falls in the threshold's own
 * // bin, 5, so it counts as foreground); the bright pixel at the right is not connected.
 * cleanMask([0.9, 0.8, 0, 0.02, 0, 0.7], 2, 3, 0); // [1, 1, 0, 1, 0, 0]
 * ```
 */
export function cleanMask(map: ArrayLike<number>, h: number, w: number, pixel: number): Uint8Array {
  check(map.length === h * w, "map", `expected ${h}×${w} values, got ${map.length}`);
  const t = otsuThreshold(map) / 255;
  const out = new Uint8Array(h * w);
  const on = (p: number) => map[p] >= t;
  if (!on(pixel)) return out;
  const stack = [pixel];
  out[pixel] = 1;
  while (stack.length > 0) {
    const p = stack.pop()!;
    const y = Math.floor(p / w), x = p % w;
    for (const [dy, dx] of [[0, 1], [0, -1], [1, 0], [-1, 0]]) {
      const yy = y + dy, xx = x + dx;
      if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
      const q = yy * w + xx;
      if (!out[q] && on(q)) {
        out[q] = 1;
        stack.push(q);
      }
    }
  }
  return out;
}

function checkWeights(w: InitNoWeights): void {
  for (const k of ["crossAttn", "selfAttn", "clean", "align"] as const) {
    check(Number.isFinite(w[k]), `weights.${k}`, `expected a finite number, got ${w[k]}`);
  }
}

/**
 * InitNO's loss on one item's accumulated maps and its gradient with respect to `maps.cross` and
 * `maps.self` (see the module doc). `maps.cross` is `[H·W, L]`, `maps.self` `[H·W, H·W]` (needed
 * with two or more targets); the gradient has the same shapes. Throws an AttnkitError naming the
 * argument for bad tokens, sizes, weights or a cache of the wrong shape.
 *
 * @example
 * ```ts
 * import { initNoLoss } from "@attnkit/attnkit";
 * declare const maps: import("@attnkit/attnkit").AttentionMaps;
 * const r = initNoLoss(maps, { tokens: [5, 9], last: maps.cross.shape[1] - 1 });
 * r.terms.crossAttn; // L_ca: 1 − the weaker target's peak
 * r.grad.cross; // d L / d maps.cross, [H·W, L]
 * ```
 */
export function initNoLoss(maps: AttentionMaps, opts: InitNoLossOptions): InitNoResult {
  const weights = opts.weights ?? INITNO_NOISE_WEIGHTS;
  checkWeights(weights);
  const [h, w] = maps.size;
  const hw = h * w;
  const raw = tokenMaps(maps.cross, maps.size, { ...opts, smooth: false });
  const doSmooth = opts.smooth ?? true;
  const kernel = gaussianKernel1d(
    opts.kernelSize ?? GAUSSIAN_DEFAULTS.size,
    opts.sigma ?? GAUSSIAN_DEFAULTS.sigma,
  );
  const sm = (
    m: ArrayLike<number>,
  ) => (doSmooth ? smooth2d(m, h, w, kernel) : Float64Array.from(m));
  const smBack = (g: Float64Array) => (doSmooth ? smooth2dBackward(g, h, w, kernel) : g);
  const k = raw.maps.length;
  const M = raw.maps.map(sm);
  const dM = M.map(() => new Float64Array(hw));

  // L_ca: the worst target's peak.
  const pixels: number[] = [];
  const peaks: number[] = [];
  for (const m of M) {
    const { index, value } = argMax(m);
    pixels.push(index);
    peaks.push(value);
  }
  const perToken = peaks.map((p) => Math.max(0, 1 - p));
  const worst = argMax(perToken).index;
  const ca = perToken[worst];

  // L_sa: overlap of the smoothed self-attention rows at the peaks.
  const hasSelf = maps.self.shape.length === 2 && maps.self.shape[1] === hw &&
    maps.self.shape[0] === hw;
  const needSelf = k > 1;
  check(
    !needSelf || hasSelf,
    "maps.self",
    () =>
      `expected a [${hw}, ${hw}] self map for the self-attention term, got [${maps.self.shape}]`,
  );
  const S = needSelf ? pixels.map((p) => sm(maps.self.data.subarray(p * hw, (p + 1) * hw))) : [];
  const dS = S.map(() => new Float64Array(hw));
  let sa = 0;
  let pairs = 0;
  const pairTerms: { i: number; j: number; num: number; den: number }[] = [];
  for (let i = 0; i < S.length; i++) {
    for (let j = i + 1; j < S.length; j++) {
      let num = 0, den = 0;
      for (let p = 0; p < hw; p++) {
        num += Math.min(S[i][p], S[j][p]);
        den += S[i][p] + S[j][p];
      }
      den += 1e-6;
      sa += num / den;
      pairs++;
      pairTerms.push({ i, j, num, den });
    }
  }
  if (pairs > 0) sa /= pairs;
  const gated = opts.gateSelfAbove !== undefined && ca > opts.gateSelfAbove;
  if (gated) sa = 0;

  // L_clean: background above the component's weakest pixel.
  const masks = M.map((m, s) => cleanMask(m, h, w, pixels[s]));
  let clean = 0;
  const cleanPix: (number | null)[] = [];
  M.forEach((m, s) => {
    let bgMax = -Infinity, bgAt = 0, fgMin = Infinity;
    for (let p = 0; p < hw; p++) {
      const bg = masks[s][p] ? 0 : m[p];
      const fg = masks[s][p] ? m[p] : 1;
      if (bg > bgMax) {
        bgMax = bg;
        bgAt = p;
      }
      if (fg < fgMin) fgMin = fg;
    }
    if (bgMax > fgMin) {
      clean += bgMax;
      // A masked pixel's bg is the constant 0: no gradient.
      cleanPix.push(masks[s][bgAt] ? null : bgAt);
    } else cleanPix.push(null);
  });

  // L_align: against the updated moving average of the unsmoothed maps.
  const decay = opts.cacheDecay ?? 0.9;
  check(Number.isFinite(decay) && decay >= 0 && decay <= 1, "cacheDecay", `got ${decay}`);
  if (opts.cache !== undefined) {
    check(
      opts.cache.length === k && opts.cache.every((c) => c.length === hw),
      "cache",
      () => `expected ${k} maps of ${hw} values (one per target)`,
    );
  }
  const cache = raw.maps.map((m, s) => {
    if (opts.cache === undefined) return Float64Array.from(m);
    const old = opts.cache[s];
    return old.map((v, p) => decay * v + (1 - decay) * m[p]);
  });
  let align = 0;
  const alignSign = M.map((m, s) => {
    const c = sm(cache[s]);
    const sign = new Float64Array(hw);
    let sum = 0;
    for (let p = 0; p < hw; p++) {
      const d = m[p] - c[p];
      sum += Math.abs(d);
      sign[p] = Math.sign(d);
    }
    align += sum / hw;
    return sign;
  });

  const terms: InitNoTerms = { crossAttn: ca, selfAttn: sa, clean, align };
  const value = weights.crossAttn * ca + weights.selfAttn * sa + weights.clean * clean +
    weights.align * align;

  // Backward.
  if (ca > 0 && weights.crossAttn !== 0) dM[worst][pixels[worst]] -= weights.crossAttn;
  if (weights.clean !== 0) {
    cleanPix.forEach((p, s) => {
      if (p !== null) dM[s][p] += weights.clean;
    });
  }
  if (weights.align !== 0) {
    alignSign.forEach((sign, s) => {
      for (let p = 0; p < hw; p++) dM[s][p] += (weights.align * sign[p]) / hw;
    });
  }
  let selfGrad: Tensor | undefined;
  if (!gated && pairs > 0 && weights.selfAttn !== 0) {
    const scale = weights.selfAttn / pairs;
    for (const { i, j, num, den } of pairTerms) {
      // d(num/den): min's subgradient (halved on ties, as torch) over den, minus num/den² per entry.
      for (let p = 0; p < hw; p++) {
        const a = S[i][p], b = S[j][p];
        const da = a < b ? 1 : a === b ? 0.5 : 0;
        dS[i][p] += scale * (da / den - num / (den * den));
        dS[j][p] += scale * ((1 - da) / den - num / (den * den));
      }
    }
    const g = new Float32Array(hw * hw);
    pixels.forEach((p, s) => {
      const back = smBack(dS[s]);
      for (let q = 0; q < hw; q++) g[p * hw + q] += back[q];
    });
    selfGrad = tensor([hw, hw], g);
  }
  const any = dM.some((d) => d.some((v) => v !== 0));
  const cross = any ? raw.backward(dM.map(smBack)) : tensor(maps.cross.shape);
  return {
    value,
    grad: selfGrad ? { cross, self: selfGrad } : { cross },
    terms,
    peaks,
    pixels,
    masks,
    cache,
  };
}

/** InitNO's KL regulariser on the noise's mean and log-variance, with its gradients. */
export interface InitNoKl {
  /** `−½·mean(1 + logσ² − μ² − exp(logσ²))`. */
  value: number;
  /** d value / d logσ². */
  dLogVar: Float32Array;
  /** d value / d μ. */
  dMu: Float32Array;
}

/**
 * `fn_calc_kld_loss_func`: KL(N(μ, σ²) ‖ N(0, 1)) per element, averaged over the elements
 * (the reference's outer mean over a scalar is the identity). `logVar` and `mu` have the noise's
 * element count; the gradients too.
 *
 * @example
 * ```ts
 * import { initNoKl } from "@attnkit/attnkit";
 * initNoKl([0, 0], [0, 0]).value; // 0: N(0, 1) is the prior
 * initNoKl([0], [0.1]).value; // 0.005 = ½·μ²
 * ```
 */
export function initNoKl(logVar: ArrayLike<number>, mu: ArrayLike<number>): InitNoKl {
  check(
    logVar.length === mu.length && mu.length > 0,
    "mu",
    `expected ${logVar.length} values like logVar, got ${mu.length}`,
  );
  const n = mu.length;
  let s = 0;
  const dLogVar = new Float32Array(n);
  const dMu = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const e = Math.exp(logVar[i]);
    s += 1 + logVar[i] - mu[i] * mu[i] - e;
    dLogVar[i] = (-0.5 * (1 - e)) / n;
    dMu[i] = mu[i] / n;
  }
  return { value: (-0.5 * s) / n, dLogVar, dMu };
}
