/**
 * Helpers of the loss tests: synthetic attention maps and a central finite-difference check of
 * a map loss's gradient.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { AttentionMaps } from "../lib/attention/types.ts";
import { AttnkitError } from "../lib/errors.ts";
import { mulberry32 } from "../lib/random.ts";
import { tensor } from "../lib/tensor.ts";
import type { MapsLossResult } from "../lib/losses/types.ts";

/** Row-softmax of `logits` `[rows, cols]`. */
export function rowSoftmax(logits: Float64Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let m = -Infinity;
    for (let c = 0; c < cols; c++) m = Math.max(m, logits[r * cols + c]);
    let s = 0;
    for (let c = 0; c < cols; c++) s += Math.exp(logits[r * cols + c] - m);
    for (let c = 0; c < cols; c++) out[r * cols + c] = Math.exp(logits[r * cols + c] - m) / s;
  }
  return out;
}

/** Random maps of size `[h, w]` with `l` tokens; rows are distributions. */
export function randomMaps(h: number, w: number, l: number, seed = 1, spread = 2): AttentionMaps {
  const rng = mulberry32(seed);
  const hw = h * w;
  const logitsX = Float64Array.from({ length: hw * l }, () => spread * (rng() - 0.5));
  const logitsS = Float64Array.from({ length: hw * hw }, () => spread * (rng() - 0.5));
  return {
    self: tensor([hw, hw], rowSoftmax(logitsS, hw, hw)),
    cross: tensor([hw, l], rowSoftmax(logitsX, hw, l)),
    size: [h, w],
  };
}

/** Copies maps with one entry of `which` moved by `d`. */
function moved(maps: AttentionMaps, which: "self" | "cross", i: number, d: number): AttentionMaps {
  const data = maps[which].data.slice();
  data[i] += d;
  return { ...maps, [which]: tensor(maps[which].shape, data) };
}

/**
 * Checks `loss(maps).grad` against central differences on `count` random entries of each asked
 * map plus the `top` entries with the largest analytic gradient. The step is a power of two so
 * `x ± h` is exact in float32.
 */
export function checkGradient(
  loss: (maps: AttentionMaps) => MapsLossResult,
  maps: AttentionMaps,
  opts: {
    which?: readonly ("self" | "cross")[];
    count?: number;
    top?: number;
    h?: number;
    tol?: number;
    seed?: number;
  } = {},
): void {
  const h = opts.h ?? 2 ** -14;
  const tol = opts.tol ?? 2e-3;
  const rng = mulberry32(opts.seed ?? 9);
  const base = loss(maps);
  for (const which of opts.which ?? ["cross"]) {
    const g = base.grad[which];
    const n = maps[which].data.length;
    const picks = new Set<number>();
    for (let k = 0; k < (opts.count ?? 12); k++) picks.add(Math.floor(rng() * n));
    if (g) {
      const order = Array.from({ length: n }, (_, i) => i)
        .sort((a, b) => Math.abs(g.data[b]) - Math.abs(g.data[a]));
      for (const i of order.slice(0, opts.top ?? 6)) picks.add(i);
    }
    let nonzero = 0;
    for (const i of picks) {
      const fd = (loss(moved(maps, which, i, h)).value - loss(moved(maps, which, i, -h)).value) /
        (2 * h);
      const an = g ? g.data[i] : 0;
      if (an !== 0) nonzero++;
      assert.ok(
        Math.abs(fd - an) <= tol * Math.max(1, Math.abs(fd)),
        `d/d${which}[${i}]: finite difference ${fd} vs analytic ${an}`,
      );
    }
    assert.ok(nonzero > 0, `the ${which} gradient was zero at every checked entry`);
  }
}

/** Asserts that `fn` throws an AttnkitError whose argument is `argument`. */
export function throwsNaming(fn: () => unknown, argument: string): void {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof AttnkitError, `expected an AttnkitError, got ${e}`);
    assert.equal(e.argument, argument, e.message);
    return;
  }
  assert.fail(`expected an AttnkitError naming ${argument}`);
}

/** Async {@link throwsNaming}. */
export async function rejectsNaming(fn: () => Promise<unknown>, argument: string): Promise<void> {
  try {
    await fn();
  } catch (e) {
    assert.ok(e instanceof AttnkitError, `expected an AttnkitError, got ${e}`);
    assert.equal(e.argument, argument, e.message);
    return;
  }
  assert.fail(`expected an AttnkitError naming ${argument}`);
}
