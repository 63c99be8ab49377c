/**
 * Pure helpers over ONNX graphs as plain data: who produces and who consumes a tensor, a
 * topological order, fresh names, constants (initializers and Constant nodes), shapes known
 * statically, and copy-on-write edits that add graph inputs or outputs.
 *
 * Nothing here mutates its argument. Edited models are shallow copies: unchanged nodes and
 * tensors are shared with the input, so treat every `Model` as immutable.
 *
 * @module
 */
import { AttnkitError } from "../errors.ts";
import { fromFloat32, toBigInt64, toFloat32 } from "./tensor_data.ts";
import {
  AttributeType,
  DataType,
  type Dim,
  type GraphProto,
  type Model,
  type NodeProto,
  type TensorProto,
  type TypeProto,
  type ValueInfoProto,
} from "./types.ts";

/** Maps each tensor name to the node that produces it (graph inputs/initializers have none). */
export function producerMap(graph: GraphProto): Map<string, NodeProto> {
  const m = new Map<string, NodeProto>();
  for (const n of graph.node) for (const o of n.output) if (o !== "") m.set(o, n);
  return m;
}

/** Maps each tensor name to the nodes that read it, in graph order. */
export function consumerMap(graph: GraphProto): Map<string, NodeProto[]> {
  const m = new Map<string, NodeProto[]>();
  for (const n of graph.node) {
    for (const i of n.input) {
      if (i === "") continue;
      const list = m.get(i);
      if (list) {
        if (list[list.length - 1] !== n) list.push(n);
      } else m.set(i, [n]);
    }
  }
  return m;
}

/** Tensor names a node reads, including names its subgraphs read from the outer scope. */
export function nodeReads(n: NodeProto): string[] {
  const reads = n.input.filter((i) => i !== "");
  for (const a of n.attribute) {
    if (a.type === AttributeType.GRAPH && a.g) reads.push(...outerReads(a.g));
  }
  return reads;
}

function outerReads(g: GraphProto): string[] {
  const local = new Set<string>([
    ...g.input.map((v) => v.name),
    ...g.initializer.map((t) => t.name),
    ...g.node.flatMap((n) => n.output),
  ]);
  return g.node.flatMap(nodeReads).filter((r) => !local.has(r));
}

/**
 * Nodes in an order where every node comes after the producers of what it reads (stable: keeps
 * graph order where it already is one). Throws an {@link AttnkitError} on a cycle.
 */
export function topologicalOrder(graph: GraphProto): NodeProto[] {
  const producers = producerMap(graph);
  const state = new Map<NodeProto, 1 | 2>();
  const out: NodeProto[] = [];
  for (const root of graph.node) {
    if (state.has(root)) continue;
    // Iterative DFS: graphs of real UNets are deep enough to overflow a recursive one.
    const stack: { n: NodeProto; reads: string[]; i: number }[] = [
      { n: root, reads: nodeReads(root), i: 0 },
    ];
    state.set(root, 1);
    while (stack.length > 0) {
      const top = stack[stack.length - 1];
      if (top.i < top.reads.length) {
        const p = producers.get(top.reads[top.i++]);
        if (p === undefined || p === top.n) continue;
        const s = state.get(p);
        if (s === 1) {
          throw new AttnkitError("graph", `cycle through node "${p.name ?? p.opType}"`);
        }
        if (s === undefined) {
          state.set(p, 1);
          stack.push({ n: p, reads: nodeReads(p), i: 0 });
        }
      } else {
        state.set(top.n, 2);
        out.push(top.n);
        stack.pop();
      }
    }
  }
  return out;
}

/** Every tensor and node name used in a graph (to avoid when making new names). */
export function usedNames(graph: GraphProto): Set<string> {
  const s = new Set<string>();
  for (const v of graph.input) s.add(v.name);
  for (const v of graph.output) s.add(v.name);
  for (const v of graph.valueInfo) s.add(v.name);
  for (const t of graph.initializer) s.add(t.name);
  for (const n of graph.node) {
    if (n.name) s.add(n.name);
    for (const o of n.output) s.add(o);
    for (const i of n.input) s.add(i);
  }
  return s;
}

/** Returns `base`, or `base_1`, `base_2`, … — the first not in `taken` — and records it there. */
export function uniqueName(taken: Set<string>, base: string): string {
  let name = base;
  for (let k = 1; taken.has(name); k++) name = `${base}_${k}`;
  taken.add(name);
  return name;
}

/** A model with `graph` in place of its graph (a shallow copy). */
export function withGraph(model: Model, graph: GraphProto): Model {
  return { ...model, graph };
}

/** The opset version the model imports for `domain` ("" = ONNX), or undefined. */
export function opsetVersion(model: Model, domain = ""): number | undefined {
  const d = domain === "ai.onnx" ? "" : domain;
  const o = model.opsetImport.find((x) => (x.domain === "ai.onnx" ? "" : x.domain) === d);
  return o === undefined ? undefined : Number(o.version);
}

/** The type recorded for a tensor (input, output, value_info or initializer), if any. */
export function typeOf(graph: GraphProto, name: string): TypeProto | undefined {
  for (const list of [graph.input, graph.output, graph.valueInfo]) {
    const v = list.find((x) => x.name === name);
    if (v?.type) return v.type;
  }
  const t = graph.initializer.find((x) => x.name === name);
  if (t) {
    return {
      tensorType: { elemType: t.dataType, shape: { dim: t.dims.map((d) => ({ dimValue: d })) } },
    };
  }
  return undefined;
}

