/**
 * Flow-matching Euler sampling (rectified flow, as Stable Diffusion 3): x_σ = (1−σ) x₀ + σ ε, the
 * model predicts v = ε − x₀ and a step is x + (σ_next − σ)·v. Sigmas are shifted toward noise by
 * σ' = s·σ / (1 + (s−1)·σ) (Esser et al. 2024; s = 3 for SD3). As diffusers'
 * FlowMatchEulerDiscreteScheduler, the n unshifted sigmas run linearly from 1 to the shifted
 * smallest training sigma, then are shifted; the model's timestep is σ·T.
 *
 * @module
 */
import { check } from "../errors.ts";
import { expectIn, expectSameLength } from "./latent.ts";
import { x0FromFlow } from "./prediction.ts";
import { expectStepIndex, expectSteps, type Sampler, timestepsMethod } from "./sampler.ts";

/** Options of {@link flowMatchSigmas} and {@link flowMatch}. */
export interface FlowMatchOptions {
  /** Denoising steps (default 28, SD3's default). */
  readonly steps?: number;
  /** Timestep shift s (default 3.0, SD3's). */
  readonly shift?: number;
  /** Training steps T; the model's timestep is σ·T (default 1000). */
  readonly trainSteps?: number;
}

/**
 * The shifted sigma s·σ / (1 + (s−1)·σ).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { samplers } from "@attnkit/attnkit";
 * assert.equal(samplers.shiftSigma(0.5, 3), 0.75); // SD3's shift 3 keeps more steps at high noise
 * assert.equal(samplers.shiftSigma(0.5, 1), 0.5); // shift 1: unchanged
 * ```
 */
export function shiftSigma(sigma: number, shift: number): number {
  expectIn(sigma, 0, 1, "sigma");
  expectIn(shift, Number.MIN_VALUE, Infinity, "shift");
  return (shift * sigma) / (1 + (shift - 1) * sigma);
}

/**
 * Model timesteps (σ·T) and the n + 1 sigmas (the last is 0) of a flow-matching schedule.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { samplers } from "@attnkit/attnkit";
 * const { timesteps, sigmas } = samplers.flowMatchSigmas({ steps: 2, shift: 1 });
 * assert.deepEqual(timesteps, [1000, 1]);
 * assert.deepEqual(sigmas, [1, 0.001, 0]);
 * ```
 */
export function flowMatchSigmas(
  opts: FlowMatchOptions = {},
): { timesteps: number[]; sigmas: number[] } {
  const steps = opts.steps ?? 28, shift = opts.shift ?? 3, T = opts.trainSteps ?? 1000;
  expectSteps(steps);
  expectIn(shift, Number.MIN_VALUE, Infinity, "shift");
  check(Number.isInteger(T) && T >= 1, "trainSteps", `must be a positive integer, got ${T}`);
  const end = shiftSigma(1 / T, shift);
  const sigmas = Array.from({ length: steps }, (_, i) => {
    const u = steps === 1 ? 1 : i === steps - 1 ? end : 1 + i * ((end - 1) / (steps - 1));
    return shiftSigma(u, shift);
  });
  return { timesteps: sigmas.map((s) => s * T), sigmas: [...sigmas, 0] };
}

/**
 * One flow-matching Euler update x + (σ_next − σ)·v; pure: returns a new latent.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { samplers } from "@attnkit/attnkit";
 * const x = samplers.flowMatchStep(Float32Array.from([1]), Float32Array.from([0.5]), 1, 0.5);
 * assert.equal(x[0], 0.75); // 1 + (0.5 − 1) · 0.5
 * ```
 */
export function flowMatchStep(
  x: Float32Array,
  v: Float32Array,
  sigma: number,
  sigmaNext: number,
): Float32Array {
  expectSameLength(x, v, "modelOut");
  expectIn(sigma, 0, 1, "sigma");
  expectIn(sigmaNext, 0, 1, "sigmaNext");
  const dt = sigmaNext - sigma;
  return x.map((xi, i) => xi + dt * v[i]);
}

