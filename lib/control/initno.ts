/**
 * InitNO (Guo et al., CVPR 2024) as an `adjust` hook of `sampleLatents`: before the first
 * denoising step, the initial noise is optimised; then every step i < `maxIterToAlter` takes
 * A&E-style latent updates. Exact algorithm of the reference `xiefan-guo/initno@fa021c4`
 * (`pipeline_sd_initno.py`: `__call__` step 8, `fn_initno`, `_perform_iterative_refinement_step`;
 * methods spec §2); the losses are lib/losses/initno.ts.
 *
 * **Initial-noise optimisation** ({@link initNoOptimise}, `fn_initno`): z = z_T ⊙ exp(½·logσ²) + μ
 * with μ = logσ² = 0 at the start; Adam([logσ², μ], lr 1e-2, eps 1e-3). Each iteration runs the
 * conditional denoiser at the first timestep, evaluates `L_ca + L_sa + L_clean` (L_sa := 0 when
 * L_ca > 0.5); it stops when L_ca < 0.2 and L_sa < 0.3 (success), else takes an Adam step and then
 * Adam steps on the KL term (same optimiser) while KL > 1e-3. The round's score is L_ca + L_sa of
 * its last evaluation, plus 1 when that L_sa ≤ 1e-6 (a quirk of the code: a gated or single-target
 * L_sa counts as bad).
 *
 * **Rounds** (`__call__`): up to 5 rounds of 10 iterations, each from a fresh z_T drawn from the
 * same generator, stopping at the first success; the pool is sorted by (score, round). If the best
 * round succeeded its optimised noise is used, else the optimisation is rerun from that round's
 * original z_T for 50 iterations and its result is used, successful or not.
 *
 * **Denoising** (`__call__` step 9): at each step i < 25 (of 50), α_i = 20·√(linspace(1, 0.5, T)[i]);
 * the joint loss `L_ca + L_sa + 0.1·L_clean + 0.1·L_align` is evaluated; at i ∈ {10, 20}, if
 * L_ca > 0.2 or L_sa > 0.3, iterative refinement: while L_ca > 1 − 0.8 or L_sa > 0.3 (the values
 * from before the iteration's update, as the code reads them), evaluate and step on the joint
 * loss, at most 20 times; then re-evaluate. Finally, if L_ca ≠ 0, one step on **L_ca alone**. The
 * alignment term's moving average is updated at every evaluation, refinement included.
 *
 * Departures (documented here, where they are made):
 * - Noise for rounds 1…4: our generator is `mulberry32(seed + item)` read through `gaussian()`
 *   (lib/random.ts); round r is the r-th block of that stream, so round 0 is exactly the latent
 *   `sampleLatents` starts from with the same seed (checked; an error names `seed` otherwise).
 * - The KL loop has a safety cap (`maxKlSteps`, default 10 000); the reference loops unbounded.
 * - Steps that are not updated (i ≥ `maxIterToAlter`) are not evaluated: in the reference they only
 *   feed the moving average, which nothing reads after step 24.
 * - The sampler is the caller's (the benchmark: our DDIM, 25 steps; the reference: SD 1.4's PNDM,
 *   50 steps); the benchmark maps the refinement steps 10 and 20 of 50 and `maxIterToAlter` 25 of
 *   50 proportionally. The loss reads the A&E resolution's layers (lib/losses/resolution.ts).
 * - `last` defaults to L − 1 (the reference's `[:, :, 1:-1]`); pass `loss.last` to change it.
 *
 * @module
 */
