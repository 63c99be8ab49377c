/** K-means: recovers obvious clusters, is deterministic for a seed, never leaves a cluster empty. */
import assert from "node:assert/strict";
import { AttnkitError } from "../lib/errors.ts";
import { assignNearest, clusterMeans, kmeans } from "../lib/isac/kmeans.ts";
import { mulberry32 } from "../lib/random.ts";
import { tensor } from "../lib/tensor.ts";

/** Three tight groups of 20 points in 5-D around far-apart centres; returns points and true labels. */
function blobs(seed: number) {
  const rng = mulberry32(seed);
  const centres = [[0, 0, 0, 0, 0], [10, 0, 5, 0, 0], [0, 10, 0, -5, 3]];
  const data: number[] = [];
  const labels: number[] = [];
  for (let i = 0; i < 60; i++) {
    const c = (i * 7) % 3; // interleaved so the order gives nothing away
    labels.push(c);
    for (const v of centres[c]) data.push(v + (rng() - 0.5));
  }
  return { features: tensor([60, 5], data), labels };
}

Deno.test("kmeans recovers three well-separated clusters (up to relabelling)", () => {
  const { features, labels } = blobs(1);
  for (const seed of [0, 1, 2, 3, 42]) {
    const { assign, centroids, iterations } = kmeans(features, 3, { seed });
    assert.deepEqual(centroids.shape, [3, 5]);
    assert.ok(iterations >= 1 && iterations < 100);
    // Same true label ⇔ same cluster.
    for (let i = 0; i < 60; i++) {
      for (let j = 0; j < 60; j++) {
        assert.equal(
          assign[i] === assign[j],
          labels[i] === labels[j],
          `seed ${seed}: points ${i}, ${j}`,
        );
      }
    }
    // Each centroid is the mean of its members, near a true centre (noise is ±0.5).
    for (let c = 0; c < 3; c++) {
      const members = [...assign.keys()].filter((i) => assign[i] === c);
      for (let j = 0; j < 5; j++) {
        const mean = members.reduce((s, i) => s + features.data[i * 5 + j], 0) / members.length;
        assert.ok(Math.abs(mean - centroids.data[c * 5 + j]) < 1e-5);
      }
    }
  }
});

Deno.test("kmeans is deterministic for a seed", () => {
  const rng = mulberry32(9);
  // Unstructured data, where the result does depend on the seeding.
  const f = tensor([80, 3], Array.from({ length: 240 }, () => rng()));
  const a = kmeans(f, 4, { seed: 5 });
  const b = kmeans(f, 4, { seed: 5 });
  assert.deepEqual([...a.assign], [...b.assign]);
  assert.deepEqual([...a.centroids.data], [...b.centroids.data]);
  assert.equal(a.iterations, b.iterations);
  const others = [1, 2, 3, 4, 6, 7].map((seed) => kmeans(f, 4, { seed }).assign.join());
  assert.ok(
    others.some((o) => o !== a.assign.join()),
    "some other seed should give another local optimum",
  );
});

Deno.test("kmeans fills empty clusters: k = F and duplicate points still give k non-empty clusters", () => {
  const dup = tensor([4, 2], [1, 1, 1, 1, 1, 1, 5, 5]);
  const { assign, iterations } = kmeans(dup, 3, { seed: 0 });
  assert.equal(new Set(assign).size, 3);
  assert.ok(
    iterations < 10,
    `a refilled cluster should stay filled (took ${iterations} iterations)`,
  );
  const all = kmeans(tensor([3, 1], [0, 1, 2]), 3);
  assert.deepEqual([...all.assign].sort(), [0, 1, 2]);
  const one = kmeans(tensor([3, 1], [0, 1, 2]), 1);
  assert.deepEqual([...one.assign], [0, 0, 0]);
  assert.ok(Math.abs(one.centroids.data[0] - 1) < 1e-7);
  assert.equal(
    kmeans(tensor([50, 2], Array.from({ length: 100 }, (_, i) => i % 7)), 5, { maxIter: 1 })
      .iterations,
    1,
  );
});

Deno.test("kmeans rejects bad input", () => {
  const f = tensor([3, 2]);
  const isErr = (arg: string) => (e: unknown) => e instanceof AttnkitError && e.argument === arg;
  assert.throws(() => kmeans(f, 4), isErr("k"));
  assert.throws(() => kmeans(f, 0), isErr("k"));
  assert.throws(() => kmeans(tensor([6]), 1), isErr("features"));
  assert.throws(() => kmeans(tensor([1, 1], [NaN]), 1), isErr("features"));
  assert.throws(() => kmeans(f, 1, { maxIter: 0 }), isErr("opts.maxIter"));
});

Deno.test("assignNearest and clusterMeans: one Lloyd step by hand", () => {
  const f = tensor([4, 2], [0, 0, 1, 0, 9, 9, 10, 10]);
  const c = tensor([2, 2], [0.5, 0, 9.5, 9.5]);
  assert.deepEqual([...assignNearest(f, c)], [0, 0, 1, 1]);
  // A point equidistant from both centroids goes to the lower index.
  assert.deepEqual([...assignNearest(tensor([1, 1], [1]), tensor([2, 1], [0, 2]))], [0]);
  const m = clusterMeans(f, Int32Array.from([0, 0, 1, 1]), 3);
  assert.deepEqual([...m.data], [0.5, 0, 9.5, 9.5, 0, 0]);
  const isErr = (arg: string) => (e: unknown) => e instanceof AttnkitError && e.argument === arg;
  assert.throws(() => assignNearest(f, tensor([2, 3])), isErr("centroids"));
  assert.throws(() => clusterMeans(f, Int32Array.from([0, 0, 1, 3]), 3), isErr("assign"));
});
