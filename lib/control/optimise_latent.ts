/**
 * ISAC latent optimisation (the paper's Algorithm 1) as an `adjust` hook of `sampleLatents`:
 * before each chosen step, X̃_t = X_t − η ∇_{X_t} L_t(X_t) with
 * L_t = λ_ins(t)·L_ins + λ_cls(t)·L_cls on the conditional pass's accumulated maps, then the
 * usual guided denoiser step runs on X̃_t. One gradient step per timestep, η = 0.01 by default
 * (appendix C.1: "η is the only hyperparameter"), λ from the soft schedule by default.
 *
 * The gradient is taken with respect to the sampler's latent X_t, not the denoiser input: when
 * the sampler scales its input (Euler's c_in·x), the chain rule multiplies by that scale. Every
 * sampler here scales elementwise, so the scale is read off `scaleInput` applied to ones.
 *
 * Non-finite losses. By default a NaN or Inf in L_ins, L_cls, the map gradient or the latent
 * gradient throws a {@link NonFiniteLossError} (an AttnkitError) naming the step, the candidate
 * and the term, because the alternative hides a failure: an image that was silently not
 * optimised would be reported as ISAC's. With `onNonFinite: "stop"` the hook instead keeps the
 * last good latent (X_t, unchanged), records why in the log and `stopped`, and lets sampling
 * finish without optimising the remaining steps.
 *
 * @module
 */
import type { AttentionMaps } from "../attention/types.ts";
import { check } from "../errors.ts";
import { isacLoss, type IsacResult, type IsacSpec, type IsacWeights } from "../isac/loss.ts";
import type { DiffusionModel } from "../runtime/model.ts";
import { type AdjustEvent, sampleLatents, type SampleOptions } from "../runtime/sample.ts";
import type { Sampler } from "../samplers/sampler.ts";
import { type Schedule, schedule as schedules } from "../schedule.ts";
import { type Tensor, tensor } from "../tensor.ts";
import { isacSpecFor, type PromptSpec } from "./isac_spec.ts";
import {
  expectFiniteLoss,
  latentGrad,
  type LatentGradResult,
  type MapsLoss,
  type MapsLossResult,
  NonFiniteLossError,
} from "./latent_grad.ts";

/** Where in the sampling loop a hook is. */
export interface StepAt {
  /** Step index, 0 = noisiest. */
  step: number;
  /** Number of steps. */
  steps: number;
  /** Model timestep of this step. */
  timestep: number;
  /** Training horizon T. */
  trainSteps: number;
}

/** Which steps a hook acts on: step indices, or a predicate. */
export type StepFilter = readonly number[] | ((at: StepAt) => boolean);

/** A `sampleLatents` adjust hook. */
export type AdjustHook = (e: AdjustEvent) => Promise<Tensor>;

/** The ISAC objective in the form {@link isacOptimiser} calls it (default `isacLoss`). */
export type IsacLossFn = (
  maps: AttentionMaps,
  spec: IsacSpec,
  weights: IsacWeights,
) => Pick<IsacResult, "value" | "ins" | "cls" | "grad">;

/** One optimised (or failed) step of the log. */
export interface OptimiseStepLog {
  /** Step index. */
  step: number;
  /** Model timestep. */
  timestep: number;
  /** λ_ins and λ_cls at this step. */
  weights: IsacWeights;
  /** L_t per candidate (before the update). */
  value: number[];
  /** Unweighted L_ins per candidate. */
  ins: number[];
  /** Unweighted L_cls per candidate. */
  cls: number[];
  /** ‖∇_{X_t} L_t‖₂ per candidate. */
  gradNorm: number[];
  /** Set when this step's update was not applied: the reason. */
  skipped?: string;
}

/** Options of {@link isacOptimiser}. */
export interface IsacOptimiserOptions {
  /** Learning rate η (default 0.01, the paper's). */
  eta?: number;
  /** λ schedule (default the soft instance-to-semantic schedule). */
  schedule?: Schedule;
  /** A parsed spec (default: parsed from the prompt with the model's vocabulary). */
  spec?: PromptSpec;
  /** Steps to optimise (default every step). */
  at?: StepFilter;
  /** On NaN or Inf: "throw" (default) or "stop" optimising and keep the last good latent. */
  onNonFinite?: "throw" | "stop";
  /** The ISAC objective (default `isacLoss`; a hook for variants and tests). */
  loss?: IsacLossFn;
}

