import assert from "node:assert/strict";
import {
  judgeSingle,
  median,
  shortCaption,
  singlePrompts,
  summariseSingles,
} from "../bench/model_quality.ts";
import { CLASSES, COLOURS } from "../lib/shapes/world.ts";

const obj = (
  cls: (typeof CLASSES)[number],
  colour: (typeof COLOURS)[number],
  area = 100,
  clsScore = 0.9,
) => ({
  cls,
  colour,
  area,
  clsScore,
});

Deno.test("bench model quality: single-object judging", async (t) => {
  await t.step("right class and colour, alone: correct and exact", () => {
    const j = judgeSingle("heart", "red", 0, [obj("heart", "red")]);
    assert.equal(j.correct, true);
    assert.equal(j.exact, true);
    assert.equal(j.mainClass, "heart");
  });
  await t.step(
    "right object beside a larger wrong one: correct, not exact; main is the larger",
    () => {
      const j = judgeSingle("heart", "red", 0, [
        obj("heart", "red", 50),
        obj("square", "blue", 300),
      ]);
      assert.equal(j.correct, true);
      assert.equal(j.exact, false);
      assert.equal(j.mainClass, "square");
      assert.equal(j.mainColour, "blue");
    },
  );
  await t.step("wrong colour or a fit below 0.6 is not correct", () => {
    assert.equal(judgeSingle("heart", "red", 0, [obj("heart", "orange")]).correct, false);
    assert.equal(judgeSingle("heart", "red", 0, [obj("heart", "red", 100, 0.5)]).correct, false);
    assert.equal(judgeSingle("heart", "red", 0, []).mainClass, null);
  });
});

Deno.test("bench model quality: summary rates and confusions", () => {
  const ts = [
    judgeSingle("heart", "red", 0, [obj("heart", "red")]),
    judgeSingle("heart", "blue", 0, [obj("circle", "blue")]),
    judgeSingle("star", "blue", 0, [obj("circle", "green")]),
    judgeSingle("star", "red", 0, []),
  ];
  const s = summariseSingles(ts);
  assert.equal(s.trials, 4);
  assert.equal(s.correct, 1 / 4);
  assert.equal(s.classRate, 1 / 4);
  assert.equal(s.colourRate, 2 / 4);
  assert.deepEqual(s.byClass.heart, { trials: 2, correct: 1 / 2, classRate: 1 / 2 });
  assert.deepEqual(s.byColour.blue, { trials: 2, correct: 0, colourRate: 1 / 2 });
  assert.deepEqual(
    s.confusions.map((c) => `${c.asked}→${c.got}×${c.count}`).sort(),
    ["heart→circle×1", "star→circle×1", "star→nothing×1"],
  );
});

Deno.test("bench model quality: prompts, median and captions", () => {
  const all = singlePrompts(undefined, 7);
  assert.equal(all.length, CLASSES.length * COLOURS.length);
  assert.equal(new Set(all.map((p) => `${p.cls}/${p.colour}`)).size, all.length);
  const some = singlePrompts(12, 7);
  assert.equal(some.length, 12);
  assert.equal(new Set(some.map((p) => `${p.cls}/${p.colour}`)).size, 12);
  assert.deepEqual(singlePrompts(12, 7), some);
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(
    shortCaption("a photo of an orange heart, a blue moon and a green oval"),
    "orange heart, blue moon, green oval",
  );
});
