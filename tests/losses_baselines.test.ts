/**
 * InitNO's and SynGen's losses: values, intermediate structures and gradients against PyTorch /
 * OpenCV (tests/fixtures/make_baseline_fixtures.py → tests/fixtures/baselines/baselines.json),
 * gradients against central finite differences, known values and bad input.
 */
import assert from "node:assert/strict";
import type { AttentionMaps } from "../lib/attention/types.ts";
import {
  cleanMask,
  INITNO_JOINT_WEIGHTS,
  INITNO_NOISE_WEIGHTS,
  initNoKl,
  initNoLoss,
  otsuThreshold,
} from "../lib/losses/initno.ts";
import { symmetricKl, synGenLoss, type SynGenSubtree } from "../lib/losses/syngen.ts";
import { tensor } from "../lib/tensor.ts";
import { checkGradient, randomMaps, throwsNaming } from "./losses_support.ts";

interface Terms {
  crossAttn: number;
  selfAttn: number;
  clean: number;
  align: number;
}
interface InitNoForm {
  value: number;
  terms: Terms;
  gradCross: number[] | null;
  gradSelf: number[] | null;
}
interface InitNoCase {
  name: string;
  size: [number, number];
  l: number;
  tokens: number[];
  cross: number[];
  self: number[];
  cache: number[][] | null;
  noise: InitNoForm;
  joint: InitNoForm;
  peaks: number[];
  pixels: number[];
  masks: number[][];
  newCache: number[][];
}
interface SynGenCase {
  name: string;
  size: [number, number];
  l: number;
  cross: number[];
  subtrees: { noun: number[]; modifiers: number[][] }[];
  promptTokens: number[];
  value: number;
  positive: number;
  negative: number;
  grad: number[];
}
interface Fixture {
  initno: InitNoCase[];
  otsu: { values: number[]; threshold: number }[];
  kl: { logVar: number[]; mu: number[]; value: number; dLogVar: number[]; dMu: number[] };
  syngen: SynGenCase[];
}

const FIX: Fixture = JSON.parse(
  await Deno.readTextFile(new URL("./fixtures/baselines/baselines.json", import.meta.url)),
);

const near = (a: number, b: number, tol: number, what: string) =>
  assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);

function closeArrays(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string) {
  assert.equal(a.length, b.length, `${what}: length`);
  let scale = 0;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]));
  for (let i = 0; i < b.length; i++) {
    assert.ok(
      Math.abs(a[i] - b[i]) <= tol * Math.max(scale, 1e-12),
      `${what}[${i}]: ${a[i]} vs ${b[i]} (scale ${scale})`,
    );
  }
}

function mapsOf(c: { size: [number, number]; l: number; cross: number[]; self?: number[] }) {
  const hw = c.size[0] * c.size[1];
  return {
    cross: tensor([hw, c.l], c.cross),
    self: c.self ? tensor([hw, hw], c.self) : tensor([hw, 0]),
    size: c.size,
  } as AttentionMaps;
}

const cacheOf = (c: InitNoCase) => c.cache?.map((m) => Float64Array.from(m));

Deno.test("InitNO loss: terms, peaks, masks, cache and gradients match PyTorch/OpenCV", () => {
  for (const c of FIX.initno) {
    const maps = mapsOf(c);
    for (const form of ["noise", "joint"] as const) {
      const want = c[form];
      const r = initNoLoss(maps, {
        tokens: c.tokens,
        last: c.l - 1,
        weights: form === "noise" ? INITNO_NOISE_WEIGHTS : INITNO_JOINT_WEIGHTS,
        ...(form === "noise" ? { gateSelfAbove: 0.5 } : {}),
        cache: cacheOf(c),
      });
      const what = `${c.name} (${form})`;
      for (const k of ["crossAttn", "selfAttn", "clean", "align"] as const) {
        near(r.terms[k], want.terms[k], 2e-5, `${what} ${k}`);
      }
      near(r.value, want.value, 2e-5, `${what} value`);
      assert.deepEqual(r.pixels, c.pixels, `${what} peak pixels`);
      r.peaks.forEach((p, i) => near(p, c.peaks[i], 2e-5, `${what} peak ${i}`));
      r.masks.forEach((m, i) => assert.deepEqual([...m], c.masks[i], `${what} clean mask ${i}`));
      r.cache.forEach((m, i) => closeArrays(m, c.newCache[i], 1e-5, `${what} cache ${i}`));
      closeArrays(r.grad.cross!.data, want.gradCross!, 2e-4, `${what} d/d cross`);
      if (want.gradSelf && want.gradSelf.some((v) => v !== 0)) {
        closeArrays(r.grad.self!.data, want.gradSelf, 2e-4, `${what} d/d self`);
      } else {
        assert.ok(
          !r.grad.self || r.grad.self.data.every((v) => v === 0),
          `${what}: gated L_sa has no self gradient`,
        );
      }
    }
  }
  // The fixture covers both sides of the 0.5 gate.
  assert.ok(FIX.initno.some((c) => c.noise.terms.crossAttn > 0.5 && c.noise.terms.selfAttn === 0));
  assert.ok(FIX.initno.some((c) => c.noise.terms.crossAttn < 0.5 && c.noise.terms.selfAttn > 0));
});

Deno.test("InitNO loss: Otsu thresholds are OpenCV's", () => {
  for (const [i, c] of FIX.otsu.entries()) {
    assert.equal(otsuThreshold(c.values), c.threshold, `case ${i}`);
  }
  // Known case: two clusters, the threshold splits them at the lower one's top bin.
  assert.equal(otsuThreshold([0.1, 0.1, 0.1, 0.9, 0.9, 0.9]), 25);
});

