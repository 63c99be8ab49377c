import assert from "node:assert/strict";
import { AttnkitError } from "../lib/errors.ts";
import { initializer, model, node, valueInfo } from "../lib/onnx/build.ts";
import {
  addInputs,
  addOutputs,
  constantNumbers,
  consumerMap,
  partialConstant,
  producerMap,
  topologicalOrder,
  uniqueName,
  usedNames,
} from "../lib/onnx/graph.ts";
import { encodeModel } from "../lib/onnx/proto.ts";
import {
  fromBigInt64,
  fromFloat32,
  fromInt32,
  toBigInt64,
  toFloat32,
  toInt32,
  toNumbers,
} from "../lib/onnx/tensor_data.ts";
import { AttributeType, DataType, type TensorProto } from "../lib/onnx/types.ts";

function chain() {
  return model({
    inputs: [valueInfo("x", ["n", 4])],
    outputs: [valueInfo("y", ["n", 4])],
    nodes: [
      node("Relu", ["x"], ["a"]),
      node("Mul", ["a", "w"], ["b"]),
      node("Add", ["a", "b"], ["y"]),
    ],
    initializers: [initializer("w", [4], [1, 2, 3, 4])],
  });
}

Deno.test("graph: producers, consumers and a topological order of shuffled nodes", () => {
  const m = chain();
  const shuffled = [m.graph.node[2], m.graph.node[0], m.graph.node[1]];
  const order = topologicalOrder({ ...m.graph, node: shuffled });
  const pos = (op: string) => order.findIndex((n) => n.opType === op);
  assert.ok(pos("Relu") < pos("Mul") && pos("Mul") < pos("Add"));
  assert.equal(producerMap(m.graph).get("b")?.opType, "Mul");
  assert.deepEqual(consumerMap(m.graph).get("a")?.map((n) => n.opType), ["Mul", "Add"]);
  const cyclic = { ...m.graph, node: [node("Relu", ["c"], ["d"]), node("Relu", ["d"], ["c"])] };
  assert.throws(() => topologicalOrder(cyclic), AttnkitError);
});

Deno.test("graph: fresh names, added inputs/outputs, no mutation", () => {
  const m = chain();
  const before = encodeModel(m);
  const taken = usedNames(m.graph);
  assert.equal(uniqueName(taken, "a"), "a_1");
  assert.equal(uniqueName(taken, "a"), "a_2");
  assert.equal(uniqueName(taken, "fresh"), "fresh");
  const out = addOutputs(m, ["a", "y", "b"]);
  assert.deepEqual(out.graph.output.map((o) => o.name), ["y", "a", "b"]);
  const inp = addInputs(m, [valueInfo("bias", [4])]);
  assert.deepEqual(inp.graph.input.map((o) => o.name), ["x", "bias"]);
  assert.throws(() => addInputs(m, [valueInfo("a", [4])]), AttnkitError);
  assert.deepEqual(encodeModel(m), before);
});

Deno.test("graph: constants from initializers and every Constant attribute form", () => {
  const g = model({
    inputs: [valueInfo("x", [2, 3, 5])],
    outputs: [],
    nodes: [
      node("Constant", [], ["cf"], { value_float: 2.5 }),
      node("Constant", [], ["cfs"], { value_floats: [0.5, 1.5] }),
      node("Constant", [], ["ci"], { value_int: -3 }),
      node("Constant", [], ["cis"], { value_ints: [4, 5] }),
      node("Constant", [], ["ct"], { value: initializer("t", [2], [7, 9]) }),
      node("Shape", ["x"], ["shape"]),
      node("Gather", ["shape", "zero"], ["b"]),
      node("Unsqueeze", ["b", "axes"], ["b1"]),
      node("Concat", ["b1", "cis"], ["target"], { axis: 0 }),
      node("Shape", ["x"], ["tail"], { start: 1 }),
    ],
    initializers: [
      initializer("zero", [], BigInt64Array.of(0n)),
      initializer("axes", [1], BigInt64Array.of(0n)),
    ],
  }).graph;
  // value_float is stored as a float attribute even though 2.5 is built from a JS number.
  assert.equal(g.node[0].attribute[0].type, AttributeType.FLOAT);
  assert.deepEqual(constantNumbers(g, "cf"), [2.5]);
  assert.deepEqual(constantNumbers(g, "cfs"), [0.5, 1.5]);
  assert.deepEqual(constantNumbers(g, "ci"), [-3]);
  assert.deepEqual(constantNumbers(g, "cis"), [4, 5]);
  assert.deepEqual(constantNumbers(g, "ct"), [7, 9]);
  assert.equal(constantNumbers(g, "x"), undefined);
  assert.deepEqual(partialConstant(g, "target"), [undefined, 4, 5]);
  assert.deepEqual(partialConstant(g, "tail"), [3, 5]);
});

Deno.test("tensor_data: typed arrays round-trip through raw little-endian bytes", () => {
  const f = fromFloat32("f", [2, 2], [1.5, -2, 3.25, 1e-8]);
  assert.deepEqual(Array.from(f.rawData!.subarray(0, 4)), [0, 0, 0xc0, 0x3f]); // 1.5 LE
  assert.deepEqual(Array.from(toFloat32(f)), Array.from(Float32Array.of(1.5, -2, 3.25, 1e-8)));
  const i = fromBigInt64("i", [3], [-1n, 2n ** 40n, 7n]);
  assert.deepEqual(Array.from(toBigInt64(i)), [-1n, 2n ** 40n, 7n]);
  assert.deepEqual(toNumbers(i), [-1, 2 ** 40, 7]);
  assert.deepEqual(Array.from(toInt32(fromInt32("j", [2], [-5, 6]))), [-5, 6]);
  // Raw data at an odd byte offset (as inside a decoded file) still reads.
  const buf = new Uint8Array(13);
  buf.set(f.rawData!.subarray(0, 12), 1);
  const odd: TensorProto = {
    name: "o",
    dims: [3],
    dataType: DataType.FLOAT,
    rawData: buf.subarray(1),
  };
  assert.deepEqual(Array.from(toFloat32(odd)), [1.5, -2, 3.25]);
  // float16: 1.0 = 0x3c00, -2.0 = 0xc000, 0.5 = 0x3800.
  const h: TensorProto = {
    name: "h",
    dims: [3],
    dataType: DataType.FLOAT16,
    rawData: Uint8Array.of(0x00, 0x3c, 0x00, 0xc0, 0x00, 0x38),
  };
  assert.deepEqual(Array.from(toFloat32(h)), [1, -2, 0.5]);
  const d: TensorProto = { name: "d", dims: [2], dataType: DataType.DOUBLE, doubleData: [0.25, 8] };
  assert.deepEqual(Array.from(toFloat32(d)), [0.25, 8]);
});

Deno.test("tensor_data: wrong sizes and external data give AttnkitErrors", () => {
  assert.throws(() => fromFloat32("w", [2, 2], [1, 2, 3]), AttnkitError);
  const short: TensorProto = {
    name: "s",
    dims: [3],
    dataType: DataType.FLOAT,
    rawData: new Uint8Array(8),
  };
  assert.throws(() => toFloat32(short), /raw_data has 8 bytes/);
  const ext: TensorProto = {
    name: "e",
    dims: [3],
    dataType: DataType.FLOAT,
    dataLocation: 1,
    externalData: [{ key: "location", value: "weights.pb" }],
  };
  assert.throws(() => toFloat32(ext), /weights\.pb/);
});
