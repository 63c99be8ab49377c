/**
 * ISAC Eq. 7–8 for every pair of N soft masks at once: the GPU wrapper of `mpo.wgsl.ts` (one
 * dispatch, one read-back for all N(N−1)/2 pairs) and `mpoPairsAuto`, which picks it or the
 * CPU reference `mpo` pair by pair.
 *
 * @module
 */
import { check } from "../lib/errors.ts";
import { mpo } from "../lib/isac/mpo.ts";
import { expectFinite, expectShape, type Tensor } from "../lib/tensor.ts";
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
import { MPO_PAIRS_WGSL } from "./mpo.wgsl.ts";

/** MPO of every pair (i < j) of masks, pairs in row-major order (0,1), (0,2), …, (1,2), …. */
export interface MpoPairs {
  /** The mask indices of each pair. */
  readonly pairs: ReadonlyArray<readonly [number, number]>;
  /** `max_p a[p]·b[p]` per pair. */
  readonly value: Float64Array;
  /** The first pixel attaining it, per pair. */
  readonly pixel: Int32Array;
}

/** The pairs (i, j), i < j < n, in row-major order. */
export function maskPairs(n: number): Array<[number, number]> {
  const pairs: Array<[number, number]> = [];
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) pairs.push([i, j]);
  return pairs;
}

function checkMasks(masks: Tensor): [number, number] {
  expectShape(masks, [-1, -1], "masks", "[N, F]: N soft masks over F pixels");
  const [n, f] = masks.shape;
  check(n >= 2, "masks", `expected at least two masks to pair up, got ${n}`);
  check(f > 0, "masks", "expected masks over at least one pixel");
  return [n, f];
}

/** Eq. 7 for all pairs of the rows of `masks` `[N, F]` on the CPU (the reference). */
export function mpoPairs(masks: Tensor): MpoPairs {
  const [n, f] = checkMasks(masks);
  const pairs = maskPairs(n);
  const value = new Float64Array(pairs.length);
  const pixel = new Int32Array(pairs.length);
  pairs.forEach(([i, j], p) => {
    const r = mpo(masks.data.subarray(i * f, (i + 1) * f), masks.data.subarray(j * f, (j + 1) * f));
    value[p] = r.value;
    pixel[p] = r.pixel;
  });
  return { pairs, value, pixel };
}

/** Eq. 7 for all pairs of the rows of `masks` `[N, F]` on a WebGPU device. */
export async function mpoPairsGpu(masks: Tensor, device?: GPUDevice): Promise<MpoPairs> {
  const [n, f] = checkMasks(masks);
  expectFinite(masks, "masks");
  const pairs = maskPairs(n);
  const dev = device ?? await getDevice();
  const pipeline = await pipelineFor(dev, MPO_PAIRS_WGSL);
  const params = uniformBuffer(dev, [pairs.length, f]);
  const data = uploadBuffer(dev, masks.data);
  const table = uploadBuffer(dev, Uint32Array.from(pairs.flat()));
  const result = storageBuffer(dev, pairs.length * 8);
  try {
    const encoder = dev.createCommandEncoder();
    const pass = encoder.beginComputePass();
    dispatch(dev, pass, pipeline, [params, data, table, result], grid1d(pairs.length));
    pass.end();
    const [bytes] = await submitAndRead(dev, encoder, [{
      buffer: result,
      bytes: pairs.length * 8,
    }]);
    const words = new Uint32Array(bytes, 0, pairs.length * 2);
    const floats = new Float32Array(bytes, 0, pairs.length * 2);
    const value = new Float64Array(pairs.length);
    const pixel = new Int32Array(pairs.length);
    for (let p = 0; p < pairs.length; p++) {
      value[p] = floats[2 * p];
      pixel[p] = words[2 * p + 1];
    }
    return { pairs, value, pixel };
  } finally {
    release([params, data, table, result]);
  }
}

/** Eq. 7 for all pairs on the chosen backend: WGSL on "gpu", {@link mpoPairs} on "cpu". */
export async function mpoPairsAuto(masks: Tensor, opts: KernelOptions = {}): Promise<MpoPairs> {
  const device = await deviceFor(opts);
  return device ? mpoPairsGpu(masks, device) : mpoPairs(masks);
}
