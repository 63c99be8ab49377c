/**
 * Box rasterisation of the grounding methods: InstanceAssemble's token indices (float32
 * truncation of the dense-point corners, one-cell minimum, row-major) and DEIG's instance masks
 * (512 canvas with half-to-even rounding, max-pool by the ratio, nearest resize, dilation at
 * res ≤ 16), by hand and against the PyTorch fixture (full 2-D torch ops there).
 */
import assert from "node:assert/strict";
import { boxTokenIndices, instanceMask } from "../lib/grounding/box_tokens.ts";
import type { Box } from "../lib/losses/box.ts";
import { fixture, unhex } from "./grounding_support.ts";
import { throwsNaming } from "./losses_support.ts";

/** Row-major indices of the rectangle rows y0…y1−1, columns x0…x1−1 of a w-wide grid. */
function rect(x0: number, y0: number, x1: number, y1: number, w: number): number[] {
  const out: number[] = [];
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) out.push(y * w + x);
  return out;
}

/** A res×res mask with rows y0…y1−1 and columns x0…x1−1 set. */
function rectMask(x0: number, y0: number, x1: number, y1: number, res: number): number[] {
  const m = new Array(res * res).fill(0);
  for (const i of rect(x0, y0, x1, y1, res)) m[i] = 1;
  return m;
}

Deno.test("InstanceAssemble box token indices", async (t) => {
  await t.step("by hand: truncation, row-major order, x2 = x1 + 1 when equal", () => {
    // 8 wide, 4 high: x 0.25·8 = 2 … 0.75·8 = 6, y 0.5·4 = 2 … 4.
    assert.deepEqual([...boxTokenIndices([0.25, 0.5, 0.75, 1], 8, 4)], rect(2, 2, 6, 4, 8));
    // x 0.31·10 = 3.1 → 3 … 0.68·10 = 6.8 → 6, y 0 … 2.5 → 2 (truncation, not rounding).
    assert.deepEqual([...boxTokenIndices([0.31, 0, 0.68, 0.25], 10, 10)], rect(3, 0, 6, 2, 10));
    // x 0 … 0.1·10 → 0 … 0 → 0 … 1; y 0.5·10 = 5 … 0.59·10 → 5 → 5 … 6.
    assert.deepEqual([...boxTokenIndices([0, 0.5, 0.1, 0.59], 10, 10)], [50]);
  });

  await t.step("matches the PyTorch fixture (float32 corners from the dense points)", () => {
    for (const c of fixture.tokens) {
      const got = boxTokenIndices(c.box as unknown as Box, c.w, c.h);
      assert.deepEqual([...got], c.idx, `box ${c.box} on ${c.w}×${c.h}`);
    }
    // The dense-point quirk: 0.8's last grid point is 0.79999995, so x2 = 7 on 10 columns.
    const quirk = fixture.tokens.find((c) => c.box[2] === 0.8)!;
    assert.deepEqual(quirk.idx, rect(0, 0, 7, 3, 10));
  });

  await t.step("a box truncated onto the right edge covers no index (Python slicing)", () => {
    assert.equal(boxTokenIndices([0.99999999, 0, 1, 1], 4, 4).length, 0);
  });

  await t.step("bad input names the argument", () => {
    throwsNaming(() => boxTokenIndices([0.2, 0.2, 0.1, 0.5], 8, 8), "box");
    throwsNaming(() => boxTokenIndices([0.2, 0.2, 1.5, 0.5], 8, 8), "box");
    throwsNaming(() => boxTokenIndices([0.2, NaN, 0.3, 0.5], 8, 8), "box");
    throwsNaming(() => boxTokenIndices([0.2, 0.2, 0.3, 0.5], 0, 8), "gridW");
    throwsNaming(() => boxTokenIndices([0.2, 0.2, 0.3, 0.5], 8, 2.5), "gridH");
  });
});

Deno.test("DEIG instance masks", async (t) => {
  await t.step("by hand: pooling, dilation only at res ≤ 16", () => {
    const box: Box = [0.25, 0.25, 0.5, 0.5]; // canvas 128 … 256
    // 64: ratio 8 → 16 … 32, no dilation.
    assert.deepEqual([...instanceMask(box, 64)], rectMask(16, 16, 32, 32, 64));
    // 32: ratio 16 → 8 … 16, no dilation.
    assert.deepEqual([...instanceMask(box, 32)], rectMask(8, 8, 16, 16, 32));
    // 16: ratio 32 → 4 … 8, dilated by a 3-kernel → 3 … 9.
    assert.deepEqual([...instanceMask(box, 16)], rectMask(3, 3, 9, 9, 16));
    // 8: ratio 64 → 2 … 4, dilated by a 5-kernel → 0 … 6.
    assert.deepEqual([...instanceMask(box, 8)], rectMask(0, 0, 6, 6, 8));
    // kernel override at 64: 15 … 33.
    assert.deepEqual([...instanceMask(box, 64, { kernel: 3 })], rectMask(15, 15, 33, 33, 64));
    // kernel 1 switches DEIG's dilation off at 8.
    assert.deepEqual([...instanceMask(box, 8, { kernel: 1 })], rectMask(2, 2, 4, 4, 8));
  });

  await t.step("by hand: the canvas raster rounds half to even", () => {
    // canvas 16, res 16 (ratio 1: plain copy): x 2.5 → 2, 5.5 → 6; y 0 … 1.
    const m = instanceMask([2.5 / 16, 0, 5.5 / 16, 1 / 16], 16, { canvas: 16 });
    assert.deepEqual([...m], rectMask(2, 0, 6, 1, 16));
  });

  await t.step("max-pool keeps a box thinner than a cell", () => {
    // 0.45 … 0.47 of 512 = 230 … 241: one 8-cell at res 64 (cell 28 or 29 … 30).
    const m = instanceMask([0.45, 0.45, 0.47, 0.52], 64);
    assert.ok(m.some((v) => v === 1));
  });

  await t.step("matches the PyTorch fixture (all resolutions, incl. nearest resize)", () => {
    for (const c of fixture.masks) {
      const got = instanceMask(c.box as unknown as Box, c.res);
      const want = unhex(c.mask, c.res * c.res);
      assert.deepEqual(got, want, `box ${c.box} at ${c.res}`);
    }
  });

  await t.step("bad input names the argument", () => {
    throwsNaming(() => instanceMask([0.2, 0.2, 0.3, 0.5], 0), "res");
    throwsNaming(() => instanceMask([0.2, 0.2, 0.3, 0.5], 7.5), "res");
    throwsNaming(() => instanceMask([0.2, 0.2, 0.3, 0.5], 8, { kernel: 2 }), "kernel");
    throwsNaming(() => instanceMask([0.2, 0.2, 0.3, 0.5], 8, { canvas: 0 }), "canvas");
    throwsNaming(() => instanceMask([0.2, 0.6, 0.3, 0.5], 8), "box");
    throwsNaming(() => instanceMask([0.2, 0.2, 0.3, Infinity], 8), "box");
  });
});
