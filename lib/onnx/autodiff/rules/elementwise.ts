/**
 * Rules for elementwise arithmetic: Add, Sub, Mul, Div, Sum, Neg, Pow (constant exponent),
 * Sqrt, Exp, Log, Reciprocal, Abs, Sin, Cos, Identity and Where (constant condition).
 * Binary ops broadcast, so each input's gradient is summed back to that input's shape.
 *
 * @module
 */
import type { GradContext, GradRule, InputGrads, RuleTable } from "../rule.ts";
import { ruleError } from "../rule.ts";

/** dy, and the dims of output 0 (the broadcast shape every binary gradient starts in). */
function upstream(ctx: GradContext): { g: string; yd: ReturnType<GradContext["em"]["dims"]> } {
  return { g: ctx.dy[0]!, yd: ctx.em.dims(ctx.node.output[0]) };
}

/** A rule for a one-input op whose gradient is `g · local(ctx)`. */
function unary(factor: (ctx: GradContext) => string): GradRule {
  return {
    grad: (ctx) => {
      const { g, yd } = upstream(ctx);
      return [ctx.em.mul(g, factor(ctx), yd)];
    },
  };
}

const add: GradRule = {
  grad: (ctx) => {
    const { g, yd } = upstream(ctx);
    return ctx.node.input.map((x, i) => (ctx.wants[i] ? ctx.em.sumTo(g, yd, x) : undefined));
  },
};

const sub: GradRule = {
  grad: (ctx) => {
    const { g, yd } = upstream(ctx);
    const [a, b] = ctx.node.input;
    return [
      ctx.wants[0] ? ctx.em.sumTo(g, yd, a) : undefined,
      ctx.wants[1] ? ctx.em.sumTo(ctx.em.neg(g), yd, b) : undefined,
    ];
  },
};

const mul: GradRule = {
  grad: (ctx) => {
    const { em } = ctx;
    const { g, yd } = upstream(ctx);
    const [a, b] = ctx.node.input;
    return [
      ctx.wants[0] ? em.sumTo(em.mul(g, b, yd), yd, a) : undefined,
      ctx.wants[1] ? em.sumTo(em.mul(g, a, yd), yd, b) : undefined,
    ];
  },
};

const div: GradRule = {
  grad: (ctx) => {
    const { em } = ctx;
    const { g, yd } = upstream(ctx);
    const [a, b] = ctx.node.input;
    const gOverB = em.div(g, b, yd);
    return [
      ctx.wants[0] ? em.sumTo(gOverB, yd, a) : undefined,
      // d(a/b)/db = −a/b² = −(1/b)·y
      ctx.wants[1] ? em.sumTo(em.neg(em.mul(gOverB, ctx.node.output[0], yd)), yd, b) : undefined,
    ];
  },
};

const pow: GradRule = {
  grad: (ctx) => {
    const { em, node } = ctx;
    if (ctx.wants[1]) {
      throw ruleError(
        node,
        "the exponent of Pow depends on the differentiated inputs; only a constant exponent is supported",
      );
    }
    const { g, yd } = upstream(ctx);
    const [x, p] = node.input;
    const pf = em.op("Cast", [p], { to: 1 }, { dims: em.dims(p) });
    const local = em.mul(pf, em.op("Pow", [x, em.sub(pf, em.f32(1))]), yd);
    return [em.sumTo(em.mul(g, local, yd), yd, x), undefined];
  },
};

const neg: GradRule = { grad: (ctx) => [ctx.em.neg(ctx.dy[0]!)] };

const identity: GradRule = { grad: (ctx): InputGrads => [ctx.dy[0]] };

const where: GradRule = {
  inputs: () => [1, 2],
  grad: (ctx) => {
    const { em, node } = ctx;
    const { g, yd } = upstream(ctx);
    const [c, a, b] = node.input;
    const zero = em.f32(0);
    return [
      undefined,
      ctx.wants[1] ? em.sumTo(em.op("Where", [c, g, zero], {}, { dims: yd }), yd, a) : undefined,
      ctx.wants[2] ? em.sumTo(em.op("Where", [c, zero, g], {}, { dims: yd }), yd, b) : undefined,
    ];
  },
};

/** Elementwise arithmetic rules. */
export const elementwiseRules: RuleTable = {
  Add: add,
  Sum: add,
  Sub: sub,
  Mul: mul,
  Div: div,
  Pow: pow,
  Neg: neg,
  Identity: identity,
  Where: where,
  Sqrt: unary(({ em, node }) => em.div(em.f32(0.5), node.output[0])),
  Exp: unary(({ node }) => node.output[0]),
  Log: unary(({ em, node }) => em.op("Reciprocal", [node.input[0]])),
  Reciprocal: unary(({ em, node }) => em.neg(em.mul(node.output[0], node.output[0]))),
  Abs: unary(({ em, node }) => em.op("Sign", [node.input[0]])),
  Sin: unary(({ em, node }) => em.op("Cos", [node.input[0]])),
  Cos: unary(({ em, node }) => em.neg(em.op("Sin", [node.input[0]]))),
};
