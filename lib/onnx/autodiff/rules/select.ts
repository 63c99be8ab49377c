/**
 * Rules for ops that pick elements of their input: Slice, Gather, GatherElements, Tile and Pad
 * (constant, reflect and edge modes). Their indices, starts and pads are constants of the step.
 *
 * Each such op is linear and sends every output element to one input position, so its adjoint
 * is a scatter-add of the cotangent at those positions. The positions are found by running the
 * op itself on an "iota" tensor (the flat index of each input element), which reproduces the
 * op's exact clamping, negative-index and step rules. A unit-step Slice with known bounds is
 * written as the cheaper Pad.
 *
 * @module
 */
import { attrString } from "../attrs.ts";
import { normAxis, sliceRange } from "../facts.ts";
import { fromFloat32 } from "../../tensor_data.ts";
import type { GradContext, GradRule, RuleTable } from "../rule.ts";
import { ruleError } from "../rule.ts";

/**
 * Σ over output positions of g at the input position `select(iota)` names. With `padSlot`, the
 * op may point outside x (constant padding); those elements land in one extra slot, dropped.
 */
function scatterAdjoint(
  ctx: GradContext,
  select: (iota: string, outside: string) => string,
  padSlot = false,
): string {
  const { em, node } = ctx;
  if (em.opset < 16) {
    throw ruleError(node, "this gradient needs ScatterElements with reduction=add (opset ≥ 16)");
  }
  const x = node.input[0];
  const shape = em.shapeOf(x);
  const n = em.op("Size", [x]);
  const iota = em.op("Range", [em.i64([0], []), n, em.i64([1], [])]);
  const idx = select(em.op("Reshape", [iota, shape]), n);
  const flatIdx = em.op("Reshape", [idx, em.i64([-1])]);
  const slots = padSlot ? em.op("Add", [n, em.i64([1], [])]) : n;
  const zeros = em.op("ConstantOfShape", [em.op("Reshape", [slots, em.i64([1])])], {
    value: fromFloat32("", [1], [0]),
  });
  let acc = em.op(
    "ScatterElements",
    [zeros, flatIdx, em.op("Reshape", [ctx.dy[0]!, em.i64([-1])])],
    {
      axis: 0,
      reduction: "add",
    },
  );
  if (padSlot) acc = em.op("Slice", [acc, em.i64([0]), em.op("Reshape", [n, em.i64([1])])]);
  return em.op("Reshape", [acc, shape], {}, { dims: em.dims(x) });
}

/** Pad(g) that undoes a unit-step Slice with constant bounds on static axes, if that applies. */
function sliceAsPad(ctx: GradContext): string | undefined {
  const { em, node } = ctx;
  const [x, startsN, endsN, axesN, stepsN] = node.input;
  const xd = em.dims(x);
  const starts = em.numbers(startsN);
  const ends = em.numbers(endsN);
  const axes = axesN ? em.numbers(axesN) : starts?.map((_, i) => i);
  const steps = stepsN ? em.numbers(stepsN) : starts?.map(() => 1);
  if (!xd || !starts || !ends || !axes || !steps || steps.some((s) => s !== 1)) return undefined;
  const r = xd.length;
  const pads = Array(2 * r).fill(0);
  for (let i = 0; i < axes.length; i++) {
    const a = normAxis(axes[i], r);
    const d = xd[a];
    if (typeof d !== "number") return undefined;
    const range = sliceRange(starts[i], ends[i], 1, d);
    pads[a] = range.start;
    pads[a + r] = d - range.start - range.count;
  }
  return em.op("Pad", [ctx.dy[0]!, em.i64(pads)], { mode: "constant" }, { dims: xd });
}

const slice: GradRule = {
  inputs: () => [0],
  grad: (ctx) => [
    sliceAsPad(ctx) ??
      scatterAdjoint(ctx, (iota) => ctx.em.op("Slice", [iota, ...ctx.node.input.slice(1)])),
  ],
};

const gather: GradRule = {
  inputs: () => [0],
  grad: (ctx) => [
    scatterAdjoint(
      ctx,
      (iota) =>
        ctx.em.opWithAttributes(ctx.node.opType, [iota, ctx.node.input[1]], ctx.node.attribute),
    ),
  ],
};

const tile: GradRule = {
  inputs: () => [0],
  grad: (ctx) => [scatterAdjoint(ctx, (iota) => ctx.em.op("Tile", [iota, ctx.node.input[1]]))],
};

const pad: GradRule = {
  inputs: () => [0],
  grad: (ctx) => {
    const { node, em } = ctx;
    const mode = attrString(node, "mode", "constant");
    if (mode !== "constant" && mode !== "reflect" && mode !== "edge") {
      throw ruleError(node, `Pad mode ${mode} is not supported`);
    }
    if (node.attribute.some((a) => a.name === "pads")) {
      throw ruleError(node, "Pad with a pads attribute (opset < 11) is not supported");
    }
    const [, pads, , axes] = node.input;
    return [
      scatterAdjoint(ctx, (iota, outside) => {
        const inputs = [iota, pads, mode === "constant" ? outside : "", ...(axes ? [axes] : [])];
        while (inputs[inputs.length - 1] === "") inputs.pop();
        return em.op("Pad", inputs, { mode });
      }, mode === "constant"),
    ];
  },
};

/** Element-selection rules. */
export const selectRules: RuleTable = {
  Slice: slice,
  Gather: gather,
  GatherElements: gather,
  Tile: tile,
  Pad: pad,
};
