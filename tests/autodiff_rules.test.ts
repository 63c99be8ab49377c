/**
 * Every differentiation rule against central finite differences in onnxruntime-web (wasm): a
 * one- or few-node model is built, its VJP graph emitted and run, and ⟨∇, v⟩ compared with
 * (φ(x + h·v) − φ(x − h·v)) / 2h for random directions v, where φ = ⟨cotangent, output⟩ (see
 * gradcheck.ts for why h = 1e-2 and a 1e-2 relative tolerance fit float32). Inputs of piecewise
 * ops (Relu, Abs, Clip, nearest Resize) are kept away from their kinks so that no ±h·v step
 * crosses one.
 */
import assert from "node:assert/strict";
import { gradCheck } from "../lib/onnx/autodiff/gradcheck.ts";
import { initializer, model, node, valueInfo } from "../lib/onnx/build.ts";
import type { Tensor as OrtTensor } from "npm:onnxruntime-web@1.30.0/webgpu";
import { ort } from "../lib/onnx/ort.ts";
import { fromBigInt64 } from "../lib/onnx/tensor_data.ts";
import type { NodeProto, TensorProto } from "../lib/onnx/types.ts";
import { gaussian, mulberry32 } from "../lib/random.ts";

type Gen = "normal" | "positive" | "away" | ((v: number, i: number) => number);

interface Case {
  name: string;
  nodes: NodeProto[];
  /** Declared input dims (strings are symbolic, `null` = no shape declared). */
  inputs: Record<string, (number | string)[] | null>;
  /** Actual dims fed (defaults to the declared ones). */
  feed?: Record<string, number[]>;
  wrt: string[];
  taps?: string[];
  inits?: TensorProto[];
  opset?: number;
  gen?: Gen;
  /** Inputs fed fixed values instead of random ones. */
  fixed?: Record<string, number[]>;
  tol?: number;
}

function values(n: number, gen: Gen, seed: number): Float32Array {
  const g = gaussian(mulberry32(seed), n);
  if (gen === "normal") return g;
  if (gen === "positive") return g.map((v) => 0.5 + Math.abs(v));
  if (gen === "away") return g.map((v) => Math.sign(v || 1) * (0.25 + Math.abs(v)));
  return g.map(gen);
}

async function check(c: Case): Promise<void> {
  const feeds: Record<string, OrtTensor> = {};
  let seed = 11;
  for (const [name, dims] of Object.entries(c.inputs)) {
    const d = c.feed?.[name] ?? (dims as number[]);
    const n = d.reduce((a, b) => a * b, 1);
    const data = c.fixed?.[name]
      ? Float32Array.from(c.fixed[name])
      : values(n, c.gen ?? "normal", seed);
    seed++;
    feeds[name] = new ort.Tensor("float32", data, d);
  }
  const taps = c.taps ?? ["y"];
  const m = model({
    inputs: Object.entries(c.inputs).map(([n, d]) => valueInfo(n, d ?? undefined)),
    outputs: taps.map((t) => valueInfo(t, undefined)),
    nodes: c.nodes,
    initializers: c.inits ?? [],
    opset: c.opset ?? 17,
  });
  const r = await gradCheck(m, { wrt: c.wrt, taps }, feeds, { directions: 3 });
  for (const k of r.checks) {
    assert.ok(
      k.relError < (c.tol ?? 1e-2),
      `${c.name}: ⟨grad, v⟩ = ${k.analytic}, finite difference ${k.numeric} (rel. error ${k.relError})`,
    );
  }
}

ort.env.logLevel = "error";

const f32 = (name: string, dims: number[], data: number[]): TensorProto =>
  initializer(name, dims, Float32Array.from(data));
const i64 = (name: string, data: number[], dims: number[] = [data.length]): TensorProto =>
  fromBigInt64(name, dims, data.map(BigInt));
const boolT = (name: string, dims: number[], data: boolean[]): TensorProto => ({
  name,
  dims,
  dataType: 9,
  rawData: Uint8Array.from(data, (b) => (b ? 1 : 0)),
});

