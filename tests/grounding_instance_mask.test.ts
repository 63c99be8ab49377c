/**
 * DEIG's Detail-Fusion attention mask: a 7×7 case written out by hand (visual–visual all on,
 * object↔visual by the instance mask both ways, object–object block diagonal), parity with
 * DEIG's repeat_interleave construction in the PyTorch fixture, and the additive-bias form used
 * in a softmax.
 */
import assert from "node:assert/strict";
import { detailFusionBias, detailFusionMask } from "../lib/grounding/instance_mask.ts";
import { fixture, unhex } from "./grounding_support.ts";
import { throwsNaming } from "./losses_support.ts";

const masks = [Uint8Array.of(1, 0, 1), Uint8Array.of(0, 1, 0)];
// hw = 3 visual tokens, then instance 0's 2 tokens, then instance 1's 2 tokens.
const HAND = [
  "1111100",
  "1110011",
  "1111100",
  "1011100",
  "1011100",
  "0100011",
  "0100011",
].join("");

Deno.test("DEIG detail-fusion mask", async (t) => {
  await t.step("by hand, 3 pixels × 2 instances × 2 tokens", () => {
    const got = detailFusionMask(masks, 3, 2);
    assert.equal(got.length, 49);
    assert.equal([...got].join(""), HAND);
  });

  await t.step("default 16 tokens per instance", () => {
    const got = detailFusionMask(masks, 3);
    const s = 3 + 32;
    assert.equal(got.length, s * s);
    // token 17 (instance 1's second) sees pixel 1 and instance 1's tokens only.
    const row = (3 + 17) * s;
    assert.deepEqual([...got.subarray(row, row + 3)], [0, 1, 0]);
    for (let k = 3; k < s; k++) assert.equal(got[row + k], k >= 3 + 16 ? 1 : 0, `key ${k}`);
  });

  await t.step("matches DEIG's construction in the PyTorch fixture", () => {
    const f = fixture.fusion;
    const m = f.masks.map((x) => Uint8Array.from(x));
    const got = detailFusionMask(m, f.hw, f.t);
    const s = f.hw + m.length * f.t;
    assert.deepEqual(got, unhex(f.mask, s * s));
  });

  await t.step("bias form: 0 / negative, and a softmax that zeroes the masked keys", () => {
    const inf = detailFusionBias(masks, 3, { tokensPerInstance: 2 });
    assert.deepEqual(inf.shape, [1, 1, 7, 7]);
    const mask = detailFusionMask(masks, 3, 2);
    inf.data.forEach((v, i) => assert.equal(v, mask[i] ? 0 : -Infinity));
    const big = detailFusionBias(masks, 3, { tokensPerInstance: 2, negative: -1e4 });
    big.data.forEach((v, i) => assert.equal(v, mask[i] ? 0 : -1e4));
    // softmax(scores + bias) per row: finite, sums to 1, nothing on masked keys.
    for (let q = 0; q < 7; q++) {
      const z = Array.from({ length: 7 }, (_, k) => Math.sin(q * 7 + k) + inf.data[q * 7 + k]);
      const mx = Math.max(...z);
      const e = z.map((v) => Math.exp(v - mx));
      const sum = e.reduce((a, b) => a + b, 0);
      assert.ok(Number.isFinite(sum) && sum > 0, `row ${q}`);
      e.forEach((v, k) => {
        if (!mask[q * 7 + k]) assert.equal(v / sum, 0);
      });
    }
  });

  await t.step("bad input names the argument", () => {
    throwsNaming(() => detailFusionMask(masks, 0, 2), "hw");
    throwsNaming(() => detailFusionMask(masks, 4, 2), "masks[0]");
    throwsNaming(() => detailFusionMask([masks[0], new Uint8Array(2)], 3, 2), "masks[1]");
    throwsNaming(() => detailFusionMask(masks, 3, 0), "tokensPerInstance");
    throwsNaming(() => detailFusionBias(masks, 3, { negative: NaN }), "negative");
    throwsNaming(() => detailFusionBias(masks, 3, { negative: 1 }), "negative");
  });
});
