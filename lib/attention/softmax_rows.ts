/**
 * The inner kernel shared by the forward accumulation and its backward: softmax(q kᵀ / √d) for a
 * block of up to four query rows of one head, written into a reused scratch buffer. This is where
 * the CPU time goes (Nk · d multiply-adds and Nk exponentials per row and head), so:
 * - Q and K are copied once per tap into float64 arrays (with 1/√d folded into Q), which spares a
 *   float32 → float64 conversion on every load in the hot loop;
 * - four query rows × two keys are done per pass over d, so each loaded value feeds several
 *   multiply-adds while the eight accumulators still fit in registers (about 1.5x faster than
 *   one key at a time in V8, measured);
 * - the rows are left unnormalised (exponentials with their row maximum subtracted) with 1 / sum
 *   returned per row, so callers fold the normalisation into the pass that reads them.
 *
 * @module
 */
import type { Tensor } from "../tensor.ts";

/** Query rows handled per pass over the keys. */
export const ROW_BLOCK: number = 4;

/** A tap's Q (times 1/√d) and K as float64, `[heads, n, d]` row-major. */
export interface HeadData {
  /** Queries already scaled by 1/√d. */
  q: Float64Array;
  /** Keys. */
  k: Float64Array;
  /** Heads, query rows, key rows, head dimension. */
  heads: number;
  nq: number;
  nk: number;
  d: number;
}

/** Copies a tap's Q and K into float64 with the 1/√d logit scale folded into Q. */
export function headData(q: Tensor, k: Tensor): HeadData {
  const [heads, nq, d] = q.shape;
  const nk = k.shape[1];
  const scale = 1 / Math.sqrt(d);
  const q64 = new Float64Array(q.data.length);
  for (let i = 0; i < q64.length; i++) q64[i] = q.data[i] * scale;
  return { q: q64, k: Float64Array.from(k.data), heads, nq, nk, d };
}

/**
 * For query rows `row0 … row0 + count − 1` (count ≤ 4) of `head`, writes
 * `exp(logit − row max)` into `out[r * nk + j]` and `1 / Σ_j` into `inv[r]`, so the attention
 * probability is `out[r * nk + j] * inv[r]`. Rows past `count` are left as garbage.
 */
export function softmaxBlock(
  t: HeadData,
  head: number,
  row0: number,
  count: number,
  out: Float64Array,
  inv: Float64Array,
): void {
  const { q: qd, k: kd, nq, nk, d } = t;
  const qBase = (head * nq + row0) * d;
  // Rows past `count` reuse the last real row so the loop needs no bounds checks.
  const q0 = qBase;
  const q1 = qBase + Math.min(1, count - 1) * d;
  const q2 = qBase + Math.min(2, count - 1) * d;
  const q3 = qBase + Math.min(3, count - 1) * d;
  const kBase = head * nk * d;
  const o1 = nk;
  const o2 = 2 * nk;
  const o3 = 3 * nk;
  const pairs = nk - (nk % 2);
  for (let j = 0; j < pairs; j += 2) {
    const ka = kBase + j * d;
    const kb = ka + d;
    let a0 = 0;
    let a1 = 0;
    let a2 = 0;
    let a3 = 0;
    let b0 = 0;
    let b1 = 0;
    let b2 = 0;
    let b3 = 0;
    for (let c = 0; c < d; c++) {
      const x = kd[ka + c];
      const y = kd[kb + c];
      const v0 = qd[q0 + c];
      const v1 = qd[q1 + c];
      const v2 = qd[q2 + c];
      const v3 = qd[q3 + c];
      a0 += v0 * x;
      a1 += v1 * x;
      a2 += v2 * x;
      a3 += v3 * x;
      b0 += v0 * y;
      b1 += v1 * y;
      b2 += v2 * y;
      b3 += v3 * y;
    }
    out[j] = a0;
    out[o1 + j] = a1;
    out[o2 + j] = a2;
    out[o3 + j] = a3;
    out[j + 1] = b0;
    out[o1 + j + 1] = b1;
    out[o2 + j + 1] = b2;
    out[o3 + j + 1] = b3;
  }
  if (pairs < nk) {
    const ka = kBase + pairs * d;
    let a0 = 0;
    let a1 = 0;
    let a2 = 0;
    let a3 = 0;
    for (let c = 0; c < d; c++) {
      const x = kd[ka + c];
      a0 += qd[q0 + c] * x;
      a1 += qd[q1 + c] * x;
      a2 += qd[q2 + c] * x;
      a3 += qd[q3 + c] * x;
    }
    out[pairs] = a0;
    out[o1 + pairs] = a1;
    out[o2 + pairs] = a2;
    out[o3 + pairs] = a3;
  }
  for (let r = 0; r < count; r++) inv[r] = expShifted(out, r * nk, nk);
}

/** Replaces `buf[start … start + n − 1]` by `exp(x − max)` and returns 1 / their sum. */
function expShifted(buf: Float64Array, start: number, n: number): number {
  const end = start + n;
  let m = -Infinity;
  for (let j = start; j < end; j++) if (buf[j] > m) m = buf[j];
  let sum = 0;
  for (let j = start; j < end; j++) {
    const e = Math.exp(buf[j] - m);
    buf[j] = e;
    sum += e;
  }
  return 1 / sum;
}
