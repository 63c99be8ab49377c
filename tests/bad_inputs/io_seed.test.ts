/**
 * Bad-input corpus, seeds (issue 10 F10): a seed is a safe integer or an error naming it; distinct
 * seeds give distinct noise (2^32 is not 0, −1 is not 2^32 − 1); the candidates of one call are
 * distinct; seeds below 2^32 keep their historical streams (known mulberry32 values).
 *
 * @module
 */
import assert from "node:assert/strict";
import { kmeans } from "../../lib/isac/kmeans.ts";
import { checkSeed, mulberry32, seededRng, splitmix64 } from "../../lib/random.ts";
import { initialLatents } from "../../lib/runtime/sample.ts";
import { benchmarkPrompts } from "../../lib/shapes/benchmark_prompts.ts";
import { tensor } from "../../lib/tensor.ts";
import { throwsClearly } from "./io_support.ts";

const same = (a: Float32Array, b: Float32Array) => a.every((v, i) => v === b[i]);

for (const bad of [1e300, 0.5, NaN, Infinity, -Infinity, 2 ** 53, -(2 ** 53), 1.0000001]) {
  Deno.test(`io_seed F10: initialLatents seed ${bad} → error naming seed`, () => {
    throwsClearly(() => initialLatents([4, 2, 2], bad, 4), "seed", /safe integer/);
  });
}
for (const bad of ["", "3", null, undefined, 3n] as unknown[]) {
  Deno.test(`io_seed F10: checkSeed(${typeof bad === "bigint" ? "3n" : JSON.stringify(bad)}) → error naming seed`, () => {
    throwsClearly(() => checkSeed(bad), "seed", /safe integer/);
  });
}
Deno.test("io_seed F10: kmeans seed 0.5 → error naming the seed (was: silently seed 0)", () => {
  const f = tensor([6, 1], [0, 1, 2, 10, 11, 12]);
  throwsClearly(() => kmeans(f, 2, { seed: 0.5 }), "opts.seed", /safe integer/);
  throwsClearly(() => kmeans(f, 2, { seed: 2 ** 60 }), "opts.seed", /safe integer/);
});
Deno.test("io_seed F10: seed + candidates beyond the safe integers → error naming seed", () => {
  throwsClearly(
    () => initialLatents([4, 2, 2], Number.MAX_SAFE_INTEGER, 2),
    "seed",
    /beyond the safe/,
  );
  assert.equal(initialLatents([4, 2, 2], Number.MAX_SAFE_INTEGER, 1).shape[0], 1);
});
Deno.test("io_seed F10: candidates 0 or 1.5 → error naming candidates", () => {
  throwsClearly(() => initialLatents([4, 2, 2], 0, 0), "candidates", /integer ≥ 1/);
  throwsClearly(() => initialLatents([4, 2, 2], 0, 1.5), "candidates", /integer ≥ 1/);
});
Deno.test("io_seed F10: seed 2^32 gives other noise than seed 0", () => {
  const a = initialLatents([4, 2, 2], 2 ** 32, 1).data;
  const b = initialLatents([4, 2, 2], 0, 1).data;
  assert.ok(!same(a, b));
});
Deno.test("io_seed F10: seed −1 gives other noise than seed 2^32 − 1; 2^33 other than 2^32", () => {
  const f = (s: number) => initialLatents([4, 2, 2], s, 1).data;
  assert.ok(!same(f(-1), f(2 ** 32 - 1)));
  assert.ok(!same(f(2 ** 33), f(2 ** 32)));
  assert.ok(!same(f(-(2 ** 32)), f(0)));
});
Deno.test("io_seed F10: the 4 candidates of a large seed are pairwise distinct", () => {
  const s = 2 ** 52 + 12345;
  const x = initialLatents([4, 2, 2], s, 4).data;
  for (let c = 0; c < 4; c++) {
    for (let d = c + 1; d < 4; d++) {
      assert.ok(
        !same(x.subarray(16 * c, 16 * c + 16), x.subarray(16 * d, 16 * d + 16)),
        `${c} vs ${d}`,
      );
    }
  }
});
Deno.test("io_seed F10: 1000 consecutive large seeds give 1000 distinct first draws", () => {
  const firsts = new Set<number>();
  for (let i = 0; i < 1000; i++) firsts.add(seededRng(2 ** 40 + i)());
  assert.equal(firsts.size, 1000);
});
Deno.test("io_seed F10: seeds below 2^32 keep their historical (mulberry32) streams", () => {
  for (const s of [0, 1, 42, 2 ** 32 - 1]) {
    const a = seededRng(s), b = mulberry32(s);
    for (let i = 0; i < 5; i++) assert.equal(a(), b());
  }
  // A known value of mulberry32(0), computed by the reference C code.
  assert.equal(Math.round(mulberry32(0)() * 4294967296), 1144304738);
});
Deno.test("io_seed F10: SplitMix64 matches the reference outputs for seed 1234567", () => {
  // First outputs of splitmix64.c (Vigna) with x = 1234567: 6457827717110365317, 3203168211198807973.
  const r = splitmix64(1234567n);
  assert.equal(r(), Number(6457827717110365317n >> 11n) / 2 ** 53);
  assert.equal(r(), Number(3203168211198807973n >> 11n) / 2 ** 53);
});
Deno.test("io_seed F10: a seed reproduces itself (determinism kept)", () => {
  const s = -987654321012;
  assert.ok(same(initialLatents([4, 4, 4], s, 2).data, initialLatents([4, 4, 4], s, 2).data));
});
Deno.test("io_seed F10: benchmarkPrompts seed 1e300 → error naming seed", () => {
  throwsClearly(
    () => benchmarkPrompts({ seed: 1e300, perSetting: 1 } as never),
    "seed",
    /safe integer/,
  );
});
