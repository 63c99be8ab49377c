/**
 * isacLoss on synthetic scenes: overlapping objects must score higher than separated ones, and
 * the gradient with respect to the maps must match central finite differences with the
 * clustering, the binarisation and the foreground held fixed (checked, not assumed).
 */
import assert from "node:assert/strict";
import type { AttentionMaps } from "../lib/attention/types.ts";
import { AttnkitError } from "../lib/errors.ts";
import { isacLoss } from "../lib/isac/loss.ts";
import type { IsacResult, IsacSpec, IsacWeights } from "../lib/isac/loss.ts";
import { mpo } from "../lib/isac/mpo.ts";
import { similarity } from "../lib/isac/similarity.ts";
import { mulberry32 } from "../lib/random.ts";
import { tensor } from "../lib/tensor.ts";

interface Disc {
  cy: number;
  cx: number;
  r: number;
  token: number;
}

/**
 * A scene on an H × W grid: pixels inside a disc attend (self) to pixels sharing a disc with a
 * Gaussian fall-off, background pixels to nearby background; cross rows are a softmax favouring
 * the disc's token (or the start token 0 on the background). `noise` jitters every logit.
 */
function scene(H: number, W: number, discs: Disc[], L = 4, noise = 0, seed = 1): AttentionMaps {
  const rng = mulberry32(seed);
  const HW = H * W;
  const inside = (p: number) =>
    discs.map((
      d,
      i,
    ) => ((Math.floor(p / W) - d.cy) ** 2 + ((p % W) - d.cx) ** 2 <= d.r * d.r ? i : -1))
      .filter((i) => i >= 0);
  const self = new Float32Array(HW * HW);
  for (let i = 0; i < HW; i++) {
    const oi = inside(i);
    let z = 0;
    const row = new Float64Array(HW);
    for (let j = 0; j < HW; j++) {
      const oj = inside(j);
      const share = oi.length === 0 ? oj.length === 0 : oi.some((o) => oj.includes(o));
      const d2 = (Math.floor(i / W) - Math.floor(j / W)) ** 2 + ((i % W) - (j % W)) ** 2;
      row[j] = (share ? Math.exp(-d2 / 8) : 0) + 1e-3 + noise * 1e-2 * rng();
      z += row[j];
    }
    for (let j = 0; j < HW; j++) self[i * HW + j] = row[j] / z;
  }
  const cross = new Float32Array(HW * L);
  for (let i = 0; i < HW; i++) {
    const logits = new Float64Array(L).map(() => noise * rng());
    const oi = inside(i);
    if (oi.length === 0) logits[0] += 4;
    else logits[0] += 1;
    for (const o of oi) logits[discs[o].token] += 3;
    const z = logits.reduce((s, v) => s + Math.exp(v), 0);
    for (let j = 0; j < L; j++) cross[i * L + j] = Math.exp(logits[j]) / z;
  }
  return { self: tensor([HW, HW], self), cross: tensor([HW, L], cross), size: [H, W] };
}

const W1: IsacWeights = { ins: 1, cls: 1 };

Deno.test("overlapping instances score higher L_ins than separated ones", () => {
  const spec: IsacSpec = { tokens: [1], counts: [2] };
  const apart = isacLoss(
    scene(10, 10, [{ cy: 2, cx: 2, r: 1.6, token: 1 }, { cy: 7, cx: 7, r: 1.6, token: 1 }]),
    spec,
    W1,
  );
  const overlap = isacLoss(
    scene(10, 10, [{ cy: 4, cx: 3, r: 2.2, token: 1 }, { cy: 4, cx: 6, r: 2.2, token: 1 }]),
    spec,
    W1,
  );
  // Masks are global-min-max scaled rows, so absolute values are small; the ratio is what counts.
  assert.ok(
    overlap.ins > 20 * apart.ins && overlap.ins > 0.02,
    `overlap ${overlap.ins}, apart ${apart.ins}`,
  );
  assert.equal(apart.cls, 0, "one class: no L_cls");
  assert.deepEqual(apart.insPair, [0, 1]);
  assert.equal(apart.clsPair, null);
  // The separated scene's clusters are the two discs: pixels in the same disc share a cluster.
  const fg = [...apart.foreground];
  assert.ok(fg.length >= 10, `foreground ${fg.length}`);
  const disc = (p: number) => (Math.floor(p / 10) < 5 ? 0 : 1);
  for (let a = 0; a < fg.length; a++) {
    for (let b = 0; b < fg.length; b++) {
      assert.equal(apart.assign[a] === apart.assign[b], disc(fg[a]) === disc(fg[b]));
    }
  }
  // Masks are cluster means of rows of a [0, 1] map, so they stay in [0, 1].
  assert.ok(apart.masks.data.every((v) => v >= 0 && v <= 1));
  assert.deepEqual(apart.masks.shape, [fg.length, 2]);
});

