/**
 * Layout-grounding primitives of DEIG and InstanceAssemble (methods spec §6, §7): Fourier box
 * embeddings, box rasterisation to tokens and masks, DEIG's detail-fusion attention mask,
 * InstanceAssemble's assembling step and schedule, and a training-free instance cross-attention
 * bias for this runtime.
 *
 * @module
 */
export { boxFourier, denseBoxFourier, densePoints, fourierEmbedding } from "./fourier.ts";
export { boxTokenIndices, instanceMask } from "./box_tokens.ts";
export type { InstanceMaskOptions } from "./box_tokens.ts";
export { detailFusionBias, detailFusionMask } from "./instance_mask.ts";
export type { DetailFusionBiasOptions } from "./instance_mask.ts";
export { assembleInstances, averageInstances, groundingScale } from "./assemble.ts";
export { deigMasksAt, instanceCrossAttentionBias, instanceCrossBias } from "./instance_bias.ts";
export type { InstanceCrossBiasOptions, InstanceMasksAt } from "./instance_bias.ts";
