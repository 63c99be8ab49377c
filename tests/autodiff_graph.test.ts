/**
 * The VJP emitter as a graph transformation: errors before anything runs (missing rules on the
 * path, bad specs, unsupported configurations), pruning, names and shapes of the new inputs and
 * outputs, zero gradients when no path exists, and the static facts (shapes through
 * Shape → Gather → Concat → Reshape chains) that let the emitter use constant axes.
 */
import assert from "node:assert/strict";
import { AttnkitError } from "../lib/errors.ts";
import { checkDifferentiable, coveredOps, vjpGraph } from "../lib/onnx/autodiff/mod.ts";
import { inferFacts } from "../lib/onnx/autodiff/facts.ts";
import { initializer, model, node, valueInfo } from "../lib/onnx/build.ts";
import { createSession, ort } from "../lib/onnx/ort.ts";
import { encodeModel } from "../lib/onnx/proto.ts";
import { fromBigInt64 } from "../lib/onnx/tensor_data.ts";

ort.env.logLevel = "error";

/** x → Tanh → y, and a side branch x → MaxPool → z (no rule) that no tap depends on. */
const branched = model({
  inputs: [valueInfo("x", [1, 2, 4, 4])],
  outputs: [valueInfo("y", undefined), valueInfo("z", undefined)],
  nodes: [
    node("Tanh", ["x"], ["t"], {}, { name: "tanh0" }),
    node("Exp", ["t"], ["y"], {}, { name: "exp0" }),
    node("MaxPool", ["t"], ["z"], { kernel_shape: [2, 2] }, { name: "pool0" }),
  ],
});

Deno.test("autodiff graph: a node without a rule on the path is named before anything runs", () => {
  assert.throws(
    () => vjpGraph(branched, { wrt: ["x"], taps: ["z"] }),
    (e: unknown) =>
      e instanceof AttnkitError && e.message.includes("MaxPool") && e.message.includes("pool0"),
  );
  assert.throws(
    () => checkDifferentiable(branched, { wrt: ["x"], taps: ["y", "z"] }),
    /MaxPool.*pool0/,
  );
});

Deno.test("autodiff graph: nodes off the path are dropped, rules or not", () => {
  const report = checkDifferentiable(branched, { wrt: ["x"], taps: ["y"] });
  assert.deepEqual(report, { nodes: 2, opTypes: ["Exp", "Tanh"] });
  const vjp = vjpGraph(branched, { wrt: ["x"], taps: ["y"] });
  assert.ok(!vjp.model.graph.node.some((n) => n.opType === "MaxPool"));
  assert.deepEqual(vjp.cotangentInputs, ["grad::y"]);
  assert.deepEqual(vjp.gradOutputs, ["grad::x"]);
  const inputs = vjp.model.graph.input.map((v) => v.name);
  assert.deepEqual(inputs, ["x", "grad::y"]);
  const dims = (name: string) =>
    [...vjp.model.graph.input, ...vjp.model.graph.output]
      .find((v) => v.name === name)?.type?.tensorType?.shape?.dim.map((d) => d.dimValue);
  assert.deepEqual(dims("grad::y"), [1, 2, 4, 4]);
  assert.deepEqual(dims("grad::x"), [1, 2, 4, 4]);
  // A tap on the intermediate t: Exp is neither differentiated nor kept.
  const mid = vjpGraph(branched, { wrt: ["x"], taps: ["t"] });
  assert.ok(!mid.model.graph.node.some((n) => n.opType === "Exp"));
});

Deno.test("autodiff graph: spec errors name the argument", () => {
  assert.throws(() => vjpGraph(branched, { wrt: ["nope"], taps: ["y"] }), /spec\.wrt.*nope/);
  assert.throws(() => vjpGraph(branched, { wrt: ["x"], taps: ["nope"] }), /spec\.taps.*nope/);
  assert.throws(() => vjpGraph(branched, { wrt: [], taps: ["y"] }), /spec\.wrt/);
  const old = { ...branched, opsetImport: [{ domain: "", version: 11n }] };
  assert.throws(() => vjpGraph(old, { wrt: ["x"], taps: ["y"] }), /opset 11/);
});

Deno.test("autodiff graph: an exponent that depends on wrt is refused", () => {
  const m = model({
    inputs: [valueInfo("x", [3])],
    outputs: [valueInfo("y", undefined)],
    nodes: [node("Pow", ["x", "x"], ["y"], {}, { name: "pow0" })],
  });
  assert.throws(() => vjpGraph(m, { wrt: ["x"], taps: ["y"] }), /Pow node "pow0".*exponent/);
});

Deno.test("autodiff graph: no path from wrt to the taps gives a zero gradient", async () => {
  const m = model({
    inputs: [valueInfo("x", [2, 3]), valueInfo("w", [2, 3])],
    outputs: [valueInfo("y", undefined)],
    nodes: [node("Shape", ["x"], ["s"]), node("Reshape", ["w", "s"], ["y"])],
  });
  const vjp = vjpGraph(m, { wrt: ["x", "w"], taps: ["y"] });
  const s = await createSession(encodeModel(vjp.model));
  const c = Float32Array.from([1, 2, 3, 4, 5, 6]);
  const out = await s.run({
    x: new ort.Tensor("float32", new Float32Array(6).fill(9), [2, 3]),
    w: new ort.Tensor("float32", new Float32Array(6), [2, 3]),
    "grad::y": new ort.Tensor("float32", c, [2, 3]),
  });
  await s.release();
  assert.deepEqual(Array.from(out["grad::x"].data as Float32Array), [0, 0, 0, 0, 0, 0]);
  assert.deepEqual(Array.from(out["grad::w"].data as Float32Array), Array.from(c));
});

