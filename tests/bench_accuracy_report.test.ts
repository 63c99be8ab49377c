/**
 * The accuracy benchmark's judge (taxonomy, class-only vs class+colour) on hand-built detections,
 * and its report: shards merged in any order give the same bytes as one run, and the intervals
 * and paired differences are those of lib/stats on hand-computed per-prompt values.
 */
import assert from "node:assert/strict";
import type { Group } from "../lib/shapes/scene.ts";
import type { Scored } from "../lib/shapes/score.ts";
import { judgeImage } from "../bench/judge.ts";
import { type JudgedTrial, mergeTrials, type RunConfig } from "../bench/accuracy_report.ts";
import { itemsOfConfig, mergeReport, parseTrialFile, shardUnits } from "../bench/accuracy.ts";
import { parseShard } from "../bench/accuracy_core.ts";
import { meanCi } from "../lib/stats/bootstrap.ts";
import { AttnkitError } from "../lib/errors.ts";

const g = (cls: string, colour: string | null, count = 1) => ({ cls, colour, count }) as Group;
const d = (cls: string, colour: string, clsScore = 0.9) => ({ cls, colour, clsScore }) as Scored;

Deno.test("judge: swapped colours are class-only right, class+colour wrong, taxonomy wrong colour", () => {
  const j = judgeImage([g("circle", "red"), g("oval", "blue")], [
    d("circle", "blue"),
    d("oval", "red"),
  ]);
  assert.equal(j.classOnly, 1);
  assert.equal(j.classColour, 0);
  assert.equal(j.imageClassOnly, true);
  assert.equal(j.imageClassColour, false);
  assert.equal(j.taxonomy.wrongColour, 2);
  assert.equal(j.taxonomy.missing + j.taxonomy.merged + j.taxonomy.wrongClass, 0);
});

Deno.test("judge: wrong class, merged blob, missing and extra are told apart", () => {
  const j = judgeImage([g("heart", "red"), g("star", "green"), g("moon", "blue")], [
    d("circle", "red"), // red but a circle: wrong class
    d("star", "green", 0.3), // a green blob the detector cannot call: merged / malformed
  ]);
  assert.deepEqual(
    { ...j.taxonomy },
    { units: 3, missing: 1, merged: 1, wrongClass: 1, wrongColour: 0, extra: 0 },
  );
  const many = judgeImage([g("heart", "yellow", 3)], [
    d("heart", "yellow"),
    d("heart", "yellow"),
    d("heart", "yellow"),
    d("heart", "yellow"),
  ]);
  assert.equal(many.instanceCapped, 1);
  assert.equal(many.exact, false);
  assert.equal(many.taxonomy.extra, 1);
  const two = judgeImage([g("heart", "yellow", 3)], [d("heart", "yellow"), d("heart", "red")]);
  assert.equal(two.instanceCapped, 2 / 3);
  assert.equal(two.instanceColour, 1 / 3);
  assert.equal(two.taxonomy.wrongColour, 1);
  assert.equal(two.taxonomy.missing, 1);
});

const CONFIG: RunConfig = {
  draw: "validation",
  promptSeed: 7001,
  perSetting: 2,
  ks: [2, 3],
  settings: ["multi-class", "multi-instance"],
  seeds: [0, 100],
  options: { steps: 25, guidance: 5, isacEta: 10, isacVariant: "joint", candidates: 4 },
  model: "test model",
};

/** Deterministic fake trials for every (method, item, seed) of the config. */
function fakeTrials(methods: string[]): JudgedTrial[] {
  const items = itemsOfConfig(CONFIG);
  const out: JudgedTrial[] = [];
  for (const m of methods) {
    for (const it of items) {
      for (const seed of CONFIG.seeds) {
        const h = (it.id * 7 + seed / 100 * 3 + m.length) % 5;
        const found = it.groups.slice(0, Math.max(0, it.groups.length - (h % 3))).map((gr) =>
          d(gr.cls, h === 4 ? "red" : gr.colour!)
        );
        out.push({
          method: m,
          item: it.id,
          seed,
          ms: 100 * h,
          judgement: judgeImage(it.groups, found),
        });
      }
    }
  }
  return out;
}

