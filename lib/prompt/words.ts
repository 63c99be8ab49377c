/**
 * The word classes the prompt parser reads: a lexer with character offsets, number words and
 * articles (which give counts), other determiners, and the words that end a noun phrase
 * (list separators, prepositions, copulas and a few common participles).
 *
 * @module
 */

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

/** Counting words: articles and one..ten. */
export const NUMBER_WORDS: Readonly<Record<string, number>> = {
  a: 1,
  an: 1,
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
};

/** The count a word gives ("three" → 3, "2" → 2), or undefined. */
export function countOf(word: string): number | undefined {
  if (/^\d+$/.test(word)) {
    const n = Number(word);
    return n >= 1 ? n : undefined;
  }
  return NUMBER_WORDS[word];
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
