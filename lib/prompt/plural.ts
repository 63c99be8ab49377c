/**
 * English plural ↔ singular for the class nouns of prompts: a table of irregular forms (mice,
 * geese, people, sheep, fish, …) and the regular -s / -es / -ies rules. Heuristic by nature; the
 * parser uses it to name a class by its singular ("cats" → "cat") and to recognise the plural
 * of a known class noun.
 *
 * @module
 */

/** Irregular plural → singular (same-form plurals map to themselves). */
export const IRREGULAR_PLURALS: Readonly<Record<string, string>> = {
  mice: "mouse",
  geese: "goose",
  people: "person",
  children: "child",
  men: "man",
  women: "woman",
  teeth: "tooth",
  feet: "foot",
  oxen: "ox",
  lice: "louse",
  dice: "die",
  sheep: "sheep",
  fish: "fish",
  deer: "deer",
  moose: "moose",
  bison: "bison",
  salmon: "salmon",
  trout: "trout",
  shrimp: "shrimp",
  squid: "squid",
  aircraft: "aircraft",
  series: "series",
  species: "species",
  cacti: "cactus",
  fungi: "fungus",
  octopi: "octopus",
  knives: "knife",
  wives: "wife",
  lives: "life",
  leaves: "leaf",
  loaves: "loaf",
  wolves: "wolf",
  calves: "calf",
  halves: "half",
  shelves: "shelf",
  elves: "elf",
  thieves: "thief",
  scarves: "scarf",
  hooves: "hoof",
  shoes: "shoe",
  toes: "toe",
  canoes: "canoe",
  gases: "gas",
  quizzes: "quiz",
  cookies: "cookie",
  movies: "movie",
  zombies: "zombie",
  pies: "pie",
  ties: "tie",
  brownies: "brownie",
  goalies: "goalie",
  hippies: "hippie",
  selfies: "selfie",
  axes: "axe",
  lenses: "lens",
  buses: "bus",
  viruses: "virus",
  bonuses: "bonus",
  campuses: "campus",
  circuses: "circus",
  walruses: "walrus",
  octopuses: "octopus",
  platypuses: "platypus",
  cactuses: "cactus",
};

const SINGULAR_TO_PLURAL: ReadonlyMap<string, string> = new Map(
  Object.entries(IRREGULAR_PLURALS).map(([p, s]) => [s, p]),
);

/** Words ending in s that are singular ("glass", "bus", "cactus", "iris"). */
function looksSingular(w: string): boolean {
  return /(ss|us|is|ous)$/.test(w) || w.length <= 3;
}

/**
 * The singular of a (lower-case) noun; words that are not plural come back unchanged.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { prompts } from "@attnkit/attnkit";
 * assert.equal(prompts.singularOf("circles"), "circle");
 * assert.equal(prompts.singularOf("mice"), "mouse"); // irregular
 * assert.equal(prompts.singularOf("circle"), "circle");
 * ```
 */
export function singularOf(word: string): string {
  const w = word.toLowerCase();
  const irregular = IRREGULAR_PLURALS[w];
  if (irregular !== undefined) return irregular;
  if (!w.endsWith("s") || looksSingular(w)) return w;
  if (w.endsWith("ies") && w.length > 4) return `${w.slice(0, -3)}y`; // berries → berry
  if (/(ch|sh|x|zz|ss)es$/.test(w)) return w.slice(0, -2); // benches, boxes, buzzes, glasses
  if (/[^aeiou]oes$/.test(w)) return w.slice(0, -2); // potatoes, tomatoes, heroes
  return w.slice(0, -1); // cats, circles, hearts, houses
}

/**
 * The plural of a (lower-case, singular) noun.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { prompts } from "@attnkit/attnkit";
 * assert.equal(prompts.pluralOf("box"), "boxes");
 * assert.equal(prompts.pluralOf("mouse"), "mice");
 * ```
 */
export function pluralOf(word: string): string {
  const w = word.toLowerCase();
  const irregular = SINGULAR_TO_PLURAL.get(w);
  if (irregular !== undefined) return irregular;
  if (/[^aeiou]y$/.test(w)) return `${w.slice(0, -1)}ies`;
  if (/(s|x|z|ch|sh)$/.test(w)) return `${w}${w.endsWith("z") && !w.endsWith("zz") ? "zes" : "es"}`;
  if (
    /[^aeiou]o$/.test(w) && !/(photo|piano|radio|video|zoo|logo|memo|kilo|hippo|rhino)$/.test(w)
  ) {
    return `${w}es`;
  }
  return `${w}s`;
}

/**
 * True when `word` is a plural form (regular or irregular, not a same-form plural like sheep).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { prompts } from "@attnkit/attnkit";
 * assert.equal(prompts.isPlural("circles"), true);
 * assert.equal(prompts.isPlural("circle"), false);
 * assert.equal(prompts.isPlural("sheep"), false); // same form: the count word decides
 * ```
 */
export function isPlural(word: string): boolean {
  const w = word.toLowerCase();
  const s = singularOf(w);
  return s !== w;
}
