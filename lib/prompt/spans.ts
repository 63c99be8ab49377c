/**
 * Parsed targets → token indices. A token belongs to a word when their character ranges overlap,
 * so sub-word tokenizers work unchanged: "bananas" → "ban", "anas" covers two indices, and the
 * class token is the last sub-token (in a causal text encoder such as CLIP's, the last sub-token
 * has seen the whole word). Special tokens (empty spans) never belong to a word.
 *
 * @module
 */
import { AttnkitError, check } from "../errors.ts";
import { parsePrompt } from "./parse.ts";
import type {
  CharSpan,
  ParseOptions,
  PromptTarget,
  PromptTokenizer,
  Tokenization,
  TokenTarget,
  TokenWord,
} from "./types.ts";

/** Token indices whose pieces overlap `span`. */
function tokensOf(tok: Tokenization, span: CharSpan, maxLength: number | undefined): number[] {
  const out: number[] = [];
  tok.pieces.forEach((p, i) => {
    if (p.end > p.start && p.start < span.end && p.end > span.start) out.push(i);
  });
  if (out.length === 0) {
    throw new AttnkitError(
      "prompt",
      maxLength !== undefined && tok.ids.length >= maxLength
        ? `"${span.text}" (characters ${span.start}..${span.end}) falls past the tokenizer's ` +
          `${maxLength} tokens`
        : `no token covers "${span.text}" (characters ${span.start}..${span.end})`,
    );
  }
  return out;
}

function tokenWord(tok: Tokenization, span: CharSpan, max: number | undefined): TokenWord {
  const tokens = tokensOf(tok, span, max);
  return { word: span.text.toLowerCase(), tokens, token: tokens[tokens.length - 1] };
}

/** Maps each target's noun and attributes in `prompt` to the token indices they cover. */
export function tokenSpans(
  prompt: string,
  targets: readonly PromptTarget[],
  tokenizer: PromptTokenizer,
): TokenTarget[] {
  const tok = tokenizer.tokenize(prompt);
  check(
    tok.ids.length === tok.pieces.length,
    "tokenizer",
    `tokenize() gave ${tok.ids.length} ids but ${tok.pieces.length} pieces; they must be parallel`,
  );
  const max = tokenizer.maxLength;
  if (max !== undefined) {
    const real = tok.pieces.filter((p) => p.end > p.start);
    const needed = real.length + 2; // with the start and end tokens
    const covered = real.reduce((m, p) => Math.max(m, p.end), 0);
    // a tokenizer that truncates leaves characters after the last token it kept
    const truncated = tok.ids.length >= max && /\S/.test(prompt.slice(covered));
    if (truncated) {
      throw new AttnkitError(
        "prompt",
        `is longer than the tokenizer's maxLength ${max} tokens: the tokenizer kept characters ` +
          `0..${covered} of ${prompt.length} (${needed} tokens with start and end)`,
      );
    }
    if (needed > max) {
      throw new AttnkitError(
        "prompt",
        `needs ${needed} tokens with start and end, more than the tokenizer's maxLength ${max}`,
      );
    }
  }
  return targets.map((t) => {
    const noun = tokensOf(tok, t.noun, max);
    return {
      word: t.word,
      count: t.count,
      tokens: noun,
      classToken: noun[noun.length - 1],
      attributes: t.attributeSpans.map((s) => tokenWord(tok, s, max)),
    };
  });
}

/** Parses `prompt` and maps its targets to token indices in one call. */
export function promptTokens(
  prompt: string,
  tokenizer: PromptTokenizer,
  opts: ParseOptions = {},
): TokenTarget[] {
  return tokenSpans(prompt, parsePrompt(prompt, opts), tokenizer);
}