import { check } from "../errors.ts";
import {
  INITNO_JOINT_WEIGHTS,
  INITNO_NOISE_WEIGHTS,
  initNoKl,
  initNoLoss,
  type InitNoLossOptions,
  type InitNoResult,
  type InitNoWeights,
} from "../losses/initno.ts";
import { type TapSelection, withTaps } from "../losses/resolution.ts";
import type { TokenColumns } from "../losses/types.ts";
import { gaussian, mulberry32 } from "../random.ts";
import type { DiffusionModel } from "../runtime/model.ts";
import type { AdjustEvent } from "../runtime/sample.ts";
import { type Tensor, tensor } from "../tensor.ts";
import { isacSpecFor } from "./isac_spec.ts";
import { adamInit, adamStep, gsnStepSize } from "./iter_ref.ts";
import { NonFiniteLossError } from "./latent_grad.ts";
import { adjustGrad, type AdjustHook } from "./optimise_latent.ts";

/** Loss options other than tokens, weights, gating and cache (τ, last, smoothing). */
export type InitNoMapOptions = Omit<
  InitNoLossOptions,
  "tokens" | "weights" | "gateSelfAbove" | "cache"
>;

/** Options of {@link initNoOptimise} (defaults: `fn_initno`'s). */
export interface InitNoNoiseOptions {
  /** Adam learning rate (default 1e-2). */
  lr?: number;
  /** Adam eps (default 1e-3). */
  eps?: number;
  /** Iterations (default 10 per round; 50 for the final rerun). */
  maxStep?: number;
  /** Success needs L_ca below this (default 0.2). */
  tauCrossAttn?: number;
  /** … and L_sa below this (default 0.3). */
  tauSelfAttn?: number;
  /** KL steps continue while KL exceeds this (default 1e-3). */
  klThreshold?: number;
  /** Safety cap on KL steps after one loss step (default 10 000; the reference has none). */
  maxKlSteps?: number;
}

/** One iteration of the noise optimisation. */
export interface InitNoIterLog {
  /** L_ca + L_sa + L_clean at this iteration (before its update). */
  value: number;
  /** L_ca. */
  crossAttn: number;
  /** L_sa. */
  selfAttn: number;
  /** L_clean. */
  clean: number;
  /** KL after the update and its KL steps (NaN on the successful iteration). */
  kl: number;
  /** KL steps taken after this iteration's loss step. */
  klSteps: number;
}

/** The outcome of {@link initNoOptimise}. */
export interface InitNoNoiseResult {
  /** The optimised noise z `[1, C, h, w]`. */
  latents: Tensor;
  /** L_ca < τ_ca and L_sa < τ_sa at some iteration. */
  succeeded: boolean;
  /** L_ca + L_sa of the last evaluation, +1 if that L_sa ≤ 1e-6 (the reference's pool score). */
  score: number;
  /** One entry per evaluation. */
  iterations: InitNoIterLog[];
}

/** Where the noise optimisation evaluates: the first sampling step's event, one item. */
export type InitNoEvent = Omit<AdjustEvent, "latents">;

/**
 * `fn_initno`: optimises the mean and log-variance of one initial noise `xT` `[1, C, h, w]` (see
 * the module doc). `model` should already be restricted to the loss's layers (`withTaps`).
 * Each iteration is one conditional denoiser call with taps and one VJP.
 *
 * @example
 * ```ts
 * import { defaultSampler, initialLatents, initNoOptimise, loadShapesModel, withTaps } from "@attnkit/attnkit";
 * const model = await loadShapesModel();
 * const prompt = "a photo of a red circle and a blue square";
 * const sampler = defaultSampler(model, 25);
 * const event = {
 *   step: 0, steps: 25, timestep: sampler.timesteps()[0], trainSteps: model.info.trainSteps,
 *   context: await model.encodeText([prompt]), sampler,
 * };
 * const xT = initialLatents(model.info.latentShape, 0, 1);
 * const r = await initNoOptimise(withTaps(model, "attendExcite"), event, xT, { tokens: [6, 10] });
 * console.log(r.succeeded, r.score, r.iterations.map((i) => i.value));
 * ```
 */
