/**
 * lib/stats against values computed independently with numpy/scipy
 * (tests/fixtures/make_issue11_fixtures.py): the percentile bootstrap (mulberry32 resampling
 * re-implemented in Python, numpy's percentile), ROC-AUC (scipy's Mann–Whitney U), normal
 * quantiles (scipy.stats.norm.ppf), the paired sample size and the sample standard deviation.
 */
import assert from "node:assert/strict";
import { bootstrapCi, mean, meanCi, quantileSorted } from "../lib/stats/bootstrap.ts";
import { rocAuc, withinGroupAuc } from "../lib/stats/auc.ts";
import { normalQuantile, pairedSampleSize, sampleSd } from "../lib/stats/power.ts";
import { AttnkitError } from "../lib/errors.ts";

const f = JSON.parse(
  await Deno.readTextFile(new URL("./fixtures/issue11/stats.json", import.meta.url)),
);

Deno.test("bootstrap: the percentile interval equals numpy's on the same resamples", () => {
  const b = f.bootstrap;
  const ci = meanCi(b.values, { reps: b.reps, seed: b.seed });
  assert.ok(Math.abs(ci.value - b.mean) < 1e-12);
  assert.ok(Math.abs(ci.lo - b.lo) < 1e-12, `lo ${ci.lo} vs ${b.lo}`);
  assert.ok(Math.abs(ci.hi - b.hi) < 1e-12, `hi ${ci.hi} vs ${b.hi}`);
  assert.equal(ci.n, b.values.length);
});

Deno.test("bootstrap: quantiles interpolate linearly; NaN replicates are dropped", () => {
  assert.equal(quantileSorted([1, 2, 3, 4], 0.5), 2.5);
  assert.equal(quantileSorted([1, 2, 3, 4], 0), 1);
  assert.equal(quantileSorted([1, 2, 3, 4], 1), 4);
  assert.ok(Number.isNaN(quantileSorted([], 0.5)));
  // A statistic that is NaN on half the resamples still gives an interval from the rest.
  const ci = bootstrapCi([0, 1], (s) => (s[0] === s[1] ? NaN : mean(s)), { reps: 200 });
  assert.equal(ci.lo, 0.5);
  assert.equal(ci.hi, 0.5);
  assert.throws(() => meanCi([]), AttnkitError);
  assert.throws(() => meanCi([1], { level: 1 }), AttnkitError);
});

Deno.test("rocAuc equals scipy's Mann–Whitney U / (n⁺ n⁻), ties counted ½", () => {
  const a = rocAuc(f.auc.scores, f.auc.labels);
  assert.ok(Math.abs(a - f.auc.auc) < 1e-12, `${a} vs ${f.auc.auc}`);
  assert.equal(rocAuc([1, 1], [true, false]), 0.5);
  assert.ok(Number.isNaN(rocAuc([1, 2], [true, true])));
  assert.throws(() => rocAuc([1], [true, false]), AttnkitError);
});

Deno.test("withinGroupAuc counts only pairs inside a group", () => {
  // Across groups the positive (score 0) is below the other group's negative (score 5): ignored.
  const g = [
    [{ score: 1, label: true }, { score: 0.5, label: false }],
    [{ score: 0, label: true }, { score: 0, label: false }, { score: 5, label: false }],
  ];
  assert.equal(withinGroupAuc(g), (1 + 0.5 + 0) / 3);
  assert.ok(Number.isNaN(withinGroupAuc([[{ score: 1, label: true }]])));
});

Deno.test("normalQuantile matches scipy.stats.norm.ppf to 1.2e-9 relative", () => {
  f.quantile.p.forEach((p: number, i: number) => {
    const z = normalQuantile(p);
    assert.ok(
      Math.abs(z - f.quantile.z[i]) <= 1.2e-9 * Math.abs(f.quantile.z[i]) + 1e-15,
      `p ${p}: ${z} vs ${f.quantile.z[i]}`,
    );
  });
  assert.throws(() => normalQuantile(0), AttnkitError);
});

Deno.test("pairedSampleSize and sampleSd match the formula with scipy's quantiles and numpy", () => {
  f.sampleSize.sd.forEach((sd: number, i: number) => {
    assert.equal(pairedSampleSize(sd, f.sampleSize.delta), f.sampleSize.n[i]);
  });
  assert.ok(Math.abs(sampleSd(f.sd.values) - f.sd.sd) < 1e-12);
  assert.throws(() => pairedSampleSize(0.3, 0), AttnkitError);
});
