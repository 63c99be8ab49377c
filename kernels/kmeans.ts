/**
 * K-means for ISAC's instance clustering with the heavy steps on the GPU (`kmeans.wgsl.ts`):
 * k-means++ seeding and the loop stay on the host, and each Lloyd iteration is one submit
 * (assign, then update into the other centroid buffer) plus a read-back of the changed-point
 * count and the cluster sizes. The rules mirror `lib/isac/kmeans.ts` — the same mulberry32
 * seeding, tie rules, stop rule and empty-cluster refill — so on well-separated data the
 * result equals the CPU `kmeans` for the same seed (distances are float32 here, float64 there).
 * `kmeansAuto` picks this or the CPU reference.
 *
 * @module
 */
import { check } from "../lib/errors.ts";
import {
  checkKmeansArgs,
  clusterMeans,
  kmeans,
  type KMeansOptions,
  type KMeansResult,
  seedCentres,
} from "../lib/isac/kmeans.ts";
import { expectShape, type Tensor, tensor } from "../lib/tensor.ts";
import { deviceFor, getDevice, type KernelOptions } from "./backend.ts";
import {
  dispatch,
  grid1d,
  pipelineFor,
  release,
  storageBuffer,
  submitAndRead,
  uniformBuffer,
  uploadBuffer,
} from "./gpu.ts";
import { KMEANS_ASSIGN_WGSL, KMEANS_UPDATE_WGSL } from "./kmeans.wgsl.ts";

/** k-means++ seeding, the same function as the CPU reference's (so both start alike). */
export const kmeansPlusPlus: typeof seedCentres = seedCentres;

/**
 * The reference's empty-cluster rule on host copies: each empty cluster takes the point
 * farthest from its centroid among clusters with at least two members (lowest index on ties),
 * then centroids and sizes are recomputed. Mutates `assign`, `dist` and `counts`.
 */
function refillEmpty(
  features: Tensor,
  k: number,
  assign: Int32Array,
  dist: Float32Array,
  counts: Uint32Array,
): Float32Array {
  let cent = clusterMeans(features, assign, k).data;
  for (let c = 0; c < k; c++) {
    if (counts[c] > 0) continue;
    let far = -1;
    for (let i = 0; i < assign.length; i++) {
      if (counts[assign[i]] < 2) continue;
      if (far < 0 || dist[i] > dist[far]) far = i;
    }
    assign[far] = c;
    dist[far] = 0;
    counts.fill(0);
    for (const a of assign) counts[a]++;
    cent = clusterMeans(features, assign, k).data;
  }
  return cent;
}

interface KMeansPipes {
  assign: GPUComputePipeline;
  update: GPUComputePipeline;
}

function pipes(device: GPUDevice): Promise<KMeansPipes> {
  return Promise.all([
    pipelineFor(device, KMEANS_ASSIGN_WGSL),
    pipelineFor(device, KMEANS_UPDATE_WGSL),
  ]).then(([assign, update]) => ({ assign, update }));
}

/** K-means with GPU assign/update steps; same contract and result as the CPU `kmeans`. */
export async function kmeansGpu(
  features: Tensor,
  k: number,
  opts: KMeansOptions = {},
  device?: GPUDevice,
): Promise<KMeansResult> {
  const [n, dim, seed, maxIter] = checkKmeansArgs(features, k, opts);
  const dev = device ?? await getDevice();
  const p = await pipes(dev);
  const params = uniformBuffer(dev, [n, dim, k]);
  const x = uploadBuffer(dev, features.data);
  let cur = uploadBuffer(dev, Float32Array.from(kmeansPlusPlus(features.data, n, dim, k, seed)));
  let next = storageBuffer(dev, k * dim * 4);
  const assign = uploadBuffer(dev, new Int32Array(n).fill(-1));
  const dist = storageBuffer(dev, n * 4);
  const changed = storageBuffer(dev, 4);
  const counts = storageBuffer(dev, k * 4);
  const assignGroups = grid1d(Math.ceil(n / 64));
  const updateGroups = grid1d(Math.ceil(k * dim / 64));
  try {
    let iterations = 0;
    for (;;) {
      iterations++;
      const encoder = dev.createCommandEncoder();
      encoder.clearBuffer(changed);
      const pass = encoder.beginComputePass();
      dispatch(dev, pass, p.assign, [params, x, cur, assign, dist, changed], assignGroups);
      dispatch(dev, pass, p.update, [params, x, assign, next, counts], updateGroups);
      pass.end();
      const [changedBytes, countBytes] = await submitAndRead(dev, encoder, [
        { buffer: changed, bytes: 4 },
        { buffer: counts, bytes: k * 4 },
      ]);
      if (new Uint32Array(changedBytes)[0] === 0) break;
      const sizes = new Uint32Array(countBytes, 0, k);
      if (sizes.includes(0)) {
        const [a, d] = await submitAndRead(dev, dev.createCommandEncoder(), [
          { buffer: assign, bytes: n * 4 },
          { buffer: dist, bytes: n * 4 },
        ]);
        const hostAssign = new Int32Array(a, 0, n);
        const hostDist = new Float32Array(d, 0, n);
        const cent = refillEmpty(features, k, hostAssign, hostDist, sizes);
        dev.queue.writeBuffer(next, 0, new Float32Array(cent));
        dev.queue.writeBuffer(assign, 0, new Int32Array(hostAssign));
        dev.queue.writeBuffer(dist, 0, new Float32Array(hostDist));
      }
      [cur, next] = [next, cur];
      if (iterations >= maxIter) break;
    }
    const [a, c] = await submitAndRead(dev, dev.createCommandEncoder(), [
      { buffer: assign, bytes: n * 4 },
      { buffer: cur, bytes: k * dim * 4 },
    ]);
    return {
      assign: new Int32Array(a, 0, n),
      centroids: tensor([k, dim], new Float32Array(c, 0, k * dim)),
      iterations,
    };
  } finally {
    release([params, x, cur, next, assign, dist, changed, counts]);
  }
}

