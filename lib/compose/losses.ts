/**
 * Losses for recipes: each `lossOf.*` returns a factory that, when a run starts, reads the prompt
 * (class tokens, counts) and gives a step-aware map loss `(maps, item, at) → { value, grad }`.
 * Any map loss of your own plugs in through {@link lift}.
 *
 * Sources: ISAC Eq. 3–10 with the λ schedule (lib/isac/loss.ts, lib/schedule.ts); Attend-and-
 * Excite (methods spec §1, lib/losses/attend_excite.ts); MIFO's box reward/penalty (MIFO §3.3,
 * lib/losses/box.ts).
 *
 * @module
 */
import { AttnkitError, check } from "../errors.ts";
import type { AttentionMaps } from "../attention/types.ts";
import { isacStepLoss, type StepMapsLoss } from "../control/optimise_latent.ts";
import type { MapsLoss, MapsLossResult } from "../control/latent_grad.ts";
import type { IsacLossFn } from "../control/optimise_latent.ts";
import { type Schedule, schedule as schedules } from "../schedule.ts";
import { attendExciteLoss, type AttendExciteOptions } from "../losses/attend_excite.ts";
import { type Box, boxLoss, type BoxLossOptions, checkBox } from "../losses/box.ts";
import { sumLosses } from "../losses/combine.ts";
import { iouLoss, type IouOptions } from "../losses/iou.ts";
import { gsnLoss, type GsnOptions } from "../losses/gsn.ts";
import type { RunContext } from "./recipe.ts";

/** A loss for a recipe: built once per run from the run's context. */
export type RunLoss = (ctx: RunContext) => StepMapsLoss;

/**
 * Catches a factory passed uncalled (`lossOf.isac` for `lossOf.isac()`): the run then hands the
 * factory its context as options.
 */
function expectOptions(opts: unknown, name: string): void {
  const o = opts as Partial<RunContext> | undefined;
  if (o && typeof o === "object" && "sampler" in o && "model" in o && "spec" in o) {
    throw new AttnkitError("loss", `lossOf.${name} must be called: write lossOf.${name}(…)`);
  }
}

/** Options of {@link isac}. */
export interface IsacLossOptions {
  /** λ schedule over time (default the paper's soft instance-to-semantic schedule). */
  schedule?: Schedule;
  /** The objective (default `isacLoss`; a variant of the same signature). */
  loss?: IsacLossFn;
}

/**
 * ISAC's L_t = λ_ins(t)·L_ins + λ_cls(t)·L_cls on the prompt's class tokens and counts.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isac } from "./losses.ts";
 * import { schedule } from "../schedule.ts";
 * const loss = isac({ schedule: schedule.soft });
 * assert(typeof loss === "function");
 * ```
 */
export function isac(opts: IsacLossOptions = {}): RunLoss {
  expectOptions(opts, "isac");
  return (ctx) => isacStepLoss(ctx.spec().isac, opts.schedule ?? schedules.soft, opts.loss);
}

/**
 * Attend-and-Excite's loss: 1 − (the weakest class token's highest smoothed cross-attention),
 * on the prompt's class tokens unless `tokens` is given.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { attendExcite } from "./losses.ts";
 * const loss = attendExcite({ tokens: [2, 5] });
 * assert(typeof loss === "function");
 * ```
 */
export function attendExcite(opts: Partial<AttendExciteOptions> = {}): RunLoss {
  expectOptions(opts, "attendExcite");
  return (ctx) => {
    const tokens = tokensOf(ctx, opts.tokens);
    return (maps) => attendExciteLoss(maps, { ...opts, tokens });
  };
}

/** The prompt's class tokens unless `tokens` is given (A&E, IoU and GSN target them). */
function tokensOf(ctx: RunContext, tokens: AttendExciteOptions["tokens"] | undefined) {
  const t = tokens ?? ctx.spec().isac.tokens;
  check(t.length > 0, "tokens", `no target tokens found in "${ctx.prompt}"`);
  return t;
}