/** A value pushed at least 0.15 away from every kink in `kinks`. */
const awayFrom = (kinks: number[]) => (v: number): number => {
  let x = v;
  for (const k of kinks) if (Math.abs(x - k) < 0.15) x = k + Math.sign(x - k || 1) * 0.15;
  return x;
};

const unaryCases: Case[] = [
  ["Neg", "normal"],
  ["Sqrt", "positive"],
  ["Exp", "normal"],
  ["Log", "positive"],
  ["Reciprocal", "positive"],
  ["Abs", "away"],
  ["Sin", "normal"],
  ["Cos", "normal"],
  ["Relu", "away"],
  ["Sigmoid", "normal"],
  ["Tanh", "normal"],
  ["Erf", "normal"],
  ["Softplus", "normal"],
  ["Identity", "normal"],
].map(([op, gen]) => ({
  name: op,
  nodes: [node(op, ["x"], ["y"])],
  inputs: { x: [2, 3, 4] },
  wrt: ["x"],
  gen: gen as Gen,
}));

const elementwiseCases: Case[] = [
  ...["Add", "Sub", "Mul", "Div"].map((op) => ({
    name: `${op} with broadcasting`,
    nodes: [node(op, ["a", "b"], ["y"])],
    inputs: { a: [2, 3, 4], b: [3, 1] },
    wrt: ["a", "b"],
    gen: "positive" as Gen,
  })),
  {
    name: "Mul broadcast with unknown shapes (run-time reduction axes)",
    nodes: [node("Mul", ["a", "b"], ["y"])],
    inputs: { a: null, b: null },
    feed: { a: [2, 3, 4], b: [1, 3, 1] },
    wrt: ["a", "b"],
  },
  {
    name: "Add with symbolic batch",
    nodes: [node("Add", ["a", "b"], ["y"])],
    inputs: { a: ["n", 3, 4], b: ["n", 1, 4] },
    feed: { a: [2, 3, 4], b: [2, 1, 4] },
    wrt: ["a", "b"],
  },
  {
    name: "Sum of three",
    nodes: [node("Sum", ["a", "b", "c"], ["y"])],
    inputs: { a: [2, 3], b: [3], c: [2, 1] },
    wrt: ["a", "b", "c"],
  },
  {
    name: "Pow with constant exponent",
    nodes: [node("Pow", ["x", "p"], ["y"])],
    inputs: { x: [2, 5] },
    inits: [f32("p", [], [2.5])],
    wrt: ["x"],
    gen: "positive",
  },
  {
    name: "Pow with int64 exponent",
    nodes: [node("Pow", ["x", "p"], ["y"])],
    inputs: { x: [2, 5] },
    inits: [i64("p", [3], [])],
    wrt: ["x"],
  },
  {
    name: "Where with constant condition",
    nodes: [node("Where", ["c", "a", "b"], ["y"])],
    inputs: { a: [2, 3], b: [3] },
    inits: [boolT("c", [2, 3], [true, false, true, false, false, true])],
    wrt: ["a", "b"],
  },
  {
    name: "LeakyRelu",
    nodes: [node("LeakyRelu", ["x"], ["y"], { alpha: 0.2 })],
    inputs: { x: [3, 4] },
    wrt: ["x"],
    gen: "away",
  },
  {
    name: "Clip with bounds",
    nodes: [node("Clip", ["x", "lo", "hi"], ["y"])],
    inputs: { x: [4, 5] },
    inits: [f32("lo", [], [-0.5]), f32("hi", [], [0.6])],
    wrt: ["x"],
    gen: awayFrom([-0.5, 0.6]),
  },
  {
    name: "Gelu (com.microsoft, exact)",
    nodes: [node("Gelu", ["x"], ["y"], {}, { domain: "com.microsoft" })],
    inputs: { x: [3, 4] },
    wrt: ["x"],
  },
  {
    name: "Gelu (opset 20, tanh)",
    nodes: [node("Gelu", ["x"], ["y"], { approximate: "tanh" })],
    inputs: { x: [3, 4] },
    wrt: ["x"],
    opset: 20,
  },
  {
    name: "Softmax axis -1",
    nodes: [node("Softmax", ["x"], ["y"], { axis: -1 })],
    inputs: { x: [2, 3, 5] },
    wrt: ["x"],
  },
  {
    name: "Softmax axis 1",
    nodes: [node("Softmax", ["x"], ["y"], { axis: 1 })],
    inputs: { x: [2, 3, 5] },
    wrt: ["x"],
  },
  {
    name: "LogSoftmax",
    nodes: [node("LogSoftmax", ["x"], ["y"], { axis: -1 })],
    inputs: { x: [2, 6] },
    wrt: ["x"],
  },
];

