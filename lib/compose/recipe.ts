/**
 * A recipe is plain data describing one text-to-image run: the model, the prompt, the sampler,
 * the guidance scale, the candidates, and the controls to apply. Controls (`guide`, `select`) are
 * data-last functions `Recipe → Recipe`, so a run is written with fp-ts `pipe`:
 *
 * ```ts ignore
 * pipe(recipe(model, prompt), guide({ loss: losses.isac(), rule: rules.gradient(10) }), run({ seed: 0 }))
 * ```
 *
 * Nothing runs until `run`; a recipe can be reused for many seeds.
 *
 * @module
 */
import { check } from "../errors.ts";
import type { DiffusionModel } from "../runtime/model.ts";
import type { AdjustHook } from "../control/optimise_latent.ts";
import type { PromptSpec } from "../control/isac_spec.ts";
import type { Sampler } from "../samplers/sampler.ts";
import type { Tensor } from "../tensor.ts";
import type { StepMapsLoss } from "../control/optimise_latent.ts";

/** What a control factory sees when a run starts. */
export interface RunContext {
  /** The model. */
  readonly model: DiffusionModel;
  /** The prompt. */
  readonly prompt: string;
  /** The sampler this run uses. */
  readonly sampler: Sampler;
  /** The prompt parsed against the model's tokenizer (class tokens, counts), computed once. */
  readonly spec: () => PromptSpec;
}

/** One entry of a run's control log: what a control did at one step. */
export interface ControlLogEntry {
  /** The control's label. */
  control: string;
  /** Step index (0 = noisiest). */
  step: number;
  /** Loss value per candidate before the update (one per gradient evaluation). */
  values: number[][];
  /** ‖x_after − x_before‖₂ per candidate. */
  shift: number[];
}

/** A control, instantiated for one run: an adjust hook with its log. */
export interface RunControl {
  /** Applied before each denoiser call, in recipe order. */
  readonly adjust: AdjustHook;
  /** What it did. */
  readonly log: ControlLogEntry[];
}

/** Builds a control for one run (controls may keep per-run state such as optimiser moments). */
export type ControlFactory = (ctx: RunContext) => RunControl;

/** How the initial latent is chosen before the main run (ISAC Algorithm 2 and friends). */
export interface SelectionPass {
  /** Label in the outcome. */
  readonly label: string;
  /** Candidates N scored in the pre-pass. */
  readonly candidates: number;
  /** The score: Σ over scored steps of the loss value (lowest wins). */
  readonly score: (ctx: RunContext) => StepMapsLoss;
}

/** Which sampler a recipe uses: a ready one, or one made from the model. */
export type SamplerChoice = Sampler | ((model: DiffusionModel, steps: number) => Sampler);

/** A text-to-image run as data. */
export interface Recipe {
  /** The model. */
  readonly model: DiffusionModel;
  /** The prompt. */
  readonly prompt: string;
  /** Sampler (default: the model's DDIM on its training schedule). */
  readonly sampler?: SamplerChoice;
  /** Steps for a sampler made from the model (default 50). */
  readonly steps: number;
  /** Classifier-free guidance scale (default 7.5; 1 = none). */
  readonly guidance: number;
  /** Candidates run together in the main run (default 1). */
  readonly candidates: number;
  /** Controls, applied in this order before each step. */
  readonly controls: readonly { label: string; make: ControlFactory }[];
  /** An initial-latent selection pre-pass, if any. */
  readonly selection?: SelectionPass;
  /** Initial latents `[N, C, h, w]` (default: seeded noise). */
  readonly latents?: Tensor;
}

/** Options of {@link recipe}. */
export interface RecipeOptions {
  /** Sampler (default the model's DDIM). */
  sampler?: SamplerChoice;
  /** Steps (default 50). */
  steps?: number;
  /** Guidance scale (default 7.5). */
  guidance?: number;
  /** Candidates (default 1). */
  candidates?: number;
}

/**
 * A recipe with no controls: plain sampling of `prompt` on `model`.
 *
 * @throws {AttnkitError} naming `prompt`, `steps`, `guidance` or `candidates` when out of range.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadShapesModel, recipe } from "@attnkit/attnkit";
 * const model = await loadShapesModel();
 * const r = recipe(model, "a photo of a red circle", { steps: 4 });
 * assert(r.steps === 4 && r.controls.length === 0);
 * await model.release();
 * ```
 */
export function recipe(model: DiffusionModel, prompt: string, opts?: RecipeOptions): Recipe {
  opts ??= {};
  check(
    model !== null && typeof model === "object" && typeof model.denoise === "function" &&
      typeof model.info === "object",
    "model",
    "expected a loaded model (e.g. await loadShapesModel())",
  );
  check(typeof prompt === "string" && prompt.trim() !== "", "prompt", "must be a non-empty string");
  checkSampler(opts.sampler);
  if (isSampler(opts.sampler) && opts.steps !== undefined) {
    check(
      opts.steps === opts.sampler.steps,
      "steps",
      `${opts.steps} conflicts with the sampler, which was built for ${opts.sampler.steps} steps`,
    );
  }
  const steps = opts.steps ?? (isSampler(opts.sampler) ? opts.sampler.steps : 50);
  check(Number.isInteger(steps) && steps >= 1, "steps", `must be a positive integer, got ${steps}`);
  const guidance = opts.guidance ?? 7.5;
  check(Number.isFinite(guidance) && guidance >= 1, "guidance", `must be ≥ 1, got ${guidance}`);
  const candidates = opts.candidates ?? 1;
  check(
    Number.isInteger(candidates) && candidates >= 1,
    "candidates",
    `must be a positive integer, got ${candidates}`,
  );
  return { model, prompt, sampler: opts.sampler, steps, guidance, candidates, controls: [] };
}

/** Checks a sampler choice: a Sampler object, a factory `(model, steps) → Sampler`, or absent. */
function checkSampler(s: unknown): void {
  if (s === undefined || typeof s === "function") return;
  const ok = s !== null && typeof s === "object" &&
    typeof (s as Sampler).step === "function" && typeof (s as Sampler).timesteps === "function";
  check(
    ok,
    "sampler",
    `expected a sampler (samplers.ddim(…), samplers.samplerFor("euler"), …), got ${
      typeof s === "string" ? JSON.stringify(s) : typeof s
    }`,
  );
}

/** True when `s` is a ready sampler (not a factory). */
export function isSampler(s: SamplerChoice | undefined): s is Sampler {
  return typeof s === "object" && s !== null;
}

/**
 * The recipe with another sampler (data-last, for `pipe`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadShapesModel, recipe, samplers, withSampler } from "@attnkit/attnkit";
 * const model = await loadShapesModel();
 * const r = withSampler(samplers.euler({ steps: 3 }))(recipe(model, "a photo of a red circle"));
 * assert(r.steps === 3);
 * await model.release();
 * ```
 */
export function withSampler(sampler: SamplerChoice): (r: Recipe) => Recipe {
  checkSampler(sampler);
  return (r) => ({ ...r, sampler, steps: isSampler(sampler) ? sampler.steps : r.steps });
}
