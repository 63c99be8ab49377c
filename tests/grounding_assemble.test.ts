/**
 * InstanceAssemble's assembling step (scatter-add, divide by the covering count with 0 → 1,
 * h + gate·avg) by hand and against torch's scatter_add_ in the fixture, and the grounding
 * schedule's step boundary int(ratio·steps).
 */
import assert from "node:assert/strict";
import { assembleInstances, averageInstances, groundingScale } from "../lib/grounding/assemble.ts";
import { tensor } from "../lib/tensor.ts";
import { fixture, maxAbsDiff } from "./grounding_support.ts";
import { throwsNaming } from "./losses_support.ts";

const rows = (x: number[][]) => tensor([x.length, x[0]?.length ?? 0], x.flat());

Deno.test("InstanceAssemble assembling", async (t) => {
  await t.step("by hand: overlap averaged, uncovered position unchanged", () => {
    const h = tensor([3, 1], [1, 2, 3]);
    const outputs = [tensor([2, 1], [2, 4]), tensor([1, 1], [8])];
    const indices = [Int32Array.of(0, 1), Int32Array.of(1)];
    // avg = [2, (4 + 8) / 2, 0]
    assert.deepEqual([...averageInstances(outputs, indices, [3, 1]).data], [2, 6, 0]);
    // h + 0.5·avg
    assert.deepEqual([...assembleInstances(h, outputs, indices, 0.5).data], [2, 5, 3]);
    // per-channel gate, D = 2
    const h2 = tensor([2, 2], [0, 0, 1, 1]);
    const out2 = assembleInstances(h2, [tensor([1, 2], [3, 5])], [Int32Array.of(1)], [2, -1]);
    assert.deepEqual([...out2.data], [0, 0, 7, -4]);
  });

  await t.step("no instances: h unchanged", () => {
    const h = tensor([2, 2], [1, 2, 3, 4]);
    assert.deepEqual([...assembleInstances(h, [], [], 1).data], [1, 2, 3, 4]);
  });

  await t.step("matches torch scatter_add_ in the fixture", () => {
    const f = fixture.assemble;
    const h = rows(f.h);
    const outputs = f.outputs.map(rows);
    const indices = f.indices.map((i) => Int32Array.from(i));
    const d1 = maxAbsDiff(assembleInstances(h, outputs, indices, f.gate).data, f.out.flat());
    assert.ok(d1 < 1e-5, `per-channel gate: ${d1}`);
    const d2 = maxAbsDiff(assembleInstances(h, outputs, indices, 0.5).data, f.out_scalar.flat());
    assert.ok(d2 < 1e-5, `scalar gate: ${d2}`);
  });

  await t.step("bad input names the argument", () => {
    const h = tensor([3, 2]);
    const o = [tensor([2, 2], [1, 2, 3, 4])];
    throwsNaming(() => assembleInstances(h, o, [Int32Array.of(0, 3)], 1), "indices[0]");
    throwsNaming(() => assembleInstances(h, o, [Int32Array.of(-1, 0)], 1), "indices[0]");
    throwsNaming(() => assembleInstances(h, o, [Int32Array.of(0)], 1), "outputs[0]");
    throwsNaming(() => assembleInstances(h, o, [], 1), "indices");
    throwsNaming(() => assembleInstances(h, o, [[0, 1] as unknown as Int32Array], 1), "indices[0]");
    throwsNaming(() => assembleInstances(h, o, [Int32Array.of(0, 1)], [1, 2, 3]), "gate");
    throwsNaming(() => assembleInstances(h, o, [Int32Array.of(0, 1)], NaN), "gate");
    throwsNaming(() => assembleInstances(h, o, [Int32Array.of(0, 1)], [1, NaN]), "gate");
    const bad = tensor([3, 2], [0, 0, NaN, 0, 0, 0]);
    throwsNaming(() => assembleInstances(bad, o, [Int32Array.of(0, 1)], 1), "h");
    const badO = [tensor([2, 2], [1, NaN, 3, 4])];
    throwsNaming(() => assembleInstances(h, badO, [Int32Array.of(0, 1)], 1), "outputs[0]");
    throwsNaming(() => averageInstances(o, [Int32Array.of(0, 1)], [0, 2]), "shape");
  });
});

Deno.test("InstanceAssemble grounding scale", async (t) => {
  await t.step("layout scale before int(ratio·steps), 0 from it on", () => {
    // 50 steps, 0.3 → 15: steps 0 … 14 on.
    assert.equal(groundingScale(0, 50), 1);
    assert.equal(groundingScale(14, 50), 1);
    assert.equal(groundingScale(15, 50), 0);
    assert.equal(groundingScale(49, 50), 0);
    // 28 steps: int(8.4) = 8.
    assert.equal(groundingScale(7, 28, 0.3, 2.5), 2.5);
    assert.equal(groundingScale(8, 28, 0.3, 2.5), 0);
    // 4 steps (FLUX-schnell): int(1.2) = 1.
    assert.equal(groundingScale(0, 4), 1);
    assert.equal(groundingScale(1, 4), 0);
    // ratio 0: never on; ratio 1: always on.
    assert.equal(groundingScale(0, 10, 0), 0);
    assert.equal(groundingScale(9, 10, 1), 1);
  });

  await t.step("bad input names the argument", () => {
    throwsNaming(() => groundingScale(50, 50), "stepIndex");
    throwsNaming(() => groundingScale(-1, 50), "stepIndex");
    throwsNaming(() => groundingScale(1.5, 50), "stepIndex");
    throwsNaming(() => groundingScale(0, 0), "totalSteps");
    throwsNaming(() => groundingScale(0, 10, NaN), "ratio");
    throwsNaming(() => groundingScale(0, 10, 1.5), "ratio");
    throwsNaming(() => groundingScale(0, 10, 0.3, NaN), "layoutScale");
  });
});
