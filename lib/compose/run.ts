/**
 * `run`: executes a recipe for one seed (data-last, the last stage of a `pipe`). It builds the
 * sampler, parses the prompt once, runs the selection pre-pass if the recipe has one, then the
 * main sampling loop with the recipe's controls chained in order, and decodes the result.
 *
 * @module
 */
import { accumulateMaps } from "../attention/accumulate.ts";
import { check } from "../errors.ts";
import { isacSpecFor, type PromptSpec } from "../control/isac_spec.ts";
import { chainAdjust } from "../control/optimise_latent.ts";
import { decodeLatents, defaultSampler, initialLatents, sampleLatents } from "../runtime/sample.ts";
import type { Sampler } from "../samplers/sampler.ts";
import { type Tensor, tensor } from "../tensor.ts";
import { type ControlLogEntry, isSampler, type Recipe, type RunContext } from "./recipe.ts";

/** Options of {@link run}. */
export interface RunOptions {
  /** Integer seed; candidate i starts from seed + i's noise. */
  seed: number;
  /** Decode to images (default true). */
  decode?: boolean;
  /** Called after each sampling step with (steps done, total) of the current pass. */
  onProgress?: (done: number, total: number) => void;
  /** Draw a progress bar on stderr (default false). */
  progress?: boolean;
}

/** What a selection pre-pass found. */
export interface SelectionOutcome {
  /** Its label. */
  label: string;
  /** Σ_t score per candidate (lower is better). */
  scores: number[];
  /** Index of the winner. */
  best: number;
  /** True when every candidate scored the same (the score cannot tell them apart; 0 won). */
  tied: boolean;
}

/** The result of {@link run}. */
export interface Outcome {
  /** Clean latents `[N, C, h, w]`. */
  latents: Tensor;
  /** Decoded images `[N, 3, H, W]` in [0, 1] (empty shape `[0]` when `decode: false`). */
  images: Tensor;
  /** The seed the result was sampled from (the winner's, after a selection). */
  seed: number;
  /** Every control's log, in step order. */
  log: ControlLogEntry[];
  /** The selection pre-pass, when the recipe had one. */
  selection?: SelectionOutcome;
}

/** The sampler a recipe asks for (a ready one, a factory, or the model's DDIM). */
export function samplerOf(r: Recipe): Sampler {
  if (isSampler(r.sampler)) return r.sampler;
  if (typeof r.sampler === "function") return r.sampler(r.model, r.steps);
  return defaultSampler(r.model, r.steps);
}

function contextOf(r: Recipe, sampler: Sampler): RunContext {
  let spec: PromptSpec | undefined;
  return {
    model: r.model,
    prompt: r.prompt,
    sampler,
    spec: () => (spec ??= isacSpecFor(r.model, r.prompt)),
  };
}

function item(t: Tensor, i: number): Tensor {
  const per = t.data.length / t.shape[0];
  return tensor([1, ...t.shape.slice(1)], t.data.slice(i * per, (i + 1) * per));
}

/**
 * Runs a recipe: `pipe(recipe(model, prompt), …controls, run({ seed }))`.
 *
 * @throws {AttnkitError} naming `seed`, or `candidates` when a selection recipe asks for more
 * than one main candidate; errors of the model and controls pass through.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pipe } from "npm:fp-ts@2.16.11/lib/function.js";
 * import { loadShapesModel, recipe, run } from "@attnkit/attnkit";
 * const model = await loadShapesModel();
 * const out = await pipe(recipe(model, "a photo of two red stars", { steps: 4 }), run({ seed: 1 }));
 * assert(out.images.shape.join() === "1,3,64,64");
 * await model.release();
 * ```
 */
export function run(opts: RunOptions): (r: Recipe) => Promise<Outcome> {
  check(opts !== null && typeof opts === "object", "opts", "expected { seed }");
  check(Number.isSafeInteger(opts.seed), "seed", `must be a safe integer, got ${opts.seed}`);
  return async (r) => {
    const sampler = samplerOf(r);
    const ctx = contextOf(r, sampler);
    const common = {
      sampler,
      guidance: r.guidance,
      onProgress: opts.onProgress,
      progress: opts.progress === true,
    };
    let seed = opts.seed;
    let start = r.latents;
    let selection: SelectionOutcome | undefined;
    let latents: Tensor | undefined;
    if (r.selection) {
      check(
        r.candidates === 1 && r.latents === undefined,
        "candidates",
        "a recipe with a selection pre-pass runs one main candidate from the winner's noise",
      );
      const sel = r.selection;
      const score = sel.score(ctx);
      const n = sel.candidates;
      const init = initialLatents(r.model.info.latentShape, seed, n, sampler.initNoiseSigma);
      const scores = new Array(n).fill(0);
      const pre = await sampleLatents(r.model, r.prompt, {
        ...common,
        seed,
        candidates: n,
        latents: init,
        taps: true,
        onStep(e) {
          for (const [i, taps] of e.taps!.entries()) {
            scores[i] += score(accumulateMaps(taps), i, e).value;
          }
        },
      });
      const best = scores.indexOf(Math.min(...scores));
      selection = { label: sel.label, scores, best, tied: scores.every((v) => v === scores[0]) };
      seed = opts.seed + best;
      start = item(init, best);
      if (r.controls.length === 0) latents = item(pre, best);
    }
    const controls = r.controls.map((c) => c.make(ctx));
    latents ??= await sampleLatents(r.model, r.prompt, {
      ...common,
      seed,
      candidates: start ? start.shape[0] : r.candidates,
      ...(start ? { latents: start } : {}),
      ...(controls.length ? { adjust: chainAdjust(...controls.map((c) => c.adjust)) } : {}),
    });
    const images = opts.decode === false ? tensor([0]) : await decodeLatents(r.model, latents);
    const log = controls.flatMap((c) => c.log).sort((a, b) => a.step - b.step);
    return { latents, images, seed, log, ...(selection ? { selection } : {}) };
  };
}
