/**
 * Fourier box embeddings (DEIG 64-dim, InstanceAssemble 1152-dim): the frequency-outer,
 * sin-then-cos ordering by hand, and parity with the PyTorch fixture (diffusers' permute form,
 * cross-checked there against GLIGEN's loop form).
 */
import assert from "node:assert/strict";
import {
  boxFourier,
  denseBoxFourier,
  densePoints,
  fourierEmbedding,
} from "../lib/grounding/fourier.ts";
import type { Box } from "../lib/losses/box.ts";
import { fixture, maxAbsDiff } from "./grounding_support.ts";
import { throwsNaming } from "./losses_support.ts";

Deno.test("fourier embedding", async (t) => {
  await t.step("ordering by hand: per frequency, sin of all coords then cos of all", () => {
    const [a, b] = [0.3, 0.8];
    // freqs = 2: f_0 = 1, f_1 = 100^(1/2) = 10.
    const want = [
      Math.sin(a),
      Math.sin(b),
      Math.cos(a),
      Math.cos(b),
      Math.sin(10 * a),
      Math.sin(10 * b),
      Math.cos(10 * a),
      Math.cos(10 * b),
    ];
    const got = fourierEmbedding([a, b], 2);
    assert.equal(got.length, 8);
    assert.ok(maxAbsDiff(got, want) < 2e-6, `${[...got]} vs ${want}`);
  });

  await t.step("matches the PyTorch fixture", () => {
    for (const c of fixture.fourier) {
      const got = fourierEmbedding(c.coords, c.freqs);
      assert.equal(got.length, 2 * c.freqs * c.coords.length);
      const d = maxAbsDiff(got, c.emb);
      assert.ok(d < 1e-6, `coords ${c.coords}: max diff ${d}`);
    }
  });

  await t.step("boxFourier is DEIG's 64-dim box embedding", () => {
    const c = fixture.fourier[0];
    assert.equal(c.freqs, 8);
    const got = boxFourier(c.coords as unknown as Box);
    assert.equal(got.length, 64);
    assert.ok(maxAbsDiff(got, c.emb) < 1e-6);
  });

  await t.step("dense points: 6×6 grid with corners, u outer, v inner", () => {
    const p = densePoints([0.1, 0.2, 0.6, 0.7]);
    assert.equal(p.length, 72);
    const f = Math.fround;
    assert.deepEqual([p[0], p[1]], [f(0.1), f(0.2)]); // p_{0,0}
    assert.ok(Math.abs(p[3] - 0.3) < 1e-6 && p[2] === f(0.1)); // p_{0,1}: v moves y
    assert.ok(Math.abs(p[12] - 0.2) < 1e-6 && p[13] === f(0.2)); // p_{1,0}: u moves x
    assert.ok(Math.abs(p[70] - 0.6) < 1e-6 && Math.abs(p[71] - 0.7) < 1e-6); // p_{5,5}
    for (const c of fixture.dense) {
      assert.deepEqual([...densePoints(c.box as unknown as Box)], c.points, `box ${c.box}`);
    }
  });

  await t.step("denseBoxFourier is InstanceAssemble's 1152-dim embedding", () => {
    for (const c of fixture.dense) {
      const got = denseBoxFourier(c.box as unknown as Box);
      assert.equal(got.length, 1152);
      const d = maxAbsDiff(got, c.emb);
      assert.ok(d < 1e-6, `box ${c.box}: max diff ${d}`);
    }
  });

  await t.step("bad input names the argument", () => {
    throwsNaming(() => fourierEmbedding([0.1, NaN]), "coords");
    throwsNaming(() => fourierEmbedding([0.1], 0), "freqs");
    throwsNaming(() => fourierEmbedding([0.1], 2.5), "freqs");
    throwsNaming(() => boxFourier([0.1, 0.2, 1.2, 0.5]), "box");
    throwsNaming(() => boxFourier([0.5, 0.2, 0.5, 0.6]), "box");
    throwsNaming(() => densePoints([0.1, 0.2, 0.3, NaN]), "box");
    throwsNaming(() => densePoints([0.1, 0.2, 0.3, 0.4], 1), "n");
    throwsNaming(() => denseBoxFourier([-0.1, 0.2, 0.3, 0.4]), "box");
  });
});
