/**
 * Noise schedules of DDPM-family models: the β_t of each training step and ᾱ_t = ∏(1 − β_s).
 * Stable Diffusion uses "scaled_linear" (linear in √β from 0.00085 to 0.012 over 1000 steps);
 * "linear" is the DDPM paper's form. Values are kept in float64: ᾱ at t = 999 is ~0.005 and the
 * samplers divide by √ᾱ.
 *
 * @module
 */
import { check } from "../errors.ts";

/**
 * How β grows over the training steps: "scaled_linear" (SD), "linear" (DDPM), "squaredcos_cap_v2"
 * (the cosine ᾱ of Nichol & Dhariwal 2021, eq. 17, β capped at 0.999), and diffusers' DDPM-only
 * "sigmoid" (β = σ(linspace(−6, 6)) scaled into [betaStart, betaEnd]) and "laplace".
 */
export type BetaSchedule = "scaled_linear" | "linear" | "squaredcos_cap_v2" | "sigmoid" | "laplace";

/** Options of a DDPM-family noise schedule; the defaults are Stable Diffusion 1.x/2.x's. */
export interface NoiseScheduleOptions {
  /** Number of training steps T (default 1000). */
  readonly trainSteps?: number;
  /** β at t = 0 (default 0.00085). */
  readonly betaStart?: number;
  /** β at t = T − 1 (default 0.012). */
  readonly betaEnd?: number;
  /** "scaled_linear" (default, linear in √β), "linear" (linear in β) or another {@link BetaSchedule}. */
  readonly betaSchedule?: BetaSchedule;
}

/** β_t from an ᾱ(t) function on [0, 1], as diffusers' `betas_for_alpha_bar` (max β 0.999). */
function betasForAlphaBar(n: number, alphaBar: (t: number) => number): Float64Array {
  return Float64Array.from(
    { length: n },
    (_, i) => Math.min(1 - alphaBar((i + 1) / n) / alphaBar(i / n), 0.999),
  );
}

/** Nichol & Dhariwal's cosine ᾱ with s = 0.008 (eq. 17, before normalising by ᾱ(0)). */
const cosineAlphaBar = (t: number): number => Math.cos(((t + 0.008) / 1.008) * Math.PI / 2) ** 2;

/** diffusers' "laplace" ᾱ (Hang et al. 2024): a Laplace-distributed log-SNR. */
const laplaceAlphaBar = (t: number): number => {
  const lmb = -0.5 * Math.sign(0.5 - t || 1) * Math.log(1 - 2 * Math.abs(0.5 - t) + 1e-6);
  const snr = Math.exp(lmb);
  return Math.sqrt(snr / (1 + snr));
};

/**
 * Rescales β so that the last training step has zero SNR (ᾱ_{T−1} = 0) while ᾱ_0 stays (Lin et al.
 * 2023, "Common Diffusion Noise Schedules and Sample Steps are Flawed", Algorithm 1; diffusers'
 * `rescale_zero_terminal_snr`). The last β becomes 1.
 *
 * @example
 * ```ts
 * const b = rescaleZeroTerminalSnr(betas());
 * alphasCumprod(b)[999]; // 0
 * ```
 */
export function rescaleZeroTerminalSnr(betaValues: Float64Array): Float64Array {
  const root = alphasCumprod(betaValues).map(Math.sqrt);
  const first = root[0], last = root[root.length - 1];
  const bar = root.map((r) => ((r - last) * first / (first - last)) ** 2);
  return bar.map((a, t) => 1 - (t === 0 ? a : a / bar[t - 1]));
}

/** Evenly spaced values from `a` to `b` inclusive, computed as numpy's linspace does. */
function linspace(a: number, b: number, n: number): Float64Array {
  const out = new Float64Array(n);
  if (n === 1) {
    out[0] = a;
    return out;
  }
  const step = (b - a) / (n - 1);
  for (let i = 0; i < n; i++) out[i] = a + i * step;
  out[n - 1] = b;
  return out;
}

