/**
 * The VJP of the whole embedded UNet (weights/shapes/unet.onnx) against central finite
 * differences along random directions, with cotangents on the output and on the Q tensor of the
 * first attention core. Skipped, with the reason in the test name, while the file is absent.
 */
import assert from "node:assert/strict";
import type { Tensor as OrtTensor } from "npm:onnxruntime-web@1.30.0/webgpu";
import { gradCheck } from "../lib/onnx/autodiff/gradcheck.ts";
import { checkDifferentiable } from "../lib/onnx/autodiff/mod.ts";
import { ort } from "../lib/onnx/ort.ts";
import { decodeModel } from "../lib/onnx/proto.ts";
import type { GraphProto, Model } from "../lib/onnx/types.ts";
import { gaussian, mulberry32 } from "../lib/random.ts";

ort.env.logLevel = "error";

const path = new URL("../weights/shapes/unet.onnx", import.meta.url);
const present = await Deno.stat(path).then(() => true, () => false);

/** The Q operand of the MatMul feeding the first Softmax (through an optional scale). */
function firstQ(graph: GraphProto): string | undefined {
  const producer = new Map(graph.node.flatMap((n) => n.output.map((o) => [o, n] as const)));
  const softmax = graph.node.find((n) => n.opType === "Softmax");
  let n = softmax && producer.get(softmax.input[0]);
  while (n && (n.opType === "Mul" || n.opType === "Div" || n.opType === "Add")) {
    n = producer.get(n.input[0]);
  }
  return n?.opType === "MatMul" ? n.input[0] : undefined;
}

function feedsFor(model: Model, batch: number): Record<string, OrtTensor> {
  const rng = mulberry32(7);
  const feeds: Record<string, OrtTensor> = {};
  for (const v of model.graph.input) {
    const tt = v.type?.tensorType;
    const dims = (tt?.shape?.dim ?? []).map((
      d,
      i,
    ) => (d.dimValue !== undefined ? Number(d.dimValue) : i === 0 ? batch : 1));
    const n = dims.reduce((a, b) => a * b, 1);
    if (v.name === "timestep") {
      feeds[v.name] = tt?.elemType === 7
        ? new ort.Tensor("int64", BigInt64Array.from({ length: n }, () => 500n), dims)
        : new ort.Tensor("float32", new Float32Array(n).fill(500), dims);
    } else feeds[v.name] = new ort.Tensor("float32", gaussian(rng, n), dims);
  }
  return feeds;
}

Deno.test({
  name: present
    ? "autodiff unet: whole-UNet VJP matches finite differences"
    : "autodiff unet: whole-UNet VJP check (skipped: weights/shapes/unet.onnx not found)",
  ignore: !present,
  fn: async () => {
    const model = decodeModel(await Deno.readFile(path), "unet.onnx");
    const out = model.graph.output[0].name;
    const q = firstQ(model.graph);
    const taps = q ? [out, q] : [out];
    const report = checkDifferentiable(model, { wrt: ["sample"], taps });
    const r = await gradCheck(model, { wrt: ["sample"], taps }, feedsFor(model, 1), {
      directions: 3,
    });
    console.log(
      `unet.onnx: ${report.nodes} nodes on the path (${report.opTypes.join(", ")}); taps ${
        taps.join(", ")
      }; ` +
        `rel. errors ${r.checks.map((c) => c.relError.toExponential(2)).join(", ")}; ` +
        `forward ${r.forwardMs.toFixed(1)} ms, VJP ${r.vjpMs.toFixed(1)} ms`,
    );
    for (const c of r.checks) {
      assert.ok(c.relError < 1e-2, `⟨grad, v⟩ = ${c.analytic}, finite difference ${c.numeric}`);
    }
  },
});
