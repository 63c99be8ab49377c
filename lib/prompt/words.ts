/**
 * The word classes the prompt parser reads: a lexer with character offsets, number words and
 * articles (which give counts), other determiners, and the words that end a noun phrase
 * (list separators, prepositions, copulas and a few common participles).
 *
 * @module
 */
import { AttnkitError } from "../errors.ts";

/** A word of the prompt: lower-case `text` and its character range `[start, end)` in the prompt. */
export interface Word {
  /** Lower-case text. */
  readonly text: string;
  /** Offset of the first character in the prompt. */
  readonly start: number;
  /** Offset after the last character. */
  readonly end: number;
}

/** Splits a prompt into words (letters/digits, with inner ' or -) and single punctuation marks. */
export function lexWords(prompt: string): Word[] {
  const out: Word[] = [];
  for (const m of prompt.matchAll(/[\p{L}\p{N}]+(?:['’-][\p{L}\p{N}]+)*|[^\s\p{L}\p{N}]/gu)) {
    out.push({ text: m[0].toLowerCase(), start: m.index!, end: m.index! + m[0].length });
  }
  return out;
}

/**
 * Counting words: articles, zero..twenty and the tens to ninety (compounds such as "twenty-one"
 * are read by {@link countOf}). "no", "none" and "zero" give 0, which the parser refuses: a count
 * of zero cannot be generated.
 */
export const NUMBER_WORDS: Readonly<Record<string, number>> = {
  a: 1,
  an: 1,
  no: 0,
  none: 0,
  zero: 0,
  one: 1,
  single: 1,
  two: 2,
  three: 3,
  four: 4,
  five: 5,
  six: 6,
  seven: 7,
  eight: 8,
  nine: 9,
  ten: 10,
  eleven: 11,
  twelve: 12,
  thirteen: 13,
  fourteen: 14,
  fifteen: 15,
  sixteen: 16,
  seventeen: 17,
  eighteen: 18,
  nineteen: 19,
  twenty: 20,
  thirty: 30,
  forty: 40,
  fifty: 50,
  sixty: 60,
  seventy: 70,
  eighty: 80,
  ninety: 90,
};

/** The most instances one prompt may ask for of a class; larger counts are refused. */
export const MAX_COUNT = 1000;

const UNITS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine"];

/**
 * The count a word gives ("three" → 3, "twenty-one" → 21, "42" → 42, "zero" / "no" / "0" → 0),
 * or undefined when the word is not a count. Digits are decimal (no sign, no separators).
 *
 * @example
 * ```ts
 * import { countOf } from "./words.ts";
 * countOf("eleven"); // 11
 * ```
 */
export function countOf(word: string): number | undefined {
  if (/^\d+$/.test(word)) return Number(word);
  const compound = /^(twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)-([a-z]+)$/.exec(word);
  if (compound && UNITS.includes(compound[2])) {
    return NUMBER_WORDS[compound[1]] + UNITS.indexOf(compound[2]) + 1;
  }
  return Object.hasOwn(NUMBER_WORDS, word) ? NUMBER_WORDS[word] : undefined;
}

const MULTIPLIERS: Readonly<Record<string, number>> = { dozen: 12, hundred: 100, thousand: 1000 };
const TENS = new Set([
  "twenty",
  "thirty",
  "forty",
  "fifty",
  "sixty",
  "seventy",
  "eighty",
  "ninety",
]);

/**
 * Joins the words of one spoken or written number into a single word whose text is its digits, so
 * that the parser sees one count: "twenty one" → "21", "a hundred" / "one hundred" → "100",
 * "two dozen" → "24", "1,000" → "1000". A written number the parser cannot count — a decimal
 * ("2.5 cats") or a negative ("-3 cats") — is an {@link AttnkitError} naming the prompt.
 *
 * @example
 * ```ts
 * import { joinCountWords, lexWords } from "./words.ts";
 * joinCountWords(lexWords("a dozen eggs"), "a dozen eggs").map((w) => w.text); // ["12", "eggs"]
 * ```
 */
export function joinCountWords(words: readonly Word[], prompt: string): Word[] {
  const out: Word[] = [];
  const touching = (a: Word | undefined, b: Word | undefined) => !!a && !!b && a.end === b.start;
  for (let i = 0; i < words.length; i++) {
    let w = words[i];
    const digits = /^\d+$/.test(w.text);
    // 1,000,000: digit groups glued by commas.
    if (digits) {
      let j = i;
      let text = w.text;
      while (
        words[j + 1]?.text === "," && touching(words[j], words[j + 1]) &&
        /^\d{3}$/.test(words[j + 2]?.text ?? "") && touching(words[j + 1], words[j + 2])
      ) {
        text += words[j + 2].text;
        j += 2;
      }
      if (j > i) {
        w = { text, start: w.start, end: words[j].end };
        i = j;
      }
      const next = words[i + 1], after = words[i + 2];
      if (
        next?.text === "." && touching(words[i], next) && /^\d+$/.test(after?.text ?? "") &&
        touching(next, after)
      ) {
        throw new AttnkitError(
          "prompt",
          `"${prompt.slice(w.start, after!.end)}" is not a whole number, so it cannot be a count ` +
            `of instances, in "${prompt}"`,
        );
      }
      const prev = out[out.length - 1];
      const standsAlone = (at: number) => at === 0 || /\s/.test(prompt[at - 1]);
      if (prev?.text === "-" && touching(prev, w) && standsAlone(prev.start)) {
        throw new AttnkitError(
          "prompt",
          `"${
            prompt.slice(prev.start, w.end)
          }" is a negative count, which cannot be generated, in ` +
            `"${prompt}"`,
        );
      }
    }
    // "twenty one" → 21
    if (TENS.has(w.text) && UNITS.includes(words[i + 1]?.text ?? "")) {
      const unit = words[i + 1];
      w = {
        text: String(NUMBER_WORDS[w.text] + UNITS.indexOf(unit.text) + 1),
        start: w.start,
        end: unit.end,
      };
      i++;
    }
    // "a hundred", "two dozen", "5 thousand"
    const mult = MULTIPLIERS[words[i + 1]?.text ?? ""];
    const n = countOf(w.text);
    if (mult !== undefined && n !== undefined && n >= 1) {
      w = { text: String(n * mult), start: w.start, end: words[i + 1].end };
      i++;
    } else if (MULTIPLIERS[w.text] !== undefined) {
      w = { text: String(MULTIPLIERS[w.text]), start: w.start, end: w.end };
    }
    out.push(w);
  }
  return out;
}

/** Whether a token is a word that can name a class: it has a letter and is not a count. */
export function isClassWord(word: string): boolean {
  return /\p{L}/u.test(word) && countOf(word) === undefined;
}

/** Whether a token is punctuation or a symbol (no letter, no digit): it ends a noun phrase. */
export function isNonWord(word: string): boolean {
  return !/[\p{L}\p{N}]/u.test(word);
}

/** Determiners that open a noun phrase without giving a count. */
export const DETERMINERS: ReadonlySet<string> = new Set([
  "the",
  "this",
  "these",
  "those",
  "some",
  "several",
  "many",
  "few",
  "multiple",
  "my",
  "his",
  "her",
  "its",
  "their",
  "our",
  "your",
  "another",
  "each",
  "every",
]);

/** Words that end a noun phrase: list separators, prepositions, copulas, relatives. */
export const PHRASE_ENDS: ReadonlySet<string> = new Set([
  ",",
  ".",
  ";",
  ":",
  "!",
  "?",
  "&",
  "+",
  "/",
  "(",
  ")",
  '"',
  "and",
  "or",
  "with",
  "without",
  "but",
  "plus",
  "while",
  "of",
  "on",
  "in",
  "at",
  "by",
  "to",
  "from",
  "into",
  "onto",
  "over",
  "under",
  "above",
  "below",
  "behind",
  "beside",
  "besides",
  "between",
  "near",
  "next",
  "inside",
  "outside",
  "around",
  "along",
  "against",
  "across",
  "through",
  "among",
  "beneath",
  "underneath",
  "upon",
  "within",
  "for",
  "like",
  "as",
  "than",
  "is",
  "are",
  "was",
  "were",
  "be",
  "being",
  "has",
  "have",
  "that",
  "which",
  "who",
  "there",
  "sitting",
  "standing",
  "lying",
  "playing",
  "running",
  "walking",
  "eating",
  "holding",
  "wearing",
  "flying",
  "swimming",
  "jumping",
  "looking",
  "floating",
  "sleeping",
  "riding",
  "made",
  "painted",
  "covered",
]);

/** Nouns that name a place or framing, not an object: never a target in the heuristic mode. */
export const NON_TARGETS: ReadonlySet<string> = new Set([
  "left",
  "right",
  "top",
  "bottom",
  "side",
  "middle",
  "center",
  "centre",
  "front",
  "back",
  "background",
  "foreground",
  "distance",
  "corner",
  "edge",
  "view",
  "style",
  "day",
  "night",
]);
