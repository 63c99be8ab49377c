/**
 * Hooks and sampler on denoisers made by the real tools (tests/fixtures/make_field_form_fixtures.py):
 * one tiny random-weight diffusers UNet2DConditionModel exported by torch (AttnProcessor bmm,
 * AttnProcessor2_0 SDPA, the dynamo exporter at opset 18 and at opset 23 where SDPA becomes ONNX
 * Attention), put through onnxruntime's transformer optimizer (packed QKV/KV on and off), and
 * converted to float16 (onnxruntime's converter, float16 IO; the optimizer's own, float32 IO).
 * The reference is torch: the head-averaged probabilities diffusers' attention computes.
 *
 * Each form: findAttention finds the 8 layers with torch's kinds and none skipped, the tapped
 * probabilities equal torch's, the denoiser's Q/K taps give the same maps, and the sampler runs
 * to the same latents as the plain export.
 */
import assert from "node:assert/strict";
import { decodeModel, encodeModel } from "../lib/onnx/proto.ts";
import { createSession, ort } from "../lib/onnx/ort.ts";
import { scanAttention } from "../lib/hooks/find.ts";
import { tapAttention } from "../lib/hooks/tap.ts";
import { withFloat32Io } from "../lib/onnx/float_io.ts";
import { loadDenoiser } from "../lib/runtime/denoiser.ts";
import { sampleLatents } from "../lib/runtime/sample.ts";
import type { DiffusionModel } from "../lib/runtime/model.ts";
import type { Model } from "../lib/onnx/types.ts";
import { type Tensor, tensor } from "../lib/tensor.ts";
import { pruneDead } from "./field_forms_support.ts";

const dir = new URL("./fixtures/field_forms/", import.meta.url);
interface Layer {
  kind: "self" | "cross";
  heads: number;
  dims: [number, number, number];
  probs: number[];
}
const ref = JSON.parse(Deno.readTextFileSync(new URL("reference.json", dir))) as {
  inputs: {
    sample: number[];
    sample_dims: number[];
    timestep: number[];
    encoder_hidden_states: number[];
    encoder_hidden_states_dims: number[];
  };
  out_sample: number[];
  layers: Layer[];
  forms: Record<string, { file: string; note: string }>;
};
const sample = Float32Array.from(ref.inputs.sample);
const ehs = Float32Array.from(ref.inputs.encoder_hidden_states);
const IO = {
  sample: "sample",
  timestep: "timestep",
  context: "encoder_hidden_states",
  output: "out_sample",
};

function worst(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, "length");
  let w = 0;
  for (let i = 0; i < a.length; i++) w = Math.max(w, Math.abs(a[i] - b[i]));
  return w;
}

/** Head mean of softmax(q kᵀ/√d) for one item's q [h, nq, d], k [h, nk, d]. */
function mapsFromQk(q: Tensor, k: Tensor): Float32Array {
  const [h, nq, d] = q.shape, nk = k.shape[1];
  const out = new Float32Array(nq * nk);
  for (let hi = 0; hi < h; hi++) {
    for (let i = 0; i < nq; i++) {
      const row = new Float64Array(nk);
      for (let j = 0; j < nk; j++) {
        let s = 0;
        for (let c = 0; c < d; c++) {
          s += q.data[(hi * nq + i) * d + c] * k.data[(hi * nk + j) * d + c];
        }
        row[j] = s / Math.sqrt(d);
      }
      const mx = Math.max(...row);
      let z = 0;
      for (let j = 0; j < nk; j++) z += Math.exp(row[j] - mx);
      for (let j = 0; j < nk; j++) out[i * nk + j] += Math.exp(row[j] - mx) / z / h;
    }
  }
  return out;
}

const latents: Record<string, Float32Array> = {};
const gradients: Record<string, Float32Array> = {};

/** A DiffusionModel around the bare denoiser: fixed text embeddings, no decoder. */
function wrap(d: Awaited<ReturnType<typeof loadDenoiser>>): DiffusionModel {
  const [, l, c] = ref.inputs.encoder_hidden_states_dims;
  return {
    info: {
      name: "field-form",
      latentShape: [4, 8, 8],
      imageSize: [64, 64],
      scaleFactor: 1,
      trainSteps: 1000,
      betaSchedule: { kind: "scaled_linear", betaStart: 0.00085, betaEnd: 0.012 },
      prediction: "epsilon",
    },
    tokenizer: undefined as never,
    encodeText: (prompts) => {
      // Prompt "" → the second reference embedding, anything else → the first.
      const item = prompts[0] === "" ? 1 : 0;
      return Promise.resolve(tensor([1, l, c], ehs.slice(item * l * c, (item + 1) * l * c)));
    },
    denoise: (x, t, ctx, o) => d.run(x, t, ctx, o?.taps ?? false, o?.bias),
    gradient: (x, t, ctx, g) => d.gradient(x, t, ctx, g),
    decode: () => Promise.reject(new Error("no decoder")),
    release: () => d.release(),
  };
}