/** An adjust hook with its log. */
export interface LatentOptimiser {
  /** Pass as `adjust` to `sampleLatents` (or compose with {@link chainAdjust}). */
  readonly adjust: AdjustHook;
  /** One entry per optimised step, in order. */
  readonly log: OptimiseStepLog[];
  /** The parsed prompt. */
  readonly spec: PromptSpec;
  /** The error that stopped the optimisation (only with `onNonFinite: "stop"`). */
  readonly stopped: () => NonFiniteLossError | undefined;
}

/** An ISAC result with its two terms named (for NaN reports and logs). */
export interface IsacTermsResult extends MapsLossResult {
  /** L_ins and L_cls, unweighted. */
  terms: { ins: number; cls: number };
}

/** True when a step filter selects `at`. */
export function selects(filter: StepFilter | undefined, at: StepAt): boolean {
  if (filter === undefined) return true;
  return typeof filter === "function" ? filter(at) : filter.includes(at.step);
}

/**
 * The ISAC objective as a {@link MapsLoss} with terms `ins` and `cls`. When the map gradient is
 * not finite but both terms are, each weighted term is recomputed alone to name the culprit.
 */
export function isacMapsLoss(
  spec: IsacSpec,
  weights: IsacWeights,
  loss: IsacLossFn = isacLoss,
): MapsLoss<IsacTermsResult> {
  return (maps, item) => {
    const r = loss(maps, spec, weights);
    const out: IsacTermsResult = {
      value: r.value,
      grad: r.grad,
      terms: { ins: r.ins, cls: r.cls },
    };
    try {
      expectFiniteLoss(out, item);
    } catch (e) {
      if (!(e instanceof NonFiniteLossError) || e.term !== "grad") throw e;
      for (const term of ["ins", "cls"] as const) {
        const alone = {
          ins: term === "ins" ? weights.ins : 0,
          cls: term === "cls" ? weights.cls : 0,
        };
        try {
          expectFiniteLoss({ value: 0, grad: loss(maps, spec, alone).grad }, item);
        } catch {
          throw new NonFiniteLossError(term, item, `finite but its gradient is not (${e.message})`);
        }
      }
      throw e;
    }
    return out;
  };
}

/** A map loss that also sees where in the sampling loop it is (for time-dependent weights). */
export type StepMapsLoss<R extends MapsLossResult = MapsLossResult> = (
  maps: AttentionMaps,
  item: number,
  at: StepAt,
) => R;

/**
 * The ISAC objective with λ from `schedule` at each step, for hooks such as `iterRef`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { controls, initialLatents, isacSpecFor, loadShapesModel, maps, schedule } from "@attnkit/attnkit";
 * const model = await loadShapesModel();
 * const prompt = "two red circles";
 * const ctx = await model.encodeText([prompt]);
 * const x = initialLatents(model.info.latentShape, 0, 1);
 * const res = await maps.denoiseWithMaps(model, x, 501, ctx, { maps: true });
 * const loss = controls.isacStepLoss(isacSpecFor(model, prompt).isac, schedule.soft);
 * const at = (timestep: number) => ({ step: 0, steps: 4, timestep, trainSteps: 1000 });
 * const early = loss(res.maps![0], 0, at(900)), late = loss(res.maps![0], 0, at(100));
 * // Same maps, same terms; only the schedule's weights λ_ins = t/T, λ_cls = 1 − t/T differ.
 * assert.deepEqual(early.terms, late.terms);
 * const { ins, cls } = early.terms;
 * assert.ok(Math.abs(early.value - (0.9 * ins + 0.1 * cls)) < 1e-6);
 * await model.release();
 * ```
 */
