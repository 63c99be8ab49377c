/**
 * The small amount of WebGPU plumbing every kernel wrapper shares: pipelines cached per device
 * by WGSL source (with compile errors surfaced), buffer upload, per-dispatch uniform blocks,
 * dispatch grids that respect the 65535-workgroups-per-dimension limit, and one batched
 * read-back per kernel chain (each `mapAsync` round trip costs milliseconds).
 *
 * @module
 */
import { AttnkitError } from "../lib/errors.ts";

/** A float32 tensor living in a GPU storage buffer (row-major, like {@link Tensor}). */
export interface GpuTensor {
  /** Sizes of each axis, outermost first. */
  readonly shape: readonly number[];
  /** The storage buffer holding the values (it may be larger than the tensor). */
  readonly buffer: GPUBuffer;
}

const pipelines = new WeakMap<GPUDevice, Map<string, Promise<GPUComputePipeline>>>();

/** Compiles (once per device and source) a compute pipeline whose entry point is `main`. */
export function pipelineFor(device: GPUDevice, source: string): Promise<GPUComputePipeline> {
  let cache = pipelines.get(device);
  if (!cache) {
    cache = new Map();
    pipelines.set(device, cache);
  }
  let pending = cache.get(source);
  if (!pending) {
    pending = compile(device, source);
    cache.set(source, pending);
    const map = cache;
    pending.catch(() => map.delete(source));
  }
  return pending;
}

async function compile(device: GPUDevice, source: string): Promise<GPUComputePipeline> {
  device.pushErrorScope("validation");
  const module = device.createShaderModule({ code: source });
  const pipeline = device.createComputePipeline({
    layout: "auto",
    compute: { module, entryPoint: "main" },
  });
  const error = await device.popErrorScope();
  if (error) {
    const info = await module.getCompilationInfo();
    const messages = info.messages.map((m) => `${m.lineNum}:${m.linePos} ${m.message}`).join("\n");
    const head = source.split("\n").slice(0, 3).join(" ").slice(0, 120);
    throw new AttnkitError(
      "kernel",
      `WGSL pipeline failed to build (${head}…): ${error.message}\n${messages}`,
    );
  }
  return pipeline;
}

/** Bytes rounded up to a multiple of 4 (WebGPU buffer sizes and copies need it). */
export function align4(bytes: number): number {
  return Math.max(4, Math.ceil(bytes / 4) * 4);
}

/** Uploads `data` into a new storage buffer (also a copy source and destination). */
export function uploadBuffer(
  device: GPUDevice,
  data: Float32Array | Uint32Array | Int32Array,
): GPUBuffer {
  const buffer = device.createBuffer({
    size: align4(data.byteLength),
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    mappedAtCreation: true,
  });
  const view = data instanceof Float32Array
    ? new Float32Array(buffer.getMappedRange())
    : data instanceof Int32Array
    ? new Int32Array(buffer.getMappedRange())
    : new Uint32Array(buffer.getMappedRange());
  view.set(data);
  buffer.unmap();
  return buffer;
}

/** A new zero-filled storage buffer of at least `bytes` bytes. */
export function storageBuffer(device: GPUDevice, bytes: number): GPUBuffer {
  return device.createBuffer({
    size: align4(bytes),
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
  });
}

/** The u32 bit pattern of an f32, for packing floats into a u32 uniform block. */
export function f32Bits(x: number): number {
  const f = new Float32Array([x]);
  return new Uint32Array(f.buffer)[0];
}

/**
 * A uniform buffer holding `words` (u32 values; floats via {@link f32Bits}), padded to 16
 * bytes. Each dispatch gets its own block: `queue.writeBuffer` would land before the whole
 * submit, so one block rewritten between dispatches would be seen with its last value.
 */
export function uniformBuffer(device: GPUDevice, words: readonly number[]): GPUBuffer {
  const padded = new Uint32Array(Math.max(4, Math.ceil(words.length / 4) * 4));
  for (let i = 0; i < words.length; i++) padded[i] = words[i] >>> 0;
  const buffer = device.createBuffer({
    size: padded.byteLength,
    usage: GPUBufferUsage.UNIFORM,
    mappedAtCreation: true,
  });
  new Uint32Array(buffer.getMappedRange()).set(padded);
  buffer.unmap();
  return buffer;
}

/** Workgroup grid for `groups` workgroups in 1-D, folded into 2-D above the per-axis limit. */
export function grid1d(groups: number): [number, number, number] {
  const max = 65535;
  if (groups <= max) return [Math.max(1, groups), 1, 1];
  const y = Math.ceil(groups / max);
  return [Math.ceil(groups / y), y, 1];
}

/** Records one compute dispatch with a bind group made of `buffers` at bindings 0, 1, 2, …. */
export function dispatch(
  device: GPUDevice,
  pass: GPUComputePassEncoder,
  pipeline: GPUComputePipeline,
  buffers: readonly GPUBuffer[],
  groups: readonly [number, number, number],
): void {
  const bindGroup = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
  });
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup);
  pass.dispatchWorkgroups(groups[0], groups[1], groups[2]);
}

/** One buffer region to read back. */
export interface ReadRequest {
  /** The buffer (needs COPY_SRC usage). */
  readonly buffer: GPUBuffer;
  /** How many bytes to read from its start. */
  readonly bytes: number;
}

/**
 * Appends copies of every requested region into fresh staging buffers to `encoder`, submits it,
 * and resolves to the bytes of each region, so a whole kernel chain costs one submit and one
 * round trip.
 */
export async function submitAndRead(
  device: GPUDevice,
  encoder: GPUCommandEncoder,
  requests: readonly ReadRequest[],
): Promise<ArrayBuffer[]> {
  const staging = requests.map((r) => {
    const size = align4(r.bytes);
    const buffer = device.createBuffer({
      size,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    encoder.copyBufferToBuffer(r.buffer, 0, buffer, 0, size);
    return buffer;
  });
  device.queue.submit([encoder.finish()]);
  await Promise.all(staging.map((b) => b.mapAsync(GPUMapMode.READ)));
  const out = staging.map((b, i) => b.getMappedRange(0, align4(requests[i].bytes)).slice(0));
  for (const b of staging) {
    b.unmap();
    b.destroy();
  }
  return out;
}

/** Destroys buffers once the work already submitted has finished with them. */
export function release(buffers: Iterable<GPUBuffer>): void {
  for (const b of buffers) b.destroy();
}
