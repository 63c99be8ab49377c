/**
 * Shape classification for the shapes detector by template matching: each class's template
 * (geometry.ts's inside-test, seen through a blur: detect_templates.ts) is fitted to a component
 * and compared with it; the class whose template fits best wins, and the fit is its score.
 *
 * Every shape is drawn with one scale `r` for both axes, so a template is fitted isotropically: by
 * the box's width, by its height (each centring the template's silhouette box on the component's
 * box), and by the component's area (centroid on centroid: thin tips lost to blur shrink the box
 * but barely move area or centroid). That is what tells an oval (box 1 : 0.6) from a circle: a
 * circle stretched anisotropically would fit any oval. The best start of the four best classes is
 * then refined by hill-climbing over centre and scale, which absorbs the ±1-pixel error of a box
 * measured on anti-aliased or blurred edges.
 *
 * Two comparisons:
 * - mask: IoU of the component's 0/1 mask with the template thresholded at ½ (what a render's
 *   coverage ≥ ½ label map is);
 * - soft (when the component carries its soft objectness α): Σ min(α, t) / Σ max(α, t) with the
 *   template's blurred coverage t, each class at the blur (of SOFT_BLURS) that suits it. Soft
 *   matching sees what a threshold throws away: a blurred star's tips are faint but there, a small
 *   cross's arms leave a paler notch between them. Measured in bench/results/detector.md, it is
 *   as exact as mask matching on renders and better on damaged and decoded images.
 *
 * @module
 */
import { INSIDE } from "./geometry.ts";
import { templateOf } from "./detect_templates.ts";
import { SCENE_SIZE } from "./scene.ts";
import { CLASSES, type ShapeClass } from "./world.ts";

/** A shape class with the IoU of its best-fitting template. */
export interface ShapeScore {
  /** The class. */
  cls: ShapeClass;
  /** Soft IoU of the region with the class template fitted to it. */
  iou: number;
}

/** A component to classify. */
export interface ComponentShape {
  /** Row-major 0/1 mask, SCENE_SIZE². */
  mask: Uint8Array;
  /** Pixel box [x0, y0, x1, y1): x1, y1 exclusive. */
  box: readonly [number, number, number, number];
  /** Pixel count of the mask. */
  area: number;
  /**
   * Soft objectness in [0, 1] (SCENE_SIZE²): the unmixed α toward this component's colour on its
   * own pixels and on the unclaimed pixels around it, 0 on other components. When present, shapes
   * are matched on it rather than on the mask (see the module doc).
   */
  soft?: Float32Array;
}

interface Extent {
  umin: number;
  umax: number;
  vmin: number;
  vmax: number;
  /** Area of the silhouette in the unit box [−1, 1]², in units of r². */
  area: number;
  /** Centroid of the silhouette. */
  cu: number;
  cv: number;
}

function extentOf(cls: ShapeClass): Extent {
  const inside = INSIDE[cls];
  const steps = 400;
  let umin = Infinity,
    umax = -Infinity,
    vmin = Infinity,
    vmax = -Infinity,
    hits = 0,
    su = 0,
    sv = 0;
  for (let j = 0; j <= steps; j++) {
    const v = -1.1 + (2.2 * j) / steps;
    for (let i = 0; i <= steps; i++) {
      const u = -1.1 + (2.2 * i) / steps;
      if (!inside(u, v)) continue;
      hits++;
      su += u;
      sv += v;
      umin = Math.min(umin, u);
      umax = Math.max(umax, u);
      vmin = Math.min(vmin, v);
      vmax = Math.max(vmax, v);
    }
  }
  const cell = 2.2 / steps;
  return { umin, umax, vmin, vmax, area: hits * cell * cell, cu: su / hits, cv: sv / hits };
}

const EXTENTS: Readonly<Record<ShapeClass, Extent>> = Object.fromEntries(
  CLASSES.map((c) => [c, extentOf(c)]),
) as Record<ShapeClass, Extent>;

