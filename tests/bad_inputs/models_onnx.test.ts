/**
 * Bad-input corpus, model side (issue 10 part A): ONNX files themselves — memory amplification
 * (F12), declared sizes the bytes cannot hold (O7), fields the codec does not model surviving a
 * round trip (O29, O30), the wrong graph in the right place (O27, O28), model_index.json
 * components (H7), and onnxruntime failures reported against the file and the step.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { decodeBudget, decodeModel, encodeModel } from "../../lib/onnx/proto.ts";
import { externalDataRefs } from "../../lib/onnx/external.ts";
import { createSession, ort, ortMessage, type OrtTensor } from "../../lib/onnx/ort.ts";
import { initializer, model as buildModel, node, valueInfo } from "../../lib/onnx/build.ts";
import { DataType, type Model, type TensorProto } from "../../lib/onnx/types.ts";
import { loadShapesModel } from "../../lib/models/shapes.ts";
import { loadSd15Model } from "../../lib/models/sd15_model.ts";
import { resolveSd15Files } from "../../lib/models/sd15.ts";
import {
  cat,
  Corpus,
  editJson,
  fixture,
  hfCopy,
  nodeAvailable,
  shapesCopy,
  varint,
} from "./models_support.ts";

const corpus = new Corpus("models_onnx");

/** ModelProto { ir_version 8; graph (field 7) = `graph` }. */
const withGraph = (graph: Uint8Array): Uint8Array =>
  cat([0x08, 0x08, 0x3a], varint(graph.length), graph);

const N = 8 << 20;

// --- F12: memory amplification ----------------------------------------------------------

Deno.test("onnx: F12 decoder memory is bounded relative to the file size", async () => {
  const bombs: [string, () => Uint8Array][] = [
    // 4,194,304 empty NodeProtos (2 bytes each).
    ["F12 bomb_nodes", () => withGraph(new Uint8Array(N).map((_, i) => (i % 2 ? 0x00 : 0x0a)))],
    // 8,388,608 one-byte int64 values in one packed int64_data.
    ["F12 bomb_int64", () => {
      const tensor = cat(
        [0x08],
        varint(N),
        [0x10, 0x07, 0x42, 0x01, 0x77, 0x3a],
        varint(N),
        new Uint8Array(N).fill(1),
      );
      return withGraph(cat([0x2a], varint(tensor.length), tensor));
    }],
    // One graph input whose type has 2,796,202 empty dimensions.
    ["bomb dims", () => {
      const dims = new Uint8Array(N - (N % 2)).map((_, i) => (i % 2 ? 0x00 : 0x0a));
      const shape = cat([0x12], varint(dims.length), dims);
      const tt = cat([0x0a], varint(shape.length), shape);
      const vi = cat([0x0a, 0x01, 0x78, 0x12], varint(tt.length), tt);
      return withGraph(cat([0x5a], varint(vi.length), vi));
    }],
    // One node with 4,194,304 empty attributes.
    ["bomb attributes", () => {
      const attrs = new Uint8Array(N).map((_, i) => (i % 2 ? 0x00 : 0x2a));
      return withGraph(cat([0x0a], varint(attrs.length), attrs));
    }],
    // 4,194,304 opset imports.
    [
      "bomb opset imports",
      () => cat([0x08, 0x08, 0x3a, 0x00], new Uint8Array(N).map((_, i) => (i % 2 ? 0x00 : 0x42))),
    ],
  ];
  for (const [label, make] of bombs) {
    const bytes = make();
    const before = Deno.memoryUsage().rss;
    await corpus.rejects(label, () => decodeModel(bytes, `${label}.onnx`), {
      argument: `${label}.onnx`,
      says: ["refusing to decode", "MiB", "16 × its size"],
    });
    const grew = (Deno.memoryUsage().rss - before) / 2 ** 20;
    console.log(
      `${label}: ${(bytes.length / 2 ** 20).toFixed(1)} MiB file, RSS grew ${
        grew.toFixed(0)
      } MiB before the refusal`,
    );
    // The budget is 16 × 8 MiB + 64 MiB = 192 MiB of estimated heap; allow the estimate's slack.
    assert.ok(grew < 2 * decodeBudget(bytes.length) / 2 ** 20, `${label}: RSS grew ${grew} MiB`);
  }
});

