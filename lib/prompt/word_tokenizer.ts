/**
 * A word-level tokenizer for small models with a closed vocabulary (the embedded shapes model):
 * lower-case words split on white space, "," as its own token, a start token first, an end token
 * after the last word, and padding up to `maxLength`. It reports each token's character range, so
 * it plugs into {@link tokenSpans} as any sub-word tokenizer does.
 *
 * @module
 */
import { AttnkitError, check } from "../errors.ts";
import type { PromptTokenizer, Tokenization, TokenPiece } from "./types.ts";

/** Options of {@link wordTokenizer}; special tokens as vocabulary words or ids. */
export interface WordTokenizerOptions {
  /** Fixed sequence length, start and end tokens included. */
  readonly maxLength: number;
  /** The start-of-text token. */
  readonly sot: string | number;
  /** The end-of-text token. */
  readonly eot: string | number;
  /** The padding token after the end token. */
  readonly pad: string | number;
}

/** A word tokenizer's output: `length` counts the real tokens (start and end included). */
export interface WordTokenization extends Tokenization {
  /** Tokens before the padding. */
  readonly length: number;
}

/** A word-level tokenizer over a fixed vocabulary. */
export interface WordTokenizer extends PromptTokenizer {
  /** The vocabulary; a word's id is its index. */
  readonly vocab: readonly string[];
  /** Fixed sequence length. */
  readonly maxLength: number;
  /** Tokenizes `text` into exactly `maxLength` ids; unknown words and long texts throw. */
  tokenize(text: string): WordTokenization;
}

/**
 * Builds a word-level tokenizer: id = index in `vocab`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { prompts } from "@attnkit/attnkit";
 * const vocab = ["<s>", "</s>", "<pad>", "a", "red", "circle"];
 * const tok = prompts.wordTokenizer(vocab, { maxLength: 6, sot: "<s>", eot: "</s>", pad: "<pad>" });
 * const t = tok.tokenize("a red circle");
 * assert.deepEqual(t.ids, [0, 3, 4, 5, 1, 2]); // <s> a red circle </s> <pad>
 * assert.equal(t.pieces[2].text, "red");
 * ```
 */
export function wordTokenizer(vocab: readonly string[], opts: WordTokenizerOptions): WordTokenizer {
  check(Array.isArray(vocab) && vocab.length > 0, "vocab", "expected a non-empty array of words");
  const index = new Map<string, number>();
  vocab.forEach((w, i) => {
    check(typeof w === "string" && w !== "", "vocab", `entry ${i} is not a non-empty string`);
    if (!index.has(w)) index.set(w, i);
  });
  const special = (v: string | number, name: string): number => {
    const id = typeof v === "number" ? v : index.get(v);
    check(
      id !== undefined && Number.isInteger(id) && id >= 0 && id < vocab.length,
      name,
      `expected a word of the vocabulary or an id in 0..${vocab.length - 1}, got ${v}`,
    );
    return id;
  };
  const sot = special(opts.sot, "sot"),
    eot = special(opts.eot, "eot"),
    pad = special(opts.pad, "pad");
  const maxLength = opts.maxLength;
  check(
    Number.isInteger(maxLength) && maxLength >= 2,
    "maxLength",
    `must be an integer >= 2 (start and end tokens), got ${maxLength}`,
  );
  const specials = new Set([sot, eot, pad]);
  const words = vocab.filter((_, i) => !specials.has(i));

  return {
    vocab,
    maxLength,
    tokenize(text: string): WordTokenization {
      check(typeof text === "string", "prompt", `expected a string, got ${typeof text}`);
      const found = [...text.matchAll(/[^\s,]+|,/g)];
      const length = found.length + 2;
      if (length > maxLength) {
        throw new AttnkitError(
          "prompt",
          `needs ${length} tokens with start and end, more than the tokenizer's maxLength ` +
            `${maxLength}`,
        );
      }
      const ids: number[] = [sot];
      const pieces: TokenPiece[] = [{ text: "", start: 0, end: 0 }];
      for (const m of found) {
        const w = m[0].toLowerCase();
        const id = index.get(w);
        if (id === undefined || specials.has(id)) {
          throw new AttnkitError(
            "prompt",
            `unknown word "${m[0]}"; the vocabulary is: ${words.join(", ")}`,
          );
        }
        ids.push(id);
        pieces.push({ text: w, start: m.index!, end: m.index! + m[0].length });
      }
      ids.push(eot);
      pieces.push({ text: "", start: text.length, end: text.length });
      while (ids.length < maxLength) {
        ids.push(pad);
        pieces.push({ text: "", start: text.length, end: text.length });
      }
      return { ids, pieces, length };
    },
  };
}
