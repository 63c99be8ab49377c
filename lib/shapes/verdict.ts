/**
 * The detector's verdict on one generated image of a shapes prompt, in words: what it found,
 * class-only and class + colour accuracy, and whether the counts are exact. For examples and
 * REPL use; benchmarks use bench/judge.ts, which adds the failure taxonomy.
 *
 * @module
 */
import { detect } from "./detect.ts";
import { parsePromptFile } from "./benchmark_prompts.ts";
import { scoreGroups } from "./score.ts";
import { AttnkitError } from "../errors.ts";

/** What the detector made of an image against its prompt. */
export interface Verdict {
  /** Fraction of the prompt's classes found, colour ignored (the ISAC paper's multi-class). */
  classOnly: number;
  /** Fraction of its (class, colour) targets found. */
  classColour: number;
  /** Every count exact, colours included, no extra instance of a target class. */
  exact: boolean;
  /** The recognised instances, "colour class" each. */
  found: string[];
  /** One line: "class 2/3, +colour 1/3, found: red circle, blue oval". */
  text: string;
  /** Classes found, colour ignored, as "2/3" (short enough for a tile label). */
  short: string;
}

/**
 * Detects the shapes in a 64×64 RGB image (interleaved bytes) and scores them against `prompt`
 * (a shapes caption, as lib/shapes/benchmark_prompts.ts's `parsePromptFile` reads it). Throws an
 * AttnkitError naming `prompt` when it cannot be read as a shapes caption.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { samplers, shapes } from "@attnkit/attnkit";
 * // A rendered scene with exactly what the prompt asks for.
 * const groups = [{ cls: "circle", colour: "red", count: 1 }, { cls: "star", colour: "blue", count: 1 }] as const;
 * const scene = shapes.sceneFor(samplers.mulberry32(3), groups, shapes.COLOURS)!;
 * const image = shapes.render(scene).rgb;
 * const v = shapes.verdictOf("a photo of a red circle and a blue star", image);
 * console.log(v.text); // e.g. "class 2/2, +colour 2/2, found: red circle, blue star"
 * assert.ok(v.text.length > 0);
 * ```
 */
export function verdictOf(prompt: string, image: Uint8Array): Verdict {
  let groups;
  try {
    groups = parsePromptFile(prompt)[0]?.groups;
  } catch (e) {
    throw new AttnkitError("prompt", `not a shapes caption: ${e instanceof Error ? e.message : e}`);
  }
  if (!groups) throw new AttnkitError("prompt", "is empty");
  const found = detect(image);
  const withColour = scoreGroups(groups, found);
  const plain = scoreGroups(groups.map((g) => ({ ...g, colour: null })), found);
  const names = found.filter((d) => d.clsScore >= 0.6).map((d) => `${d.colour} ${d.cls}`);
  const k = groups.length;
  const n = (x: number) => Math.round(x * k);
  const total = groups.reduce((s, g) => s + g.count, 0);
  const inst = total > k
    ? `, instances ${Math.round(withColour.instanceAccuracy * total)}/${total}`
    : "";
  return {
    classOnly: plain.classAccuracy,
    classColour: withColour.classAccuracy,
    exact: withColour.exact,
    found: names,
    short: `${n(plain.classAccuracy)}/${k}`,
    text: `class ${n(plain.classAccuracy)}/${k}, +colour ${
      n(withColour.classAccuracy)
    }/${k}${inst}${withColour.exact ? ", exact" : ""}, found: ${
      names.length ? names.join(", ") : "nothing"
    }`,
  };
}