Deno.test("onnx: real models decode well inside the bound", async () => {
  for (const f of ["weights/shapes/unet.onnx", "tests/fixtures/hf_tiny/unet/model.onnx"]) {
    const bytes = await Deno.readFile(f);
    await corpus.works(`decodes ${f}`, () => decodeModel(bytes, f), (m) => {
      assert.ok(m.graph.node.length > 0);
    });
  }
});

Deno.test("onnx: deeply nested subgraphs are refused, not a stack overflow", async () => {
  let g: Uint8Array = new Uint8Array(0);
  for (let i = 0; i < 2000; i++) {
    const attr = cat([0x32], varint(g.length), g); // AttributeProto.g
    const nodeBytes = cat([0x2a], varint(attr.length), attr); // NodeProto.attribute
    g = cat([0x0a], varint(nodeBytes.length), nodeBytes); // GraphProto.node
  }
  const bytes = withGraph(g);
  await corpus.rejects("nested graphs (decode)", () => decodeModel(bytes, "deep.onnx"), {
    argument: "deep.onnx",
    says: ["nested more than"],
  });
  await corpus.rejects(
    "nested graphs (external-data scan)",
    () => externalDataRefs(bytes, "deep.onnx"),
    {
      argument: "deep.onnx",
      says: ["nested deeper"],
    },
  );
});

// --- O7 and its kind: declared sizes the bytes cannot hold ------------------------------

function oneInitializer(t: TensorProto): Uint8Array {
  return encodeModel(buildModel({
    inputs: [valueInfo("x", [4])],
    outputs: [valueInfo("y", [4])],
    nodes: [node("Add", ["x", t.name], ["y"])],
    initializers: [t],
    opset: 13,
  }));
}

Deno.test("onnx: O7 tensors whose dims the data cannot fill", async () => {
  await corpus.rejects(
    "O7 dims [2^31, 2^31] with 4 bytes",
    async () => decodeModel(await fixture("o7_huge_dims.onnx"), "o7.onnx"),
    {
      argument: "o7.onnx",
      says: ['tensor "w"', "2147483648"],
    },
  );
  const dir = await shapesCopy();
  await Deno.writeFile(join(dir, "vae_decoder.onnx"), await fixture("o7_huge_dims.onnx"));
  await corpus.rejects("O7 through loadShapesModel", () => loadShapesModel({ dir }), {
    argument: /vae_decoder\.onnx/,
    says: ['tensor "w"', "2147483648"],
  });
  await Deno.remove(dir, { recursive: true });
  const cases: [string, TensorProto, string][] = [
    ["raw_data short", {
      name: "w",
      dims: [4],
      dataType: DataType.FLOAT,
      rawData: new Uint8Array(8),
    }, "holds 8 bytes, not 16"],
    ["raw_data long", {
      name: "w",
      dims: [4],
      dataType: DataType.FLOAT,
      rawData: new Uint8Array(20),
    }, "holds 20 bytes"],
    [
      "float_data count",
      { name: "w", dims: [4], dataType: DataType.FLOAT, floatData: [1, 2, 3] },
      "float_data holds 3",
    ],
    [
      "int64_data count",
      { name: "w", dims: [2, 2], dataType: DataType.INT64, int64Data: [1n] },
      "int64_data holds 1",
    ],
    [
      "negative dim",
      { name: "w", dims: [-4], dataType: DataType.FLOAT, floatData: [1, 2, 3, 4] },
      "dimension -4",
    ],
    ["dims product over 2^53", {
      name: "w",
      dims: [2 ** 30, 2 ** 30, 2 ** 30],
      dataType: DataType.FLOAT,
      rawData: new Uint8Array(4),
    }, "over 2^53"],
  ];
  for (const [label, t, says] of cases) {
    const bytes = oneInitializer(t);
    await corpus.rejects(`O7 kind: ${label}`, () => decodeModel(bytes, "w.onnx"), {
      argument: "w.onnx",
      says: ['tensor "w"', says],
    });
  }
  await corpus.rejects(
    "external tensor without a location",
    () =>
      externalDataRefs(
        oneInitializer({
          name: "w",
          dims: [4],
          dataType: DataType.FLOAT,
          dataLocation: 1,
          externalData: [],
        }),
        "x.onnx",
      ),
    {
      argument: "x.onnx",
      says: ["names no location"],
    },
  );
  await corpus.works(
    "consistent sizes decode",
    () =>
      decodeModel(
        oneInitializer({
          name: "w",
          dims: [4],
          dataType: DataType.FLOAT,
          rawData: new Uint8Array(16),
        }),
        "ok.onnx",
      ),
    (m) => {
      assert.equal(m.graph.initializer[0].rawData?.length, 16);
    },
  );
});

