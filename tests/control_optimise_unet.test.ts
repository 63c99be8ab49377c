/**
 * ISAC's latent gradient through the embedded UNet (weights/shapes/unet.onnx), end to end:
 * taps → accumulated maps → ISAC loss → map VJP → tap VJP → the UNet's reverse-mode graph. Checked
 * against central finite differences of the whole forward along random directions and the
 * gradient's own direction, with the K-means assignment, the foreground and the maximising pairs
 * checked unchanged at x ± h·v (same K-means seed); and one optimisation step with a small η
 * lowers L_t by η‖∇‖² to first order. Skipped, with the reason in the test name, while the
 * weights are absent.
 */
import assert from "node:assert/strict";
import { accumulateMaps } from "../lib/attention/accumulate.ts";
import { isacSpecFor, type PromptSpec } from "../lib/control/isac_spec.ts";
import { latentGrad } from "../lib/control/latent_grad.ts";
import { isacMapsLoss, isacOptimiser } from "../lib/control/optimise_latent.ts";
import { isacLoss, type IsacWeights } from "../lib/isac/loss.ts";
import { loadShapesModel } from "../lib/models/shapes.ts";
import { ort } from "../lib/onnx/ort.ts";
import { gaussian, mulberry32 } from "../lib/random.ts";
import type { DiffusionModel } from "../lib/runtime/model.ts";
import { defaultSampler, initialLatents } from "../lib/runtime/sample.ts";
import { schedule } from "../lib/schedule.ts";
import { type Tensor, tensor } from "../lib/tensor.ts";

ort.env.logLevel = "error";

const path = new URL("../weights/shapes/unet.onnx", import.meta.url);
const present = await Deno.stat(path).then(() => true, () => false);
const PROMPT = "a photo of two red circles and a blue square";
const T_STEP = 601;

/** L_t at `x` and the piecewise-constant structure that must stay fixed for a derivative. */
async function lossAt(
  model: DiffusionModel,
  x: Float32Array,
  shape: readonly number[],
  ctx: Tensor,
  spec: PromptSpec,
  w: IsacWeights,
) {
  const res = await model.denoise(tensor(shape, x), T_STEP, ctx, { taps: true });
  const r = isacLoss(accumulateMaps(res.taps![0]), spec.isac, w);
  const key = JSON.stringify([[...r.foreground], [...r.assign], r.insPair, r.clsPair]);
  return { value: r.value, ins: r.ins, cls: r.cls, key };
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

function unit(v: Float32Array): Float32Array {
  const n = Math.sqrt(dot(v, v));
  return v.map((x) => x / n);
}

Deno.test({
  name: present
    ? "control optimise unet: ISAC latent gradient through the UNet matches central differences"
    : "control optimise unet: ISAC latent gradient check (skipped: weights/shapes/unet.onnx not found)",
  ignore: !present,
  fn: async (t) => {
    const model = await loadShapesModel();
    const spec = isacSpecFor(model, PROMPT);
    const ctx = await model.encodeText([PROMPT]);
    const x = initialLatents(model.info.latentShape, 3, 1);
    const w = schedule.soft(T_STEP, model.info.trainSteps);
    const g = await latentGrad(model, x, T_STEP, ctx, isacMapsLoss(spec.isac, w));
    const gNorm = Math.sqrt(dot(g.grad.data, g.grad.data));
    const base = await lossAt(model, x.data, x.shape, ctx, spec, w);
    // latentGrad reads the maps the UNet's graph makes (in-graph Eq. 1-2), lossAt accumulates
    // them from the taps on the CPU: the same maps to float32 rounding, not bit for bit.
    assert.ok(
      Math.abs(base.value - g.values[0]) < 1e-5 * Math.max(1, Math.abs(base.value)),
      `latentGrad's value is the forward's (${g.values[0]} vs ${base.value})`,
    );
    assert.ok(gNorm > 0, "a zero gradient checks nothing");

    await t.step("directional derivatives", async () => {
      const dirs = [1, 2, 3].map((s) => unit(gaussian(mulberry32(100 + s), x.data.length)));
      dirs.push(unit(g.grad.data.slice()));
      const h = 1e-2;
      const lines: string[] = [];
      let checked = 0;
      for (const [k, v] of dirs.entries()) {
        const p = await lossAt(model, x.data.map((a, i) => a + h * v[i]), x.shape, ctx, spec, w);
        const m = await lossAt(model, x.data.map((a, i) => a - h * v[i]), x.shape, ctx, spec, w);
        const numeric = (p.value - m.value) / (2 * h);
        const analytic = dot(g.grad.data, v);
        // A max (MPO's pixel, the min-max extremes) can switch inside ±h without changing the
        // key; then the two one-sided slopes disagree and the central difference straddles a kink.
        const right = (p.value - base.value) / h, left = (base.value - m.value) / h;
        const smooth = Math.abs(right - left) <= 0.1 * Math.max(Math.abs(right), Math.abs(left)) +
            5e-4 * gNorm;
        const fixed = p.key === base.key && m.key === base.key && smooth;
        lines.push(
          `v${k}: ⟨∇,v⟩ ${analytic.toExponential(3)} fd ${numeric.toExponential(3)} fixed ${fixed}`,
        );
        if (!fixed) continue;
        // Relative to ‖∇‖: random directions carry ~‖∇‖/√n, so a tolerance on |⟨∇,v⟩| alone
        // would be dominated by float32 noise in the forward.
        assert.ok(
          Math.abs(analytic - numeric) <= 0.02 * Math.abs(numeric) + 5e-4 * gNorm,
          `direction ${k}: ⟨∇, v⟩ = ${analytic}, central difference ${numeric} (‖∇‖ ${gNorm})`,
        );
        checked++;
      }
      console.log(
        `‖∇‖ = ${gNorm.toExponential(3)}, L = ${base.value.toFixed(5)}; ${lines.join("; ")}`,
      );
      assert.ok(
        checked >= 3,
        `only ${checked} of ${dirs.length} directions kept the assignment fixed`,
      );
    });

    await t.step("one small step of the hook lowers L_t to first order", async () => {
      // η so that the step moves the latent by 1e-2 in norm.
      const eta = 1e-2 / gNorm;
      const opt = isacOptimiser(model, PROMPT, { eta, spec, schedule: () => w });
      const sampler = defaultSampler(model, 50);
      const x1 = await opt.adjust({
        step: 0,
        steps: 50,
        timestep: T_STEP,
        trainSteps: model.info.trainSteps,
        latents: x,
        context: ctx,
        sampler,
      });
      const after = await lossAt(model, x1.data, x.shape, ctx, spec, w);
      assert.equal(after.key, base.key, "the step changed the clustering; pick a smaller step");
      const drop = base.value - after.value;
      const predicted = eta * gNorm * gNorm;
      console.log(
        `L ${base.value.toFixed(6)} → ${after.value.toFixed(6)}; drop ${drop.toExponential(3)}, ` +
          `first-order ${predicted.toExponential(3)}`,
      );
      assert.ok(drop > 0, `L_t went up: ${base.value} → ${after.value}`);
      assert.ok(
        Math.abs(drop - predicted) <= 0.2 * predicted,
        `drop ${drop} vs η‖∇‖² ${predicted}`,
      );
      assert.equal(opt.log[0].gradNorm[0].toFixed(3), gNorm.toFixed(3));
    });
    await model.release();
  },
});
