/**
 * Scenes of the shapes world as plain data, and their seeded sampling: which objects (class,
 * colour) a caption asks for, and where they go. Objects never touch: each one's pixel mask,
 * grown by a margin, must not meet another's, so touching instances only ever come from a model.
 *
 * @module
 */
import { COLOUR_RGB, type ColourName, type ShapeClass } from "./world.ts";
import { INSIDE } from "./geometry.ts";
import { pick, randInt, type Rng } from "../random.ts";

/** Side of a scene in pixels. */
export const SCENE_SIZE = 64;

/** One object in a scene: class, colour, centre and half-width in pixels. */
export interface ShapeObject {
  /** Shape class. */
  cls: ShapeClass;
  /** Colour name, as a caption says it. */
  colour: ColourName;
  /** Fill colour in 0–255 RGB: the named colour's RGB, jittered per object. */
  rgb: readonly [number, number, number];
  /** Centre x in pixels from the left edge (continuous; pixel x spans [x, x + 1)). */
  cx: number;
  /** Centre y in pixels from the top edge (continuous; pixel y spans [y, y + 1)). */
  cy: number;
  /** Half-width in pixels: the shape's unit outline scaled by `r` about the centre. */
  r: number;
}

/** A background: a soft linear gradient between two light, unsaturated colours. */
export interface Background {
  /** Start colour of the gradient, 0–255 RGB. */
  from: readonly [number, number, number];
  /** End colour of the gradient, 0–255 RGB (equal to `from` for a plain background). */
  to: readonly [number, number, number];
  /** Gradient direction in radians. */
  angle: number;
}

/** A whole scene. */
export interface Scene {
  /** The background gradient, painted first. */
  background: Background;
  /** The objects; label i + 1 in the rendered label map marks objects[i]. */
  objects: ShapeObject[];
}

/** One group of a caption: `count` objects of a class, with a colour or none (any colour). */
export interface Group {
  /** Shape class of the group's objects. */
  cls: ShapeClass;
  /** Colour of every object in the group; null lets each object take any colour. */
  colour: ColourName | null;
  /** Number of objects in the group. */
  count: number;
}

/** A random light background; plain half the time. */
export function sampleBackground(rng: Rng): Background {
  const light = (): [number, number, number] => {
    const base = 200 + rng() * 45;
    return [0, 1, 2].map(() => Math.min(255, base + (rng() - 0.5) * 24)) as [
      number,
      number,
      number,
    ];
  };
  const from = light();
  return { from, to: rng() < 0.5 ? from : light(), angle: rng() * 2 * Math.PI };
}

/** Pixel mask (row-major, SCENE_SIZE²) of an object, grown by `margin` pixels. */
export function objectMask(o: ShapeObject, margin = 0): Uint8Array {
  const n = SCENE_SIZE;
  const mask = new Uint8Array(n * n);
  const inside = INSIDE[o.cls];
  const reach = o.r + margin + 1;
  for (
    let y = Math.max(0, Math.floor(o.cy - reach));
    y < Math.min(n, Math.ceil(o.cy + reach));
    y++
  ) {
    for (
      let x = Math.max(0, Math.floor(o.cx - reach));
      x < Math.min(n, Math.ceil(o.cx + reach));
      x++
    ) {
      const u = (x + 0.5 - o.cx) / o.r;
      const v = (y + 0.5 - o.cy) / o.r;
      if (inside(u, v)) mask[y * n + x] = 1;
    }
  }
  if (margin <= 0) return mask;
  const grown = new Uint8Array(n * n);
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      if (!mask[y * n + x]) continue;
      for (let dy = -margin; dy <= margin; dy++) {
        for (let dx = -margin; dx <= margin; dx++) {
          const yy = y + dy, xx = x + dx;
          if (yy >= 0 && yy < n && xx >= 0 && xx < n) grown[yy * n + xx] = 1;
        }
      }
    }
  }
  return grown;
}

