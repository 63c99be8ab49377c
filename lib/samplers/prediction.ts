/**
 * Conversions between what a denoiser predicts (ε, v, or a flow velocity) and the clean-image
 * estimate x̂₀ that attention-control methods inspect and that the step rules build on.
 * DDPM space: x_t = √ᾱ x₀ + √(1−ᾱ) ε and v = √ᾱ ε − √(1−ᾱ) x₀ (Salimans & Ho 2022).
 * Karras space: x = x₀ + σ ε with σ = √((1−ᾱ)/ᾱ). Flow space: x = (1−σ) x₀ + σ ε, v = ε − x₀.
 *
 * @module
 */
import { expectIn, expectSameLength } from "./latent.ts";

/**
 * What a DDPM-family denoiser outputs: the noise ε, the velocity v, or the clean sample x₀ itself
 * (diffusers' `prediction_type` "epsilon", "v_prediction", "sample").
 */
export type Prediction = "epsilon" | "v" | "sample";

/**
 * x̂₀ = (x_t − √(1−ᾱ) ε) / √ᾱ, from an ε-prediction at noise level ᾱ.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { samplers } from "@attnkit/attnkit";
 * // x_t = √ᾱ x₀ + √(1−ᾱ) ε with ᾱ = 0.64, x₀ = 0.875, ε = 0.5 gives x_t = 1.
 * const x0 = samplers.predictX0(Float32Array.from([1]), Float32Array.from([0.5]), 0.64);
 * assert.ok(Math.abs(x0[0] - 0.875) < 1e-6);
 * ```
 */
export function predictX0(x: Float32Array, eps: Float32Array, alphaBar: number): Float32Array {
  expectSameLength(x, eps, "eps");
  expectIn(alphaBar, Number.MIN_VALUE, 1, "alphaBar");
  const a = Math.sqrt(alphaBar), b = Math.sqrt(1 - alphaBar);
  return x.map((xi, i) => (xi - b * eps[i]) / a);
}

/**
 * x̂₀ = √ᾱ x_t − √(1−ᾱ) v, from a v-prediction at noise level ᾱ.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { samplers } from "@attnkit/attnkit";
 * const x0 = samplers.x0FromV(Float32Array.from([1]), Float32Array.from([0.5]), 0.64);
 * assert.ok(Math.abs(x0[0] - (0.8 * 1 - 0.6 * 0.5)) < 1e-6); // 0.5
 * ```
 */
export function x0FromV(x: Float32Array, v: Float32Array, alphaBar: number): Float32Array {
  expectSameLength(x, v, "v");
  expectIn(alphaBar, 0, 1, "alphaBar");
  const a = Math.sqrt(alphaBar), b = Math.sqrt(1 - alphaBar);
  return x.map((xi, i) => a * xi - b * v[i]);
}

/**
 * ε̂ = √ᾱ v + √(1−ᾱ) x_t, the noise a v-prediction implies.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { samplers } from "@attnkit/attnkit";
 * const x = Float32Array.from([1]), v = Float32Array.from([0.5]);
 * const eps = samplers.epsFromV(x, v, 0.64), x0 = samplers.x0FromV(x, v, 0.64);
 * // Consistent with x̂₀: x_t = √ᾱ x̂₀ + √(1−ᾱ) ε̂.
 * assert.ok(Math.abs(0.8 * x0[0] + 0.6 * eps[0] - x[0]) < 1e-6);
 * ```
 */
export function epsFromV(x: Float32Array, v: Float32Array, alphaBar: number): Float32Array {
  expectSameLength(x, v, "v");
  expectIn(alphaBar, 0, 1, "alphaBar");
  const a = Math.sqrt(alphaBar), b = Math.sqrt(1 - alphaBar);
  return x.map((xi, i) => a * v[i] + b * xi);
}

/**
 * x̂₀ from a DDPM-family model output of any prediction type ("sample" is x̂₀ itself).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { samplers } from "@attnkit/attnkit";
 * const x = Float32Array.from([1]), out = Float32Array.from([0.5]);
 * assert.equal(samplers.x0FromPrediction(x, out, 0.64, "sample")[0], 0.5); // the output itself
 * assert.ok(Math.abs(samplers.x0FromPrediction(x, out, 0.64, "epsilon")[0] - 0.875) < 1e-6);
 * ```
 */
export function x0FromPrediction(
  x: Float32Array,
  out: Float32Array,
  alphaBar: number,
  prediction: Prediction,
): Float32Array {
  if (prediction === "sample") {
    expectSameLength(x, out, "sample");
    return out.slice();
  }
  return prediction === "v" ? x0FromV(x, out, alphaBar) : predictX0(x, out, alphaBar);
}

/**
 * x̂₀ in Karras space (x = x₀ + σ ε): x − σ ε, or x/(σ²+1) − σ/√(σ²+1) · v for v-models, or the
 * output itself for "sample" models.
 */
export function x0FromSigma(
  x: Float32Array,
  out: Float32Array,
  sigma: number,
  prediction: Prediction = "epsilon",
): Float32Array {
  expectSameLength(x, out, prediction === "v" ? "v" : prediction === "sample" ? "sample" : "eps");
  expectIn(sigma, 0, Infinity, "sigma");
  if (prediction === "sample") return out.slice();
  if (prediction === "v") {
    const s2 = sigma * sigma + 1, c = sigma / Math.sqrt(s2);
    return x.map((xi, i) => xi / s2 - c * out[i]);
  }
  return x.map((xi, i) => xi - sigma * out[i]);
}

/** x̂₀ = x − σ v for a rectified-flow model at noise level σ. */
export function x0FromFlow(x: Float32Array, v: Float32Array, sigma: number): Float32Array {
  expectSameLength(x, v, "v");
  expectIn(sigma, 0, 1, "sigma");
  return x.map((xi, i) => xi - sigma * v[i]);
}
