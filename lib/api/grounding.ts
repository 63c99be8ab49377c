/**
 * Layout grounding primitives of DEIG and InstanceAssemble: Fourier box embeddings, box tokens and
 * instance masks, the detail-fusion attention mask, the assembling step and grounding ratio, and a
 * training-free instance cross-attention bias.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { grounding } from "@attnkit/attnkit";
 * const e = grounding.fourierEmbedding([0.5], 2);
 * assert(e.length > 0);
 * ```
 *
 * @module
 */
export * from "../grounding/mod.ts";
