/**
 * Parity of the WGSL backward of the attention-map accumulation with the CPU reference
 * `accumulateMapsBackward` (itself checked by finite differences in its own tests), on the GPU
 * backend forced onto whatever adapter exists.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  accumulateMapsBackwardAuto,
  accumulateMapsBackwardGpu,
} from "../kernels/accumulate_maps_backward.ts";
import { getDevice } from "../kernels/backend.ts";
import { accumulateMapsBackward } from "../lib/attention/accumulate_backward.ts";
import type { AttentionTap } from "../lib/attention/types.ts";
import { AttnkitError } from "../lib/errors.ts";
import { tensor } from "../lib/tensor.ts";
import { assertClose, gpuTest, maxAbs, randomTensor } from "./kernels_support.ts";

function tap(
  kind: "self" | "cross",
  h: number,
  w: number,
  heads: number,
  d: number,
  L: number,
  seed: number,
): AttentionTap {
  const nk = kind === "self" ? h * w : L;
  return {
    kind,
    q: randomTensor([heads, h * w, d], seed),
    k: randomTensor([heads, nk, d], seed + 1),
    size: [h, w],
  };
}

gpuTest("kernels: accumulateMapsBackward on the GPU matches the CPU reference", async (t) => {
  const device = await getDevice();
  const taps = [
    tap("self", 8, 8, 2, 8, 6, 1),
    tap("self", 4, 4, 2, 8, 6, 3),
    tap("cross", 8, 8, 2, 8, 6, 5),
    tap("cross", 2, 2, 2, 8, 6, 7),
  ];
  const grad = {
    self: randomTensor([64, 64], 9, 0.1),
    cross: randomTensor([64, 6], 11, 0.1),
  };
  await t.step("self and cross taps at 8x8, 4x4 and 2x2, 2 heads, d 8, L 6", async () => {
    const want = accumulateMapsBackward(taps, grad);
    const got = await accumulateMapsBackwardGpu(taps, grad, device);
    assert.equal(got.length, taps.length);
    got.forEach((g, i) => {
      assert.ok(maxAbs(want[i].dq) > 1e-6, `reference dq of tap ${i} is not zero`);
      const scale = Math.max(maxAbs(want[i].dq), maxAbs(want[i].dk));
      assertClose(g.dq, want[i].dq, `dq of tap ${i}`, 1e-4 * scale, 1e-3);
      assertClose(g.dk, want[i].dk, `dk of tap ${i}`, 1e-4 * scale, 1e-3);
    });
  });
  await t.step("a missing cross gradient gives zeros for cross taps", async () => {
    const got = await accumulateMapsBackwardAuto(taps, { self: grad.self }, { backend: "gpu" });
    const want = accumulateMapsBackward(taps, { self: grad.self });
    assert.equal(maxAbs(got[2].dq) + maxAbs(got[3].dk), 0);
    const scale = maxAbs(want[0].dq);
    assertClose(got[0].dq, want[0].dq, "dq of tap 0", 1e-4 * scale, 1e-3);
  });
  await t.step("head dimension 6 (scalar loads), 3 heads, L 70 (two column tiles)", async () => {
    const odd = [tap("self", 4, 4, 3, 6, 70, 21), tap("cross", 4, 4, 3, 6, 70, 23)];
    const g = { self: randomTensor([16, 16], 25), cross: randomTensor([16, 70], 27) };
    const want = accumulateMapsBackward(odd, g);
    const got = await accumulateMapsBackwardGpu(odd, g, device);
    got.forEach((r, i) => {
      const scale = Math.max(maxAbs(want[i].dq), maxAbs(want[i].dk));
      assertClose(r.dq, want[i].dq, `dq of tap ${i}`, 1e-4 * scale, 1e-3);
      assertClose(r.dk, want[i].dk, `dk of tap ${i}`, 1e-4 * scale, 1e-3);
    });
  });
  await t.step("a gradient of the wrong shape is rejected", async () => {
    await assert.rejects(
      () => accumulateMapsBackwardGpu(taps, { cross: tensor([64, 5]) }, device),
      AttnkitError,
    );
  });
});
