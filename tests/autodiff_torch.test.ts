/**
 * The VJP emitter on a graph exported from PyTorch (a small UNet-like block: Conv, GroupNorm,
 * SiLU, self- and cross-attention as MatMul/Softmax, LayerNorm, GELU, nearest Resize, Concat
 * skip; dynamic batch) against PyTorch's own autograd in float64
 * (tests/fixtures/make_autodiff_fixtures.py). Cotangents sit on the output and on the
 * self-attention Q projection (an intermediate tensor), as ISAC's gradient enters.
 */
import assert from "node:assert/strict";
import type { Tensor as OrtTensor } from "npm:onnxruntime-web@1.30.0/webgpu";
import { checkDifferentiable, vjpGraph } from "../lib/onnx/autodiff/mod.ts";
import { createSession, ort } from "../lib/onnx/ort.ts";
import { decodeModel, encodeModel } from "../lib/onnx/proto.ts";
import { gaussian, mulberry32 } from "../lib/random.ts";

ort.env.logLevel = "error";

interface Flat {
  dims: number[];
  data: number[];
}
interface Fixture {
  inputs: Record<string, Flat>;
  output: Record<string, Flat>;
  q_tap: string;
  cotangents: Record<string, Flat>;
  grads: Record<string, Flat>;
}

const dir = new URL("./fixtures/autodiff/", import.meta.url);
const model = decodeModel(await Deno.readFile(new URL("unet_block.onnx", dir)), "unet_block.onnx");
const fx: Fixture = JSON.parse(await Deno.readTextFile(new URL("unet_block.json", dir)));

const tensorOf = (f: Flat): OrtTensor =>
  new ort.Tensor("float32", Float32Array.from(f.data), f.dims);
const feeds: Record<string, OrtTensor> = Object.fromEntries(
  Object.entries(fx.inputs).map(([k, v]) => [k, tensorOf(v)]),
);

/** ‖a − b‖ / ‖b‖. */
function relL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

// float32 ORT against a float64 reference: rounding gives ~1e-6; a wrong rule gives O(1).
const TOL = 1e-4;

Deno.test("autodiff torch: forward of the fixture matches torch (sanity)", async () => {
  const s = await createSession(encodeModel(model));
  const out = await s.run(feeds);
  const err = relL2(out.out_sample.data as Float32Array, fx.output.out_sample.data);
  await s.release();
  assert.ok(err < TOL, `forward relative L2 error ${err}`);
});

Deno.test("autodiff torch: path check lists the exported op types", () => {
  const report = checkDifferentiable(model, { wrt: ["sample"], taps: ["out_sample"] });
  for (
    const op of ["Conv", "InstanceNormalization", "LayerNormalization", "Softmax", "Resize", "Erf"]
  ) {
    assert.ok(report.opTypes.includes(op), `${op} missing from ${report.opTypes}`);
  }
});

