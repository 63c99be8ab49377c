/**
 * Parity of the WGSL attention-map accumulation with the CPU reference `accumulateMaps`, on the
 * GPU backend forced onto whatever adapter exists (the software one on CPU-only machines).
 *
 * @module
 */
import assert from "node:assert/strict";
import { accumulateMapsAuto, accumulateMapsGpu } from "../kernels/accumulate_maps.ts";
import { getDevice } from "../kernels/backend.ts";
import { accumulateMaps } from "../lib/attention/accumulate.ts";
import type { AttentionTap } from "../lib/attention/types.ts";
import { AttnkitError } from "../lib/errors.ts";
import { assertClose, gpuTest, maxAbs, randomTensor } from "./kernels_support.ts";

function tap(
  kind: "self" | "cross",
  h: number,
  w: number,
  heads: number,
  d: number,
  L: number,
  seed: number,
  scale = 1,
): AttentionTap {
  const nk = kind === "self" ? h * w : L;
  return {
    kind,
    q: randomTensor([heads, h * w, d], seed, scale),
    k: randomTensor([heads, nk, d], seed + 1, scale),
    size: [h, w],
  };
}

gpuTest("kernels: accumulateMaps on the GPU matches the CPU reference", async (t) => {
  const device = await getDevice();
  await t.step("two self and two cross layers at 8x8 and 4x4, 2 heads, d 8, L 6", async () => {
    const taps = [
      tap("self", 8, 8, 2, 8, 6, 1),
      tap("self", 4, 4, 2, 8, 6, 3),
      tap("cross", 8, 8, 2, 8, 6, 5),
      tap("cross", 4, 4, 2, 8, 6, 7),
    ];
    const want = accumulateMaps(taps);
    const got = await accumulateMapsGpu(taps, device);
    assert.deepEqual(got.size, want.size);
    assertClose(got.self, want.self, "self", 1e-6, 1e-4);
    assertClose(got.cross, want.cross, "cross", 1e-6, 1e-4);
    assert.ok(maxAbs(want.self) > 1e-3 && maxAbs(want.cross) > 1e-3, "reference is not all zero");
  });
  await t.step("16x16 + 2x2 (δ = 8), rectangular 8x4 + 4x2, d 40, L 77", async () => {
    const taps = [
      tap("self", 16, 16, 2, 40, 6, 11, 0.7),
      tap("self", 2, 2, 3, 40, 6, 13, 0.7),
      tap("cross", 16, 16, 2, 40, 77, 15, 0.7),
      tap("cross", 2, 2, 1, 40, 77, 17, 0.7),
    ];
    const want = accumulateMaps(taps);
    const got = await accumulateMapsGpu(taps, device);
    assertClose(got.self, want.self, "self", 1e-6, 1e-4);
    assertClose(got.cross, want.cross, "cross", 1e-6, 1e-4);
    const rect = [tap("self", 8, 4, 2, 8, 6, 21), tap("self", 4, 2, 2, 8, 6, 23)];
    const wantRect = accumulateMaps(rect);
    const gotRect = await accumulateMapsGpu(rect, device);
    assertClose(gotRect.self, wantRect.self, "rect self", 1e-6, 1e-4);
    assert.deepEqual(gotRect.cross.shape, [32, 0]);
  });
  await t.step("head dimension 6 (scalar loads) and L 77 (two column tiles)", async () => {
    const taps = [
      tap("self", 8, 8, 2, 6, 77, 51),
      tap("cross", 8, 8, 2, 6, 77, 53),
      tap("cross", 4, 4, 2, 6, 77, 55),
    ];
    const want = accumulateMaps(taps);
    const got = await accumulateMapsGpu(taps, device);
    assertClose(got.self, want.self, "self", 1e-6, 1e-4);
    assertClose(got.cross, want.cross, "cross", 1e-6, 1e-4);
  });
  await t.step("large logits stay finite (online softmax)", async () => {
    const taps = [tap("self", 4, 4, 2, 8, 6, 31, 8), tap("cross", 4, 4, 2, 8, 6, 33, 8)];
    const want = accumulateMaps(taps);
    const got = await accumulateMapsAuto(taps, { backend: "gpu" });
    assertClose(got.self, want.self, "self", 1e-5, 1e-3);
    assertClose(got.cross, want.cross, "cross", 1e-5, 1e-3);
  });
  await t.step("bad taps are rejected before any GPU work", async () => {
    const bad = [{ ...tap("self", 4, 4, 2, 8, 6, 1), size: [3, 4] as const }];
    await assert.rejects(() => accumulateMapsGpu(bad, device), AttnkitError);
  });
});

Deno.test("kernels: accumulateMapsAuto with backend cpu is the CPU reference", async () => {
  const taps = [tap("self", 4, 4, 2, 8, 6, 41), tap("cross", 2, 2, 2, 8, 6, 43)];
  const want = accumulateMaps(taps);
  const got = await accumulateMapsAuto(taps, { backend: "cpu" });
  assert.deepEqual(got.self.data, want.self.data);
  assert.deepEqual(got.cross.data, want.cross.data);
});
