/**
 * The step-selection paper ("Text-to-Image Alignment in Denoising-Based Models through Step
 * Selection", methods spec §3): one IterRef step of Adam shifts on the GSN loss (Attend-and-Excite
 * + soft IoU) at a chosen sampling step, optionally followed by per-step guidance (GSNg), and the
 * validation that picks that step: try each candidate step on validation prompts and seeds, score
 * the images, keep the best.
 *
 * Defaults and choices:
 * - IterRef: `iterRef` (lib/control/iter_ref.ts): 50 Adam shifts, eps 1e-3, lr = 20·√(linspace(1,
 *   0.5, steps)[i]), default step the one nearest timestep 0.821·T (step 8 of 50 on SD 1.4).
 * - The loss reads the cross-attention of the A&E resolution only (lib/losses/resolution.ts);
 *   `taps: "all"` uses every layer.
 * - GSNg: the paper's "Ours+" uses SynGen's guidance after the IterRef step. SynGen's loss needs a
 *   dependency parse and is not here; `guidance` instead takes one plain gradient step per step on
 *   the same GSN loss, x ← x − α_i ∇L with A&E's α_i = 20·√(linspace(1, 0.5, steps)[i]), at every
 *   step after the IterRef step and before `guidance.until` (default 25, A&E's max_iter_to_alter).
 * - Validation: the score of a step is the mean over prompts × seeds of `score(image, prompt)`.
 *   The paper min-max scales each validation set's scores and sums over sets; with one set the
 *   argmax is the same. Ties go to the earliest candidate.
 *
 * @module
 */
import { check } from "../errors.ts";
import type { AttentionMaps } from "../attention/types.ts";
import { gsnLoss, type GsnOptions, type GsnResult } from "../losses/gsn.ts";
import { type TapSelection, withTaps } from "../losses/resolution.ts";
import type { TokenColumns } from "../losses/types.ts";
import type { DiffusionModel } from "../runtime/model.ts";
import {
  decodeLatents,
  defaultSampler,
  sampleLatents,
  type SampleOptions,
} from "../runtime/sample.ts";
import { expectStepIndex } from "../samplers/sampler.ts";
import { type Tensor, tensor } from "../tensor.ts";
import { isacSpecFor } from "./isac_spec.ts";
import { type AdamOptions, gsnStepSize, iterRef, type IterRefStepLog } from "./iter_ref.ts";
import { adjustGrad, type AdjustHook, chainAdjust, itemNorms } from "./optimise_latent.ts";
import { NonFiniteLossError } from "./latent_grad.ts";

/** Options of {@link gsnRefiner}. */
export interface GsnRefinerOptions {
  /** Target tokens (default: the class tokens the prompt parser finds with the model's vocabulary). */
  targets?: readonly TokenColumns[];
  /** The IterRef step index (default: nearest timestep 0.821·T, as `iterRef`). */
  step?: number;
  /** Number of sampling steps, to check `step` before sampling (checked at run time anyway). */
  steps?: number;
  /** Adam shifts (default 50). */
  shifts?: number;
  /** Adam learning rate (default the GSN step size at the step). */
  lr?: number;
  /** Adam constants (default eps 1e-3). */
  adam?: AdamOptions;
  /** GSN loss options other than the tokens (τ, smoothing, λs, IoU form). */
  loss?: Omit<GsnOptions, "tokens">;
  /** Which taps feed the loss (default "attendExcite": the A&E resolution only). */
  taps?: TapSelection;
  /** Per-step guidance after the IterRef step (GSNg); `true` for the defaults. */
  guidance?: boolean | { until?: number; lr?: (step: number, steps: number) => number };
}

/** One GSNg step. */
export interface GuidanceLog {
  /** Step index (0 = noisiest). */
  step: number;
  /** Loss per candidate before the update. */
  value: number[];
  /** Learning rate used. */
  lr: number;
  /** ‖∇‖₂ per candidate. */
  gradNorm: number[];
}