/**
 * The step-selection paper's soft IoU between every pair of target maps (methods spec §3), on
 * the prompt's class tokens unless `tokens` is given.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { iou } from "./losses.ts";
 * assert(typeof iou() === "function");
 * ```
 */
export function iou(opts: Partial<IouOptions> = {}): RunLoss {
  expectOptions(opts, "iou");
  return (ctx) => {
    const tokens = tokensOf(ctx, opts.tokens);
    return (maps) => iouLoss(maps, { ...opts, tokens });
  };
}

/**
 * GSN: Attend-and-Excite's max loss plus the soft IoU (the step-selection paper, methods spec §3).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { gsn } from "./losses.ts";
 * assert(typeof gsn({ lambdaIou: 1 }) === "function");
 * ```
 */
export function gsn(opts: Partial<GsnOptions> = {}): RunLoss {
  expectOptions(opts, "gsn");
  return (ctx) => {
    const tokens = tokensOf(ctx, opts.tokens);
    return (maps) => gsnLoss(maps, { ...opts, tokens });
  };
}

/** Options of {@link box}. */
export interface BoxOptions extends Omit<BoxLossOptions, "tokens" | "boxes" | "alpha"> {
  /** A box `[x0, y0, x1, y1]` in [0, 1] per class noun of the prompt (singular form). */
  boxes: Readonly<Record<string, Box>>;
  /** Penalty weight α (default 1; MIFO decays it over steps with `schedule.mifoDecay`). */
  alpha?: number;
}

/**
 * MIFO's in-box reward and out-of-box penalty for the named nouns' boxes.
 *
 * @throws {AttnkitError} naming `boxes` when a noun is not a class of the prompt.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { box } from "./losses.ts";
 * const loss = box({ boxes: { circle: [0, 0, 0.5, 1], square: [0.5, 0, 1, 1] } });
 * assert(typeof loss === "function");
 * ```
 */
export function box(opts: BoxOptions): RunLoss {
  expectOptions(opts, "box");
  check(
    opts !== null && typeof opts === "object" && opts.boxes !== null &&
      typeof opts.boxes === "object" && !Array.isArray(opts.boxes) &&
      Object.keys(opts.boxes).length > 0,
    "boxes",
    "expected { noun: [x0, y0, x1, y1], … } with at least one noun",
  );
  for (const [word, b] of Object.entries(opts.boxes)) checkBox(b, `boxes.${word}`);
  check(
    opts.alpha === undefined || (typeof opts.alpha === "number" && Number.isFinite(opts.alpha)),
    "alpha",
    `must be a finite number, got ${opts.alpha}`,
  );
  return (ctx) => {
    const targets = ctx.spec().targets;
    const tokens: (readonly number[])[] = [];
    const boxes: Box[] = [];
    for (const [word, b] of Object.entries(opts.boxes)) {
      const t = targets.find((x) => x.word === word);
      check(
        t !== undefined,
        "boxes",
        `"${word}" is not a class noun of "${ctx.prompt}" (found: ${
          targets.map((x) => x.word).join(", ") || "none"
        })`,
      );
      tokens.push(t.tokens);
      boxes.push(b);
    }
    const { boxes: _b, alpha, ...rest } = opts;
    return (maps) => boxLoss(maps, { ...rest, tokens, boxes, alpha: alpha ?? 1 });
  };
}

/**
 * A weighted sum of losses (weights default 1); the gradient is the same weighted sum.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { box, isac, sum } from "./losses.ts";
 * const loss = sum(isac(), [box({ boxes: { circle: [0, 0, 0.5, 1] } }), 0.5]);
 * assert(typeof loss === "function");
 * ```
 */
