/**
 * GPU wrapper for ISAC Eq. 4 (`binarise_columns.wgsl.ts`): column means then the packed
 * comparison, in one pass with one read-back; `binariseColumnsAuto` picks it or the CPU
 * reference `binariseColumns`.
 *
 * @module
 */
import { binariseColumns } from "../lib/isac/binarise.ts";
import { expectFinite, expectShape, type Tensor } from "../lib/tensor.ts";
import { deviceFor, getDevice, type KernelOptions } from "./backend.ts";
import { BINARISE_WGSL, COLUMN_MEANS_WGSL } from "./binarise_columns.wgsl.ts";
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

/** Eq. 4 on a WebGPU device: row-major `[rows · cols]` bytes `1[m[i, j] > mean_i m[i, j]]`. */
export async function binariseColumnsGpu(m: Tensor, device?: GPUDevice): Promise<Uint8Array> {
  expectShape(m, [-1, -1], "m", "[HW, L]");
  expectFinite(m, "m");
  const [rows, cols] = m.shape;
  const n = rows * cols;
  if (n === 0) return new Uint8Array(0);
  const dev = device ?? await getDevice();
  const [meansPipe, binPipe] = await Promise.all([
    pipelineFor(dev, COLUMN_MEANS_WGSL),
    pipelineFor(dev, BINARISE_WGSL),
  ]);
  const words = Math.ceil(n / 4);
  const params = uniformBuffer(dev, [rows, cols, words]);
  const x = uploadBuffer(dev, m.data);
  const means = storageBuffer(dev, cols * 4);
  const bits = storageBuffer(dev, words * 4);
  try {
    const encoder = dev.createCommandEncoder();
    const pass = encoder.beginComputePass();
    dispatch(dev, pass, meansPipe, [params, x, means], grid1d(cols));
    dispatch(dev, pass, binPipe, [params, x, means, bits], grid1d(Math.ceil(words / 256)));
    pass.end();
    const [bytes] = await submitAndRead(dev, encoder, [{ buffer: bits, bytes: words * 4 }]);
    return new Uint8Array(bytes, 0, n);
  } finally {
    release([params, x, means, bits]);
  }
}

/** Eq. 4 on the chosen backend: WGSL on "gpu", `binariseColumns` on "cpu". */
export async function binariseColumnsAuto(
  m: Tensor,
  opts: KernelOptions = {},
): Promise<Uint8Array> {
  const device = await deviceFor(opts);
  return device ? binariseColumnsGpu(m, device) : binariseColumns(m);
}