Deno.test("overlapping classes score higher L_cls than separated ones", () => {
  const spec: IsacSpec = { tokens: [1, 2], counts: [1, 1] };
  const apart = isacLoss(
    scene(10, 10, [{ cy: 2, cx: 2, r: 1.6, token: 1 }, { cy: 7, cx: 7, r: 1.6, token: 2 }]),
    spec,
    W1,
  );
  const overlap = isacLoss(
    scene(10, 10, [{ cy: 4, cx: 3, r: 2.2, token: 1 }, { cy: 4, cx: 6, r: 2.2, token: 2 }]),
    spec,
    W1,
  );
  assert.ok(overlap.cls > 2 * apart.cls, `overlap ${overlap.cls}, apart ${apart.cls}`);
  assert.ok(overlap.ins > 2 * apart.ins, `overlap ${overlap.ins}, apart ${apart.ins}`);
  assert.ok(Math.abs(apart.value - (apart.ins + apart.cls)) < 1e-12);
  // Class maps lie in [0, 1], peak at 1 and vanish off the foreground.
  const fg = new Set(apart.foreground);
  const k = 2;
  for (let c = 0; c < k; c++) {
    let peak = 0;
    for (let p = 0; p < 100; p++) {
      const v = apart.classMaps.data[p * k + c];
      assert.ok(v >= 0 && v <= 1);
      if (!fg.has(p)) assert.equal(v, 0);
      peak = Math.max(peak, v);
    }
    assert.equal(peak, 1);
  }
  // L_cls is the MPO of the two class maps (the only pair, sign +1).
  const col = (c: number) => Array.from({ length: 100 }, (_, p) => apart.classMaps.data[p * k + c]);
  assert.ok(Math.abs(apart.cls - similarity("mpo", col(0), col(1)).value) < 1e-6);
  // With sign −1 (bind) the same pair enters negated.
  const bind = isacLoss(
    scene(10, 10, [{ cy: 2, cx: 2, r: 1.6, token: 1 }, { cy: 7, cx: 7, r: 1.6, token: 2 }]),
    { ...spec, signs: [[0, -1], [-1, 0]] },
    W1,
  );
  assert.ok(Math.abs(bind.cls + apart.cls) < 1e-12);
});

/**
 * The discrete choices isacLoss holds fixed or takes a subgradient at: foreground, clustering,
 * maximising pairs, the MPO argmax pixels, the class-map peaks and the min-max extremes. A finite
 * difference is only a derivative if none of them moves within ±h.
 */
function structure(r: IsacResult, maps: AttentionMaps): string {
  const n = r.masks.shape[1];
  const k = r.classMaps.shape[1];
  const col = (t: Float32Array, cols: number, c: number) => t.filter((_, i) => i % cols === c);
  const argmax = (v: Float32Array) => v.indexOf(Math.max(...v));
  return JSON.stringify([
    [...r.foreground],
    [...r.assign],
    r.insPair,
    r.clsPair,
    r.insPair && mpo(col(r.masks.data, n, r.insPair[0]), col(r.masks.data, n, r.insPair[1])).pixel,
    r.clsPair &&
    mpo(col(r.classMaps.data, k, r.clsPair[0]), col(r.classMaps.data, k, r.clsPair[1])).pixel,
    Array.from({ length: k }, (_, c) => argmax(col(r.classMaps.data, k, c))),
    extremes(maps.self.data),
    extremes(maps.cross.data),
  ]);
}

/**
 * Central differences of `value` for single entries of maps.self and maps.cross, using the
 * realised float32 step. isacLoss keeps the normalised foreground block in float32 (~6e-8
 * relative), so the value carries ~1e-7 of rounding; over 2h = 2e-4 that is ~1e-3 absolute,
 * against gradients of order 1-100 here. Truncation is ~h² · |f'''| with f''' ~ 1/range³ of the
 * min-max normalisation, also ~1e-3 at most. Hence |fd − analytic| ≤ 5e-3 + 1e-3 · |analytic|.
 * Where ±h would cross a kink (e.g. the smallest self entry is within h of the next), h is cut
 * tenfold (at most twice) and the absolute tolerance grows by the same factor; every entry must
 * find a step with unchanged structure, so the discrete choices are checked, not assumed.
 */
