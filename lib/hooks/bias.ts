/**
 * Attention steering inputs: a new graph input per core whose value is added to the attention
 * scores just before the Softmax (broadcastable to [B, heads, Nq, Nk]; shape it [1, 1, Nq, Nk]
 * to apply one mask to every image and head). Zeros leave the model unchanged; a large
 * negative value on a key column removes that key.
 *
 * @module
 */
import { AttnkitError } from "../errors.ts";
import { typeOf } from "../onnx/graph.ts";
import { DataType, type Model, type NodeProto } from "../onnx/types.ts";
import { beginEdit, emit, finishEdit, freshName, type GraphEdit, unfoldShape } from "./edit.ts";
import type { AttentionCore } from "./find.ts";

function elemTypeOf(model: Model, t: string): number {
  return typeOf(model.graph, t)?.tensorType?.elemType ?? DataType.FLOAT;
}

function addBiasInput(e: GraphEdit, core: AttentionCore, elemType: number): string {
  const name = freshName(e, `attnkit/bias${core.index}`);
  const p = `bias${core.index}_`;
  e.inputs.push({
    name,
    type: {
      tensorType: {
        elemType,
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
 * A new model with one extra float input per core, `biasInputs[i]` for `cores[i]`, added to
 * that core's scores before the Softmax. Fused ops take it through their own additive input
 * (MultiHeadAttention `attention_bias`, Attention `attn_mask`), added to any existing one.
 */
export function biasAttention(
  model: Model,
  cores: readonly AttentionCore[],
): { model: Model; biasInputs: string[] } {
  const e = beginEdit(model);
  const biasInputs = cores.map((core) => {
    const base = `attnkit/bias${core.index}`;
    if (core.form === "matmul") {
      const sm = findCurrent(model, core.softmax!);
      const s = sm.input[0];
      const bias = addBiasInput(e, core, elemTypeOf(model, s));
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
      return bias;
    }
    const n = findCurrent(model, core.fused!);
    const slot = core.form === "MultiHeadAttention" ? 5 : 3;
    const existing = n.input[slot] ?? "";
    if (existing !== "" && elemTypeOf(model, existing) === DataType.BOOL) {
      throw new AttnkitError(
        "cores",
        `core ${core.index}: ${core.form} already has a boolean mask; adding a float bias to it ` +
          "is not supported",
      );
    }
    const bias = addBiasInput(e, core, DataType.FLOAT);
    const feed = existing === "" ? bias : emit(e, "Add", [existing, bias], `${base}/merged`, {}, n);
    const prev = e.replaced.get(n) ?? n;
    const inputs = [...prev.input];
    while (inputs.length <= slot) inputs.push("");
    inputs[slot] = feed;
    e.replaced.set(n, { ...prev, input: inputs });
    return bias;
  });
  return { model: finishEdit(e), biasInputs };
}
