/**
 * DDIM (Song et al. 2021, eq. 12): x_prev = √ᾱ_prev x̂₀ + √(1 − ᾱ_prev − σ²) ε̂ + σ z with
 * σ = η √((1−ᾱ_prev)/(1−ᾱ)) √(1 − ᾱ/ᾱ_prev). η = 0 is deterministic; η > 0 needs the noise z.
 * The step after the last goes to ᾱ_0 of the training schedule (`setAlphaToOne` false, as
 * Stable Diffusion's config) or to 1. x̂₀ may be clipped or thresholded first (diffusers'
 * `clip_sample`, `thresholding`; see `x0_clip.ts`); ε̂ is not recomputed from the bounded x̂₀, as
 * diffusers' default `use_clipped_model_output = False`.
 *
 * @module
 */
import { AttnkitError } from "../errors.ts";
import { type DiscreteSamplerOptions, discreteSchedule } from "./discrete.ts";
import { expectIn, expectSameLength } from "./latent.ts";
import { type Prediction, x0FromPrediction } from "./prediction.ts";
import { expectStepIndex, type Sampler, timestepsMethod } from "./sampler.ts";
import { boundX0, type X0Bounds } from "./x0_clip.ts";

/** Noise levels and settings of one DDIM step. */
export interface DdimCoefficients extends X0Bounds {
  /** ᾱ at the current timestep. */
  readonly alphaBar: number;
  /** ᾱ at the timestep the step goes to. */
  readonly alphaBarPrev: number;
  /** Stochasticity η ≥ 0 (default 0). */
  readonly eta?: number;
  /** What `modelOut` is (default "epsilon"). */
  readonly prediction?: Prediction;
}

/**
 * One DDIM update; pure: returns a new latent. ᾱ may be 0 (zero terminal SNR) for "v" and
 * "sample" models; an ε-model needs ᾱ > 0.
 *
 * @example
 * ```ts
 * const x = Float32Array.from([1]);
 * ddimStep(x, Float32Array.from([0.5]), { alphaBar: 0.99, alphaBarPrev: 1 }); // x̂₀ = 0.9548…
 * ```
 */
export function ddimStep(
  x: Float32Array,
  modelOut: Float32Array,
  c: DdimCoefficients,
  noise?: Float32Array,
): Float32Array {
  expectSameLength(x, modelOut, "modelOut");
  const a = c.alphaBar, ap = c.alphaBarPrev, eta = c.eta ?? 0;
  const pred = c.prediction ?? "epsilon";
  expectIn(a, pred === "epsilon" ? Number.MIN_VALUE : 0, 1, "alphaBar");
  expectIn(ap, Number.MIN_VALUE, 1, "alphaBarPrev");
  expectIn(eta, 0, Infinity, "eta");
  const sigma = eta * Math.sqrt((1 - ap) / (1 - a)) * Math.sqrt(Math.max(0, 1 - a / ap));
  if (sigma > 0) {
    if (noise === undefined) {
      throw new AttnkitError(
        "noise",
        `DDIM with eta = ${eta} needs a noise tensor of ${x.length} values`,
      );
    }
    expectSameLength(x, noise, "noise");
  }
  const sa = Math.sqrt(a), sb = Math.sqrt(1 - a);
  const sap = Math.sqrt(ap), dir = Math.sqrt(Math.max(0, 1 - ap - sigma * sigma));
  const n = x.length;
  const raw = new Float32Array(n), eps = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const xi = x[i], m = modelOut[i];
    if (pred === "v") {
      raw[i] = sa * xi - sb * m;
      eps[i] = sa * m + sb * xi;
    } else if (pred === "sample") {
      raw[i] = m;
      eps[i] = (xi - sa * m) / sb;
    } else {
      raw[i] = (xi - sb * m) / sa;
      eps[i] = m;
    }
  }
  const x0 = boundX0(raw, c);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    out[i] = sap * x0[i] + dir * eps[i] + (sigma > 0 ? sigma * noise![i] : 0);
  }
  return out;
}

/** Options of {@link ddim}. */
export interface DdimOptions extends DiscreteSamplerOptions, X0Bounds {
  /** Stochasticity η (default 0: deterministic). */
  readonly eta?: number;
  /** Let the last step reach ᾱ = 1 instead of ᾱ_0 (default false, as Stable Diffusion). */
  readonly setAlphaToOne?: boolean;
}

/**
 * A DDIM sampler (Stable Diffusion 1.5's settings by default: 50 steps, "leading" + 1, η = 0).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { samplers } from "@attnkit/attnkit";
 * const sampler = samplers.ddim({ steps: 4 });
 * assert.deepEqual(sampler.timesteps(), [751, 501, 251, 1]); // diffusers' DDIMScheduler, SD 1.5 config
 * assert.equal(sampler.initNoiseSigma, 1);
 * ```
 */
export function ddim(opts: DdimOptions = {}): Sampler {
  const s = discreteSchedule(opts, (table) => (opts.setAlphaToOne ? 1 : table[0]));
  const eta = opts.eta ?? 0;
  expectIn(eta, 0, Infinity, "eta");
  const n = s.timesteps.length;
  return {
    name: "ddim",
    steps: n,
    initNoiseSigma: 1,
    stochastic: eta > 0,
    timesteps: timestepsMethod("ddim", s.timesteps),
    scaleInput(x: Float32Array, i: number): Float32Array {
      expectStepIndex(i, n);
      return x;
    },
    step(x: Float32Array, modelOut: Float32Array, i: number, noise?: Float32Array): Float32Array {
      expectStepIndex(i, n);
      return ddimStep(x, modelOut, {
        alphaBar: s.alphaBar[i],
        alphaBarPrev: s.alphaBarPrev[i],
        eta,
        prediction: s.prediction,
        clipSample: opts.clipSample,
        thresholding: opts.thresholding,
      }, noise);
    },
    predictX0(x: Float32Array, modelOut: Float32Array, i: number): Float32Array {
      expectStepIndex(i, n);
      return x0FromPrediction(x, modelOut, s.alphaBar[i], s.prediction);
    },
  };
}
