import assert from "node:assert/strict";
import { AttnkitError } from "../lib/errors.ts";
import { decodeModel, encodeModel, UNKNOWN_FIELDS } from "../lib/onnx/proto.ts";
import { floatAttr, floatsAttr, initializer, model, node, valueInfo } from "../lib/onnx/build.ts";
import { toBigInt64, toFloat32 } from "../lib/onnx/tensor_data.ts";
import { createSession, ort } from "../lib/onnx/ort.ts";
import { AttributeType, DataType, type GraphProto, type Model } from "../lib/onnx/types.ts";

const fixtures = new URL("./fixtures/", import.meta.url);

/** A model that exercises every field the codec models. */
function everyFieldModel(): Model {
  const sub: GraphProto = {
    name: "branch",
    node: [node("Identity", ["w"], ["branch_out"])],
    initializer: [],
    input: [],
    output: [valueInfo("branch_out", [3])],
    valueInfo: [],
  };
  const m = model({
    inputs: [valueInfo("x", ["batch", 3]), valueInfo("flag", [], DataType.BOOL)],
    outputs: [valueInfo("y", ["batch", 3])],
    nodes: [
      node("Mul", ["x", "w"], ["xw"], {
        i_neg: -1,
        i_big: -(2n ** 63n),
        f: 0.25,
        f_whole: floatAttr(2),
        s: "héllo",
        ints: [-3, 0, 2 ** 40],
        floats: [0.5, -1.5],
        floats_whole: floatsAttr([1, 2]),
        strings: ["a", ""],
        t: initializer("attr_t", [2], [7, 8]),
        g: sub,
      }, { domain: "" }),
      node("Add", ["xw", "xw"], ["y"]),
    ],
    initializers: [
      initializer("w", [3], [1, -2, 3.5]),
      { name: "f_field", dims: [2], dataType: DataType.FLOAT, floatData: [1.5, -0.25] },
      { name: "i32_field", dims: [2], dataType: DataType.INT32, int32Data: [-7, 9] },
      { name: "i64_field", dims: [2], dataType: DataType.INT64, int64Data: [-(2n ** 40n), 5n] },
      { name: "d_field", dims: [1], dataType: DataType.DOUBLE, doubleData: [Math.PI] },
      {
        name: "ext",
        dims: [4],
        dataType: DataType.FLOAT,
        dataLocation: 1,
        externalData: [{ key: "location", value: "w.bin" }, { key: "offset", value: "0" }],
        docString: "stored elsewhere",
      },
    ],
  });
  m.metadataProps = [{ key: "k", value: "v" }];
  m.docString = "doc";
  m.modelVersion = 3n;
  m.graph.valueInfo.push(valueInfo("xw", ["batch", 3]));
  return m;
}

function concat(...parts: (Uint8Array | number[])[]): Uint8Array {
  const arrs = parts.map((p) => p instanceof Uint8Array ? p : Uint8Array.from(p));
  const out = new Uint8Array(arrs.reduce((n, a) => n + a.length, 0));
  let o = 0;
  for (const a of arrs) {
    out.set(a, o);
    o += a.length;
  }
  return out;
}

Deno.test("proto: encode/decode round trip keeps every modelled field", () => {
  const m = everyFieldModel();
  const bytes = encodeModel(m);
  const back = decodeModel(bytes, "every.onnx");
  assert.deepEqual(back, m);
  assert.deepEqual(encodeModel(back), bytes);
  const attrs = back.graph.node[0].attribute;
  const byName = (n: string) => attrs.find((a) => a.name === n)!;
  assert.equal(byName("i_big").i, -(2n ** 63n));
  assert.equal(byName("f_whole").type, AttributeType.FLOAT);
  assert.equal(byName("g").g!.node[0].opType, "Identity");
  assert.deepEqual(Array.from(toFloat32(back.graph.initializer[1])), [1.5, -0.25]);
  assert.deepEqual(Array.from(toBigInt64(back.graph.initializer[3])), [-(2n ** 40n), 5n]);
});

Deno.test("proto: hand-encoded bytes decode as expected (incl. unpacked floats)", () => {
  // ModelProto { ir_version: 8, graph { node { input "a" output "b" op_type "Relu" },
  //   initializer { dims 2 data_type 1 float_data [1, 2] (unpacked) name "c" } }, opset { "", 17 } }
  const f1 = [0x00, 0x00, 0x80, 0x3f];
  const f2 = [0x00, 0x00, 0x00, 0x40];
  const nodeBytes = [0x0a, 1, 0x61, 0x12, 1, 0x62, 0x22, 4, ...new TextEncoder().encode("Relu")];
  const tensorBytes = [0x08, 2, 0x10, 1, 0x25, ...f1, 0x25, ...f2, 0x42, 1, 0x63];
  const graphBytes = [
    0x0a,
    nodeBytes.length,
    ...nodeBytes,
    0x2a,
    tensorBytes.length,
    ...tensorBytes,
  ];
  const opset = [0x0a, 0, 0x10, 17];
  const bytes = concat([0x08, 8, 0x3a, graphBytes.length, ...graphBytes, 0x42, 4, ...opset]);
  const m = decodeModel(bytes, "hand.onnx");
  assert.equal(m.irVersion, 8n);
  assert.deepEqual(m.opsetImport, [{ domain: "", version: 17n }]);
  assert.deepEqual(m.graph.node[0].input, ["a"]);
  assert.equal(m.graph.node[0].opType, "Relu");
  assert.deepEqual(m.graph.initializer[0].floatData, [1, 2]);
  assert.equal(m.graph.initializer[0].name, "c");
  // Re-encoding packs float_data (field 4, wire 2) as onnx.proto declares.
  const re = encodeModel(m);
  const packed = [0x22, 8, ...f1, ...f2];
  const s = re.join(",");
  assert.ok(s.includes(packed.join(",")), "float_data re-encoded packed");
});

