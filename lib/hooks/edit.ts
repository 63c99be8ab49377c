/**
 * A copy-on-write edit of one graph, used by the hooks: collects new nodes (appended, or placed
 * before a given node), new initializers, inputs, outputs and replaced nodes, then builds a new
 * `Model` without touching the original. Also the small subgraphs the hooks share: bringing Q/K
 * into [B, heads, N, d] and averaging over heads.
 *
 * @module
 */
import { AttnkitError } from "../errors.ts";
import { type AttrValue, node } from "../onnx/build.ts";
import { opsetVersion, usedNames, withGraph } from "../onnx/graph.ts";
import { fromBigInt64, fromFloat32 } from "../onnx/tensor_data.ts";
import {
  DataType,
  type Model,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from "../onnx/types.ts";
import type { AttentionLayout } from "./find.ts";

/** Pending changes to one model's graph. */
export interface GraphEdit {
  /** The model being edited (never mutated). */
  readonly model: Model;
  /** Default-domain opset of the model. */
  readonly opset: number;
  /** Names in use (grows as names are made). */
  readonly names: Set<string>;
  /** Nodes to add; `before` places a node ahead of an existing one (else at the end). */
  readonly added: { node: NodeProto; before?: NodeProto }[];
  /** New initializers. */
  readonly initializers: TensorProto[];
  /** New graph inputs. */
  readonly inputs: ValueInfoProto[];
  /** New graph outputs. */
  readonly outputs: ValueInfoProto[];
  /** Existing nodes to replace (by identity). */
  readonly replaced: Map<NodeProto, NodeProto>;
}

/** Starts an edit of `model`. */
export function beginEdit(model: Model): GraphEdit {
  return {
    model,
    opset: opsetVersion(model) ?? 17,
    names: usedNames(model.graph),
    added: [],
    initializers: [],
    inputs: [],
    outputs: [],
    replaced: new Map(),
  };
}

/** A fresh tensor or node name based on `base`. */
export function freshName(e: GraphEdit, base: string): string {
  let name = base;
  for (let k = 1; e.names.has(name); k++) name = `${base}_${k}`;
  e.names.add(name);
  return name;
}

/** Adds one node computing a fresh tensor; returns the tensor's name. */
export function emit(
  e: GraphEdit,
  op: string,
  inputs: string[],
  base: string,
  attrs: Record<string, AttrValue> = {},
  before?: NodeProto,
): string {
  const out = freshName(e, base);
  e.added.push({
    node: node(op, inputs, [out], attrs, { name: freshName(e, `${out}/${op}`) }),
    before,
  });
  return out;
}

/** Adds an INT64 1-D initializer; returns its name. */
export function int64Const(e: GraphEdit, base: string, values: number[]): string {
  const name = freshName(e, base);
  e.initializers.push(fromBigInt64(name, [values.length], values));
  return name;
}

/** Adds an INT64 scalar initializer; returns its name. */
export function int64Scalar(e: GraphEdit, base: string, value: number): string {
  const name = freshName(e, base);
  e.initializers.push(fromBigInt64(name, [], [value]));
  return name;
}

/**
 * `t` as float32: `t` itself when it already is (per `elemType`), else a Cast. Taps are float32
 * whatever the model computes in, so the maths downstream (maps, losses) is done in float32.
 */
export function asFloat32(
  e: GraphEdit,
  t: string,
  elemType: (t: string) => number | undefined,
  base: string,
  before?: NodeProto,
): string {
  if (elemType(t) === DataType.FLOAT) return t;
  return emit(e, "Cast", [t], `${base}/f32`, { to: DataType.FLOAT }, before);
}

/** `t` cast to element type `to` (a DataType code), or `t` itself when it already has it. */
export function castTo(
  e: GraphEdit,
  t: string,
  from: number | undefined,
  to: number,
  base: string,
  before?: NodeProto,
): string {
  if (from === to) return t;
  return emit(e, "Cast", [t], `${base}/cast`, { to }, before);
}

/** Inserts size-1 axes (Unsqueeze with axes as an attribute before opset 13, an input after). */
export function unsqueeze(
  e: GraphEdit,
  t: string,
  axes: number[],
  base: string,
  before?: NodeProto,
): string {
  if (e.opset >= 13) {
    return emit(e, "Unsqueeze", [t, int64Const(e, `${base}/axes`, axes)], base, {}, before);
  }
  return emit(e, "Unsqueeze", [t], base, { axes }, before);
}

/** Adds a FLOAT scalar initializer; returns its name. */
export function floatConst(e: GraphEdit, base: string, value: number): string {
  const name = freshName(e, base);
  e.initializers.push(fromFloat32(name, [], [value]));
  return name;
}

/** The new model: original nodes (replaced where asked) with added nodes placed, plus IO. */
export function finishEdit(e: GraphEdit): Model {
  const g = e.model.graph;
  const before = new Map<NodeProto, NodeProto[]>();
  const tail: NodeProto[] = [];
  for (const a of e.added) {
    if (a.before) {
      const l = before.get(a.before);
      if (l) l.push(a.node);
      else before.set(a.before, [a.node]);
    } else tail.push(a.node);
  }
  const nodes: NodeProto[] = [];
  for (const n of g.node) {
    const pre = before.get(n);
    if (pre) nodes.push(...pre);
    nodes.push(e.replaced.get(n) ?? n);
  }
  nodes.push(...tail);
  return withGraph(e.model, {
    ...g,
    node: nodes,
    initializer: [...g.initializer, ...e.initializers],
    input: [...g.input, ...e.inputs],
    output: [...g.output, ...e.outputs],
  });
}

/**
 * Emits the nodes that present `t` (laid out as `layout`) as [B, heads, N, d]; returns the
 * tensor name (`t` itself when it already is).
 */
export function toBhnd(
  e: GraphEdit,
  t: string,
  layout: AttentionLayout,
  heads: number | undefined,
  base: string,
  before?: NodeProto,
): string {
  if (layout === "bhnd") return t;
  if (layout === "bsnh") {
    return emit(e, "Transpose", [t], `${base}/bhnd`, { perm: [0, 2, 1, 3] }, before);
  }
  if (heads === undefined) {
    throw new AttnkitError(
      "heads",
      `cannot split "${t}" (${layout}) into heads: head count unknown; pass { heads } to findAttention`,
    );
  }
  if (layout === "bnc") {
    const shape = int64Const(e, `${base}/split_shape`, [0, 0, heads, -1]);
    const r = emit(e, "Reshape", [t, shape], `${base}/split`, {}, before);
    return emit(e, "Transpose", [r], `${base}/bhnd`, { perm: [0, 2, 1, 3] }, before);
  }
  const shape = unfoldShape(e, t, heads, base, before);
  return emit(e, "Reshape", [t, shape], `${base}/bhnd`, {}, before);
}

/** Shape tensor [-1, heads, dim1(t), dim2(t)] for unfolding a [B·heads, X, Y] tensor. */
export function unfoldShape(
  e: GraphEdit,
  t: string,
  heads: number,
  base: string,
  before?: NodeProto,
): string {
  if (e.opset < 10) throw new AttnkitError("model", `opset ${e.opset} < 10 is not supported`);
  const shape = emit(e, "Shape", [t], `${base}/shape`, {}, before);
  const tail = emit(
    e,
    "Slice",
    [
      shape,
      int64Const(e, `${base}/one`, [1]),
      int64Const(e, `${base}/three`, [3]),
      int64Const(e, `${base}/zero`, [0]),
    ],
    `${base}/tail`,
    {},
    before,
  );
  const lead = int64Const(e, `${base}/lead`, [-1, heads]);
  return emit(e, "Concat", [lead, tail], `${base}/unfold_shape`, { axis: 0 }, before);
}

/** Emits ReduceMean over axis 1 (heads) without keeping the axis. */
export function meanOverHeads(e: GraphEdit, t: string, base: string): string {
  if (e.opset >= 18) {
    const axes = int64Const(e, `${base}/axes`, [1]);
    return emit(e, "ReduceMean", [t, axes], base, { keepdims: 0 });
  }
  return emit(e, "ReduceMean", [t], base, { axes: [1], keepdims: 0 });
}
