/**
 * Einsum attention: reads the two Einsum equations of an attention layer written with `Einsum`
 * (CompVis `ldm` CrossAttention, xformers-free exports, many hand-written DiTs): the scores
 * `QKᵀ` (e.g. `bid,bjd->bij`, `bhid,bhjd->bhij`, `bhid,bhdj->bhij`, `b i d, b j d -> b i j`,
 * `...id,...jd->...ij`) and the output `P·V` (`bij,bjd->bid`, `bhij,bhjd->bhid`, …).
 *
 * A scores equation is accepted when its output is `[batch…, i, j]` (the Softmax runs over `j`),
 * one operand holds exactly `batch…, i, d` (Q) and the other exactly `batch…, j, d` (K), in any
 * order of letters, with `d` summed away. The result says which axes of each operand to transpose
 * to get Q as `[batch…, Nq, d]` and K as `[batch…, Nk, d]`. Semantics follow the ONNX `Einsum`
 * operator (numpy `einsum` subscripts, implicit output = letters used once, in alphabetical order).
 *
 * @module
 */

/** A parsed equation: one subscript string per operand and the output's, ellipses expanded. */
export interface EinsumEquation {
  /** Subscripts of each operand (one letter per axis). */
  inputs: string[];
  /** Subscripts of the output. */
  output: string;
}

/** How an Einsum computes attention scores from Q and K. */
export interface EinsumScores {
  /** Operand index (0 or 1) holding Q. */
  qOperand: 0 | 1;
  /** Transpose bringing the Q operand to `[batch…, Nq, d]` (identity when already so). */
  qPerm: number[];
  /** Transpose bringing the K operand to `[batch…, Nk, d]`. */
  kPerm: number[];
  /** Rank of the scores (3: `[B·heads, Nq, Nk]`; 4: `[B, heads, Nq, Nk]`). */
  rank: number;
}

const ELLIPSIS_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/**
 * Parses an Einsum equation. `ranks[i]` is operand i's rank when known (needed only to expand
 * `...`). Returns a string saying why when the equation cannot be read.
 *
 * @example
 * ```ts
 * parseEinsum("b i d, b j d -> b i j", []); // { inputs: ["bid", "bjd"], output: "bij" }
 * ```
 */
export function parseEinsum(
  equation: string,
  ranks: readonly (number | undefined)[],
): EinsumEquation | string {
  const eq = equation.replace(/\s+/g, "");
  const [lhs, rhs, extra] = eq.split("->");
  if (extra !== undefined) return `equation "${equation}" has more than one "->"`;
  const parts = lhs.split(",");
  if (/[A-Z]/.test(eq)) return `equation "${equation}" uses capital letters`;
  // "..." stands for the same axes in every operand: one operand of known rank fixes it.
  let ellipsisRank: number | undefined;
  for (const [i, p] of parts.entries()) {
    if (!/^[a-z]*(\.\.\.)?[a-z]*$/.test(p)) return `cannot read operand "${p}" of "${equation}"`;
    const r = ranks[i];
    if (!p.includes("...") || r === undefined) continue;
    const n = r - (p.length - 3);
    if (n < 0 || (ellipsisRank !== undefined && ellipsisRank !== n)) {
      return `"..." in "${equation}" does not fit the operand ranks`;
    }
    ellipsisRank = n;
  }
  if (ellipsisRank === undefined && eq.includes("...")) {
    return `equation "${equation}" uses "..." and no operand's rank is known`;
  }
  const inputs = parts.map((p) => p.replace("...", ELLIPSIS_LETTERS.slice(0, ellipsisRank ?? 0)));
  let output: string;
  if (rhs === undefined) {
    // Implicit output: every letter used exactly once, in alphabetical order (ellipsis first).
    const counts = new Map<string, number>();
    for (const ch of inputs.join("")) counts.set(ch, (counts.get(ch) ?? 0) + 1);
    output = [...counts].filter(([, c]) => c === 1).map(([ch]) => ch).sort().join("");
  } else {
    if (!/^[a-z]*(\.\.\.)?[a-z]*$/.test(rhs)) return `cannot read output "${rhs}" of "${equation}"`;
    output = rhs.replace("...", ELLIPSIS_LETTERS.slice(0, ellipsisRank ?? 0));
  }
  return { inputs, output };
}

function sameLetters(a: string, b: readonly string[]): boolean {
  return a.length === b.length && b.every((ch) => a.includes(ch));
}

/**
 * Reads a two-operand equation as attention scores `Q·Kᵀ` over the output's last axis, or says
 * why it is not one.
 *
 * @example
 * ```ts
 * const s = einsumScores(parseEinsum("bhid,bhdj->bhij", []) as EinsumEquation);
 * // { qOperand: 0, qPerm: [0, 1, 2, 3], kPerm: [0, 1, 3, 2], rank: 4 }
 * ```
 */
export function einsumScores(eq: EinsumEquation): EinsumScores | string {
  const text = `${eq.inputs.join(",")}->${eq.output}`;
  if (eq.inputs.length !== 2) return `Einsum "${text}" does not have two operands`;
  const o = eq.output;
  const r = o.length;
  if (r !== 3 && r !== 4) return `Einsum "${text}": scores of rank ${r} (3 or 4 expected)`;
  const i = o[r - 2], j = o[r - 1];
  const batch = [...o.slice(0, r - 2)];
  const [a, b] = eq.inputs;
  const summed = [...new Set(a + b)].filter((ch) => !o.includes(ch));
  if (summed.length !== 1 || !a.includes(summed[0]) || !b.includes(summed[0])) {
    return `Einsum "${text}" does not contract exactly one axis shared by both operands`;
  }
  const d = summed[0];
  const qOperand = a.includes(i) && !a.includes(j) ? 0 : b.includes(i) && !b.includes(j) ? 1 : -1;
  if (qOperand === -1) return `Einsum "${text}": no operand holds the query axis alone`;
  const q = eq.inputs[qOperand], k = eq.inputs[1 - qOperand];
  const qAxes = [...batch, i, d], kAxes = [...batch, j, d];
  if (!sameLetters(q, qAxes) || !sameLetters(k, kAxes)) {
    return `Einsum "${text}" is not Q·Kᵀ (operands must be [batch…, N, d])`;
  }
  return {
    qOperand: qOperand as 0 | 1,
    qPerm: qAxes.map((ch) => q.indexOf(ch)),
    kPerm: kAxes.map((ch) => k.indexOf(ch)),
    rank: r,
  };
}

/**
 * True when a two-operand equation uses the probabilities (operand `pOperand`, laid out
 * `[batch…, i, j]`) as attention weights: `j` is summed against the other operand and `i` kept.
 *
 * @example
 * ```ts
 * einsumAppliesProbs(parseEinsum("bij,bjd->bid", []) as EinsumEquation, 0); // true
 * ```
 */
export function einsumAppliesProbs(eq: EinsumEquation, pOperand: number): boolean {
  if (eq.inputs.length !== 2) return false;
  const p = eq.inputs[pOperand], v = eq.inputs[1 - pOperand];
  if (p.length < 3) return false;
  const i = p[p.length - 2], j = p[p.length - 1];
  return v.includes(j) && !eq.output.includes(j) && eq.output.includes(i);
}
