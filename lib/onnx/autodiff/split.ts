/**
 * Splits a VJP model (see `vjp.ts`) into its two halves so that a loss computed between them costs
 * no extra forward pass: the forward half runs the original inputs to the kept outputs (e.g. the
 * attention maps a loss reads) and also returns every forward tensor the backward reads; the
 * backward half takes those tensors and the cotangents and returns the gradients. Running the two
 * in turn gives exactly the VJP model's result, with the forward computed once. This is the
 * save-for-backward of reverse mode, across two onnxruntime sessions.
 *
 * Nodes that read a cotangent go to the backward half; nodes that read a graph input but no
 * cotangent go to the forward half; nodes that read only initializers and constants go to
 * whichever half needs them (both when both do).
 *
 * @module
 */
import { AttnkitError } from "../../errors.ts";
import { nodeReads } from "../graph.ts";
import type { GraphProto, Model, NodeProto, ValueInfoProto } from "../types.ts";
import { inferFacts } from "./facts.ts";
import type { VjpResult } from "./vjp.ts";

/** The two halves of a VJP model. */
export interface VjpHalves {
  /** Original inputs → `keep` outputs, then the `saved` tensors. */
  readonly forward: Model;
  /** Forward tensors the backward half reads, in the forward half's output order after `keep`. */
  readonly saved: readonly string[];
  /** Original graph inputs the backward half reads directly (feed them to it as well). */
  readonly passed: readonly string[];
  /**
   * The backward half: inputs `passed`, `saved` (typed by `savedInfo`, e.g. from the forward
   * half's first run) and the cotangents; outputs the gradients.
   */
  backward(savedInfo: readonly ValueInfoProto[]): Model;
}

/**
 * Splits `vjp` (built with `keepForwardOutputs` or not) into forward and backward halves; `keep`
 * names the forward tensors the forward half must output (for example the taps the loss reads and
 * the model output). Throws an AttnkitError naming `keep` for a name the forward half cannot make.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { onnx } from "@attnkit/attnkit";
 * import { model, node, valueInfo } from "../build.ts";
 * // q, k, v [B=1, heads=2, N=16 (a 4×4 latent), d=4]; scores QKᵀ, Softmax, times V.
 * const unet = model({
 *   inputs: ["q", "k", "v"].map((name) => valueInfo(name, [1, 2, 16, 4])),
 *   outputs: [valueInfo("o", [1, 2, 16, 4])],
 *   nodes: [
 *     node("Transpose", ["k"], ["kt"], { perm: [0, 1, 3, 2] }),
 *     node("MatMul", ["q", "kt"], ["s"]),
 *     node("Softmax", ["s"], ["p"], { axis: -1 }),
 *     node("MatMul", ["p", "v"], ["o"]),
 *   ],
 * });
 * // Gradient of the attention probabilities `p` with respect to `q`.
 * const vjp = onnx.vjpGraph(unet, { wrt: ["q"], taps: ["p"] });
 * const halves = onnx.splitVjp(vjp, ["p"]);
 * console.log(halves.saved.length, "tensors cross from the forward to the backward half");
 * assert(halves.forward.graph.output[0].name === "p" && halves.saved.includes("p"));
 * ```
 */