export async function initNoOptimise(
  model: DiffusionModel,
  event: InitNoEvent,
  xT: Tensor,
  lossOpts: Omit<InitNoLossOptions, "weights" | "gateSelfAbove" | "cache">,
  opts: InitNoNoiseOptions = {},
): Promise<InitNoNoiseResult> {
  const lr = opts.lr ?? 1e-2;
  const eps = opts.eps ?? 1e-3;
  const maxStep = opts.maxStep ?? 10;
  const tauCa = opts.tauCrossAttn ?? 0.2;
  const tauSa = opts.tauSelfAttn ?? 0.3;
  const klThr = opts.klThreshold ?? 1e-3;
  const maxKl = opts.maxKlSteps ?? 10_000;
  check(Number.isFinite(lr) && lr > 0, "lr", `expected a positive number, got ${lr}`);
  check(Number.isInteger(maxStep) && maxStep >= 1, "maxStep", `expected an integer ≥ 1`);
  check(xT.shape[0] === 1, "xT", `expected one latent [1, C, h, w], got [${xT.shape}]`);
  const n = xT.data.length;
  // Parameters [logσ²; μ] in one vector so one Adam state covers both, as one torch optimiser.
  let params: Float32Array = new Float32Array(2 * n);
  const state = adamInit(2 * n);
  const z = () => {
    const out = new Float32Array(n);
    for (let j = 0; j < n; j++) out[j] = xT.data[j] * Math.exp(0.5 * params[j]) + params[n + j];
    return tensor(xT.shape, out);
  };
  const loss = (maps: Parameters<typeof initNoLoss>[0]) =>
    initNoLoss(maps, { ...lossOpts, weights: INITNO_NOISE_WEIGHTS, gateSelfAbove: 0.5 });
  const iterations: InitNoIterLog[] = [];
  let succeeded = false;
  let last: InitNoResult | undefined;
  for (let it = 0; it < maxStep; it++) {
    const x = z();
    const r = await adjustGrad(model, { ...event, latents: x }, loss);
    last = r.results[0];
    const t = last.terms;
    const log: InitNoIterLog = {
      value: r.values[0],
      crossAttn: t.crossAttn,
      selfAttn: t.selfAttn,
      clean: t.clean,
      kl: NaN,
      klSteps: 0,
    };
    iterations.push(log);
    if (t.crossAttn < tauCa && t.selfAttn < tauSa) {
      succeeded = true;
      break;
    }
    // d/dμ = dL/dz; d/dlogσ² = dL/dz · z_T · ½exp(½logσ²).
    const g = new Float32Array(2 * n);
    for (let j = 0; j < n; j++) {
      g[j] = r.grad.data[j] * xT.data[j] * 0.5 * Math.exp(0.5 * params[j]);
      g[n + j] = r.grad.data[j];
    }
    params = adamStep(params, g, state, lr, { eps });
    let kl = initNoKl(params.subarray(0, n), params.subarray(n));
    while (kl.value > klThr && log.klSteps < maxKl) {
      const gk = new Float32Array(2 * n);
      gk.set(kl.dLogVar);
      gk.set(kl.dMu, n);
      params = adamStep(params, gk, state, lr, { eps });
      log.klSteps++;
      kl = initNoKl(params.subarray(0, n), params.subarray(n));
    }
    log.kl = kl.value;
  }
  const t = last!.terms;
  const sa = t.selfAttn <= 1e-6 ? t.selfAttn + 1 : t.selfAttn;
  return { latents: z(), succeeded, score: t.crossAttn + sa, iterations };
}

/**
 * The initial noises of candidate `item` for rounds 0, 1, …: consecutive blocks of
 * `gaussian(mulberry32(seed + item))`, times `sigma`; block 0 is `initialLatents`' latent.
 * `shape` is the batch latent shape `[B, C, h, w]`; each noise is `[1, C, h, w]`.
 *
 * @example
 * ```ts
 * import { initNoNoise } from "@attnkit/attnkit";
 * const [round0, round1] = initNoNoise([1, 4, 16, 16], 7, 0, 2);
 * ```
 */
