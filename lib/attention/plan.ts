/**
 * Checks a list of attention taps once and works out the layout both the forward accumulation and
 * its backward share: the target size, how many heads each kind averages over, and the text length.
 *
 * @module
 */
import { AttnkitError, check } from "../errors.ts";
import { expectFinite } from "../tensor.ts";
import type { AttentionTap } from "./types.ts";

/** The checked layout of a list of taps. */
export interface TapPlan {
  /** `[H, W]`: the largest layer size on each axis; every layer's size divides it. */
  readonly size: readonly [number, number];
  /** `H * W`. */
  readonly hw: number;
  /** Text length `L` shared by every cross tap (0 when there are none). */
  readonly textLength: number;
  /** Total heads over all self taps (the divisor of Eq. 1). */
  readonly selfHeads: number;
  /** Total heads over all cross taps (the divisor of Eq. 2). */
  readonly crossHeads: number;
}

/**
 * Validates `taps` (shapes, kinds, sizes dividing the largest size, a shared text length, finite
 * values) and returns their layout; every failure is an {@link AttnkitError} naming `taps[i]`.
 */
export function planTaps(taps: readonly AttentionTap[]): TapPlan {
  check(Array.isArray(taps) && taps.length > 0, "taps", "expected a non-empty array of taps");
  let bigH = 0;
  let bigW = 0;
  let textLength = -1;
  let selfHeads = 0;
  let crossHeads = 0;
  taps.forEach((tap, i) => {
    const name = `taps[${i}]`;
    check(
      tap.kind === "self" || tap.kind === "cross",
      `${name}.kind`,
      () => `expected "self" or "cross", got ${JSON.stringify(tap.kind)}`,
    );
    const [h, w] = tap.size ?? [];
    check(
      Number.isInteger(h) && Number.isInteger(w) && h > 0 && w > 0,
      `${name}.size`,
      () => `expected [h, w] of positive integers, got ${JSON.stringify(tap.size)}`,
    );
    const q = tap.q;
    const k = tap.k;
    const [heads, nq, d] = q.shape;
    if (q.shape.length !== 3 || nq !== h * w || heads < 1 || d < 1) {
      throw new AttnkitError(
        `${name}.q`,
        `expected shape [heads, ${h * w} (= ${h}x${w}), d], got [${q.shape.join(", ")}]`,
      );
    }
    const nk = tap.kind === "self" ? h * w : textLength < 0 ? k.shape[1] : textLength;
    const what = tap.kind === "self" ? `${h * w} (= ${h}x${w})` : `${nk} (L)`;
    if (k.shape.length !== 3 || k.shape[0] !== heads || k.shape[1] !== nk || k.shape[2] !== d) {
      throw new AttnkitError(
        `${name}.k`,
        `expected shape [${heads}, ${what}, ${d}], got [${k.shape.join(", ")}]` +
          (tap.kind === "cross" ? " (every cross tap must share one text length L)" : ""),
      );
    }
    if (tap.kind === "cross") {
      check(nk > 0, `${name}.k`, "cross taps need at least one text token");
      textLength = nk;
      crossHeads += heads;
    } else {
      selfHeads += heads;
    }
    expectFinite(q, `${name}.q`);
    expectFinite(k, `${name}.k`);
    bigH = Math.max(bigH, h);
    bigW = Math.max(bigW, w);
  });
  taps.forEach((tap, i) => {
    const [h, w] = tap.size;
    check(
      bigH % h === 0 && bigW % w === 0,
      `taps[${i}].size`,
      () =>
        `expected a size dividing the largest size [${bigH}, ${bigW}] on both axes ` +
        `(nearest-neighbour upsampling needs integer factors), got [${h}, ${w}]`,
    );
  });
  return {
    size: [bigH, bigW],
    hw: bigH * bigW,
    textLength: Math.max(textLength, 0),
    selfHeads,
    crossHeads,
  };
}
