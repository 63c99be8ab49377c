/**
 * GPU wrapper for the backward of the attention-map accumulation (kernels in
 * `accumulate_maps_backward.wgsl.ts`): per tap it pools the map cotangent to the layer's
 * resolution, recomputes the softmax row statistics with the Σ p·g row term, builds dS for as
 * many heads at a time as one storage binding holds, and forms dq = dS·K, dk = dSᵀ·Q with the
 * tiled matmul. All taps go into one compute pass, one submit and one read-back.
 * `accumulateMapsBackwardAuto` picks this or the CPU reference `accumulateMapsBackward`.
 *
 * @module
 */
import { accumulateMapsBackward } from "../lib/attention/accumulate_backward.ts";
import { planTaps } from "../lib/attention/plan.ts";
import type { AttentionMapsGrad, AttentionTap, TapGrad } from "../lib/attention/types.ts";
import { check } from "../lib/errors.ts";
import { expectFinite, expectShape, tensor } from "../lib/tensor.ts";
import { attentionParams, encodeRowStats, uploadTap, usesVec4 } from "./accumulate_maps.ts";
import { dsWgsl, POOL_GRAD_WGSL } from "./accumulate_maps_backward.wgsl.ts";
import { TILE } from "./attention_tile.wgsl.ts";
import { deviceFor, getDevice, type KernelOptions } from "./backend.ts";
import {
  dispatch,
  grid1d,
  pipelineFor,
  type ReadRequest,
  release,
  storageBuffer,
  submitAndRead,
  uniformBuffer,
  uploadBuffer,
} from "./gpu.ts";
import { encodeMatmul } from "./matmul.ts";

/**
 * Gradients of a scalar with respect to each tap's q and k on a WebGPU device, given its
 * gradient with respect to the accumulated maps; same result as `accumulateMapsBackward`.
 */
export async function accumulateMapsBackwardGpu(
  taps: readonly AttentionTap[],
  grad: AttentionMapsGrad,
  device?: GPUDevice,
): Promise<TapGrad[]> {
  const plan = planTaps(taps);
  const selfCols = plan.selfHeads > 0 ? plan.hw : 0;
  if (grad.self) {
    expectShape(grad.self, [plan.hw, selfCols], "grad.self", "the shape of maps.self");
    expectFinite(grad.self, "grad.self");
  }
  if (grad.cross) {
    expectShape(grad.cross, [plan.hw, plan.textLength], "grad.cross", "the shape of maps.cross");
    expectFinite(grad.cross, "grad.cross");
  }
  const dev = device ?? await getDevice();
  const limit = dev.limits.maxStorageBufferBindingSize;
  const owned: GPUBuffer[] = [];
  const gSelf = grad.self && selfCols > 0 ? uploadBuffer(dev, grad.self.data) : undefined;
  const gCross = grad.cross && plan.textLength > 0 ? uploadBuffer(dev, grad.cross.data) : undefined;
  if (gSelf) owned.push(gSelf);
  if (gCross) owned.push(gCross);
  try {
    const [poolPipe] = await Promise.all([pipelineFor(dev, POOL_GRAD_WGSL)]);
    const encoder = dev.createCommandEncoder();
    const pass = encoder.beginComputePass();
    const reads: ReadRequest[] = [];
    const active: boolean[] = [];
    for (const [index, tap] of taps.entries()) {
      const g = tap.kind === "self" ? gSelf : gCross;
      active.push(g !== undefined);
      if (!g) continue;
      const t = uploadTap(dev, tap);
      owned.push(t.q, t.k);
      const pairBytes = t.nq * t.nk * 4;
      check(
        pairBytes <= limit,
        `taps[${index}]`,
        () =>
          `one head's [${t.nq}, ${t.nk}] logit gradient needs ${pairBytes} bytes, over this ` +
          `device's storage binding limit of ${limit}`,
      );
      const params = uniformBuffer(dev, attentionParams(t, plan));
      const pooled = storageBuffer(dev, pairBytes);
      owned.push(params, pooled);
      dispatch(dev, pass, poolPipe, [params, g, pooled], grid1d(Math.ceil(t.nq * t.nk / 256)));
      const stats = await encodeRowStats(dev, pass, t, params, owned, pooled);
      const dq = storageBuffer(dev, t.heads * t.nq * t.d * 4);
      const dk = storageBuffer(dev, t.heads * t.nk * t.d * 4);
      owned.push(dq, dk);
      const perBatch = Math.max(1, Math.min(t.heads, Math.floor(limit / pairBytes)));
      const ds = storageBuffer(dev, perBatch * pairBytes);
      owned.push(ds);
      const dsPipe = await pipelineFor(dev, dsWgsl(usesVec4(t)));
      for (let head0 = 0; head0 < t.heads; head0 += perBatch) {
        const batch = Math.min(perBatch, t.heads - head0);
        const batchParams = uniformBuffer(dev, attentionParams(t, plan, head0));
        owned.push(batchParams);
        dispatch(dev, pass, dsPipe, [batchParams, t.q, t.k, stats, pooled, ds], [
          Math.ceil(t.nk / TILE),
          Math.ceil(t.nq / TILE),
          batch,
        ]);
        const pair = t.nq * t.nk;
        // dq[h] = dS[h] · K[h]: [nq, nk] × [nk, d].
        await encodeMatmul(dev, pass, {
          a: ds,
          b: t.k,
          c: dq,
          m: t.nq,
          n: t.d,
          k: t.nk,
          aRow: t.nk,
          aCol: 1,
          aBatch: pair,
          bOff: head0 * t.nk * t.d,
          bBatch: t.nk * t.d,
          cOff: head0 * t.nq * t.d,
          cBatch: t.nq * t.d,
          batches: batch,
        }, owned);
        // dk[h] = dS[h]ᵀ · Q[h]: [nk, nq] × [nq, d], dSᵀ read through strides.
        await encodeMatmul(dev, pass, {
          a: ds,
          b: t.q,
          c: dk,
          m: t.nk,
          n: t.d,
          k: t.nq,
          aRow: 1,
          aCol: t.nk,
          aBatch: pair,
          bOff: head0 * t.nq * t.d,
          bBatch: t.nq * t.d,
          cOff: head0 * t.nk * t.d,
          cBatch: t.nk * t.d,
          batches: batch,
        }, owned);
      }
      reads.push({ buffer: dq, bytes: t.heads * t.nq * t.d * 4 });
      reads.push({ buffer: dk, bytes: t.heads * t.nk * t.d * 4 });
    }
    pass.end();
    const bytes = await submitAndRead(dev, encoder, reads);
    let r = 0;
    return taps.map((tap, i) => {
      if (!active[i]) return { dq: tensor(tap.q.shape), dk: tensor(tap.k.shape) };
      const dq = new Float32Array(bytes[r++], 0, tap.q.data.length);
      const dk = new Float32Array(bytes[r++], 0, tap.k.data.length);
      return { dq: tensor(tap.q.shape, dq), dk: tensor(tap.k.shape, dk) };
    });
  } finally {
    release(owned);
  }
}

/** The accumulation's backward on the chosen backend: WGSL on "gpu", the CPU reference on "cpu". */
export async function accumulateMapsBackwardAuto(
  taps: readonly AttentionTap[],
  grad: AttentionMapsGrad,
  opts: KernelOptions = {},
): Promise<TapGrad[]> {
  const device = await deviceFor(opts);
  return device
    ? accumulateMapsBackwardGpu(taps, grad, device)
    : accumulateMapsBackward(taps, grad);
}
