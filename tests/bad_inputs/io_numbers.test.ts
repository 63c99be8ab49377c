/**
 * Bad-input corpus, non-finite numbers in pure functions (issue 10 F11, second half): NaN or
 * ±Infinity in a latent, a model output, a noise tensor, a mask or a coefficient is an
 * AttnkitError naming the argument (and the index), never a result full of NaN.
 *
 * @module
 */
import assert from "node:assert/strict";
import { isacLoss } from "../../lib/isac/loss.ts";
import { mpo } from "../../lib/isac/mpo.ts";
import { propagate } from "../../lib/isac/propagate.ts";
import { tensor } from "../../lib/tensor.ts";
import { similarity } from "../../lib/isac/similarity.ts";
import { ddimStep } from "../../lib/samplers/ddim.ts";
import { ddpmStep } from "../../lib/samplers/ddpm.ts";
import { eulerInputScale, eulerStep } from "../../lib/samplers/euler.ts";
import { flowMatchStep, shiftSigma } from "../../lib/samplers/flow_match.ts";
import { cfg } from "../../lib/samplers/guidance.ts";
import {
  epsFromV,
  predictX0,
  x0FromFlow,
  x0FromSigma,
  x0FromV,
} from "../../lib/samplers/prediction.ts";
import { throwsClearly } from "./io_support.ts";

const ok = () => Float32Array.of(0.1, -0.2, 0.3, 0.4);
const bad = (v: number) => Float32Array.of(0, 0, 0, v);

Deno.test("io_numbers F11: mpo([NaN, 1, 2], [1, 2, 3]) → error naming a (was NaN-tainted result)", () => {
  throwsClearly(() => mpo([NaN, 1, 2], [1, 2, 3]), "a", /finite.*NaN at index 0/);
});
Deno.test("io_numbers F11: mpo with Infinity in b → error naming b", () => {
  throwsClearly(() => mpo([0, 1, 2], [1, Infinity, 3]), "b", /Infinity at index 1/);
});
Deno.test("io_numbers F11: mpo of finite masks is still correct", () => {
  assert.deepEqual(mpo([0.1, 0.9, 0.5], [1, 0.5, 0.9]), { value: 0.45, pixel: 1 });
});
for (const metric of ["mpo", "iou", "kl", "mae"] as const) {
  Deno.test(`io_numbers F11: similarity(${metric}) with NaN → error naming a`, () => {
    throwsClearly(() => similarity(metric, [NaN, 0.5], [0.5, 0.5]), "a", /NaN/);
  });
}