export function initNoNoise(
  shape: readonly number[],
  seed: number,
  item: number,
  rounds: number,
  sigma = 1,
): Tensor[] {
  check(Number.isInteger(seed), "seed", `must be an integer, got ${seed}`);
  const per = shape.slice(1).reduce((a, b) => a * b, 1);
  const rng = mulberry32(seed + item);
  return Array.from({ length: rounds }, () => {
    const g = gaussian(rng, per);
    for (let j = 0; j < per; j++) g[j] *= sigma;
    return tensor([1, ...shape.slice(1)], g);
  });
}

/** Options of {@link initNo}; defaults are the reference's. */
export interface InitNoOptions {
  /** The seed given to `sampleLatents` (round r > 0 draws continue its stream). */
  seed: number;
  /** Target tokens (default: the class tokens the prompt parser finds). */
  targets?: readonly TokenColumns[];
  /** Map options (τ, `last` (default L − 1), smoothing). */
  loss?: InitNoMapOptions;
  /** Noise-optimisation rounds (default 5). */
  maxRound?: number;
  /** Iterations per round (default 10). */
  roundSteps?: number;
  /** Iterations of the final rerun when no round succeeded (default 50). */
  rerunSteps?: number;
  /** Other noise-optimisation options (lr, eps, thresholds). */
  noise?: Omit<InitNoNoiseOptions, "maxStep">;
  /** Skip the noise optimisation (the denoising updates alone). */
  skipNoise?: boolean;
  /** Steps with a gradient update: i < this (default 25). */
  maxIterToAlter?: number;
  /** Refinement steps (default [10, 20]). */
  refineSteps?: readonly number[];
  /** Refinement threshold: loop while L_ca > 1 − this (default 0.8). */
  refineThreshold?: number;
  /** Refinement also loops while L_sa > this, and starts when it is (default 0.3). */
  refineSelf?: number;
  /** Refinement starts when L_ca exceeds this (default 0.2). */
  refineCross?: number;
  /** Most refinement iterations (default 20). */
  maxRefinementSteps?: number;
  /** α scale (default 20). */
  scaleFactor?: number;
  /** α range, linspace over the steps (default [1, 0.5]). */
  scaleRange?: readonly [number, number];
  /** Denoising joint-loss weights (default {@link INITNO_JOINT_WEIGHTS}). */
  jointWeights?: InitNoWeights;
  /** Which taps feed the loss (default "attendExcite"). */
  taps?: TapSelection;
}

/** One round of the noise optimisation of one candidate. */
export interface InitNoRoundLog {
  /** Round index (the final rerun repeats its round's index). */
  round: number;
  /** Pool score. */
  score: number;
  /** Success. */
  succeeded: boolean;
  /** Iterations evaluated. */
  iterations: InitNoIterLog[];
  /** True for the 50-iteration rerun. */
  rerun?: boolean;
}

/** One denoising step of one candidate. */
export interface InitNoStepLog {
  /** Step index. */
  step: number;
  /** α_i. */
  alpha: number;
  /** Candidate. */
  item: number;
  /** Terms when the step was first evaluated. */
  before: InitNoResult["terms"];
  /** Refinement iterations. */
  refinements: number;
  /** Terms when the final L_ca step was taken. */
  final: InitNoResult["terms"];
}

/** The hook with its logs. */
export interface InitNo {
  /** Pass as `adjust` to `sampleLatents` (with the same seed). */
  readonly adjust: AdjustHook;
  /** Noise-optimisation rounds per candidate. */
  readonly rounds: InitNoRoundLog[][];
  /** Denoising steps. */
  readonly steps: InitNoStepLog[];
  /** The targets used. */
  readonly targets: readonly TokenColumns[];
}

