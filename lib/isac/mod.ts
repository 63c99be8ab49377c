/**
 * ISAC (instance-to-semantic attention control): class propagation, foreground, K-means instance
 * clustering, soft instance masks, MPO and the other pair similarities, and the two-phase loss
 * (Eq. 3-10) with its gradient with respect to the accumulated attention maps.
 *
 * @module
 */
export { propagate, propagateBackward, propagateColumns } from "./propagate.ts";
export { binariseColumns, binariseColumnsOf } from "./binarise.ts";
export { foregroundIndices } from "./foreground.ts";
export { assignNearest, clusterMeans, kmeans } from "./kmeans.ts";
export type { KMeansOptions, KMeansResult } from "./kmeans.ts";
export { instanceFeatures, instanceMasks } from "./instances.ts";
export type { InstanceFeatureOptions } from "./instances.ts";
export { mpo } from "./mpo.ts";
export { KL_EPSILON, similarity, SIMILARITY_METRICS, similarityVjp } from "./similarity.ts";
export type { SimilarityGrad, SimilarityMetric, SimilarityValue } from "./similarity.ts";
export { isacLoss } from "./loss.ts";
export type { IsacResult, IsacSpec, IsacWeights } from "./loss.ts";
