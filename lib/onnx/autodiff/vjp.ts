/**
 * Reverse-mode differentiation of an ONNX graph into a second ONNX graph: the vector-Jacobian
 * product. The emitted model takes the original inputs plus one cotangent per tap and returns
 * the gradient of each `wrt` input: Σ_taps ⟨cotangent, ∂tap/∂wrt⟩.
 *
 * Only nodes on a path from a `wrt` input to a tap are differentiated; the forward nodes the
 * backward reads are kept (the backward recomputes the forward); everything else is dropped.
 * A node on the path without a rule raises an AttnkitError naming its op type and node name
 * before anything is emitted.
 *
 * @module
 */
import { AttnkitError } from "../../errors.ts";
import type { Dim, GraphProto, Model, NodeProto, TensorProto, ValueInfoProto } from "../types.ts";
import { DataType } from "../types.ts";
import { nodeReads, opsetVersion, uniqueName, usedNames } from "../graph.ts";
import { nodeLabel } from "./attrs.ts";
import { Emitter } from "./emit.ts";
import { type DimV, type FactMap, inferFacts } from "./facts.ts";
import { analysePaths, gradInputs, type PathAnalysis, type VjpSpec } from "./paths.ts";
import { ruleFor } from "./registry.ts";

export type { VjpSpec } from "./paths.ts";

/** Options of {@link vjpGraph}. */
export interface VjpOptions {
  /** Also output the original graph outputs, after the gradients (default false). */
  keepForwardOutputs?: boolean;
}

/** The emitted VJP model and the names of its extra inputs and its outputs. */
export interface VjpResult {
  /** The VJP model: original inputs + cotangent inputs → gradients. */
  model: Model;
  /** Cotangent input names, one per tap, in `spec.taps` order (`grad::<tap>`). */
  cotangentInputs: string[];
  /** Gradient output names, one per `wrt`, in `spec.wrt` order (`grad::<wrt>`). */
  gradOutputs: string[];
}

/** What {@link checkDifferentiable} found. */
export interface DifferentiabilityReport {
  /** Number of nodes on a path from `wrt` to the taps. */
  nodes: number;
  /** Their distinct op types, sorted. */
  opTypes: string[];
}

function requireRules(analysis: PathAnalysis): void {
  if (analysis.missing.length === 0) return;
  const first = analysis.missing[0];
  const all = analysis.missing.map((n) => `${n.opType} ("${n.name ?? n.output[0]}")`);
  const shown = all.slice(0, 8).join(", ") + (all.length > 8 ? `, … ${all.length - 8} more` : "");
  throw new AttnkitError(
    nodeLabel(first),
    `no differentiation rule for op type "${first.opType}"${
      first.domain ? ` (domain ${first.domain})` : ""
    } ` +
      `on the path from wrt to taps; nodes without a rule: ${shown}`,
  );
}

/**
 * Checks, without emitting anything, that every node on a path from `spec.wrt` to `spec.taps`
 * has a rule; throws an AttnkitError naming the first op type and node that lacks one.
 */
export function checkDifferentiable(model: Model, spec: VjpSpec): DifferentiabilityReport {
  const analysis = analysePaths(model.graph, spec);
  requireRules(analysis);
  return {
    nodes: analysis.onPath.length,
    opTypes: [...new Set(analysis.onPath.map((n) => n.opType))].sort(),
  };
}

function valueInfoOf(name: string, dims: DimV[] | undefined, elemType: number): ValueInfoProto {
  const tensorType: { elemType: number; shape?: { dim: Dim[] } } = { elemType };
  if (dims) {
    tensorType.shape = {
      dim: dims.map((
        d,
      ) => (typeof d === "number"
        ? { dimValue: d }
        : typeof d === "string"
        ? { dimParam: d }
        : {})
      ),
    };
  }
  return { name, type: { tensorType } };
}

/** Writes the backward nodes; returns the emitter and the gradient tensor of each wrt. */
function emitBackward(
  spec: VjpSpec,
  analysis: PathAnalysis,
  facts: FactMap,
  opset: number,
  used: Set<string>,
  cotangents: string[],
): { em: Emitter; grads: string[] } {
  const em = new Emitter(facts, opset, used);
  const contributions = new Map<string, string[]>();
  const push = (name: string, g: string): void => {
    const list = contributions.get(name);
    if (list) list.push(g);
    else contributions.set(name, [g]);
  };
  const total = new Map<string, string | undefined>();
  const accumulate = (name: string): string | undefined => {
    if (total.has(name)) return total.get(name);
    const list = contributions.get(name) ?? [];
    const sum = list.length === 0
      ? undefined
      : list.length === 1
      ? list[0]
      : em.op("Sum", list, {}, { dims: facts.get(name)?.dims });
    total.set(name, sum);
    return sum;
  };
  spec.taps.forEach((t, i) => push(t, cotangents[i]));
  for (let k = analysis.onPath.length - 1; k >= 0; k--) {
    const node = analysis.onPath[k];
    const rule = ruleFor(node)!;
    const dy = node.output.map((o) => (analysis.active.has(o) ? accumulate(o) : undefined));
    if (dy.every((d) => d === undefined)) continue;
    const slots = new Set(gradInputs(node));
    const wants = node.input.map((x, i) =>
      slots.has(i) && x !== "" && analysis.active.has(x) && analysis.relevant.has(x)
    );
    const grads = rule.grad!({ node, em, dy, wants });
    node.input.forEach((x, i) => {
      if (!wants[i]) return;
      const g = grads[i];
      if (g === undefined) {
        throw new AttnkitError(
          nodeLabel(node),
          `the rule produced no gradient for input ${i} ("${x}")`,
        );
      }
      push(x, g);
    });
  }
  const grads = spec.wrt.map((w) => accumulate(w) ?? em.zerosLike(w));
  return { em, grads };
}

