import assert from "node:assert/strict";
import { mulberry32 } from "../lib/random.ts";
import { AttnkitError } from "../lib/errors.ts";
import { detect } from "../lib/shapes/detect.ts";
import { render } from "../lib/shapes/render.ts";
import { type Group, sceneFor } from "../lib/shapes/scene.ts";
import { scoreGroups, scoreMultiClass, scoreMultiInstance } from "../lib/shapes/score.ts";
import { COLOUR_RGB, type ColourName, COLOURS, type ShapeClass } from "../lib/shapes/world.ts";

function inst(cls: ShapeClass, colour: ColourName, clsScore = 0.95) {
  return { cls, colour, clsScore };
}

function g(cls: ShapeClass, colour: ColourName | null, count = 1): Group {
  return { cls, colour, count };
}

Deno.test("score: multi-class (ISAC C.3: two of five classes found → 2/5)", async (t) => {
  const groups = [
    g("circle", "red"),
    g("oval", "blue"),
    g("ring", "green"),
    g("heart", "yellow"),
    g("moon", "purple"),
  ];
  await t.step("two of five found", () => {
    const s = scoreMultiClass(groups, [
      inst("circle", "red"),
      inst("ring", "green"),
      inst("square", "red"),
    ]);
    assert.equal(s.accuracy, 2 / 5);
    assert.deepEqual(s.found, [true, false, true, false, false]);
  });
  await t.step("a named colour must match; the wrong colour does not count", () => {
    const s = scoreMultiClass(groups, [inst("circle", "blue"), inst("oval", "blue")]);
    assert.deepEqual(s.found, [false, true, false, false, false]);
  });
  await t.step("a group without a colour takes any colour", () => {
    assert.equal(
      scoreMultiClass([g("star", null), g("cross", null)], [inst("star", "orange")]).accuracy,
      0.5,
    );
  });
  await t.step("instances below the class-fit threshold are not counted", () => {
    const found = [inst("circle", "red", 0.55), inst("oval", "blue", 0.7)];
    assert.deepEqual(scoreMultiClass(groups, found).found, [false, true, false, false, false]);
    assert.deepEqual(scoreMultiClass(groups, found, { minClsScore: 0.5 }).found.slice(0, 2), [
      true,
      true,
    ]);
  });
  await t.step("one instance is credited to one group only", () => {
    const s = scoreMultiClass([g("circle", "red"), g("circle", null)], [inst("circle", "red")]);
    assert.deepEqual(s.found, [true, false]);
  });
});

Deno.test("score: multi-instance (ISAC C.3: three of five cats → 3/5)", async (t) => {
  const five = g("heart", "yellow", 5);
  await t.step("three of five found", () => {
    const s = scoreMultiInstance(five, [
      inst("heart", "yellow"),
      inst("heart", "yellow"),
      inst("heart", "yellow"),
    ]);
    assert.equal(s.accuracy, 3 / 5);
    assert.equal(s.found, 3);
    assert.equal(s.exact, false);
  });
  await t.step("more than asked caps at 1 and is not an exact count", () => {
    const found = Array.from({ length: 4 }, () => inst("star", "red"));
    const s = scoreMultiInstance(g("star", "red", 3), found);
    assert.equal(s.accuracy, 1);
    assert.equal(s.exact, false);
    assert.equal(s.extras, 1);
  });
  await t.step("exactly n, with other classes around, is exact", () => {
    const found = [inst("star", "red"), inst("star", "red"), inst("circle", "red")];
    const s = scoreMultiInstance(g("star", "red", 2), found);
    assert.deepEqual([s.accuracy, s.exact, s.extras], [1, true, 0]);
  });
  await t.step("a target-class instance of another colour is an extra", () => {
    const found = [inst("star", "red"), inst("star", "red"), inst("star", "blue")];
    const s = scoreMultiInstance(g("star", "red", 2), found);
    assert.deepEqual([s.accuracy, s.exact, s.extras], [1, false, 1]);
  });
  await t.step("a merged pair (one instance) counts once", () => {
    // Detected on a render where two red squares touch: one instance, so 1 of 2.
    const r = render({
      background: { from: [230, 230, 230], to: [230, 230, 230], angle: 0 },
      objects: [
        { cls: "square", colour: "red", rgb: COLOUR_RGB.red, cx: 20, cy: 32, r: 8 },
        { cls: "square", colour: "red", rgb: COLOUR_RGB.red, cx: 33.6, cy: 32, r: 8 },
      ],
    });
    const s = scoreMultiInstance(g("square", "red", 2), detect(r.rgb), { minClsScore: 0 });
    assert.ok(s.found <= 1, `found ${s.found}`);
    assert.ok(s.accuracy <= 0.5);
  });
});

Deno.test("score: mixed groups and end to end", async (t) => {
  await t.step("mixed prompt: both accuracies at once", () => {
    const groups = [g("circle", "red", 2), g("square", null, 3)];
    const found = [
      inst("circle", "red"),
      inst("square", "blue"),
      inst("square", "green"),
      inst("oval", "red"),
    ];
    const s = scoreGroups(groups, found);
    assert.equal(s.classAccuracy, 1);
    assert.equal(s.instanceAccuracy, 3 / 5);
    assert.deepEqual(s.groups.map((x) => x.found), [1, 2]);
    assert.equal(s.exact, false);
    assert.equal(s.recognised, 4);
  });
  await t.step("coloured groups are served before colourless ones", () => {
    // Listed colourless first: a greedy pass in list order would take the red circle for it.
    const s = scoreGroups([g("circle", null), g("circle", "red")], [
      inst("circle", "red"),
      inst("circle", "blue"),
    ]);
    assert.equal(s.instanceAccuracy, 1);
    assert.equal(s.exact, true);
  });
  await t.step("a render of the prompt scores 1 on both, exactly", () => {
    const rng = mulberry32(77);
    const prompts: Group[][] = [
      [g("circle", "red"), g("oval", "blue"), g("heart", "green")],
      [g("star", "yellow", 4)],
      [g("triangle", "purple", 2), g("cross", "orange", 1)],
    ];
    for (const groups of prompts) {
      const sc = sceneFor(rng, groups, COLOURS)!;
      const s = scoreGroups(groups, detect(render(sc).rgb));
      assert.deepEqual(
        [s.classAccuracy, s.instanceAccuracy, s.exact],
        [1, 1, true],
        JSON.stringify(groups),
      );
    }
  });
  await t.step("bad groups are refused", () => {
    assert.throws(
      () => scoreGroups([], []),
      (e) => e instanceof AttnkitError && e.argument === "groups",
    );
    assert.throws(
      () => scoreGroups([g("circle", null, 0)], []),
      (e) => e instanceof AttnkitError && e.argument === "groups[0].count",
    );
  });
});