export function sum(...terms: readonly (RunLoss | readonly [RunLoss, number])[]): RunLoss {
  check(terms.length > 0, "terms", "needs at least one loss");
  terms.forEach((t, i) => {
    const [loss, weight] = typeof t === "function" ? [t, 1] : (Array.isArray(t) ? t : [t, 1]);
    check(typeof loss === "function", `terms[${i}]`, "expected a loss or [loss, weight]");
    check(Number.isFinite(weight), `terms[${i}]`, `weight must be finite, got ${weight}`);
  });
  return (ctx) => {
    const built = terms.map((t) =>
      typeof t === "function" ? { loss: t(ctx), weight: 1 } : { loss: t[0](ctx), weight: t[1] }
    );
    return (maps, item, at) =>
      sumLosses(...built.map((b) => ({
        loss: ((m: AttentionMaps) => b.loss(m, item, at)) as MapsLoss,
        weight: b.weight,
      })))(maps, item);
  };
}

/**
 * Your own loss on maps (optionally step-aware) as a recipe loss.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lift } from "./losses.ts";
 * import { tensor } from "../tensor.ts";
 * import type { AttentionMaps } from "../attention/types.ts";
 * // Mean cross-attention on token 2, as a (negated) reward.
 * const mine = lift((maps: AttentionMaps) => {
 *   const [n, l] = maps.cross.shape;
 *   const g = new Float32Array(n * l);
 *   let v = 0;
 *   for (let p = 0; p < n; p++) { v -= maps.cross.data[p * l + 2] / n; g[p * l + 2] = -1 / n; }
 *   return { value: v, grad: { cross: tensor([n, l], g) } };
 * });
 * assert(typeof mine === "function");
 * ```
 */
export function lift<R extends MapsLossResult>(loss: StepMapsLoss<R>): RunLoss {
  check(
    typeof loss === "function",
    "loss",
    "expected (maps, item, at) => { value, grad }",
  );
  return () => loss;
}

/** The shape of {@link lossOf}: each entry builds a {@link RunLoss}. */
export interface LossCatalogue {
  /** ISAC's L_t (Eq. 3–10) with its λ schedule. */
  isac(opts?: IsacLossOptions): RunLoss;
  /** Attend-and-Excite's max-of-minimum loss. */
  attendExcite(opts?: Partial<AttendExciteOptions>): RunLoss;
  /** Soft IoU between target maps. */
  iou(opts?: Partial<IouOptions>): RunLoss;
  /** GSN: A&E + IoU. */
  gsn(opts?: Partial<GsnOptions>): RunLoss;
  /** MIFO's box reward and penalty. */
  box(opts: BoxOptions): RunLoss;
  /** A weighted sum. */
  sum(...terms: readonly (RunLoss | readonly [RunLoss, number])[]): RunLoss;
  /** Your own map loss. */
  lift<R extends MapsLossResult>(loss: StepMapsLoss<R>): RunLoss;
}

/**
 * The recipe losses by name: `lossOf.isac()`, `lossOf.attendExcite()`, `lossOf.iou()`,
 * `lossOf.gsn()`, `lossOf.box({ boxes })`, `lossOf.sum(a, [b, 0.5])`, `lossOf.lift(myLoss)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { guide, loadShapesModel, lossOf, recipe, rules, run } from "@attnkit/attnkit";
 * // Attend-and-Excite's loss plus half of the soft IoU, as gradient steps on a 4-step run.
 * const loss = lossOf.sum(lossOf.attendExcite(), [lossOf.iou(), 0.5]);
 * const model = await loadShapesModel();
 * const r = guide({ loss, rule: rules.gradient(10), at: [0] })(
 *   recipe(model, "a red circle and a blue square", { steps: 4 }),
 * );
 * const out = await run({ seed: 0 })(r);
 * assert.deepEqual(out.images.shape, [1, 3, 64, 64]);
 * await model.release();
 * ```
 */
export const lossOf: LossCatalogue = { isac, attendExcite, iou, gsn, box, sum, lift };
