/**
 * GPU wrapper for ISAC Eq. 1–2 (see `accumulate_maps.wgsl.ts`): uploads every tap's Q and K,
 * records three dispatches per tap (row statistics by column tile, their merge, the
 * accumulation) into one compute pass with both output maps resident on the device, submits
 * once and reads both maps back once. `accumulateMapsAuto` picks this on "gpu"; on "cpu",
 * onnxruntime's CPU kernels (`accumulateMapsOrt`) or, for small taps, the TypeScript reference
 * `accumulateMaps`. All give the same maps.
 *
 * @module
 */
import { accumulateMaps } from "../lib/attention/accumulate.ts";
import { accumulateMapsOrt } from "../lib/attention/accumulate_ort.ts";
import { planTaps, type TapPlan } from "../lib/attention/plan.ts";
import type { AttentionMaps, AttentionTap } from "../lib/attention/types.ts";
import { check } from "../lib/errors.ts";
import { tensor } from "../lib/tensor.ts";
import {
  accumulateWgsl,
  STATS_COMBINE_WGSL,
  STATS_ROWS_PER_GROUP,
  statsPartialWgsl,
} from "./accumulate_maps.wgsl.ts";
import { TILE } from "./attention_tile.wgsl.ts";
import { deviceFor, getDevice, type KernelOptions } from "./backend.ts";
import {
  dispatch,
  f32Bits,
  type GpuTensor,
  grid1d,
  pipelineFor,
  release,
  storageBuffer,
  submitAndRead,
  uniformBuffer,
  uploadBuffer,
} from "./gpu.ts";

/** One tap uploaded to the device, with the layout numbers its kernels need. */
export interface GpuTap {
  /** The tap it came from. */
  readonly tap: AttentionTap;
  /** Queries, `[heads, nq, d]`. */
  readonly q: GPUBuffer;
  /** Keys, `[heads, nk, d]`. */
  readonly k: GPUBuffer;
  /** Heads. */
  readonly heads: number;
  /** Query rows (`h·w`). */
  readonly nq: number;
  /** Key rows (`h·w` or `L`). */
  readonly nk: number;
  /** Head dimension. */
  readonly d: number;
}

/** Uploads a tap's Q and K. */
export function uploadTap(device: GPUDevice, tap: AttentionTap): GpuTap {
  const [heads, nq, d] = tap.q.shape;
  return {
    tap,
    q: uploadBuffer(device, tap.q.data),
    k: uploadBuffer(device, tap.k.data),
    heads,
    nq,
    nk: tap.k.shape[1],
    d,
  };
}

/**
 * The 16-word uniform block of the attention kernels for one tap of a plan: `weight` is the
 * factor each probability gets in its map (1 / (heads of its kind · δy·δx) for self taps,
 * 1 / heads of its kind for cross taps), `head0` the first head of a batch of heads.
 */
export function attentionParams(t: GpuTap, plan: TapPlan, head0 = 0): number[] {
  const [h, w] = t.tap.size;
  const [bigH, bigW] = plan.size;
  const dy = bigH / h;
  const dx = bigW / w;
  const isSelf = t.tap.kind === "self";
  const weight = isSelf ? 1 / (plan.selfHeads * dy * dx) : 1 / plan.crossHeads;
  return [
    t.nq,
    t.nk,
    t.d,
    t.heads,
    f32Bits(1 / Math.sqrt(t.d)),
    f32Bits(weight),
    h,
    w,
    dy,
    dx,
    bigH,
    bigW,
    isSelf ? plan.hw : plan.textLength,
    isSelf ? 1 : 0,
    head0,
    Math.ceil(t.nk / TILE),
  ];
}

/** Whether a tap's head dimension allows the four-wide loads. */
export function usesVec4(t: GpuTap): boolean {
  return t.d % 4 === 0;
}

/**
 * Records the row statistics of every head of a tap into `pass` and returns the buffer
 * `[heads, nq] × (max, 1/Σexp, Σ p·g, 0)`; `g` (the pooled map gradient `[nq, nk]`) adds the
 * softmax backward's row term. `params` is the tap's uniform block.
 */
export async function encodeRowStats(
  device: GPUDevice,
  pass: GPUComputePassEncoder,
  t: GpuTap,
  params: GPUBuffer,
  owned: GPUBuffer[],
  g?: GPUBuffer,
): Promise<GPUBuffer> {
  const [partialPipe, combinePipe] = await Promise.all([
    pipelineFor(device, statsPartialWgsl(usesVec4(t), g !== undefined)),
    pipelineFor(device, STATS_COMBINE_WGSL),
  ]);
  const colTiles = Math.ceil(t.nk / TILE);
  const partial = storageBuffer(device, t.heads * t.nq * colTiles * 16);
  const stats = storageBuffer(device, t.heads * t.nq * 16);
  owned.push(partial, stats);
  const inputs = g ? [params, t.q, t.k, partial, g] : [params, t.q, t.k, partial];
  dispatch(device, pass, partialPipe, inputs, [
    colTiles,
    Math.ceil(t.nq / STATS_ROWS_PER_GROUP),
    t.heads,
  ]);
  dispatch(
    device,
    pass,
    combinePipe,
    [params, partial, stats],
    grid1d(Math.ceil(t.heads * t.nq / 256)),
  );
  return stats;
}

