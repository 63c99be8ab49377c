/**
 * Attention maps from hooked Q and K: accumulation over heads and layers (ISAC Eq. 1-2), its
 * backward, and the normalisations of ISAC appendix C (Eq. 12-13).
 *
 * @module
 */
export type { AttentionMaps, AttentionMapsGrad, AttentionTap, TapGrad } from "./types.ts";
export { planTaps } from "./plan.ts";
export type { TapPlan } from "./plan.ts";
export { accumulateMaps } from "./accumulate.ts";
export { accumulateMapsBackward } from "./accumulate_backward.ts";
export { minMax, minMaxBackward, tokenSoftmax, tokenSoftmaxBackward } from "./normalise.ts";
