/** What findAttention does not take: non-attention Softmax, unfused forms it cannot use. */
import assert from "node:assert/strict";
import { initializer, model, node, valueInfo } from "../lib/onnx/build.ts";
import { DataType } from "../lib/onnx/types.ts";
import { findAttention, scanAttention } from "../lib/hooks/find.ts";
import { tapAttention } from "../lib/hooks/tap.ts";
import { biasAttention } from "../lib/hooks/bias.ts";

Deno.test("scan: a classifier Softmax is not attention and is not reported", () => {
  const m = model({
    inputs: [valueInfo("x", [1, 4])],
    outputs: [valueInfo("p", [1, 3])],
    nodes: [node("MatMul", ["x", "w"], ["s"]), node("Softmax", ["s"], ["p"], { axis: -1 })],
    initializers: [initializer("w", [4, 3], new Float32Array(12))],
  });
  assert.deepEqual(scanAttention(m), { cores: [], skipped: [] });
});

Deno.test("scan: com.microsoft Attention (stacked QKV weights) and packed-QKV MHA are cores", () => {
  // Both computed Q and K inside the op; the taps now rebuild them (tests/hooks_fused_forms.test.ts
  // checks the values against onnxruntime).
  const ms = { domain: "com.microsoft" };
  const m = model({
    inputs: [valueInfo("x", [1, 4, 8]), valueInfo("packed", [1, 4, 2, 3, 4])],
    outputs: [valueInfo("y", [1, 4, 8]), valueInfo("z", [1, 4, 8])],
    nodes: [
      node("Attention", ["x", "wqkv", "bqkv"], ["y"], { num_heads: 2 }, ms),
      node("MultiHeadAttention", ["packed"], ["z"], { num_heads: 2 }, ms),
    ],
    initializers: [
      initializer("wqkv", [8, 24], new Float32Array(192)),
      initializer("bqkv", [24], new Float32Array(24)),
    ],
  });
  const { cores, skipped } = scanAttention(m);
  assert.deepEqual(skipped, []);
  assert.deepEqual(cores.map((c) => [c.form, c.kind]), [
    ["com.microsoft.Attention", "self"],
    ["MultiHeadAttention", "self"],
  ]);
  assert.deepEqual(cores[0].fusedQk, {
    projection: { weight: "wqkv", sizes: [8, 8, 8] },
    bias: "bqkv",
  });
  assert.equal(cores[1].fusedQk?.packed, "qkv");
});

Deno.test("scan: 4-D opset-23 Attention, GQA and boolean masks", () => {
  const m = model({
    opset: 23,
    inputs: [
      valueInfo("q", [1, 4, 5, 8]),
      valueInfo("k", [1, 2, 6, 8]),
      valueInfo("v", [1, 2, 6, 8]),
      valueInfo("mask", [5, 6], DataType.BOOL),
    ],
    outputs: [valueInfo("y", [1, 4, 5, 8])],
    nodes: [node("Attention", ["q", "k", "v", "mask"], ["y"], { kv_num_heads: 2, q_num_heads: 4 })],
  });
  const [core] = findAttention(m);
  assert.equal(core.layout, "bhnd");
  assert.equal(core.heads, 4);
  assert.equal(core.kvHeads, 2);
  // Grouped-query probabilities are built (values checked in hooks_fused_forms.test.ts).
  assert.ok(tapAttention(m, [core], { probs: true }).taps[0].probs);
  assert.equal(tapAttention(m, [core]).taps[0].q !== undefined, true);
  assert.equal(core.masks?.boolean, "mask");
  // The steering bias keeps the boolean mask (masked keys stay masked) instead of refusing.
  const biased = biasAttention(m, [core]).model.graph.node;
  assert.ok(biased.some((n) => n.opType === "Where" && n.input[0] === "mask"));
});

Deno.test("scan: [B·heads, N, d] without readable head count asks for { heads }", () => {
  // Q and K come straight from inputs typed [B·heads, N, d]: nothing says how many heads.
  const m = model({
    inputs: [valueInfo("q", [4, 5, 8]), valueInfo("kt", [4, 8, 5]), valueInfo("v", [4, 5, 8])],
    outputs: [valueInfo("o", [4, 5, 8])],
    nodes: [
      node("MatMul", ["q", "kt"], ["s"]),
      node("Softmax", ["s"], ["p"], { axis: 2 }),
      node("MatMul", ["p", "v"], ["o"]),
    ],
  });
  const [core] = findAttention(m);
  assert.equal(core.layout, "(bh)nd");
  assert.equal(core.kTransposed, true);
  assert.equal(core.heads, undefined);
  assert.throws(() => tapAttention(m, [core]), /pass \{ heads \}/);
  const [withHeads] = findAttention(m, { heads: 2 });
  assert.equal(withHeads.heads, 2);
  assert.equal(tapAttention(m, [withHeads]).taps.length, 1);
});