Deno.test("InitNO loss: the clean mask is the 4-connected component of the peak", () => {
  // 4×4: two bright blobs joined only diagonally, and two faint pixels in the threshold's own bin
  // (0.02 → bin 5 = the Otsu threshold; InitNO keeps x ≥ t/255, so they pass it) that touch
  // neither blob.
  const m = [
    0.9,
    0.8,
    0,
    0.02,
    0.8,
    0,
    0,
    0,
    0,
    0,
    0.7,
    0.7,
    0.02,
    0,
    0.7,
    0,
  ];
  assert.equal(otsuThreshold(m), 5);
  assert.deepEqual([...cleanMask(m, 4, 4, 0)], [1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual([...cleanMask(m, 4, 4, 10)], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 1, 0]);
  assert.deepEqual([...cleanMask(m, 4, 4, 3)], [0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
});

Deno.test("InitNO loss: gradients match central finite differences", () => {
  for (const c of FIX.initno.slice(0, 2)) {
    const maps = mapsOf(c);
    for (
      const [weights, gate] of [[INITNO_NOISE_WEIGHTS, 0.5], [
        INITNO_JOINT_WEIGHTS,
        undefined,
      ]] as const
    ) {
      const loss = (m: AttentionMaps) =>
        initNoLoss(m, {
          tokens: c.tokens,
          last: c.l - 1,
          weights,
          gateSelfAbove: gate,
          cache: cacheOf(c),
        });
      checkGradient(loss, maps, { which: ["cross", "self"], h: 2 ** -16, tol: 5e-3 });
    }
  }
});

Deno.test("InitNO loss: bad tokens, weights and caches are named", () => {
  const maps = randomMaps(5, 5, 6, 3, 0.2);
  throwsNaming(() => initNoLoss(maps, { tokens: [0, 2] }), "tokens[0]");
  throwsNaming(
    () => initNoLoss(maps, { tokens: [2, 3], weights: { ...INITNO_NOISE_WEIGHTS, clean: NaN } }),
    "weights.clean",
  );
  throwsNaming(() => initNoLoss(maps, { tokens: [2, 3], cache: [new Float64Array(3)] }), "cache");
  const noSelf = { ...maps, self: tensor([25, 0]) };
  throwsNaming(() => initNoLoss(noSelf, { tokens: [2, 3] }), "maps.self");
  // One target needs no self map.
  assert.equal(initNoLoss(noSelf, { tokens: [2] }).terms.selfAttn, 0);
});

Deno.test("InitNO KL: value and gradients match PyTorch; zero at the prior", () => {
  const k = FIX.kl;
  const r = initNoKl(k.logVar, k.mu);
  near(r.value, k.value, 1e-5, "KL");
  closeArrays(r.dLogVar, k.dLogVar, 1e-5, "dKL/dlogσ²");
  closeArrays(r.dMu, k.dMu, 1e-5, "dKL/dμ");
  near(initNoKl([0, 0], [0, 0]).value, 0, 0, "KL at the prior");
  throwsNaming(() => initNoKl([0, 0], [0]), "mu");
});

Deno.test("SynGen loss: value, parts and gradient match torch.distributions", () => {
  for (const c of FIX.syngen) {
    const r = synGenLoss(mapsOf(c), { subtrees: c.subtrees, promptTokens: c.promptTokens });
    near(r.value, c.value, 1e-4, `${c.name} value`);
    near(r.positive, c.positive, 1e-4, `${c.name} positive`);
    near(r.negative, c.negative, 1e-4, `${c.name} negative`);
    closeArrays(r.grad.cross!.data, c.grad, 1e-3, `${c.name} gradient`);
  }
});

Deno.test("SynGen loss: gradient matches central finite differences", () => {
  for (const c of FIX.syngen) {
    const opts = { subtrees: c.subtrees, promptTokens: c.promptTokens };
    checkGradient((m) => synGenLoss(m, opts), mapsOf(c), { h: 2 ** -18, tol: 5e-3 });
  }
});

Deno.test("SynGen loss: known values (identical maps pull to 0; symmetric KL)", () => {
  // KL between [0.5, 0.5] and [0.25, 0.75] both ways, averaged.
  const kl = (p: number[], q: number[]) => p.reduce((s, v, i) => s + v * Math.log(v / q[i]), 0);
  const want = (kl([0.5, 0.5], [0.25, 0.75]) + kl([0.25, 0.75], [0.5, 0.5])) / 2;
  near(symmetricKl([1, 1], [1, 3]).value, want, 1e-12, "symmetric KL");
  // A modifier whose map equals its noun's and no outside token: loss 0.
  const maps = randomMaps(4, 4, 5, 2, 1);
  const cross = maps.cross.data.slice();
  for (let p = 0; p < 16; p++) cross[p * 5 + 1] = cross[p * 5 + 2];
  const same = { ...maps, cross: tensor([16, 5], cross) };
  const subtrees: SynGenSubtree[] = [{ noun: 2, modifiers: [1] }];
  assert.equal(synGenLoss(same, { subtrees, promptTokens: [1, 2] }).value, 0);
  // An outside token pushes: the negative part is −d(·, outside) averaged.
  const r = synGenLoss(same, { subtrees, promptTokens: [1, 2, 3] });
  assert.ok(r.negative < 0, `negative part ${r.negative}`);
  throwsNaming(
    () => synGenLoss(maps, { subtrees: [{ noun: 9, modifiers: [] }], promptTokens: [1] }),
    "subtrees[0].noun",
  );
});
