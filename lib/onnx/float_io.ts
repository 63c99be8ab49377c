/**
 * Float32 inputs and outputs for a model that computes in float16 or bfloat16: the graph takes
 * float32 where it took a low-precision float and casts inside, and its low-precision outputs
 * gain a float32 twin. Callers then feed and read plain Float32Arrays whatever the export's dtype
 * (onnxruntime's JavaScript API has no bfloat16 tensor, and float16 ones need conversion), while
 * the model's own maths stays in its dtype: the in-graph Cast rounds exactly as a JavaScript-side
 * conversion would (round to nearest even).
 *
 * @module
 */
import { usedNames, withGraph } from "./graph.ts";
import { node } from "./build.ts";
import { fromFloat32, toFloat32 } from "./tensor_data.ts";
import {
  DataType,
  type Model,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from "./types.ts";

/** onnx.TensorProto.DataType.BFLOAT16. */
const BFLOAT16 = 16;

/** Float types (other than float32) that get a float32 interface. */
const LOW_FLOATS: ReadonlySet<number> = new Set([DataType.FLOAT16, BFLOAT16, DataType.DOUBLE]);

/** What {@link withFloat32Io} changed. */
export interface Float32Io {
  /** The edited model (the input is not changed). */
  model: Model;
  /** For each requested output, the name of its float32 version (the name itself when it was). */
  outputs: Record<string, string>;
  /** The original element type of each input that now takes float32. */
  castInputs: Record<string, number>;
}

function elemOf(v: ValueInfoProto | undefined): number | undefined {
  return v?.type?.tensorType?.elemType;
}

/**
 * A model whose `inputs` that were float16 / bfloat16 / float64 take float32 (a Cast inside
 * brings them to the model's dtype), and whose such `outputs` gain float32 versions.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DataType } from "@attnkit/attnkit";
 * import { withFloat32Io } from "./float_io.ts";
 * import { model, node, valueInfo } from "./build.ts";
 * // A float16 graph: y = Relu(x), x and y float16 [2].
 * const fp16Unet = model({
 *   inputs: [valueInfo("sample", [2], DataType.FLOAT16)],
 *   outputs: [valueInfo("out_sample", [2], DataType.FLOAT16)],
 *   nodes: [node("Relu", ["sample"], ["out_sample"])],
 * });
 * const { model: m32, outputs } = withFloat32Io(fp16Unet, ["sample"], ["out_sample"]);
 * // feed float32 tensors; read outputs["out_sample"]
 * assert(m32.graph.input[0].type?.tensorType?.elemType === DataType.FLOAT);
 * assert(outputs["out_sample"] === "out_sample/float32");
 * ```
 */
export function withFloat32Io(
  model: Model,
  inputs: readonly string[],
  outputs: readonly string[],
): Float32Io {
  const g = model.graph;
  const names = usedNames(g);
  const fresh = (base: string) => {
    let n = base;
    for (let k = 1; names.has(n); k++) n = `${base}_${k}`;
    names.add(n);
    return n;
  };
  const rename = new Map<string, string>();
  const castInputs: Record<string, number> = {};
  const head: NodeProto[] = [];
  const newInputs = g.input.map((v) => {
    const t = elemOf(v);
    if (!inputs.includes(v.name) || t === undefined || !LOW_FLOATS.has(t)) return v;
    const inner = fresh(`${v.name}/attnkit_${t === BFLOAT16 ? "bf16" : "f16"}`);
    rename.set(v.name, inner);
    castInputs[v.name] = t;
    head.push(node("Cast", [v.name], [inner], { to: t }, { name: fresh(`${inner}/Cast`) }));
    return { ...v, type: { tensorType: { ...v.type!.tensorType!, elemType: DataType.FLOAT } } };
  });
  const swap = (i: string) => rename.get(i) ?? i;
  // Subgraph bodies (If/Loop) that read an input directly are left as they are: rare in
  // denoisers, and onnxruntime names the mismatch at load.
  const nodes = g.node.map((n) =>
    n.input.some((i) => rename.has(i)) ? { ...n, input: n.input.map(swap) } : n
  );
  const outMap: Record<string, string> = {};
  const tail: NodeProto[] = [];
  const newOutputs = g.output.map((v) => {
    const t = elemOf(v);
    if (!outputs.includes(v.name) || t === undefined || !LOW_FLOATS.has(t)) {
      if (outputs.includes(v.name)) outMap[v.name] = v.name;
      return v;
    }
    const f32 = fresh(`${v.name}/float32`);
    outMap[v.name] = f32;
    tail.push(
      node("Cast", [swap(v.name)], [f32], { to: DataType.FLOAT }, { name: fresh(`${f32}/Cast`) }),
    );
    return {
      name: f32,
      type: { tensorType: { ...v.type!.tensorType!, elemType: DataType.FLOAT } },
    };
  });
  return {
    model: withGraph(model, {
      ...g,
      input: newInputs,
      node: [...head, ...nodes, ...tail],
      output: newOutputs,
    }),
    outputs: outMap,
    castInputs,
  };
}

/** A FLOAT copy of a float16 / bfloat16 / float64 tensor (other tensors unchanged). */
function upcastTensor(t: TensorProto): TensorProto {
  if (!LOW_FLOATS.has(t.dataType)) return t;
  return fromFloat32(t.name, t.dims, toFloat32(t));
}

/**
 * The same network computing in float32: float16 / bfloat16 / float64 weights, constants, Casts
 * and declared types become float32. For work that needs float32 throughout, such as reverse-mode
 * gradients (whose added constants are float32), on a model exported in a low precision; the
 * forward pass itself stays in the model's dtype. Returns `model` itself when nothing changes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DataType } from "@attnkit/attnkit";
 * import { upcastToFloat32 } from "./float_io.ts";
 * import { model, node, valueInfo } from "./build.ts";
 * // A float16 graph: y = Relu(x), x and y float16 [2].
 * const fp16Unet = model({
 *   inputs: [valueInfo("sample", [2], DataType.FLOAT16)],
 *   outputs: [valueInfo("out_sample", [2], DataType.FLOAT16)],
 *   nodes: [node("Relu", ["sample"], ["out_sample"])],
 * });
 * const f32 = upcastToFloat32(fp16Unet); // same weights, float32 maths
 * assert(f32.graph.input[0].type?.tensorType?.elemType === DataType.FLOAT);
 * ```
 */
export function upcastToFloat32(model: Model): Model {
  const g = model.graph;
  const low = (t: number | undefined) => t !== undefined && LOW_FLOATS.has(t);
  const retype = (v: ValueInfoProto): ValueInfoProto =>
    low(elemOf(v))
      ? { ...v, type: { tensorType: { ...v.type!.tensorType!, elemType: DataType.FLOAT } } }
      : v;
  let changed = false;
  const nodes = g.node.map((n) => {
    const attribute = n.attribute.map((a) => {
      if (a.t && low(a.t.dataType)) return { ...a, t: upcastTensor(a.t) };
      if (n.opType === "Cast" && a.name === "to" && low(Number(a.i))) {
        return { ...a, i: BigInt(DataType.FLOAT) };
      }
      return a;
    });
    if (attribute.every((a, i) => a === n.attribute[i])) return n;
    changed = true;
    return { ...n, attribute };
  });
  const initializer = g.initializer.map(upcastTensor);
  changed ||= initializer.some((t, i) => t !== g.initializer[i]) ||
    [...g.input, ...g.output, ...g.valueInfo].some((v) => low(elemOf(v)));
  if (!changed) return model;
  return withGraph(model, {
    ...g,
    node: nodes,
    initializer,
    input: g.input.map(retype),
    output: g.output.map(retype),
    valueInfo: g.valueInfo.map(retype),
  });
}
