/**
 * Attention written in ops reverse-mode autodiff has no rules for, rewritten in ops it has, so
 * gradient-based controls work on those exports: fused attention ops (replaced by the primitive
 * ops they compute, `rebuild.ts`) and two-operand `Einsum` nodes (as Transpose → MatMul →
 * Transpose). An
 * equation is rewritten when every letter is a batch letter (both operands and the output), the
 * one contracted letter (both operands, not the output), or the one free letter of each operand
 * (that operand and the output) — which covers attention's `Q·Kᵀ` and `P·V` in every common
 * spelling. Other Einsums are left as they are (autodiff then names them).
 *
 * MatMul broadcasts over the leading (batch) axes, so no reshape is needed:
 * `A → [batch…, i, c]`, `B → [batch…, c, j]`, `A·B = [batch…, i, j]`, then the output order.
 *
 * @module
 */
import { staticShape, topologicalOrder, withGraph } from "../onnx/graph.ts";
import { node } from "../onnx/build.ts";
import { elemTypes } from "../onnx/elem_type.ts";
import { DataType, type Model, type NodeProto } from "../onnx/types.ts";
import { beginEdit, emit, finishEdit, int64Const } from "./edit.ts";
import { type EinsumEquation, parseEinsum } from "./einsum.ts";
import type { AttentionCore } from "./find.ts";
import { qkOf, type RebuildCtx, repeatKvHeads, scaledScores, vOf } from "./rebuild.ts";

/** Transposes and the output order for `eq` as one batched MatMul, or undefined. */
function asMatMul(eq: EinsumEquation):
  | { a: number[]; b: number[]; out: number[] }
  | undefined {
  if (eq.inputs.length !== 2) return undefined;
  const [x, y] = eq.inputs, o = eq.output;
  const all = [x, y, o].join("");
  if (new Set(all).size !== new Set([...x, ...y]).size) return undefined; // output-only letter
  for (const s of [x, y, o]) if (new Set(s).size !== s.length) return undefined; // diagonals
  const batch = [...o].filter((ch) => x.includes(ch) && y.includes(ch));
  const contracted = [...x].filter((ch) => y.includes(ch) && !o.includes(ch));
  const i = [...x].filter((ch) => !y.includes(ch));
  const j = [...y].filter((ch) => !x.includes(ch));
  if (contracted.length !== 1 || i.length !== 1 || j.length !== 1) return undefined;
  if (!o.includes(i[0]) || !o.includes(j[0])) return undefined; // a letter summed on one side
  const c = contracted[0];
  const mm = [...batch, i[0], j[0]];
  return {
    a: [...batch, i[0], c].map((ch) => x.indexOf(ch)),
    b: [...batch, c, j[0]].map((ch) => y.indexOf(ch)),
    out: [...o].map((ch) => mm.indexOf(ch)),
  };
}

const isIdentity = (p: number[]) => p.every((v, i) => v === i);

/**
 * A copy of `model` with each two-operand batched-matmul `Einsum` written as MatMul and
 * Transposes (same output names, same values); returns `model` itself when there is none.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hooks } from "@attnkit/attnkit";
 * import { model, node, valueInfo } from "../onnx/build.ts";
 * const m = model({
 *   inputs: [valueInfo("q", [2, 4, 8]), valueInfo("k", [2, 4, 8])],
 *   outputs: [valueInfo("s", [2, 4, 4])],
 *   nodes: [node("Einsum", ["q", "k"], ["s"], { equation: "bid,bjd->bij" })],
 * });
 * const differentiable = hooks.lowerEinsum(m); // then vjpGraph(differentiable, …)
 * assert(differentiable.graph.node.every((n) => n.opType !== "Einsum"));
 * assert(differentiable.graph.node.some((n) => n.opType === "MatMul"));
 * ```
 */
