/**
 * CLIP's byte-level BPE tokenizer (the one Stable Diffusion 1.x/2.x text encoders use), driven by
 * a Hugging Face `tokenizer/vocab.json` + `tokenizer/merges.txt`.
 *
 * Pipeline, as in openai/CLIP's `simple_tokenizer.py` and transformers' `CLIPTokenizer`:
 * NFC + lower-case, split with CLIP's pre-tokenisation regex (contractions, letter runs, single
 * digits, runs of other non-space characters, and the special tokens kept whole), map each word's
 * UTF-8 bytes to printable characters (GPT-2's bytes-to-unicode table), mark the last one with
 * `</w>`, merge pairs by rank, look the pieces up in the vocabulary (unknown → the unk token).
 * Whitespace (Unicode's White_Space property, as the reference's regex engines read `\s`) only
 * separates words, so collapsing runs of it changes nothing but offsets.
 *
 * Every token carries its span in the caller's text (UTF-16 indices, as `String.prototype.slice`
 * takes them), so a class word in a prompt can be found among the 77 token positions. Not done:
 * HTML-entity unescaping and ftfy's mojibake repair (openai/CLIP does both; transformers without
 * ftfy does neither), and transformers' CJK-per-character split in its ftfy-less fallback.
 *
 * Parity (tests/models_clip_pretokenize.test.ts): for every code point, in context, the words
 * equal those of transformers' CLIPTokenizer on the Rust `tokenizers` pipeline, except (1) Greek
 * capital sigma at the end of a word, lower-cased to ς as Python's str.lower does (openai/CLIP,
 * transformers 4's CLIPTokenizer, tokenizers.js) where the Rust pipeline gives σ, and (2) ~30
 * code points added in Unicode 16–17, where the reference's own parts disagree on the version.
 * The pre-tokenization stays in attnkit rather than in a library: tokenizers.js (the pure
 * JavaScript port) returns no character offsets, which attnkit needs to find prompt words among
 * the 77 positions (and lower-cases with the final-sigma rule, as attnkit does); the Rust
 * library's Node bindings (npm `tokenizers`, which do load in Deno and give offsets) are a native
 * add-on with a per-platform binary that every importer of mod.ts would have to fetch.
 *
 * @module
 */
import type { PromptTokenizer, Tokenization, TokenPiece } from "../prompt/types.ts";
import { AttnkitError, check } from "../errors.ts";
import { readTextChecked } from "./root.ts";

/** A token's text and its span `[start, end)` in the input (empty span for start/end tokens). */
export type { Tokenization, TokenPiece } from "../prompt/types.ts";

/** Anything that turns a prompt into token ids with spans (the prompt tools' tokenizer). */
export type Tokenizer = PromptTokenizer;

/** Options for {@link createClipTokenizer}. */
export interface ClipTokenizerOptions {
  /** Sequence length the text encoder takes, start/end tokens included (default 77). */
  maxLength?: number;
  /** Token used for padding (default `<|endoftext|>`, as SD 1.x; SD 2.x uses `!`). */
  padToken?: string;
  /** Start token (default `<|startoftext|>`). */
  bosToken?: string;
  /** End token (default `<|endoftext|>`). */
  eosToken?: string;
  /** Token for pieces missing from the vocabulary (default `<|endoftext|>`). */
  unkToken?: string;
  /**
   * Over-long prompts: false (default) throws an AttnkitError naming `prompt`; true keeps the
   * start token, the first `maxLength - 2` tokens and the end token (transformers' truncation).
   */
  truncate?: boolean;
}

/** A CLIP tokenizer with fixed-length encoding for the text encoder. */
export interface ClipTokenizer extends Tokenizer {
  /** Ids padded with the pad token to `maxLength` (start/end tokens included). */
  encode(text: string): Int32Array;
  /** Text of a list of ids (`</w>` becomes a space; start/end/pad tokens are dropped). */
  decode(ids: readonly number[]): string;
  /** Padded sequence length. */
  readonly maxLength: number;
  /** Id of the start token. */
  readonly bosId: number;
  /** Id of the end token. */
  readonly eosId: number;
  /** Id of the padding token. */
  readonly padId: number;
  /** Number of entries in the vocabulary. */
  readonly vocabSize: number;
}

