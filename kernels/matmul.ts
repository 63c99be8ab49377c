/**
 * Recording helper for the tiled matrix product in `matmul.wgsl.ts`, and a whole-call
 * `matmulGpu` (upload, one dispatch, one read-back) used by the propagation and its tests.
 *
 * @module
 */
import { check } from "../lib/errors.ts";
import { expectShape, type Tensor, tensor } from "../lib/tensor.ts";
import { getDevice } from "./backend.ts";
import {
  dispatch,
  f32Bits,
  pipelineFor,
  release,
  storageBuffer,
  submitAndRead,
  uniformBuffer,
  uploadBuffer,
} from "./gpu.ts";
import { MATMUL_WGSL } from "./matmul.wgsl.ts";

/** One batched product `C[z] = α · A[z] · B[z]` over device buffers (offsets in elements). */
export interface MatmulJob {
  /** Buffer holding A (read through `aRow`, `aCol` strides). */
  readonly a: GPUBuffer;
  /** Buffer holding B, row-major `[k, n]`. */
  readonly b: GPUBuffer;
  /** Buffer receiving C, row-major `[m, n]` (overwritten). */
  readonly c: GPUBuffer;
  /** Rows of C. */
  readonly m: number;
  /** Columns of C. */
  readonly n: number;
  /** Inner dimension. */
  readonly k: number;
  /** Element stride between rows of A (`k` for row-major A, 1 for Aᵀ of a row-major `[k, m]`). */
  readonly aRow: number;
  /** Element stride between columns of A. */
  readonly aCol: number;
  /** Offsets of the first batch and per-batch strides (default 0). */
  readonly aOff?: number;
  /** Element stride between batches of A. */
  readonly aBatch?: number;
  /** Offset of B. */
  readonly bOff?: number;
  /** Element stride between batches of B. */
  readonly bBatch?: number;
  /** Offset of C. */
  readonly cOff?: number;
  /** Element stride between batches of C. */
  readonly cBatch?: number;
  /** How many batches (default 1). */
  readonly batches?: number;
  /** Scale of the product (default 1). */
  readonly alpha?: number;
}

/** Records one batched tiled product into `pass`; its uniform block is added to `owned`. */
export async function encodeMatmul(
  device: GPUDevice,
  pass: GPUComputePassEncoder,
  job: MatmulJob,
  owned: GPUBuffer[],
): Promise<void> {
  const pipeline = await pipelineFor(device, MATMUL_WGSL);
  const params = uniformBuffer(device, [
    job.m,
    job.n,
    job.k,
    job.aOff ?? 0,
    job.aRow,
    job.aCol,
    job.aBatch ?? 0,
    job.bOff ?? 0,
    job.bBatch ?? 0,
    job.cOff ?? 0,
    job.cBatch ?? 0,
    f32Bits(job.alpha ?? 1),
  ]);
  owned.push(params);
  const batches = job.batches ?? 1;
  check(batches <= 65535, "batches", `at most 65535 batches per product, got ${batches}`);
  dispatch(device, pass, pipeline, [params, job.a, job.b, job.c], [
    Math.ceil(job.n / 64),
    Math.ceil(job.m / 64),
    batches,
  ]);
}

/** `a · b` for row-major `[m, k]` and `[k, n]` tensors on a WebGPU device. */
export async function matmulGpu(a: Tensor, b: Tensor, device?: GPUDevice): Promise<Tensor> {
  expectShape(a, [-1, -1], "a", "[m, k]");
  const [m, k] = a.shape;
  expectShape(b, [k, -1], "b", `[k, n] with k = ${k} from a`);
  const n = b.shape[1];
  const dev = device ?? await getDevice();
  const limit = dev.limits.maxStorageBufferBindingSize;
  for (const [name, bytes] of [["a", m * k * 4], ["b", k * n * 4], ["a · b", m * n * 4]] as const) {
    check(bytes <= limit, name, `needs ${bytes} bytes, over the device's binding limit ${limit}`);
  }
  const owned = [
    uploadBuffer(dev, a.data),
    uploadBuffer(dev, b.data),
    storageBuffer(dev, m * n * 4),
  ];
  try {
    const encoder = dev.createCommandEncoder();
    const pass = encoder.beginComputePass();
    await encodeMatmul(dev, pass, {
      a: owned[0],
      b: owned[1],
      c: owned[2],
      m,
      n,
      k,
      aRow: k,
      aCol: 1,
    }, owned);
    pass.end();
    const [out] = await submitAndRead(dev, encoder, [{ buffer: owned[2], bytes: m * n * 4 }]);
    return tensor([m, n], new Float32Array(out, 0, m * n));
  } finally {
    release(owned);
  }
}
