/** MPO (Eq. 7) and the Table 3 pair metrics on known values; every VJP against float64 finite differences. */
import assert from "node:assert/strict";
import { AttnkitError } from "../lib/errors.ts";
import { mpo } from "../lib/isac/mpo.ts";
import {
  KL_EPSILON,
  similarity,
  SIMILARITY_METRICS,
  similarityVjp,
} from "../lib/isac/similarity.ts";
import { mulberry32 } from "../lib/random.ts";

const close = (a: number, b: number, tol: number, what = "") =>
  assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);

Deno.test("mpo: known values and argmax", () => {
  const r = mpo(Float32Array.from([0.1, 0.9, 0.5, 0.2]), Float32Array.from([1, 0.2, 0.8, 0.9]));
  // Products 0.1, 0.18, 0.4, 0.18 → 0.4 at pixel 2.
  close(r.value, 0.4, 1e-7);
  assert.equal(r.pixel, 2);
  assert.deepEqual(mpo(Float32Array.from([1, 0]), Float32Array.from([0, 1])), {
    value: 0,
    pixel: 0,
  });
  assert.equal(
    mpo(Float32Array.from([0.5, 0.5]), Float32Array.from([1, 1])).pixel,
    0,
    "first pixel on ties",
  );
  assert.throws(
    () => mpo(new Float32Array(2), new Float32Array(3)),
    (e: unknown) => e instanceof AttnkitError && e.argument === "b",
  );
});

Deno.test("similarities: known values", () => {
  const a = [0.2, 0.8, 0, 1];
  const b = [0.6, 0.4, 0, 1];
  // Soft IoU: Σ min = 0.2 + 0.4 + 0 + 1 = 1.6, Σ max = 0.6 + 0.8 + 0 + 1 = 2.4.
  close(similarity("iou", a, b).value, 1.6 / 2.4, 1e-12, "iou");
  // MAE: 1 − (0.4 + 0.4 + 0 + 0) / 4.
  close(similarity("mae", a, b).value, 0.8, 1e-12, "mae");
  close(similarity("mpo", a, b).value, 1, 1e-12, "mpo");
  assert.equal(similarity("mpo", a, b).pixel, 3);
  // Identical masks: KL similarity exp(0) = 1; IoU = 1; MAE = 1.
  for (const m of ["kl", "iou", "mae"] as const) close(similarity(m, a, a).value, 1, 1e-12, m);
  // Two-point distributions p = (1, 0), q = (0, 1) smoothed by ε: SKL = Σ (p − q) log(p / q).
  const eps = KL_EPSILON;
  const p = [(1 + eps) / (1 + 2 * eps), eps / (1 + 2 * eps)];
  const skl = 2 * (p[0] - p[1]) * Math.log(p[0] / p[1]);
  close(similarity("kl", [1, 0], [0, 1]).value, Math.exp(-skl), 1e-15, "kl disjoint");
  // Scale does not matter to kl (the masks are normalised), beyond ε.
  close(
    similarity("kl", [0.2, 0.4, 0.6], [0.3, 0.3, 0.1]).value,
    similarity("kl", [2, 4, 6], [0.3, 0.3, 0.1]).value,
    1e-5,
    "kl scale",
  );
  close(similarity("iou", [0, 0], [0, 0]).value, 0, 0, "empty iou");
  assert.throws(
    () => similarity("dice" as "iou", a, b),
    (e: unknown) => e instanceof AttnkitError && e.argument === "metric",
  );
});

Deno.test("similarityVjp matches float64 central differences for every metric", () => {
  const rng = mulberry32(21);
  const n = 12;
  // Values kept apart so no |a − b|, min/max or argmax switches within ±h.
  const a = Float64Array.from({ length: n }, (_, i) => 0.05 + 0.9 * ((i * 0.37 + rng() * 0.1) % 1));
  const b = Float64Array.from(
    { length: n },
    (_, i) => 0.05 + 0.9 * ((i * 0.61 + 0.2 + rng() * 0.1) % 1),
  );
  const g = 1.7;
  const h = 1e-6;
  for (const metric of SIMILARITY_METRICS) {
    const { da, db } = similarityVjp(metric, a, b, g);
    let largest = 0;
    for (const [name, x, got] of [["a", a, da], ["b", b, db]] as const) {
      for (let i = 0; i < n; i++) {
        const v = x[i];
        x[i] = v + h;
        const up = similarity(metric, a, b).value;
        x[i] = v - h;
        const down = similarity(metric, a, b).value;
        x[i] = v;
        const fd = (g * (up - down)) / (2 * h);
        largest = Math.max(largest, Math.abs(fd));
        // float64: rounding ~1e-16 / 1e-6 = 1e-10, truncation ~h² ≈ 1e-12 (times curvature ≤ 1e3 for kl).
        close(got[i], fd, 1e-7, `${metric} d${name}[${i}]`);
      }
    }
    assert.ok(largest > 1e-2, `${metric}: gradient should not vanish`);
  }
});

Deno.test("iou and mae subgradients at ties are symmetric", () => {
  const { da, db } = similarityVjp("iou", [0.5, 0.2], [0.5, 0.7]);
  close(da[0], db[0], 0, "iou tie");
  const m = similarityVjp("mae", [0.3, 0.1], [0.3, 0.4]);
  close(m.da[0], 0, 0, "mae tie a");
  close(m.db[0], 0, 0, "mae tie b");
});