Deno.test("proto: unknown fields of every wire type are kept verbatim and written back", () => {
  const m = everyFieldModel();
  const bytes = encodeModel(m);
  const unknown = concat(
    [0xa2, 0x01, 3, 1, 2, 3], // field 20 (training_info), LEN
    [0x98, 0x06, 0x96, 0x01], // field 99, varint 150
    [0xa1, 0x06, 1, 2, 3, 4, 5, 6, 7, 8], // field 100, fixed64
    [0xad, 0x06, 1, 2, 3, 4], // field 101, fixed32
    [0xb3, 0x06, 0x08, 1, 0xb4, 0x06], // field 102, group { field 1 varint 1 }
  );
  const decoded = decodeModel(concat(unknown, bytes, unknown), "u.onnx");
  const kept = decoded[UNKNOWN_FIELDS]!;
  delete decoded[UNKNOWN_FIELDS];
  assert.deepEqual(decoded, m);
  // Issue 10 (O29/O30): fields the codec does not model survive a round trip.
  assert.deepEqual(concat(...kept), concat(unknown, unknown));
  const again = decodeModel(encodeModel({ ...m, [UNKNOWN_FIELDS]: kept } as Model), "u2.onnx");
  assert.deepEqual(concat(...again[UNKNOWN_FIELDS]!), concat(unknown, unknown));
});

Deno.test("proto: truncated or corrupted bytes give an AttnkitError naming file and offset", () => {
  const bytes = encodeModel(everyFieldModel());
  let errors = 0;
  for (let n = 0; n < bytes.length; n++) {
    try {
      decodeModel(bytes.subarray(0, n), "cut.onnx");
    } catch (e) {
      assert.ok(e instanceof AttnkitError, `prefix ${n}: ${e}`);
      assert.equal(e.argument, "cut.onnx");
      assert.match(e.message, /byte offset \d+/);
      errors++;
    }
  }
  // Every prefix lacks the graph or cuts a field, except cuts just after the graph field.
  assert.ok(errors > bytes.length * 0.9, `${errors} of ${bytes.length} prefixes rejected`);
  let seed = 12345;
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (let trial = 0; trial < 300; trial++) {
    const bad = bytes.slice();
    for (let k = 0; k < 3; k++) bad[Math.floor(rand() * bad.length)] = Math.floor(rand() * 256);
    try {
      decodeModel(bad, "noise.onnx");
    } catch (e) {
      assert.ok(e instanceof AttnkitError, `trial ${trial}: ${e}`);
    }
  }
  assert.throws(() => decodeModel(new TextEncoder().encode("<html>"), "page.onnx"), AttnkitError);
});

Deno.test("proto: re-encoded model runs in onnxruntime-web with the same outputs", async () => {
  // If with two subgraph branches: tests GRAPH attributes end to end.
  const branch = (name: string, op: string): GraphProto => ({
    name,
    node: [node(op, ["x", "w"], [`${name}_y`])],
    initializer: [],
    input: [],
    output: [valueInfo(`${name}_y`, [2, 3])],
    valueInfo: [],
  });
  const m = model({
    inputs: [valueInfo("x", [2, 3]), valueInfo("flag", [], DataType.BOOL)],
    outputs: [valueInfo("y", [2, 3])],
    nodes: [
      node("If", ["flag"], ["b"], {
        then_branch: branch("t", "Mul"),
        else_branch: branch("e", "Sub"),
      }),
      node("Softmax", ["b"], ["y"], { axis: -1 }),
    ],
    initializers: [initializer("w", [3], [0.5, -1, 2])],
  });
  const bytes = encodeModel(decodeModel(encodeModel(m), "if.onnx"));
  const x = Float32Array.from([1, 2, 3, -1, 0, 4]);
  const w = [0.5, -1, 2];
  const session = await createSession(bytes);
  for (const flag of [true, false]) {
    const out = await session.run({
      x: new ort.Tensor("float32", x, [2, 3]),
      flag: new ort.Tensor("bool", Uint8Array.from([flag ? 1 : 0]), []),
    });
    const y = out.y.data as Float32Array;
    for (let r = 0; r < 2; r++) {
      const b = [0, 1, 2].map((j) => flag ? x[r * 3 + j] * w[j] : x[r * 3 + j] - w[j]);
      const mx = Math.max(...b);
      const z = b.reduce((s, v) => s + Math.exp(v - mx), 0);
      for (let j = 0; j < 3; j++) {
        assert.ok(Math.abs(y[r * 3 + j] - Math.exp(b[j] - mx) / z) < 1e-6);
      }
    }
  }
  await session.release();
});

Deno.test("proto: PyTorch exports re-encode byte for byte", async (t) => {
  let names: string[] = [];
  try {
    names = [...Deno.readDirSync(fixtures)].map((e) => e.name).filter((n) => n.endsWith(".onnx"));
  } catch {
    // fixtures folder absent: nothing to check
  }
  assert.ok(names.length > 0, "tests/fixtures/*.onnx present (run make_hook_fixtures.py)");
  for (const name of names) {
    await t.step(name, () => {
      const bytes = Deno.readFileSync(new URL(name, fixtures));
      const m = decodeModel(bytes, name);
      const re = encodeModel(m);
      assert.equal(re.length, bytes.length);
      assert.deepEqual(re, bytes);
    });
  }
});
