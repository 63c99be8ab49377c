/**
 * The attention-bias path of the denoiser (used by MIFO's attention steering): a zero bias leaves
 * the output unchanged, and −1e4 on a cross-attention key column removes that text token's
 * influence (the output no longer depends on its embedding). On the tiny SD-shaped UNet fixture
 * always, and on the embedded shapes model when weights/shapes/unet.onnx exists.
 */
import assert from "node:assert/strict";
import { loadDenoiser } from "../lib/runtime/denoiser.ts";
import type { AttentionBias } from "../lib/runtime/model.ts";
import { ort } from "../lib/onnx/ort.ts";
import { gaussian, mulberry32 } from "../lib/random.ts";
import { type Tensor, tensor } from "../lib/tensor.ts";
import { rejectsNaming } from "./losses_support.ts";

ort.env.logLevel = "error";

type Run = (x: Tensor, t: number, ctx: Tensor, taps: boolean, bias?: AttentionBias) => Promise<{
  out: Tensor;
  taps?: { kind: "self" | "cross"; q: Tensor; k: Tensor }[][];
}>;

function maxDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

async function checkBias(run: Run, x: Tensor, t: number, ctx: Tensor, cores: number) {
  const plain = await run(x, t, ctx, true);
  const taps = plain.taps![0];
  assert.equal(taps.length, cores);
  const zeros: AttentionBias = taps.map((tp) =>
    tensor([1, 1, tp.q.shape[1], tp.k.shape[1]], new Float32Array(tp.q.shape[1] * tp.k.shape[1]))
  );
  const zero = await run(x, t, ctx, true, zeros);
  const d0 = maxDiff(zero.out.data, plain.out.data);
  assert.ok(d0 <= 1e-5, `zero bias changed the output by ${d0}`);
  zero.taps![0].forEach((tp, j) =>
    assert.ok(maxDiff(tp.q.data, taps[j].q.data) <= 1e-5, `tap ${j}`)
  );

  // Mask key column `col` of every cross core; then the context row `col` must not matter.
  const col = 2;
  const masked: AttentionBias = taps.map((tp) => {
    if (tp.kind !== "cross") return null;
    const [nq, nk] = [tp.q.shape[1], tp.k.shape[1]];
    const m = new Float32Array(nq * nk);
    for (let q = 0; q < nq; q++) m[q * nk + col] = -1e4;
    return tensor([1, 1, nq, nk], m);
  });
  const [b, l, dim] = ctx.shape;
  const other = ctx.data.slice();
  const noise = gaussian(mulberry32(5), dim);
  for (let i = 0; i < b; i++) {
    for (let k = 0; k < dim; k++) other[(i * l + col) * dim + k] += 3 * noise[k];
  }
  const ctx2 = tensor(ctx.shape, other);
  const unmaskedA = await run(x, t, ctx, false);
  const unmaskedB = await run(x, t, ctx2, false);
  const changed = maxDiff(unmaskedA.out.data, unmaskedB.out.data);
  assert.ok(changed > 1e-3, `without the mask the token should matter (changed ${changed})`);
  const a = await run(x, t, ctx, false, masked);
  const c = await run(x, t, ctx2, false, masked);
  const d1 = maxDiff(a.out.data, c.out.data);
  assert.ok(d1 <= 1e-5, `masked token still changed the output by ${d1} (unmasked: ${changed})`);
  return { zeroDiff: d0, maskedDiff: d1, unmaskedDiff: changed };
}

const TINY = new URL("./fixtures/hf_tiny/unet/", import.meta.url);

Deno.test("bias path on the tiny SD-shaped UNet: zero bias is a no-op, −1e4 removes a key", async () => {
  const bytes = await Deno.readFile(new URL("model.onnx", TINY));
  const data = await Deno.readFile(new URL("model.onnx_data", TINY));
  const den = await loadDenoiser(bytes, {
    sample: "sample",
    timestep: "timestep",
    context: "encoder_hidden_states",
    output: "out_sample",
  }, { externalData: [{ path: "model.onnx_data", data }], source: "hf_tiny unet" });
  try {
    const rng = mulberry32(1);
    const x = tensor([2, 4, 8, 8], gaussian(rng, 2 * 4 * 64));
    const ctx = tensor([2, 6, 32], gaussian(rng, 2 * 6 * 32));
    await checkBias((...a) => den.run(...a), x, 500, ctx, den.taps.length);
    await rejectsNaming(() => den.run(x, 500, ctx, false, [null]), "bias");
    const bad = den.taps.map(() => tensor([1, 64], new Float32Array(64)));
    await rejectsNaming(() => den.run(x, 500, ctx, false, bad), "bias[0]");
  } finally {
    await den.release();
  }
});

const unet = new URL("../weights/shapes/unet.onnx", import.meta.url);
const present = await Deno.stat(unet).then(() => true, () => false);

Deno.test({
  name: present
    ? "bias path on the embedded shapes model: zero bias is a no-op, −1e4 removes a key"
    : "bias path on the embedded shapes model (skipped: weights/shapes/unet.onnx not found)",
  ignore: !present,
  fn: async () => {
    const { loadShapesModel } = await import("../lib/models/shapes.ts");
    const model = await loadShapesModel();
    try {
      const [c, h, w] = model.info.latentShape;
      const x = tensor([1, c, h, w], gaussian(mulberry32(2), c * h * w));
      const ctx = await model.encodeText(["a red circle and a blue square"]);
      const run: Run = (x, t, ctx, taps, bias) => model.denoise(x, t, ctx, { taps, bias });
      const probe = await model.denoise(x, 500, ctx, { taps: true });
      await checkBias(run, x, 500, ctx, probe.taps![0].length);
    } finally {
      await model.release();
    }
  },
});
