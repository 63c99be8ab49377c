/**
 * Class nouns, counts and attributes from a prompt: "two cats and a dog" → cat × 2, dog × 1;
 * "a photo of a red circle, a blue square and a green star" → circle (red), square (blue),
 * star (green).
 *
 * Three modes, most exact first:
 * - `opts.targets`: the caller names the nouns (and optionally attributes and counts); each is
 *   located in the prompt, its count read from the word before it unless given.
 * - `opts.nouns`: the classes a model knows. Any of them (or its plural) is a target; walking back
 *   from it, modifier words are its attributes (only `opts.attributes` words, when given) up to a
 *   number, article or determiner, which gives the count.
 * - neither: a heuristic. A noun phrase opens at a number, article or determiner (or, for a bare
 *   plural, at the start or after "and", ",", "of", …) and runs to the next list separator,
 *   preposition, copula or determiner. Its last word is the noun, the words before it its
 *   attributes; place words ("the left", "the background") are not targets. A phrase followed by "of" ("a photo of …", "a group of …") frames the prompt and
 *   is not a target. A bare singular ("sunset") is not countable and is skipped.
 *
 * Counts: number words zero..twenty, the tens and their compounds ("twenty-one"), digits,
 * "a"/"an" = 1; a bare plural counts 2 and a bare singular 1, with `counted` false. A count of
 * zero ("zero cats", "no dogs", "0 birds") is an error on every path: an image cannot show zero
 * instances of a class, and dropping the phrase silently would change what was asked for (put
 * unwanted things in a negative prompt instead). Counts above {@link MAX_COUNT} are refused.
 * Only words with a letter can be classes: digits, punctuation and symbols never are, and a
 * symbol ends a noun phrase. The same class written twice gives two targets. The same rules hold
 * in all three modes, so SD 1.5 (heuristic) and the embedded shapes model (vocabulary) agree.
 *
 * @module
 */
import { AttnkitError, check } from "../errors.ts";
import { isPlural, pluralOf, singularOf } from "./plural.ts";
import type { CharSpan, ParseOptions, PromptTarget, TargetSpec } from "./types.ts";
import {
  countOf,
  DETERMINERS,
  isClassWord,
  isNonWord,
  joinCountWords,
  lexWords,
  MAX_COUNT,
  NON_TARGETS,
  PHRASE_ENDS,
  type Word,
} from "./words.ts";

function span(prompt: string, start: number, end: number): CharSpan {
  return { text: prompt.slice(start, end), start, end };
}

function isOpener(w: string): boolean {
  return countOf(w) !== undefined || DETERMINERS.has(w);
}

function endsPhrase(w: string): boolean {
  return PHRASE_ENDS.has(w) || isNonWord(w);
}

/**
 * Count and whether it is certain, from the opening word (if any) and the noun's number; a zero
 * or too large count is an error quoting the phrase.
 */
function countFrom(
  prompt: string,
  opener: Word | undefined,
  nounEnd: number,
  plural: boolean,
): { count: number; counted: boolean } {
  const n = opener === undefined ? undefined : countOf(opener.text);
  if (n === 0) {
    const phrase = prompt.slice(opener!.start, nounEnd);
    throw new AttnkitError(
      "prompt",
      `"${phrase}" asks for a count of zero, which cannot be generated; remove it from ` +
        `"${prompt}" (describe unwanted things in a negative prompt instead)`,
    );
  }
  if (n !== undefined && !(Number.isSafeInteger(n) && n <= MAX_COUNT)) {
    throw new AttnkitError(
      "prompt",
      `"${prompt.slice(opener!.start, nounEnd)}" asks for ${opener!.text} instances; at most ` +
        `${MAX_COUNT} of a class can be generated`,
    );
  }
  if (n !== undefined) return { count: n, counted: true };
  return { count: plural ? 2 : 1, counted: opener !== undefined && !plural };
}

function target(
  prompt: string,
  words: readonly Word[],
  noun: { from: number; to: number; lemma: string; plural: boolean },
  opener: Word | undefined,
  modifiers: readonly Word[],
  attributes: ReadonlySet<string> | undefined,
): PromptTarget {
  const attrs = modifiers.filter((m) => attributes === undefined || attributes.has(m.text));
  return {
    word: noun.lemma,
    ...countFrom(prompt, opener, words[noun.to - 1].end, noun.plural),
    attributes: attrs.map((a) => a.text),
    noun: span(prompt, words[noun.from].start, words[noun.to - 1].end),
    attributeSpans: attrs.map((a) => span(prompt, a.start, a.end)),
  };
}

/** The heuristic mode: noun phrases opened by determiners or bare plurals. */
function parseHeuristic(
  prompt: string,
  words: readonly Word[],
  attributes: ReadonlySet<string> | undefined,
): PromptTarget[] {
  const out: PromptTarget[] = [];
  let i = 0;
  while (i < words.length) {
    const w = words[i].text;
    const opener = isOpener(w);
    const bare = !opener && !endsPhrase(w) && (i === 0 || endsPhrase(words[i - 1].text));
    if (!opener && !bare) {
      i++;
      continue;
    }
    const from = opener ? i + 1 : i;
    let to = from;
    while (
      to < words.length && !endsPhrase(words[to].text) && !isOpener(words[to].text)
    ) to++;
    const framing = words[to]?.text === "of";
    if (to > from && !framing) {
      const head = words[to - 1].text;
      const plural = isPlural(head);
      if ((opener || plural) && !NON_TARGETS.has(head) && isClassWord(head)) {
        out.push(target(
          prompt,
          words,
          { from: to - 1, to, lemma: singularOf(head), plural },
          opener ? words[i] : undefined,
          words.slice(from, to - 1),
          attributes,
        ));
      }
    }
    i = Math.max(to, i + 1);
  }
  return out;
}

