/**
 * attnkit's WGSL kernels for the heavy attention maths of ISAC, each with a dispatcher that
 * runs the kernel on a WebGPU device or the CPU reference, depending on the backend chosen in
 * `backend.ts` (a real GPU adapter → "gpu"; a software adapter or none → "cpu";
 * `ATTNKIT_BACKEND` or an explicit option overrides).
 *
 * @module
 */
export {
  adapterReport,
  getBackend,
  getDevice,
  parsePreference,
  resetBackend,
  useDevice,
} from "./backend.ts";
export type {
  AdapterReport,
  Backend,
  BackendOptions,
  BackendPreference,
  KernelOptions,
} from "./backend.ts";
export { accumulateMapsAuto, accumulateMapsGpu } from "./accumulate_maps.ts";
export {
  accumulateMapsBackwardAuto,
  accumulateMapsBackwardGpu,
} from "./accumulate_maps_backward.ts";
export { matmulGpu } from "./matmul.ts";
export { propagateAuto, propagateGpu } from "./propagate.ts";
export { binariseColumnsAuto, binariseColumnsGpu } from "./binarise_columns.ts";
export { minMaxAuto, minMaxGpu } from "./min_max.ts";
export {
  assignNearestGpu,
  clusterMeansGpu,
  kmeansAuto,
  kmeansGpu,
  kmeansPlusPlus,
} from "./kmeans.ts";
export { maskPairs, mpoPairs, mpoPairsAuto, mpoPairsGpu } from "./mpo.ts";
export type { MpoPairs } from "./mpo.ts";
