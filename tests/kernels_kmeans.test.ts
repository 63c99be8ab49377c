/**
 * Parity of the WGSL K-means steps with the CPU references `assignNearest`, `clusterMeans` and
 * the whole `kmeans` loop (same seed, same assignment and iteration count on well-separated
 * data).
 *
 * @module
 */
import assert from "node:assert/strict";
import { getDevice } from "../kernels/backend.ts";
import {
  assignNearestGpu,
  clusterMeansGpu,
  kmeansAuto,
  kmeansGpu,
  kmeansPlusPlus,
} from "../kernels/kmeans.ts";
import { assignNearest, clusterMeans, kmeans } from "../lib/isac/kmeans.ts";
import { gaussian, mulberry32 } from "../lib/random.ts";
import { type Tensor, tensor } from "../lib/tensor.ts";
import { assertClose, gpuTest, randomTensor } from "./kernels_support.ts";

/** `perBlob` points around each of `blobs` centres 10 apart in `dim` dimensions, noise 0.3. */
function blobs(blobCount: number, perBlob: number, dim: number, seed: number): Tensor {
  const rng = mulberry32(seed);
  const centres = gaussian(rng, blobCount * dim).map((v) => v * 10);
  const noise = gaussian(rng, blobCount * perBlob * dim);
  const data = new Float32Array(blobCount * perBlob * dim);
  // Interleave blobs so cluster membership is not sorted by index.
  for (let i = 0; i < blobCount * perBlob; i++) {
    const b = i % blobCount;
    for (let j = 0; j < dim; j++) {
      data[i * dim + j] = centres[b * dim + j] + 0.3 * noise[i * dim + j];
    }
  }
  return tensor([blobCount * perBlob, dim], data);
}

Deno.test("kernels: k-means++ seeding mirrors the CPU kmeans", () => {
  // With k = F every point is a seed and, after one assignment, its own cluster, so the CPU
  // result's centroids after one update are the seeds in the order they were drawn.
  const x = blobs(3, 4, 5, 7);
  const seeds = kmeansPlusPlus(x.data, 12, 5, 12, 3);
  const rows = new Set<string>();
  for (let c = 0; c < 12; c++) rows.add(Array.from(seeds.subarray(c * 5, c * 5 + 5)).join(","));
  assert.equal(rows.size, 12, "k = F seeds every point once");
  const cpu = kmeans(x, 12, { seed: 3, maxIter: 1 });
  for (let c = 0; c < 12; c++) {
    const row = Array.from(cpu.centroids.data.subarray(c * 5, c * 5 + 5));
    assert.deepEqual(row, Array.from(Float32Array.from(seeds.subarray(c * 5, c * 5 + 5))));
  }
});

gpuTest("kernels: K-means on the GPU matches the CPU reference", async (t) => {
  const device = await getDevice();
  await t.step("assign and update steps", async () => {
    const x = randomTensor([300, 24], 1);
    const cent = randomTensor([5, 24], 2);
    const assign = await assignNearestGpu(x, cent, device);
    assert.deepEqual(assign, assignNearest(x, cent));
    assertClose(
      await clusterMeansGpu(x, assign, 5, device),
      clusterMeans(x, assign, 5),
      "means",
      1e-5,
      1e-5,
    );
  });
  await t.step("whole loop on 4 well-separated blobs, 400 points, 30 dims", async () => {
    const x = blobs(4, 100, 30, 11);
    for (const seed of [0, 5]) {
      const want = kmeans(x, 4, { seed });
      const got = await kmeansGpu(x, 4, { seed }, device);
      assert.deepEqual(got.assign, want.assign, `seed ${seed}: assignment`);
      assert.equal(got.iterations, want.iterations, `seed ${seed}: iterations`);
      assertClose(got.centroids, want.centroids, `seed ${seed}: centroids`, 1e-4, 1e-5);
    }
  });
  await t.step("empty clusters are refilled like the CPU does (all points equal)", async () => {
    const same = tensor([5, 3], new Float32Array(15).fill(0.5));
    const want = kmeans(same, 3, { seed: 1 });
    const got = await kmeansGpu(same, 3, { seed: 1 }, device);
    assert.deepEqual(Array.from(want.assign), [1, 2, 0, 0, 0], "the reference refilled 1 and 2");
    assert.deepEqual(got.assign, want.assign);
    assert.equal(got.iterations, want.iterations);
    assertClose(got.centroids, want.centroids, "centroids", 1e-6, 1e-6);
  });
  await t.step("maxIter caps the loop", async () => {
    const x = blobs(4, 100, 30, 11);
    const capped = await kmeansAuto(x, 4, { seed: 2, maxIter: 1, backend: "gpu" });
    assert.equal(capped.iterations, 1);
    assert.deepEqual(capped.assign, kmeans(x, 4, { seed: 2, maxIter: 1 }).assign);
  });
});