/**
 * Exports whose gradient stops at a non-attention op the autodiff has no rule for (opset-21
 * GroupNormalization from the dynamo exporter, onnxruntime's fused SkipLayerNormalization).
 */
const GRADIENT_BLOCKED: Record<string, string> = {
  attention23: "GroupNormalization",
  ort_unpacked: "SkipLayerNormalization",
  ort_fp16: "SkipLayerNormalization",
};

const FORMS: [string, number][] = [
  ["bmm", 2e-5],
  ["sdpa", 2e-5],
  ["dynamo", 2e-5],
  ["attention23", 2e-5],
  ["ort_unpacked", 2e-5],
  ["ort_fp16", 2e-2],
  ["fp16", 2e-2],
];

for (const [form, tol] of FORMS) {
  const f = ref.forms[form];
  Deno.test(`field form ${form} (${f.note})`, async (t) => {
    const bytes = Deno.readFileSync(new URL(f.file, dir));
    const m = decodeModel(bytes, f.file);
    const scan = scanAttention(m, { conditioning: ["encoder_hidden_states"] });

    await t.step("findAttention: torch's 8 layers, kinds and heads; nothing skipped", () => {
      assert.deepEqual(scan.skipped.map((s) => s.reason), []);
      assert.deepEqual(scan.cores.map((c) => c.kind), ref.layers.map((l) => l.kind));
      assert.deepEqual(scan.cores.map((c) => c.heads), ref.layers.map((l) => l.heads));
    });

    await t.step("tapped probabilities equal torch's", async () => {
      const { model: tapped, taps } = tapAttention(m, scan.cores, { qk: false, probs: true });
      const io = withFloat32Io(tapped, ["sample", "timestep", "encoder_hidden_states"], [
        "out_sample",
      ]);
      const s = await createSession(encodeModel(io.model));
      const r = await s.run({
        sample: new ort.Tensor("float32", sample, ref.inputs.sample_dims),
        timestep: new ort.Tensor("float32", Float32Array.from(ref.inputs.timestep), [2]),
        encoder_hidden_states: new ort.Tensor(
          "float32",
          ehs,
          ref.inputs.encoder_hidden_states_dims,
        ),
      });
      await s.release();
      const out = r[io.outputs.out_sample].data as Float32Array;
      assert.ok(worst(out, ref.out_sample) < 50 * tol, `out_sample ${worst(out, ref.out_sample)}`);
      const ws = taps.map((tap, i) => {
        const w = worst(r[tap.probs!].data as Float32Array, ref.layers[i].probs);
        assert.ok(w <= tol, `layer ${i}: max |tap − torch| ${w} > ${tol}`);
        return w;
      });
      console.log(`${form}: max |tapped probability − torch| ${Math.max(...ws).toExponential(2)}`);
    });

    await t.step("denoiser Q/K taps give torch's maps; the sampler runs", async () => {
      const d = await loadDenoiser(bytes, IO, { source: f.file });
      const [b] = ref.inputs.sample_dims;
      const res = await d.run(
        tensor(ref.inputs.sample_dims, sample),
        ref.inputs.timestep[0],
        tensor(ref.inputs.encoder_hidden_states_dims, ehs),
        true,
      );
      assert.ok(worst(res.out.data, ref.out_sample) < 50 * tol, "denoiser output");
      for (let i = 0; i < b; i++) {
        res.taps![i].forEach((tap, j) => {
          const [, nq, nk] = ref.layers[j].dims;
          const want = ref.layers[j].probs.slice(i * nq * nk, (i + 1) * nq * nk);
          const w = worst(mapsFromQk(tap.q, tap.k), want);
          assert.ok(w <= tol, `item ${i} layer ${j}: maps from Q, K off by ${w}`);
        });
      }
      // dL/dlatents through the graph (Einsum/fused ops lowered, float16 upcast for the VJP).
      const tapGrads = res.taps!.map((item) =>
        item.map((tap) => ({
          dq: tensor(tap.q.shape, tap.q.data.map((_, i) => Math.cos(0.37 * i))),
          dk: tensor(tap.k.shape, tap.k.data.map((_, i) => Math.sin(0.23 * i))),
        }))
      );
      const args = [
        tensor(ref.inputs.sample_dims, sample),
        ref.inputs.timestep[0],
        tensor(ref.inputs.encoder_hidden_states_dims, ehs),
        tapGrads,
      ] as const;
      const blocker = GRADIENT_BLOCKED[form];
      if (blocker) {
        // Attention is never what stops the gradient: only a non-attention op autodiff lacks.
        await assert.rejects(() => d.gradient(...args), (e: Error) => {
          assert.match(e.message, new RegExp(`no differentiation rule for op type "${blocker}"`));
          const list = e.message.slice(e.message.indexOf("nodes without a rule"));
          assert.doesNotMatch(list, /Attention|Einsum/);
          return true;
        });
      } else {
        const g = await d.gradient(...args);
        assert.ok(g.data.every(Number.isFinite) && g.data.some((v) => v !== 0));
        gradients[form] = g.data;
      }
      const model = wrap(d);
      const x = await sampleLatents(model, "a prompt", {
        seed: 3,
        steps: 3,
        guidance: 3,
        taps: true,
      });
      assert.ok(x.data.every(Number.isFinite));
      latents[form] = x.data;
      await model.release();
    });
  });
}