interface Fit {
  cx: number;
  cy: number;
  r: number;
}

/** IoU between a component's mask and the template of `cls` at `fit`, thresholded at ½. */
function maskIou(comp: ComponentShape, cls: ShapeClass, fit: Fit, blur: number): number {
  const n = SCENE_SIZE;
  const e = EXTENTS[cls];
  const t = templateOf(cls, fit.r, blur);
  const tx0 = Math.max(0, Math.floor(fit.cx + fit.r * e.umin - 1));
  const tx1 = Math.min(n, Math.ceil(fit.cx + fit.r * e.umax + 1));
  const ty0 = Math.max(0, Math.floor(fit.cy + fit.r * e.vmin - 1));
  const ty1 = Math.min(n, Math.ceil(fit.cy + fit.r * e.vmax + 1));
  let inter = 0, tArea = 0;
  for (let y = ty0; y < ty1; y++) {
    const v = (y + 0.5 - fit.cy) / fit.r;
    for (let x = tx0; x < tx1; x++) {
      if (t((x + 0.5 - fit.cx) / fit.r, v) < 0.5) continue;
      tArea++;
      if (comp.mask[y * n + x]) inter++;
    }
  }
  const union = tArea + comp.area - inter;
  return union > 0 ? inter / union : 0;
}

/**
 * Soft IoU Σ min(a, t) / Σ max(a, t) between a component's soft objectness and the blurred
 * template's coverage, over the component's box and the template's reach.
 */
function softIou(
  comp: ComponentShape,
  soft: Float32Array,
  cls: ShapeClass,
  fit: Fit,
  blur: number,
): number {
  const n = SCENE_SIZE;
  const e = EXTENTS[cls];
  const t = templateOf(cls, fit.r, blur);
  const reach = 1 + 2 * blur;
  const x0 = Math.max(0, Math.floor(Math.min(comp.box[0] - 1, fit.cx + fit.r * e.umin - reach)));
  const x1 = Math.min(n, Math.ceil(Math.max(comp.box[2] + 1, fit.cx + fit.r * e.umax + reach)));
  const y0 = Math.max(0, Math.floor(Math.min(comp.box[1] - 1, fit.cy + fit.r * e.vmin - reach)));
  const y1 = Math.min(n, Math.ceil(Math.max(comp.box[3] + 1, fit.cy + fit.r * e.vmax + reach)));
  let lo = 0, hi = 0;
  for (let y = y0; y < y1; y++) {
    const v = (y + 0.5 - fit.cy) / fit.r;
    for (let x = x0; x < x1; x++) {
      const a = soft[y * n + x];
      const b = t((x + 0.5 - fit.cx) / fit.r, v);
      if (a < b) {
        lo += a;
        hi += b;
      } else {
        lo += b;
        hi += a;
      }
    }
  }
  return hi > 0 ? lo / hi : 0;
}

function fitScore(comp: ComponentShape, cls: ShapeClass, fit: Fit, blur: number): number {
  return comp.soft ? softIou(comp, comp.soft, cls, fit, blur) : maskIou(comp, cls, fit, blur);
}

function centroidOf(comp: ComponentShape): [number, number] {
  const n = SCENE_SIZE;
  let sx = 0, sy = 0;
  const [x0, y0, x1, y1] = comp.box;
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      if (comp.mask[y * n + x]) {
        sx += x + 0.5;
        sy += y + 0.5;
      }
    }
  }
  return [sx / comp.area, sy / comp.area];
}

