/**
 * Prompts as attention-control methods need them: counted class nouns with their attributes
 * ("two cats and a dog" → cat × 2, dog × 1), the token indices each covers for any tokenizer that
 * reports character offsets, ISAC's sign(τi, τj) matrix, and a word-level tokenizer for small
 * closed-vocabulary models.
 *
 * @module
 */
export { parsePrompt } from "./parse.ts";
export { promptTokens, tokenSpans } from "./spans.ts";
export { signs } from "./signs.ts";
export type { SignMatrix } from "./signs.ts";
export { wordTokenizer } from "./word_tokenizer.ts";
export type { WordTokenization, WordTokenizer, WordTokenizerOptions } from "./word_tokenizer.ts";
export { IRREGULAR_PLURALS, isPlural, pluralOf, singularOf } from "./plural.ts";
export type {
  CharSpan,
  ParseOptions,
  PromptTarget,
  PromptTokenizer,
  TargetSpec,
  Tokenization,
  TokenPiece,
  TokenTarget,
  TokenWord,
} from "./types.ts";
