/**
 * Which nodes a VJP must differentiate: those on a path from a differentiated input to a tap.
 *
 * A tensor is *active* when it depends on a `wrt` input through slots that carry gradients
 * (not through indices, shapes or conditions), and *relevant* when a tap depends on it the same
 * way. A node is differentiated when it has an active, relevant input and an active, relevant
 * output. Everything else is either forward work the backward needs (kept) or dropped.
 *
 * @module
 */
import { AttnkitError } from "../../errors.ts";
import type { GraphProto, NodeProto } from "../types.ts";
import { topologicalOrder } from "../graph.ts";
import { ruleFor } from "./registry.ts";

/** Inputs to differentiate and the tensors whose cotangents are given. */
export interface VjpSpec {
  /** Graph inputs (or initializers, for weight gradients) to differentiate, e.g. `["sample"]`. */
  wrt: string[];
  /** Tensor names (graph outputs or intermediates) whose cotangents are given. */
  taps: string[];
}

/** The result of the path analysis. */
export interface PathAnalysis {
  /** All nodes in a topological order. */
  order: NodeProto[];
  /** Tensors that depend on a `wrt` input through differentiable slots. */
  active: Set<string>;
  /** Tensors a tap depends on through differentiable slots. */
  relevant: Set<string>;
  /** Nodes to differentiate, in topological order. */
  onPath: NodeProto[];
  /** Nodes on the path that have no rule. */
  missing: NodeProto[];
}

/** Input slots of `node` that carry gradients (all, for ops without a rule). */
export function gradInputs(node: NodeProto): readonly number[] {
  const rule = ruleFor(node);
  return rule?.inputs ? rule.inputs(node) : node.input.map((_, i) => i);
}

/** Output slots of `node` that carry gradients (all, for ops without a rule). */
export function gradOutputs(node: NodeProto): readonly number[] {
  const rule = ruleFor(node);
  return rule?.outputs ? rule.outputs(node) : node.output.map((_, i) => i);
}

/** Checks the spec against the graph: wrt are inputs or initializers, taps are tensors. */
export function validateSpec(graph: GraphProto, spec: VjpSpec): void {
  if (spec.wrt.length === 0) throw new AttnkitError("spec.wrt", "expected at least one input name");
  if (spec.taps.length === 0) {
    throw new AttnkitError("spec.taps", "expected at least one tensor name");
  }
  const inputs = new Set([
    ...graph.input.map((v) => v.name),
    ...graph.initializer.map((t) => t.name),
  ]);
  const tensors = new Set([...inputs, ...graph.node.flatMap((n) => n.output)]);
  for (const w of spec.wrt) {
    if (!inputs.has(w)) {
      const names = graph.input.map((v) => v.name).join(", ");
      throw new AttnkitError(
        "spec.wrt",
        `"${w}" is not a graph input or initializer (inputs: ${names})`,
      );
    }
  }
  for (const t of spec.taps) {
    if (!tensors.has(t)) throw new AttnkitError("spec.taps", `"${t}" is not a tensor of the graph`);
  }
  const dup = (xs: string[]): string | undefined => xs.find((x, i) => xs.indexOf(x) !== i);
  const d = dup(spec.wrt) ?? dup(spec.taps);
  if (d !== undefined) throw new AttnkitError("spec", `"${d}" is listed twice`);
}

/** Active/relevant sets and the nodes to differentiate. */
export function analysePaths(graph: GraphProto, spec: VjpSpec): PathAnalysis {
  validateSpec(graph, spec);
  const order = topologicalOrder(graph);
  const active = new Set(spec.wrt);
  for (const n of order) {
    if (gradInputs(n).some((i) => active.has(n.input[i]))) {
      for (const o of gradOutputs(n)) if (n.output[o]) active.add(n.output[o]);
    }
  }
  const relevant = new Set(spec.taps);
  for (let k = order.length - 1; k >= 0; k--) {
    const n = order[k];
    if (gradOutputs(n).some((o) => relevant.has(n.output[o]))) {
      for (const i of gradInputs(n)) if (n.input[i]) relevant.add(n.input[i]);
    }
  }
  const live = (x: string | undefined): boolean => !!x && active.has(x) && relevant.has(x);
  const onPath = order.filter((n) =>
    gradInputs(n).some((i) => live(n.input[i])) && gradOutputs(n).some((o) => live(n.output[o]))
  );
  const missing = onPath.filter((n) => ruleFor(n)?.grad === undefined);
  return { order, active, relevant, onPath, missing };
}
