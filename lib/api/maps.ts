/**
 * ISAC's attention maths on accumulated maps (Eq. 1–13): accumulation of self/cross maps from
 * taps and its backward, min-max normalisation, propagation, binarisation, K-means instances,
 * MPO/IoU/KL/MAE similarity, the ISAC loss, the map-level losses of the other methods, and the
 * kernels (WGSL on a real GPU, the same maths on the CPU; the backend is picked once).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { maps, tensor } from "@attnkit/attnkit";
 * const q = tensor([1, 4, 2], [1, 0, 0, 1, 1, 1, 0, 0]);
 * const m = maps.accumulateMaps([{ kind: "self", q, k: q, size: [2, 2] }]);
 * assert(m.self.shape.join() === "4,4");
 * ```
 *
 * @module
 */
export * from "../attention/mod.ts";
export * from "../isac/mod.ts";
export {
  argMax,
  attendExciteLoss,
  boxLoss,
  boxMask,
  exciteOnMaps,
  gsnLoss,
  iouLoss,
  smooth2d,
  sumLosses,
  tokenMaps,
} from "../losses/mod.ts";
export type {
  AttendExciteOptions,
  AttendExciteResult,
  Box,
  BoxLossOptions,
  BoxLossResult,
  GsnOptions,
  GsnResult,
  IouOptions,
  IouResult,
  MapsLoss,
  MapsLossResult,
  SumResult,
  TokenColumns,
  WeightedLoss,
} from "../losses/mod.ts";
// The kernels behind one seam: each `*Auto` op runs WGSL on a real GPU adapter and the CPU
// reference otherwise (the backend is picked once per process, or by `kernels` options); the
// per-backend `*Gpu` entry points stay internal.
export {
  adapterReport,
  getBackend,
  getDevice,
  parsePreference,
  resetBackend,
  useDevice,
} from "../../kernels/backend.ts";
export type {
  AdapterReport,
  Backend,
  BackendOptions,
  BackendPreference,
  KernelOptions,
} from "../../kernels/backend.ts";
export { accumulateMapsAuto } from "../../kernels/accumulate_maps.ts";
export { accumulateMapsBackwardAuto } from "../../kernels/accumulate_maps_backward.ts";
export { propagateAuto } from "../../kernels/propagate.ts";
export { binariseColumnsAuto } from "../../kernels/binarise_columns.ts";
export { minMaxAuto } from "../../kernels/min_max.ts";
export { kmeansAuto } from "../../kernels/kmeans.ts";
export { type MpoPairs, mpoPairsAuto } from "../../kernels/mpo.ts";
export {
  cleanMask,
  INITNO_JOINT_WEIGHTS,
  INITNO_NOISE_WEIGHTS,
  type InitNoKl,
  initNoKl,
  initNoLoss,
  type InitNoLossOptions,
  type InitNoResult,
  type InitNoTerms,
  type InitNoWeights,
  otsuThreshold,
} from "../losses/initno.ts";
export {
  symmetricKl,
  synGenLoss,
  type SynGenOptions,
  type SynGenResult,
  type SynGenSubtree,
} from "../losses/syngen.ts";
export { accumulateMapsOrt, type OrtMapsOptions } from "../attention/accumulate_ort.ts";
export { denoiseWithMaps, hasGraphMaps, type MapsRequest } from "../runtime/maps.ts";
export { DEFAULT_VARIANT, resolveVariant } from "../isac/loss.ts";
export type { IsacBinding, IsacVariant } from "../isac/loss.ts";
export { ISAC_VARIANTS, isacVariant } from "../isac/variant.ts";
