/**
 * `accumulateMapsOrt` (ISAC Eq. 1-2 on onnxruntime's CPU kernels, a row block at a time) against
 * the TypeScript reference `accumulateMaps`, on random taps with upsampled self and cross layers,
 * row blocks that do not divide the rows, both providers that load here, and bad input.
 */
import assert from "node:assert/strict";
import { accumulateMapsAuto } from "../kernels/accumulate_maps.ts";
import { accumulateMaps } from "../lib/attention/accumulate.ts";
import { accumulateMapsOrt } from "../lib/attention/accumulate_ort.ts";
import type { AttentionMaps, AttentionTap } from "../lib/attention/types.ts";
import { AttnkitError } from "../lib/errors.ts";
import { fastestCpuProvider, ort } from "../lib/onnx/ort.ts";
import { gaussian, mulberry32 } from "../lib/random.ts";
import { tensor } from "../lib/tensor.ts";

ort.env.logLevel = "error";

function tap(
  kind: "self" | "cross",
  side: number,
  heads: number,
  d: number,
  l: number,
  seed: number,
): AttentionTap {
  const rng = mulberry32(seed);
  const n = side * side;
  const nk = kind === "self" ? n : l;
  return {
    kind,
    q: tensor([heads, n, d], gaussian(rng, heads * n * d).map((v) => v * 1.5)),
    k: tensor([heads, nk, d], gaussian(rng, heads * nk * d).map((v) => v * 1.5)),
    size: [side, side],
  };
}

function close(got: AttentionMaps, want: AttentionMaps, tol: number): void {
  assert.deepEqual(got.size, want.size);
  for (const part of ["self", "cross"] as const) {
    assert.deepEqual(got[part].shape, want[part].shape);
    let worst = 0;
    for (let i = 0; i < want[part].data.length; i++) {
      worst = Math.max(worst, Math.abs(got[part].data[i] - want[part].data[i]));
    }
    assert.ok(worst < tol, `${part}: max |Δ| ${worst}`);
  }
}

const TAPS = [
  tap("self", 8, 3, 12, 0, 1),
  tap("self", 4, 2, 16, 0, 3),
  tap("cross", 8, 3, 12, 7, 5),
  tap("cross", 2, 2, 16, 7, 7),
];

Deno.test("accumulateMapsOrt equals accumulateMaps (upsampled layers, uneven row blocks)", async () => {
  const want = accumulateMaps(TAPS);
  const providers = [...new Set(["wasm", await fastestCpuProvider()])] as ("wasm" | "node")[];
  for (const provider of providers) {
    // 3 heads × 64 keys × 4 bytes × 5 rows: blocks of 5 rows, the last one short.
    close(await accumulateMapsOrt(TAPS, { provider, blockBytes: 3 * 64 * 4 * 5 }), want, 1e-6);
    close(await accumulateMapsOrt(TAPS, { provider }), want, 1e-6);
  }
});

Deno.test("accumulateMapsOrt: self-only and cross-only tap lists keep the empty map's shape", async () => {
  const selfOnly = await accumulateMapsOrt(TAPS.slice(0, 2));
  close(selfOnly, accumulateMaps(TAPS.slice(0, 2)), 1e-6);
  assert.deepEqual(selfOnly.cross.shape, [64, 0]);
  const crossOnly = await accumulateMapsOrt(TAPS.slice(2));
  close(crossOnly, accumulateMaps(TAPS.slice(2)), 1e-6);
  assert.deepEqual(crossOnly.self.shape, [64, 0]);
});

Deno.test("accumulateMapsAuto on the cpu backend: big taps (onnxruntime path) give the reference maps", async () => {
  const big = [tap("self", 32, 4, 40, 0, 11), tap("cross", 32, 4, 40, 77, 13)];
  const got = await accumulateMapsAuto(big, { backend: "cpu" });
  close(got, accumulateMaps(big), 1e-6);
  // Rows are distributions (a check independent of the reference).
  for (let p = 0; p < 1024; p += 101) {
    let s = 0;
    for (let c = 0; c < 1024; c++) s += got.self.data[p * 1024 + c];
    assert.ok(Math.abs(s - 1) < 1e-4);
  }
});

Deno.test("accumulateMapsOrt: bad taps are AttnkitErrors naming the tap", async () => {
  const bad = [{ ...TAPS[0], size: [3, 4] as const }];
  await assert.rejects(
    () => accumulateMapsOrt(bad),
    (e: unknown) => e instanceof AttnkitError && e.argument.startsWith("taps[0]"),
  );
  const nan = TAPS[2].q.data.slice();
  nan[5] = NaN;
  await assert.rejects(
    () => accumulateMapsOrt([{ ...TAPS[2], q: tensor(TAPS[2].q.shape, nan) }]),
    (e: unknown) => e instanceof AttnkitError && e.argument === "taps[0].q",
  );
});