for (const v of [NaN, Infinity, -Infinity]) {
  Deno.test(`io_numbers F11: ddimStep with ${v} in modelOut → error naming modelOut`, () => {
    throwsClearly(
      () => ddimStep(new Float32Array(4), bad(v), { alphaBar: 0.5, alphaBarPrev: 0.9 }),
      "modelOut",
      /finite/,
    );
  });
}
Deno.test("io_numbers F11: ddimStep with NaN in x → error naming x", () => {
  throwsClearly(
    () => ddimStep(bad(NaN), ok(), { alphaBar: 0.5, alphaBarPrev: 0.9 }),
    "x",
    /NaN at index 3/,
  );
});
Deno.test("io_numbers F11: ddimStep with NaN noise (eta > 0) → error naming noise", () => {
  throwsClearly(
    () => ddimStep(ok(), ok(), { alphaBar: 0.5, alphaBarPrev: 0.9, eta: 1 }, bad(NaN)),
    "noise",
    /NaN/,
  );
});
Deno.test("io_numbers F11: ddimStep with alphaBar NaN / eta Infinity → error naming each", () => {
  throwsClearly(
    () => ddimStep(ok(), ok(), { alphaBar: NaN, alphaBarPrev: 0.9 }),
    "alphaBar",
    /got NaN/,
  );
  throwsClearly(
    () => ddimStep(ok(), ok(), { alphaBar: 0.5, alphaBarPrev: 0.9, eta: Infinity }),
    "eta",
    /Infinity/,
  );
});
Deno.test("io_numbers F11: ddpmStep with NaN modelOut / noise → error naming each", () => {
  throwsClearly(
    () => ddpmStep(ok(), bad(NaN), { alphaBar: 0.5, alphaBarPrev: 0.9 }, ok()),
    "modelOut",
    /NaN/,
  );
  throwsClearly(
    () => ddpmStep(ok(), ok(), { alphaBar: 0.5, alphaBarPrev: 0.9 }, bad(NaN)),
    "noise",
    /NaN/,
  );
});
Deno.test("io_numbers F11: eulerStep with NaN x / sigma → error naming each", () => {
  throwsClearly(() => eulerStep(bad(NaN), ok(), { sigma: 1, sigmaNext: 0.5 }), "x", /NaN/);
  throwsClearly(() => eulerStep(ok(), ok(), { sigma: NaN, sigmaNext: 0.5 }), "sigma", /NaN/);
  throwsClearly(() => eulerInputScale(NaN), "sigma", /NaN/);
});
Deno.test("io_numbers F11: flowMatchStep with Infinity v / NaN sigmaNext → error naming each", () => {
  throwsClearly(() => flowMatchStep(ok(), bad(Infinity), 0.5, 0.4), "modelOut", /Infinity/);
  throwsClearly(() => flowMatchStep(ok(), ok(), 0.5, NaN), "sigmaNext", /NaN/);
  throwsClearly(() => shiftSigma(NaN, 3), "sigma", /NaN/);
});
Deno.test("io_numbers F11: cfg with NaN uncond / cond / scale → error naming each", () => {
  throwsClearly(() => cfg(bad(NaN), ok(), 7.5), "uncond", /NaN/);
  throwsClearly(() => cfg(ok(), bad(NaN), 7.5), "cond", /NaN/);
  throwsClearly(() => cfg(ok(), ok(), NaN), "scale", /NaN/);
});
Deno.test("io_numbers F11: x̂₀ conversions with NaN → error naming the tensor", () => {
  throwsClearly(() => predictX0(ok(), bad(NaN), 0.5), "eps", /NaN/);
  throwsClearly(() => x0FromV(ok(), bad(NaN), 0.5), "v", /NaN/);
  throwsClearly(() => epsFromV(bad(NaN), ok(), 0.5), "x", /NaN/);
  throwsClearly(() => x0FromSigma(ok(), bad(-Infinity), 1), "eps", /Infinity/);
  throwsClearly(() => x0FromFlow(ok(), ok(), NaN), "sigma", /NaN/);
});
Deno.test("io_numbers F11: a finite DDIM step still gives the textbook value", () => {
  // x = 1, ε = 0.5, ᾱ = 0.5 → x̂₀ = (1 − √.5·.5)/√.5; x_prev = √.9 x̂₀ + √.1 ε.
  const out = ddimStep(Float32Array.of(1), Float32Array.of(0.5), {
    alphaBar: 0.5,
    alphaBarPrev: 0.9,
  });
  const x0 = (1 - Math.sqrt(0.5) * 0.5) / Math.sqrt(0.5);
  assert.ok(Math.abs(out[0] - (Math.sqrt(0.9) * x0 + Math.sqrt(0.1) * 0.5)) < 1e-6);
});

const HW = 4, L = 3;
const self = tensor([HW, HW], Array.from({ length: 16 }, (_, i) => (i % 5 === 0 ? 1 : 0)));
const cross = tensor([HW, L], Array.from({ length: 12 }, (_, i) => i / 12));
const nanCross = tensor([HW, L], Array.from({ length: 12 }, (_, i) => (i === 3 ? NaN : i / 12)));
const spec = { tokens: [1, 2], counts: [1, 1] };
Deno.test("io_numbers F11: isacLoss with NaN in the cross map → error naming maps.cross", () => {
  throwsClearly(
    () => isacLoss({ self, cross: nanCross, size: [2, 2] }, spec, { ins: 1, cls: 1 }),
    "maps.cross",
    /NaN/,
  );
});
Deno.test("io_numbers F11: isacLoss with a NaN weight → error naming weights", () => {
  throwsClearly(
    () => isacLoss({ self, cross, size: [2, 2] }, spec, { ins: NaN, cls: 1 }),
    "weights",
    /finite/,
  );
});
Deno.test("io_numbers F11: isacLoss with coordWeight Infinity → error naming spec.coordWeight", () => {
  throwsClearly(
    () =>
      isacLoss({ self, cross, size: [2, 2] }, { ...spec, coordWeight: Infinity }, {
        ins: 1,
        cls: 1,
      }),
    "spec.coordWeight",
    /finite/,
  );
});
Deno.test("io_numbers F11: propagate with NaN in cross → error naming cross", () => {
  throwsClearly(() => propagate(self, nanCross), "cross", /NaN/);
});