/** Forward nodes (in order) whose outputs the backward or the kept outputs read. */
function neededForward(order: NodeProto[], reads: Set<string>): NodeProto[] {
  const keep: NodeProto[] = [];
  for (let k = order.length - 1; k >= 0; k--) {
    const n = order[k];
    if (n.output.some((o) => reads.has(o))) {
      keep.push(n);
      for (const x of nodeReads(n)) reads.add(x);
    }
  }
  return keep.reverse();
}

/**
 * The VJP of `model` for `spec`: a model with the original inputs plus one cotangent input per
 * tap (`grad::<tap>`, the tap's shape), whose outputs are the gradients of the `wrt` inputs
 * (`grad::<wrt>`, the input's shape). Taps may be graph outputs or intermediate tensors; a
 * tensor that is both a tap and upstream of another tap gets both contributions.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createSession, encodeModel, onnx, ort } from "@attnkit/attnkit";
 * import { model, node, valueInfo } from "../build.ts";
 * // y = x · x, so the VJP with cotangent 1 is dy/dx = 2x.
 * const m = model({
 *   inputs: [valueInfo("x", [2])],
 *   outputs: [valueInfo("y", [2])],
 *   nodes: [node("Mul", ["x", "x"], ["y"])],
 * });
 * const vjp = onnx.vjpGraph(m, { wrt: ["x"], taps: ["y"] });
 * assert.deepEqual(vjp.cotangentInputs, ["grad::y"]);
 * const session = await createSession(encodeModel(vjp.model));
 * const out = await session.run({
 *   x: new ort.Tensor("float32", Float32Array.from([3, -1]), [2]),
 *   "grad::y": new ort.Tensor("float32", Float32Array.from([1, 1]), [2]),
 * });
 * assert.deepEqual(Array.from(out["grad::x"].data as Float32Array), [6, -2]);
 * await session.release();
 * ```
 */
export function vjpGraph(model: Model, spec: VjpSpec, options: VjpOptions = {}): VjpResult {
  const graph = model.graph;
  const opset = opsetVersion(model) ?? 1;
  if (opset < 13) {
    throw new AttnkitError(
      "model",
      `default-domain opset ${opset} is below 13, the oldest the VJP emitter writes`,
    );
  }
  const analysis = analysePaths(graph, spec);
  requireRules(analysis);
  const facts = inferFacts(graph);
  const used = usedNames(graph);
  const cotangents = spec.taps.map((t) => uniqueName(used, `grad::${t}`));
  const outNames = spec.wrt.map((w) => uniqueName(used, `grad::${w}`));
  const { em, grads } = emitBackward(spec, analysis, facts, opset, used, cotangents);

  // Give each gradient its public name (Identity: a tensor may be the gradient of two inputs).
  const finals: NodeProto[] = grads.map((g, i) => ({
    input: [g],
    output: [outNames[i]],
    name: outNames[i],
    opType: "Identity",
    attribute: [],
  }));
  const backward = [...em.nodes, ...finals];
  const reads = new Set<string>();
  for (const n of backward) for (const x of n.input) if (x) reads.add(x);
  if (options.keepForwardOutputs) { for (const o of graph.output) reads.add(o.name); }
  const forward = neededForward(analysis.order, reads);
  // Initializers named like graph inputs are those inputs' defaults; they stay with the inputs.
  const inputNames = new Set(graph.input.map((v) => v.name));
  const initializers: TensorProto[] = graph.initializer.filter((t) =>
    reads.has(t.name) || inputNames.has(t.name)
  );

  const elemOf = (name: string): number => facts.get(name)?.elemType ?? DataType.FLOAT;
  const outputs = spec.wrt.map((w, i) => valueInfoOf(outNames[i], facts.get(w)?.dims, elemOf(w)));
  if (options.keepForwardOutputs) outputs.push(...graph.output);
  const newGraph: GraphProto = {
    name: `${graph.name || "graph"}_vjp`,
    node: [...forward, ...backward],
    initializer: [...initializers, ...em.initializers],
    input: [
      ...graph.input,
      ...spec.taps.map((t, i) => valueInfoOf(cotangents[i], facts.get(t)?.dims, elemOf(t))),
    ],
    output: outputs,
    valueInfo: [],
  };
  if (graph.docString) newGraph.docString = graph.docString;
  return {
    model: { ...model, graph: newGraph },
    cotangentInputs: cotangents,
    gradOutputs: outNames,
  };
}
