/**
 * SynGen (Rassin et al., NeurIPS 2023) as an `adjust` hook of `sampleLatents`: at every step
 * i < `interventionSteps` (25 of 50), one gradient step z ← z − 20·∇_z L on the syntactic-binding
 * loss (lib/losses/syngen.ts) of the conditional pass, per candidate, skipped when L = 0. Exact
 * loop of the reference `RoyiRa/Syntax-Guided-Generation@1480178`, `_syngen_step` (step size
 * `syngen_step_size` = 20, constant; `num_intervention_steps` = 25).
 *
 * Subtrees: the reference parses the prompt with spaCy (`en_core_web_trf`) and pairs each noun
 * with its `amod`/`compound`/… modifiers; nouns without modifiers enter only with
 * `include_entities` (off by default). Here the prompt parser (lib/prompt) gives each class noun
 * and its attribute words (colours on the embedded model), so the subtrees are (noun, attributes)
 * for every target with at least one attribute; `includeEntities` adds the others. Counts ("three")
 * are `nummod` in spaCy and not modifiers, and they are not here either. The outside tokens are
 * every prompt token (start, end and padding excluded) not in the subtree.
 *
 * Departures: the sampler is the caller's (the benchmark: our DDIM with 25 steps, so the
 * intervention covers steps i < 13, the same first half; the reference: SD 1.4's PNDM, 50 steps);
 * the maps are the model's A&E-resolution layers (SynGen's `attn_res` rule); the reference keeps
 * only the last candidate of a batch (its `updated_latents.append` sits outside the loop), here
 * each candidate is updated on its own.
 *
 * @module
 */
import { check } from "../errors.ts";
import { synGenLoss, type SynGenResult, type SynGenSubtree } from "../losses/syngen.ts";
import { type TapSelection, withTaps } from "../losses/resolution.ts";
import type { TokenTarget } from "../prompt/types.ts";
import type { DiffusionModel } from "../runtime/model.ts";
import { type Tensor, tensor } from "../tensor.ts";
import { isacSpecFor } from "./isac_spec.ts";
import { NonFiniteLossError } from "./latent_grad.ts";
import { adjustGrad, type AdjustHook } from "./optimise_latent.ts";

/** Options of {@link synGen}; defaults are the reference's. */
export interface SynGenRunOptions {
  /** Subtrees (default: from the prompt parser, see the module doc). */
  subtrees?: readonly SynGenSubtree[];
  /** Add targets without attributes as entity subtrees (default false, as the reference). */
  includeEntities?: boolean;
  /** Steps with an update: i < this (default 25). */
  interventionSteps?: number;
  /** Step size (default 20). */
  stepSize?: number;
  /** Which taps feed the loss (default "attendExcite"). */
  taps?: TapSelection;
}

/** One step of one candidate. */
export interface SynGenStepLog {
  /** Step index. */
  step: number;
  /** Candidate. */
  item: number;
  /** Loss before the update. */
  value: number;
  /** Its positive and negative parts. */
  positive: number;
  /** The negative part. */
  negative: number;
}

/** The hook with its log. */
export interface SynGen {
  /** Pass as `adjust` to `sampleLatents`. */
  readonly adjust: AdjustHook;
  /** One entry per updated step and candidate. */
  readonly log: SynGenStepLog[];
  /** The subtrees used. */
  readonly subtrees: readonly SynGenSubtree[];
  /** The prompt's token columns (the outside pool). */
  readonly promptTokens: readonly number[];
}

/**
 * SynGen's subtrees from parsed targets: (noun tokens, one entry per attribute word).
 *
 * @example
 * ```ts
 * import { isacSpecFor, loadShapesModel, synGenSubtrees } from "@attnkit/attnkit";
 * const model = await loadShapesModel();
 * const spec = isacSpecFor(model, "a photo of a red circle and a square");
 * synGenSubtrees(spec.targets); // [{ noun: [6], modifiers: [[5]] }]: the bare square is left out
 * ```
 */
export function synGenSubtrees(
  targets: readonly TokenTarget[],
  includeEntities = false,
): SynGenSubtree[] {
  return targets
    .filter((t) => includeEntities || t.attributes.length > 0)
    .map((t) => ({ noun: [...t.tokens], modifiers: t.attributes.map((a) => [...a.tokens]) }));
}

/**
 * The token columns of a prompt's own tokens (start, end and padding excluded).
 *
 * @example
 * ```ts
 * import { loadShapesModel, promptColumns } from "@attnkit/attnkit";
 * const model = await loadShapesModel();
 * promptColumns(model, "a red circle"); // [1, 2, 3]
 * ```
 */
export function promptColumns(model: DiffusionModel, prompt: string): number[] {
  const tok = model.tokenizer.tokenize(prompt);
  const out: number[] = [];
  tok.pieces.forEach((p, i) => {
    if (i > 0 && p.end > p.start) out.push(i);
  });
  return out;
}

/**
 * SynGen as an adjust hook; see the module doc.
 *
 * @example
 * ```ts
 * import { loadShapesModel, sampleLatents, synGen } from "@attnkit/attnkit";
 * const model = await loadShapesModel();
 * const prompt = "a photo of a red circle and a blue square";
 * const hook = synGen(model, prompt, { interventionSteps: 13 });
 * const latents = await sampleLatents(model, prompt, { seed: 0, steps: 25, adjust: hook.adjust });
 * console.log(hook.log.map((l) => l.value));
 * ```
 */
export function synGen(
  model: DiffusionModel,
  prompt: string,
  opts: SynGenRunOptions = {},
): SynGen {
  const subtrees = opts.subtrees ??
    synGenSubtrees(isacSpecFor(model, prompt).targets, opts.includeEntities ?? false);
  const promptTokens = promptColumns(model, prompt);
  const steps = opts.interventionSteps ?? 25;
  check(Number.isInteger(steps) && steps >= 0, "interventionSteps", `got ${steps}`);
  const size = opts.stepSize ?? 20;
  check(Number.isFinite(size) && size >= 0, "stepSize", `expected a number ≥ 0, got ${size}`);
  const tapped = withTaps(model, opts.taps ?? "attendExcite");
  const log: SynGenStepLog[] = [];
  const lossOpts = { subtrees, promptTokens };

  const adjust: AdjustHook = async (e) => {
    if (e.step >= steps || subtrees.length === 0) return e.latents;
    const b = e.latents.shape[0];
    const per = e.latents.data.length / b;
    const cper = e.context.data.length / b;
    const out = new Float32Array(e.latents.data.length);
    for (let i = 0; i < b; i++) {
      const x = tensor(
        [1, ...e.latents.shape.slice(1)],
        e.latents.data.slice(i * per, (i + 1) * per),
      );
      const ctx = tensor(
        [1, ...e.context.shape.slice(1)],
        e.context.data.slice(i * cper, (i + 1) * cper),
      );
      let r;
      try {
        r = await adjustGrad(
          tapped,
          { ...e, latents: x, context: ctx },
          (maps): SynGenResult => synGenLoss(maps, lossOpts),
        );
      } catch (err) {
        throw err instanceof NonFiniteLossError ? err.at(e.step, i) : err;
      }
      const res = r.results[0];
      log.push({
        step: e.step,
        item: i,
        value: res.value,
        positive: res.positive,
        negative: res.negative,
      });
      const g = r.grad.data;
      const next: Tensor = res.value !== 0
        ? tensor(x.shape, x.data.map((v, j) => v - size * g[j]))
        : x;
      out.set(next.data, i * per);
    }
    return tensor(e.latents.shape, out);
  };
  return { adjust, log, subtrees, promptTokens };
}
