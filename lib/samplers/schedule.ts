/**
 * Noise schedules of DDPM-family models: the β_t of each training step and ᾱ_t = ∏(1 − β_s).
 * Stable Diffusion uses "scaled_linear" (linear in √β from 0.00085 to 0.012 over 1000 steps);
 * "linear" is the DDPM paper's form. Values are kept in float64: ᾱ at t = 999 is ~0.005 and the
 * samplers divide by √ᾱ.
 *
 * @module
 */
import { check } from "../errors.ts";

/** How β grows over the training steps. */
export type BetaSchedule = "scaled_linear" | "linear";

/** Options of a DDPM-family noise schedule; the defaults are Stable Diffusion 1.x/2.x's. */
export interface NoiseScheduleOptions {
  /** Number of training steps T (default 1000). */
  readonly trainSteps?: number;
  /** β at t = 0 (default 0.00085). */
  readonly betaStart?: number;
  /** β at t = T − 1 (default 0.012). */
  readonly betaEnd?: number;
  /** "scaled_linear" (default, linear in √β) or "linear" (linear in β). */
  readonly betaSchedule?: BetaSchedule;
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

/** β_t for t = 0..T−1. */
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
  check(
    start > 0 && end < 1 && start <= end,
    "betaStart",
    `betas must satisfy 0 < betaStart <= betaEnd < 1, got ${start} and ${end}`,
  );
  if (kind === "linear") return linspace(start, end, n);
  check(kind === "scaled_linear", "betaSchedule", `"scaled_linear" or "linear", got "${kind}"`);
  const roots = linspace(Math.sqrt(start), Math.sqrt(end), n);
  return roots.map((r) => r * r);
}

/** ᾱ_t = ∏_{s ≤ t} (1 − β_s): the signal fraction left at training step t. */
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

/** Karras σ of each training step: σ_t = √((1 − ᾱ_t) / ᾱ_t), increasing in t. */
export function sigmasFromAlphasCumprod(alphaBar: Float64Array): Float64Array {
  return alphaBar.map((a) => Math.sqrt((1 - a) / a));
}
