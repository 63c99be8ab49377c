import assert from "node:assert/strict";
import { benchmarkPrompts, parsePromptFile } from "../lib/shapes/benchmark_prompts.ts";
import type { Group } from "../lib/shapes/scene.ts";
import {
  aggregate,
  type BenchItem,
  exampleGrid,
  itemsFromBenchmark,
  itemsFromFile,
  judge,
  renderMarkdown,
  type RunMeta,
  type Trial,
} from "../bench/accuracy.ts";
import {
  aeRefineSteps,
  METHOD_DEFAULTS,
  type MethodEntry,
  resolveMethods,
} from "../bench/methods.ts";
import { AttnkitError } from "../lib/errors.ts";

/** Detections that match `groups` exactly, or only the first instance of the first group. */
function fakeDetections(groups: readonly Group[], all: boolean) {
  const out = [];
  for (const [gi, g] of groups.entries()) {
    for (let i = 0; i < g.count; i++) {
      if (all || (gi === 0 && i === 0)) {
        out.push({ cls: g.cls, colour: g.colour ?? "red" as const, clsScore: 0.9 });
      }
    }
  }
  return out;
}

function trialOf(method: string, it: BenchItem, seed: number, all: boolean): Trial {
  const found = fakeDetections(it.groups, all);
  return { method, item: it.id, seed, ...judge(it.groups, found), ms: 1000, detected: found };
}

const META: RunMeta = {
  command: "deno run -A bench/accuracy.ts --test",
  date: "2026-01-01T00:00:00.000Z",
  model: "fake",
  options: METHOD_DEFAULTS,
  seeds: [0, 100],
  promptSource: "test",
  totalSeconds: 60,
};

Deno.test("bench accuracy: prompt set → items, round-robin over (setting, k)", () => {
  const items = itemsFromBenchmark(benchmarkPrompts({ seed: 3, perSetting: 2 }));
  assert.equal(items.length, 16);
  assert.deepEqual(items.map((i) => i.id), [...Array(16).keys()]);
  // The first round covers every (setting, k) once before any repeats.
  const firstRound = items.slice(0, 8).map((i) => `${i.setting}/${i.k}`);
  assert.equal(new Set(firstRound).size, 8);
  assert.deepEqual(
    items.slice(8).map((i) => `${i.setting}/${i.k}`),
    firstRound,
  );
  for (const it of items) {
    const total = it.groups.reduce((s, g) => s + g.count, 0);
    assert.equal(it.setting === "multi-class" ? it.groups.length : total, it.k);
  }
});

