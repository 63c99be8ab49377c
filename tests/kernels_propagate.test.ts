/**
 * Parity of the tiled WGSL matmul (ISAC Eq. 3 propagation SA·CA, and the strided product the
 * backward uses) with the CPU reference `propagate` and a plain triple loop.
 *
 * @module
 */
import assert from "node:assert/strict";
import { getDevice } from "../kernels/backend.ts";
import { matmulGpu } from "../kernels/matmul.ts";
import { propagateAuto, propagateGpu } from "../kernels/propagate.ts";
import { AttnkitError } from "../lib/errors.ts";
import { propagate } from "../lib/isac/propagate.ts";
import { type Tensor, tensor } from "../lib/tensor.ts";
import { assertClose, gpuTest, randomTensor, uniformTensor } from "./kernels_support.ts";

function rowStochastic(n: number, seed: number): Tensor {
  const t = uniformTensor([n, n], seed);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < n; j++) s += t.data[i * n + j];
    for (let j = 0; j < n; j++) t.data[i * n + j] /= s;
  }
  return t;
}

function naiveMatmul(a: Tensor, b: Tensor): Tensor {
  const [m, k] = a.shape;
  const n = b.shape[1];
  const out = new Float32Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += a.data[i * k + p] * b.data[p * n + j];
      out[i * n + j] = s;
    }
  }
  return tensor([m, n], out);
}

gpuTest("kernels: tiled matmul and SA·CA propagation match the CPU", async (t) => {
  const device = await getDevice();
  await t.step("propagate at 10x10 pixels (HW 100, not a tile multiple), L 7", async () => {
    const self = rowStochastic(100, 1);
    const cross = uniformTensor([100, 7], 2);
    assertClose(
      await propagateGpu(self, cross, device),
      propagate(self, cross),
      "SA·CA",
      1e-6,
      1e-4,
    );
  });
  await t.step("propagate at 16x16 (HW 256, four row tiles), L 77 (two column tiles)", async () => {
    const self = rowStochastic(256, 3);
    const cross = uniformTensor([256, 77], 4);
    const got = await propagateAuto(self, cross, { backend: "gpu" });
    assertClose(got, propagate(self, cross), "SA·CA", 1e-6, 1e-4);
  });
  await t.step("a general product with odd sizes", async () => {
    const a = randomTensor([37, 53], 5);
    const b = randomTensor([53, 70], 6);
    assertClose(await matmulGpu(a, b, device), naiveMatmul(a, b), "a·b", 1e-5, 1e-4);
  });
  await t.step("mismatched shapes are rejected", async () => {
    await assert.rejects(
      () => propagateGpu(rowStochastic(4, 1), uniformTensor([5, 3], 1), device),
      AttnkitError,
    );
  });
});
