/**
 * Parity of the WGSL column-mean binarisation (ISAC Eq. 4) with the CPU `binariseColumns`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { getDevice } from "../kernels/backend.ts";
import { binariseColumnsAuto, binariseColumnsGpu } from "../kernels/binarise_columns.ts";
import { binariseColumns } from "../lib/isac/binarise.ts";
import { tensor } from "../lib/tensor.ts";
import { gpuTest, uniformTensor } from "./kernels_support.ts";

gpuTest("kernels: column binarisation matches the CPU reference", async (t) => {
  const device = await getDevice();
  await t.step("random [1000, 7] map (rows over the 256-wide reduction)", async () => {
    const m = uniformTensor([1000, 7], 1);
    const want = binariseColumns(m);
    const got = await binariseColumnsGpu(m, device);
    assert.deepEqual(got, want);
    const ones = want.reduce((a, b) => a + b, 0);
    assert.ok(ones > 0 && ones < want.length, "the comparison is not trivially constant");
  });
  await t.step("odd element count and a constant column (all zeros)", async () => {
    const m = uniformTensor([33, 5], 2);
    for (let i = 0; i < 33; i++) m.data[i * 5 + 2] = 0.1;
    const want = binariseColumns(m);
    const got = await binariseColumnsAuto(m, { backend: "gpu" });
    assert.deepEqual(got, want);
    for (let i = 0; i < 33; i++) assert.equal(got[i * 5 + 2], 0);
  });
  await t.step("a single row is never above its own mean", async () => {
    const m = tensor([1, 3], [0.2, 0.5, 0.9]);
    assert.deepEqual(await binariseColumnsGpu(m, device), new Uint8Array(3));
  });
});