const matmulCases: Case[] = [
  {
    name: "MatMul 3-D × 2-D",
    nodes: [node("MatMul", ["a", "b"], ["y"])],
    inputs: { a: [2, 3, 4], b: [4, 5] },
    wrt: ["a", "b"],
  },
  {
    name: "MatMul broadcast batch",
    nodes: [node("MatMul", ["a", "b"], ["y"])],
    inputs: { a: [2, 1, 3, 4], b: [3, 4, 2] },
    wrt: ["a", "b"],
  },
  {
    name: "MatMul 1-D × 2-D",
    nodes: [node("MatMul", ["a", "b"], ["y"])],
    inputs: { a: [4], b: [4, 3] },
    wrt: ["a", "b"],
  },
  {
    name: "MatMul 3-D × 1-D",
    nodes: [node("MatMul", ["a", "b"], ["y"])],
    inputs: { a: [2, 3, 4], b: [4] },
    wrt: ["a", "b"],
  },
  {
    name: "MatMul 1-D × 1-D",
    nodes: [node("MatMul", ["a", "b"], ["y"])],
    inputs: { a: [4], b: [4] },
    wrt: ["a", "b"],
  },
  {
    name: "MatMul symbolic batch",
    nodes: [node("MatMul", ["a", "b"], ["y"])],
    inputs: { a: ["n", 3, 4], b: [4, 2] },
    feed: { a: [2, 3, 4] },
    wrt: ["a", "b"],
  },
  ...[[0, 0], [1, 0], [0, 1], [1, 1]].map(([ta, tb]) => ({
    name: `Gemm transA=${ta} transB=${tb}`,
    nodes: [
      node("Gemm", ["a", "b", "c"], ["y"], { transA: ta, transB: tb, alpha: 0.7, beta: 1.3 }),
    ],
    inputs: { a: ta ? [4, 3] : [3, 4], b: tb ? [5, 4] : [4, 5], c: [5] },
    wrt: ["a", "b", "c"],
  })),
];

