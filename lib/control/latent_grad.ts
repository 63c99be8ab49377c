/**
 * The gradient of an attention-map loss with respect to the latents, through any ONNX denoiser:
 * one conditional denoiser call with taps, per batch item the accumulated maps (ISAC Eq. 1-2),
 * the loss and its map gradient, the VJP of the accumulation down to every tap's Q and K, and the
 * model's reverse-mode pass from the taps to the latents. A model that makes the maps inside its
 * graph (`gradientFromMaps`, see `lib/hooks/maps_graph.ts`) skips the taps: the maps come from
 * the denoiser call and the map gradient goes straight into the graph's VJP.
 *
 * Generic over the loss: anything of the form `(maps, item) => { value, grad }` plugs in (ISAC,
 * Attend-and-Excite, IoU, box losses). Only the conditional context is used, as ISAC and A&E
 * compute their losses on the conditional pass.
 *
 * A loss that returns NaN or Inf, or a gradient that is not finite, raises a
 * {@link NonFiniteLossError} naming the item and the term, before any work is spent on the VJP.
 *
 * @module
 */
import { accumulateMaps } from "../attention/accumulate.ts";
import { accumulateMapsBackward } from "../attention/accumulate_backward.ts";
import type { AttentionMaps, AttentionMapsGrad, TapGrad } from "../attention/types.ts";
import { AttnkitError, check } from "../errors.ts";
import type { DiffusionModel } from "../runtime/model.ts";
import { hasGraphMaps } from "../runtime/maps.ts";
import { type Tensor, tensor } from "../tensor.ts";

/** What a map loss returns for one batch item: its value and d value / d maps. */
export interface MapsLossResult {
  /** The scalar loss. */
  value: number;
  /** Its gradient with respect to the accumulated maps (absent fields count as zero). */
  grad: AttentionMapsGrad;
  /** Named parts of the value (e.g. `ins`, `cls`), checked for NaN and Inf like the value. */
  terms?: Readonly<Record<string, number>>;
}

/** A loss on one batch item's accumulated attention maps. */
export type MapsLoss<R extends MapsLossResult = MapsLossResult> = (
  maps: AttentionMaps,
  item: number,
) => R;

/** The outcome of {@link latentGrad}. */
export interface LatentGradResult<R extends MapsLossResult = MapsLossResult> {
  /** Loss value per batch item. */
  values: number[];
  /** d(Σ_b value_b) / d latents, same shape as the latents: item b's rows hold d value_b. */
  grad: Tensor;
  /** The loss results per batch item (terms, intermediate structures). */
  results: R[];
}

/** A loss, a loss term or a gradient turned NaN or Inf. */
export class NonFiniteLossError extends AttnkitError {
  /** The term that is not finite: a key of `terms`, `value`, `grad` (map gradient) or `latent grad`. */
  readonly term: string;
  /** Batch item. */
  readonly item: number;
  /** What was found, e.g. "NaN". */
  readonly detail: string;
  /** Sampling step, when known. */
  readonly step?: number;
  /** Builds the error; the message names the step (if known), the item and the term. */
  constructor(term: string, item: number, detail: string, step?: number) {
    const where = step === undefined ? `item ${item}` : `step ${step}, item ${item}`;
    super("loss", `${where}: the ${term} term is ${detail}`);
    this.name = "NonFiniteLossError";
    this.term = term;
    this.item = item;
    this.detail = detail;
    this.step = step;
  }
  /** The same error at sampling step `step` (and batch item `item`, when it was renumbered). */
  at(step: number, item: number = this.item): NonFiniteLossError {
    return new NonFiniteLossError(this.term, item, this.detail, step);
  }
}

/** The first non-finite value of `data`, or undefined when all are finite. */
function firstNonFinite(data: Float32Array): number | undefined {
  for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i])) return data[i];
  return undefined;
}

/** Throws a {@link NonFiniteLossError} unless a loss result is finite throughout. */
export function expectFiniteLoss(r: MapsLossResult, item: number): void {
  for (const [name, v] of Object.entries(r.terms ?? {})) {
    if (!Number.isFinite(v)) throw new NonFiniteLossError(name, item, String(v));
  }
  if (!Number.isFinite(r.value)) throw new NonFiniteLossError("value", item, String(r.value));
  for (const part of ["self", "cross"] as const) {
    const g = r.grad[part];
    const bad = g && firstNonFinite(g.data);
    if (bad !== undefined) {
      throw new NonFiniteLossError("grad", item, `${bad} in d loss / d maps.${part}`);
    }
  }
}

function allZero(g: AttentionMapsGrad): boolean {
  for (const t of [g.self, g.cross]) {
    if (t && t.data.some((v) => v !== 0)) return false;
  }
  return true;
}