/** The statically recorded dims of a tensor, if its type carries a shape. */
export function staticShape(graph: GraphProto, name: string): Dim[] | undefined {
  return typeOf(graph, name)?.tensorType?.shape?.dim;
}

/**
 * A new model whose graph also outputs the named tensors. Each output's type is `types[i]` if
 * given, else the type recorded in the graph, else left out (onnxruntime infers it).
 */
export function addOutputs(
  model: Model,
  names: readonly string[],
  types?: readonly (TypeProto | undefined)[],
): Model {
  const g = model.graph;
  const present = new Set(g.output.map((o) => o.name));
  const added: ValueInfoProto[] = [];
  names.forEach((name, i) => {
    if (present.has(name)) return;
    present.add(name);
    const type = types?.[i] ?? typeOf(g, name);
    added.push(type ? { name, type } : { name });
  });
  return withGraph(model, { ...g, output: [...g.output, ...added] });
}

/** A new model with extra graph inputs; throws if a name is already used. */
export function addInputs(model: Model, inputs: readonly ValueInfoProto[]): Model {
  const g = model.graph;
  const used = usedNames(g);
  for (const v of inputs) {
    if (used.has(v.name)) throw new AttnkitError(v.name, "input name already used in the graph");
  }
  return withGraph(model, { ...g, input: [...g.input, ...inputs] });
}

/**
 * The constant value of a tensor: an initializer (that is not also a graph input, which a caller
 * could override) or the output of a Constant node.
 */
export function constantTensor(graph: GraphProto, name: string): TensorProto | undefined {
  if (name === "") return undefined;
  const init = graph.initializer.find((t) => t.name === name);
  if (init) return graph.input.some((v) => v.name === name) ? undefined : init;
  const n = graph.node.find((x) => x.opType === "Constant" && x.output[0] === name);
  if (!n || (n.domain ?? "") !== "") return undefined;
  const a = n.attribute[0];
  if (!a) return undefined;
  switch (a.name) {
    case "value":
      return a.t ? { ...a.t, name } : undefined;
    case "value_float":
      return fromFloat32(name, [], [a.f ?? 0]);
    case "value_floats":
      return fromFloat32(name, [a.floats?.length ?? 0], a.floats ?? []);
    case "value_int":
      return { name, dims: [], dataType: DataType.INT64, int64Data: [a.i ?? 0n] };
    case "value_ints":
      return { name, dims: [a.ints?.length ?? 0], dataType: DataType.INT64, int64Data: a.ints };
  }
  return undefined;
}

/** A constant's values as numbers, if the tensor is constant and stored inline. */
export function constantNumbers(graph: GraphProto, name: string): number[] | undefined {
  const t = constantTensor(graph, name);
  if (!t || t.dataLocation === 1) return undefined;
  const integer = t.dataType === DataType.INT64 || t.dataType === DataType.INT32 ||
    t.dataType === DataType.INT8 || t.dataType === DataType.UINT8 || t.dataType === DataType.BOOL;
  return integer ? Array.from(toBigInt64(t), Number) : Array.from(toFloat32(t));
}

/**
 * The elements of a small 1-D vector (typically a Reshape target shape) where they can be
 * known statically: constants, and Concat / Unsqueeze / Cast / Identity / Squeeze of them. An
 * element computed at run time (e.g. from `Shape(x)`) is `undefined`; the whole result is
 * `undefined` when even the length cannot be known.
 */
export function partialConstant(
  graph: GraphProto,
  name: string,
): (number | undefined)[] | undefined {
  const producers = producerMap(graph);
  const go = (t: string, depth: number): (number | undefined)[] | undefined => {
    if (depth > 32) return undefined;
    const c = constantNumbers(graph, t);
    if (c) return c;
    const p = producers.get(t);
    if (!p) return undefined;
    switch (p.opType) {
      case "Concat": {
        const parts = p.input.map((i) => go(i, depth + 1));
        if (parts.some((x) => x === undefined)) return undefined;
        return parts.flatMap((x) => x!);
      }
      case "Identity":
      case "Cast":
      case "Unsqueeze":
      case "Squeeze": {
        const inner = go(p.input[0], depth + 1);
        if (inner) return inner;
        // In a shape vector, Unsqueeze on one axis turns a run-time scalar into one element.
        if (p.opType === "Unsqueeze") {
          const axes = p.attribute.find((a) => a.name === "axes")?.ints ??
            (p.input[1] ? constantNumbers(graph, p.input[1]) : undefined);
          if (axes?.length === 1) return [undefined];
        }
        return undefined;
      }
      case "Shape": {
        const dims = staticShape(graph, p.input[0]);
        if (!dims) return undefined;
        const start = p.attribute.find((a) => a.name === "start")?.i;
        const end = p.attribute.find((a) => a.name === "end")?.i;
        const r = dims.length;
        const clamp = (x: number) => Math.min(Math.max(x < 0 ? x + r : x, 0), r);
        const s0 = start === undefined ? 0 : clamp(Number(start));
        const e0 = end === undefined ? r : clamp(Number(end));
        return dims.slice(s0, e0).map((d) => d.dimValue);
      }
    }
    return undefined;
  };
  return go(name, 0);
}
