/**
 * Captions of the shapes world, in the two benchmark forms of the ISAC paper's appendix C.3
 * ("a photo of a red circle, a blue square and a green star"; "a photo of three yellow hearts")
 * and free variants (colour omitted, any order, no "a photo of" prefix, mixed counts).
 *
 * @module
 */
import { NUMBER_WORDS, PLURALS } from "./world.ts";
import type { Group } from "./scene.ts";

/** One group as words: "a red circle", "an orange heart", "three yellow hearts", "two stars". */
export function phraseOf(g: Group): string {
  const noun = g.count === 1 ? g.cls : PLURALS[g.cls];
  const words = g.colour ? `${g.colour} ${noun}` : noun;
  if (g.count === 1) return `${/^[aeiou]/.test(words) ? "an" : "a"} ${words}`;
  return `${NUMBER_WORDS[g.count - 1]} ${words}`;
}

/**
 * A caption for groups in the given order; `prefix` false drops "a photo of".
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { shapes } from "@attnkit/attnkit";
 * const groups = [
 *   { cls: "circle", colour: "red", count: 2 },
 *   { cls: "square", colour: "blue", count: 1 },
 * ] as const;
 * assert.equal(shapes.captionOf(groups), "a photo of two red circles and a blue square");
 * assert.equal(shapes.captionOf(groups, false), "two red circles and a blue square");
 * ```
 */
export function captionOf(groups: readonly Group[], prefix = true): string {
  const phrases = groups.map(phraseOf);
  const list = phrases.length === 1
    ? phrases[0]
    : `${phrases.slice(0, -1).join(", ")} and ${phrases[phrases.length - 1]}`;
  return prefix ? `a photo of ${list}` : list;
}
