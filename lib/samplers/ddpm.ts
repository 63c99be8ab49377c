/**
 * Ancestral DDPM sampling (Ho et al. 2020, eq. 6–7) on an n-step subsequence of the training
 * timesteps: with α = ᾱ/ᾱ_prev and β = 1 − α,
 * μ = √ᾱ_prev β/(1−ᾱ) x̂₀ + √α (1−ᾱ_prev)/(1−ᾱ) x_t, and x_prev = μ + √var z, where var is the
 * posterior β̃ = (1−ᾱ_prev)/(1−ᾱ) β ("fixedSmall") or β ("fixedLarge"). The noise z is an
 * argument, so a step is deterministic; the last step returns μ (z = 0, as the paper's Alg. 2),
 * or, with `lastStep: "diffusers"`, z is dropped only at t = 0 as diffusers' DDPMScheduler does
 * (which adds √β z at a last step with t = 1 under "fixedLarge"). x̂₀ may be clipped or
 * thresholded first (`x0_clip.ts`).
 *
 * @module
 */
import { AttnkitError } from "../errors.ts";
import { type DiscreteSamplerOptions, discreteSchedule } from "./discrete.ts";
import { expectIn, expectSameLength } from "./latent.ts";
import { type Prediction, x0FromPrediction } from "./prediction.ts";
import { expectStepIndex, type Sampler, timestepsMethod } from "./sampler.ts";
import { boundX0, type X0Bounds } from "./x0_clip.ts";

/** Which variance the ancestral step adds. */
export type DdpmVariance = "fixedSmall" | "fixedLarge";

/** Noise levels and settings of one DDPM step. */
export interface DdpmCoefficients extends X0Bounds {
  /** ᾱ at the current timestep. */
  readonly alphaBar: number;
  /** ᾱ at the timestep the step goes to (1 after the last). */
  readonly alphaBarPrev: number;
  /** What `modelOut` is (default "epsilon"). */
  readonly prediction?: Prediction;
  /** "fixedSmall" (default, posterior variance) or "fixedLarge" (β). */
  readonly variance?: DdpmVariance;
  /** Add no noise (the last step). */
  readonly final?: boolean;
}

/**
 * One ancestral DDPM update; pure: returns a new latent.
 *
 * @example
 * ```ts
 * const x = Float32Array.from([1]);
 * ddpmStep(x, Float32Array.from([0.5]), { alphaBar: 0.99, alphaBarPrev: 1, final: true });
 * ```
 */
export function ddpmStep(
  x: Float32Array,
  modelOut: Float32Array,
  c: DdpmCoefficients,
  noise?: Float32Array,
): Float32Array {
  expectSameLength(x, modelOut, "modelOut");
  const a = c.alphaBar, ap = c.alphaBarPrev;
  const pred = c.prediction ?? "epsilon";
  expectIn(a, pred === "epsilon" ? Number.MIN_VALUE : 0, 1, "alphaBar");
  expectIn(ap, a, 1, "alphaBarPrev");
  const alpha = a / ap, beta = 1 - alpha;
  // diffusers clamps the posterior variance at 1e-20; below that no noise is asked for.
  const small = ((1 - ap) / (1 - a)) * beta;
  const variance = c.final ? 0 : c.variance === "fixedLarge" ? beta : small > 1e-20 ? small : 0;
  if (variance > 0) {
    if (noise === undefined) {
      throw new AttnkitError(
        "noise",
        `a DDPM step adds noise; pass a tensor of ${x.length} N(0, 1) values`,
      );
    }
    expectSameLength(x, noise, "noise");
  }
  const sa = Math.sqrt(a), sb = Math.sqrt(1 - a);
  const raw = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const m = modelOut[i];
    raw[i] = pred === "v" ? sa * x[i] - sb * m : pred === "sample" ? m : (x[i] - sb * m) / sa;
  }
  const x0 = boundX0(raw, c);
  const k0 = (Math.sqrt(ap) * beta) / (1 - a);
  const kx = (Math.sqrt(alpha) * (1 - ap)) / (1 - a);
  const sd = Math.sqrt(variance);
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    out[i] = k0 * x0[i] + kx * x[i] + (variance > 0 ? sd * noise![i] : 0);
  }
  return out;
}

/** Options of {@link ddpm}. */
export interface DdpmOptions extends DiscreteSamplerOptions, X0Bounds {
  /** "fixedSmall" (default) or "fixedLarge". */
  readonly variance?: DdpmVariance;
  /** No noise at the last step ("paper", default) or only at t = 0 ("diffusers"). */
  readonly lastStep?: "paper" | "diffusers";
}

/**
 * An ancestral DDPM sampler; its `step` needs `noise` on every step but the last.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { samplers } from "@attnkit/attnkit";
 * const sampler = samplers.ddpm({ steps: 4 });
 * assert.equal(sampler.stochastic, true); // pass `noise` to step()
 * assert.deepEqual(sampler.timesteps(), [751, 501, 251, 1]);
 * ```
 */
export function ddpm(opts: DdpmOptions = {}): Sampler {
  const s = discreteSchedule(opts, () => 1);
  const variance = opts.variance ?? "fixedSmall";
  const n = s.timesteps.length;
  return {
    name: "ddpm",
    steps: n,
    initNoiseSigma: 1,
    stochastic: true,
    timesteps: timestepsMethod("ddpm", s.timesteps),
    scaleInput(x: Float32Array, i: number): Float32Array {
      expectStepIndex(i, n);
      return x;
    },
    step(x: Float32Array, modelOut: Float32Array, i: number, noise?: Float32Array): Float32Array {
      expectStepIndex(i, n);
      return ddpmStep(x, modelOut, {
        alphaBar: s.alphaBar[i],
        alphaBarPrev: s.alphaBarPrev[i],
        prediction: s.prediction,
        variance,
        final: opts.lastStep === "diffusers" ? s.timesteps[i] <= 0 : i === n - 1,
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