/** The refiner's adjust hook and logs. */
export interface GsnRefiner {
  /** Pass as `adjust` to `sampleLatents`. */
  readonly adjust: AdjustHook;
  /** The IterRef step(s). */
  readonly iterRef: IterRefStepLog[];
  /** The GSNg steps. */
  readonly guidance: GuidanceLog[];
  /** The targets used. */
  readonly targets: readonly TokenColumns[];
}

/** The GSN loss on a prompt's targets, as latent optimisation takes it. */
export function gsnMapsLoss(
  targets: readonly TokenColumns[],
  opts: Omit<GsnOptions, "tokens"> = {},
): (maps: AttentionMaps) => GsnResult {
  return (maps) => gsnLoss(maps, { ...opts, tokens: targets });
}

/** The step-selection method: IterRef on the GSN loss at one step (+ optional GSNg). */
export function gsnRefiner(
  model: DiffusionModel,
  prompt: string,
  opts: GsnRefinerOptions = {},
): GsnRefiner {
  if (opts.step !== undefined && opts.steps !== undefined) expectStepIndex(opts.step, opts.steps);
  const targets = opts.targets ?? isacSpecFor(model, prompt).isac.tokens;
  check(targets.length > 0, "targets", `no target tokens found in "${prompt}"`);
  const loss = gsnMapsLoss(targets, opts.loss);
  const tapped = withTaps(model, opts.taps ?? "attendExcite");
  const ir = iterRef(tapped, {
    loss: (maps) => loss(maps),
    at: opts.step === undefined ? undefined : [opts.step],
    shifts: opts.shifts,
    lr: opts.lr,
    adam: opts.adam,
  });
  const guide = opts.guidance === true ? {} : opts.guidance || undefined;
  const until = guide?.until ?? 25;
  const guidance: GuidanceLog[] = [];
  let refinedAt: number | undefined;
  const checkStep: AdjustHook = (e) => {
    if (opts.step !== undefined) expectStepIndex(opts.step, e.steps);
    return Promise.resolve(e.latents);
  };
  const refine: AdjustHook = async (e) => {
    const before = ir.log.length;
    const x = await ir.adjust(e);
    if (ir.log.length > before) refinedAt = e.step;
    return x;
  };
  const gsng: AdjustHook = async (e) => {
    if (!guide || refinedAt === undefined || e.step <= refinedAt || e.step >= until) {
      return e.latents;
    }
    const lr = guide.lr ? guide.lr(e.step, e.steps) : gsnStepSize(e.step, e.steps);
    let r;
    try {
      r = await adjustGrad(tapped, e, loss);
    } catch (err) {
      throw err instanceof NonFiniteLossError ? err.at(e.step) : err;
    }
    const next = new Float32Array(e.latents.data.length);
    for (let j = 0; j < next.length; j++) next[j] = e.latents.data[j] - lr * r.grad.data[j];
    guidance.push({ step: e.step, value: r.values, lr, gradNorm: itemNorms(r.grad) });
    return tensor(e.latents.shape, next);
  };
  return {
    adjust: chainAdjust(checkStep, refine, gsng),
    iterRef: ir.log,
    guidance,
    targets,
  };
}

/** Options of {@link selectStep}. */
export interface SelectStepOptions
  extends Omit<SampleOptions, "seed" | "adjust" | "candidates" | "taps" | "onStep"> {
  /** Candidate IterRef step indices (the paper: 0, 2, …, 24 of 50). */
  candidates: readonly number[];
  /** Validation prompts. */
  prompts: readonly string[];
  /** Seeds, the same for every prompt and step. */
  seeds: readonly number[];
  /** Score of one image `[3, H, W]` in [0, 1] for its prompt; higher is better. */
  score: (image: Tensor, prompt: string) => number | Promise<number>;
  /** Refiner options other than the step (shifts, loss, GSNg, targets per prompt). */
  refine?: Omit<GsnRefinerOptions, "step" | "steps" | "targets"> & {
    targets?: (prompt: string) => readonly TokenColumns[];
  };
  /**
   * Makes the image `[3, H, W]` (or `[1, 3, H, W]`) for (step, prompt, seed); default: sample with
   * {@link gsnRefiner} at that step and decode. A hook for tests and other methods.
   */
  generate?: (step: number, prompt: string, seed: number) => Promise<Tensor>;
}