function checkGradient(
  maps: AttentionMaps,
  spec: IsacSpec,
  weights: IsacWeights,
  entries: { self: number[]; cross: number[] },
) {
  const base = isacLoss(maps, spec, weights);
  const baseStructure = structure(base, maps);
  let checked = 0;
  let nonzero = 0;
  for (const which of ["self", "cross"] as const) {
    const t = maps[which];
    const grad = base.grad[which]!;
    for (const i of entries[which]) {
      const v = t.data[i];
      let done = false;
      for (const h of [1e-4, 1e-5, 1e-6]) {
        t.data[i] = v + h;
        const vu = t.data[i];
        const up = isacLoss(maps, spec, weights);
        const su = structure(up, maps);
        t.data[i] = v - h;
        const vd = t.data[i];
        const down = isacLoss(maps, spec, weights);
        const sd = structure(down, maps);
        t.data[i] = v;
        if (su !== baseStructure || sd !== baseStructure) continue;
        const fd = (up.value - down.value) / (vu - vd);
        const got = grad.data[i];
        const tol = 5e-3 * (1e-4 / h) + 1e-3 * Math.abs(got);
        assert.ok(
          Math.abs(fd - got) <= tol,
          `${which}[${i}] (h = ${h}): fd ${fd}, analytic ${got}`,
        );
        done = true;
        break;
      }
      assert.ok(done, `${which}[${i}]: every step moved a discrete choice`);
      checked++;
      if (Math.abs(grad.data[i]) > 1e-2) nonzero++;
    }
  }
  return { checked, nonzero };
}

function extremes(d: Float32Array): number[] {
  let lo = 0;
  let hi = 0;
  d.forEach((v, i) => {
    if (v < d[lo]) lo = i;
    if (v > d[hi]) hi = i;
  });
  return [lo, hi];
}

/**
 * Entries of maps.self worth perturbing: the extremes, the 30 with the largest analytic gradient
 * (so the check cannot pass on zeros alone), then the foreground block, foreground rows and
 * random entries (where a wrongly zero gradient would show).
 */
function selfEntries(maps: AttentionMaps, base: IsacResult, seed: number, count: number): number[] {
  const rng = mulberry32(seed);
  const hw = maps.self.shape[0];
  const fg = base.foreground;
  const g = base.grad.self!.data;
  const pickFg = () => fg[Math.floor(rng() * fg.length)];
  const out = new Set<number>(extremes(maps.self.data));
  [...g.keys()].sort((a, b) => Math.abs(g[b]) - Math.abs(g[a])).slice(0, 30).forEach((i) =>
    out.add(i)
  );
  while (out.size < count * 0.6) out.add(pickFg() * hw + pickFg());
  while (out.size < count * 0.8) out.add(pickFg() * hw + Math.floor(rng() * hw));
  while (out.size < count) out.add(Math.floor(rng() * hw * hw));
  return [...out];
}

const FD_DISCS: Disc[] = [
  { cy: 2, cx: 2, r: 1.8, token: 1 },
  { cy: 3, cx: 5, r: 1.8, token: 1 },
  { cy: 5, cx: 3, r: 1.6, token: 2 },
];

Deno.test("isacLoss gradient matches finite differences (MPO, both phases, N = 3, k = 2)", () => {
  const maps = scene(7, 7, FD_DISCS, 4, 0.5, 3);
  const spec: IsacSpec = { tokens: [1, 2], counts: [2, 1], seed: 4 };
  const weights = { ins: 0.6, cls: 0.4 };
  const base = isacLoss(maps, spec, weights);
  assert.ok(base.ins > 0 && base.cls > 0, `both phases active: ${base.ins}, ${base.cls}`);
  const cross = Array.from({ length: maps.cross.data.length }, (_, i) => i);
  const { checked, nonzero } = checkGradient(maps, spec, weights, {
    self: selfEntries(maps, base, 1, 160),
    cross,
  });
  assert.equal(checked, 160 + 49 * 4);
  assert.ok(nonzero > 50, `only ${nonzero} entries with a gradient above 1e-2`);
  // The min-max extremes of both maps receive gradient (their own terms).
  for (const i of extremes(maps.self.data)) assert.notEqual(base.grad.self!.data[i], 0);
  for (const i of extremes(maps.cross.data)) assert.notEqual(base.grad.cross!.data[i], 0);
});

