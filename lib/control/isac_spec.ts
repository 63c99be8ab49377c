/**
 * From a prompt to ISAC's targets: class tokens in the model's own tokenizer, instance counts
 * and the sign matrix (different classes repel). Uses the model's closed vocabulary when it has
 * one; a user may name the targets instead.
 *
 * @module
 */
import type { IsacSpec } from "../isac/loss.ts";
import { promptTokens } from "../prompt/spans.ts";
import type { TargetSpec, TokenTarget } from "../prompt/types.ts";
import type { DiffusionModel } from "../runtime/model.ts";

/** ISAC's spec for a prompt, plus the parsed targets (for labels in pictures). */
export interface PromptSpec {
  /** Targets with their token indices. */
  targets: TokenTarget[];
  /** Spec for {@link isacLoss}: one class token and count per target. */
  isac: IsacSpec;
}

/**
 * Parses `prompt` against the model's tokenizer (and vocabulary, if closed).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isacSpecFor, loadShapesModel } from "@attnkit/attnkit";
 * const model = await loadShapesModel();
 * const { targets, isac } = isacSpecFor(model, "two red circles and a blue square");
 * assert.deepEqual(targets.map((t) => [t.word, t.count]), [["circle", 2], ["square", 1]]);
 * assert.deepEqual(isac.counts, [2, 1]);
 * assert.equal(isac.tokens.length, 2); // one class token per target
 * await model.release();
 * ```
 */
export function isacSpecFor(
  model: DiffusionModel,
  prompt: string,
  opts: { targets?: readonly TargetSpec[]; seed?: number } = {},
): PromptSpec {
  // Tokenize first: a word the model cannot read is a clearer error than "no countable noun".
  model.tokenizer.tokenize(prompt);
  const targets = promptTokens(prompt, model.tokenizer, {
    nouns: model.info.nouns,
    attributes: model.info.attributes,
    targets: opts.targets,
  });
  const k = targets.length;
  return {
    targets,
    isac: {
      tokens: targets.map((t) => t.classToken),
      counts: targets.map((t) => t.count),
      signs: Array.from({ length: k }, () => new Array(k).fill(1)),
      seed: opts.seed ?? 0,
      // Read only by variants with attribute binding (IsacVariant.bind).
      bind: targets.flatMap((t, cls) =>
        t.attributes.map((a) => ({ token: a.token, cls, word: a.word }))
      ),
    },
  };
}