const convCases: Case[] = [
  {
    name: "Conv 3×3 pad 1 with bias (x, w, b)",
    nodes: [node("Conv", ["x", "w", "b"], ["y"], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] })],
    inputs: { x: [2, 3, 5, 6], w: [4, 3, 3, 3], b: [4] },
    wrt: ["x", "w", "b"],
  },
  {
    name: "Conv stride 1, asymmetric pads, non-square kernel (flipped-weight Conv input gradient)",
    nodes: [node("Conv", ["x", "w"], ["y"], { pads: [0, 1, 2, 0] })],
    inputs: { x: [2, 3, 6, 5], w: [4, 3, 3, 2] },
    wrt: ["x", "w"],
  },
  {
    name: "Conv 1-D stride 1, no pads (flipped-weight Conv input gradient)",
    nodes: [node("Conv", ["x", "w"], ["y"], {})],
    inputs: { x: [1, 2, 9], w: [3, 2, 4] },
    wrt: ["x"],
  },
  {
    name: "Conv stride 2 (sizes that need output_padding)",
    nodes: [node("Conv", ["x", "w"], ["y"], { strides: [2, 2], pads: [1, 1, 1, 1] })],
    inputs: { x: [1, 2, 7, 8], w: [3, 2, 3, 3] },
    wrt: ["x", "w"],
  },
  {
    name: "Conv dilation 2, asymmetric pads",
    nodes: [node("Conv", ["x", "w"], ["y"], { dilations: [2, 2], pads: [2, 1, 0, 2] })],
    inputs: { x: [1, 2, 7, 6], w: [2, 2, 3, 2] },
    wrt: ["x", "w"],
  },
  {
    name: "Conv groups 2, stride 2",
    nodes: [
      node("Conv", ["x", "w", "b"], ["y"], { group: 2, strides: [2, 2], pads: [1, 1, 1, 1] }),
    ],
    inputs: { x: [2, 4, 6, 5], w: [6, 2, 3, 3], b: [6] },
    wrt: ["x", "w", "b"],
  },
  {
    name: "Conv with symbolic spatial sizes",
    nodes: [node("Conv", ["x", "w"], ["y"], { strides: [2, 2], pads: [1, 1, 1, 1] })],
    inputs: { x: ["n", 2, "h", "w"], w: [3, 2, 3, 3] },
    feed: { x: [1, 2, 7, 6] },
    wrt: ["x", "w"],
  },
  {
    name: "Conv 1-D auto_pad SAME_UPPER",
    nodes: [node("Conv", ["x", "w"], ["y"], { auto_pad: "SAME_UPPER", strides: [2] })],
    inputs: { x: [2, 3, 9], w: [2, 3, 4] },
    wrt: ["x", "w"],
  },
  {
    name: "ConvTranspose stride 2 (input and bias)",
    nodes: [
      node("ConvTranspose", ["x", "w", "b"], ["y"], {
        strides: [2, 2],
        pads: [1, 1, 1, 1],
        output_padding: [1, 1],
      }),
    ],
    inputs: { x: [1, 3, 4, 5] },
    inits: [
      f32("w", [3, 2, 3, 3], Array.from(gaussian(mulberry32(5), 54))),
      f32("b", [2], [0.1, -0.2]),
    ],
    wrt: ["x"],
  },
];

/** The TorchScript GroupNorm export: Reshape → InstanceNorm(1, 0) → Reshape(Shape(x)) → Mul γ → Add β. */
const groupNorm: NodeProto[] = [
  node("Reshape", ["x", "g_shape"], ["xg"]),
  node("InstanceNormalization", ["xg", "ones", "zeros"], ["xn"], { epsilon: 1e-5 }),
  node("Shape", ["x"], ["sx"]),
  node("Reshape", ["xn", "sx"], ["xr"]),
  node("Mul", ["xr", "gamma"], ["xs"]),
  node("Add", ["xs", "beta"], ["y"]),
];

const normCases: Case[] = [
  {
    name: "InstanceNormalization (x, scale, bias)",
    nodes: [node("InstanceNormalization", ["x", "s", "b"], ["y"], { epsilon: 1e-5 })],
    inputs: { x: [2, 3, 4, 5], s: [3], b: [3] },
    wrt: ["x", "s", "b"],
  },
  {
    name: "GroupNorm decomposition",
    nodes: groupNorm,
    inputs: { x: [2, 6, 3, 3], gamma: [6, 1, 1], beta: [6, 1, 1] },
    inits: [i64("g_shape", [0, 3, -1]), f32("ones", [3], [1, 1, 1]), f32("zeros", [3], [0, 0, 0])],
    wrt: ["x", "gamma", "beta"],
  },
  {
    name: "LayerNormalization axis -1",
    nodes: [node("LayerNormalization", ["x", "s", "b"], ["y"], { axis: -1, epsilon: 1e-5 })],
    inputs: { x: [2, 3, 8], s: [8], b: [8] },
    wrt: ["x", "s", "b"],
  },
  {
    name: "LayerNormalization axis 1",
    nodes: [node("LayerNormalization", ["x", "s", "b"], ["y"], { axis: 1 })],
    inputs: { x: [2, 3, 4], s: [3, 4], b: [3, 4] },
    wrt: ["x", "s", "b"],
  },
  {
    name: "BatchNormalization (inference)",
    nodes: [node("BatchNormalization", ["x", "s", "b", "mu", "var"], ["y"])],
    inputs: { x: [2, 3, 4, 4], s: [3], b: [3] },
    inits: [f32("mu", [3], [0.1, -0.3, 0.2]), f32("var", [3], [0.5, 1.5, 2])],
    wrt: ["x", "s", "b"],
  },
];

