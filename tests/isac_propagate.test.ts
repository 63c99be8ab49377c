/** Eq. 3 (SA·CA), Eq. 4 (column-mean binarisation) and the foreground union on hand-computed values. */
import assert from "node:assert/strict";
import { AttnkitError } from "../lib/errors.ts";
import { binariseColumns } from "../lib/isac/binarise.ts";
import { foregroundIndices } from "../lib/isac/foreground.ts";
import { propagate, propagateBackward } from "../lib/isac/propagate.ts";
import { mulberry32 } from "../lib/random.ts";
import { tensor } from "../lib/tensor.ts";

const isErr = (arg: string) => (e: unknown) => e instanceof AttnkitError && e.argument === arg;

Deno.test("propagate (Eq. 3) multiplies [HW, HW] by [HW, L]", () => {
  // [[0.5, 0.5, 0], [0, 1, 0], [0.25, 0.25, 0.5]] · [[1, 0], [0, 1], [0.5, 0.5]]
  const self = tensor([3, 3], [0.5, 0.5, 0, 0, 1, 0, 0.25, 0.25, 0.5]);
  const cross = tensor([3, 2], [1, 0, 0, 1, 0.5, 0.5]);
  const p = propagate(self, cross);
  assert.deepEqual(p.shape, [3, 2]);
  assert.deepEqual([...p.data], [0.5, 0.5, 0, 1, 0.5, 0.5]);
  assert.throws(() => propagate(tensor([3, 2]), cross), isErr("self"));
  assert.throws(() => propagate(self, tensor([2, 2])), isErr("cross"));
});

Deno.test("propagateBackward matches finite differences", () => {
  const rng = mulberry32(3);
  const s = tensor([4, 4], Array.from({ length: 16 }, () => rng()));
  const c = tensor([4, 3], Array.from({ length: 12 }, () => rng()));
  const g = tensor([4, 3], Array.from({ length: 12 }, () => 2 * rng() - 1));
  const { dself, dcross } = propagateBackward(s, c, g);
  // J is bilinear, so central differences are exact up to float32 rounding of the product.
  const J = (a: Float32Array, b: Float32Array) =>
    propagate(tensor([4, 4], a), tensor([4, 3], b)).data.reduce((t, v, i) => t + v * g.data[i], 0);
  for (const [which, base, got] of [["self", s, dself], ["cross", c, dcross]] as const) {
    for (let i = 0; i < base.data.length; i++) {
      const up = base.data.slice();
      const down = base.data.slice();
      up[i] += 1e-2;
      down[i] -= 1e-2;
      const fd = which === "self"
        ? (J(up, c.data) - J(down, c.data)) / (up[i] - down[i])
        : (J(s.data, up) - J(s.data, down)) / (up[i] - down[i]);
      assert.ok(Math.abs(fd - got.data[i]) < 1e-4, `${which}[${i}] fd ${fd} vs ${got.data[i]}`);
    }
  }
});

Deno.test("binariseColumns (Eq. 4) thresholds each column at its own mean, strictly", () => {
  // Column means: 2.5 and 0.25; the value equal to a mean is not foreground.
  const m = tensor([4, 2], [1, 0, 2, 0.25, 3, 0, 4, 0.75]);
  assert.deepEqual([...binariseColumns(m)], [0, 0, 0, 0, 1, 0, 1, 1]);
  assert.throws(() => binariseColumns(tensor([4])), isErr("m"));
});

Deno.test("foregroundIndices takes the union of the target columns, ascending", () => {
  const bin = Uint8Array.from([
    1,
    0,
    0, // pixel 0: only the start token
    0,
    1,
    0,
    0,
    0,
    1,
    0,
    1,
    1,
    1,
    0,
    0,
  ]);
  assert.deepEqual([...foregroundIndices(bin, 5, 3, [1, 2])], [1, 2, 3]);
  assert.deepEqual([...foregroundIndices(bin, 5, 3, [2])], [2, 3]);
  assert.deepEqual([...foregroundIndices(bin, 5, 3, [])], []);
  assert.throws(() => foregroundIndices(bin, 5, 3, [3]), isErr("tokens"));
  assert.throws(() => foregroundIndices(bin, 4, 3, [1]), isErr("bin"));
});