/** The vocabulary mode: known nouns (possibly several words, plural on the last). */
function parseKnown(
  prompt: string,
  words: readonly Word[],
  nouns: readonly string[],
  attributes: ReadonlySet<string> | undefined,
): PromptTarget[] {
  const forms = nouns
    .map((n) => n.toLowerCase().trim().split(/\s+/))
    .filter((parts) => parts.length > 0 && parts[0] !== "")
    .sort((a, b) => b.length - a.length); // longest first: "teddy bear" before "bear"
  const matchAt = (i: number): { to: number; lemma: string; plural: boolean } | undefined => {
    for (const parts of forms) {
      const last = parts[parts.length - 1];
      const to = i + parts.length;
      if (to > words.length) continue;
      if (!parts.slice(0, -1).every((p, k) => words[i + k].text === p)) continue;
      const w = words[to - 1].text;
      const singular = w === last;
      if (singular || w === pluralOf(last) || singularOf(w) === last) {
        return { to, lemma: parts.join(" "), plural: !singular };
      }
    }
    return undefined;
  };
  const out: PromptTarget[] = [];
  let previousEnd = 0;
  for (let i = 0; i < words.length;) {
    const m = matchAt(i);
    if (m === undefined) {
      i++;
      continue;
    }
    let k = i - 1;
    while (
      k >= previousEnd && !isOpener(words[k].text) && !endsPhrase(words[k].text)
    ) k--;
    const opener = k >= previousEnd && isOpener(words[k].text) ? words[k] : undefined;
    out.push(target(
      prompt,
      words,
      { from: i, to: m.to, lemma: m.lemma, plural: m.plural },
      opener,
      words.slice(k + 1, i),
      attributes,
    ));
    previousEnd = m.to;
    i = m.to;
  }
  return out;
}

/** The explicit mode: each named target located in the prompt. */
function parseNamed(
  prompt: string,
  words: readonly Word[],
  specs: readonly TargetSpec[],
  attributes: ReadonlySet<string> | undefined,
): PromptTarget[] {
  const found = parseKnown(prompt, words, specs.map((s) => s.word), attributes);
  const used = new Set<number>();
  return specs.map((spec, n) => {
    check(
      typeof spec?.word === "string" && spec.word.trim() !== "",
      "targets",
      `target ${n} needs a non-empty "word"`,
    );
    const lemma = spec.word.toLowerCase().trim().split(/\s+/).join(" ");
    const at = found.findIndex((t, k) => !used.has(k) && t.word === lemma);
    if (at < 0) {
      const seen = found.filter((t) => t.word === lemma).length;
      throw new AttnkitError(
        "targets",
        seen > 0
          ? `"${spec.word}" is named more often than the ${seen} time(s) it occurs in "${prompt}"`
          : `"${spec.word}" (or its plural) does not occur in the prompt "${prompt}"`,
      );
    }
    used.add(at);
    const t = found[at];
    if (spec.count !== undefined) {
      check(
        Number.isInteger(spec.count) && spec.count >= 1,
        "targets",
        `count of "${spec.word}" must be a positive integer, got ${spec.count}`,
      );
    }
    const count = spec.count ?? t.count;
    const counted = spec.count !== undefined || t.counted;
    if (spec.attributes === undefined) return { ...t, count, counted };
    const spans = spec.attributes.map((a) => {
      const word = a.toLowerCase().trim();
      const near = t.attributes.indexOf(word);
      if (near >= 0) return t.attributeSpans[near];
      const anywhere = words.find((w) => w.text === word);
      if (anywhere === undefined) {
        throw new AttnkitError(
          "targets",
          `attribute "${a}" of "${spec.word}" does not occur in the prompt "${prompt}"`,
        );
      }
      return span(prompt, anywhere.start, anywhere.end);
    });
    return {
      ...t,
      count,
      counted,
      attributes: spans.map((s) => s.text.toLowerCase()),
      attributeSpans: spans,
    };
  });
}

/**
 * The counted class nouns of a prompt, with their attributes; see the module doc for the rules.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parsePrompt } from "@attnkit/attnkit";
 * const targets = parsePrompt("two red circles and a blue square");
 * assert.deepEqual(targets.map((t) => [t.word, t.count, t.attributes]), [
 *   ["circle", 2, ["red"]],
 *   ["square", 1, ["blue"]],
 * ]);
 * ```
 */
export function parsePrompt(prompt: string, opts: ParseOptions = {}): PromptTarget[] {
  check(typeof prompt === "string", "prompt", `expected a string, got ${typeof prompt}`);
  const words = joinCountWords(lexWords(prompt), prompt);
  const attributes = opts.attributes === undefined
    ? undefined
    : new Set(opts.attributes.map((a) => a.toLowerCase()));
  let out: PromptTarget[];
  if (opts.targets !== undefined) {
    check(opts.targets.length > 0, "targets", "expected at least one target");
    out = parseNamed(prompt, words, opts.targets, attributes);
  } else if (opts.nouns !== undefined) {
    out = parseKnown(prompt, words, opts.nouns, attributes);
  } else {
    out = parseHeuristic(prompt, words, attributes);
  }
  if (out.length === 0) {
    throw new AttnkitError(
      "prompt",
      opts.nouns !== undefined
        ? `no countable noun in "${prompt}": none of the known nouns (${opts.nouns.join(", ")}) ` +
          `occurs in it`
        : `no countable noun in "${prompt}": a class noun needs a number or article before it ` +
          `("a cat", "two dogs") or a plural form; pass opts.nouns or opts.targets to name them`,
    );
  }
  return out;
}
