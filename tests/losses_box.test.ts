/**
 * MIFO's box loss: box masks, a hand-computed value, lower loss with attention inside the box,
 * gradients against central finite differences, sums of losses (with ISAC's), bad input.
 */
import assert from "node:assert/strict";
import type { AttentionMaps } from "../lib/attention/types.ts";
import { boxLoss, boxMask } from "../lib/losses/box.ts";
import { roundHalfEven } from "../lib/samplers/timesteps.ts";
import { lossOf } from "../lib/losses/mod.ts";
import { isacLoss } from "../lib/isac/loss.ts";
import { tensor } from "../lib/tensor.ts";
import { checkGradient, randomMaps, throwsNaming } from "./losses_support.ts";

const near = (a: number, b: number, tol: number, what: string) =>
  assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);

Deno.test("box masks: Python rounding, rows from y and columns from x", () => {
  assert.deepEqual([0.5, 1.5, 2.5, 2.4, 2.6, 3].map(roundHalfEven), [0, 2, 2, 2, 3, 3]);
  // [x0, y0, x1, y1] = [0.25, 0, 0.75, 0.5] on 4×4: rows 0-1, columns 1-2.
  const m = boxMask([0.25, 0, 0.75, 0.5], [4, 4]);
  assert.deepEqual([...m], [0, 1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  // Non-square grid: 2 rows × 4 columns, the right half.
  assert.deepEqual([...boxMask([0.5, 0, 1, 1], [2, 4])], [0, 0, 1, 1, 0, 0, 1, 1]);
});

/** 2×2 maps with hand-picked rows. */
function tiny(): AttentionMaps {
  const cross = [0.2, 0.5, 0.3, 0.6, 0.1, 0.3, 0.8, 0.1, 0.1, 0.5, 0.2, 0.3];
  const self = [0.7, 0.1, 0.1, 0.1, ...new Array(12).fill(0.25)];
  return { self: tensor([4, 4], self), cross: tensor([4, 3], cross), size: [2, 2] };
}

Deno.test("box loss: a hand-computed value", () => {
  // Box = pixel 0; background = pixels 1-3; cross context = token 1 and the end token 2.
  const r = boxLoss(tiny(), { tokens: [1], boxes: [[0, 0, 0.5, 0.5]], eos: 2, alpha: 0.4 });
  const fgC = 0.5 + 0.3, bgC = 0.4 + 0.2 + 0.5;
  const lc = (1 - fgC / (fgC + bgC)) ** 2 + 0.4 * Math.log(1 + bgC);
  const fgS = 0.7, bgS = 0.75;
  const ls = (1 - fgS / (fgS + bgS)) ** 2 + 0.4 * Math.log(1 + bgS);
  near(r.cross[0].fg, fgC, 1e-6, "cross fg");
  near(r.cross[0].bg, bgC, 1e-6, "cross bg");
  near(r.self[0].fg, fgS, 1e-6, "self fg");
  near(r.self[0].bg, bgS, 1e-6, "self bg");
  near(r.value, 1.5 * lc + 0.5 * ls, 1e-6, "value");
  near(r.normalized, r.value, 0, "one subject");
  // Without the end token, and with the self term off.
  const noEos = boxLoss(tiny(), { tokens: [1], boxes: [[0, 0, 0.5, 0.5]], alpha: 0, selfScale: 0 });
  near(noEos.value, 1.5 * (1 - 0.5 / 0.9) ** 2, 1e-6, "no eos, α = 0");
  assert.equal(noEos.grad.self, undefined);
});

/** 6×6 maps where token 1's mass sits in columns `x0 … x0 + 2` of rows 1-3. */
function blobAt(x0: number): AttentionMaps {
  const hw = 36, l = 3;
  const cross = new Float32Array(hw * l);
  const self = new Float32Array(hw * hw);
  const blob: number[] = [];
  for (let y = 1; y <= 3; y++) for (let x = x0; x < x0 + 3; x++) blob.push(y * 6 + x);
  for (let p = 0; p < hw; p++) {
    const on = blob.includes(p);
    cross.set(on ? [0.2, 0.7, 0.1] : [0.8, 0.05, 0.15], p * l);
    // Blob pixels attend to the blob, others uniformly.
    for (let k = 0; k < hw; k++) {
      self[p * hw + k] = on ? (blob.includes(k) ? 1 / blob.length : 0) : 1 / hw;
    }
  }
  return { self: tensor([hw, hw], self), cross: tensor([hw, l], cross), size: [6, 6] };
}

Deno.test("box loss: lower when attention is inside the box", () => {
  const opts = { tokens: [1], boxes: [[0, 0, 0.5, 0.75]] as const, eos: 2, alpha: 0.2 };
  const inside = boxLoss(blobAt(0), opts);
  const outside = boxLoss(blobAt(3), opts);
  assert.ok(inside.value < outside.value, `inside ${inside.value} vs outside ${outside.value}`);
  assert.ok(inside.cross[0].loss < outside.cross[0].loss, "cross term");
  assert.ok(inside.self[0].loss < outside.self[0].loss, "self term");
});

Deno.test("box loss: gradient matches central finite differences (cross and self)", () => {
  const maps = randomMaps(4, 5, 6, 3);
  const boxes = [[0, 0, 0.6, 0.5], [0.4, 0.25, 1, 1]] as const;
  checkGradient(lossOf.box({ tokens: [2, [3, 4]], boxes, eos: 5, alpha: 0.3 }), maps, {
    which: ["cross", "self"],
  });
  checkGradient(
    lossOf.box({ tokens: [1, 2, 3], boxes, alpha: 0.05, sumScale: 4, crossScale: 1, selfScale: 2 }),
    maps,
    { which: ["cross", "self"], seed: 4 },
  );
  // Refined masks in place of the boxes.
  const regions = [boxMask([0, 0, 0.4, 1], [4, 5]), boxMask([0.6, 0, 1, 0.5], [4, 5])];
  checkGradient(lossOf.box({ tokens: [1, 2], boxes, regions, alpha: 0.1 }), maps, {
    which: ["cross", "self"],
    seed: 5,
  });
});

Deno.test("sum of losses: box + ISAC + A&E values and gradients add up", () => {
  const maps = randomMaps(4, 4, 5, 7, 0.3);
  const boxes = [[0, 0, 0.5, 0.75], [0.5, 0, 1, 0.5]] as const;
  const box = lossOf.box({ tokens: [1, 2], boxes, alpha: 0.3 });
  const ae = lossOf.attendExcite({ tokens: [1, 2], tau: 20 });
  const isac = lossOf.isac({ tokens: [1, 2], counts: [1, 1] }, { ins: 0.5, cls: 0.5 });
  const sum = lossOf.sum(box, { loss: ae, weight: 2, name: "ae" }, { loss: isac, weight: 0.5 });
  const r = sum(maps);
  const parts = [
    box(maps),
    ae(maps),
    isacLoss(maps, { tokens: [1, 2], counts: [1, 1] }, { ins: 0.5, cls: 0.5 }),
  ];
  near(r.value, parts[0].value + 2 * parts[1].value + 0.5 * parts[2].value, 1e-9, "value");
  assert.deepEqual(Object.keys(r.terms), ["term0", "ae", "term2"]);
  for (const which of ["self", "cross"] as const) {
    const got = r.grad[which]!.data;
    for (let i = 0; i < got.length; i++) {
      const want = (parts[0].grad[which]?.data[i] ?? 0) + 2 * (parts[1].grad[which]?.data[i] ?? 0) +
        0.5 * (parts[2].grad[which]?.data[i] ?? 0);
      near(got[i], want, 1e-5, `${which}[${i}]`);
    }
  }
  // The box part alone through the sum keeps its finite-difference check.
  checkGradient(lossOf.sum({ loss: box, weight: 3 }), maps, { which: ["cross", "self"] });
});

Deno.test("box loss: bad input names the argument", () => {
  const maps = randomMaps(4, 4, 5, 1);
  const ok = { tokens: [1, 2], alpha: 0.1 };
  throwsNaming(() => boxLoss(maps, { ...ok, boxes: [[0, 0, 1.2, 1]] }), "boxes[0]");
  throwsNaming(() => boxLoss(maps, { ...ok, boxes: [[-0.1, 0, 0.5, 1]] }), "boxes[0]");
  throwsNaming(
    () => boxLoss(maps, { ...ok, boxes: [[0, 0, 1, 1], [0.5, 0.2, 0.5, 0.8]] }),
    "boxes[1]",
  );
  throwsNaming(
    () => boxLoss(maps, { ...ok, boxes: [[0, 0, 1, 1], [0.6, 0.2, 0.4, 0.8]] }),
    "boxes[1]",
  );
  throwsNaming(() => boxLoss(maps, { ...ok, boxes: [[0, 0, 0.1, 0.1]] }), "boxes[0]");
  throwsNaming(
    () => boxLoss(maps, { ...ok, boxes: [[0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 1, 1]] }),
    "boxes",
  );
  throwsNaming(() => boxLoss(maps, { ...ok, boxes: [[0, 0, 1, NaN]] }), "boxes[0]");
  throwsNaming(() => boxLoss(maps, { ...ok, tokens: [1, 9], boxes: [[0, 0, 1, 1]] }), "tokens[1]");
  throwsNaming(() => boxLoss(maps, { ...ok, boxes: [[0, 0, 1, 1]], eos: 5 }), "eos");
  throwsNaming(() => boxLoss(maps, { ...ok, boxes: [[0, 0, 1, 1]], alpha: -1 }), "alpha");
  throwsNaming(
    () => boxLoss(maps, { ...ok, boxes: [[0, 0, 1, 1]], regions: [new Uint8Array(3)] }),
    "regions[0]",
  );
});
