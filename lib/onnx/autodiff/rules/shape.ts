/**
 * Rules for ops that move elements without arithmetic: Reshape, Flatten, Squeeze, Unsqueeze,
 * Transpose, Expand, Concat, Split, Cast (between float types) and Dropout (inference mode).
 *
 * @module
 */
import { attrInt, attrInts } from "../attrs.ts";
import { DataType } from "../../types.ts";
import type { GradRule, RuleTable } from "../rule.ts";
import { needRank } from "../rule.ts";

/** Rules whose gradient is g reshaped to the input's shape. */
const reshapeBack: GradRule = {
  inputs: () => [0],
  grad: ({ em, node, dy }) => [em.reshapeLike(dy[0]!, node.input[0])],
};

const transpose: GradRule = {
  grad: (ctx) => {
    const { em, node } = ctx;
    const r = needRank(ctx, node.input[0]);
    const perm = attrInts(node, "perm") ?? Array.from({ length: r }, (_, i) => r - 1 - i);
    const inverse = Array(r).fill(0);
    perm.forEach((p, i) => (inverse[p] = i));
    return [em.op("Transpose", [ctx.dy[0]!], { perm: inverse }, { dims: em.dims(node.input[0]) })];
  },
};

const expand: GradRule = {
  inputs: () => [0],
  grad: ({ em, node, dy }) => [em.sumTo(dy[0]!, em.dims(node.output[0]), node.input[0])],
};

/** g split along the axis into pieces the sizes of the inputs. */
const concat: GradRule = {
  grad: (ctx) => {
    const { em, node } = ctx;
    const axis = attrInt(node, "axis", 0);
    const sizes = node.input.map((x) => em.dimOf(x, axis));
    const known = sizes.map((s) => em.numbers(s));
    const split = known.every((v) => v !== undefined)
      ? em.i64(known.map((v) => v![0]))
      : em.op("Concat", sizes, { axis: 0 });
    const parts = em.opN("Split", [ctx.dy[0]!, split], node.input.length, { axis });
    return parts.map((p, i) => (ctx.wants[i] ? em.note(p, em.dims(node.input[i])) : undefined));
  },
};

/** The outputs' cotangents concatenated back, zeros for outputs nothing flows back to. */
const split: GradRule = {
  inputs: () => [0],
  grad: ({ em, node, dy }) => {
    const axis = attrInt(node, "axis", 0);
    const parts = node.output.map((y, i) => dy[i] ?? em.zerosLike(y));
    return [em.op("Concat", parts, { axis }, { dims: em.dims(node.input[0]) })];
  },
};

const FLOAT_TYPES: readonly number[] = [DataType.FLOAT, DataType.FLOAT16, DataType.DOUBLE, 16];

/** Cast between float types passes the gradient back in the input's type; to integers, nothing. */
const cast: GradRule = {
  inputs: (node) => (FLOAT_TYPES.includes(attrInt(node, "to", DataType.FLOAT)) ? [0] : []),
  grad: ({ em, node, dy }) => {
    const from = em.factsOf(node.input[0]).elemType ?? DataType.FLOAT;
    const to = attrInt(node, "to", DataType.FLOAT);
    return [
      from === to ? dy[0] : em.op("Cast", [dy[0]!], { to: from }, { dims: em.dims(node.input[0]) }),
    ];
  },
};

/** Dropout as exported for inference is the identity on its first output. */
const dropout: GradRule = {
  inputs: () => [0],
  outputs: () => [0],
  grad: ({ dy }) => [dy[0]],
};

/** Data-movement rules. */
export const shapeRules: RuleTable = {
  Reshape: reshapeBack,
  Flatten: reshapeBack,
  Squeeze: reshapeBack,
  Unsqueeze: reshapeBack,
  Transpose: transpose,
  Expand: expand,
  Concat: concat,
  Split: split,
  Cast: cast,
  Dropout: dropout,
};
