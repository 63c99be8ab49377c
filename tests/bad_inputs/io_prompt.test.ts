/**
 * Bad-input corpus, prompt counts (issue 10 F9): zero counts are an error saying a count of zero
 * cannot be generated; number words and digits beyond ten give their value; non-word tokens never
 * become classes. The same rules on every path: the heuristic mode (SD 1.5), the vocabulary mode
 * (the embedded shapes model), named targets, and through a real CLIP tokenizer (`promptTokens`).
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadClipTokenizer } from "../../lib/models/clip_tokenizer.ts";
import { parsePrompt } from "../../lib/prompt/parse.ts";
import { promptTokens } from "../../lib/prompt/spans.ts";
import { countOf } from "../../lib/prompt/words.ts";
import { CLASSES } from "../../lib/shapes/world.ts";
import { throwsClearly } from "./io_support.ts";

const counts = (prompt: string, opts = {}) =>
  parsePrompt(prompt, opts).map((t) => `${t.word}×${t.count}`);
const HF_TOK = new URL("../fixtures/hf_tiny/tokenizer/", import.meta.url).pathname;
const clip = await loadClipTokenizer({
  vocab: join(HF_TOK, "vocab.json"),
  merges: join(HF_TOK, "merges.txt"),
  tokenizerConfig: join(HF_TOK, "tokenizer_config.json"),
  specialTokensMap: join(HF_TOK, "special_tokens_map.json"),
});
const shapes = { nouns: CLASSES };

// ---------------------------------------------------------------- zero counts are errors

const ZERO = [
  ["zero cats", "zero cats"],
  ["no dogs", "no dogs"],
  ["0 birds", "0 birds"],
  ["a cat and zero dogs", "zero dogs"],
  ["a photo of two cats and no red dogs", "no red dogs"],
  ["00 cats", "00 cats"],
] as const;
for (const [prompt, phrase] of ZERO) {
  Deno.test(`io_prompt F9: "${prompt}" (heuristic, SD 1.5 path) → count-of-zero error`, () => {
    throwsClearly(
      () => parsePrompt(prompt),
      "prompt",
      new RegExp(`"${phrase}" asks for a count of zero, which cannot be generated`),
    );
  });
  Deno.test(`io_prompt F9: "${prompt}" through the CLIP tokenizer → the same error`, () => {
    throwsClearly(() => promptTokens(prompt, clip), "prompt", /count of zero/);
  });
}
for (const prompt of ["zero hearts", "no red circles", "a star and 0 squares", "none hearts"]) {
  Deno.test(`io_prompt F9: "${prompt}" (vocabulary mode, shapes path) → count-of-zero error`, () => {
    throwsClearly(() => parsePrompt(prompt, shapes), "prompt", /count of zero/);
  });
}
Deno.test("io_prompt F9: a named target over 'zero cats' → count-of-zero error", () => {
  throwsClearly(
    () => parsePrompt("zero cats on a mat", { targets: [{ word: "cat" }] }),
    "prompt",
    /count of zero/,
  );
});
Deno.test("io_prompt F9: a named target with count 0 → error naming targets", () => {
  throwsClearly(
    () => parsePrompt("cats on a mat", { targets: [{ word: "cat", count: 0 }] }),
    "targets",
    /positive integer/,
  );
});

// ---------------------------------------------------------------- counts beyond ten

const BEYOND: [string, string[]][] = [
  ["a photo of eleven cats", ["cat×11"]],
  ["twelve dogs", ["dog×12"]],
  ["thirteen birds and a cat", ["bird×13", "cat×1"]],
  ["nineteen apples", ["apple×19"]],
  ["twenty cars", ["car×20"]],
  ["twenty-one balloons", ["balloon×21"]],
  ["ninety-nine bottles", ["bottle×99"]],
  ["11 cats", ["cat×11"]],
  ["42 red balls", ["ball×42"]],
  ["Eleven Cats", ["cat×11"]],
  ["fifty stars", ["star×50"]],
];
for (const [prompt, want] of BEYOND) {
  Deno.test(`io_prompt F9: "${prompt}" → ${want.join(", ")} (heuristic)`, () => {
    assert.deepEqual(counts(prompt), want);
  });
}
for (
  const [prompt, want] of [
    ["eleven hearts", ["heart×11"]],
    ["a photo of 12 yellow stars", ["star×12"]],
    ["twenty circles and a square", ["circle×20", "square×1"]],
  ] as [string, string[]][]
) {
  Deno.test(`io_prompt F9: "${prompt}" → ${want.join(", ")} (vocabulary mode)`, () => {
    assert.deepEqual(counts(prompt, shapes), want);
  });
}
for (
  const [prompt, want] of [
    ["a hundred cats", ["cat×100"]],
    ["one hundred dogs", ["dog×100"]],
    ["two dozen eggs", ["egg×24"]],
    ["a dozen roses and a vase", ["rose×12", "vase×1"]],
    ["1,000 birds", ["bird×1000"]],
    ["twenty one cats", ["cat×21"]],
  ] as [string, string[]][]
) {
  Deno.test(`io_prompt F9: "${prompt}" → ${want.join(", ")} (multi-word number)`, () => {
    assert.deepEqual(counts(prompt), want);
  });
}
for (
  const [prompt, message] of [
    ["2.5 cats", /"2\.5" is not a whole number/],
    ["-3 cats", /"-3" is a negative count/],
    ["a cat and -1 dogs", /"-1" is a negative count/],
    ["1,000,000 ants", /at most 1000/],
    ["5 thousand cats", /"5 thousand cats" asks for 5000 instances/],
  ] as [string, RegExp][]
) {
  Deno.test(`io_prompt F9: "${prompt}" → error naming the prompt`, () => {
    throwsClearly(() => parsePrompt(prompt), "prompt", message);
  });
}
Deno.test("io_prompt F9: a hyphenated word keeps its hyphen (not a negative count)", () => {
  assert.deepEqual(counts("a t-shirt and two cats"), ["t-shirt×1", "cat×2"]);
});
Deno.test("io_prompt F9: eleven cats through the CLIP tokenizer carries count 11", () => {
  assert.deepEqual(promptTokens("a photo of eleven cats", clip).map((t) => t.count), [11]);
});
Deno.test("io_prompt F9: a count beyond the maximum is refused, naming the phrase", () => {
  throwsClearly(() => parsePrompt("5000 cats"), "prompt", /"5000 cats".*at most 1000/);
  throwsClearly(() => parsePrompt("99999999999999999999 cats"), "prompt", /at most 1000/);
});
Deno.test("io_prompt F9: countOf reads words, compounds and digits", () => {
  assert.deepEqual(
    ["zero", "no", "0", "one", "ten", "eleven", "twenty", "twenty-two", "42", "twenty-zero", "cat"]
      .map(countOf),
    [0, 0, 0, 1, 10, 11, 20, 22, 42, undefined, undefined],
  );
});

// ---------------------------------------------------------------- non-word tokens

const NON_WORDS: [string, string[]][] = [
  ["two cats — three dogs", ["cat×2", "dog×3"]],
  ["three 🐱 and a dog", ["dog×1"]],
  ["a # and two cats", ["cat×2"]],
  ["two cats * a dog", ["cat×2", "dog×1"]],
  ["a cat, 42, and a dog", ["cat×1", "dog×1"]],
  ["two cats @ home", ["cat×2"]],
];
for (const [prompt, want] of NON_WORDS) {
  Deno.test(`io_prompt F9: "${prompt}" → ${want.join(", ")}; no symbol or number is a class`, () => {
    assert.deepEqual(counts(prompt), want);
  });
}
Deno.test("io_prompt F9: a prompt of symbols only has no countable noun (clear error)", () => {
  throwsClearly(() => parsePrompt("three 🐱🐱🐱 !!"), "prompt", /no countable noun/);
  throwsClearly(() => parsePrompt("a 42"), "prompt", /no countable noun/);
});
