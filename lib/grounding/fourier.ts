/**
 * Fourier box embeddings of the GLIGEN family, as DEIG (methods spec §7) and InstanceAssemble
 * (§6) use them.
 *
 * For coordinates c_0 … c_{n−1} and `freqs` F, with f_k = 100^(k/F), k = 0 … F−1, the
 * embedding is, frequency by frequency, sin(f_k·c_i) for every i, then cos(f_k·c_i) for every i:
 * `[sin(f_0 c), cos(f_0 c), sin(f_1 c), cos(f_1 c), …]`, 2·F·n numbers. That is the order of
 * diffusers' `get_fourier_embeds_from_boundingbox` (its `[…, n, F, 2]` stack permuted to
 * `[…, F, 2, n]`) and of GLIGEN's `FourierEmbedder` (a concatenation over frequencies of
 * `sin(f·x)`, `cos(f·x)`), so one function serves both methods:
 * - DEIG: the 4 box coordinates → 64 dims ({@link boxFourier});
 * - InstanceAssemble: a 6×6 grid of points over the box (72 numbers) → 1152 dims
 *   ({@link densePoints}, {@link denseBoxFourier}).
 *
 * The references run in float32 (torch tensors), so the coordinates, the exponents k/F, the
 * frequencies, the products f_k·c_i and the grid points are rounded to float32 here as they are
 * there; without that, f_1 = 100^(1/3) or a product like 56.2·0.7 differs by a float32 ulp and
 * the sine of it by ~1e-6.
 *
 * @module
 */
import { check } from "../errors.ts";
import { type Box, checkBox } from "../losses/box.ts";

const f32 = Math.fround;

function checkFreqs(freqs: number): void {
  check(
    Number.isInteger(freqs) && freqs >= 1,
    "freqs",
    `expected a positive integer number of frequencies, got ${freqs}`,
  );
}

/**
 * sin/cos Fourier features of `coords` with f_k = 100^(k/freqs); see the module doc for the order.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { grounding } from "@attnkit/attnkit";
 * // One coordinate, two frequencies f = 1, 10: [sin 0.5, cos 0.5, sin 5, cos 5].
 * const e = grounding.fourierEmbedding([0.5], 2);
 * const want = [Math.sin(0.5), Math.cos(0.5), Math.sin(5), Math.cos(5)];
 * assert.ok(e.every((v, i) => Math.abs(v - want[i]) < 1e-6));
 * ```
 */
export function fourierEmbedding(coords: ArrayLike<number>, freqs = 8): Float32Array {
  checkFreqs(freqs);
  check(
    coords !== null && typeof coords === "object" && typeof coords.length === "number",
    "coords",
    "expected an array of numbers",
  );
  const n = coords.length;
  const c = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const v = coords[i];
    check(
      typeof v === "number" && Number.isFinite(v),
      "coords",
      () => `expected finite numbers, got ${v} at index ${i}`,
    );
    c[i] = f32(v);
  }
  const out = new Float32Array(2 * freqs * n);
  for (let k = 0; k < freqs; k++) {
    const fk = f32(100 ** f32(k / freqs));
    const base = 2 * k * n;
    for (let i = 0; i < n; i++) {
      const arg = f32(fk * c[i]);
      out[base + i] = Math.sin(arg);
      out[base + n + i] = Math.cos(arg);
    }
  }
  return out;
}

/**
 * DEIG's box embedding: {@link fourierEmbedding} of `[x1, y1, x2, y2]` (64 dims at 8 frequencies).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { grounding } from "@attnkit/attnkit";
 * const box = [0.1, 0.2, 0.5, 0.6] as const; // [x1, y1, x2, y2] in [0, 1]
 * assert.equal(grounding.boxFourier(box).length, 64);
 * assert.deepEqual(grounding.boxFourier(box), grounding.fourierEmbedding(box, 8));
 * ```
 */
export function boxFourier(box: Box, freqs = 8): Float32Array {
  checkBox(box, "box");
  return fourierEmbedding(box, freqs);
}

/**
 * InstanceAssemble's dense box sampling: an n×n grid over [x1, x2]×[y1, y2] including the
 * corners, p_{u,v} = (x1 + u·(x2−x1)/(n−1), y1 + v·(y2−y1)/(n−1)), u outer and v inner, as
 * 2·n² numbers `x, y, x, y, …` (72 for the default n = 6), in float32 arithmetic.
 */
export function densePoints(box: Box, n = 6): Float32Array {
  checkBox(box, "box");
  check(Number.isInteger(n) && n >= 2, "n", `expected an integer ≥ 2 points per side, got ${n}`);
  const [x1, y1, x2, y2] = box.map(f32);
  const stepX = f32(f32(x2 - x1) / (n - 1));
  const stepY = f32(f32(y2 - y1) / (n - 1));
  const out = new Float32Array(2 * n * n);
  for (let u = 0; u < n; u++) {
    const x = f32(x1 + f32(u * stepX));
    for (let v = 0; v < n; v++) {
      const at = 2 * (u * n + v);
      out[at] = x;
      out[at + 1] = f32(y1 + f32(v * stepY));
    }
  }
  return out;
}

/** InstanceAssemble's box embedding: {@link fourierEmbedding} of {@link densePoints} (1152 dims). */
export function denseBoxFourier(box: Box, freqs = 8): Float32Array {
  return fourierEmbedding(densePoints(box), freqs);
}
