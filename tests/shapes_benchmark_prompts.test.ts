import assert from "node:assert/strict";
import { AttnkitError } from "../lib/errors.ts";
import { benchmarkPrompts, parsePromptFile } from "../lib/shapes/benchmark_prompts.ts";
import { tokenIds } from "../lib/shapes/tokens.ts";
import { CATEGORIES, CLASSES } from "../lib/shapes/world.ts";

Deno.test("benchmarkPrompts: the ISAC C.3 protocol", async (t) => {
  const prompts = benchmarkPrompts({ seed: 7, perSetting: 20 });
  await t.step("20 prompts per setting and k = 2..5", () => {
    assert.equal(prompts.length, 2 * 4 * 20);
    for (const setting of ["multi-class", "multi-instance"]) {
      for (const k of [2, 3, 4, 5]) {
        assert.equal(prompts.filter((p) => p.setting === setting && p.k === k).length, 20);
      }
    }
  });
  await t.step("multi-class: k distinct classes of one category, one each, coloured", () => {
    const cats = Object.values(CATEGORIES);
    for (const p of prompts.filter((p) => p.setting === "multi-class")) {
      assert.equal(p.groups.length, p.k);
      assert.equal(new Set(p.groups.map((g) => g.cls)).size, p.k);
      assert.ok(cats.some((c) => p.groups.every((g) => c.includes(g.cls))), p.prompt);
      assert.ok(p.groups.every((g) => g.count === 1 && g.colour !== null));
    }
    // Categories in turn: balanced.
    const round = prompts.filter((p) =>
      p.setting === "multi-class" && CATEGORIES.round.includes(p.groups[0].cls)
    );
    assert.equal(round.length, 40);
  });
  await t.step("multi-instance: one class, n of one colour; classes balanced", () => {
    const mi = prompts.filter((p) => p.setting === "multi-instance");
    for (const p of mi) {
      assert.equal(p.groups.length, 1);
      assert.equal(p.groups[0].count, p.k);
      assert.notEqual(p.groups[0].colour, null);
    }
    for (const cls of CLASSES) assert.equal(mi.filter((p) => p.groups[0].cls === cls).length, 8);
  });
  await t.step("prompts read as the paper writes them and tokenize", () => {
    const mc = prompts.find((p) => p.setting === "multi-class" && p.k === 3)!;
    const [a, b, c] = mc.groups;
    const art = (w: string) => (/^[aeiou]/.test(w) ? "an" : "a");
    assert.equal(
      mc.prompt,
      `a photo of ${art(a.colour!)} ${a.colour} ${a.cls}, ${
        art(b.colour!)
      } ${b.colour} ${b.cls} and ${art(c.colour!)} ${c.colour} ${c.cls}`,
    );
    const mi = prompts.find((p) => p.setting === "multi-instance" && p.k === 3)!;
    assert.match(mi.prompt, /^a photo of three (red|orange|yellow|green|blue|purple) [a-z]+s$/);
    for (const p of prompts) tokenIds(p.prompt);
  });
  await t.step("the same seed draws the same prompts; another seed others", () => {
    assert.deepEqual(benchmarkPrompts({ seed: 7, perSetting: 20 }), prompts);
    assert.notDeepEqual(benchmarkPrompts({ seed: 8, perSetting: 20 }), prompts);
  });
  await t.step("bad options are refused", () => {
    assert.throws(
      () => benchmarkPrompts({ seed: 1, perSetting: 0 }),
      (e) => e instanceof AttnkitError && e.argument === "perSetting",
    );
    assert.throws(
      () => benchmarkPrompts({ seed: 1, perSetting: 1, ks: [6] }),
      (e) => e instanceof AttnkitError && e.argument === "ks",
    );
  });
});

Deno.test("parsePromptFile", async (t) => {
  await t.step("benchmark prompts read back to their groups", () => {
    const prompts = benchmarkPrompts({ seed: 3, perSetting: 5 });
    const parsed = parsePromptFile(prompts.map((p) => p.prompt).join("\n"));
    assert.deepEqual(parsed.map((p) => p.groups), prompts.map((p) => p.groups));
    assert.deepEqual(parsed.map((p) => p.line), prompts.map((_, i) => i + 1));
  });
  await t.step("comments, blank lines, free forms", () => {
    const text = [
      "# my prompts",
      "",
      "a photo of two red circles and a blue star",
      "   three hearts, an orange oval",
      "A Photo of a moon.",
      "diamond and five purple crosses",
    ].join("\n");
    assert.deepEqual(parsePromptFile(text), [
      {
        line: 3,
        prompt: "a photo of two red circles and a blue star",
        groups: [{ cls: "circle", colour: "red", count: 2 }, {
          cls: "star",
          colour: "blue",
          count: 1,
        }],
      },
      {
        line: 4,
        prompt: "three hearts, an orange oval",
        groups: [{ cls: "heart", colour: null, count: 3 }, {
          cls: "oval",
          colour: "orange",
          count: 1,
        }],
      },
      { line: 5, prompt: "A Photo of a moon.", groups: [{ cls: "moon", colour: null, count: 1 }] },
      {
        line: 6,
        prompt: "diamond and five purple crosses",
        groups: [{ cls: "diamond", colour: null, count: 1 }, {
          cls: "cross",
          colour: "purple",
          count: 5,
        }],
      },
    ]);
  });
  await t.step("errors name the line and the word", () => {
    const cases: [string, RegExp][] = [
      ["a red circle\n\na photo of two dogs", /line 3: .*"dogs"/],
      ["# x\ntwo red circle", /line 2: .*"circle" should be plural/],
      ["red circles", /line 1: .*"circles" needs a count/],
      ["a circle with a star", /line 1: .*unexpected word "with"/],
      ["a photo of", /line 1: expected a shape/],
      ["six circles", /line 1: .*"six"/],
      ["a circle,", /line 1: expected a shape after ","/],
    ];
    for (const [text, re] of cases) {
      assert.throws(
        () => parsePromptFile(text),
        (e) => e instanceof AttnkitError && re.test(e.message),
        text,
      );
    }
  });
});
