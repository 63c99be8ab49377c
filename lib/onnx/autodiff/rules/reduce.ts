/**
 * Rules for reductions: ReduceSum, ReduceMean, ReduceSumSquare (axes as attribute or, from
 * opset 13 for ReduceSum and 18 for the others, as input; keepdims; noop_with_empty_axes) and
 * GlobalAveragePool. The gradient is g with the reduced axes restored and broadcast back.
 *
 * @module
 */
import { attrInt } from "../attrs.ts";
import { axesArg, countOf } from "../facts.ts";
import type { GradContext } from "../rule.ts";
import type { GradRule, RuleTable } from "../rule.ts";

/** g expanded back over the reduced axes; `undefined` axes name means "all axes". */
function spread(ctx: GradContext): string {
  const { em, node } = ctx;
  const x = node.input[0];
  const g = ctx.dy[0]!;
  const keep = attrInt(node, "keepdims", 1) === 1;
  const attrAxes = node.attribute.find((a) => a.name === "axes");
  const axesName = attrAxes ? undefined : node.input[1] || undefined;
  const known = axesArg(
    node,
    "axes",
    1,
    new Map(axesName ? [[axesName, em.factsOf(axesName)]] : []),
  );
  const noop = attrInt(node, "noop_with_empty_axes", 0) === 1;
  if (noop && known !== undefined && known !== null && known.length === 0) return g;
  let restored = g;
  const reducesAll = known === null || (known !== undefined && known.length === 0);
  if (!keep && !reducesAll) {
    restored = known !== undefined ? em.unsqueeze(g, known) : em.op("Unsqueeze", [g, axesName!]);
  }
  return em.op("Expand", [restored, em.shapeOf(x)], {}, { dims: em.dims(x) });
}

/** Number of input elements per output element, as a float tensor. */
function countPerOutput(ctx: GradContext): string {
  const { em, node } = ctx;
  const [x] = node.input;
  const y = node.output[0];
  const nx = countOf(em.dims(x));
  const ny = countOf(em.dims(y));
  if (nx !== undefined && ny !== undefined) return em.f32(nx / Math.max(ny, 1));
  const size = (t: string): string => em.op("Cast", [em.op("Size", [t])], { to: 1 });
  return em.div(size(x), size(y));
}

const reduceSum: GradRule = { inputs: () => [0], grad: (ctx) => [spread(ctx)] };

const reduceMean: GradRule = {
  inputs: () => [0],
  grad: (ctx) => {
    const { em, node } = ctx;
    return [em.div(spread(ctx), countPerOutput(ctx), em.dims(node.input[0]))];
  },
};

const reduceSumSquare: GradRule = {
  inputs: () => [0],
  grad: (ctx) => {
    const { em, node } = ctx;
    const xd = em.dims(node.input[0]);
    return [em.mul(em.mul(spread(ctx), node.input[0], xd), em.f32(2), xd)];
  },
};

const globalAveragePool: GradRule = {
  grad: (ctx) => {
    const { em, node } = ctx;
    const x = node.input[0];
    const spreadG = em.op("Expand", [ctx.dy[0]!, em.shapeOf(x)], {}, { dims: em.dims(x) });
    return [em.div(spreadG, countPerOutput(ctx), em.dims(x))];
  },
};

/** Reduction rules. */
export const reduceRules: RuleTable = {
  ReduceSum: reduceSum,
  ReduceMean: reduceMean,
  ReduceSumSquare: reduceSumSquare,
  GlobalAveragePool: globalAveragePool,
};
