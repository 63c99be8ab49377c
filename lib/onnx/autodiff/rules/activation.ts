/**
 * Rules for pointwise nonlinearities and the softmax family: Relu, LeakyRelu, Sigmoid, Tanh,
 * Erf, Gelu (ONNX opset 20 and com.microsoft, exact and tanh forms), Softplus, Clip, Softmax and
 * LogSoftmax. Where the output is cheaper than the input (sigmoid, tanh, softmax) the gradient
 * is written in terms of the output, as ORT's training builder does.
 *
 * @module
 */
import { attrFloat, attrInt, attrString } from "../attrs.ts";
import type { GradContext, GradRule, RuleTable } from "../rule.ts";
import { ruleError } from "../rule.ts";

function dims(ctx: GradContext): ReturnType<GradContext["em"]["dims"]> {
  return ctx.em.dims(ctx.node.output[0]);
}

/** A one-input rule whose gradient is `g · local(ctx)`. */
function pointwise(local: (ctx: GradContext) => string): GradRule {
  return {
    inputs: () => [0],
    grad: (ctx) => [ctx.em.mul(ctx.dy[0]!, local(ctx), dims(ctx))],
  };
}

const relu: GradRule = {
  grad: ({ em, node, dy }) => {
    const x = node.input[0];
    const pos = em.op("Greater", [x, em.f32(0)]);
    return [em.op("Where", [pos, dy[0]!, em.f32(0)], {}, { dims: em.dims(x) })];
  },
};

const leakyRelu: GradRule = {
  grad: ({ em, node, dy }) => {
    const x = node.input[0];
    const alpha = attrFloat(node, "alpha", 0.01);
    const pos = em.op("Greater", [x, em.f32(0)]);
    const g = dy[0]!;
    return [em.op("Where", [pos, g, em.mul(g, em.f32(alpha))], {}, { dims: em.dims(x) })];
  },
};

/** σ'(x) = y(1 − y). */
const sigmoid = pointwise(({ em, node }) => {
  const y = node.output[0];
  return em.mul(y, em.sub(em.f32(1), y, em.dims(y)));
});

/** tanh'(x) = 1 − y². */
const tanh = pointwise(({ em, node }) => {
  const y = node.output[0];
  return em.sub(em.f32(1), em.mul(y, y), em.dims(y));
});

/** erf'(x) = 2/√π · e^{−x²}. */
const erf = pointwise(({ em, node }) => {
  const x = node.input[0];
  return em.mul(em.op("Exp", [em.neg(em.mul(x, x))]), em.f32(2 / Math.sqrt(Math.PI)));
});

/** Exact GELU: Φ(x) + x·φ(x); tanh form: derivative of ½x(1 + tanh(√(2/π)(x + 0.044715x³))). */
const gelu = pointwise(({ em, node }) => {
  const x = node.input[0];
  const approx = attrString(node, "approximate", "none");
  if (approx === "tanh") {
    const c = Math.sqrt(2 / Math.PI);
    const x2 = em.mul(x, x);
    const u = em.mul(
      em.mul(x, em.add(em.f32(1), em.mul(x2, em.f32(0.044715)), em.dims(x))),
      em.f32(c),
    );
    const t = em.op("Tanh", [u]);
    const du = em.mul(em.add(em.f32(1), em.mul(x2, em.f32(3 * 0.044715)), em.dims(x)), em.f32(c));
    const sech2 = em.sub(em.f32(1), em.mul(t, t), em.dims(x));
    const left = em.mul(em.add(em.f32(1), t, em.dims(x)), em.f32(0.5));
    return em.add(left, em.mul(em.mul(em.mul(x, em.f32(0.5)), sech2), du));
  }
  const cdf = em.mul(
    em.add(em.f32(1), em.op("Erf", [em.mul(x, em.f32(Math.SQRT1_2))]), em.dims(x)),
    em.f32(0.5),
  );
  const pdf = em.mul(
    em.op("Exp", [em.mul(em.mul(x, x), em.f32(-0.5))]),
    em.f32(1 / Math.sqrt(2 * Math.PI)),
  );
  return em.add(cdf, em.mul(x, pdf));
});

/** softplus'(x) = σ(x). */
const softplus = pointwise(({ em, node }) => em.op("Sigmoid", [node.input[0]]));

const clip: GradRule = {
  grad: (ctx) => {
    const { em, node, dy } = ctx;
    if (ctx.wants[1] || ctx.wants[2]) {
      throw ruleError(
        node,
        "Clip bounds that depend on the differentiated inputs are not supported",
      );
    }
    const x = node.input[0];
    let inside: string | undefined;
    const [, lo, hi] = node.input;
    if (lo) inside = em.op("GreaterOrEqual", [x, lo]);
    if (hi) {
      const below = em.op("LessOrEqual", [x, hi]);
      inside = inside ? em.op("And", [inside, below]) : below;
    }
    const g = dy[0]!;
    return [inside ? em.op("Where", [inside, g, em.f32(0)], {}, { dims: em.dims(x) }) : g];
  },
};

/** dx = y ⊙ (g − Σ_axis g ⊙ y) (opset ≥ 13: a single axis, default −1). */
const softmax: GradRule = {
  grad: ({ em, node, dy }) => {
    const y = node.output[0];
    const axis = attrInt(node, "axis", -1);
    const gy = em.mul(dy[0]!, y, em.dims(y));
    const s = em.reduceSum(gy, [axis], true);
    return [em.mul(y, em.sub(dy[0]!, s, em.dims(y)))];
  },
};

/** dx = g − softmax(x) · Σ_axis g. */
const logSoftmax: GradRule = {
  grad: ({ em, node, dy }) => {
    const y = node.output[0];
    const axis = attrInt(node, "axis", -1);
    const s = em.reduceSum(dy[0]!, [axis], true);
    return [em.sub(dy[0]!, em.mul(em.op("Exp", [y]), s, em.dims(y)), em.dims(y))];
  },
};

/** Activation rules (the com.microsoft Gelu is registered under its domain by the registry). */
export const activationRules: RuleTable = {
  Relu: relu,
  LeakyRelu: leakyRelu,
  Sigmoid: sigmoid,
  Tanh: tanh,
  Erf: erf,
  Gelu: gelu,
  Softplus: softplus,
  Clip: clip,
  Softmax: softmax,
  LogSoftmax: logSoftmax,
};
