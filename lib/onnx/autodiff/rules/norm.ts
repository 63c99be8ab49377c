/**
 * Rules for normalisations: InstanceNormalization (and with it the TorchScript GroupNorm
 * pattern Reshape → InstanceNormalization → Reshape → Mul → Add), LayerNormalization (opset 17)
 * and BatchNormalization in inference mode.
 *
 * With x̂ = (x − μ)·r, r = 1/√(var + ε) over the normalised axes and dx̂ = g·scale, the input
 * gradient is r·(dx̂ − mean(dx̂) − x̂·mean(dx̂ ⊙ x̂)) — ORT's LayerNormalizationGrad formula. The
 * statistics are recomputed in the backward graph rather than taken from the forward node.
 *
 * @module
 */
import { attrFloat, attrInt } from "../attrs.ts";
import type { Emitter } from "../emit.ts";
import type { DimV } from "../facts.ts";
import type { GradRule, RuleTable } from "../rule.ts";
import { needRank, ruleError } from "../rule.ts";

interface Normalised {
  /** x̂ = (x − μ)·r. */
  xhat: string;
  /** r = 1/√(var + ε), reduced axes kept as 1. */
  inv: string;
}

function normalise(em: Emitter, x: string, axes: number[], eps: number): Normalised {
  const xd = em.dims(x);
  const mu = em.reduceMean(x, axes, true);
  const xc = em.sub(x, mu, xd);
  const variance = em.reduceMean(em.mul(xc, xc, xd), axes, true);
  const inv = em.op("Reciprocal", [em.op("Sqrt", [em.add(variance, em.f32(eps))])]);
  return { xhat: em.mul(xc, inv, xd), inv };
}

/** r·(dx̂ − mean(dx̂) − x̂·mean(dx̂ ⊙ x̂)) over `axes`. */
function normInputGrad(
  em: Emitter,
  n: Normalised,
  dxhat: string,
  axes: number[],
  xd?: DimV[],
): string {
  const m1 = em.reduceMean(dxhat, axes, true);
  const m2 = em.reduceMean(em.mul(dxhat, n.xhat, xd), axes, true);
  const inner = em.sub(em.sub(dxhat, m1, xd), em.mul(n.xhat, m2, xd), xd);
  return em.mul(inner, n.inv, xd);
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

/** y = scale_c · x̂ + B_c, normalised over the spatial axes of each (n, c). */
const instanceNorm: GradRule = {
  grad: (ctx) => {
    const { em, node } = ctx;
    const [x, scale] = node.input;
    const r = needRank(ctx, x);
    const xd = em.dims(x);
    const g = ctx.dy[0]!;
    const spatial = range(2, r);
    const n = normalise(em, x, spatial, attrFloat(node, "epsilon", 1e-5));
    const out: (string | undefined)[] = [undefined, undefined, undefined];
    if (ctx.wants[0]) {
      const scaleB = em.unsqueeze(scale, range(1, r - 1));
      out[0] = normInputGrad(em, n, em.mul(g, scaleB, xd), spatial, xd);
    }
    if (ctx.wants[1]) out[1] = em.reduceSum(em.mul(g, n.xhat, xd), [0, ...spatial], false);
    if (ctx.wants[2]) out[2] = em.reduceSum(g, [0, ...spatial], false);
    return out;
  },
};

/** y = Scale ⊙ x̂ + B, normalised over axes [axis, rank). Mean/InvStdDev outputs are not differentiated. */
const layerNorm: GradRule = {
  outputs: () => [0],
  grad: (ctx) => {
    const { em, node } = ctx;
    const [x, scale, bias] = node.input;
    const xd = em.dims(x);
    const axis = attrInt(node, "axis", -1);
    let axes: number[];
    if (axis < 0) axes = range(axis, 0);
    else axes = range(axis, needRank(ctx, x));
    const g = ctx.dy[0]!;
    const n = normalise(em, x, axes, attrFloat(node, "epsilon", 1e-5));
    const out: (string | undefined)[] = [undefined, undefined, undefined];
    if (ctx.wants[0]) out[0] = normInputGrad(em, n, em.mul(g, scale, xd), axes, xd);
    if (ctx.wants[1]) out[1] = em.sumTo(em.mul(g, n.xhat, xd), xd, scale);
    if (ctx.wants[2] && bias) out[2] = em.sumTo(g, xd, bias);
    return out;
  },
};

/** Inference-mode BatchNormalization: an affine map per channel with the running statistics. */
const batchNorm: GradRule = {
  inputs: () => [0, 1, 2],
  outputs: () => [0],
  grad: (ctx) => {
    const { em, node } = ctx;
    if (attrInt(node, "training_mode", 0) === 1) {
      throw ruleError(node, "BatchNormalization in training mode is not supported");
    }
    const [x, scale, , mean, variance] = node.input;
    const r = needRank(ctx, x);
    const xd = em.dims(x);
    const g = ctx.dy[0]!;
    const chanAxes = range(1, r - 1);
    const inv = em.op("Reciprocal", [
      em.op("Sqrt", [em.add(variance, em.f32(attrFloat(node, "epsilon", 1e-5)))]),
    ]);
    const invB = em.unsqueeze(inv, chanAxes);
    const reduceAxes = [0, ...range(2, r)];
    const out: (string | undefined)[] = [undefined, undefined, undefined];
    if (ctx.wants[0]) out[0] = em.mul(g, em.unsqueeze(em.mul(scale, inv), chanAxes), xd);
    if (ctx.wants[1]) {
      const xhat = em.mul(em.sub(x, em.unsqueeze(mean, chanAxes), xd), invB, xd);
      out[1] = em.reduceSum(em.mul(g, xhat, xd), reduceAxes, false);
    }
    if (ctx.wants[2]) out[2] = em.reduceSum(g, reduceAxes, false);
    return out;
  },
};

/** Normalisation rules. */
export const normRules: RuleTable = {
  InstanceNormalization: instanceNorm,
  LayerNormalization: layerNorm,
  BatchNormalization: batchNorm,
};
