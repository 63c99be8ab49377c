/**
 * The training distribution of the embedded model: a seeded mix of single objects, multi-class
 * lists, multi-instance counts and mixed counts, each caption matching its scene exactly.
 *
 * Mix (by draw): 25% one object, 30% k = 2..5 classes with one instance each (from one category
 * 60% of the time), 25% one class with n = 2..5 instances, 20% two classes with counts adding to
 * at most 5. Colours are named 80% of the time; unnamed colours are drawn per object.
 *
 * @module
 */
import { CATEGORIES, CLASSES, COLOURS, type ShapeClass } from "./world.ts";
import { captionOf } from "./caption.ts";
import { type Group, type Scene, sceneFor } from "./scene.ts";
import { pick, randInt, type Rng, shuffled } from "../random.ts";

/** A training example: the caption's groups, the caption and a scene that matches it. */
export interface Example {
  groups: Group[];
  caption: string;
  scene: Scene;
}

function distinctClasses(rng: Rng, k: number): ShapeClass[] {
  const pool = rng() < 0.6 ? pick(rng, Object.values(CATEGORIES)) : CLASSES;
  return shuffled(rng, pool).slice(0, k);
}

/** Draws the groups of a training caption. */
export function sampleGroups(rng: Rng): Group[] {
  const named = rng() < 0.8;
  const colour = () => (named ? pick(rng, COLOURS) : null);
  const draw = rng();
  if (draw < 0.25) return [{ cls: pick(rng, CLASSES), colour: colour(), count: 1 }];
  if (draw < 0.55) {
    return distinctClasses(rng, randInt(rng, 2, 5)).map((cls) => ({
      cls,
      colour: colour(),
      count: 1,
    }));
  }
  if (draw < 0.8) return [{ cls: pick(rng, CLASSES), colour: colour(), count: randInt(rng, 2, 5) }];
  const [a, b] = distinctClasses(rng, 2);
  const na = randInt(rng, 1, 4);
  const nb = randInt(rng, 1, 5 - na);
  return [{ cls: a, colour: colour(), count: na }, { cls: b, colour: colour(), count: nb }];
}

/** Draws one training example (retrying the rare layouts that do not fit). */
export function sampleExample(rng: Rng): Example {
  for (;;) {
    const groups = sampleGroups(rng);
    const scene = sceneFor(rng, groups, COLOURS);
    if (scene) return { groups, caption: captionOf(groups, rng() < 0.85), scene };
  }
}
