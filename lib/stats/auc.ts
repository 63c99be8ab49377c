/**
 * ROC-AUC of a score for a binary label, as the Mann–Whitney probability that a random positive
 * scores above a random negative (ties count ½), and the same restricted to pairs inside groups
 * (the candidates of one selection run), which is what best-of-N selection can use.
 *
 * @module
 */
import { check } from "../errors.ts";

/**
 * ROC-AUC of `scores` for `labels` (true = positive): P(score⁺ > score⁻) + ½ P(tie), computed by
 * ranks with average ranks for ties. NaN when either class is empty.
 *
 * @example
 * ```ts
 * rocAuc([0.9, 0.1, 0.5], [true, false, false]); // 1
 * ```
 */
export function rocAuc(scores: readonly number[], labels: readonly boolean[]): number {
  check(
    scores.length === labels.length,
    "labels",
    () => `expected ${scores.length} labels (one per score), got ${labels.length}`,
  );
  const n = scores.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a] - scores[b]);
  const ranks = new Float64Array(n);
  for (let i = 0; i < n;) {
    let j = i;
    while (j + 1 < n && scores[order[j + 1]] === scores[order[i]]) j++;
    const r = (i + j) / 2 + 1;
    for (let q = i; q <= j; q++) ranks[order[q]] = r;
    i = j + 1;
  }
  let pos = 0;
  let rankSum = 0;
  for (let i = 0; i < n; i++) {
    if (labels[i]) {
      pos++;
      rankSum += ranks[i];
    }
  }
  const neg = n - pos;
  if (pos === 0 || neg === 0) return NaN;
  return (rankSum - (pos * (pos + 1)) / 2) / (pos * neg);
}

/**
 * AUC over positive–negative pairs drawn from the same group only: Σ over groups of
 * (pairs ordered right + ½ ties) / Σ pairs. NaN when no group has both labels.
 *
 * @example
 * ```ts
 * withinGroupAuc([[{ score: 2, label: true }, { score: 1, label: false }]]); // 1
 * ```
 */
export function withinGroupAuc(
  groups: readonly (readonly { score: number; label: boolean }[])[],
): number {
  let right = 0;
  let pairs = 0;
  for (const g of groups) {
    for (const a of g) {
      if (!a.label) continue;
      for (const b of g) {
        if (b.label) continue;
        pairs++;
        right += a.score > b.score ? 1 : a.score === b.score ? 0.5 : 0;
      }
    }
  }
  return pairs ? right / pairs : NaN;
}
