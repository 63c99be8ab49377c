/**
 * Ancestral Euler sampling (k-diffusion's `sample_euler_ancestral`; diffusers'
 * EulerAncestralDiscreteScheduler): from σ to σ_next, split σ_next² into a deterministic part
 * σ_down² and fresh noise σ_up² with σ_up = √(σ_next² (σ² − σ_next²) / σ²), take an Euler step to
 * σ_down, then add σ_up·z. The last step (σ_next = 0) adds no noise.
 *
 * @module
 */
import { check } from "../errors.ts";
import { expectIn, expectSameLength } from "./latent.ts";
import { type Prediction, x0FromSigma } from "./prediction.ts";
import { expectStepIndex, type Sampler, timestepsMethod } from "./sampler.ts";
import { eulerInputScale, type EulerSchedule, expectSigmas } from "./euler.ts";

/**
 * One ancestral Euler update; `noise` (N(0, 1), the latent's size) is needed unless σ_next = 0.
 *
 * @example
 * ```ts
 * const x = Float32Array.from([2]), eps = Float32Array.from([0.5]);
 * eulerAncestralStep(x, eps, { sigma: 2, sigmaNext: 0 }); // [1]: straight to x̂₀
 * ```
 */
export function eulerAncestralStep(
  x: Float32Array,
  modelOut: Float32Array,
  c: { readonly sigma: number; readonly sigmaNext: number; readonly prediction?: Prediction },
  noise?: Float32Array,
): Float32Array {
  expectSameLength(x, modelOut, "modelOut");
  expectIn(c.sigma, Number.MIN_VALUE, Infinity, "sigma");
  expectIn(c.sigmaNext, 0, c.sigma, "sigmaNext");
  const s = c.sigma, sn = c.sigmaNext;
  const up = Math.sqrt((sn * sn * (s * s - sn * sn)) / (s * s));
  const down = Math.sqrt(Math.max(0, sn * sn - up * up));
  if (up > 0) {
    check(noise !== undefined, "noise", `an ancestral step needs ${x.length} N(0, 1) values`);
    expectSameLength(x, noise, "noise");
  }
  const x0 = x0FromSigma(x, modelOut, s, c.prediction ?? "epsilon");
  const dt = down - s;
  return x.map((xi, i) => xi + ((xi - x0[i]) / s) * dt + (up > 0 ? up * noise![i] : 0));
}

/**
 * An ancestral Euler sampler on explicit timesteps and sigmas (n timesteps, n + 1 sigmas); its
 * `step` needs `noise` at every step but the last.
 *
 * @example
 * ```ts
 * const s = eulerAncestral({ timesteps: [999, 499], sigmas: [14.6, 0.77, 0] });
 * s.stochastic; // true
 * ```
 */
export function eulerAncestral(s: EulerSchedule, prediction: Prediction = "epsilon"): Sampler {
  check(
    prediction === "epsilon" || prediction === "v",
    "prediction",
    `"epsilon" or "v" (diffusers' ancestral Euler has no "sample"), got "${prediction}"`,
  );
  const n = expectSigmas(s);
  return {
    name: "eulerAncestral",
    steps: n,
    initNoiseSigma: s.initNoiseSigma ?? Math.sqrt(s.sigmas[0] ** 2 + 1),
    stochastic: true,
    timesteps: timestepsMethod("eulerAncestral", s.timesteps),
    scaleInput(x: Float32Array, i: number): Float32Array {
      expectStepIndex(i, n);
      const k = eulerInputScale(s.sigmas[i]);
      return x.map((v) => v * k);
    },
    step(x: Float32Array, modelOut: Float32Array, i: number, noise?: Float32Array): Float32Array {
      expectStepIndex(i, n);
      return eulerAncestralStep(
        x,
        modelOut,
        { sigma: s.sigmas[i], sigmaNext: s.sigmas[i + 1], prediction },
        noise,
      );
    },
    predictX0(x: Float32Array, modelOut: Float32Array, i: number): Float32Array {
      expectStepIndex(i, n);
      return x0FromSigma(x, modelOut, s.sigmas[i], prediction);
    },
  };
}