export function isacStepLoss(
  spec: IsacSpec,
  schedule: Schedule = schedules.soft,
  loss: IsacLossFn = isacLoss,
): StepMapsLoss<IsacTermsResult> {
  return (maps, item, at) =>
    isacMapsLoss(spec, schedule(at.timestep, at.trainSteps), loss)(maps, item);
}

/** The per-element input scale of `sampler` at step `i` (1 for DDIM/DDPM, c_in for Euler). */
function inputScale(sampler: Sampler, i: number, n: number): Float32Array {
  return sampler.scaleInput(new Float32Array(n).fill(1), i);
}

/**
 * The gradient of a map loss with respect to the sampler's latents at an adjust event: the
 * denoiser sees `scaleInput(x)` with the conditional context, and the chain rule goes back
 * through that (elementwise) scale.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { controls, isacSpecFor, loadShapesModel, sampleLatents, tensor } from "@attnkit/attnkit";
 * const model = await loadShapesModel();
 * const prompt = "two red circles";
 * const loss = controls.isacStepLoss(isacSpecFor(model, prompt).isac);
 * const values: number[] = [];
 * // One ISAC gradient step on the latents at the first sampling step (Algorithm 1, by hand).
 * const latents = await sampleLatents(model, prompt, {
 *   seed: 0,
 *   steps: 4,
 *   adjust: async (e) => {
 *     if (e.step > 0) return e.latents;
 *     const r = await controls.adjustGrad(model, e, (maps, item) => loss(maps, item, e));
 *     values.push(r.values[0]);
 *     return tensor(e.latents.shape, e.latents.data.map((v, i) => v - 10 * r.grad.data[i]));
 *   },
 * });
 * assert.equal(values.length, 1);
 * assert.ok(values[0] > 0 && latents.data.every(Number.isFinite));
 * await model.release();
 * ```
 */
export async function adjustGrad<R extends MapsLossResult>(
  model: DiffusionModel,
  e: AdjustEvent,
  lossOfMaps: MapsLoss<R>,
): Promise<LatentGradResult<R>> {
  const x = e.latents;
  const xin = tensor(x.shape, e.sampler.scaleInput(x.data, e.step));
  const r = await latentGrad(model, xin, e.timestep, e.context, lossOfMaps);
  const c = inputScale(e.sampler, e.step, x.data.length);
  const g = r.grad.data;
  for (let j = 0; j < g.length; j++) g[j] *= c[j];
  return r;
}

/** ‖·‖₂ of each batch item of a `[B, …]` tensor. */
export function itemNorms(t: Tensor): number[] {
  const b = t.shape[0];
  const per = t.data.length / b;
  return Array.from({ length: b }, (_, i) => {
    let s = 0;
    for (let j = i * per; j < (i + 1) * per; j++) s += t.data[j] * t.data[j];
    return Math.sqrt(s);
  });
}

/** ISAC Algorithm 1 as an adjust hook: one gradient step on L_t before each chosen step. */
export function isacOptimiser(
  model: DiffusionModel,
  prompt: string,
  opts: IsacOptimiserOptions = {},
): LatentOptimiser {
  const eta = opts.eta ?? 0.01;
  check(Number.isFinite(eta) && eta >= 0, "eta", `must be a finite number ≥ 0, got ${eta}`);
  const onNonFinite = opts.onNonFinite ?? "throw";
  check(
    onNonFinite === "throw" || onNonFinite === "stop",
    "onNonFinite",
    `must be "throw" or "stop", got ${JSON.stringify(onNonFinite)}`,
  );
  const spec = opts.spec ?? isacSpecFor(model, prompt);
  const sched = opts.schedule ?? schedules.soft;
  const log: OptimiseStepLog[] = [];
  let stopped: NonFiniteLossError | undefined;
  const adjust: AdjustHook = async (e) => {
    if (stopped || !selects(opts.at, e)) return e.latents;
    const weights = sched(e.timestep, e.trainSteps);
    let r: LatentGradResult<IsacTermsResult>;
    try {
      r = await adjustGrad(model, e, isacMapsLoss(spec.isac, weights, opts.loss));
    } catch (err) {
      if (!(err instanceof NonFiniteLossError)) throw err;
      const atStep = err.at(e.step);
      if (onNonFinite === "throw") throw atStep;
      stopped = atStep;
      const nan = new Array(e.latents.shape[0]).fill(NaN);
      log.push({
        step: e.step,
        timestep: e.timestep,
        weights,
        value: nan,
        ins: nan,
        cls: nan,
        gradNorm: nan,
        skipped: atStep.message,
      });
      return e.latents;
    }
    const x = e.latents.data;
    const g = r.grad.data;
    const next = new Float32Array(x.length);
    for (let j = 0; j < x.length; j++) next[j] = x[j] - eta * g[j];
    log.push({
      step: e.step,
      timestep: e.timestep,
      weights,
      value: r.values,
      ins: r.results.map((v) => v.terms.ins),
      cls: r.results.map((v) => v.terms.cls),
      gradNorm: itemNorms(r.grad),
    });
    return tensor(e.latents.shape, next);
  };
  return { adjust, log, spec, stopped: () => stopped };
}

