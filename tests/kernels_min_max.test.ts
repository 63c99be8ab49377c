/**
 * Parity of the WGSL min-max normalisation (ISAC Eq. 13, a two-level parallel reduction) with
 * the CPU `minMax`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { getDevice } from "../kernels/backend.ts";
import { minMaxAuto, minMaxGpu } from "../kernels/min_max.ts";
import { minMax } from "../lib/attention/normalise.ts";
import { AttnkitError } from "../lib/errors.ts";
import { tensor } from "../lib/tensor.ts";
import { assertClose, gpuTest, randomTensor } from "./kernels_support.ts";

gpuTest("kernels: min-max normalisation matches the CPU reference", async (t) => {
  const device = await getDevice();
  await t.step("300 000 values: every one of the 1024 workgroups folds several", async () => {
    const x = randomTensor([300, 1000], 1, 3);
    // Extremes placed late and in different workgroups' shares.
    x.data[299_999] = 40;
    x.data[123_457] = -35;
    const got = await minMaxGpu(x, device);
    assertClose(got, minMax(x), "minMax", 1e-6, 1e-5);
    assert.equal(got.data[299_999], 1);
    assert.equal(got.data[123_457], 0);
  });
  await t.step("small and odd sizes, and a constant tensor gives zeros", async () => {
    const x = randomTensor([7, 3], 2);
    assertClose(await minMaxAuto(x, { backend: "gpu" }), minMax(x), "minMax", 1e-6, 1e-5);
    const c = tensor([5], [2, 2, 2, 2, 2]);
    assert.deepEqual((await minMaxGpu(c, device)).data, new Float32Array(5));
  });
  await t.step("NaN is rejected like the CPU does", async () => {
    await assert.rejects(() => minMaxGpu(tensor([2], [1, NaN]), device), AttnkitError);
  });
});
