/**
 * The training-free attention losses in one place. Each `lossOf.*` takes its options and returns
 * a {@link MapsLoss}, `(maps) => { value, grad }` with the gradient with respect to the
 * accumulated maps, so any of them (or a `lossOf.sum` of them) plugs into latent optimisation.
 *
 * @module
 */
import type { AttentionMaps } from "../attention/types.ts";
import { isacLoss, type IsacResult, type IsacSpec, type IsacWeights } from "../isac/loss.ts";
import {
  attendExciteLoss,
  type AttendExciteOptions,
  type AttendExciteResult,
} from "./attend_excite.ts";
import { boxLoss, type BoxLossOptions, type BoxLossResult } from "./box.ts";
import { sumLosses, type SumResult, type WeightedLoss } from "./combine.ts";
import { gsnLoss, type GsnOptions, type GsnResult } from "./gsn.ts";
import { iouLoss, type IouOptions, type IouResult } from "./iou.ts";
import type { MapsLoss } from "./types.ts";

export type { MapsLoss, MapsLossFn, MapsLossResult, TokenColumns } from "./types.ts";
export { argMax, attendExciteLoss, exciteOnMaps } from "./attend_excite.ts";
export type { AttendExciteOptions, AttendExciteResult } from "./attend_excite.ts";
export { iouLoss, iouOnMaps, softIou } from "./iou.ts";
export type { IouForm, IouOptions, IouResult } from "./iou.ts";
export { gsnLoss } from "./gsn.ts";
export type { GsnOptions, GsnResult } from "./gsn.ts";
export { boxLoss, boxMask, checkBox, rasterBox, subjectRegions } from "./box.ts";
export type { Box, BoxLossOptions, BoxLossResult, BoxTerm } from "./box.ts";
export { sumLosses } from "./combine.ts";
export type { SumResult, WeightedLoss } from "./combine.ts";
export { GAUSSIAN_DEFAULTS, gaussianKernel1d, smooth2d, smooth2dBackward } from "./gaussian.ts";
export { tokenMaps } from "./token_maps.ts";
export { attendExciteSize, withTaps } from "./resolution.ts";
export type { TapSelection } from "./resolution.ts";
export type { TokenMapOptions, TokenMaps } from "./token_maps.ts";

/** The loss factories; see {@link lossOf}. */
export interface LossCatalogue {
  /** Attend-and-Excite's max-of-minimum loss (attend_excite.ts). */
  attendExcite(opts: AttendExciteOptions): (maps: AttentionMaps) => AttendExciteResult;
  /** The step-selection paper's soft IoU between target maps (iou.ts). */
  iou(opts: IouOptions): (maps: AttentionMaps) => IouResult;
  /** GSN's A&E + IoU loss of the step-selection paper (gsn.ts). */
  gsn(opts: GsnOptions): (maps: AttentionMaps) => GsnResult;
  /** MIFO's in-box reward and out-of-box penalty (box.ts). */
  box(opts: BoxLossOptions): (maps: AttentionMaps) => BoxLossResult;
  /** ISAC's objective at fixed weights (lib/isac/loss.ts). */
  isac(spec: IsacSpec, weights: IsacWeights): (maps: AttentionMaps) => IsacResult;
  /** A weighted sum of losses (combine.ts). */
  sum(...terms: readonly (MapsLoss | WeightedLoss)[]): (maps: AttentionMaps) => SumResult;
}

/** Loss factories: `lossOf.attendExcite({ tokens: [2, 5] })(maps)` → `{ value, grad, … }`. */
export const lossOf: LossCatalogue = {
  attendExcite: (opts) => (maps) => attendExciteLoss(maps, opts),
  iou: (opts) => (maps) => iouLoss(maps, opts),
  gsn: (opts) => (maps) => gsnLoss(maps, opts),
  box: (opts) => (maps) => boxLoss(maps, opts),
  isac: (spec, weights) => (maps) => isacLoss(maps, spec, weights),
  sum: (...terms) => sumLosses(...terms),
};