/**
 * The loss of every batch item's accumulated maps and d Σ loss / d latents through the model.
 * `latents` `[B, C, h, w]` and `context` `[B, L, D]` are exactly what the denoiser sees (apply
 * the sampler's input scaling before, and its chain rule after). When every item's map gradient
 * is zero (e.g. both loss weights 0) the VJP is not run and the gradient is zero.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { controls, initialLatents, isacSpecFor, loadShapesModel } from "@attnkit/attnkit";
 * const model = await loadShapesModel();
 * const prompt = "two red circles";
 * const { isac } = isacSpecFor(model, prompt);
 * const x = initialLatents(model.info.latentShape, 0, 1); // [1, 4, 16, 16]
 * const ctx = await model.encodeText([prompt]);
 * const loss = controls.isacMapsLoss(isac, { ins: 0.5, cls: 0.5 });
 * const { values, grad, results } = await controls.latentGrad(model, x, 501, ctx, loss);
 * assert.deepEqual(grad.shape, x.shape);
 * assert.ok(Math.abs(values[0] - 0.5 * (results[0].terms.ins + results[0].terms.cls)) < 1e-6);
 * await model.release();
 * ```
 */
export async function latentGrad<R extends MapsLossResult>(
  model: DiffusionModel,
  latents: Tensor,
  timestep: number,
  context: Tensor,
  lossOfMaps: MapsLoss<R>,
): Promise<LatentGradResult<R>> {
  const b = latents.shape[0];
  check(latents.shape.length === 4, "latents", `expected [B, C, h, w], got [${latents.shape}]`);
  check(
    context.shape[0] === b,
    "context",
    `expected one conditioning row per latent (${b}), got shape [${context.shape}]`,
  );
  if (hasGraphMaps(model)) return graphLatentGrad(model, latents, timestep, context, lossOfMaps);
  const res = await model.denoise(latents, timestep, context, { taps: true });
  check(
    res.taps !== undefined && res.taps.length === b,
    "model",
    `denoise() returned no attention taps for ${b} item(s); the loss needs them`,
  );
  const taps = res.taps;
  const results: R[] = [];
  const tapGrads: TapGrad[][] = [];
  let anyGrad = false;
  for (let i = 0; i < b; i++) {
    const r = lossOfMaps(accumulateMaps(taps[i]), i);
    expectFiniteLoss(r, i);
    results.push(r);
    const zero = allZero(r.grad);
    if (!zero) anyGrad = true;
    // An empty map gradient gives zero tap gradients without the softmax recomputation.
    tapGrads.push(accumulateMapsBackward(taps[i], zero ? {} : r.grad));
  }
  const values = results.map((r) => r.value);
  if (!anyGrad) return { values, grad: tensor(latents.shape), results };
  const grad = await model.gradient(latents, timestep, context, tapGrads);
  return { values, grad: checkedGrad(grad, latents), results };
}

/** The model's latent gradient, checked for shape and finiteness, in the latents' shape. */
function checkedGrad(grad: Tensor, latents: Tensor): Tensor {
  const b = latents.shape[0];
  check(
    grad.data.length === latents.data.length,
    "model",
    `gradient() returned shape [${grad.shape}] for latents [${latents.shape}]`,
  );
  const per = latents.data.length / b;
  for (let i = 0; i < b; i++) {
    const bad = firstNonFinite(grad.data.subarray(i * per, (i + 1) * per));
    if (bad !== undefined) {
      throw new NonFiniteLossError("latent grad", i, `${bad} after the VJP through the denoiser`);
    }
  }
  return tensor(latents.shape, grad.data);
}

/** {@link latentGrad} for a model with in-graph maps: no taps, no CPU accumulation or its VJP. */
async function graphLatentGrad<R extends MapsLossResult>(
  model: DiffusionModel,
  latents: Tensor,
  timestep: number,
  context: Tensor,
  lossOfMaps: MapsLoss<R>,
): Promise<LatentGradResult<R>> {
  const b = latents.shape[0];
  // One-piece VJP (it recomputes the forward up to the last attention layer): on onnxruntime-node
  // handing the ~190 saved tensors from a forward half to a backward half (`grad: true`) costs
  // what the recomputation saves (bench/results/speed_after.md).
  const res = await model.denoise(latents, timestep, context, { maps: true });
  check(
    res.maps !== undefined && res.maps.length === b,
    "model",
    `denoise() returned no attention maps for ${b} item(s); the loss needs them`,
  );
  const results: R[] = [];
  let anyGrad = false;
  for (let i = 0; i < b; i++) {
    const r = lossOfMaps(res.maps[i], i);
    expectFiniteLoss(r, i);
    results.push(r);
    if (!allZero(r.grad)) anyGrad = true;
  }
  const values = results.map((r) => r.value);
  if (!anyGrad) return { values, grad: tensor(latents.shape), results };
  const grad = await model.gradientFromMaps!(
    latents,
    timestep,
    context,
    results.map((r) => r.grad),
  );
  return { values, grad: checkedGrad(grad, latents), results };
}