/**
 * GPT-2/CLIP's byte → character table: printable Latin-1 bytes map to themselves, the other 68
 * bytes to U+0100 upwards, so every byte string becomes a string without spaces or controls.
 */
export function bytesToUnicode(): string[] {
  const table: string[] = new Array(256);
  const printable = (b: number): boolean =>
    (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    table[b] = String.fromCodePoint(printable(b) ? b : 256 + extra++);
  }
  return table;
}

const BYTE_CHARS: readonly string[] = bytesToUnicode();
const END_OF_WORD = "</w>";

/** Parses merges.txt: one `left right` pair per line, rank = order; a `#version` header is skipped. */
export function parseMerges(text: string): [string, string][] {
  const out: [string, string][] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === "" || (i === 0 && line.startsWith("#version"))) continue;
    const parts = line.split(" ");
    if (parts.length !== 2) {
      throw new AttnkitError("merges", `line ${i + 1}: expected "left right", got ${line}`);
    }
    out.push([parts[0], parts[1]]);
  }
  return out;
}

/** A word of the prompt after normalisation: its text and its span in the original. */
export interface PreToken {
  /** Normalised (NFC, lower-case) text of the word. */
  text: string;
  /** Span start in the original text (UTF-16 index). */
  start: number;
  /** Span end in the original text. */
  end: number;
  /** For each UTF-16 unit of `text`: the original span it came from. */
  sources: { start: number; end: number }[];
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * CLIP's pre-tokenisation regex (contractions, letter runs, single digits, other runs). Its
 * `\s` is Unicode's White_Space property, as in the reference (Oniguruma in `tokenizers`,
 * Python's `regex`): JavaScript's `\s` differs on U+0085 (NEL, whitespace in the reference) and
 * U+FEFF (BOM, not whitespace there), so the class is spelt `\p{White_Space}`.
 */
export const CLIP_PATTERN: RegExp =
  /'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\p{White_Space}\p{L}\p{N}]+/gu;

/**
 * Normalises (NFC + lower-case) and splits text into CLIP words, keeping each word's span in the
 * original text. Special tokens (`specials`) are cut out first and kept whole, as transformers
 * does with added tokens, so `"!<|endoftext|>"` gives `!` and the end token. A base character
 * and its combining marks are normalised together, so the mapping back never splits them.
 */
export function clipPreTokenize(text: string, specials: readonly string[] = []): PreToken[] {
  let nfc = "";
  let norm = "";
  const sources: { start: number; end: number }[] = [];
  const cluster = /\P{M}\p{M}*|\p{M}+/gu;
  for (const m of text.matchAll(cluster)) {
    const start = m.index;
    const end = start + m[0].length;
    const composed = m[0].normalize("NFC");
    const piece = composed.toLowerCase();
    nfc += composed;
    norm += piece;
    for (let k = 0; k < piece.length; k++) sources.push({ start, end });
  }
  // Lower-casing cluster by cluster misses context rules (Greek final sigma: ΟΔΟΣ → οδος, as
  // Python's str.lower gives); the whole-string form is used when its length agrees, so the
  // per-unit source map still lines up.
  const lowered = nfc.toLowerCase();
  const whole = lowered.length === norm.length ? lowered : norm;
  const out: PreToken[] = [];
  const word = (s: number, e: number): void => {
    out.push({
      text: whole.slice(s, e),
      start: sources[s].start,
      end: sources[e - 1].end,
      sources: sources.slice(s, e),
    });
  };
  const splitter = specials.length > 0
    ? new RegExp(specials.map(escapeRegExp).join("|"), "gu")
    : undefined;
  const words = (from: number, to: number): void => {
    for (const m of whole.slice(from, to).matchAll(CLIP_PATTERN)) {
      word(from + m.index, from + m.index + m[0].length);
    }
  };
  let at = 0;
  if (splitter) {
    for (const m of whole.matchAll(splitter)) {
      words(at, m.index);
      word(m.index, m.index + m[0].length);
      at = m.index + m[0].length;
    }
  }
  words(at, whole.length);
  return out;
}

/** A BPE symbol: its vocabulary string and the byte range `[b0, b1)` of the word it covers. */
interface BpeSymbol {
  tok: string;
  b0: number;
  b1: number;
}

/**
 * Byte-pair merges of one word given as byte characters (the last already ends in `</w>`):
 * repeatedly merges every occurrence of the lowest-ranked adjacent pair, left to right.
 */
export function bpeMerge(symbols: readonly string[], ranks: ReadonlyMap<string, number>): string[] {
  return mergeSymbols(symbols.map((tok, i) => ({ tok, b0: i, b1: i + 1 })), ranks).map((s) =>
    s.tok
  );
}

function mergeSymbols(word: BpeSymbol[], ranks: ReadonlyMap<string, number>): BpeSymbol[] {
  while (word.length > 1) {
    let best = Infinity;
    let first = "";
    let second = "";
    for (let i = 0; i + 1 < word.length; i++) {
      const r = ranks.get(word[i].tok + " " + word[i + 1].tok);
      if (r !== undefined && r < best) {
        best = r;
        first = word[i].tok;
        second = word[i + 1].tok;
      }
    }
    if (best === Infinity) break;
    const next: BpeSymbol[] = [];
    for (let i = 0; i < word.length;) {
      if (i + 1 < word.length && word[i].tok === first && word[i + 1].tok === second) {
        next.push({ tok: first + second, b0: word[i].b0, b1: word[i + 1].b1 });
        i += 2;
      } else {
        next.push(word[i]);
        i += 1;
      }
    }
    word = next;
  }
  return word;
}

function tokenName(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (v && typeof v === "object" && typeof (v as { content?: unknown }).content === "string") {
    return (v as { content: string }).content;
  }
  return undefined;
}

/**
 * Builds a CLIP tokenizer from a vocabulary (token → id) and merges (in rank order, or text).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { models } from "@attnkit/attnkit";
 * const vocab = {
 *   "<|startoftext|>": 0,
 *   "<|endoftext|>": 1,
 *   "a</w>": 2,
 *   "at</w>": 3,
 *   "cat</w>": 4,
 *   "c": 5,
 *   "a": 6,
 *   "t</w>": 7,
 * };
 * // BPE merges in rank order: a + t</w> → at</w>, then c + at</w> → cat</w>.
 * const tok = models.createClipTokenizer(vocab, [["a", "t</w>"], ["c", "at</w>"]], { maxLength: 6 });
 * assert.deepEqual(Array.from(tok.encode("a cat")), [0, 2, 4, 1, 1, 1]); // padded with <|endoftext|>
 * assert.equal(tok.decode([0, 2, 4, 1]), "a cat");
 * ```
 */
export function createClipTokenizer(
  vocab: Readonly<Record<string, number>>,
  merges: readonly (readonly [string, string])[] | string,
  opts: ClipTokenizerOptions = {},
): ClipTokenizer {
  const pairs = typeof merges === "string" ? parseMerges(merges) : merges;
  const ranks = new Map<string, number>();
  pairs.forEach(([a, b], r) => {
    if (!ranks.has(a + " " + b)) ranks.set(a + " " + b, r);
  });
  const ids = new Map<string, number>();
  const names = new Map<number, string>();
  for (const [tok, id] of Object.entries(vocab)) {
    // Ids travel as int32 to the text encoder: 4294967297 would wrap to 1 there.
    check(
      Number.isInteger(id) && id >= 0 && id <= 0x7fffffff,
      "vocab",
      () => `id of ${JSON.stringify(tok)} is ${id}; ids are integers in [0, 2^31 - 1]`,
    );
    ids.set(tok, id);
    names.set(id, tok);
  }
  const idOf = (option: string, tok: string): number => {
    const id = ids.get(tok);
    if (id === undefined) {
      throw new AttnkitError(option, `token ${JSON.stringify(tok)} is not in the vocabulary`);
    }
    return id;
  };
  const bosToken = opts.bosToken ?? "<|startoftext|>";
  const eosToken = opts.eosToken ?? "<|endoftext|>";
  const bosId = idOf("bosToken", bosToken);
  const eosId = idOf("eosToken", eosToken);
  const padId = idOf("padToken", opts.padToken ?? eosToken);
  const unkId = idOf("unkToken", opts.unkToken ?? eosToken);
  const maxLength = opts.maxLength ?? 77;
  check(
    Number.isInteger(maxLength) && maxLength >= 2,
    "maxLength",
    `expected an integer >= 2, got ${maxLength}`,
  );
  const specials = [bosToken, eosToken];
  const specialIds = new Map([[bosToken, bosId], [eosToken, eosId]]);
  const cache = new Map<string, BpeSymbol[]>();
  const utf8 = new TextEncoder();
  const decoder = new TextDecoder();

  const bpeWord = (word: string): { bytes: Uint8Array; symbols: BpeSymbol[] } => {
    const bytes = utf8.encode(word);
    let symbols = cache.get(word);
    if (!symbols) {
      const initial = Array.from(bytes, (b, i) => ({ tok: BYTE_CHARS[b], b0: i, b1: i + 1 }));
      initial[initial.length - 1].tok += END_OF_WORD;
      symbols = mergeSymbols(initial, ranks);
      if (cache.size < 10000) cache.set(word, symbols);
    }
    return { bytes, symbols };
  };

  const tokenize = (text: string): Tokenization => {
    check(typeof text === "string", "prompt", `expected a string, got ${typeof text}`);
    const outIds: number[] = [bosId];
    const pieces: TokenPiece[] = [{ text: bosToken, start: 0, end: 0 }];
    for (const word of clipPreTokenize(text, specials)) {
      const special = specialIds.get(word.text);
      if (special !== undefined) {
        outIds.push(special);
        pieces.push({ text: word.text, start: word.start, end: word.end });
        continue;
      }
      const { bytes, symbols } = bpeWord(word.text);
      // Which UTF-16 unit of the word each byte came from, to map byte ranges back to spans.
      const unitOfByte = new Int32Array(bytes.length);
      let b = 0;
      for (let u = 0; u < word.text.length;) {
        const cp = word.text.codePointAt(u)!;
        const width = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
        for (let k = 0; k < width; k++) unitOfByte[b++] = u;
        u += cp > 0xffff ? 2 : 1;
      }
      for (const s of symbols) {
        outIds.push(ids.get(s.tok) ?? unkId);
        const first = word.sources[unitOfByte[s.b0]];
        const last = word.sources[unitOfByte[s.b1 - 1]];
        pieces.push({
          text: decoder.decode(bytes.subarray(s.b0, s.b1)),
          start: first.start,
          end: last.end,
        });
      }
    }
    outIds.push(eosId);
    pieces.push({ text: eosToken, start: text.length, end: text.length });
    if (outIds.length > maxLength) {
      if (!opts.truncate) {
        throw new AttnkitError(
          "prompt",
          `${outIds.length} tokens (start and end tokens included) exceed the limit of ` +
            `${maxLength}; shorten it or pass truncate: true`,
        );
      }
      outIds.splice(maxLength - 1, outIds.length - maxLength);
      pieces.splice(maxLength - 1, pieces.length - maxLength);
    }
    return { ids: outIds, pieces };
  };

  const byteOf = new Map(BYTE_CHARS.map((c, b) => [c, b]));
  return {
    tokenize,
    encode(text: string): Int32Array {
      const out = new Int32Array(maxLength).fill(padId);
      out.set(tokenize(text).ids);
      return out;
    },
    decode(list: readonly number[]): string {
      const bytes: number[] = [];
      for (const id of list) {
        if (id === bosId || id === eosId || id === padId) continue;
        const tok = names.get(id);
        if (tok === undefined) throw new AttnkitError("ids", `id ${id} is not in the vocabulary`);
        const body = tok.endsWith(END_OF_WORD) ? tok.slice(0, -END_OF_WORD.length) : tok;
        for (const ch of body) bytes.push(byteOf.get(ch) ?? 0x3f);
        if (body !== tok) bytes.push(0x20);
      }
      return decoder.decode(new Uint8Array(bytes)).trim();
    },
    maxLength,
    bosId,
    eosId,
    padId,
    vocabSize: ids.size,
  };
}

/** Contents of `tokenizer/tokenizer_config.json` / `special_tokens_map.json` that matter here. */
export function clipOptionsFromConfig(
  tokenizerConfig: Record<string, unknown> | undefined,
  specialTokensMap: Record<string, unknown> | undefined,
): ClipTokenizerOptions {
  const named = (file: string, from: Record<string, unknown> | undefined, key: string) => {
    const v = from?.[key];
    if (v === undefined || v === null) return undefined;
    const name = tokenName(v);
    check(
      name !== undefined,
      `tokenizer/${file} ${key}`,
      () => `expected a token string or {"content": string}, got ${JSON.stringify(v)}`,
    );
    return name;
  };
  const pick = (key: string): string | undefined =>
    named("tokenizer_config.json", tokenizerConfig, key) ??
      named("special_tokens_map.json", specialTokensMap, key);
  const opts: ClipTokenizerOptions = {};
  const maxLen = tokenizerConfig?.["model_max_length"];
  // transformers writes a huge sentinel (1e30) when no length is set; CLIP's position table has
  // 77 rows. Anything else must be a usable length.
  if (typeof maxLen === "number" && Number.isInteger(maxLen) && maxLen >= 2 && maxLen <= 4096) {
    opts.maxLength = maxLen;
  } else {
    check(
      maxLen === undefined || maxLen === null || (typeof maxLen === "number" && maxLen >= 1e29),
      "tokenizer/tokenizer_config.json model_max_length",
      () => `expected an integer in [2, 4096], got ${JSON.stringify(maxLen)}`,
    );
  }
  const bos = pick("bos_token");
  const eos = pick("eos_token");
  const pad = pick("pad_token");
  const unk = pick("unk_token");
  if (bos) opts.bosToken = bos;
  if (eos) opts.eosToken = eos;
  if (pad) opts.padToken = pad;
  if (unk) opts.unkToken = unk;
  return opts;
}

/** Files of a Hugging Face `tokenizer/` folder. */
export interface ClipTokenizerFiles {
  /** Path of vocab.json. */
  vocab: string;
  /** Path of merges.txt. */
  merges: string;
  /** Path of tokenizer_config.json, if present. */
  tokenizerConfig?: string;
  /** Path of special_tokens_map.json, if present. */
  specialTokensMap?: string;
}

async function readJson(path: string, argument: string): Promise<Record<string, unknown>> {
  let value: unknown;
  try {
    value = JSON.parse(await readTextChecked(path, argument));
  } catch (e) {
    throw new AttnkitError(argument, `cannot read ${path} as JSON: ${(e as Error).message}`);
  }
  if (!value || typeof value !== "object" || Array.isArray(value)) {
    throw new AttnkitError(argument, `${path} must hold a JSON object`);
  }
  return value as Record<string, unknown>;
}

/**
 * Loads a CLIP tokenizer from its files; `opts` override what the config files say.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { models } from "@attnkit/attnkit";
 * const folder = new URL("../../tests/fixtures/hf_tiny/", import.meta.url).pathname;
 * const files = await models.resolveSd15Files(folder);
 * const tok = await models.loadClipTokenizer(files.tokenizer);
 * assert.equal(tok.maxLength, 77); // from tokenizer_config.json
 * assert.equal(tok.encode("a cat")[0], tok.bosId);
 * ```
 */
export async function loadClipTokenizer(
  files: ClipTokenizerFiles,
  opts: ClipTokenizerOptions = {},
): Promise<ClipTokenizer> {
  const vocab = await readJson(files.vocab, "vocab");
  const merges = await readTextChecked(files.merges, "merges");
  const config = files.tokenizerConfig
    ? await readJson(files.tokenizerConfig, "tokenizerConfig")
    : undefined;
  const special = files.specialTokensMap
    ? await readJson(files.specialTokensMap, "specialTokensMap")
    : undefined;
  return createClipTokenizer(vocab as Record<string, number>, merges, {
    ...clipOptionsFromConfig(config, special),
    ...opts,
  });
}