/** One candidate step's scores. */
export interface StepScore {
  /** The step index. */
  step: number;
  /** Its model timestep. */
  timestep: number;
  /** Mean score over prompts × seeds. */
  score: number;
  /** scores[p][s] for prompt p and seed s. */
  scores: number[][];
}

/** The outcome of {@link selectStep}. */
export interface StepSelection {
  /** The best step index. */
  best: number;
  /** Its mean score. */
  bestScore: number;
  /** One row per candidate, in the order given. */
  table: StepScore[];
}

/**
 * Tries every candidate IterRef step on the validation prompts and seeds; returns the best.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadShapesModel, selectStep } from "@attnkit/attnkit";
 * const model = await loadShapesModel();
 * const brightness = (image: { data: Float32Array }) =>
 *   image.data.reduce((a, b) => a + b, 0) / image.data.length;
 * const sel = await selectStep(model, {
 *   candidates: [0, 1],
 *   prompts: ["a red circle"],
 *   seeds: [0],
 *   steps: 3,
 *   refine: { shifts: 2 }, // IterRef's 50 Adam shifts cut to 2 to keep this quick
 *   score: brightness, // a real run scores with a detector or a judge
 * });
 * assert.equal(sel.table.length, 2);
 * assert.equal(sel.bestScore, Math.max(...sel.table.map((r) => r.score)));
 * await model.release();
 * ```
 */
export async function selectStep(
  model: DiffusionModel,
  opts: SelectStepOptions,
): Promise<StepSelection> {
  const sampler = opts.sampler ?? defaultSampler(model, opts.steps ?? 50);
  const ts = sampler.timesteps();
  check(
    Array.isArray(opts.candidates) && opts.candidates.length > 0,
    "candidates",
    "expected at least one step",
  );
  for (const c of opts.candidates) expectStepIndex(c, ts.length);
  check(Array.isArray(opts.prompts) && opts.prompts.length > 0, "prompts", "expected a prompt");
  check(
    Array.isArray(opts.seeds) && opts.seeds.length > 0 && opts.seeds.every(Number.isSafeInteger),
    "seeds",
    "expected at least one seed, each a safe integer",
  );
  check(typeof opts.score === "function", "score", "expected a function (image, prompt) → number");
  const {
    candidates: _c,
    prompts: _p,
    seeds: _s,
    score: _score,
    refine: _r,
    generate: _g,
    ...sampling
  } = opts;
  const generate = opts.generate ?? (async (step: number, prompt: string, seed: number) => {
    const { targets, ...refine } = opts.refine ?? {};
    const r = gsnRefiner(model, prompt, {
      ...refine,
      step,
      steps: ts.length,
      targets: targets?.(prompt),
    });
    const latents = await sampleLatents(model, prompt, {
      ...sampling,
      sampler,
      seed,
      adjust: r.adjust,
      label: opts.label ?? `IterRef at step ${step}`,
    });
    return decodeLatents(model, latents);
  });
  const table: StepScore[] = [];
  for (const step of opts.candidates) {
    const scores: number[][] = [];
    for (const prompt of opts.prompts) {
      const row: number[] = [];
      for (const seed of opts.seeds) {
        const image = await generate(step, prompt, seed);
        const one = image.shape.length === 4 ? firstImage(image) : image;
        const s = await opts.score(one, prompt);
        check(
          typeof s === "number" && Number.isFinite(s),
          "score",
          `returned ${s} for "${prompt}" (seed ${seed}, step ${step}); expected a finite number`,
        );
        row.push(s);
      }
      scores.push(row);
    }
    const all = scores.flat();
    table.push({
      step,
      timestep: ts[step],
      score: all.reduce((a, b) => a + b, 0) / all.length,
      scores,
    });
  }
  let best = 0;
  for (let i = 1; i < table.length; i++) if (table[i].score > table[best].score) best = i;
  return { best: table[best].step, bestScore: table[best].score, table };
}

function firstImage(t: Tensor): Tensor {
  const per = t.data.length / t.shape[0];
  return tensor(t.shape.slice(1), t.data.slice(0, per));
}
