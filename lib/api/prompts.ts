/**
 * Prompts: class nouns, counts and attributes from text ("two cats and a dog" → cat×2, dog×1),
 * their token spans in a model's tokenizer, ISAC's sign matrix, and Either-returning forms.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { prompts } from "@attnkit/attnkit";
 * const t = prompts.parsePrompt("two cats and a dog");
 * assert(t.map((x) => `${x.word}×${x.count}`).join() === "cat×2,dog×1");
 * ```
 *
 * @module
 */
export * from "../prompt/mod.ts";
export { parseE, specE } from "../compose/either.ts";