/** Largest training horizon {@link betas} accepts (diffusers' schedules use 1000). */
export const MAX_SCHEDULE_STEPS = 1_000_000;

/**
 * β_t for t = 0..T−1.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { samplers } from "@attnkit/attnkit";
 * const b = samplers.betas(); // Stable Diffusion's scaled_linear, 0.00085 … 0.012 over T = 1000
 * assert.equal(b.length, 1000);
 * assert.ok(Math.abs(b[0] - 0.00085) < 1e-12 && Math.abs(b[999] - 0.012) < 1e-12);
 * ```
 */
export function betas(opts: NoiseScheduleOptions = {}): Float64Array {
  const n = opts.trainSteps ?? 1000;
  const start = opts.betaStart ?? 0.00085;
  const end = opts.betaEnd ?? 0.012;
  const kind = opts.betaSchedule ?? "scaled_linear";
  // The bound keeps a config's 1e10 from becoming an 80 GB allocation (issue 10, N19).
  check(
    Number.isInteger(n) && n >= 1 && n <= MAX_SCHEDULE_STEPS,
    "trainSteps",
    `must be an integer in [1, ${MAX_SCHEDULE_STEPS}], got ${n}`,
  );
  check(
    Number.isFinite(start) && Number.isFinite(end),
    "betaStart",
    `betaStart and betaEnd must be finite, got ${start} and ${end}`,
  );
  if (kind === "squaredcos_cap_v2") return betasForAlphaBar(n, cosineAlphaBar);
  if (kind === "laplace") return betasForAlphaBar(n, laplaceAlphaBar);
  if (kind === "sigmoid") {
    const x = linspace(-6, 6, n);
    return x.map((v) => (end - start) / (1 + Math.exp(-v)) + start);
  }
  check(
    start > 0 && end < 1 && start <= end,
    "betaStart",
    `betas must satisfy 0 < betaStart <= betaEnd < 1, got ${start} and ${end}`,
  );
  if (kind === "linear") return linspace(start, end, n);
  check(
    kind === "scaled_linear",
    "betaSchedule",
    `"scaled_linear", "linear", "squaredcos_cap_v2", "sigmoid" or "laplace", got "${kind}"`,
  );
  const roots = linspace(Math.sqrt(start), Math.sqrt(end), n);
  return roots.map((r) => r * r);
}

/**
 * ᾱ_t = ∏_{s ≤ t} (1 − β_s): the signal fraction left at training step t.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { samplers } from "@attnkit/attnkit";
 * const alphaBar = samplers.alphasCumprod(samplers.betas());
 * assert.ok(Math.abs(alphaBar[0] - 0.99915) < 1e-12); // 1 − β_0
 * assert.ok(Math.abs(alphaBar[999] - 0.0046601) < 1e-6); // SD 1.5's final ᾱ
 * ```
 */
export function alphasCumprod(betaValues: Float64Array): Float64Array {
  const out = new Float64Array(betaValues.length);
  let prod = 1;
  for (let t = 0; t < betaValues.length; t++) {
    prod *= 1 - betaValues[t];
    out[t] = prod;
  }
  return out;
}

/** ᾱ_t of the schedule `opts` describes (Stable Diffusion's by default). */
export function noiseSchedule(opts: NoiseScheduleOptions = {}): Float64Array {
  return alphasCumprod(betas(opts));
}

/**
 * Karras σ of each training step: σ_t = √((1 − ᾱ_t) / ᾱ_t), increasing in t.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { samplers } from "@attnkit/attnkit";
 * const sigmas = samplers.sigmasFromAlphasCumprod(samplers.noiseSchedule());
 * assert.ok(Math.abs(sigmas[999] - 14.6146) < 1e-4); // SD 1.5's σ_max
 * assert.ok(sigmas[0] < sigmas[500] && sigmas[500] < sigmas[999]);
 * ```
 */
export function sigmasFromAlphasCumprod(alphaBar: Float64Array): Float64Array {
  return alphaBar.map((a) => Math.sqrt((1 - a) / a));
}