export function lowerEinsum(model: Model): Model {
  const e = beginEdit(model);
  let any = false;
  for (const n of model.graph.node) {
    if (n.opType !== "Einsum" || (n.domain ?? "") !== "" || n.input.length !== 2) continue;
    const a = n.attribute.find((x) => x.name === "equation");
    const text = a?.s ? new TextDecoder().decode(a.s) : "";
    const eq = parseEinsum(text, n.input.map((i) => staticShape(model.graph, i)?.length));
    if (typeof eq === "string") continue;
    const plan = asMatMul(eq);
    if (!plan) continue;
    any = true;
    const base = `attnkit/einsum/${n.output[0]}`;
    const side = (t: string, perm: number[], what: string) =>
      isIdentity(perm) ? t : emit(e, "Transpose", [t], `${base}/${what}`, { perm }, n);
    const x = side(n.input[0], plan.a, "a");
    const y = side(n.input[1], plan.b, "b");
    if (isIdentity(plan.out)) {
      e.replaced.set(n, { ...n, opType: "MatMul", input: [x, y], attribute: [] });
    } else {
      const mm = emit(e, "MatMul", [x, y], `${base}/mm`, {}, n);
      e.replaced.set(
        n,
        node("Transpose", [mm], [n.output[0]], { perm: plan.out }, { name: n.name }),
      );
    }
  }
  return any ? finishEdit(e) : model;
}

function currentNode(model: Model, original: NodeProto): NodeProto | undefined {
  // Cores may come from another copy of the graph (e.g. before an upcast): match by output.
  return model.graph.node.find((x) => x === original) ??
    model.graph.node.find((x) =>
      x.output[0] === original.output[0] && x.opType === original.opType
    );
}

/**
 * A copy of `model` with each fused attention core (com.microsoft MultiHeadAttention / Attention,
 * opset-23 Attention) replaced by the primitive ops it computes (see `rebuild.ts`), so reverse-mode
 * autodiff can go through it; same output names, same values up to float rounding, computed in
 * float32 and cast back to the op's type. A core whose op also returns a KV cache in use is left
 * as it is.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hooks } from "@attnkit/attnkit";
 * import { model, node, valueInfo } from "../onnx/build.ts";
 * // One opset-23 Attention over q, k, v of shape [B=1, heads=2, N=4, d=8].
 * const m = model({
 *   opset: 23,
 *   inputs: ["q", "k", "v"].map((name) => valueInfo(name, [1, 2, 4, 8])),
 *   outputs: [valueInfo("y", [1, 2, 4, 8])],
 *   nodes: [node("Attention", ["q", "k", "v"], ["y"])],
 * });
 * const differentiable = hooks.lowerFusedAttention(m, hooks.findAttention(m));
 * const ops = differentiable.graph.node.map((n) => n.opType);
 * assert(!ops.includes("Attention") && ops.includes("Softmax"));
 * ```
 */
export function lowerFusedAttention(model: Model, cores: readonly AttentionCore[]): Model {
  const fused = cores.filter((c) => c.fused !== undefined);
  if (fused.length === 0) return model;
  const e = beginEdit(model);
  const c: RebuildCtx = { e, elemType: elemTypes(model.graph) };
  const outputs = new Set(model.graph.output.map((o) => o.name));
  const read = new Set(model.graph.node.flatMap((n) => n.input));
  for (const core of fused) {
    const n = currentNode(model, core.fused!);
    if (!n || n.output.slice(1).some((o) => o !== "" && (read.has(o) || outputs.has(o)))) continue;
    const base = `attnkit/lower${core.index}`;
    const { q, k } = qkOf(c, core, base);
    let v = vOf(c, core, base);
    let kk = k;
    if (core.kvHeads !== undefined) {
      kk = repeatKvHeads(c, core, k, `${base}/k_groups`);
      v = repeatKvHeads(c, core, v, `${base}/v_groups`);
    }
    const p = emit(e, "Softmax", [scaledScores(c, core, q, kk, base)], `${base}/p`, { axis: -1 });
    let o = emit(e, "MatMul", [p, v], `${base}/pv`);
    if (core.layout !== "bhnd") {
      const t = emit(e, "Transpose", [o], `${base}/o_t`, { perm: [0, 2, 1, 3] });
      o = emit(e, "Reshape", [t, int64Const(e, `${base}/o_shape`, [0, 0, -1])], `${base}/o`);
    }
    const dt = c.elemType(n.input[0]);
    if (dt !== undefined && dt !== DataType.FLOAT) {
      o = emit(e, "Cast", [o], `${base}/o_cast`, { to: dt });
    }
    e.replaced.set(n, node("Identity", [o], [n.output[0]], {}, { name: `${base}/Identity` }));
  }
  const m = finishEdit(e);
  // Rebuilt nodes were appended; put every node after what it reads.
  return withGraph(m, { ...m.graph, node: topologicalOrder(m.graph) });
}
