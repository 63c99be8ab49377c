/**
 * Parity of the WGSL all-pairs MPO (ISAC Eq. 7) with the CPU `mpo`, including its tie rule.
 *
 * @module
 */
import assert from "node:assert/strict";
import { getDevice } from "../kernels/backend.ts";
import { maskPairs, mpoPairs, mpoPairsAuto, mpoPairsGpu } from "../kernels/mpo.ts";
import { mpo } from "../lib/isac/mpo.ts";
import { tensor } from "../lib/tensor.ts";
import { gpuTest, uniformTensor } from "./kernels_support.ts";

Deno.test("kernels: mpoPairs on the CPU is mpo on every pair", () => {
  assert.deepEqual(maskPairs(4), [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]);
  const masks = uniformTensor([3, 50], 1);
  const r = mpoPairs(masks);
  const one = mpo(masks.data.subarray(50, 100), masks.data.subarray(100, 150));
  assert.equal(r.value[2], one.value);
  assert.equal(r.pixel[2], one.pixel);
});

gpuTest("kernels: all-pairs MPO on the GPU matches the CPU reference", async (t) => {
  const device = await getDevice();
  await t.step("5 masks over 1000 pixels", async () => {
    const masks = uniformTensor([5, 1000], 2);
    const want = mpoPairs(masks);
    const got = await mpoPairsGpu(masks, device);
    assert.deepEqual(got.pairs, want.pairs);
    assert.deepEqual(got.pixel, want.pixel);
    for (let p = 0; p < want.value.length; p++) {
      assert.ok(Math.abs(got.value[p] - want.value[p]) <= 1e-6 * want.value[p], `pair ${p}`);
    }
  });
  await t.step("ties go to the first pixel, also across the 256-wide reduction", async () => {
    const f = 600;
    const data = new Float32Array(2 * f).fill(0.25);
    for (const p of [517, 300, 9]) {
      data[p] = 0.5;
      data[f + p] = 0.5;
    }
    const got = await mpoPairsAuto(tensor([2, f], data), { backend: "gpu" });
    assert.equal(got.pixel[0], 9);
    assert.equal(got.value[0], 0.25);
    const flat = await mpoPairsGpu(tensor([2, 3], [1, 1, 1, 0.5, 0.5, 0.5]), device);
    assert.equal(flat.pixel[0], 0);
  });
});