Deno.test("every export samples to the same latents as the plain bmm export", () => {
  for (const [form, tol] of FORMS) {
    const w = worst(latents[form], latents.bmm);
    console.log(`latents ${form} vs bmm: max |diff| ${w.toExponential(2)}`);
    // float32 exports agree to rounding; float16 ones to float16 rounding over 3 steps.
    assert.ok(w < (tol > 1e-3 ? 3e-2 : 5e-5), `${form}: latents differ from bmm by ${w}`);
  }
});

Deno.test("every export gives the bmm export's latent gradient (through its own graph)", () => {
  const scale = Math.max(...gradients.bmm.map(Math.abs));
  for (const [form, tol] of FORMS.filter(([f]) => !GRADIENT_BLOCKED[f])) {
    const w = worst(gradients[form], gradients.bmm) / scale;
    console.log(`gradient ${form} vs bmm: max |diff| / max |g| ${w.toExponential(2)}`);
    assert.ok(w < (tol > 1e-3 ? 3e-2 : 1e-4), `${form}: gradient differs from bmm by ${w}`);
  }
});

Deno.test("ORT-optimizer packed QKV/KV: 8 packed MultiHeadAttention layers; taps equal torch's", async () => {
  // onnxruntime's CPU kernels have no packed MultiHeadAttention, so the model cannot run here;
  // the first layer's tap depends only on nodes before it and is checked alone.
  const f = ref.forms.ort_packed;
  const m = decodeModel(Deno.readFileSync(new URL(f.file, dir)), f.file);
  const { cores, skipped } = scanAttention(m, { conditioning: ["encoder_hidden_states"] });
  assert.equal(skipped.length, 0);
  assert.deepEqual(cores.map((c) => c.kind), ref.layers.map((l) => l.kind));
  assert.deepEqual(
    cores.map((c) => c.fusedQk?.packed),
    ref.layers.map((l) => (l.kind === "self" ? "qkv" : "kv")),
  );
  const { model: tapped, taps } = tapAttention(m, [cores[0]], { qk: false, probs: true });
  const only: Model = pruneDead({
    ...tapped,
    graph: { ...tapped.graph, output: tapped.graph.output.filter((o) => o.name === taps[0].probs) },
  });
  const s = await createSession(encodeModel(only));
  const feeds = {
    sample: new ort.Tensor("float32", sample, ref.inputs.sample_dims),
    timestep: new ort.Tensor("float32", Float32Array.from(ref.inputs.timestep), [2]),
    encoder_hidden_states: new ort.Tensor("float32", ehs, ref.inputs.encoder_hidden_states_dims),
  };
  const r = await s.run(
    Object.fromEntries(Object.entries(feeds).filter(([k]) => s.inputNames.includes(k))),
  );
  await s.release();
  const w = worst(r[taps[0].probs!].data as Float32Array, ref.layers[0].probs);
  assert.ok(w <= 2e-5, `packed QKV layer 0: ${w}`);
});
