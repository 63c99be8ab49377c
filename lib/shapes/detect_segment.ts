/**
 * Segmentation for the shapes detector: foreground pixels (those the unmixing calls coloured
 * enough) are grouped into regions of one palette colour, connected in the 8-neighbourhood.
 *
 * Why 8-connectivity: at 64×64 the thin parts of one shape (star tips, crescent horns, a diamond's
 * or a small ring's staircase edges) often touch their neighbours only at a corner, and
 * 4-connectivity would break them into extra "instances". Rendered objects always keep at least a
 * two-pixel gap (scene.ts), so two objects are separate exactly when a background pixel runs
 * between them; objects whose pixels touch, even at a corner, are one region. That is the intended
 * reading of "separated": a merged pair is one instance, never two.
 *
 * Regions too small to be an object, or too thin (no pixel whose four neighbours are all in the
 * region: a one- or two-pixel line), are not objects. Where such a fragment touches another
 * region it takes that region's colour (the mixed-colour rim between a red and a yellow object
 * unmixes as orange; a drifting colour leaves islands of the neighbouring hue inside an object);
 * where it touches nothing it is dropped as a speckle. This repeats until every region is solid.
 *
 * @module
 */
import { SCENE_SIZE } from "./scene.ts";
import { NO_COLOUR } from "./detect_colour.ts";

/** A region: its pixels (indices into the SCENE_SIZE² grid) and palette colour index. */
export interface Region {
  pixels: number[];
  colour: number;
}

/** Thresholds that decide which regions are objects. */
export interface SegmentOptions {
  /** Smallest object area in pixels. */
  minArea: number;
  /** Smallest count of interior pixels (all four neighbours in the region). */
  minCore: number;
}

const N8: readonly (readonly [number, number])[] = [
  [-1, -1],
  [0, -1],
  [1, -1],
  [-1, 0],
  [1, 0],
  [-1, 1],
  [0, 1],
  [1, 1],
];

/**
 * Labels 8-connected regions of equal `key` (pixels with key NO_COLOUR are background).
 * Returns the label map (−1 for background) and the pixels of each region.
 */
export function labelRegions(key: Uint8Array): { labels: Int32Array; regions: Region[] } {
  const n = SCENE_SIZE;
  const labels = new Int32Array(n * n).fill(-1);
  const regions: Region[] = [];
  const stack: number[] = [];
  for (let start = 0; start < n * n; start++) {
    if (key[start] === NO_COLOUR || labels[start] >= 0) continue;
    const id = regions.length;
    const pixels: number[] = [];
    labels[start] = id;
    stack.push(start);
    while (stack.length > 0) {
      const i = stack.pop()!;
      pixels.push(i);
      const x = i % n, y = (i - x) / n;
      for (const [dx, dy] of N8) {
        const xx = x + dx, yy = y + dy;
        if (xx < 0 || yy < 0 || xx >= n || yy >= n) continue;
        const j = yy * n + xx;
        if (labels[j] < 0 && key[j] === key[start]) {
          labels[j] = id;
          stack.push(j);
        }
      }
    }
    regions.push({ pixels, colour: key[start] });
  }
  return { labels, regions };
}

function coreCount(pixels: readonly number[], labels: Int32Array, id: number): number {
  const n = SCENE_SIZE;
  let core = 0;
  for (const i of pixels) {
    const x = i % n, y = (i - x) / n;
    if (
      x > 0 && x < n - 1 && y > 0 && y < n - 1 && labels[i - 1] === id && labels[i + 1] === id &&
      labels[i - n] === id && labels[i + n] === id
    ) core++;
  }
  return core;
}

/**
 * Splits a per-pixel colour map (NO_COLOUR = background) into solid one-colour regions, folding
 * small or thin fragments into the region they touch most and dropping isolated ones.
 */
export function segmentRegions(colourMap: Uint8Array, opts: SegmentOptions): Region[] {
  const n = SCENE_SIZE;
  const key = colourMap.slice();
  for (let round = 0; round < 8; round++) {
    const { labels, regions } = labelRegions(key);
    const solid = regions.map((r, id) =>
      r.pixels.length >= opts.minArea && coreCount(r.pixels, labels, id) >= opts.minCore
    );
    let changed = false;
    for (let id = 0; id < regions.length; id++) {
      if (solid[id]) continue;
      const reg = regions[id];
      // Contacts with each neighbouring region, counted over 8-neighbour pixel pairs.
      const contacts = new Map<number, number>();
      for (const i of reg.pixels) {
        const x = i % n, y = (i - x) / n;
        for (const [dx, dy] of N8) {
          const xx = x + dx, yy = y + dy;
          if (xx < 0 || yy < 0 || xx >= n || yy >= n) continue;
          const other = labels[yy * n + xx];
          if (other >= 0 && other !== id) contacts.set(other, (contacts.get(other) ?? 0) + 1);
        }
      }
      // A fragment joins the solid region it touches most; failing that, the largest fragment it
      // touches, when that one is larger than itself (so two fragments never swap colours).
      let target = -1, most = 0;
      for (const [other, k] of contacts) {
        if (solid[other] && k > most) {
          most = k;
          target = other;
        }
      }
      if (target < 0) {
        let size = reg.pixels.length * regions.length + id;
        for (const other of contacts.keys()) {
          const otherSize = regions[other].pixels.length * regions.length + other;
          if (otherSize > size) {
            size = otherSize;
            target = other;
          }
        }
      }
      if (target >= 0) {
        for (const i of reg.pixels) key[i] = regions[target].colour;
        changed = true;
      } else if (contacts.size === 0) {
        for (const i of reg.pixels) key[i] = NO_COLOUR;
        changed = true;
      }
    }
    if (!changed) return regions;
  }
  // Fragments still oscillating after the rounds above (rare) are dropped.
  const { labels, regions } = labelRegions(key);
  return regions.filter((r, id) =>
    r.pixels.length >= opts.minArea && coreCount(r.pixels, labels, id) >= opts.minCore
  );
}