/** Maps left on the device by {@link encodeAccumulateMaps}. */
export interface GpuAttentionMaps {
  /** `[HW, HW]` (or `[HW, 0]` without self taps). */
  readonly self: GpuTensor;
  /** `[HW, L]` (or `[HW, 0]` without cross taps). */
  readonly cross: GpuTensor;
  /** `[H, W]`. */
  readonly size: readonly [number, number];
}

/**
 * Records the whole accumulation into `pass` (taps already validated into `plan` and uploaded)
 * and returns the resident output maps; nothing is submitted. Every buffer it creates, the maps
 * included, is added to `owned` for the caller to release.
 */
export async function encodeAccumulateMaps(
  device: GPUDevice,
  pass: GPUComputePassEncoder,
  taps: readonly GpuTap[],
  plan: TapPlan,
  owned: GPUBuffer[],
): Promise<GpuAttentionMaps> {
  const selfCols = plan.selfHeads > 0 ? plan.hw : 0;
  const limit = device.limits.maxStorageBufferBindingSize;
  check(
    plan.hw * Math.max(selfCols, plan.textLength) * 4 <= limit,
    "taps",
    () =>
      `the [${plan.hw}, ${selfCols}] self map needs ${plan.hw * selfCols * 4} bytes, over this ` +
      `device's storage binding limit of ${limit}`,
  );
  // Fresh buffers are zero-filled, which is the accumulation's starting value.
  const self = storageBuffer(device, plan.hw * selfCols * 4);
  const cross = storageBuffer(device, plan.hw * plan.textLength * 4);
  owned.push(self, cross);
  for (const t of taps) {
    const params = uniformBuffer(device, attentionParams(t, plan));
    owned.push(params);
    const stats = await encodeRowStats(device, pass, t, params, owned);
    const accPipe = await pipelineFor(device, accumulateWgsl(usesVec4(t)));
    const out = t.tap.kind === "self" ? self : cross;
    dispatch(device, pass, accPipe, [params, t.q, t.k, stats, out], [
      Math.ceil(t.nk / TILE),
      Math.ceil(t.nq / TILE),
      1,
    ]);
  }
  return {
    self: { shape: [plan.hw, selfCols], buffer: self },
    cross: { shape: [plan.hw, plan.textLength], buffer: cross },
    size: plan.size,
  };
}

/** ISAC Eq. 1–2 on a WebGPU device (default: attnkit's device); same result as `accumulateMaps`. */
export async function accumulateMapsGpu(
  taps: readonly AttentionTap[],
  device?: GPUDevice,
): Promise<AttentionMaps> {
  const plan = planTaps(taps);
  const dev = device ?? await getDevice();
  const uploaded = taps.map((tap) => uploadTap(dev, tap));
  const owned = uploaded.flatMap((t) => [t.q, t.k]);
  const encoder = dev.createCommandEncoder();
  const pass = encoder.beginComputePass();
  try {
    const maps = await encodeAccumulateMaps(dev, pass, uploaded, plan, owned);
    pass.end();
    const selfBytes = plan.hw * maps.self.shape[1] * 4;
    const crossBytes = plan.hw * plan.textLength * 4;
    const [self, cross] = await submitAndRead(dev, encoder, [
      { buffer: maps.self.buffer, bytes: selfBytes },
      { buffer: maps.cross.buffer, bytes: crossBytes },
    ]);
    return {
      self: tensor(maps.self.shape, new Float32Array(self, 0, selfBytes / 4)),
      cross: tensor(maps.cross.shape, new Float32Array(cross, 0, crossBytes / 4)),
      size: [plan.size[0], plan.size[1]],
    };
  } finally {
    release(owned);
  }
}

/** Below this many multiply-adds (Σ heads·Nq·Nk·d) the CPU maps stay in TypeScript. */
const ORT_MIN_WORK = 2 ** 20;

/**
 * ISAC Eq. 1–2 on the chosen backend: the WGSL kernels on "gpu"; on "cpu", onnxruntime's CPU
 * kernels a row block at a time (`accumulateMapsOrt`) for taps big enough to pay for a session
 * call, the TypeScript reference `accumulateMaps` for smaller ones. All give the same maps.
 */
export async function accumulateMapsAuto(
  taps: readonly AttentionTap[],
  opts: KernelOptions = {},
): Promise<AttentionMaps> {
  const device = await deviceFor(opts);
  if (device) return accumulateMapsGpu(taps, device);
  let work = 0;
  for (const t of taps ?? []) work += (t?.q?.data?.length ?? 0) * (t?.k?.shape?.[1] ?? 0);
  return work >= ORT_MIN_WORK ? accumulateMapsOrt(taps) : accumulateMaps(taps);
}