function initialFits(comp: ComponentShape, cls: ShapeClass, centroid: [number, number]): Fit[] {
  const e = EXTENTS[cls];
  const [x0, y0, x1, y1] = comp.box;
  const bx = (x0 + x1) / 2, by = (y0 + y1) / 2;
  const boxFit = (r: number): Fit => ({
    cx: bx - (r * (e.umin + e.umax)) / 2,
    cy: by - (r * (e.vmin + e.vmax)) / 2,
    r: Math.min(R_MAX, Math.max(r, R_MIN)),
  });
  // By area, the template's centroid goes on the component's: thin tips that fall under the
  // coverage threshold shrink the box but barely move the area or the centroid.
  const ra = Math.min(R_MAX, Math.max(Math.sqrt(comp.area / e.area), R_MIN));
  return [
    boxFit((x1 - x0) / (e.umax - e.umin)),
    boxFit((y1 - y0) / (e.vmax - e.vmin)),
    { cx: centroid[0] - ra * e.cu, cy: centroid[1] - ra * e.cv, r: ra },
  ];
}

/** Scales a template may take, in pixels: beyond them it is no shape of a 64×64 scene. */
const R_MIN = 1.5;
const R_MAX = 48;
/** Moves the hill-climb may make (it usually stops after 10–20). */
const MAX_MOVES = 40;

/** Hill-climbs a fit over centre and scale, halving the steps when no move helps. */
function refine(
  comp: ComponentShape,
  cls: ShapeClass,
  start: Fit,
  score0: number,
  blur: number,
): number {
  let fit = start, best = score0;
  let step = 0.5, scale = 0.06;
  for (let moves = 0; step >= 0.125 && moves < MAX_MOVES; moves++) {
    const tries: Fit[] = [
      { ...fit, cx: fit.cx + step },
      { ...fit, cx: fit.cx - step },
      { ...fit, cy: fit.cy + step },
      { ...fit, cy: fit.cy - step },
      { ...fit, r: Math.min(R_MAX, fit.r * (1 + scale)) },
      { ...fit, r: Math.max(R_MIN, fit.r / (1 + scale)) },
    ];
    let moved = false;
    for (const m of tries) {
      const v = fitScore(comp, cls, m, blur);
      if (v > best + 1e-9) {
        best = v;
        fit = m;
        moved = true;
      }
    }
    if (!moved) {
      step /= 2;
      scale /= 2;
    }
  }
  return best;
}

/** How many of the best classes after the first fits get the finer search. */
const REFINED = 4;
/** Only starts at least this good are refined (real shapes start at ≥ 0.6, even decoded). */
const MIN_REFINED = 0.45;

/** Blur levels (σ, pixels) tried per class when matching soft objectness. */
export const SOFT_BLURS: readonly number[] = [0, 0.7, 1.2, 1.7, 2.2];

interface Candidate {
  cls: ShapeClass;
  iou: number;
  fit: Fit;
  blur: number;
}

function firstFits(comp: ComponentShape, blurs: readonly number[]): Candidate[] {
  const centroid = centroidOf(comp);
  return CLASSES.map((cls) => {
    let best: Candidate = { cls, iou: -1, fit: { cx: 0, cy: 0, r: 1 }, blur: 0 };
    for (const f of initialFits(comp, cls, centroid)) {
      for (const blur of blurs) {
        const v = fitScore(comp, cls, f, blur);
        if (v > best.iou) best = { cls, iou: v, fit: f, blur };
      }
    }
    return best;
  }).sort((a, b) => b.iou - a.iou);
}

/**
 * Scores every class against a component, best first. Each score is the (soft, when
 * `comp.soft` is given) IoU of the class's best-fitting template seen through a Gaussian blur:
 * `blur` pixels, or with soft matching and no `blur` given, the best of SOFT_BLURS per class.
 * 1 means the component is exactly that shape.
 */
export function classifyShape(comp: ComponentShape, blur?: number): ShapeScore[] {
  const blurs = blur !== undefined ? [blur] : comp.soft ? SOFT_BLURS : [0];
  const coarse = firstFits(comp, blurs);
  for (const c of coarse.slice(0, REFINED)) {
    // A start this poor is a blob, not a misplaced shape: refining it only costs time.
    if (c.iou >= MIN_REFINED) c.iou = refine(comp, c.cls, c.fit, c.iou, c.blur);
  }
  return coarse.map(({ cls, iou }) => ({ cls, iou })).sort((a, b) => b.iou - a.iou);
}
