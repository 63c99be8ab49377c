/**
 * Euler sampling in Karras et al. (2022) form: the state is x = x₀ + σ ε with
 * σ = √((1−ᾱ)/ᾱ), the model sees c_in·x with c_in = 1/√(σ²+1) (which is the DDPM-space x_t),
 * and a step is x + (σ_next − σ)·(x − x̂₀)/σ (their Algorithm 2 without churn). σ at a fractional
 * timestep is interpolated linearly in σ; with `karras` the n sigmas follow their eq. 5 (ρ = 7)
 * between the schedule's σ_max and σ_min, and timesteps come back from σ by interpolating log σ.
 *
 * @module
 */
import { check } from "../errors.ts";
import { expectIn, expectSameLength } from "./latent.ts";
import { type Prediction, x0FromSigma } from "./prediction.ts";
import { expectStepIndex, type Sampler, timestepsMethod } from "./sampler.ts";
import { noiseSchedule, type NoiseScheduleOptions, sigmasFromAlphasCumprod } from "./schedule.ts";
import { spacedTimesteps, type TimestepSpacing } from "./timesteps.ts";

/** Options of {@link eulerSigmas} and {@link euler}. */
export interface EulerOptions extends NoiseScheduleOptions {
  /** Denoising steps (default 50). */
  readonly steps?: number;
  /** What the model predicts: "epsilon" (default), "v" or "sample". */
  readonly prediction?: Prediction;
  /** Timestep spacing (default "linspace", fractional, as diffusers' Euler). */
  readonly spacing?: TimestepSpacing;
  /** Offset added to "leading" timesteps (default 1). */
  readonly stepsOffset?: number;
  /** Space the sigmas as Karras et al. eq. 5 (default false). */
  readonly karras?: boolean;
  /** ρ of the Karras spacing (default 7). */
  readonly rho?: number;
  /** A ᾱ table to use instead of the one the beta options describe. */
  readonly alphasCumprod?: Float64Array;
}

/** Model timesteps and the n + 1 sigmas (the last is 0) of an Euler schedule. */
export interface EulerSchedule {
  /** Model timesteps (possibly fractional), noisiest first. */
  readonly timesteps: readonly number[];
  /** σ at each step, then the σ the last step goes to (0, or σ_min, or more; see {@link eulerSampler}). */
  readonly sigmas: readonly number[];
  /** Standard deviation of the initial latent (default √(σ₀² + 1)). */
  readonly initNoiseSigma?: number;
}

/** Checks that a schedule has n ≥ 1 timesteps and n + 1 sigmas; returns n. */
export function expectSigmas(s: EulerSchedule): number {
  const n = s.timesteps.length;
  check(
    n >= 1 && s.sigmas.length === n + 1,
    "sigmas",
    `expected ${n + 1} sigmas for ${n} timesteps, got ${s.sigmas.length}`,
  );
  return n;
}

/** Piecewise-linear interpolation of ys over increasing xs, clamped at both ends (numpy's interp). */
export function interp(x: number, xs: ArrayLike<number>, ys: ArrayLike<number>): number {
  const n = xs.length;
  if (x <= xs[0]) return ys[0];
  if (x >= xs[n - 1]) return ys[n - 1];
  let lo = 0, hi = n - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (xs[mid] <= x) lo = mid;
    else hi = mid;
  }
  const w = (x - xs[lo]) / (xs[hi] - xs[lo]);
  return ys[lo] + w * (ys[hi] - ys[lo]);
}

/**
 * The timesteps and sigmas an Euler sampler with `opts` visits.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { samplers } from "@attnkit/attnkit";
 * const { timesteps, sigmas } = samplers.eulerSigmas({ steps: 4 }); // SD 1.5's schedule, "linspace"
 * assert.deepEqual(timesteps, [999, 666, 333, 0]);
 * assert.equal(sigmas.length, 5); // one per step, then 0
 * assert.ok(Math.abs(sigmas[0] - 14.6146) < 1e-4 && sigmas[4] === 0);
 * ```
 */
export function eulerSigmas(opts: EulerOptions = {}): EulerSchedule {
  const table = sigmasFromAlphasCumprod(opts.alphasCumprod ?? noiseSchedule(opts));
  const T = table.length;
  const steps = opts.steps ?? 50;
  const index = Float64Array.from({ length: T }, (_, t) => t);
  let timesteps = spacedTimesteps(steps, {
    trainSteps: T,
    spacing: opts.spacing ?? "linspace",
    stepsOffset: opts.stepsOffset,
    round: false,
  });
  let sigmas = timesteps.map((t) => interp(t, index, table));
  if (opts.karras) {
    const rho = opts.rho ?? 7;
    expectIn(rho, Number.MIN_VALUE, Infinity, "rho");
    const hi = sigmas[0] ** (1 / rho), lo = sigmas[sigmas.length - 1] ** (1 / rho);
    sigmas = sigmas.map((_, i) => (hi + (steps === 1 ? 0 : i / (steps - 1)) * (lo - hi)) ** rho);
    const logTable = table.map(Math.log);
    timesteps = sigmas.map((s) => interp(Math.log(s), logTable, index));
  }
  return { timesteps, sigmas: [...sigmas, 0] };
}

