/** verdictOf on renders of known scenes: the prompt's scene scores full marks; a swap does not. */
import assert from "node:assert/strict";
import { verdictOf } from "../lib/shapes/verdict.ts";
import { render } from "../lib/shapes/render.ts";
import { sceneFor } from "../lib/shapes/scene.ts";
import { parsePromptFile } from "../lib/shapes/benchmark_prompts.ts";
import { COLOURS } from "../lib/shapes/world.ts";
import { mulberry32 } from "../lib/random.ts";
import { AttnkitError } from "../lib/errors.ts";

const prompt = "a photo of a red heart, a blue star and a green circle";

Deno.test("verdictOf: a render of the prompt is found in full", () => {
  const groups = parsePromptFile(prompt)[0].groups;
  const scene = sceneFor(mulberry32(5), groups, COLOURS)!;
  const v = verdictOf(prompt, render(scene).rgb);
  assert.equal(v.classOnly, 1);
  assert.equal(v.classColour, 1);
  assert.equal(v.exact, true);
  assert.deepEqual([...v.found].sort(), ["blue star", "green circle", "red heart"]);
  assert.match(v.text, /^class 3\/3, \+colour 3\/3, exact/);
});

Deno.test("verdictOf: swapped colours are class-only right, colour wrong", () => {
  const swapped =
    parsePromptFile("a photo of a blue heart, a red star and a green circle")[0].groups;
  const scene = sceneFor(mulberry32(6), swapped, COLOURS)!;
  const v = verdictOf(prompt, render(scene).rgb);
  assert.equal(v.classOnly, 1);
  assert.equal(v.classColour, 1 / 3);
  assert.equal(v.exact, false);
});

Deno.test("verdictOf: an unreadable prompt is an AttnkitError naming prompt", () => {
  assert.throws(
    () => verdictOf("a photo of a purple unicorn", new Uint8Array(64 * 64 * 3)),
    (e) => e instanceof AttnkitError && /prompt/.test(e.message),
  );
});