/**
 * InitNO as an adjust hook; see the module doc. Pass the same `seed` to the hook and to
 * `sampleLatents` (an AttnkitError names `seed` otherwise).
 *
 * @example
 * ```ts
 * import { decodeLatents, initNo, loadShapesModel, sampleLatents } from "@attnkit/attnkit";
 * const model = await loadShapesModel();
 * const prompt = "a photo of a red circle and a blue square";
 * const hook = initNo(model, prompt, { seed: 0, maxIterToAlter: 13, refineSteps: [5, 10] });
 * const latents = await sampleLatents(model, prompt, { seed: 0, steps: 25, adjust: hook.adjust });
 * const image = await decodeLatents(model, latents);
 * console.log(hook.rounds[0].map((r) => r.score), hook.steps.length);
 * ```
 */
export function initNo(model: DiffusionModel, prompt: string, opts: InitNoOptions): InitNo {
  check(Number.isInteger(opts.seed), "seed", `must be an integer, got ${opts.seed}`);
  const targets = opts.targets ?? isacSpecFor(model, prompt).isac.tokens;
  check(targets.length > 0, "targets", `no target tokens found in "${prompt}"`);
  const maxRound = opts.maxRound ?? 5;
  check(Number.isInteger(maxRound) && maxRound >= 1, "maxRound", `got ${maxRound}`);
  const maxIter = opts.maxIterToAlter ?? 25;
  const refineSteps = opts.refineSteps ?? [10, 20];
  const refineThr = opts.refineThreshold ?? 0.8;
  const refineSelf = opts.refineSelf ?? 0.3;
  const refineCross = opts.refineCross ?? 0.2;
  const maxRefine = opts.maxRefinementSteps ?? 20;
  check(Number.isInteger(maxRefine) && maxRefine >= 0, "maxRefinementSteps", `got ${maxRefine}`);
  const joint = opts.jointWeights ?? INITNO_JOINT_WEIGHTS;
  const tapped = withTaps(model, opts.taps ?? "attendExcite");
  const rounds: InitNoRoundLog[][] = [];
  const stepLog: InitNoStepLog[] = [];
  const caches: (Float64Array[] | undefined)[] = [];
  const crossAlone: InitNoWeights = { crossAttn: 1, selfAttn: 0, clean: 0, align: 0 };

  const mapOpts = (e: AdjustEvent) => ({
    last: e.context.shape[1] - 1,
    ...opts.loss,
    tokens: targets,
  });
  const itemOf = (t: Tensor, i: number): Tensor => {
    const per = t.data.length / t.shape[0];
    return tensor([1, ...t.shape.slice(1)], t.data.slice(i * per, (i + 1) * per));
  };

  const optimiseNoise = async (e: AdjustEvent, item: number): Promise<Tensor> => {
    const x0 = itemOf(e.latents, item);
    const noises = initNoNoise(x0.shape, opts.seed, item, maxRound, e.sampler.initNoiseSigma);
    check(
      noises[0].data.every((v, j) => v === x0.data[j]),
      "seed",
      `candidate ${item}'s initial latent is not the one seed ${opts.seed} + ${item} gives; ` +
        "pass sampleLatents' seed",
    );
    const ev: InitNoEvent = { ...e, context: itemOf(e.context, item) };
    const lossOpts = mapOpts(e);
    const noise = { ...opts.noise };
    const log: InitNoRoundLog[] = [];
    const pool: { score: number; round: number; z: Tensor; xT: Tensor; ok: boolean }[] = [];
    for (let r = 0; r < maxRound; r++) {
      const res = await initNoOptimise(tapped, ev, noises[r], lossOpts, {
        ...noise,
        maxStep: opts.roundSteps ?? 10,
      });
      log.push({
        round: r,
        score: res.score,
        succeeded: res.succeeded,
        iterations: res.iterations,
      });
      pool.push({ score: res.score, round: r, z: res.latents, xT: noises[r], ok: res.succeeded });
      if (res.succeeded) break;
    }
    pool.sort((a, b) => a.score - b.score || a.round - b.round);
    const best = pool[0];
    let z = best.z;
    if (!best.ok) {
      const res = await initNoOptimise(tapped, ev, best.xT, lossOpts, {
        ...noise,
        maxStep: opts.rerunSteps ?? 50,
      });
      log.push({
        round: best.round,
        score: res.score,
        succeeded: res.succeeded,
        iterations: res.iterations,
        rerun: true,
      });
      z = res.latents;
    }
    rounds[item] = log;
    return z;
  };

  /** Evaluates at `x`; the gradient is the joint loss's or L_ca's (or none). */
  const evaluate = async (
    e: AdjustEvent,
    x: Tensor,
    item: number,
    grad: (terms: InitNoResult["terms"]) => InitNoWeights | null,
  ) => {
    const ctx = itemOf(e.context, item);
    const lossOpts = mapOpts(e);
    let result: InitNoResult | undefined;
    try {
      const r = await adjustGrad(tapped, { ...e, latents: x, context: ctx }, (maps) => {
        const all = initNoLoss(maps, { ...lossOpts, weights: joint, cache: caches[item] });
        const w = grad(all.terms);
        // Same maps, same cache in: the terms and the cache out are those of `all`.
        const r = w === null
          ? { ...all, grad: {} }
          : w === joint
          ? all
          : initNoLoss(maps, { ...lossOpts, weights: w, cache: caches[item] });
        result = { ...all, grad: r.grad };
        return result;
      });
      caches[item] = result!.cache;
      return { terms: result!.terms, value: r.values[0], grad: r.grad.data };
    } catch (err) {
      throw err instanceof NonFiniteLossError ? err.at(e.step, item) : err;
    }
  };
  const update = (x: Tensor, g: Float32Array, alpha: number): Tensor =>
    tensor(x.shape, x.data.map((v, j) => v - alpha * g[j]));

  const adjust: AdjustHook = async (e) => {
    const b = e.latents.shape[0];
    let latents = e.latents;
    if (e.step === 0 && !opts.skipNoise) {
      const per = latents.data.length / b;
      const out = new Float32Array(latents.data.length);
      for (let i = 0; i < b; i++) out.set((await optimiseNoise(e, i)).data, i * per);
      latents = tensor(latents.shape, out);
    }
    if (e.step >= maxIter) return latents;
    const alpha = gsnStepSize(e.step, e.steps, opts.scaleFactor ?? 20, opts.scaleRange ?? [1, 0.5]);
    const isRefine = refineSteps.includes(e.step);
    const per = latents.data.length / b;
    const out = new Float32Array(latents.data.length);
    for (let i = 0; i < b; i++) {
      let x = itemOf(latents, i);
      const wantsRefine = (t: InitNoResult["terms"]) =>
        isRefine && (t.crossAttn > refineCross || t.selfAttn > refineSelf);
      let r = await evaluate(e, x, i, (t) => (wantsRefine(t) ? null : crossAlone));
      const before = r.terms;
      let iterations = 0;
      if (wantsRefine(before)) {
        const target = Math.max(0, 1 - refineThr);
        let t = before;
        while (t.crossAttn > target || t.selfAttn > refineSelf) {
          iterations++;
          r = await evaluate(e, x, i, () => joint);
          t = r.terms;
          if (r.value !== 0) x = update(x, r.grad, alpha);
          if (iterations >= maxRefine) break;
        }
        r = await evaluate(e, x, i, () => crossAlone);
      }
      if (r.terms.crossAttn !== 0) x = update(x, r.grad, alpha);
      stepLog.push({
        step: e.step,
        alpha,
        item: i,
        before,
        refinements: iterations,
        final: r.terms,
      });
      out.set(x.data, i * per);
    }
    return tensor(latents.shape, out);
  };
  return { adjust, rounds, steps: stepLog, targets };
}
