/**
 * field-forms.md F2, F3, F7 end to end: the embedded UNet rewritten at test time (in TypeScript,
 * mirroring the cases' Python scripts) with Einsum attention, with self-attention fused into
 * com.microsoft Attention (stacked QKV weights, as onnxruntime's optimizer emits), and converted
 * to float16. Each loads with every layer tapped and gives the original model's taps and ISAC
 * scores and latent gradients; a fused variant that cannot be tapped is refused at load with one error naming the
 * layers, not with a shape error inside ISAC.
 */
import assert from "node:assert/strict";
import { loadShapesModel } from "../lib/models/shapes.ts";
import { selectLatent } from "../lib/control/select_latent.ts";
import type { DiffusionModel } from "../lib/runtime/model.ts";
import { AttnkitError } from "../lib/errors.ts";
import { tensor } from "../lib/tensor.ts";
import { scanAttention } from "../lib/hooks/find.ts";
import { decodeModel } from "../lib/onnx/proto.ts";
import { loadDenoiser } from "../lib/runtime/denoiser.ts";
import { shapesVariant, toEinsum, toFloat16, toOrtFused } from "./field_forms_support.ts";

const PROMPT = "a photo of three yellow hearts";
const OPTS = { seed: 0, steps: 3, guidance: 4, candidates: 2 } as const;

function worst(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let w = 0;
  for (let i = 0; i < a.length; i++) w = Math.max(w, Math.abs(a[i] - b[i]));
  return w;
}

let base: {
  out: Float32Array;
  taps: { q: Float32Array; k: Float32Array }[];
  scores: number[];
  grad: Float32Array;
};

async function probe(model: DiffusionModel) {
  const [c, h, w] = model.info.latentShape;
  const x = tensor(
    [2, c, h, w],
    Float32Array.from({ length: 2 * c * h * w }, (_, i) => Math.sin(i)),
  );
  const ctx = await model.encodeText([PROMPT, ""]);
  const r = await model.denoise(x, 500, ctx, { taps: true });
  const sel = await selectLatent(model, PROMPT, OPTS);
  // dL/dlatents for fixed dL/dq, dL/dk (the path ISAC's latent optimisation takes).
  const grad = await model.gradient(
    x,
    500,
    ctx,
    r.taps!.map((item) =>
      item.map((t) => ({
        dq: tensor(t.q.shape, t.q.data.map((_, i) => Math.cos(0.37 * i))),
        dk: tensor(t.k.shape, t.k.data.map((_, i) => Math.sin(0.23 * i))),
      }))
    ),
  );
  return {
    out: r.out.data,
    taps: r.taps![0].map((t) => ({ q: t.q.data, k: t.k.data })),
    scores: sel.scores,
    grad: grad.data,
  };
}

Deno.test("embedded UNet as exported: reference taps and ISAC scores", async () => {
  const model = await loadShapesModel();
  try {
    base = await probe(model);
    assert.equal(base.taps.length, 10);
  } finally {
    await model.release();
  }
});

const variants: [string, Parameters<typeof shapesVariant>[0], number, number][] = [
  ["F2: Einsum attention (bhid,bhdj->bhij; bhij,bhjd->bhid)", (m) => toEinsum(m), 1e-7, 1e-6],
  ["F3: self-attention fused into com.microsoft Attention", (m, l) => toOrtFused(m, l), 1e-6, 1e-5],
  ["F7: float16 UNet", (m) => toFloat16(m), 1e-3, 5e-3],
];

for (const [name, rewrite, tapTol, scoreTol] of variants) {
  Deno.test(`${name}: loads with every layer tapped; same taps and ISAC scores`, async () => {
    const dir = await shapesVariant(rewrite);
    try {
      const scan = scanAttention(decodeModel(await Deno.readFile(`${dir}/unet.onnx`)));
      assert.equal(scan.cores.length, 10);
      assert.equal(scan.skipped.length, 0);
      const model = await loadShapesModel({ dir });
      try {
        const got = await probe(model);
        assert.ok(worst(got.out, base.out) < 10 * tapTol, `output ${worst(got.out, base.out)}`);
        got.taps.forEach((t, i) => {
          const w = Math.max(worst(t.q, base.taps[i].q), worst(t.k, base.taps[i].k));
          assert.ok(w < 10 * tapTol, `tap ${i}: Q/K off by ${w}`);
        });
        const gScale = Math.max(...base.grad.map(Math.abs));
        const gRel = worst(got.grad, base.grad) / gScale;
        assert.ok(gRel < 100 * tapTol, `latent gradient off by ${gRel} of its max`);
        const ds = got.scores.map((s, i) => Math.abs(s - base.scores[i]));
        const tapWorst = Math.max(
          ...got.taps.map((t, i) =>
            Math.max(worst(t.q, base.taps[i].q), worst(t.k, base.taps[i].k))
          ),
        );
        console.log(
          `${name.split(":")[0]}: output Δ ${worst(got.out, base.out).toExponential(1)}, Q/K Δ ` +
            `${tapWorst.toExponential(1)}, ISAC scores ${got.scores.map((x) => x.toFixed(4))} vs ` +
            `${base.scores.map((x) => x.toFixed(4))}, gradient Δ/max ${gRel.toExponential(1)}`,
        );
        assert.ok(Math.max(...ds) < scoreTol, `scores ${got.scores} vs ${base.scores}`);
      } finally {
        await model.release();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("F3 refused: fused self-attention that cannot be tapped fails at load, naming the layers", async () => {
  // unidirectional = 1 makes the fused op causal: its probabilities are not what the taps rebuild.
  const dir = await shapesVariant((m, l) => toOrtFused(m, l, { unidirectional: 1 }));
  try {
    await assert.rejects(
      () => loadShapesModel({ dir }),
      (e: Error) => {
        assert.ok(e instanceof AttnkitError, String(e));
        assert.match(e.message, /unet\.onnx: 5 attention layer\(s\) cannot be tapped/);
        assert.match(e.message, /found 5 attention layer\(s\):/);
        for (const block of ["down1_attn", "down2_attn", "mid_attn", "up1_attn", "up2_attn"]) {
          if (!e.message.includes(`/${block}/block/attn1/Attention`)) {
            assert.fail(`error does not name ${block}: ${e.message}`);
          }
        }
        assert.match(e.message, /unidirectional \(causal\) com\.microsoft Attention/);
        assert.match(e.message, /export the denoiser without attention fusion/);
        return true;
      },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test('F3 refused variant loads for a cross-attention-only control ({ attention: "cross" })', async () => {
  const dir = await shapesVariant((m, l) => toOrtFused(m, l, { unidirectional: 1 }));
  try {
    const d = await loadDenoiser(await Deno.readFile(`${dir}/unet.onnx`), {
      sample: "sample",
      timestep: "timestep",
      context: "encoder_hidden_states",
      output: "out_sample",
    }, { attention: "cross" });
    try {
      assert.deepEqual(d.taps.map((t) => t.kind), ["cross", "cross", "cross", "cross", "cross"]);
    } finally {
      await d.release();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
