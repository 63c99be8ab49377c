/**
 * The training-free instance cross-attention bias (DEIG's "each region sees only its own
 * description" as a score bias): hand-written rows for inside / overlap / outside pixels and
 * shared columns, the per-layer AttentionBias layout (cross only, unconditional half zero), and
 * the DEIG-mask provider.
 */
import assert from "node:assert/strict";
import {
  deigMasksAt,
  instanceCrossAttentionBias,
  instanceCrossBias,
} from "../lib/grounding/instance_bias.ts";
import { instanceMask } from "../lib/grounding/box_tokens.ts";
import type { LayerGeometry } from "../lib/control/steer.ts";
import type { Tensor } from "../lib/tensor.ts";
import { throwsNaming } from "./losses_support.ts";

const P = -1e4;
// 2×2 grid; instance 0 covers pixels 0, 1; instance 1 covers 1, 2; pixel 3 is free.
const masks = [Uint8Array.of(1, 1, 0, 0), Uint8Array.of(0, 1, 1, 0)];

/** Row p of a [1, 1, HW, L] bias as a plain array. */
function row(b: Tensor, p: number): number[] {
  const l = b.shape[3];
  return [...b.data.subarray(p * l, (p + 1) * l)];
}

Deno.test("instance cross-attention bias", async (t) => {
  await t.step("by hand: own words only inside, all words in overlaps and outside", () => {
    const b = instanceCrossAttentionBias(masks, [[2, 3], [5]], 7);
    assert.deepEqual(b.shape, [1, 1, 4, 7]);
    assert.deepEqual(row(b, 0), [0, 0, 0, 0, 0, P, 0]); // instance 0 only: 5 hidden
    assert.deepEqual(row(b, 1), [0, 0, 0, 0, 0, 0, 0]); // both instances: nothing hidden
    assert.deepEqual(row(b, 2), [0, 0, P, P, 0, 0, 0]); // instance 1 only: 2, 3 hidden
    assert.deepEqual(row(b, 3), [0, 0, 0, 0, 0, 0, 0]); // no instance: nothing hidden
  });

  await t.step("a column shared by two spans stays visible to both regions", () => {
    const b = instanceCrossAttentionBias(masks, [[2, 3], [3, 5]], 7, -2);
    assert.deepEqual(row(b, 0), [0, 0, 0, 0, 0, -2, 0]);
    assert.deepEqual(row(b, 2), [0, 0, -2, 0, 0, 0, 0]);
  });

  await t.step("per-layer bias: cross layers only, guidance rows zero first", () => {
    const layout: LayerGeometry[] = [
      { kind: "self", size: [2, 2], nk: 4 },
      { kind: "cross", size: [2, 2], nk: 7 },
      { kind: "cross", size: [1, 1], nk: 7 },
    ];
    const at = (size: readonly [number, number]) =>
      size[0] === 2 ? masks : [Uint8Array.of(1), Uint8Array.of(0)];
    const spans = [[2, 3], [5]];
    const plain = instanceCrossBias(layout, at, spans);
    assert.equal(plain[0], null);
    assert.deepEqual(plain[1]!.shape, [1, 1, 4, 7]);
    assert.deepEqual(plain[1]!.data, instanceCrossAttentionBias(masks, spans, 7).data);
    assert.deepEqual([...plain[2]!.data], [0, 0, 0, 0, 0, P, 0]);

    const cfg = instanceCrossBias(layout, at, spans, { cfg: true, items: 2 });
    const c = cfg[1]!;
    assert.deepEqual(c.shape, [4, 1, 4, 7]);
    const per = 28;
    assert.ok(c.data.subarray(0, 2 * per).every((v) => v === 0), "unconditional half");
    for (const i of [2, 3]) {
      assert.deepEqual(c.data.subarray(i * per, (i + 1) * per), plain[1]!.data, `row ${i}`);
    }
    const some = instanceCrossBias(layout, at, spans, { layers: (_, i) => i === 2 });
    assert.equal(some[1], null);
    assert.ok(some[2]);
  });

  await t.step("DEIG masks per layer size", () => {
    const boxes = [[0.1, 0.1, 0.5, 0.6], [0.4, 0.2, 0.9, 0.9]] as const;
    const at = deigMasksAt(boxes);
    const m16 = at([16, 16]);
    assert.deepEqual(m16[1], instanceMask(boxes[1], 16));
    assert.equal(at([16, 16]), m16, "cached per size");
    throwsNaming(() => at([16, 8]), "size");
  });

  await t.step("bad input names the argument", () => {
    throwsNaming(() => instanceCrossAttentionBias(masks, [[2], [7]], 7), "spans[1]");
    throwsNaming(() => instanceCrossAttentionBias(masks, [[2], [-1]], 7), "spans[1]");
    throwsNaming(() => instanceCrossAttentionBias(masks, [[2]], 7), "spans");
    throwsNaming(() => instanceCrossAttentionBias(masks, [[2], [3]], 0), "seqLen");
    throwsNaming(() => instanceCrossAttentionBias(masks, [[2], [3]], 7, NaN), "penalty");
    throwsNaming(() => instanceCrossAttentionBias(masks, [[2], [3]], 7, 1), "penalty");
    throwsNaming(() => instanceCrossAttentionBias([], [], 7), "masks");
    throwsNaming(
      () => instanceCrossAttentionBias([masks[0], new Uint8Array(3)], [[2], [3]], 7),
      "masks[1]",
    );
    throwsNaming(() => deigMasksAt([[0.1, 0.1, 0.5, 0.6], [0.5, 0.2, 0.4, 0.9]]), "boxes[1]");
    const layout: LayerGeometry[] = [{ kind: "cross", size: [2, 2], nk: 7 }];
    throwsNaming(() => instanceCrossBias(layout, () => masks, [[2], [3]], { items: 0 }), "items");
    throwsNaming(
      () => instanceCrossBias(layout, () => [new Uint8Array(9)], [[2]]),
      "masksAt",
    );
  });
});
