/**
 * Errors as values for the steps a caller may want to handle without try/catch: parsing a prompt
 * and building ISAC's spec from it. Each returns an fp-ts `Either` — `left` holds the
 * {@link AttnkitError} (with the argument it names), `right` the value.
 *
 * @module
 */
import * as E from "npm:fp-ts@2.16.11/lib/Either.js";
import { AttnkitError } from "../errors.ts";
import { parsePrompt } from "../prompt/parse.ts";
import type { ParseOptions, PromptTarget } from "../prompt/types.ts";
import { isacSpecFor, type PromptSpec } from "../control/isac_spec.ts";
import type { DiffusionModel } from "../runtime/model.ts";

function asAttnkit(e: unknown): AttnkitError {
  return e instanceof AttnkitError ? e : new AttnkitError("prompt", String(e));
}

/**
 * `parsePrompt` as an Either: the targets (class nouns, counts, attributes) or the error.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseE } from "./either.ts";
 * import { isRight } from "npm:fp-ts@2.16.11/lib/Either.js";
 * const r = parseE("two cats and a dog");
 * assert(isRight(r) && r.right.length === 2);
 * ```
 */
export function parseE(
  prompt: string,
  opts: ParseOptions = {},
): E.Either<AttnkitError, PromptTarget[]> {
  return E.tryCatch(() => parsePrompt(prompt, opts), asAttnkit);
}

/**
 * ISAC's spec for a prompt on a model, as an Either (a word the model cannot read, no countable
 * noun, … come back as `left`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { specE } from "./either.ts";
 * import { loadShapesModel } from "../models/shapes.ts";
 * import { isLeft } from "npm:fp-ts@2.16.11/lib/Either.js";
 * const model = await loadShapesModel();
 * assert(isLeft(specE(model, "a photo of a dragon")));
 * await model.release();
 * ```
 */
export function specE(model: DiffusionModel, prompt: string): E.Either<AttnkitError, PromptSpec> {
  return E.tryCatch(() => isacSpecFor(model, prompt), asAttnkit);
}