const resizeAttrs = (mode: string, coord: string, extra: Record<string, string> = {}) => ({
  mode,
  coordinate_transformation_mode: coord,
  ...extra,
});
// Nearest resize is piecewise constant in position, not in value: it is linear in x, so no kinks.
const resizeCases: Case[] = [
  {
    name: "Resize nearest ×2 (torch export: asymmetric, floor)",
    nodes: [
      node(
        "Resize",
        ["x", "", "sc"],
        ["y"],
        resizeAttrs("nearest", "asymmetric", { nearest_mode: "floor" }),
      ),
    ],
    inputs: { x: [1, 2, 3, 4] },
    inits: [f32("sc", [4], [1, 1, 2, 2])],
    wrt: ["x"],
  },
  {
    name: "Resize linear ×2 half_pixel",
    nodes: [node("Resize", ["x", "", "sc"], ["y"], resizeAttrs("linear", "half_pixel"))],
    inputs: { x: [2, 2, 3, 4] },
    inits: [f32("sc", [4], [1, 1, 2, 2])],
    wrt: ["x"],
  },
  {
    name: "Resize linear align_corners via sizes",
    nodes: [node("Resize", ["x", "", "", "sz"], ["y"], resizeAttrs("linear", "align_corners"))],
    inputs: { x: [1, 2, 3, 4] },
    inits: [i64("sz", [1, 2, 5, 7])],
    wrt: ["x"],
  },
  {
    name: "Resize linear ×0.5 (downsampling)",
    nodes: [node("Resize", ["x", "", "sc"], ["y"], resizeAttrs("linear", "pytorch_half_pixel"))],
    inputs: { x: [1, 2, 6, 8] },
    inits: [f32("sc", [4], [1, 1, 0.5, 0.5])],
    wrt: ["x"],
  },
  {
    name: "Resize cubic ×2",
    nodes: [node("Resize", ["x", "", "sc"], ["y"], resizeAttrs("cubic", "half_pixel"))],
    inputs: { x: [1, 1, 4, 5] },
    inits: [f32("sc", [4], [1, 1, 2, 2])],
    wrt: ["x"],
  },
  {
    name: "Resize nearest with scales known only at run time",
    nodes: [
      node(
        "Resize",
        ["x", "", "s0"],
        ["y"],
        resizeAttrs("nearest", "asymmetric", { nearest_mode: "floor" }),
      ),
    ],
    inputs: { x: [1, 2, 3, 3], s0: [4] },
    fixed: { s0: [1, 1, 2, 2] },
    wrt: ["x"],
  },
];