const fileText = (trials: JudgedTrial[]) =>
  [JSON.stringify({ config: CONFIG }), ...trials.map((t) => JSON.stringify(t))].join("\n") + "\n";

Deno.test("report: shards in any order merge to the one-run report, bit for bit", () => {
  const trials = fakeTrials(["base", "isac-opt", "ae"]);
  const one = mergeReport([parseTrialFile(fileText(trials), "one")]);
  const items = itemsOfConfig(CONFIG);
  const shards = [0, 1, 2].map((i) => {
    const units = shardUnits(items, CONFIG.seeds, { index: i, count: 3 });
    const keys = new Set(units.map((u) => `${u.item.id}/${u.seed}`));
    return trials.filter((t) => keys.has(`${t.item}/${t.seed}`));
  });
  // Shard units partition the work.
  assert.equal(shards.reduce((s, x) => s + x.length, 0), trials.length);
  const merged = mergeReport(
    [2, 0, 1].map((i) => parseTrialFile(fileText(shards[i].reverse()), `s${i}`)),
  );
  assert.equal(merged.md, one.md);
  assert.equal(merged.json, one.json);
  // A method split across files (different options per method) merges too.
  const byMethod = ["base", "isac-opt", "ae"].map((m) => trials.filter((t) => t.method === m));
  const split = mergeReport(byMethod.map((ts, i) => parseTrialFile(fileText(ts), `m${i}`)));
  assert.equal(split.md, one.md);
});

Deno.test("report: a cell and a paired difference are lib/stats intervals of per-prompt means", () => {
  const trials = fakeTrials(["base", "isac-opt"]);
  const { json } = mergeReport([parseTrialFile(fileText(trials), "x")]);
  const data = JSON.parse(json).data;
  const items = itemsOfConfig(CONFIG).filter((i) => i.setting === "multi-class");
  const per = (m: string, f: (t: JudgedTrial) => number) =>
    items.map((it) => {
      const ts = trials.filter((t) => t.method === m && t.item === it.id);
      return ts.reduce((s, t) => s + f(t), 0) / ts.length;
    });
  const base = per("base", (t) => t.judgement.classOnly);
  const want = meanCi(base);
  assert.deepEqual(data.cells["multi-class"].base.classOnly.value, want);
  // Per prompt: the mean over seeds of (method − base) on the same seed.
  const at = new Map(
    trials.filter((t) => t.method === "base").map((t) => [`${t.item}/${t.seed}`, t]),
  );
  const diff = meanCi(
    per(
      "isac-opt",
      (t) => t.judgement.classOnly - at.get(`${t.item}/${t.seed}`)!.judgement.classOnly,
    ),
  );
  assert.deepEqual(data.cells["multi-class"]["isac-opt"].classOnly.diff, diff);
});

Deno.test("report: conflicting trials and mismatched draws are errors; --shard is checked", () => {
  const t = fakeTrials(["base"]);
  const changed = { ...t[0], ms: t[0].ms + 1 };
  assert.throws(() => mergeTrials([[t[0]], [changed]]), AttnkitError);
  const other = { ...CONFIG, promptSeed: 1 };
  assert.throws(
    () =>
      mergeReport([
        parseTrialFile(fileText(t), "a"),
        parseTrialFile(JSON.stringify({ config: other }) + "\n", "b"),
      ]),
    (e) => e instanceof AttnkitError && /files\[1\]/.test(e.message),
  );
  assert.deepEqual(parseShard("2/4"), { index: 1, count: 4 });
  assert.throws(() => parseShard("0/4"), AttnkitError);
  assert.throws(() => parseShard("5/4"), AttnkitError);
});