/** Size range (half-width in px) for a scene with `count` objects. */
function radiusRange(count: number): [number, number] {
  if (count <= 1) return [8, 15];
  if (count <= 3) return [6, 11];
  return [5, 8];
}

function jitter(rgb: readonly [number, number, number], rng: Rng): [number, number, number] {
  return rgb.map((c) => Math.max(0, Math.min(255, Math.round(c + (rng() - 0.5) * 24)))) as [
    number,
    number,
    number,
  ];
}

/**
 * Places objects of the given classes and colours without touching (2-pixel gap). Retries with
 * smaller sizes when a layout does not fit; returns null only if even the smallest size fails.
 */
export function placeObjects(
  rng: Rng,
  items: readonly { cls: ShapeClass; colour: ColourName }[],
): ShapeObject[] | null {
  const [lo, hi] = radiusRange(items.length);
  for (let shrink = 0; shrink < 4; shrink++) {
    const rHi = Math.max(lo, hi - shrink * 2);
    for (let attempt = 0; attempt < 30; attempt++) {
      const taken = new Uint8Array(SCENE_SIZE * SCENE_SIZE);
      const placed: ShapeObject[] = [];
      let ok = true;
      for (const item of items) {
        let done = false;
        for (let tries = 0; tries < 60 && !done; tries++) {
          const r = lo + rng() * (rHi - lo);
          const pad = r + 1;
          const o: ShapeObject = {
            cls: item.cls,
            colour: item.colour,
            rgb: jitter(COLOUR_RGB[item.colour], rng),
            cx: pad + rng() * (SCENE_SIZE - 2 * pad),
            cy: pad + rng() * (SCENE_SIZE - 2 * pad),
            r,
          };
          const grown = objectMask(o, 2);
          let clash = false;
          for (let i = 0; i < grown.length; i++) {
            if (grown[i] && taken[i]) {
              clash = true;
              break;
            }
          }
          if (clash) continue;
          const own = objectMask(o, 0);
          for (let i = 0; i < own.length; i++) if (own[i]) taken[i] = 1;
          placed.push(o);
          done = true;
        }
        if (!done) {
          ok = false;
          break;
        }
      }
      if (ok) return placed;
    }
  }
  return null;
}

/** Expands caption groups into one item per object, choosing colours where a group has none. */
export function itemsOf(
  rng: Rng,
  groups: readonly Group[],
  colours: readonly ColourName[],
): { cls: ShapeClass; colour: ColourName }[] {
  const items: { cls: ShapeClass; colour: ColourName }[] = [];
  for (const g of groups) {
    for (let i = 0; i < g.count; i++) {
      items.push({ cls: g.cls, colour: g.colour ?? pick(rng, colours) });
    }
  }
  return items;
}

/**
 * A scene that matches `groups` (null if the objects cannot be placed).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { samplers, shapes } from "@attnkit/attnkit";
 * const groups = [
 *   { cls: "circle", colour: "red", count: 2 },
 *   { cls: "square", colour: "blue", count: 1 },
 * ] as const;
 * const scene = shapes.sceneFor(samplers.mulberry32(3), groups, ["red", "blue"]);
 * assert.ok(scene !== null);
 * assert.deepEqual(scene.objects.map((o) => o.cls).sort(), ["circle", "circle", "square"]);
 * ```
 */
export function sceneFor(
  rng: Rng,
  groups: readonly Group[],
  colours: readonly ColourName[],
): Scene | null {
  const objects = placeObjects(rng, itemsOf(rng, groups, colours));
  return objects ? { background: sampleBackground(rng), objects } : null;
}

/** Total object count of some groups. */
export function countOf(groups: readonly Group[]): number {
  return groups.reduce((s, g) => s + g.count, 0);
}

/** A random integer count in [lo, hi], re-exported for scene recipes. */
export const randomCount: (rng: Rng, lo: number, hi: number) => number = randInt;
