import { assert, assertEquals } from "./assert.ts";
import { createSession, fastestCpuProvider, ort, pickExecutionProvider } from "../lib/onnx/ort.ts";
import { getBackend, getDevice } from "../kernels/backend.ts";
import { encodeModel } from "../lib/onnx/proto.ts";
import { model, node, valueInfo } from "../lib/onnx/build.ts";

const add = encodeModel(model({
  inputs: [valueInfo("a", [2]), valueInfo("b", [2])],
  outputs: [valueInfo("c", [2])],
  nodes: [node("Add", ["a", "b"], ["c"])],
  opset: 17,
}));
const feeds = () => ({
  a: new ort.Tensor("float32", new Float32Array([1, 2]), [2]),
  b: new ort.Tensor("float32", new Float32Array([10, 20]), [2]),
});

Deno.test("the node provider runs feeds made with onnxruntime-web's Tensor", async () => {
  if ((await fastestCpuProvider()) !== "node") {
    console.warn("onnxruntime-node is not loadable here; nothing to check");
    return;
  }
  const s = await createSession(add, { executionProviders: ["node"] });
  const out = await s.run(feeds());
  assertEquals([...(out.c.data as Float32Array)], [11, 22]);
  await s.release();
});

Deno.test("auto picks WebGPU only on a real GPU, and the CPU provider otherwise", async () => {
  const ep = await pickExecutionProvider();
  if ((await getBackend()) === "gpu") assertEquals(ep, "webgpu");
  else assert(ep === "node" || ep === "wasm", ep);
});

Deno.test({
  name: "after a WebGPU session the kernels run on onnxruntime's GPUDevice",
  ignore: !navigator.gpu || !(await navigator.gpu.requestAdapter()),
  async fn() {
    const s = await createSession(add, { executionProviders: ["webgpu"] });
    assert((await ort.env.webgpu.device) === (await getDevice()), "the kernels use another device");
    const out = await s.run(feeds());
    assertEquals([...(out.c.data as Float32Array)], [11, 22]);
    await s.release();
  },
});
