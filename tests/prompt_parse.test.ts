/** Prompt parsing: counted class nouns, attributes, plurals, explicit vocabularies, errors. */
import assert from "node:assert/strict";
import { AttnkitError } from "../lib/errors.ts";
import { parsePrompt, pluralOf, singularOf } from "../lib/prompt/mod.ts";
import type { ParseOptions } from "../lib/prompt/mod.ts";

/** word, count and attributes of each target, the way the brief writes them. */
function brief(prompt: string, opts?: ParseOptions): [string, number, string[]][] {
  return parsePrompt(prompt, opts).map((t) => [t.word, t.count, [...t.attributes]]);
}

function throwsNaming(fn: () => unknown, argument: string, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof AttnkitError, `expected AttnkitError, got ${e}`);
    assert.equal(e.argument, argument);
    assert.match(e.message, pattern);
    return true;
  });
}

Deno.test("the brief's examples", () => {
  assert.deepEqual(brief("two cats and a dog"), [["cat", 2, []], ["dog", 1, []]]);
  assert.deepEqual(brief("a photo of a red circle, a blue square and a green star"), [
    ["circle", 1, ["red"]],
    ["square", 1, ["blue"]],
    ["star", 1, ["green"]],
  ]);
  assert.deepEqual(brief("a photo of three yellow hearts"), [["heart", 3, ["yellow"]]]);
  assert.deepEqual(brief("five cats"), [["cat", 5, []]]);
  assert.deepEqual(brief("an apple and two bananas"), [["apple", 1, []], ["banana", 2, []]]);
  assert.deepEqual(brief("A photo of 2 dogs"), [["dog", 2, []]]);
});

Deno.test("number words one..ten and digits", () => {
  const words = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"];
  words.forEach((w, i) => {
    assert.deepEqual(brief(`${w} ${i === 0 ? "star" : "stars"}`), [["star", i + 1, []]]);
  });
  assert.deepEqual(brief("12 eggs"), [["egg", 12, []]]);
});

Deno.test("plurals: regular -s/-es/-ies and irregular", () => {
  assert.deepEqual(brief("two mice and three geese"), [["mouse", 2, []], ["goose", 3, []]]);
  assert.deepEqual(brief("four people, two sheep and two fish"), [
    ["person", 4, []],
    ["sheep", 2, []],
    ["fish", 2, []],
  ]);
  assert.deepEqual(brief("three boxes, two berries and two glasses"), [
    ["box", 3, []],
    ["berry", 2, []],
    ["glass", 2, []],
  ]);
  assert.deepEqual(brief("two wolves and three children"), [["wolf", 2, []], ["child", 3, []]]);
  for (
    const [p, s] of [
      ["houses", "house"],
      ["potatoes", "potato"],
      ["buses", "bus"],
      [
        "dishes",
        "dish",
      ],
      ["circles", "circle"],
      ["glass", "glass"],
      ["cactus", "cactus"],
      ["knives", "knife"],
    ]
  ) {
    assert.equal(singularOf(p), s, p);
  }
  for (
    const [s, p] of [
      ["cat", "cats"],
      ["box", "boxes"],
      ["berry", "berries"],
      [
        "mouse",
        "mice",
      ],
      ["boy", "boys"],
      ["photo", "photos"],
    ]
  ) {
    assert.equal(pluralOf(s), p, s);
  }
});

Deno.test("character spans point at the noun and attributes as written", () => {
  const prompt = "A photo of Three Yellow Hearts";
  const [t] = parsePrompt(prompt);
  assert.equal(t.noun.text, "Hearts");
  assert.equal(prompt.slice(t.noun.start, t.noun.end), "Hearts");
  assert.equal(t.attributeSpans[0].text, "Yellow");
  assert.equal(prompt.slice(t.attributeSpans[0].start, t.attributeSpans[0].end), "Yellow");
  assert.deepEqual(t.attributes, ["yellow"]);
});

Deno.test("heuristic: framing, bare plurals, place words, phrase ends", () => {
  assert.deepEqual(brief("a photo of cats"), [["cat", 2, []]]);
  assert.equal(parsePrompt("a photo of cats")[0].counted, false);
  assert.equal(parsePrompt("two cats")[0].counted, true);
  assert.deepEqual(brief("a cat sitting on a mat"), [["cat", 1, []], ["mat", 1, []]]);
  assert.deepEqual(brief("a big red circle next to the left star"), [
    ["circle", 1, ["big", "red"]],
    ["star", 1, ["left"]],
  ]);
  assert.deepEqual(brief("a dog on the left and a cat on the right"), [["dog", 1, []], [
    "cat",
    1,
    [],
  ]]);
});

Deno.test("known vocabulary: exact nouns, attribute filter, multi-word nouns", () => {
  const nouns = ["circle", "square", "star", "heart", "triangle"];
  const attributes = ["red", "blue", "green", "yellow"];
  assert.deepEqual(
    brief("a big red circle beside two small green triangles", { nouns, attributes }),
    [["circle", 1, ["red"]], ["triangle", 2, ["green"]]],
  );
  assert.deepEqual(brief("two teddy bears and a bear", { nouns: ["bear", "teddy bear"] }), [
    ["teddy bear", 2, []],
    ["bear", 1, []],
  ]);
  // a word the heuristic would take for a noun is not one when a vocabulary is given
  assert.deepEqual(brief("a photo of a red circle", { nouns }), [["circle", 1, ["red"]]]);
});

Deno.test("explicit targets", () => {
  const prompt = "a big red circle and a cow";
  assert.deepEqual(
    brief(prompt, {
      targets: [{ word: "cow", count: 3 }, { word: "circle", attributes: ["big"] }],
    }),
    [["cow", 3, []], ["circle", 1, ["big"]]],
  );
  throwsNaming(
    () => parsePrompt(prompt, { targets: [{ word: "horse" }] }),
    "targets",
    /"horse".*does not occur/,
  );
  throwsNaming(
    () => parsePrompt(prompt, { targets: [{ word: "cow", attributes: ["purple"] }] }),
    "targets",
    /"purple"/,
  );
  throwsNaming(
    () => parsePrompt(prompt, { targets: [{ word: "cow" }, { word: "cow" }] }),
    "targets",
    /more often/,
  );
});

Deno.test("a prompt without a countable noun -> prompt error", () => {
  throwsNaming(() => parsePrompt("hello world"), "prompt", /no countable noun/);
  throwsNaming(() => parsePrompt(""), "prompt", /no countable noun/);
  throwsNaming(() => parsePrompt("a photo of"), "prompt", /no countable noun/);
  throwsNaming(() => parsePrompt("two dogs", { nouns: ["cat"] }), "prompt", /known nouns \(cat\)/);
});