/** Settings of one Euler step. */
export interface EulerCoefficients {
  /** σ at the current step (> 0). */
  readonly sigma: number;
  /** σ at the next step (0 after the last). */
  readonly sigmaNext: number;
  /** What `modelOut` is (default "epsilon"). */
  readonly prediction?: Prediction;
}

/**
 * The model-input scaling c_in = 1/√(σ²+1).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { samplers } from "@attnkit/attnkit";
 * assert.equal(samplers.eulerInputScale(0), 1);
 * assert.ok(Math.abs(samplers.eulerInputScale(1) - Math.SQRT1_2) < 1e-12);
 * ```
 */
export function eulerInputScale(sigma: number): number {
  expectIn(sigma, 0, Infinity, "sigma");
  return 1 / Math.sqrt(sigma * sigma + 1);
}

/**
 * One Euler update x + (σ_next − σ)·(x − x̂₀)/σ; pure: returns a new latent.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { samplers } from "@attnkit/attnkit";
 * // ε-prediction: x̂₀ = x − σ ε, so the step is x + (σ_next − σ)·ε.
 * const x = samplers.eulerStep(Float32Array.from([2]), Float32Array.from([0.5]), {
 *   sigma: 2,
 *   sigmaNext: 1,
 * });
 * assert.ok(Math.abs(x[0] - 1.5) < 1e-6);
 * ```
 */
export function eulerStep(
  x: Float32Array,
  modelOut: Float32Array,
  c: EulerCoefficients,
): Float32Array {
  expectSameLength(x, modelOut, "modelOut");
  expectIn(c.sigma, Number.MIN_VALUE, Infinity, "sigma");
  expectIn(c.sigmaNext, 0, Infinity, "sigmaNext");
  const dt = c.sigmaNext - c.sigma;
  if (c.prediction !== "v" && c.prediction !== "sample") {
    return x.map((xi, i) => xi + dt * modelOut[i]);
  }
  const x0 = x0FromSigma(x, modelOut, c.sigma, c.prediction);
  return x.map((xi, i) => xi + (dt * (xi - x0[i])) / c.sigma);
}

/**
 * An Euler sampler; feed the model `scaleInput(x, i)` and timestep `timesteps()[i]`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { samplers } from "@attnkit/attnkit";
 * const sampler = samplers.euler({ steps: 4 }); // diffusers' EulerDiscreteScheduler, "linspace"
 * assert.deepEqual(sampler.timesteps(), [999, 666, 333, 0]);
 * assert.ok(Math.abs(sampler.initNoiseSigma - 14.6488) < 1e-3); // √(σ_max² + 1)
 * ```
 */
export function euler(opts: EulerOptions = {}): Sampler {
  return eulerSampler(eulerSigmas(opts), opts.prediction ?? "epsilon");
}

/**
 * An Euler sampler on explicit timesteps and sigmas (n timesteps, n + 1 sigmas: step i goes from
 * `sigmas[i]` to `sigmas[i + 1]`), e.g. a schedule read from a diffusers config.
 *
 * @example
 * ```ts
 * const s = eulerSampler({ timesteps: [999, 499], sigmas: [14.6, 0.77, 0] }, "epsilon");
 * s.initNoiseSigma; // √(14.6² + 1)
 * ```
 */
export function eulerSampler(s: EulerSchedule, prediction: Prediction = "epsilon"): Sampler {
  check(
    prediction === "epsilon" || prediction === "v" || prediction === "sample",
    "prediction",
    `"epsilon", "v" or "sample", got "${prediction}"`,
  );
  const n = expectSigmas(s);
  return {
    name: "euler",
    steps: n,
    // x_T = x₀ + σ_max ε has variance σ_max² + 1 for unit-variance latents.
    initNoiseSigma: s.initNoiseSigma ?? Math.sqrt(s.sigmas[0] ** 2 + 1),
    timesteps: timestepsMethod("euler", s.timesteps),
    scaleInput(x: Float32Array, i: number): Float32Array {
      expectStepIndex(i, n);
      const k = eulerInputScale(s.sigmas[i]);
      return x.map((v) => v * k);
    },
    step(x: Float32Array, modelOut: Float32Array, i: number): Float32Array {
      expectStepIndex(i, n);
      return eulerStep(x, modelOut, { sigma: s.sigmas[i], sigmaNext: s.sigmas[i + 1], prediction });
    },
    predictX0(x: Float32Array, modelOut: Float32Array, i: number): Float32Array {
      expectStepIndex(i, n);
      return x0FromSigma(x, modelOut, s.sigmas[i], prediction);
    },
  };
}