Deno.test("onnx: malformed files name the file", async () => {
  const good = await Deno.readFile("tests/fixtures/hf_tiny/vae_decoder/model.onnx");
  const rnd = new Uint8Array(4096);
  crypto.getRandomValues(rnd);
  rnd[0] = 0xff; // an invalid tag start so the result never parses by chance
  for (
    const [label, bytes] of [
      ["truncated file", good.subarray(0, good.length - 100)],
      ["random bytes", rnd],
      ["empty file", new Uint8Array(0)],
    ] as const
  ) {
    await corpus.rejects(label, () => decodeModel(bytes, "bad.onnx"), { argument: "bad.onnx" });
  }
  await corpus.rejects(
    "createSession given a string",
    () => createSession("model.onnx" as unknown as Uint8Array, { source: "m.onnx" }),
    {
      argument: "m.onnx",
      says: ["Uint8Array"],
    },
  );
});

// --- O29 / O30: what the codec does not model survives decode → encode ------------------

async function runOnce(
  bytes: Uint8Array,
  feed: OrtTensor,
  ep: "wasm" | "node" = "wasm",
): Promise<ArrayLike<number | bigint>> {
  const s = await createSession(bytes, { source: "rt.onnx", executionProviders: [ep] });
  try {
    const out = await s.run({ [s.inputNames[0]]: feed });
    return out[s.outputNames[0]].data as ArrayLike<number | bigint>;
  } finally {
    await s.release();
  }
}

Deno.test("onnx: O29/O30 round trips through decodeModel/encodeModel", async () => {
  const rt = (b: Uint8Array) => encodeModel(decodeModel(b, "rt.onnx"));
  const u64 = await fixture("o29_uint64.onnx");
  await corpus.works(
    "O29 UINT64 constant round trip",
    () => runOnce(rt(u64), new ort.Tensor("uint64", BigUint64Array.of(1n, 2n), [2])),
    (y) => {
      assert.deepEqual(Array.from(y), [6n, 9n]);
    },
  );
  const fn = await fixture("o30_function.onnx");
  await corpus.works(
    "O30 model-local function round trip",
    () => runOnce(rt(fn), new ort.Tensor("float32", Float32Array.of(-1, 2, -3, 4), [4])),
    (y) => {
      assert.deepEqual(Array.from(y), [0, 2, 0, 4]);
    },
  );
  const sp = await fixture("o30_sparse_inline.onnx");
  // onnxruntime-web is built without sparse initializers; onnxruntime-node runs them.
  if (await nodeAvailable()) {
    await corpus.works(
      "sparse initializer round trip (node)",
      () => runOnce(rt(sp), new ort.Tensor("float32", new Float32Array(4), [4]), "node"),
      (y) => {
        assert.deepEqual(Array.from(y), [1.5, 0, -2, 0]);
      },
    );
  }
  await corpus.works(
    "round trip is byte-identical for the O29/O30 files",
    () => [u64, fn, sp],
    (files) => {
      for (const b of files) assert.equal(rt(rt(b)).length, rt(b).length);
    },
  );
});

// --- O27 / O28: the wrong graph in the right place ---------------------------------------

const noAttentionUnet = (): Model =>
  buildModel({
    inputs: [
      valueInfo("sample", ["batch", 4, 16, 16]),
      valueInfo("timestep", ["batch"]),
      valueInfo("encoder_hidden_states", ["batch", 32, 64]),
    ],
    outputs: [valueInfo("out_sample", ["batch", 4, 16, 16])],
    nodes: [node("Mul", ["sample", "k"], ["out_sample"])],
    initializers: [initializer("k", [], [0.1])],
    opset: 13,
  });

Deno.test("onnx: O27 a UNet with no attention fails at load, saying so", async () => {
  const dir = await shapesCopy();
  await Deno.writeFile(join(dir, "unet.onnx"), encodeModel(noAttentionUnet()));
  await corpus.rejects("O27 no attention", () => loadShapesModel({ dir }), {
    argument: join(dir, "unet.onnx"),
    says: ["no attention layers were found"],
  });
  await Deno.remove(dir, { recursive: true });
});

