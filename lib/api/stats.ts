/**
 * Statistics for honest evidence: percentile bootstrap intervals over prompts, ROC-AUC (pooled
 * and within groups), and the paired sample size a difference needs.
 *
 * @example
 * ```ts
 * import { stats } from "@attnkit/attnkit";
 * console.assert(stats.rocAuc([0.9, 0.8, 0.1], [true, true, false]) === 1);
 * ```
 *
 * @module
 */
export { bootstrapCi, mean, meanCi, quantileSorted } from "../stats/bootstrap.ts";
export type { BootstrapOptions, Interval } from "../stats/bootstrap.ts";
export { rocAuc, withinGroupAuc } from "../stats/auc.ts";
export { normalQuantile, pairedSampleSize, sampleSd } from "../stats/power.ts";
