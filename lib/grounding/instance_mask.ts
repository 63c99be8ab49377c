/**
 * DEIG's Instance-based Masked Attention (Detail Fusion Module, methods spec §7; DEIG paper
 * "Instance-based Masked Attention", rules (a)–(c)): the mask of the gated self-attention over
 * the sequence `[HW visual tokens ; N·T object tokens]`, T tokens per instance (16 in DEIG), the
 * object tokens of instance j at `HW + j·T … HW + (j+1)·T − 1`.
 *
 * Allowed (1) pairs, rows = queries, columns = keys:
 * - visual ↔ visual: always (masking them hurts fidelity, the paper says);
 * - object token of j ↔ visual pixel p: iff p is in instance j's mask, in both directions
 *   (DEIG's `masks_expanded` and its transpose);
 * - object ↔ object: iff both tokens belong to the same instance (block diagonal).
 * No row is empty: a visual row keeps every visual key, an object row keeps its own block.
 *
 * {@link detailFusionBias} gives the additive form (0 allowed, `negative` elsewhere) for an
 * attention that takes a score bias; DEIG's SDPA boolean mask is the `−Infinity` case.
 *
 * @module
 */
import { check } from "../errors.ts";
import { type Tensor, tensor } from "../tensor.ts";

function checkMasks(masks: readonly Uint8Array[], hw: number): void {
  check(Number.isInteger(hw) && hw >= 1, "hw", `expected a positive integer, got ${hw}`);
  check(Array.isArray(masks), "masks", "expected an array of Uint8Array masks");
  masks.forEach((m, j) =>
    check(
      m instanceof Uint8Array && m.length === hw,
      `masks[${j}]`,
      () => `expected a Uint8Array of ${hw} values (one per visual token)`,
    )
  );
}

/** DEIG's boolean Detail-Fusion mask, `[(HW+NT)·(HW+NT)]` row-major (row = query), 1 = allowed. */
export function detailFusionMask(
  masks: readonly Uint8Array[],
  hw: number,
  tokensPerInstance = 16,
): Uint8Array {
  checkMasks(masks, hw);
  const t = tokensPerInstance;
  check(
    Number.isInteger(t) && t >= 1,
    "tokensPerInstance",
    `expected a positive integer, got ${t}`,
  );
  const s = hw + masks.length * t;
  check(
    s * s <= 2 ** 31,
    "masks",
    () => `sequence of ${s} tokens is too long for a dense ${s}×${s} mask`,
  );
  const out = new Uint8Array(s * s);
  for (let q = 0; q < hw; q++) {
    const row = q * s;
    out.fill(1, row, row + hw);
    masks.forEach((m, j) => {
      if (m[q]) out.fill(1, row + hw + j * t, row + hw + (j + 1) * t);
    });
  }
  masks.forEach((m, j) => {
    const first = hw + j * t;
    const visual = new Uint8Array(hw);
    for (let p = 0; p < hw; p++) visual[p] = m[p] ? 1 : 0;
    for (let q = first; q < first + t; q++) {
      const row = q * s;
      out.set(visual, row);
      out.fill(1, row + first, row + first + t);
    }
  });
  return out;
}

/** Options of {@link detailFusionBias}. */
export interface DetailFusionBiasOptions {
  /** Object tokens per instance (DEIG: 16). */
  tokensPerInstance?: number;
  /** Bias on disallowed pairs (default −Infinity; e.g. −1e4 for a finite softmax input). */
  negative?: number;
}

/** {@link detailFusionMask} as an additive score bias `[1, 1, S, S]` (0 or `negative`). */
export function detailFusionBias(
  masks: readonly Uint8Array[],
  hw: number,
  opts: DetailFusionBiasOptions = {},
): Tensor {
  const negative = opts.negative ?? -Infinity;
  check(
    !Number.isNaN(negative) && negative < 0,
    "negative",
    `expected a negative number (or -Infinity), got ${negative}`,
  );
  const m = detailFusionMask(masks, hw, opts.tokensPerInstance ?? 16);
  const s = Math.round(Math.sqrt(m.length));
  const data = new Float32Array(m.length);
  for (let i = 0; i < m.length; i++) if (!m[i]) data[i] = negative;
  return tensor([1, 1, s, s], data);
}
