/**
 * Attention steering inputs: a new graph input per core whose value is added to the attention
 * scores just before the Softmax (broadcastable to [B, heads, Nq, Nk]; shape it [1, 1, Nq, Nk]
 * to apply one mask to every image and head). Zeros leave the model unchanged; a large
 * negative value on a key column removes that key.
 *
 * @module
 */
import { AttnkitError } from "../errors.ts";
import { elemTypes } from "../onnx/elem_type.ts";
import { DataType, type Model, type NodeProto } from "../onnx/types.ts";
import {
  beginEdit,
  castTo,
  emit,
  finishEdit,
  floatConst,
  freshName,
  type GraphEdit,
  int64Const,
  unfoldShape,
} from "./edit.ts";
import type { AttentionCore } from "./find.ts";

function addBiasInput(e: GraphEdit, core: AttentionCore): string {
  const name = freshName(e, `attnkit/bias${core.index}`);
  const p = `bias${core.index}_`;
  e.inputs.push({
    name,
    type: {
      tensorType: {
        elemType: DataType.FLOAT,
        shape: {
          dim: [{ dimParam: `${p}batch` }, { dimParam: `${p}heads` }, { dimParam: `${p}nq` }, {
            dimParam: `${p}nk`,
          }],
        },
      },
    },
  });
  return name;
}

/** Axis `axis` of `t`'s shape as a 1-D int64 tensor of one element. */
function dimOf(e: GraphEdit, t: string, axis: number, base: string, before: NodeProto): string {
  const shape = emit(e, "Shape", [t], `${base}/shape`, {}, before);
  return emit(
    e,
    "Slice",
    [shape, int64Const(e, `${base}/from`, [axis]), int64Const(e, `${base}/to`, [axis + 1])],
    `${base}/dim`,
    {},
    before,
  );
}

/** [1, 1, Nq, Nk] of a fused core, read from its inputs at run time. */
function scoresShape(e: GraphEdit, core: AttentionCore, n: NodeProto, base: string): string {
  const q = n.input[0];
  let nq: string, nk: string;
  if (core.form === "com.microsoft.Attention" || core.fusedQk?.packed === "qkv") {
    nq = dimOf(e, q, 1, `${base}/nq`, n);
    nk = nq;
  } else {
    nq = dimOf(e, q, core.layout === "bhnd" ? 2 : 1, `${base}/nq`, n);
    nk = dimOf(e, n.input[1], core.kLayout === "bhnd" ? 2 : 1, `${base}/nk`, n);
  }
  const ones = int64Const(e, `${base}/ones`, [1, 1]);
  return emit(e, "Concat", [ones, nq, nk], `${base}/scores_shape`, { axis: 0 }, n);
}

function findCurrent(model: Model, original: NodeProto): NodeProto {
  // Cores may come from an earlier decode of the same file: match by first output name.
  const n = model.graph.node.find((x) => x === original) ??
    model.graph.node.find((x) =>
      x.output[0] === original.output[0] && x.opType === original.opType
    );
  if (!n) {
    throw new AttnkitError("cores", `node "${original.output[0]}" is not in this model`);
  }
  return n;
}

/**
 * A new model with one extra float32 input per core, `biasInputs[i]` for `cores[i]`, added to
 * that core's scores before the Softmax (cast to the model's dtype there, so float16 and
 * bfloat16 models take float32 biases too). Fused ops take it through their own additive input
 * (MultiHeadAttention and com.microsoft Attention `attention_bias`, opset-23 Attention
 * `attn_mask`), expanded to [B, heads, Nq, Nk] and added to any existing one; an existing
 * boolean mask is kept (masked keys stay masked).
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
 * const { model: steered, biasInputs } = hooks.biasAttention(m, hooks.findAttention(m));
 * // feed biasInputs[i] a float32 [1, 1, Nq, Nk] tensor (zeros change nothing)
 * assert(biasInputs.length === 1);
 * assert(steered.graph.input.some((i) => i.name === biasInputs[0]));
 * ```
 */
export function biasAttention(
  model: Model,
  cores: readonly AttentionCore[],
): { model: Model; biasInputs: string[] } {
  const e = beginEdit(model);
  const elemType = elemTypes(model.graph);
  const biasInputs = cores.map((core) => {
    const base = `attnkit/bias${core.index}`;
    if (core.softmax) {
      const sm = findCurrent(model, core.softmax);
      const s = sm.input[0];
      const input = addBiasInput(e, core);
      const bias = castTo(e, input, DataType.FLOAT, elemType(s) ?? DataType.FLOAT, base, sm);
      let biased: string;
      if (core.layout === "bhnd") {
        biased = emit(e, "Add", [s, bias], `${base}/scores`, {}, sm);
      } else {
        if (core.heads === undefined) {
          throw new AttnkitError(
            "heads",
            `core ${core.index}: head count unknown, cannot add a per-head bias; pass { heads }`,
          );
        }
        const s4 = emit(
          e,
          "Reshape",
          [s, unfoldShape(e, s, core.heads, base, sm)],
          `${base}/s4`,
          {},
          sm,
        );
        const a = emit(e, "Add", [s4, bias], `${base}/biased`, {}, sm);
        const back = emit(e, "Shape", [s], `${base}/s_shape`, {}, sm);
        biased = emit(e, "Reshape", [a, back], `${base}/scores`, {}, sm);
      }
      const prev = e.replaced.get(sm) ?? sm;
      e.replaced.set(sm, { ...prev, input: [biased, ...prev.input.slice(1)] });
      return input;
    }
    const n = findCurrent(model, core.fused!);
    const slot = core.form === "Attention" ? 3 : 5;
    const existing = n.input[slot] ?? "";
    const input = addBiasInput(e, core);
    const dtype = elemType(n.input[0]) ?? DataType.FLOAT;
    const cast = castTo(e, input, DataType.FLOAT, dtype, base, n);
    // onnxruntime wants the op's bias at full [.., .., Nq, Nk]; a [1, 1, 1, 1] zero bias is fine
    // for the caller, so broadcast here.
    const bias = emit(e, "Expand", [cast, scoresShape(e, core, n, base)], `${base}/full`, {}, n);
    let feed = bias;
    if (existing !== "" && elemType(existing) === DataType.BOOL) {
      const lowest = castTo(
        e,
        floatConst(e, `${base}/lowest`, -3.4028234663852886e38),
        DataType.FLOAT,
        dtype,
        `${base}/lowest`,
        n,
      );
      feed = emit(e, "Where", [existing, bias, lowest], `${base}/merged`, {}, n);
    } else if (existing !== "") {
      feed = emit(e, "Add", [existing, bias], `${base}/merged`, {}, n);
    }
    const prev = e.replaced.get(n) ?? n;
    const inputs = [...prev.input];
    while (inputs.length <= slot) inputs.push("");
    inputs[slot] = feed;
    e.replaced.set(n, { ...prev, input: inputs });
    return input;
  });
  return { model: finishEdit(e), biasInputs };
}
