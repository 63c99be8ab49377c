/**
 * ONNX graph surgery on any denoiser: find the attention cores (unfused, Einsum and fused forms),
 * tap their Q/K (or probabilities) as extra outputs, and add bias inputs before their softmax for
 * steering.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hooks, onnx } from "@attnkit/attnkit";
 * const bytes = await Deno.readFile(new URL("../../weights/shapes/unet.onnx", import.meta.url));
 * const model = onnx.decodeModel(bytes);
 * const cores = hooks.findAttention(model);
 * assert(cores.length > 0);
 * ```
 *
 * @module
 */
export { findAttention, scanAttention } from "../hooks/find.ts";
export type {
  AttentionCore,
  AttentionForm,
  AttentionLayout,
  FindAttentionOptions,
  ScaleFactor,
  SkippedAttention,
} from "../hooks/find.ts";
export { resolveScale, tapAttention, type TapInfo, type TapOptions } from "../hooks/tap.ts";
export { biasAttention } from "../hooks/bias.ts";
export type { AttentionMasks, FusedQk } from "../hooks/find.ts";
export { type AttentionNeed, describeAttention, requireAttention } from "../hooks/report.ts";
export {
  type EinsumEquation,
  type EinsumScores,
  einsumScores,
  parseEinsum,
} from "../hooks/einsum.ts";
export { lowerEinsum, lowerFusedAttention } from "../hooks/lower.ts";
export { type MapLayer, type MapsGraph, mapsGraph } from "../hooks/maps_graph.ts";
export {
  jointBias,
  jointBlocks,
  jointRanges,
  mergeJointGrads,
  sliceTokens,
  splitJointTap,
} from "../hooks/joint.ts";
export type { JointAttention, JointOptions, JointRows, JointTokens } from "../hooks/joint.ts";