Deno.test("onnx: O28 a VAE decoder where the UNet belongs", async () => {
  const dir = await hfCopy((d) =>
    Deno.copyFile(join(d, "vae_decoder", "model.onnx"), join(d, "unet", "model.onnx"))
  );
  await corpus.rejects(
    "O28 SD 1.5 unet is a decoder",
    () => loadSd15Model(dir, { imageSize: [64, 64] }),
    {
      argument: "unet/model.onnx",
      says: ["latent_sample", "sample, timestep and encoder_hidden_states"],
    },
  );
  await Deno.remove(dir, { recursive: true });
  const shapes = await shapesCopy((c) => (c.files.unet = "vae_decoder.onnx"));
  await corpus.rejects("O28 shapes unet is a decoder", () => loadShapesModel({ dir: shapes }), {
    argument: "config.json unet_inputs.sample",
    says: ['"latent_sample"'],
  });
  await Deno.remove(shapes, { recursive: true });
});

// --- H7: model_index.json components ------------------------------------------------------

Deno.test("onnx: H7 model_index.json components", async () => {
  const cases: [string, unknown, "ok" | string][] = [
    ["H7 text_encoder_2 [null, null]", [null, null], "ok"],
    [
      "declared text_encoder_2",
      ["transformers", "CLIPTextModelWithProjection"],
      "multi-text-encoder",
    ],
    ["component of numbers", [1, 2], "[library, class]"],
    ["component of three", ["a", "b", "c"], "[library, class]"],
  ];
  for (const [label, value, want] of cases) {
    const dir = await hfCopy((d) =>
      editJson(join(d, "model_index.json"), (v) => (v.text_encoder_2 = value))
    );
    if (want === "ok") {
      await corpus.works(label, () => resolveSd15Files(dir), (f) => assert.ok(f.unet.model));
    } else {
      await corpus.rejects(label, () => resolveSd15Files(dir), {
        argument: /model_index\.json/,
        says: [want],
      });
    }
    await Deno.remove(dir, { recursive: true });
  }
});

// --- onnxruntime failures: the file and the step ---------------------------------------------

Deno.test("onnx: onnxruntime errors name the file and the step", async () => {
  const unknownOp = encodeModel(buildModel({
    inputs: [valueInfo("x", [4])],
    outputs: [valueInfo("y", [4])],
    nodes: [node("NoSuchOp", ["x"], ["y"])],
    opset: 13,
  }));
  await corpus.rejects(
    "create session: unknown op",
    () => createSession(unknownOp, { source: "odd.onnx" }),
    {
      argument: "odd.onnx",
      says: ["could not create a session", "NoSuchOp"],
    },
  );
  const s = await createSession(
    await Deno.readFile("tests/fixtures/hf_tiny/vae_decoder/model.onnx"),
    {
      source: "vae_decoder/model.onnx",
    },
  );
  try {
    await corpus.rejects(
      "run: wrong rank",
      () => s.run({ latent_sample: new ort.Tensor("float32", new Float32Array(4), [4]) }),
      {
        argument: "vae_decoder/model.onnx",
        says: ["failed to run"],
      },
    );
    await corpus.rejects(
      "run: wrong dtype",
      () =>
        s.run({ latent_sample: new ort.Tensor("int32", new Int32Array(4 * 8 * 8), [1, 4, 8, 8]) }),
      {
        argument: "vae_decoder/model.onnx",
        says: ["failed to run"],
      },
    );
  } finally {
    await s.release();
  }
});

Deno.test("onnx: an empty onnxruntime message is replaced (O20)", async () => {
  const wasm = new Error("Can't create a session. ERROR_CODE: 0, ERROR_MESSAGE: ");
  await corpus.works("O20 empty ERROR_MESSAGE", () => ortMessage(wasm), (m) => {
    assert.match(m, /ERROR_CODE: 0, ERROR_MESSAGE: \(onnxruntime gave no message\)$/);
  });
  await corpus.works("empty Error", () => ortMessage(new Error("")), (m) => {
    assert.equal(m, "(onnxruntime gave no message)");
  });
  await corpus.works(
    "a real message is kept",
    () => ortMessage(new Error("Got: 4096 Expected: 77")),
    (m) => {
      assert.equal(m, "Got: 4096 Expected: 77");
    },
  );
});

corpus.close(30);
