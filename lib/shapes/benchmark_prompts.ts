/**
 * Benchmark prompts for the shapes world, following the ISAC paper's appendix C.3 protocol, and a
 * reader for a user's own prompt file.
 *
 * The protocol, transposed from COCO classes to shapes:
 * - multi-class: k = 2..5 classes drawn from ONE category of look-alikes (world.ts CATEGORIES),
 *   one instance each, each with a random colour: "a photo of a red circle, a blue oval and a
 *   green heart". The paper draws all classes from one category because intra-category prompts
 *   are where models fail.
 * - multi-instance: one class and n = 2..5 instances of one colour: "a photo of three yellow
 *   hearts".
 *
 * Where the paper samples 20 % of each category's class combinations (and uses each class once
 * per multi-instance count), this draws `perSetting` prompts per (setting, k) from a seed:
 * multi-class prompts take the categories in turn (balanced) with a random subset of k classes in
 * random order; multi-instance prompts take the classes in a shuffled cycle, so every class
 * appears equally often once `perSetting` is a multiple of the class count.
 *
 * @module
 */
import { AttnkitError, check } from "../errors.ts";
import { checkSeed, pick, seededRng, shuffled } from "../random.ts";
import { captionOf } from "./caption.ts";
import type { Group } from "./scene.ts";
import {
  CATEGORIES,
  CLASSES,
  type ColourName,
  COLOURS,
  NUMBER_WORDS,
  PLURALS,
  type ShapeClass,
} from "./world.ts";

/** The two benchmark settings of ISAC appendix C.3. */
export type BenchmarkSetting = "multi-class" | "multi-instance";

/** One benchmark prompt: its setting, k (classes or instances), target groups and text. */
export interface BenchmarkPrompt {
  /** Which of the two settings. */
  setting: BenchmarkSetting;
  /** Number of classes (multi-class) or instances (multi-instance). */
  k: number;
  /** The target groups (one per class; multi-instance: one group of k). */
  groups: Group[];
  /** The caption, as captionOf writes it. */
  prompt: string;
}

/** Options of {@link benchmarkPrompts}. */
export interface BenchmarkPromptOptions {
  /** Seed of the draw. */
  seed: number;
  /** Prompts per setting and k. */
  perSetting: number;
  /** The k values (default [2, 3, 4, 5]). */
  ks?: readonly number[];
  /** The settings (default both). */
  settings?: readonly BenchmarkSetting[];
}

/** Draws the benchmark's prompts: for each setting, for each k, `perSetting` prompts. */
export function benchmarkPrompts(opts: BenchmarkPromptOptions): BenchmarkPrompt[] {
  const ks = opts.ks ?? [2, 3, 4, 5];
  const settings = opts.settings ?? ["multi-class", "multi-instance"];
  checkSeed(opts.seed);
  check(
    Number.isInteger(opts.perSetting) && opts.perSetting >= 1,
    "perSetting",
    `expected an integer ≥ 1, got ${opts.perSetting}`,
  );
  const categories = Object.values(CATEGORIES);
  const maxK = Math.min(NUMBER_WORDS.length, ...categories.map((c) => c.length));
  for (const k of ks) {
    check(
      Number.isInteger(k) && k >= 2 && k <= maxK,
      "ks",
      `expected integers in 2..${maxK}, got ${k}`,
    );
  }
  const rng = seededRng(opts.seed);
  const out: BenchmarkPrompt[] = [];
  for (const setting of settings) {
    check(
      setting === "multi-class" || setting === "multi-instance",
      "settings",
      `expected "multi-class" or "multi-instance", got ${setting}`,
    );
    for (const k of ks) {
      let cycle: ShapeClass[] = [];
      for (let j = 0; j < opts.perSetting; j++) {
        let groups: Group[];
        if (setting === "multi-class") {
          const category = categories[j % categories.length];
          groups = shuffled(rng, category).slice(0, k).map((cls) => ({
            cls,
            colour: pick(rng, COLOURS),
            count: 1,
          }));
        } else {
          if (cycle.length === 0) cycle = shuffled(rng, CLASSES);
          groups = [{ cls: cycle.pop()!, colour: pick(rng, COLOURS), count: k }];
        }
        out.push({ setting, k, groups, prompt: captionOf(groups) });
      }
    }
  }
  return out;
}

/** One prompt read from a prompt file. */
export interface FilePrompt {
  /** 1-based line number in the file. */
  line: number;
  /** The line, trimmed. */
  prompt: string;
  /** The groups it asks for. */
  groups: Group[];
}

const COUNT_WORDS: ReadonlyMap<string, number> = new Map([
  ["a", 1],
  ["an", 1],
  ...NUMBER_WORDS.map((w, i) => [w, i + 1] as [string, number]),
]);
const SINGULAR: ReadonlyMap<string, ShapeClass> = new Map(CLASSES.map((c) => [c, c]));
const PLURAL: ReadonlyMap<string, ShapeClass> = new Map(CLASSES.map((c) => [PLURALS[c], c]));
const COLOUR_SET: ReadonlySet<string> = new Set(COLOURS);

function parseLine(text: string, line: number): Group[] {
  const where = `line ${line}`;
  const words = text.toLowerCase().replace(/,/g, " , ").replace(/\.\s*$/, "").split(/\s+/)
    .filter((w) => w.length > 0);
  let i = 0;
  if (words[0] === "a" && words[1] === "photo" && words[2] === "of") i = 3;
  const groups: Group[] = [];
  const fail = (what: string): never => {
    throw new AttnkitError(where, `${what} in "${text}"`);
  };
  for (;;) {
    if (i >= words.length) fail(`expected a shape after "${words[i - 1] ?? ""}"`);
    let count: number | null = null;
    if (COUNT_WORDS.has(words[i])) count = COUNT_WORDS.get(words[i++])!;
    let colour: ColourName | null = null;
    if (i < words.length && COLOUR_SET.has(words[i])) colour = words[i++] as ColourName;
    const noun = words[i];
    if (noun === undefined) fail(`expected a shape after "${words[i - 1]}"`);
    if (SINGULAR.has(noun)) {
      if (count !== null && count !== 1) {
        fail(`"${noun}" should be plural after a count of ${count}`);
      }
      groups.push({ cls: SINGULAR.get(noun)!, colour, count: 1 });
    } else if (PLURAL.has(noun)) {
      if (count === null) fail(`"${noun}" needs a count (two … five)`);
      if (count === 1) fail(`"${noun}" should be singular after "${words[i - (colour ? 2 : 1)]}"`);
      groups.push({ cls: PLURAL.get(noun)!, colour, count: count! });
    } else {
      fail(`unknown word "${noun}" (expected a colour, a count or one of: ${CLASSES.join(", ")})`);
    }
    i++;
    if (i >= words.length) return groups;
    if (words[i] === ",") i++;
    if (words[i] === "and") i++;
    else if (words[i - 1] !== ",") fail(`unexpected word "${words[i]}" (expected "," or "and")`);
  }
}

/**
 * Reads a prompt file: one prompt per line in the shapes vocabulary ("a photo of two red circles
 * and a blue star"; the "a photo of" prefix is optional); blank lines and lines starting with
 * `#` are skipped. Throws an AttnkitError naming the line and the word it could not read.
 */
export function parsePromptFile(text: string): FilePrompt[] {
  const out: FilePrompt[] = [];
  text.split(/\r?\n/).forEach((raw, k) => {
    const prompt = raw.trim();
    if (prompt === "" || prompt.startsWith("#")) return;
    out.push({ line: k + 1, prompt, groups: parseLine(prompt, k + 1) });
  });
  return out;
}