/**
 * A flow-matching Euler sampler (SD3-style, shift 3 by default).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { samplers } from "@attnkit/attnkit";
 * const sampler = samplers.flowMatch({ steps: 2, shift: 1 }); // diffusers' FlowMatchEulerDiscrete
 * assert.deepEqual(sampler.timesteps(), [1000, 1]); // σ·T for σ = 1 … 1/T
 * // One Euler step from σ = 1 to σ = 1/1000 with velocity v: x + (σ_next − σ)·v.
 * const x = sampler.step(Float32Array.from([1]), Float32Array.from([1]), 0);
 * assert.ok(Math.abs(x[0] - 0.001) < 1e-6);
 * ```
 */
export function flowMatch(opts: FlowMatchOptions = {}): Sampler {
  return flowMatchSampler(flowMatchSigmas(opts));
}

/**
 * One stochastic flow-matching step (diffusers' `stochastic_sampling`): x̂₀ = x − σ v, then fresh
 * noise at the next level, (1 − σ_next) x̂₀ + σ_next z.
 *
 * @example
 * ```ts
 * const x = Float32Array.from([1]), v = Float32Array.from([0.5]), z = Float32Array.from([0]);
 * flowMatchStochasticStep(x, v, 1, 0.5, z); // [0.25]
 * ```
 */
export function flowMatchStochasticStep(
  x: Float32Array,
  v: Float32Array,
  sigma: number,
  sigmaNext: number,
  noise: Float32Array | undefined,
): Float32Array {
  const x0 = x0FromFlow(x, v, sigma);
  expectIn(sigmaNext, 0, 1, "sigmaNext");
  if (sigmaNext === 0) return x0;
  check(noise !== undefined, "noise", `stochastic flow matching needs ${x.length} N(0, 1) values`);
  expectSameLength(x, noise, "noise");
  return x0.map((p, i) => (1 - sigmaNext) * p + sigmaNext * noise[i]);
}

/**
 * A flow-matching sampler on explicit timesteps and sigmas (n timesteps, n + 1 sigmas), e.g. read
 * from a diffusers config; `stochastic` re-noises each step ({@link flowMatchStochasticStep}).
 *
 * @example
 * ```ts
 * const s = flowMatchSampler({ timesteps: [1000, 500], sigmas: [1, 0.5, 0] });
 * s.step(Float32Array.from([1]), Float32Array.from([0.5]), 0); // [0.75]
 * ```
 */
export function flowMatchSampler(
  s: { readonly timesteps: readonly number[]; readonly sigmas: readonly number[] },
  stochastic = false,
): Sampler {
  const n = s.timesteps.length;
  check(
    n >= 1 && s.sigmas.length === n + 1,
    "sigmas",
    `expected ${n + 1} sigmas for ${n} timesteps, got ${s.sigmas.length}`,
  );
  return {
    name: "flowMatch",
    steps: n,
    initNoiseSigma: 1,
    stochastic,
    timesteps: timestepsMethod("flowMatch", s.timesteps),
    scaleInput(x: Float32Array, i: number): Float32Array {
      expectStepIndex(i, n);
      return x;
    },
    step(x: Float32Array, modelOut: Float32Array, i: number, noise?: Float32Array): Float32Array {
      expectStepIndex(i, n);
      return stochastic
        ? flowMatchStochasticStep(x, modelOut, s.sigmas[i], s.sigmas[i + 1], noise)
        : flowMatchStep(x, modelOut, s.sigmas[i], s.sigmas[i + 1]);
    },
    predictX0(x: Float32Array, modelOut: Float32Array, i: number): Float32Array {
      expectStepIndex(i, n);
      return x0FromFlow(x, modelOut, s.sigmas[i]);
    },
  };
}
