/**
 * The field-form rewrites of the embedded UNet (shared/cases/field-forms.md F2, F3, F7), done in
 * TypeScript at test time so the tests need no Python: each mirrors the case's Python script
 * (einsum_unet.py, ort_fuse.py, to_fp16.py) node for node. Also a pruning helper and a float16
 * encoder for building hand-made test layers.
 */
import { decodeModel, encodeModel } from "../lib/onnx/proto.ts";
import { producerMap, topologicalOrder } from "../lib/onnx/graph.ts";
import { toFloat32 } from "../lib/onnx/tensor_data.ts";
import { attribute, node } from "../lib/onnx/build.ts";
import { DataType, type Model, type NodeProto, type TensorProto } from "../lib/onnx/types.ts";

export const SHAPES_DIR = new URL("../weights/shapes/", import.meta.url);

/** F2: every Softmax's score MatMul and P·V MatMul become Einsum (bhid,bhdj->bhij; bhij,bhjd->bhid). */
export function toEinsum(m: Model): Model {
  const prod = producerMap(m.graph);
  const replace = new Map<NodeProto, NodeProto>();
  for (const sm of m.graph.node.filter((n) => n.opType === "Softmax")) {
    const score = prod.get(prod.get(sm.input[0])!.input[0])!;
    const pv = m.graph.node.find((n) => n.opType === "MatMul" && n.input.includes(sm.output[0]))!;
    for (const [n, eq] of [[score, "bhid,bhdj->bhij"], [pv, "bhij,bhjd->bhid"]] as const) {
      replace.set(n, { ...n, opType: "Einsum", attribute: [attribute("equation", eq)] });
    }
  }
  return { ...m, graph: { ...m.graph, node: m.graph.node.map((n) => replace.get(n) ?? n) } };
}

interface LayerConfig {
  name: string;
  kind: "self" | "cross";
  heads: number;
}

/** Drops nodes no graph output depends on and restores a topological order. */
export function pruneDead(m: Model): Model {
  const prod = producerMap(m.graph);
  const live = new Set<NodeProto>();
  const todo = m.graph.output.map((o) => o.name);
  while (todo.length > 0) {
    const n = prod.get(todo.pop()!);
    if (n && !live.has(n)) {
      live.add(n);
      todo.push(...n.input.filter((i) => i !== ""));
    }
  }
  const g = { ...m.graph, node: m.graph.node.filter((n) => live.has(n)) };
  return { ...m, graph: { ...g, node: topologicalOrder(g) } };
}

/**
 * F3: self-attention → com.microsoft Attention with stacked QKV weights [C, 3C] and a zero bias,
 * as onnxruntime's fusion_attention_unet.py emits with packed QKV off. `opts` lets a test make
 * a variant the hooks must refuse (e.g. `unidirectional: 1`).
 */
export function toOrtFused(
  m: Model,
  layers: readonly LayerConfig[],
  attrs: Record<string, number> = {},
): Model {
  const g = m.graph;
  const init = new Map(g.initializer.map((t) => [t.name, t]));
  const byName = new Map(g.node.map((n) => [n.name ?? "", n]));
  const inits: TensorProto[] = [...g.initializer];
  const nodes = [...g.node];
  for (const L of layers.filter((l) => l.kind === "self")) {
    const p = "/" + L.name.replaceAll(".", "/") + "/";
    const [q, k, v] = ["q", "k", "v"].map((x) => byName.get(`${p}to_${x}/MatMul`)!);
    const ws = [q, k, v].map((n) => init.get(n.input[1])!);
    const [cin, c] = ws[0].dims;
    const vals = ws.map(toFloat32);
    const w = new Float32Array(cin * 3 * c);
    for (let r = 0; r < cin; r++) {
      for (let s = 0; s < 3; s++) w.set(vals[s].subarray(r * c, (r + 1) * c), r * 3 * c + s * c);
    }
    inits.push(
      f32(`${p}qkv_w`, [cin, 3 * c], w),
      f32(`${p}qkv_b`, [3 * c], new Float32Array(3 * c)),
    );
    const outIdx = nodes.findIndex((n) =>
      n.name?.startsWith(`${p}to_out`) && n.opType === "MatMul"
    );
    nodes[outIdx] = { ...nodes[outIdx], input: [`${p}fused`, ...nodes[outIdx].input.slice(1)] };
    nodes.push(node("Attention", [q.input[0], `${p}qkv_w`, `${p}qkv_b`], [`${p}fused`], {
      num_heads: L.heads,
      ...attrs,
    }, { name: `${p}Attention`, domain: "com.microsoft" }));
  }
  return pruneDead({
    ...m,
    opsetImport: [...m.opsetImport, { domain: "com.microsoft", version: 1n }],
    graph: { ...g, node: nodes, initializer: inits },
  });
}

function f32(name: string, dims: number[], data: Float32Array): TensorProto {
  return { name, dims, dataType: DataType.FLOAT, rawData: new Uint8Array(data.buffer.slice(0)) };
}

/** A FLOAT16 TensorProto from numbers (round to nearest even, via Float16Array). */
export function f16(name: string, dims: number[], data: ArrayLike<number>): TensorProto {
  const h = new Float16Array(data.length);
  for (let i = 0; i < data.length; i++) h[i] = data[i];
  return { name, dims, dataType: DataType.FLOAT16, rawData: new Uint8Array(h.buffer) };
}

/** F7: float32 → float16 everywhere except the Resize scales (to_fp16.py). */
export function toFloat16(m: Model): Model {
  const g = m.graph;
  const keep = new Set(
    g.node.filter((n) => n.opType === "Resize").flatMap((n) => n.input.slice(1)),
  );
  const half = (t: TensorProto): TensorProto =>
    t.dataType === DataType.FLOAT ? f16(t.name, t.dims, toFloat32(t)) : t;
  const retype = <T extends { type?: { tensorType?: { elemType: number } } }>(v: T): T =>
    v.type?.tensorType?.elemType === DataType.FLOAT
      ? {
        ...v,
        type: { ...v.type, tensorType: { ...v.type.tensorType, elemType: DataType.FLOAT16 } },
      }
      : v;
  const nodes = g.node.map((n) => ({
    ...n,
    attribute: n.attribute.map((a) => {
      if (a.name === "value" && a.t && !keep.has(n.output[0])) return { ...a, t: half(a.t) };
      if (n.opType === "Cast" && a.name === "to" && Number(a.i) === DataType.FLOAT) {
        return { ...a, i: BigInt(DataType.FLOAT16) };
      }
      return a;
    }),
  }));
  return {
    ...m,
    graph: {
      ...g,
      node: nodes,
      initializer: g.initializer.map((t) => keep.has(t.name) ? t : half(t)),
      input: g.input.map(retype),
      output: g.output.map(retype),
      valueInfo: g.valueInfo.map(retype),
    },
  };
}

/** Copies the embedded model to a temp dir with its UNet rewritten by `f`; returns the dir. */
export async function shapesVariant(
  f: (m: Model, layers: LayerConfig[]) => Model,
): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "attnkit_field_" });
  for await (const e of Deno.readDir(SHAPES_DIR)) {
    if (e.isFile) await Deno.copyFile(new URL(e.name, SHAPES_DIR), `${dir}/${e.name}`);
  }
  const config = JSON.parse(await Deno.readTextFile(`${dir}/config.json`));
  const m = decodeModel(await Deno.readFile(`${dir}/unet.onnx`), "unet.onnx");
  await Deno.writeFile(`${dir}/unet.onnx`, encodeModel(f(m, config.attention_layers)));
  return dir;
}