export function splitVjp(
  vjp: VjpResult,
  keep: readonly string[],
  original?: Model,
): VjpHalves {
  const g = vjp.model.graph;
  // With the original model known, only its own nodes run in the forward half: tensors the
  // backward derives from forward tensors (transposes, shapes) are made there, not saved.
  const own = original ? new Set(original.graph.node) : undefined;
  const cot = new Set(vjp.cotangentInputs);
  const inits = new Set(g.initializer.map((t) => t.name));
  const inputs = new Set(g.input.map((v) => v.name).filter((n) => !inits.has(n) && !cot.has(n)));
  // Tensors the backward half makes (the cotangents and everything computed in that half).
  const readsCot = new Set<string>(cot);
  const readsInput = new Set<string>(inputs);
  const half = new Map<NodeProto, "fwd" | "bwd" | "const">();
  const producer = new Map<string, NodeProto>();
  for (const n of g.node) {
    const reads = nodeReads(n);
    const c = reads.some((x) => readsCot.has(x));
    const i = reads.some((x) => readsInput.has(x));
    const which = c || (i && own !== undefined && !own.has(n)) ? "bwd" : i ? "fwd" : "const";
    half.set(n, which);
    for (const o of n.output) {
      producer.set(o, n);
      if (which === "bwd") readsCot.add(o);
      if (i) readsInput.add(o);
    }
  }
  for (const k of keep) {
    const p = producer.get(k);
    if (!inputs.has(k) && (!p || half.get(p) === "bwd")) {
      throw new AttnkitError("keep", `"${k}" is not a forward tensor of the VJP model`);
    }
  }
  /** The nodes of one half plus the constant-only nodes they need, in graph order. */
  const collect = (which: "fwd" | "bwd", extraReads: readonly string[]): Set<NodeProto> => {
    const chosen = new Set(g.node.filter((n) => half.get(n) === which));
    const stack = [...chosen].flatMap((n) => nodeReads(n)).concat(extraReads);
    while (stack.length > 0) {
      const p = producer.get(stack.pop()!);
      if (!p || chosen.has(p) || half.get(p) !== "const") continue;
      chosen.add(p);
      stack.push(...nodeReads(p));
    }
    return chosen;
  };
  const fwdNodes = collect("fwd", keep);
  const bwdNodes = collect("bwd", vjp.gradOutputs);
  const fwdMade = new Set([...fwdNodes].flatMap((n) => n.output));
  const bwdReads = new Set([...bwdNodes].flatMap((n) => nodeReads(n)));
  for (const o of vjp.gradOutputs) bwdReads.add(o);
  const bwdMade = new Set([...bwdNodes].flatMap((n) => n.output));
  const saved = [...fwdMade].filter((t) => bwdReads.has(t) && !bwdMade.has(t) && !keep.includes(t));
  const savedAndKept = [...saved, ...keep.filter((k) => bwdReads.has(k) && !inputs.has(k))];
  const passed = [...inputs].filter((x) => bwdReads.has(x));
  const ordered = (set: Set<NodeProto>) => g.node.filter((n) => set.has(n));
  const initsFor = (nodes: NodeProto[]) => {
    const reads = new Set(nodes.flatMap((n) => nodeReads(n)));
    return g.initializer.filter((t) => reads.has(t.name) && !inputs.has(t.name));
  };
  const fwdList = ordered(fwdNodes);
  const bwdList = ordered(bwdNodes);
  const facts = inferFacts(g);
  // An output whose type the facts do not know is left untyped; onnxruntime infers it.
  const info = (name: string): ValueInfoProto => {
    const given = g.input.find((v) => v.name === name);
    if (given) return given;
    const elemType = facts.get(name)?.elemType;
    return elemType === undefined ? { name } : { name, type: { tensorType: { elemType } } };
  };
  const forwardGraph: GraphProto = {
    ...g,
    name: `${g.name}_forward`,
    node: fwdList,
    initializer: initsFor(fwdList),
    input: g.input.filter((v) => inputs.has(v.name)),
    output: [...keep, ...saved].map(info),
    valueInfo: [],
  };
  return {
    forward: { ...vjp.model, graph: forwardGraph },
    saved: savedAndKept,
    passed,
    backward(savedInfo) {
      const byName = new Map(savedInfo.map((v) => [v.name, v]));
      const missing = savedAndKept.filter((s) => !byName.has(s));
      if (missing.length > 0) {
        throw new AttnkitError("savedInfo", `no type for ${missing.slice(0, 4).join(", ")}`);
      }
      const graph: GraphProto = {
        ...g,
        name: `${g.name}_backward`,
        node: bwdList,
        initializer: initsFor(bwdList),
        input: [
          ...passed.map(info),
          ...savedAndKept.map((s) => byName.get(s)!),
          ...g.input.filter((v) => cot.has(v.name)),
        ],
        output: g.output.filter((o) => vjp.gradOutputs.includes(o.name)),
        valueInfo: [],
      };
      return { ...vjp.model, graph };
    },
  };
}