/**
 * Runs adjust hooks one after another (each sees the previous one's latents).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { controls, loadShapesModel, sampleLatents, tensor } from "@attnkit/attnkit";
 * import type { AdjustEvent } from "@attnkit/attnkit";
 * const scaleBy = (k: number) => (e: AdjustEvent) =>
 *   Promise.resolve(tensor(e.latents.shape, e.latents.data.map((v) => v * k)));
 * const both = controls.chainAdjust(scaleBy(2), scaleBy(0.5)); // ×2 then ×0.5: no change
 * const model = await loadShapesModel();
 * const opts = { seed: 0, steps: 2 };
 * const plain = await sampleLatents(model, "a red circle", opts);
 * const chained = await sampleLatents(model, "a red circle", { ...opts, adjust: both });
 * assert.deepEqual(chained.data, plain.data);
 * await model.release();
 * ```
 */
export function chainAdjust(...hooks: readonly AdjustHook[]): AdjustHook {
  return async (e) => {
    let x = e.latents;
    for (const h of hooks) x = await h({ ...e, latents: x });
    return x;
  };
}

/** Options of {@link optimiseLatent}. */
export interface OptimiseOptions
  extends Omit<SampleOptions, "adjust" | "taps">, IsacOptimiserOptions {
  /** A further adjust hook, run after ISAC's update at each step. */
  adjust?: AdjustHook;
}

/** The outcome of {@link optimiseLatent}. */
export interface Optimised {
  /** Clean latents `[N, C, h, w]`. */
  latents: Tensor;
  /** One entry per optimised step. */
  log: OptimiseStepLog[];
  /** The parsed prompt. */
  spec: PromptSpec;
  /** Why optimisation stopped early (only with `onNonFinite: "stop"`). */
  stopped?: NonFiniteLossError;
}

/**
 * Samples `prompt` with ISAC latent optimisation (Algorithm 1) at every (chosen) step.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadShapesModel, optimiseLatent } from "@attnkit/attnkit";
 * const model = await loadShapesModel();
 * const out = await optimiseLatent(model, "two red circles", { seed: 0, steps: 4, at: [0, 1] });
 * assert.deepEqual(out.latents.shape, [1, 4, 16, 16]);
 * assert.deepEqual(out.log.map((s) => s.step), [0, 1]); // one log entry per optimised step
 * assert.ok(out.log.every((s) => Number.isFinite(s.value[0])));
 * await model.release();
 * ```
 */
export async function optimiseLatent(
  model: DiffusionModel,
  prompt: string,
  opts: OptimiseOptions,
): Promise<Optimised> {
  const opt = isacOptimiser(model, prompt, opts);
  const latents = await sampleLatents(model, prompt, {
    ...opts,
    taps: false,
    label: opts.label ?? "ISAC optimise",
    adjust: opts.adjust ? chainAdjust(opt.adjust, opts.adjust) : opt.adjust,
  });
  const stopped = opt.stopped();
  return { latents, log: opt.log, spec: opt.spec, ...(stopped ? { stopped } : {}) };
}
