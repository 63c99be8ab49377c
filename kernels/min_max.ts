/**
 * GPU wrapper for Eq. 13 min-max normalisation (`min_max.wgsl.ts`): upload, three dispatches in
 * one pass, one read-back; `minMaxAuto` picks it or the CPU reference `minMax`.
 *
 * @module
 */
import { minMax } from "../lib/attention/normalise.ts";
import { expectFinite, type Tensor, tensor } from "../lib/tensor.ts";
import { deviceFor, getDevice, type KernelOptions } from "./backend.ts";
import {
  dispatch,
  pipelineFor,
  release,
  storageBuffer,
  submitAndRead,
  uniformBuffer,
  uploadBuffer,
} from "./gpu.ts";
import { MIN_MAX_APPLY_WGSL, MIN_MAX_FINAL_WGSL, MIN_MAX_PARTIAL_WGSL } from "./min_max.wgsl.ts";

/** Most workgroups the partial pass uses (each folds a grid-strided share of the elements). */
const MAX_GROUPS = 1024;

/** Eq. 13 `(t − min t) / (max t − min t)` on a WebGPU device; a constant tensor gives zeros. */
export async function minMaxGpu(t: Tensor, device?: GPUDevice): Promise<Tensor> {
  expectFinite(t, "t");
  const n = t.data.length;
  if (n === 0) return tensor(t.shape);
  const dev = device ?? await getDevice();
  const [partialPipe, finalPipe, applyPipe] = await Promise.all([
    pipelineFor(dev, MIN_MAX_PARTIAL_WGSL),
    pipelineFor(dev, MIN_MAX_FINAL_WGSL),
    pipelineFor(dev, MIN_MAX_APPLY_WGSL),
  ]);
  const groups = Math.min(MAX_GROUPS, Math.ceil(n / 256));
  const params = uniformBuffer(dev, [n, groups]);
  const x = uploadBuffer(dev, t.data);
  const partial = storageBuffer(dev, groups * 8);
  const range = storageBuffer(dev, 8);
  const out = storageBuffer(dev, n * 4);
  try {
    const encoder = dev.createCommandEncoder();
    const pass = encoder.beginComputePass();
    dispatch(dev, pass, partialPipe, [params, x, partial], [groups, 1, 1]);
    dispatch(dev, pass, finalPipe, [params, partial, range], [1, 1, 1]);
    dispatch(dev, pass, applyPipe, [params, x, range, out], [groups, 1, 1]);
    pass.end();
    const [bytes] = await submitAndRead(dev, encoder, [{ buffer: out, bytes: n * 4 }]);
    return tensor(t.shape, new Float32Array(bytes, 0, n));
  } finally {
    release([params, x, partial, range, out]);
  }
}

/** Eq. 13 on the chosen backend: the WGSL reduction on "gpu", `minMax` on "cpu". */
export async function minMaxAuto(t: Tensor, opts: KernelOptions = {}): Promise<Tensor> {
  const device = await deviceFor(opts);
  return device ? minMaxGpu(t, device) : minMax(t);
}