Deno.test("isacLoss gradient matches finite differences for the other metrics and for bind signs", async (t) => {
  const maps = scene(7, 7, FD_DISCS, 4, 0.5, 3);
  const cross = Array.from({ length: maps.cross.data.length }, (_, i) => i);
  for (const metric of ["iou", "kl", "mae"] as const) {
    await t.step(metric, () => {
      const spec: IsacSpec = { tokens: [1, 2], counts: [2, 1], seed: 4, metric };
      const base = isacLoss(maps, spec, { ins: 0.5, cls: 0.5 });
      const r = checkGradient(maps, spec, { ins: 0.5, cls: 0.5 }, {
        self: selfEntries(maps, base, 2, 60),
        cross,
      });
      assert.ok(r.nonzero > 20, `${metric}: only ${r.nonzero} non-trivial entries`);
    });
  }
  await t.step("sign −1", () => {
    const spec: IsacSpec = { tokens: [1, 2], counts: [2, 1], seed: 4, signs: [[0, -1], [-1, 0]] };
    const base = isacLoss(maps, spec, { ins: 0, cls: 1 });
    assert.ok(base.cls < 0);
    checkGradient(maps, spec, { ins: 0, cls: 1 }, { self: selfEntries(maps, base, 3, 60), cross });
  });
});

Deno.test("isacLoss: zero weights give zero gradients; N = 1 and k = 1 give zero terms", () => {
  const maps = scene(7, 7, FD_DISCS, 4, 0.5, 3);
  const r = isacLoss(maps, { tokens: [1, 2], counts: [2, 1] }, { ins: 0, cls: 0 });
  assert.equal(r.value, 0);
  assert.ok(r.ins > 0 && r.cls > 0);
  assert.ok(r.grad.self!.data.every((v) => v === 0) && r.grad.cross!.data.every((v) => v === 0));
  const one = isacLoss(maps, { tokens: [1], counts: [1] }, W1);
  assert.equal(one.ins, 0);
  assert.equal(one.cls, 0);
  assert.equal(one.insPair, null);
  assert.ok(one.grad.self!.data.every((v) => v === 0));
});

Deno.test("isacLoss rejects bad input with AttnkitErrors naming the argument", async (t) => {
  const maps = scene(6, 6, [{ cy: 2, cx: 2, r: 1.5, token: 1 }], 4);
  const throwsFor = (argument: string, f: () => unknown, text?: RegExp) =>
    assert.throws(f, (e: unknown) => {
      assert.ok(e instanceof AttnkitError, String(e));
      assert.equal(e.argument, argument);
      if (text) assert.match(e.message, text);
      return true;
    });
  await t.step(
    "more instances than foreground pixels",
    () =>
      throwsFor("spec.counts", () => isacLoss(maps, { tokens: [1], counts: [36] }, W1), /N = 36/),
  );
  await t.step(
    "token past L",
    () =>
      throwsFor(
        "spec.tokens",
        () => isacLoss(maps, { tokens: [1, 4], counts: [1, 1] }, W1),
        /L = 4/,
      ),
  );
  await t.step(
    "counts do not match tokens",
    () => throwsFor("spec.counts", () => isacLoss(maps, { tokens: [1, 2], counts: [1] }, W1)),
  );
  await t.step(
    "non-integer count",
    () => throwsFor("spec.counts", () => isacLoss(maps, { tokens: [1], counts: [1.5] }, W1)),
  );
  await t.step(
    "bad signs",
    () =>
      throwsFor(
        "spec.signs",
        () => isacLoss(maps, { tokens: [1, 2], counts: [1, 1], signs: [[0, 2], [2, 0]] }, W1),
      ),
  );
  await t.step(
    "bad metric",
    () =>
      throwsFor(
        "spec.metric",
        () => isacLoss(maps, { tokens: [1], counts: [1], metric: "l2" as "iou" }, W1),
      ),
  );
  await t.step(
    "self of the wrong size",
    () =>
      throwsFor(
        "maps.self",
        () => isacLoss({ ...maps, self: tensor([35, 35]) }, { tokens: [1], counts: [1] }, W1),
      ),
  );
  await t.step("NaN in cross", () => {
    const cross = tensor(maps.cross.shape, maps.cross.data.slice());
    cross.data[3] = NaN;
    throwsFor("maps.cross", () => isacLoss({ ...maps, cross }, { tokens: [1], counts: [1] }, W1));
  });
  await t.step(
    "weights not finite",
    () =>
      throwsFor(
        "weights",
        () => isacLoss(maps, { tokens: [1], counts: [1] }, { ins: NaN, cls: 1 }),
      ),
  );
});