const shapeCases: Case[] = [
  {
    name: "Concat of three (two differentiated)",
    nodes: [node("Concat", ["a", "k", "b"], ["y"], { axis: 1 })],
    inputs: { a: [2, 2, 3], b: [2, 1, 3] },
    inits: [f32("k", [2, 3, 3], Array.from({ length: 18 }, (_, i) => i / 9))],
    wrt: ["a", "b"],
  },
  {
    name: "Split (opset 13 split input), one output tapped",
    nodes: [node("Split", ["x", "sp"], ["y0", "y1", "y2"], { axis: 1 })],
    inputs: { x: [2, 6] },
    inits: [i64("sp", [1, 3, 2])],
    wrt: ["x"],
    taps: ["y1"],
  },
  {
    name: "Split, two outputs tapped",
    nodes: [node("Split", ["x", "sp"], ["y0", "y1"], { axis: 0 })],
    inputs: { x: [4, 3] },
    inits: [i64("sp", [1, 3])],
    wrt: ["x"],
    taps: ["y0", "y1"],
  },
  {
    name: "Slice unit steps (Pad path)",
    nodes: [node("Slice", ["x", "st", "en", "ax"], ["y"])],
    inputs: { x: [3, 5, 4] },
    inits: [i64("st", [1, -3]), i64("en", [9, -1]), i64("ax", [1, 2])],
    wrt: ["x"],
  },
  {
    name: "Slice negative step (scatter path)",
    nodes: [node("Slice", ["x", "st", "en", "ax", "stp"], ["y"])],
    inputs: { x: [3, 7] },
    inits: [i64("st", [-1]), i64("en", [0]), i64("ax", [1]), i64("stp", [-2])],
    wrt: ["x"],
  },
  {
    name: "Gather with repeated constant indices",
    nodes: [node("Gather", ["x", "ix"], ["y"], { axis: 1 })],
    inputs: { x: [2, 4, 3] },
    inits: [i64("ix", [3, 0, 3, -1], [2, 2])],
    wrt: ["x"],
  },
  {
    name: "GatherElements",
    nodes: [node("GatherElements", ["x", "ix"], ["y"], { axis: 0 })],
    inputs: { x: [3, 2] },
    inits: [i64("ix", [0, 2, 2, 2, 1, 0], [3, 2])],
    wrt: ["x"],
  },
  {
    name: "Tile",
    nodes: [node("Tile", ["x", "rep"], ["y"])],
    inputs: { x: [2, 3] },
    inits: [i64("rep", [2, 3])],
    wrt: ["x"],
  },
  ...["constant", "reflect", "edge"].map((mode) => ({
    name: `Pad ${mode}`,
    nodes: [node("Pad", ["x", "pads"], ["y"], { mode })],
    inputs: { x: [1, 2, 4, 5] },
    inits: [i64("pads", [0, 0, 2, 1, 0, 0, 1, 3])],
    wrt: ["x"],
  })),
  {
    name: "Reshape with a shape computed from Shape",
    nodes: [
      node("Shape", ["x"], ["s"]),
      node("Gather", ["s", "zero"], ["n"], { axis: 0 }),
      node("Unsqueeze", ["n", "ax0"], ["n1"]),
      node("Concat", ["n1", "minus1"], ["target"], { axis: 0 }),
      node("Reshape", ["x", "target"], ["r"]),
      node("Mul", ["r", "r"], ["y"]),
    ],
    inputs: { x: [2, 3, 4] },
    inits: [i64("zero", [0], []), i64("ax0", [0]), i64("minus1", [-1])],
    wrt: ["x"],
  },
  {
    name: "Flatten, Transpose, Unsqueeze, Squeeze, Expand chain",
    nodes: [
      node("Flatten", ["x"], ["f"], { axis: 1 }),
      node("Transpose", ["f"], ["t"], { perm: [1, 0] }),
      node("Unsqueeze", ["t", "ax"], ["u"]),
      node("Expand", ["u", "shp"], ["e"]),
      node("Squeeze", ["x3", "ax0"], ["sq"]),
      node("Mul", ["e", "sq"], ["y"]),
    ],
    inputs: { x: [2, 3, 2], x3: [1, 2] },
    inits: [i64("ax", [0]), i64("ax0", [0]), i64("shp", [3, 6, 2])],
    wrt: ["x", "x3"],
  },
  {
    // (The wasm build has no double kernels, so float → float and float → int64 are what runs.)
    name: "Cast float → float passes the gradient; float → int64 stops it",
    nodes: [
      node("Cast", ["x"], ["xf"], { to: 1 }),
      node("Cast", ["x"], ["xi"], { to: 7 }),
      node("Cast", ["xi"], ["xt"], { to: 1 }),
      node("Mul", ["xf", "xt"], ["y"]),
    ],
    inputs: { x: [3, 4] },
    wrt: ["x"],
    gen: (v) => Math.round(v * 2) / 2 + 0.25,
  },
  {
    name: "Dropout (inference) and Identity",
    nodes: [
      node("Dropout", ["x"], ["d"]),
      node("Identity", ["d"], ["i"]),
      node("Tanh", ["i"], ["y"]),
    ],
    inputs: { x: [3, 4] },
    wrt: ["x"],
  },
];