/** One assignment step on the GPU: nearest centroid per row, ties to the lowest index. */
export async function assignNearestGpu(
  features: Tensor,
  centroids: Tensor,
  device?: GPUDevice,
): Promise<Int32Array> {
  expectShape(features, [-1, -1], "features", "[F, D]");
  const [n, dim] = features.shape;
  expectShape(centroids, [-1, dim], "centroids", `[k, D] with D = ${dim} from features`);
  const k = centroids.shape[0];
  check(k >= 1, "centroids", "expected at least one centroid");
  const dev = device ?? await getDevice();
  const p = await pipes(dev);
  const bufs = [
    uniformBuffer(dev, [n, dim, k]),
    uploadBuffer(dev, features.data),
    uploadBuffer(dev, centroids.data),
    uploadBuffer(dev, new Int32Array(n).fill(-1)),
    storageBuffer(dev, n * 4),
    storageBuffer(dev, 4),
  ];
  try {
    const encoder = dev.createCommandEncoder();
    const pass = encoder.beginComputePass();
    dispatch(dev, pass, p.assign, bufs, grid1d(Math.ceil(n / 64)));
    pass.end();
    const [a] = await submitAndRead(dev, encoder, [{ buffer: bufs[3], bytes: n * 4 }]);
    return new Int32Array(a, 0, n);
  } finally {
    release(bufs);
  }
}

/** One update step on the GPU: the mean row of each cluster (zeros for an empty one). */
export async function clusterMeansGpu(
  features: Tensor,
  assign: Int32Array,
  k: number,
  device?: GPUDevice,
): Promise<Tensor> {
  expectShape(features, [-1, -1], "features", "[F, D]");
  const [n, dim] = features.shape;
  check(Number.isInteger(k) && k >= 1, "k", `expected a positive integer, got ${k}`);
  check(assign.length === n, "assign", () => `expected ${n} cluster indices, got ${assign.length}`);
  check(assign.every((a) => a >= 0 && a < k), "assign", `expected clusters in 0 … ${k - 1}`);
  const dev = device ?? await getDevice();
  const p = await pipes(dev);
  const bufs = [
    uniformBuffer(dev, [n, dim, k]),
    uploadBuffer(dev, features.data),
    uploadBuffer(dev, assign),
    storageBuffer(dev, k * dim * 4),
    storageBuffer(dev, k * 4),
  ];
  try {
    const encoder = dev.createCommandEncoder();
    const pass = encoder.beginComputePass();
    dispatch(dev, pass, p.update, bufs, grid1d(Math.ceil(k * dim / 64)));
    pass.end();
    const [c] = await submitAndRead(dev, encoder, [{ buffer: bufs[3], bytes: k * dim * 4 }]);
    return tensor([k, dim], new Float32Array(c, 0, k * dim));
  } finally {
    release(bufs);
  }
}

/** K-means on the chosen backend: GPU steps on "gpu", the CPU `kmeans` on "cpu". */
export async function kmeansAuto(
  features: Tensor,
  k: number,
  opts: KMeansOptions & KernelOptions = {},
): Promise<KMeansResult> {
  const device = await deviceFor(opts);
  return device ? kmeansGpu(features, k, opts, device) : kmeans(features, k, opts);
}
