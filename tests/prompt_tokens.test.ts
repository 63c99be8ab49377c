/**
 * Targets → token indices through the word tokenizer and through a fake sub-word tokenizer
 * (written here, CLIP-like: start/end tokens with empty spans, words cut into 3-letter pieces,
 * truncation at maxLength), and ISAC's sign(τi, τj) matrix.
 */
import assert from "node:assert/strict";
import { AttnkitError } from "../lib/errors.ts";
import {
  parsePrompt,
  type PromptTokenizer,
  promptTokens,
  signs,
  type TokenPiece,
  tokenSpans,
  wordTokenizer,
} from "../lib/prompt/mod.ts";

function throwsNaming(fn: () => unknown, argument: string, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof AttnkitError, `expected AttnkitError, got ${e}`);
    assert.equal(e.argument, argument);
    assert.match(e.message, pattern);
    return true;
  });
}

const VOCAB = [
  "<pad>",
  "<sot>",
  "<eot>",
  "a",
  "photo",
  "of",
  "red",
  "blue",
  "green",
  "yellow",
  "three",
  "circle",
  "square",
  "star",
  "hearts",
  ",",
  "and",
];
const words = wordTokenizer(VOCAB, { maxLength: 20, sot: "<sot>", eot: "<eot>", pad: 0 });

/** A CLIP-like fake: 3-letter pieces, ids 1000 + position in a growing table, truncates. */
function subwordTokenizer(maxLength: number): PromptTokenizer {
  const table = new Map<string, number>();
  return {
    maxLength,
    tokenize(text: string) {
      const pieces: TokenPiece[] = [{ text: "", start: 0, end: 0 }];
      for (const m of text.matchAll(/[A-Za-z]+|\d+|[^\sA-Za-z\d]/g)) {
        for (let k = 0; k < m[0].length; k += 3) {
          const start = m.index! + k;
          const end = Math.min(start + 3, m.index! + m[0].length);
          pieces.push({ text: text.slice(start, end).toLowerCase(), start, end });
        }
      }
      const kept = pieces.slice(0, maxLength - 1);
      kept.push({ text: "", start: text.length, end: text.length });
      const ids = kept.map((p, i) => {
        if (i === 0) return 49406;
        if (i === kept.length - 1) return 49407;
        if (!table.has(p.text)) table.set(p.text, 1000 + table.size);
        return table.get(p.text)!;
      });
      return { ids, pieces: kept };
    },
  };
}

Deno.test("word tokenizer: ids, offsets, padding", () => {
  const prompt = "a photo of a Red circle, a blue square";
  const tok = words.tokenize(prompt);
  //              sot a  photo of a  red circle ,   a  blue square eot
  const real = [1, 3, 4, 5, 3, 6, 11, 15, 3, 7, 12, 2];
  assert.deepEqual(tok.ids, [...real, ...new Array(20 - real.length).fill(0)]);
  assert.equal(tok.length, real.length);
  assert.equal(tok.pieces.length, 20);
  assert.equal(prompt.slice(tok.pieces[5].start, tok.pieces[5].end), "Red");
  assert.equal(prompt.slice(tok.pieces[7].start, tok.pieces[7].end), ",");
  assert.equal(tok.pieces[0].end - tok.pieces[0].start, 0);
  assert.equal(tok.pieces[11].end - tok.pieces[11].start, 0);
});

Deno.test("word tokenizer: unknown word and too-long prompt", () => {
  throwsNaming(() => words.tokenize("a photo of a cow"), "prompt", /"cow".*a, photo, of/);
  const long = "a red circle , a blue square , a green star and three yellow hearts , a red star";
  throwsNaming(() => words.tokenize(long), "prompt", /needs 21 tokens.*maxLength 20/);
  throwsNaming(
    () => wordTokenizer(VOCAB, { maxLength: 8, sot: "<bos>", eot: 2, pad: 0 }),
    "sot",
    /<bos>/,
  );
});

Deno.test("token spans through the word tokenizer + sign matrix", () => {
  const prompt = "a photo of a red circle, a blue square and a green star";
  const t = promptTokens(prompt, words);
  assert.deepEqual(t.map((x) => [x.word, x.classToken, x.attributes.map((a) => a.token)]), [
    ["circle", 6, [5]],
    ["square", 10, [9]],
    ["star", 14, [13]],
  ]);
  const s = signs(t);
  assert.deepEqual(s.tokens, [6, 5, 10, 9, 14, 13]);
  assert.deepEqual(s.roles, ["class", "attribute", "class", "attribute", "class", "attribute"]);
  assert.deepEqual(s.sign, [
    [0, -1, 1, 1, 1, 1],
    [-1, 0, 1, 1, 1, 1],
    [1, 1, 0, -1, 1, 1],
    [1, 1, -1, 0, 1, 1],
    [1, 1, 1, 1, 0, -1],
    [1, 1, 1, 1, -1, 0],
  ]);
  assert.deepEqual(s.matrix.shape, [6, 6]);
  assert.equal(s.matrix.data[1], -1);
  const [hearts] = promptTokens("a photo of three yellow hearts", words);
  assert.deepEqual([hearts.word, hearts.count, hearts.classToken], ["heart", 3, 6]);
});

Deno.test("token spans through a sub-word tokenizer: last sub-token is the class token", () => {
  const prompt = "an apple and two Bananas";
  // pieces: sot | an | app le | and | two | Ban ana s | eot
  const t = tokenSpans(prompt, parsePrompt(prompt), subwordTokenizer(77));
  assert.deepEqual(t.map((x) => [x.word, x.count, x.tokens, x.classToken]), [
    ["apple", 1, [2, 3], 3],
    ["banana", 2, [6, 7, 8], 8],
  ]);
  // sot | thr ee | yel low | hea rts | eot
  const [h] = promptTokens("three yellow hearts", subwordTokenizer(77));
  assert.deepEqual(h.attributes, [{ word: "yellow", tokens: [3, 4], token: 4 }]);
  assert.deepEqual([h.tokens, h.classToken], [[5, 6], 6]);
  const s = signs([h]);
  assert.deepEqual(s.tokens, [6, 4]);
  assert.deepEqual(s.sign, [[0, -1], [-1, 0]]);
});

Deno.test("two attributes of one object bind; attributes of different objects repel", () => {
  const t = promptTokens("a big red circle and a small blue star", subwordTokenizer(77));
  const s = signs(t);
  // tokens: circle, big, red, star, small, blue
  assert.deepEqual(s.words, ["circle", "big", "red", "star", "small", "blue"]);
  assert.equal(s.sign[1][2], -1); // big–red, same object
  assert.equal(s.sign[2][5], 1); // red–blue, different objects
  assert.equal(s.sign[2][3], 1); // red–star, attribute and another object
  assert.equal(s.sign[0][3], 1); // circle–star, two classes
  assert.equal(s.sign[4][3], -1); // small–star, attribute and its object
});

Deno.test("a prompt past a truncating tokenizer's maxLength -> prompt error with both lengths", () => {
  const prompt = "a photo of a red circle and a blue square and a green star";
  throwsNaming(
    () => promptTokens(prompt, subwordTokenizer(10)),
    "prompt",
    /maxLength 10 tokens.*of 58/,
  );
  throwsNaming(() => signs([]), "targets", /at least one/);
});