const reduceCases: Case[] = [
  {
    name: "ReduceSum axes input, keepdims 0",
    nodes: [node("ReduceSum", ["x", "ax"], ["y"], { keepdims: 0 })],
    inputs: { x: [2, 3, 4] },
    inits: [i64("ax", [1, -1])],
    wrt: ["x"],
  },
  {
    name: "ReduceSum over all axes",
    nodes: [node("ReduceSum", ["x"], ["y"], { keepdims: 0 })],
    inputs: { x: [2, 3] },
    wrt: ["x"],
  },
  {
    name: "ReduceMean axes attribute, keepdims 1",
    nodes: [node("ReduceMean", ["x"], ["y"], { axes: [0, 2], keepdims: 1 })],
    inputs: { x: [2, 3, 4] },
    wrt: ["x"],
  },
  {
    name: "ReduceMean (opset 18, axes input, keepdims 0)",
    nodes: [node("ReduceMean", ["x", "ax"], ["y"], { keepdims: 0 })],
    inputs: { x: [2, 3, 4] },
    inits: [i64("ax", [1])],
    wrt: ["x"],
    opset: 18,
  },
  {
    name: "ReduceSumSquare",
    nodes: [node("ReduceSumSquare", ["x"], ["y"], { axes: [1], keepdims: 0 })],
    inputs: { x: [2, 3, 4] },
    wrt: ["x"],
  },
  {
    name: "GlobalAveragePool",
    nodes: [node("GlobalAveragePool", ["x"], ["y"])],
    inputs: { x: [2, 3, 4, 5] },
    wrt: ["x"],
  },
];

const compositeCases: Case[] = [
  {
    name: "Taps on an intermediate and on the output",
    nodes: [
      node("Mul", ["x", "x"], ["t"]),
      node("Exp", ["t"], ["u"]),
      node("Mul", ["u", "x"], ["y"]),
    ],
    inputs: { x: [2, 3] },
    wrt: ["x"],
    taps: ["t", "y"],
    gen: (v) => v * 0.5,
  },
  {
    name: "Attention core: softmax(QKᵀ·s)·V with taps on Q and the output",
    nodes: [
      node("MatMul", ["x", "wq"], ["q"]),
      node("MatMul", ["x", "wk"], ["k"]),
      node("MatMul", ["x", "wv"], ["v"]),
      node("Transpose", ["k"], ["kt"], { perm: [0, 2, 1] }),
      node("MatMul", ["q", "kt"], ["s"]),
      node("Mul", ["s", "scale"], ["ss"]),
      node("Softmax", ["ss"], ["p"], { axis: -1 }),
      node("MatMul", ["p", "v"], ["y"]),
    ],
    inputs: { x: [2, 5, 4] },
    inits: [
      f32("wq", [4, 4], Array.from(gaussian(mulberry32(1), 16))),
      f32("wk", [4, 4], Array.from(gaussian(mulberry32(2), 16))),
      f32("wv", [4, 4], Array.from(gaussian(mulberry32(3), 16))),
      f32("scale", [], [0.5]),
    ],
    wrt: ["x"],
    taps: ["q", "k", "y"],
  },
];

const groups: [string, Case[]][] = [
  ["unary", unaryCases],
  ["elementwise and activations", elementwiseCases],
  ["matmul and gemm", matmulCases],
  ["convolutions", convCases],
  ["normalisations", normCases],
  ["resize", resizeCases],
  ["shape and selection", shapeCases],
  ["reductions", reduceCases],
  ["composites", compositeCases],
];

for (const [group, cases] of groups) {
  Deno.test(`autodiff rules: ${group} match finite differences`, async (t) => {
    for (const c of cases) await t.step(c.name, () => check(c));
  });
}