Deno.test("bench accuracy: aggregation by k and the average over k", async (t) => {
  const items = itemsFromBenchmark(benchmarkPrompts({ seed: 3, perSetting: 2 }));
  const trials: Trial[] = [];
  for (const it of items) {
    for (const seed of [0, 100]) {
      trials.push(trialOf("perfect", it, seed, true));
      trials.push(trialOf("one", it, seed, false));
    }
  }
  // One failed run of "one": counts as 0 in its cell.
  const failed = items.find((i) => i.setting === "multi-instance" && i.k === 2)!;
  trials.push({
    method: "one",
    item: failed.id,
    seed: 200,
    classAccuracy: 0,
    instanceAccuracy: 0,
    exact: false,
    ms: 0,
    detected: [],
    error: "boom",
  });
  const rows = aggregate(items, trials, [
    { name: "perfect", label: "perfect" },
    { name: "one", label: "one" },
    { name: "gone", label: "gone", unavailable: "not available: no module" },
  ], { perfect: 512, one: 600 });

  await t.step("a method that finds everything scores 100% everywhere", () => {
    const mc = rows[0].settings["multi-class"]!;
    const mi = rows[0].settings["multi-instance"]!;
    for (const k of [2, 3, 4, 5]) {
      assert.equal(mc.byK[k].accuracy, 1);
      assert.equal(mc.byK[k].trials, 4);
      assert.equal(mi.byK[k].accuracy, 1);
    }
    assert.equal(mc.average, 1);
    assert.equal(mc.exact, 1);
    assert.equal(mc.msMean, 1000);
    assert.equal(rows[0].peakRssMb, 512);
  });
  await t.step("one object found: 1/k per cell, the average is the mean over columns", () => {
    const mc = rows[1].settings["multi-class"]!;
    for (const k of [2, 3, 4, 5]) assert.ok(Math.abs(mc.byK[k].accuracy - 1 / k) < 1e-12);
    const expected = (1 / 2 + 1 / 3 + 1 / 4 + 1 / 5) / 4;
    assert.ok(Math.abs(mc.average - expected) < 1e-12);
    assert.equal(mc.exact, 0);
    const mi = rows[1].settings["multi-instance"]!;
    // n = 2 has 4 trials at 1/2 and one failed trial at 0.
    assert.equal(mi.byK[2].trials, 5);
    assert.ok(Math.abs(mi.byK[2].accuracy - 2 / 5) < 1e-12);
    assert.ok(Math.abs(mi.byK[5].accuracy - 1 / 5) < 1e-12);
    assert.equal(mi.errors, 1);
    // The average is over the k columns, not pooled over trials (pooled: 5.13/17 ≈ 0.302).
    assert.ok(Math.abs(mi.average - (2 / 5 + 1 / 3 + 1 / 4 + 1 / 5) / 4) < 1e-12);
    // Failed runs do not enter the latency.
    assert.equal(mi.msMean, 1000);
  });
  await t.step("an unavailable method keeps its row with the reason", () => {
    assert.equal(rows[2].unavailable, "not available: no module");
    assert.deepEqual(rows[2].settings, {});
  });
  await t.step("markdown: one table per setting with the k columns and the average", () => {
    const md = renderMarkdown(META, items, rows);
    assert.match(md, /## Multi-class accuracy/);
    assert.match(md, /## Multi-instance accuracy/);
    assert.match(md, /\| Method \| #2 \| #3 \| #4 \| #5 \| Average \| Exact \|/);
    assert.match(
      md,
      /\| perfect \| 100% \| 100% \| 100% \| 100% \| \*\*100%\*\* \| 100% \| 1\.0 s \| 512 \|/,
    );
    // 1/2, 1/3, 1/4, 1/5 → 50%, 33%, 25%, 20%; average 32%.
    assert.match(md, /\| one \| 50% \| 33% \| 25% \| 20% \| \*\*32%\*\* \| 0% \| 1\.0 s \| 600 \|/);
    assert.match(md, /\| one \| 40% \| 33% \| 25% \| 20% \| \*\*30%\*\* \| 0% \(1 failed\)/);
    assert.match(md, /\| gone \| not available: no module \|/);
    assert.match(md, /Seeds per prompt: 0, 100/);
    for (const it of items) {
      assert.ok(md.includes(`| ${it.id} | ${it.setting} | ${it.k} | ${it.prompt} |`));
    }
  });
});

Deno.test("bench accuracy: a prompt file is scored on both measures", () => {
  const items = itemsFromFile(parsePromptFile(
    "# mine\na photo of two red circles and a blue star\nthree green hearts\n",
  ));
  assert.deepEqual(items.map((i) => [i.setting, i.k, i.line]), [["file", 3, 2], ["file", 3, 3]]);
  const trials: Trial[] = [
    // Both red circles, no star: classes 1/2, instances 2/3.
    {
      method: "m",
      item: 0,
      seed: 0,
      ...judge(items[0].groups, [
        { cls: "circle", colour: "red", clsScore: 0.9 },
        { cls: "circle", colour: "red", clsScore: 0.9 },
      ]),
      ms: 10,
      detected: [],
    },
    // Three green hearts: everything.
    {
      method: "m",
      item: 1,
      seed: 0,
      ...judge(items[1].groups, fakeDetections(items[1].groups, true)),
      ms: 10,
      detected: [],
    },
  ];
  const rows = aggregate(items, trials, [{ name: "m", label: "m" }]);
  const f = rows[0].settings.file!;
  assert.ok(Math.abs(f.classAccuracy - (1 / 2 + 1) / 2) < 1e-12);
  assert.ok(Math.abs(f.instanceAccuracy - (2 / 3 + 1) / 2) < 1e-12);
  assert.equal(f.exact, 0.5);
  const md = renderMarkdown(META, items, rows);
  assert.match(md, /\| Method \| Multi-class \| Multi-instance \| Exact \|/);
  assert.match(md, /\| m \| 75% \| 83% \| 50% \|/);
});

Deno.test("bench accuracy: example grid layout", () => {
  const img = new Uint8Array(64 * 64 * 3).fill(200);
  const g = exampleGrid(["a", "b", "c"], [
    { label: "x", tiles: [0, 0.5, 1].map((accuracy) => ({ image: img, accuracy })) },
    { label: "y", tiles: [0, 0.5, 1].map((accuracy) => ({ image: img, accuracy })) },
  ]);
  // 4 columns (label + 3 prompts) and 3 rows (header + 2 methods) of 128 px with 2 px gutters.
  assert.equal(g.width, 4 * 128 + 5 * 2);
  assert.equal(g.height, 3 * 128 + 4 * 2);
  // The accuracy bar: tile (row 1, column 2) is half green, half red at the bottom.
  const px = (
    x: number,
    y: number,
  ) => [...g.rgb.subarray((y * g.width + x) * 3, (y * g.width + x) * 3 + 3)];
  const ox = 2 + 2 * 130, oy = 2 + 130, bottom = oy + 127;
  assert.deepEqual(px(ox + 10, bottom), [40, 170, 60]);
  assert.deepEqual(px(ox + 120, bottom), [200, 40, 40]);
  assert.deepEqual(px(ox + 10, oy + 64), [200, 200, 200]);
});

Deno.test("bench methods: A&E refinement steps scale from 50 steps; unknown names throw", async () => {
  assert.deepEqual([...aeRefineSteps(50)], [[0, 0.05], [10, 0.5], [20, 0.8]]);
  assert.deepEqual([...aeRefineSteps(25)], [[0, 0.05], [5, 0.5], [10, 0.8]]);
  assert.deepEqual([...aeRefineSteps(2)], [[0, 0.05], [1, 0.8]]);
  await assert.rejects(() => resolveMethods(["no-such-method"]), AttnkitError);
});

Deno.test("bench methods: a method whose module is missing is not available, not a crash", async () => {
  const missing = "./no_such_module_" + "here.ts";
  const registry: MethodEntry[] = [
    {
      name: "gone",
      label: "gone",
      group: "main",
      note: "imports a module that does not exist",
      load: async () => (await import(missing)).method,
    },
    {
      name: "fine",
      label: "fine",
      group: "main",
      note: "a fake method",
      load: () => Promise.resolve(() => Promise.resolve({ image: new Uint8Array(0), ms: 0 })),
    },
  ];
  const r = await resolveMethods(["gone", "fine"], registry);
  assert.equal(r[0].run, undefined);
  assert.match(r[0].unavailable!, /^not available: /);
  assert.equal(typeof r[1].run, "function");
  assert.equal(r[1].unavailable, undefined);
});
