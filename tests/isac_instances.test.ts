/** Clustering features (SA[I, I] with coordinates) and soft instance masks (SA_fg · K̄) on hand-computed values. */
import assert from "node:assert/strict";
import { AttnkitError } from "../lib/errors.ts";
import { instanceFeatures, instanceMasks } from "../lib/isac/instances.ts";
import { tensor } from "../lib/tensor.ts";

// A 2 x 2 grid (pixels 0 1 / 2 3); entry [i, j] = (i + 1) / 10 + j / 100 so every value is traceable.
const S = tensor(
  [4, 4],
  Array.from({ length: 16 }, (_, n) => (Math.floor(n / 4) + 1) / 10 + (n % 4) / 100),
);
const fg = Int32Array.from([0, 2, 3]);
const isErr = (arg: string) => (e: unknown) => e instanceof AttnkitError && e.argument === arg;

Deno.test("instanceFeatures: foreground rows of SA[I, I] then (x, y) in [-1, 1]", () => {
  const f = instanceFeatures(S, fg, [2, 2]);
  assert.deepEqual(f.shape, [3, 5]);
  const want = [
    [0.10, 0.12, 0.13, -1, -1], // pixel 0: x = 0, y = 0
    [0.30, 0.32, 0.33, -1, 1], // pixel 2: x = 0, y = 1
    [0.40, 0.42, 0.43, 1, 1], // pixel 3: x = 1, y = 1
  ].flat();
  want.forEach((v, i) => assert.ok(Math.abs(f.data[i] - v) < 1e-6, `${i}: ${f.data[i]} vs ${v}`));
  // A 1 x 3 strip: y is constant (0), x runs -1, 0, 1; coordWeight scales both.
  const strip = instanceFeatures(tensor([3, 3]), Int32Array.from([0, 1, 2]), [1, 3], {
    coordWeight: 2,
  });
  assert.deepEqual([...strip.data].filter((_, i) => i % 5 >= 3), [-2, 0, 0, 0, 2, 0]);
});

Deno.test("instanceMasks: cluster means of foreground self-attention columns", () => {
  const m = instanceMasks(S, fg, Int32Array.from([0, 1, 1]), 2);
  assert.deepEqual(m.shape, [3, 2]);
  const want = [
    [0.10, (0.12 + 0.13) / 2],
    [0.30, (0.32 + 0.33) / 2],
    [0.40, (0.42 + 0.43) / 2],
  ].flat();
  want.forEach((v, i) => assert.ok(Math.abs(m.data[i] - v) < 1e-6, `${i}: ${m.data[i]} vs ${v}`));
  // An empty cluster gives a zero mask.
  const e = instanceMasks(S, fg, Int32Array.from([0, 0, 0]), 2);
  assert.deepEqual([1, 3, 5].map((i) => e.data[i]), [0, 0, 0]);
});

Deno.test("instanceFeatures / instanceMasks reject bad input", () => {
  assert.throws(() => instanceFeatures(S, Int32Array.from([2, 0]), [2, 2]), isErr("fg"));
  assert.throws(() => instanceFeatures(S, Int32Array.from([4]), [2, 2]), isErr("fg"));
  assert.throws(() => instanceFeatures(S, fg, [2, 3]), isErr("size"));
  assert.throws(() => instanceFeatures(tensor([4, 3]), fg, [2, 2]), isErr("selfNorm"));
  assert.throws(() => instanceMasks(S, fg, Int32Array.from([0, 2, 1]), 2), isErr("assign"));
  assert.throws(() => instanceMasks(S, fg, Int32Array.from([0, 1]), 2), isErr("assign"));
});