Deno.test("autodiff graph: keepForwardOutputs keeps the original outputs after the gradients", () => {
  const vjp = vjpGraph(branched, { wrt: ["x"], taps: ["y"] }, { keepForwardOutputs: true });
  assert.deepEqual(vjp.model.graph.output.map((o) => o.name), ["grad::x", "y", "z"]);
  assert.ok(vjp.model.graph.node.some((n) => n.opType === "MaxPool"));
});

Deno.test("autodiff graph: a weight initializer can be differentiated", async () => {
  const w = Float32Array.from([0.5, -1, 2]);
  const m = model({
    inputs: [valueInfo("x", [2, 3])],
    outputs: [valueInfo("y", undefined)],
    nodes: [node("Mul", ["x", "w"], ["y"])],
    initializers: [initializer("w", [3], w)],
  });
  const vjp = vjpGraph(m, { wrt: ["w"], taps: ["y"] });
  const s = await createSession(encodeModel(vjp.model));
  const x = Float32Array.from([1, 2, 3, 4, 5, 6]);
  const out = await s.run({
    x: new ort.Tensor("float32", x, [2, 3]),
    "grad::y": new ort.Tensor("float32", new Float32Array(6).fill(1), [2, 3]),
  });
  await s.release();
  // d/dw Σ x·w = column sums of x, computed by hand.
  assert.deepEqual(Array.from(out["grad::w"].data as Float32Array), [5, 7, 9]);
});

Deno.test("autodiff graph: facts see through Shape → Gather → Concat → Reshape with a symbolic batch", () => {
  const g = model({
    inputs: [valueInfo("x", ["batch", 4, 3, 2])],
    outputs: [valueInfo("y", undefined)],
    nodes: [
      node("Shape", ["x"], ["s"]),
      node("Gather", ["s", "zero"], ["b"], { axis: 0 }),
      node("Unsqueeze", ["b", "ax0"], ["b1"]),
      node("Concat", ["b1", "four", "minus1"], ["target"], { axis: 0 }),
      node("Reshape", ["x", "target"], ["r"]),
      node("Transpose", ["r"], ["y"], { perm: [0, 2, 1] }),
    ],
    initializers: [
      fromBigInt64("zero", [], [0n]),
      fromBigInt64("ax0", [1], [0n]),
      fromBigInt64("four", [1], [4n]),
      fromBigInt64("minus1", [1], [-1n]),
    ],
  }).graph;
  const facts = inferFacts(g);
  assert.deepEqual(facts.get("target")?.value, ["batch", 4, -1]);
  assert.deepEqual(facts.get("r")?.dims, ["batch", 4, 6]);
  assert.deepEqual(facts.get("y")?.dims, ["batch", 6, 4]);
});

Deno.test("autodiff graph: same-shape Add needs no reduction; broadcast Add reduces constant axes", () => {
  const build = (bDims: number[]) =>
    model({
      inputs: [valueInfo("a", [2, 3, 4]), valueInfo("b", bDims)],
      outputs: [valueInfo("y", undefined)],
      nodes: [node("Add", ["a", "b"], ["y"])],
    });
  const same = vjpGraph(build([2, 3, 4]), { wrt: ["a", "b"], taps: ["y"] }).model.graph.node;
  assert.deepEqual(same.map((n) => n.opType), ["Identity", "Identity"]);
  const bc = vjpGraph(build([3, 1]), { wrt: ["b"], taps: ["y"] }).model.graph.node;
  assert.ok(bc.some((n) => n.opType === "ReduceSum"));
  assert.ok(!bc.some((n) => n.opType === "NonZero"), "axes should be constants here");
});

Deno.test("autodiff graph: the rule table covers the ops the brief lists", () => {
  const { onnx, microsoft } = coveredOps();
  for (
    const op of [
      "Conv",
      "MatMul",
      "Gemm",
      "Add",
      "Sub",
      "Mul",
      "Div",
      "Neg",
      "Softmax",
      "Sigmoid",
      "Tanh",
      "Erf",
      "Gelu",
      "Sqrt",
      "Pow",
      "Exp",
      "Log",
      "Relu",
      "ReduceMean",
      "ReduceSum",
      "InstanceNormalization",
      "LayerNormalization",
      "Resize",
      "Concat",
      "Split",
      "Slice",
      "Gather",
      "Reshape",
      "Transpose",
      "Unsqueeze",
      "Squeeze",
      "Expand",
      "Where",
      "Cast",
      "Identity",
      "Shape",
      "Constant",
      "ConstantOfShape",
      "Range",
      "Equal",
    ]
  ) assert.ok(onnx.includes(op), `${op} has no rule`);
  assert.ok(microsoft.includes("Gelu"));
});
