/**
 * The shapes world's vocabulary: shape classes, their categories of look-alikes, colours and
 * number words. One source of truth for the renderer, the captions, the tokenizer and the detector.
 *
 * Categories group classes that look alike at 64×64 (the ISAC paper's point is that classes from
 * one category are the hard case for multi-class prompts):
 * - `round`: circle, oval, ring, heart, moon: curved outlines, most share a disc-like silhouette;
 * - `angular`: square, triangle, diamond, star, cross: straight edges and corners.
 *
 * @module
 */

/** A shape class name. */
export type ShapeClass =
  | "circle"
  | "oval"
  | "ring"
  | "heart"
  | "moon"
  | "square"
  | "triangle"
  | "diamond"
  | "star"
  | "cross";

/** Every shape class, in a fixed order (class ids are indices into this list). */
export const CLASSES: readonly ShapeClass[] = [
  "circle",
  "oval",
  "ring",
  "heart",
  "moon",
  "square",
  "triangle",
  "diamond",
  "star",
  "cross",
];

/** Plural form of each class, as captions write it. */
export const PLURALS: Readonly<Record<ShapeClass, string>> = {
  circle: "circles",
  oval: "ovals",
  ring: "rings",
  heart: "hearts",
  moon: "moons",
  square: "squares",
  triangle: "triangles",
  diamond: "diamonds",
  star: "stars",
  cross: "crosses",
};

/** Categories of look-alike classes; multi-class benchmark prompts draw from one category. */
export const CATEGORIES: Readonly<Record<string, readonly ShapeClass[]>> = {
  round: ["circle", "oval", "ring", "heart", "moon"],
  angular: ["square", "triangle", "diamond", "star", "cross"],
};

/** A colour name. */
export type ColourName = "red" | "orange" | "yellow" | "green" | "blue" | "purple";

/** Every colour, in a fixed order. */
export const COLOURS: readonly ColourName[] = [
  "red",
  "orange",
  "yellow",
  "green",
  "blue",
  "purple",
];

/** The nominal sRGB value of each colour (renders jitter around it). */
export const COLOUR_RGB: Readonly<Record<ColourName, readonly [number, number, number]>> = {
  red: [215, 35, 35],
  orange: [245, 135, 15],
  yellow: [230, 205, 20],
  green: [35, 160, 55],
  blue: [35, 75, 215],
  purple: [145, 45, 185],
};

/** Number words one to five, index = count − 1 (the model's vocabulary stops at five). */
export const NUMBER_WORDS: readonly string[] = ["one", "two", "three", "four", "five"];

/** The embedded model's word vocabulary; ids are indices. Special tokens come first. */
export const VOCAB: readonly string[] = [
  "<pad>",
  "<sot>",
  "<eot>",
  "a",
  "an",
  "photo",
  "of",
  "and",
  ",",
  ...NUMBER_WORDS,
  ...COLOURS,
  ...CLASSES,
  ...CLASSES.map((c) => PLURALS[c]),
];

/** Token length of the embedded model's text encoder (start and end tokens included). */
export const MAX_TOKENS = 32;
