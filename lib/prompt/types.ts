/**
 * Plain data the prompt tools exchange: character spans, parsed targets (class noun, count,
 * attribute words), the tokenizer interface they need (ids plus character offsets of each token)
 * and targets resolved to token indices.
 *
 * @module
 */

/** A piece of the prompt: its text and character range `[start, end)`. */
export interface CharSpan {
  /** The characters as they stand in the prompt. */
  readonly text: string;
  /** Offset of the first character. */
  readonly start: number;
  /** Offset after the last character. */
  readonly end: number;
}

/** One counted class of a prompt: "three yellow hearts" → heart × 3, attribute "yellow". */
export interface PromptTarget {
  /** The class noun, lower-case and singular ("heart", "teddy bear"). */
  readonly word: string;
  /** How many instances the prompt asks for. */
  readonly count: number;
  /**
   * True when a number word, digit or article gave the count (or a singular noun had a
   * determiner); false for a guess: a bare plural counts 2, a bare singular 1.
   */
  readonly counted: boolean;
  /** Attribute words modifying the noun, lower-case, in prompt order ("yellow"). */
  readonly attributes: readonly string[];
  /** Where the noun stands in the prompt, as written ("hearts"). */
  readonly noun: CharSpan;
  /** Where each attribute stands in the prompt, parallel to `attributes`. */
  readonly attributeSpans: readonly CharSpan[];
}

/** A target the caller names instead of letting the parser find it. */
export interface TargetSpec {
  /** The class noun (singular; its plural in the prompt is found too). */
  readonly word: string;
  /** Attribute words of this noun; omitted = those written before it in the prompt. */
  readonly attributes?: readonly string[];
  /** Instance count; omitted = read from the prompt. */
  readonly count?: number;
}

/** Options of `parsePrompt`. */
export interface ParseOptions {
  /** The class nouns a model knows (singular); with it the parser matches only these. */
  readonly nouns?: readonly string[];
  /** Attribute words (e.g. colours); with it only these count as attributes. */
  readonly attributes?: readonly string[];
  /** Name the targets outright; each must occur in the prompt. */
  readonly targets?: readonly TargetSpec[];
}

/** One token of a tokenized text: its text and the character range it came from. */
export interface TokenPiece {
  /** The token's text (for display; offsets are what count). */
  readonly text: string;
  /** Offset of the first character in the text (start = end for special tokens). */
  readonly start: number;
  /** Offset after the last character. */
  readonly end: number;
}

/** A tokenizer's output: ids and, parallel to them, the pieces with character offsets. */
export interface Tokenization {
  /** Token ids; index 0 is the start token, the last real one the end token. */
  readonly ids: readonly number[];
  /** One piece per id; special and padding tokens have empty spans. */
  readonly pieces: readonly TokenPiece[];
}

/** What the prompt tools need of a tokenizer. */
export interface PromptTokenizer {
  /** Tokenizes `text`; throws for text it cannot take. */
  tokenize(text: string): Tokenization;
  /** Most tokens the text encoder takes (start and end included), if limited. */
  readonly maxLength?: number;
}

/** A word of a target resolved to tokens. */
export interface TokenWord {
  /** The word, lower-case. */
  readonly word: string;
  /** Every token index the word covers, in order. */
  readonly tokens: readonly number[];
  /** The token that stands for the word: the last of `tokens`. */
  readonly token: number;
}

/** A target resolved to token indices. */
export interface TokenTarget {
  /** The class noun (singular). */
  readonly word: string;
  /** Instance count. */
  readonly count: number;
  /** Every token index the noun covers. */
  readonly tokens: readonly number[];
  /** The class token: the noun's last sub-token (e.g. "ban", "anas" → the index of "anas"). */
  readonly classToken: number;
  /** Attribute words and their tokens. */
  readonly attributes: readonly TokenWord[];
}