Deno.test("autodiff torch: VJP graph matches torch autograd", async (t) => {
  await t.step("cotangent on the output → d/dsample and d/dencoder_hidden_states", async () => {
    const vjp = vjpGraph(model, { wrt: ["sample", "encoder_hidden_states"], taps: ["out_sample"] });
    const s = await createSession(encodeModel(vjp.model));
    const out = await s.run({
      ...feeds,
      [vjp.cotangentInputs[0]]: tensorOf(fx.cotangents.out_sample),
    });
    const e1 = relL2(
      out[vjp.gradOutputs[0]].data as Float32Array,
      fx.grads["out_sample/sample"].data,
    );
    const e2 = relL2(
      out[vjp.gradOutputs[1]].data as Float32Array,
      fx.grads["out_sample/encoder_hidden_states"].data,
    );
    await s.release();
    assert.ok(e1 < TOL, `d/dsample relative L2 error ${e1}`);
    assert.ok(e2 < TOL, `d/dencoder_hidden_states relative L2 error ${e2}`);
  });

  await t.step("cotangent on the self-attention Q tensor → d/dsample", async () => {
    const vjp = vjpGraph(model, { wrt: ["sample"], taps: [fx.q_tap] });
    // Only the part of the graph up to Q is differentiated, and nothing after Q is kept.
    assert.ok(!vjp.model.graph.node.some((n) => n.opType === "Resize"), "Resize should be pruned");
    const s = await createSession(encodeModel(vjp.model));
    const out = await s.run({ ...feeds, [vjp.cotangentInputs[0]]: tensorOf(fx.cotangents.q) });
    const e = relL2(out[vjp.gradOutputs[0]].data as Float32Array, fx.grads["q/sample"].data);
    await s.release();
    assert.ok(e < TOL, `relative L2 error ${e}`);
  });

  await t.step("cotangents on both → the sum; VJP/forward time ratio", async () => {
    const vjp = vjpGraph(model, { wrt: ["sample"], taps: ["out_sample", fx.q_tap] });
    const back = await createSession(encodeModel(vjp.model));
    const fwd = await createSession(encodeModel(model));
    const vjpFeeds = {
      ...feeds,
      [vjp.cotangentInputs[0]]: tensorOf(fx.cotangents.out_sample),
      [vjp.cotangentInputs[1]]: tensorOf(fx.cotangents.q),
    };
    const out = await back.run(vjpFeeds);
    const a = fx.grads["out_sample/sample"].data;
    const b = fx.grads["q/sample"].data;
    const e = relL2(out[vjp.gradOutputs[0]].data as Float32Array, a.map((v, i) => v + b[i]));
    assert.ok(e < TOL, `relative L2 error ${e}`);
    /** Best and median of 9 runs: on a shared machine a run longer than a time slice is often
     * preempted, which inflates the median of the longer (VJP) run far more than the minimum. */
    const time = async (run: () => Promise<unknown>): Promise<{ best: number; median: number }> => {
      const ms: number[] = [];
      for (let i = 0; i < 9; i++) {
        const t0 = performance.now();
        await run();
        ms.push(performance.now() - t0);
      }
      return { best: Math.min(...ms), median: median(ms) };
    };
    // Timing: at batch 2 both runs are dominated by per-kernel overhead (after ORT's fusions the
    // VJP runs ~2.8× the kernels); at batch 32 by arithmetic. The VJP includes its forward.
    const rng = mulberry32(5);
    for (const batch of [2, 32]) {
      const f: Record<string, OrtTensor> = batch === 2 ? feeds : {
        sample: new ort.Tensor("float32", gaussian(rng, batch * 256), [batch, 4, 8, 8]),
        encoder_hidden_states: new ort.Tensor("float32", gaussian(rng, batch * 36), [batch, 3, 12]),
      };
      const vf: Record<string, OrtTensor> = {
        ...f,
        [vjp.cotangentInputs[0]]: new ort.Tensor("float32", gaussian(rng, batch * 256), [
          batch,
          4,
          8,
          8,
        ]),
        [vjp.cotangentInputs[1]]: new ort.Tensor("float32", gaussian(rng, batch * 256), [
          batch,
          16,
          16,
        ]),
      };
      await fwd.run(f);
      await back.run(vf);
      const fMs = await time(() => fwd.run(f));
      const bMs = await time(() => back.run(vf));
      const ratio = (bMs.best / fMs.best).toFixed(2);
      console.log(
        `unet_block batch ${batch} (8×8), wasm 1 thread: best forward ${fMs.best.toFixed(2)} ms, ` +
          `VJP ${bMs.best.toFixed(2)} ms, ratio ${ratio}; medians ${fMs.median.toFixed(2)} / ` +
          `${bMs.median.toFixed(2)} ms; nodes: forward ${model.graph.node.length}, ` +
          `VJP ${vjp.model.graph.node.length}`,
      );
    }
    await back.release();
    await fwd.release();
  });
});
