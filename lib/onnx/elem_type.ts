/**
 * The element type of any tensor in a graph, where the graph does not record it: walks back
 * through producers using each operator's type rule (Cast → `to`; Shape → int64; comparisons →
 * bool; most others → the type of their first data input). Exports often leave intermediate
 * tensors without `value_info`, and the hooks must match a float16 or bfloat16 model's types.
 *
 * @module
 */
import { producerMap, typeOf } from "./graph.ts";
import { DataType, type GraphProto, type NodeProto } from "./types.ts";

const INT64_OPS = new Set(["Shape", "Size", "NonZero", "ArgMax", "ArgMin", "NonMaxSuppression"]);
const BOOL_OPS = new Set([
  "Equal",
  "Less",
  "LessOrEqual",
  "Greater",
  "GreaterOrEqual",
  "Not",
  "And",
  "Or",
  "Xor",
  "IsNaN",
  "IsInf",
]);
/** Ops whose output type is that of input 1 (input 0 is a condition or an index). */
const SECOND_INPUT_OPS = new Set(["Where"]);

/**
 * A function giving the element type (a {@link DataType} code) of a tensor of `graph`, or
 * `undefined` when nothing says. Results are memoised; build one per graph.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DataType, onnx } from "@attnkit/attnkit";
 * import { model, node, valueInfo } from "./build.ts";
 * const m = model({
 *   inputs: [valueInfo("scores", [2, 4], DataType.FLOAT16)],
 *   outputs: [valueInfo("probs", [2, 4], DataType.FLOAT16)],
 *   nodes: [node("Softmax", ["scores"], ["attn/Softmax_output_0"]), node("Identity", ["attn/Softmax_output_0"], ["probs"])],
 * });
 * const typeOfTensor = onnx.elemTypes(m.graph);
 * assert(typeOfTensor("attn/Softmax_output_0") === DataType.FLOAT16); // 10 in a float16 export
 * assert(typeOfTensor("no/such/tensor") === undefined);
 * ```
 */
export function elemTypes(graph: GraphProto): (tensor: string) => number | undefined {
  const producers = producerMap(graph);
  const memo = new Map<string, number | undefined>();
  const ruleOf = (n: NodeProto): number | string[] | undefined => {
    const a = (name: string) => n.attribute.find((x) => x.name === name);
    if ((n.domain ?? "") === "" || n.domain === "ai.onnx") {
      if (n.opType === "Cast") return Number(a("to")?.i ?? 0) || undefined;
      if (n.opType === "CastLike") return [n.input[1]];
      if (INT64_OPS.has(n.opType)) return DataType.INT64;
      if (BOOL_OPS.has(n.opType)) return DataType.BOOL;
      if (n.opType === "Constant") {
        const t = a("value")?.t;
        if (t) return t.dataType;
        if (a("value_float") || a("value_floats")) return DataType.FLOAT;
        if (a("value_int") || a("value_ints")) return DataType.INT64;
        return undefined;
      }
      if (n.opType === "ConstantOfShape") return a("value")?.t?.dataType ?? DataType.FLOAT;
      if (SECOND_INPUT_OPS.has(n.opType)) return [n.input[1]];
    }
    return n.input.filter((i) => i !== "");
  };
  const go = (t: string): number | undefined => {
    // Iterative: real UNets chain thousands of nodes.
    const stack: string[] = [t];
    while (stack.length > 0) {
      const cur = stack[stack.length - 1];
      if (memo.has(cur)) {
        stack.pop();
        continue;
      }
      const recorded = typeOf(graph, cur)?.tensorType?.elemType;
      const p = producers.get(cur);
      if (recorded || !p) {
        memo.set(cur, recorded || undefined);
        stack.pop();
        continue;
      }
      const rule = ruleOf(p);
      if (rule === undefined || typeof rule === "number") {
        memo.set(cur, rule);
        stack.pop();
        continue;
      }
      const pending = rule.find((i) => !memo.has(i));
      if (pending !== undefined && !stack.includes(pending)) {
        stack.push(pending);
        continue;
      }
      memo.set(cur, rule.map((i) => memo.get(i)).find((x) => x !== undefined));
      stack.pop();
    }
    return memo.get(t);
  };
  return go;
}
